"""``leadtime.backtest``: replay a demand trace through policies as ``leadtime backtest`` does,
from pandas, NumPy or a CSV file, into a pandas DataFrame."""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from . import _native
from .errors import BadRequestError
from .policy import ParamValue
from .schedule import Schedule, ScheduleLike

Duration = Union[str, float, int, _dt.timedelta, np.timedelta64]
TraceLike = Union[str, "os.PathLike[str]", pd.Series, pd.DataFrame, np.ndarray, _native.Trace]
PolicySpec = Union[str, "os.PathLike[str]", Tuple[str, Union[str, "os.PathLike[str]"]]]

#: The columns of a row, in the order of the CLI's ``--json`` contract (docs/backtest.md).
RESULT_COLUMNS = [
    "policy",
    "under_provisioned_pct",
    "unmet_demand_pct",
    "pod_hours",
    "oracle_pod_hours",
    "cost_vs_oracle",
    "scale_events",
    "mean_replicas",
    "peak_replicas",
    "policy_us_p50",
    "policy_us_p99",
    "policy_errors",
]

#: The columns of the comparison at equal cost (``matched`` in ``--json``).
MATCHED_COLUMNS = [
    "policy",
    "against",
    "cost_vs_oracle",
    "under_provisioned_pct",
    "against_under_provisioned_pct",
]


def seconds(value: Duration) -> Union[str, float]:
    """A duration as seconds (a float), or the text itself (``"5m"``, ``"2d"``) for the engine
    to parse as the CLI does."""
    if isinstance(value, str):
        return value
    if isinstance(value, _dt.timedelta):  # pandas.Timedelta too
        return value.total_seconds()
    if isinstance(value, np.timedelta64):
        return float(value / np.timedelta64(1, "ms")) / 1000.0
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    raise BadRequestError(f"{value!r} is not a duration (seconds, a text such as 5m, or a timedelta)", "bad-request")


def trace_from_grid(name: str, start_ms: int, step_ms: int, values: np.ndarray) -> _native.Trace:
    """A trace already on its grid (NaN for a gap): how a pickled ``Trace`` comes back. The
    array may arrive read-only or unaligned from a transport's buffer; it is copied if so."""
    return _native.Trace.from_grid(name, start_ms, step_ms, np.require(values, np.float64, ["C", "A"]))


def _index_ms(index: pd.DatetimeIndex) -> np.ndarray:
    """Unix milliseconds of a DatetimeIndex, whatever its unit and zone."""
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.values.astype("datetime64[ms]").astype(np.int64)


def _from_series(series: pd.Series, name: str, resample: Optional[str]) -> _native.Trace:
    if not isinstance(series.index, pd.DatetimeIndex):
        raise BadRequestError(
            f"{name}: a Series trace needs a DatetimeIndex (or give a NumPy array with step=)",
            "bad-request",
        )
    missing = np.flatnonzero(series.index.isna())
    if len(missing):
        # As epoch milliseconds a NaT would read -9223372036854775808 ms: say what it is.
        raise BadRequestError(
            f"{name}: row {missing[0]} has no time (NaT; {len(missing)} such rows): drop them or fill the times",
            "bad-request",
        )
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    times = _index_ms(series.index)
    keep = ~np.isnan(values)  # a missing value is a gap
    return _native.Trace.from_points(
        name, np.ascontiguousarray(times[keep]), np.ascontiguousarray(values[keep]), resample
    )


#: Column names taken for times, as the CLI takes them in a CSV header.
_TIME_NAMES = ("timestamp", "time", "ts", "date", "datetime", "t")


def _time_column(frame: pd.DataFrame) -> str:
    """The time column of a frame without a DatetimeIndex, found as the CLI finds it: the one
    datetime column, else a column named like a time; else an error naming ``time_column=``."""
    dated = list(frame.select_dtypes(include=["datetime", "datetimetz"]).columns)
    if len(dated) == 1:
        return dated[0]
    named = [c for c in frame.columns if str(c).lower() in _TIME_NAMES]
    if len(dated) == 0 and len(named) == 1:
        return named[0]
    raise BadRequestError(
        "a DataFrame trace needs a DatetimeIndex or a time column: pass time_column= (columns: "
        f"{list(frame.columns)}; {len(dated)} of them datetimes)",
        "bad-request",
    )


def _value_column(frame: pd.DataFrame, value_column: Optional[str], exclude: Sequence[str]) -> str:
    if value_column is not None:
        if value_column not in frame.columns:
            raise BadRequestError(f"no value column {value_column!r} (columns: {list(frame.columns)})", "bad-request")
        return value_column
    if "value" in frame.columns:
        return "value"
    numeric = [c for c in frame.select_dtypes("number").columns if c not in exclude]
    if not numeric:
        raise BadRequestError(f"no numeric column (columns: {list(frame.columns)})", "bad-request")
    return numeric[0]


def load_trace(
    trace: TraceLike,
    *,
    step: Optional[Duration] = None,
    start: Union[str, _dt.datetime, pd.Timestamp, int, None] = None,
    name: Optional[str] = None,
    time_column: Optional[str] = None,
    value_column: Optional[str] = None,
    resample: Optional[str] = None,
) -> _native.Trace:
    """A checked trace from a CSV path, a pandas Series (DatetimeIndex) or DataFrame (a
    DatetimeIndex, ``time_column``, or the time column found as the CLI finds it, and
    ``value_column`` or the first numeric column), or a
    1-D NumPy array of values every ``step`` from ``start`` (default the Unix epoch; NaN is a
    gap). ``resample`` is ``STEP[:mean|max|sum]``, as the CLI's ``--resample``."""
    if isinstance(trace, _native.Trace):
        return trace
    if isinstance(trace, (str, os.PathLike)):
        return _native.Trace.from_csv(os.fspath(trace), time_column, value_column, resample)
    if isinstance(trace, pd.Series):
        return _from_series(trace, name or (str(trace.name) if trace.name is not None else "series"), resample)
    if isinstance(trace, pd.DataFrame):
        frame = trace
        if time_column is None and not isinstance(frame.index, pd.DatetimeIndex):
            time_column = _time_column(frame)
        if time_column is not None:
            if time_column not in frame.columns:
                raise BadRequestError(f"no time column {time_column!r} (columns: {list(frame.columns)})", "bad-request")
            frame = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame[time_column], utc=True)))
        column = _value_column(frame, value_column, [time_column] if time_column else [])
        return _from_series(frame[column], name or str(column), resample)
    if isinstance(trace, np.ndarray):
        if step is None:
            raise BadRequestError("a NumPy trace needs step= (seconds, a text such as 5m, or a timedelta)", "bad-request")
        step_s = seconds(step)
        step_ms = round(1000 * (_native.parse_seconds(step_s) if isinstance(step_s, str) else step_s))
        start_ms = 0 if start is None else int(_index_ms(pd.DatetimeIndex([pd.Timestamp(start)]))[0])
        values = np.ascontiguousarray(trace, dtype=np.float64)
        if values.ndim != 1:
            raise BadRequestError(f"a NumPy trace is 1-D, got shape {values.shape}", "bad-request")
        grid = _native.Trace.from_grid(name or "array", start_ms, step_ms, values)
        if resample is None:
            return grid
        keep = ~np.isnan(values)
        times = start_ms + step_ms * np.arange(len(values), dtype=np.int64)
        return _native.Trace.from_points(grid.name, times[keep], values[keep], resample)
    raise BadRequestError(
        f"a trace is a CSV path, a pandas Series or DataFrame, or a NumPy array, not {type(trace).__name__}",
        "bad-request",
    )


def job(spec: PolicySpec) -> Tuple[str, str]:
    """The row label and the policy of a ``policies`` entry, as the CLI names them:
    ``"NAME=POLICY"`` or ``(NAME, POLICY)``, a ``.wasm``/``.wat`` file by its stem, a built-in by
    its name."""
    if isinstance(spec, tuple):
        label, policy = spec
        return str(label), os.fspath(policy)
    spec = os.fspath(spec)
    if "=" in spec:
        label, policy = spec.split("=", 1)
        if not label or not policy or any(c.isspace() for c in label):
            raise BadRequestError(f"policy {spec!r}: a name must be NAME=POLICY, the name without spaces", "bad-request")
        return label, policy
    path = Path(spec)
    if path.suffix in (".wasm", ".wat") and path.stem:
        return "-".join(path.stem.split()) if any(c.isspace() for c in path.stem) else path.stem, spec
    return spec, spec


def _ready(
    ready_time: Optional[Duration],
    ready_time_dist: Optional[str],
    ready_times: Union[str, "os.PathLike[str]", Iterable[float], None],
) -> Tuple[str, Any]:
    given = [x is not None for x in (ready_time, ready_time_dist, ready_times)]
    if sum(given) != 1:
        raise BadRequestError("give one of ready_time, ready_time_dist, ready_times", "bad-request")
    if ready_time is not None:
        return ("fixed", seconds(ready_time))
    if ready_time_dist is not None:
        return ("dist", ready_time_dist)
    if isinstance(ready_times, (str, os.PathLike)):
        return ("file", os.fspath(ready_times))
    return ("samples", [float(s) for s in np.asarray(ready_times, dtype=np.float64)])


class BacktestFrame(pd.DataFrame):
    """The rows of a backtest (each policy, then the oracle) with the columns of the CLI's
    ``--json`` contract; ``.sweep`` and ``.matched`` hold the sweep's rows and the comparison
    at equal cost (``None`` without a sweep), ``.report(path)`` writes the CLI's HTML report."""

    _metadata = ["_backtest", "sweep", "matched", "steps", "trace_name"]

    @property
    def _constructor(self):  # type: ignore[override]
        return BacktestFrame

    def cli_json(self) -> dict:
        """The run exactly as ``leadtime backtest --json`` prints it (parsed)."""
        return json.loads(self._backtest.json())

    def report(self, path: Union[str, "os.PathLike[str]"]) -> Path:
        """Writes the self-contained HTML report of ``leadtime backtest --report`` to ``path``."""
        if getattr(self, "_backtest", None) is None:
            raise BadRequestError("this frame no longer holds its backtest (made by an operation on it)", "bad-request")
        path = Path(path)
        path.write_text(self._backtest.report_html(), encoding="utf-8")
        return path

    def series(self) -> pd.DataFrame:
        """Each run's per-decision series over the scored window (``policy``, ``time``,
        ``demand``, ``ready_capacity``, ``replicas``), for plots."""
        parts = []
        for label, times, demand, ready_capacity, replicas in self._backtest.series():
            parts.append(
                pd.DataFrame(
                    {
                        "policy": label,
                        "time": pd.to_datetime(times, unit="ms", utc=True),
                        "demand": demand,
                        "ready_capacity": ready_capacity,
                        "replicas": replicas,
                    }
                )
            )
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _frame(rows: list, columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(columns))
    extra = [c for c in frame.columns if c not in columns]
    return frame[[c for c in columns if c in frame.columns] + extra]


def backtest(
    trace: TraceLike,
    policies: Sequence[PolicySpec] = ("predictive", "hpa"),
    *,
    ready_time: Optional[Duration] = None,
    ready_time_dist: Optional[str] = None,
    ready_times: Union[str, "os.PathLike[str]", Iterable[float], None] = None,
    capacity_per_pod: Optional[float] = None,
    peak_pods: Optional[int] = None,
    pods_at_quantile: Optional[Tuple[float, int]] = None,
    interval: Optional[Duration] = None,
    seed: int = 1,
    lookback: Duration = "14d",
    target_utilization: float = 1.0,
    warmup: Duration = "0s",
    min_replicas: int = 1,
    max_replicas: Optional[int] = None,
    behavior: Union[str, "os.PathLike[str]", Mapping[str, Any], None] = None,
    schedule: Optional[ScheduleLike] = None,
    params: Optional[Mapping[str, Mapping[str, ParamValue]]] = None,
    sweep: bool = False,
    series: bool = True,
    step: Optional[Duration] = None,
    start: Union[str, _dt.datetime, pd.Timestamp, int, None] = None,
    name: Optional[str] = None,
    time_column: Optional[str] = None,
    value_column: Optional[str] = None,
    resample: Optional[str] = None,
    threads: Optional[int] = None,
) -> BacktestFrame:
    """Backtests ``policies`` on ``trace`` against the oracle, as ``leadtime backtest`` with the
    same flags: one row per policy, then the oracle's, with the columns ``policy``,
    ``under_provisioned_pct`` (time short of capacity), ``unmet_demand_pct``, ``pod_hours``,
    ``oracle_pod_hours``, ``cost_vs_oracle``, ``scale_events``, ``mean_replicas``,
    ``peak_replicas``, ``policy_us_p50``/``policy_us_p99`` (measured call times) and
    ``policy_errors``.

    ``trace`` is a CSV path, a pandas Series with a DatetimeIndex, a DataFrame (its time column
    found as the CLI finds it, or ``time_column=``), a 1-D NumPy array with ``step=`` (and
    ``start=``), or a ``Trace`` (``load_trace``, ``from_prometheus``). ``policies`` are built-in
    names or ``.wasm``/``.wat`` paths, optionally ``"label=policy"``.

    Size pods with one of ``capacity_per_pod``, ``peak_pods`` or ``pods_at_quantile=(Q, N)``;
    give one of ``ready_time`` (fixed), ``ready_time_dist`` (``"lognormal:2m,5m"``) or
    ``ready_times`` (observed seconds, or a file of them). ``params`` maps a row label or policy
    name to that policy's params. ``behavior`` is an HPA behavior block (a dict, or a YAML/JSON
    file). ``schedule`` (docs/schedules.md: replica bounds by time and planned events) is a
    ``leadtime.Schedule``, a dict or a YAML file, as ``--schedule``: each policy then runs as
    ``NAME`` without it and ``NAME+schedule`` with it, and with events the rows have
    ``event_under_provisioned_pct``. With ``sweep``, each policy also runs over its QoS knob
    (``.sweep``) and is compared with the others at equal cost (``.matched``). ``series=False`` keeps no per-decision series
    (then ``.report`` has no time charts). The policies run with the GIL released, on up to
    ``threads`` threads (default one per core); Ctrl-C stops the run at its next decision.
    """
    native_trace = load_trace(
        trace, step=step, start=start, name=name, time_column=time_column, value_column=value_column, resample=resample
    )
    sizings = [x is not None for x in (capacity_per_pod, peak_pods, pods_at_quantile)]
    if sum(sizings) != 1:
        raise BadRequestError("give one of capacity_per_pod, peak_pods, pods_at_quantile", "bad-request")
    if capacity_per_pod is not None:
        capacity = float(capacity_per_pod)
    elif peak_pods is not None:
        if not 1 <= int(peak_pods) <= 100_000:
            raise BadRequestError(f"peak_pods must be 1 to 100000, got {peak_pods}", "bad-request")
        capacity = native_trace.capacity_for_peak(int(peak_pods))
    else:
        q, n = pods_at_quantile  # type: ignore[misc]
        if int(n) < 1:
            raise BadRequestError(f"pods_at_quantile: N must be positive, got {n}", "bad-request")
        capacity = native_trace.capacity_for_quantile(float(q), int(n))
    if isinstance(policies, (str, os.PathLike)):
        policies = [policies]
    params = params or {}
    jobs = []
    for spec in policies:
        label, policy = job(spec)
        merged = dict(params.get(policy, {}))
        if label != policy:
            merged.update(params.get(label, {}))
        jobs.append((label, policy, merged))
    behavior_text = None
    if isinstance(behavior, Mapping):
        behavior_text = json.dumps(behavior)
    elif behavior is not None:
        behavior_text = Path(behavior).read_text(encoding="utf-8")
    native = _native.backtest(
        native_trace,
        jobs,
        capacity_per_pod=capacity,
        ready=_ready(ready_time, ready_time_dist, ready_times),
        seed=int(seed),
        interval=None if interval is None else seconds(interval),
        lookback=seconds(lookback),
        target_utilization=float(target_utilization),
        warmup=seconds(warmup),
        min_replicas=int(min_replicas),
        max_replicas=None if max_replicas is None else int(max_replicas),
        behavior=behavior_text,
        schedule=None if schedule is None else Schedule.of(schedule).text,
        sweep=bool(sweep),
        record_series=bool(series),
        threads=None if threads is None else int(threads),
    )
    out = json.loads(native.json())
    frame = BacktestFrame(_frame(out["results"], RESULT_COLUMNS))
    frame._backtest = native
    frame.steps = out["steps"]
    frame.trace_name = out["trace"]
    frame.sweep = _frame(out["sweep"], RESULT_COLUMNS) if "sweep" in out else None
    frame.matched = _frame(out["matched"], MATCHED_COLUMNS) if "matched" in out else None
    return frame
