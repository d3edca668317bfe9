"""``leadtime.Policy``: one policy loaded into the sandbox, deciding on requests as dicts."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Optional, Union

from . import _native

ParamValue = Union[bool, int, float, str]
Source = Union[str, "os.PathLike[str]", bytes]


def plain(value: Any) -> Any:
    """``value`` as plain JSON data: NumPy arrays and scalars, tuples and pandas Series become
    lists and numbers, NaN becomes ``None`` (a missing point), bytes a list of byte values."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, int):
        return value
    tolist = getattr(value, "tolist", None)  # NumPy arrays and scalars, pandas Series
    if tolist is not None:
        return plain(tolist())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    raise TypeError(f"{type(value).__name__} has no JSON form")


class Policy:
    """A scaling policy in the sandbox: a built-in by name (``"predictive"``, ``"hpa"``, ...), a
    ``.wasm``/``.wat`` file by path, or a module's bytes.

    The handle keeps the state the policy returns from one ``decide`` to the next, as a host does
    for one workload; ``fork()`` makes a handle for another workload.
    """

    def __init__(
        self,
        source: Source,
        params: Optional[Mapping[str, ParamValue]] = None,
        limits: Optional[Mapping[str, Union[int, float]]] = None,
        *,
        name: Optional[str] = None,
    ) -> None:
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if isinstance(source, bytearray):
            source = bytes(source)
        self._native = _native.Policy(
            source,
            dict(params) if params is not None else None,
            dict(limits) if limits is not None else None,
            name,
        )

    @classmethod
    def _wrap(cls, native: Any) -> "Policy":
        policy = cls.__new__(cls)
        policy._native = native
        return policy

    def decide(self, request: Mapping[str, Any]) -> dict:
        """Asks for a replica target. ``request`` is the JSON form of docs/ABI.md as a dict
        (metric values may be lists, NumPy arrays or Series; NaN or ``None`` is a missing
        point). Returns ``replicas``, ``proposed``, ``reason``, ``forecast`` (when the policy
        gives one), ``fuel``, ``state`` (bytes or ``None``) and ``logs``. Raises
        ``PolicyError`` (with ``.kind``) when the call fails, ``BadRequestError`` when the
        request is not valid."""
        text = json.dumps(plain(request), allow_nan=False)
        answer = json.loads(self._native.decide(text))
        if answer.get("state") is not None:
            answer["state"] = bytes(answer["state"])
        return answer

    @property
    def info(self) -> dict:
        """The module: ``name``, ``builtin``, ``summary``, ``exports``, ``imports``,
        ``has_init`` and the load-time ``params``."""
        return self._native.info

    @property
    def name(self) -> str:
        """The name it was loaded under."""
        return self._native.name

    @property
    def last_fuel(self) -> int:
        """Fuel the last call used (about one unit per wasm instruction)."""
        return self._native.last_fuel

    def fork(self) -> "Policy":
        """A handle for another workload: the same module and params, its own state."""
        return Policy._wrap(self._native.fork())

    def reset_state(self) -> None:
        """Forgets the state the policy returned, as after a restart."""
        self._native.reset_state()

    def __repr__(self) -> str:
        return f"Policy({self.name!r})"
