"""Traces and ready times straight from a Prometheus, read by the client ``leadtime serve`` and
``leadtime backtest --prometheus`` use: long ranges in pages under Prometheus' per-series point
limit, gaps kept as gaps, TLS and credentials as the CLI's connection flags."""

from __future__ import annotations

import datetime as _dt
import os
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from . import _native
from .backtest import Duration, seconds
from .errors import LeadtimeError

#: A time: a datetime (with a zone), a pandas Timestamp, RFC 3339 text or Unix seconds.
When = Union[str, _dt.datetime, pd.Timestamp, int, float, None]

_CONNECTION = ("ca_file", "cert_file", "key_file", "bearer_token_file", "username", "password_file", "headers")


def _seconds(value: Duration, what: str) -> int:
    s = seconds(value)
    return round(_native.parse_seconds(s) if isinstance(s, str) else float(s))


def _unix(end: When, step: int) -> int:
    if end is None:
        now = int(time.time())
        return now - now % step
    if isinstance(end, (int, float)) and not isinstance(end, bool):
        return int(end)
    stamp = pd.Timestamp(end)
    if stamp.tzinfo is None:
        raise _bad(f"end {end!r} has no time zone: give one (e.g. UTC), as the CLI's RFC 3339")
    return int(stamp.timestamp())


def _bad(message: str) -> Exception:
    from .errors import BadRequestError

    return BadRequestError(message, "bad-request")


def _connection(options: Mapping[str, Any]) -> Dict[str, Any]:
    unknown = sorted(set(options) - set(_CONNECTION))
    if unknown:
        raise _bad(f"unknown connection settings {unknown}: the settings are {list(_CONNECTION)}")
    out: Dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key == "headers":
            out[key] = [(str(k), str(v)) for k, v in dict(value).items()]
        elif key == "username":
            out[key] = str(value)
        else:
            out[key] = os.fspath(value)
    return out


def from_prometheus(
    url: str,
    query: str,
    *,
    range: Duration = "14d",
    step: Duration = "1m",
    end: When = None,
    name: Optional[str] = None,
    timeout: float = 60.0,
    **connection: Any,
) -> _native.Trace:
    """The trace of ``query`` (one series: a workload's load) every ``step`` over ``range``
    ending at ``end`` (default now), read from the Prometheus at ``url``. ``connection`` takes
    ``ca_file``, ``cert_file`` and ``key_file``, ``bearer_token_file``, ``username`` and
    ``password_file``, and ``headers`` (a dict, e.g. ``{"X-Scope-OrgID": "team-a"}``), as the
    CLI's ``--prometheus-*`` flags. Errors are ``leadtime.PrometheusError`` with the client's
    kind (``unreachable``, ``api``, ``several-series``, ``no-data``...)."""
    step_s, range_s = _seconds(step, "step"), _seconds(range, "range")
    last = _unix(end, max(step_s, 1))
    times, values = _native.prometheus_series(url, query, last - range_s, last, step_s, _connection(connection), timeout)
    return _native.Trace.from_points(
        name or "prometheus",
        np.asarray(times, dtype=np.int64),
        np.asarray(values, dtype=np.float64),
        None,
    )


def ready_times_from_prometheus(
    url: str,
    query: str,
    *,
    range: Duration = "14d",
    end: When = None,
    timeout: float = 60.0,
    **connection: Any,
) -> List[float]:
    """Ready times in seconds, for ``backtest(..., ready_times=...)``: ``query`` gives each
    recent pod's seconds from creation to Ready, one series per pod (kube-state-metrics:
    ``kube_pod_status_ready_time - kube_pod_created``); every pod seen over ``range`` counts
    once, with its last value."""
    range_s = _seconds(range, "range")
    times = _native.prometheus_ready_times(url, query, _unix(end, 60), range_s, _connection(connection), timeout)
    if not times:
        raise _bad(f"ready-time query {query!r} gave no ready time of 0 seconds or more")
    return list(times)


def traces(
    url: str,
    queries: Mapping[str, str],
    *,
    range: Duration = "14d",
    step: Duration = "1m",
    end: When = None,
    timeout: float = 60.0,
    **connection: Any,
) -> Tuple[Dict[str, _native.Trace], Dict[str, "LeadtimeError"]]:
    """Every workload's trace (``queries`` maps a workload's name to its load's PromQL), all
    ending at the same instant; and the workloads that could not be read, with why."""
    last = _unix(end, max(_seconds(step, "step"), 1))
    read: Dict[str, _native.Trace] = {}
    failed: Dict[str, LeadtimeError] = {}
    for name, query in queries.items():
        try:
            read[name] = from_prometheus(url, query, range=range, step=step, end=last, name=name, timeout=timeout, **connection)
        except LeadtimeError as error:  # kept for the caller to raise or record
            failed[name] = error
    return read, failed


__all__: Sequence[str] = ["from_prometheus", "ready_times_from_prometheus", "traces"]
