"""``leadtime.Schedule``: replica bounds by time and planned events (docs/schedules.md), checked
by the engine when made, for ``leadtime.backtest(..., schedule=...)`` and fleet runs."""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Any, Mapping, Union

import numpy as np

from . import _native
from .errors import BadRequestError

ScheduleLike = Union["Schedule", Mapping[str, Any], str, "os.PathLike[str]"]


def _json_default(value: Any) -> Any:
    """Times and durations in a schedule dict as the YAML the engine reads: RFC 3339 text and
    milliseconds."""
    if isinstance(value, (_dt.datetime, _dt.date)):  # pandas.Timestamp too
        if isinstance(value, _dt.datetime) and value.tzinfo is None:
            raise BadRequestError(f"schedule: {value} has no time zone (give one, or an RFC 3339 text)", "bad-request")
        return value.isoformat()
    if isinstance(value, _dt.timedelta):  # pandas.Timedelta too
        return f"{round(value.total_seconds() * 1000)}ms"
    if isinstance(value, np.timedelta64):
        return f"{int(value / np.timedelta64(1, 'ms'))}ms"
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not allowed in a schedule")


class Schedule:
    """A checked schedule: ``Schedule(dict)``, ``Schedule.from_file(path)`` or
    ``Schedule.parse(yaml_text)``. Errors are ``BadRequestError`` naming the entry (and the file,
    line and column). It holds its YAML text, so it pickles to any worker of a fleet run."""

    __slots__ = ("text",)

    def __init__(self, block: Mapping[str, Any]) -> None:
        try:
            # JSON is YAML: the engine parses it as it parses a file.
            text = json.dumps(dict(block), default=_json_default)
        except TypeError as e:
            raise BadRequestError(f"schedule: {e}", "bad-request") from None
        self.text = _native.check_schedule("text", text)

    @classmethod
    def parse(cls, text: str) -> "Schedule":
        """A schedule from its YAML text (the block's fields, or ``schedule:`` wrapping them)."""
        schedule = cls.__new__(cls)
        schedule.text = _native.check_schedule("text", str(text))
        return schedule

    @classmethod
    def from_file(cls, path: Union[str, "os.PathLike[str]"]) -> "Schedule":
        """A schedule file, as ``leadtime backtest --schedule FILE`` reads it."""
        schedule = cls.__new__(cls)
        schedule.text = _native.check_schedule("file", os.fspath(path))
        return schedule

    @classmethod
    def of(cls, value: ScheduleLike) -> "Schedule":
        """``value`` as a schedule: itself, a dict, or a YAML file's path."""
        if isinstance(value, Schedule):
            return value
        if isinstance(value, Mapping):
            return cls(value)
        if isinstance(value, (str, os.PathLike)):
            return cls.from_file(value)
        raise BadRequestError(
            f"schedule: a leadtime.Schedule, a dict or a YAML file's path, not {type(value).__name__}", "bad-request"
        )

    def __getstate__(self) -> str:
        return self.text

    def __setstate__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"leadtime.Schedule.parse({self.text!r})"
