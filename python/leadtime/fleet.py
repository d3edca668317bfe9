"""``leadtime.fleet``: backtest many workloads at once on any ``concurrent.futures.Executor``
(local processes by default, a Dask ``distributed.Client``, ...), with a summary per policy.

Each workload's trace is checked and laid on its grid where it is read, then travels to a
worker as one NumPy array (a pickled ``leadtime._native.Trace``); each worker sends back its
rows as small DataFrames. Workloads are independent: a worker process compiles each policy
once (then keeps it in memory, and in the disk cache shared with the CLI) and runs its
workloads one after another.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from . import _native
from .backtest import MATCHED_COLUMNS, RESULT_COLUMNS, PolicySpec, TraceLike, backtest as _backtest, job, load_trace
from .errors import BadRequestError, LeadtimeError
from .schedule import Schedule

Traces = Union[Mapping[str, TraceLike], str, "os.PathLike[str]"]


@dataclass
class FleetResult:
    """A fleet backtest: every row, every comparison at equal cost, and the summary."""

    #: One row per (workload, policy or sweep point): ``workload``, ``sweep`` (whether the row is
    #: a sweep point) and the columns of the CLI's ``--json`` rows.
    results: pd.DataFrame
    #: With a sweep: ``workload`` and the columns of ``matched`` (each policy against each other
    #: policy's curve at the same cost).
    matched: pd.DataFrame
    #: One row per policy (the baseline and the oracle aside), see ``summarize``.
    summary: pd.DataFrame
    #: Workloads that failed: ``workload``, ``kind``, ``message`` (with ``on_error="skip"``).
    errors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["workload", "kind", "message"]))
    #: Scored trace days backtested (the sum over workloads of each one's scored span).
    workload_days: float = 0.0


def _run_workload(name: str, trace: _native.Trace, policies: List[Tuple[str, str]], settings: Dict[str, Any]) -> Tuple[pd.DataFrame, pd.DataFrame, float]:
    """One workload on a worker: its rows, its comparisons at equal cost, its scored days."""
    frame = _backtest(trace, policies, series=False, **settings)
    rows = pd.DataFrame(frame)
    rows.insert(0, "sweep", False)
    if frame.sweep is not None:
        sweep = frame.sweep.copy()
        sweep.insert(0, "sweep", True)
        rows = pd.concat([rows, sweep], ignore_index=True)
    rows.insert(0, "workload", name)
    matched = frame.matched if frame.matched is not None else pd.DataFrame(columns=MATCHED_COLUMNS)
    matched = matched.copy()
    matched.insert(0, "workload", name)
    interval_ms = trace.step_ms
    if settings.get("interval") is not None:
        interval_ms = round(1000 * _seconds_value(settings["interval"]))
    days = frame.steps * interval_ms / 86_400_000
    return rows, matched, days


Outcome = Union[Tuple[pd.DataFrame, pd.DataFrame, float], LeadtimeError]


def _run_chunk(chunk: List[Tuple[str, _native.Trace, Dict[str, Any]]], policies: List[Tuple[str, str]]) -> List[Tuple[str, Outcome]]:
    """Several workloads in one task (fewer round trips to the scheduler): each one's outcome,
    its rows or the error it ended in."""
    out: List[Tuple[str, Outcome]] = []
    for name, trace, settings in chunk:
        try:
            out.append((name, _run_workload(name, trace, policies, settings)))
        except LeadtimeError as e:
            out.append((name, e))
    return out


class RayExecutor(cf.Executor):
    """Ray tasks as a ``concurrent.futures.Executor``, for ``fleet.backtest(...,
    executor=RayExecutor())`` once ``ray.init(...)`` has connected; ``options`` are
    ``ray.remote``'s (default ``num_cpus=1``: one task per CPU the cluster has)."""

    def __init__(self, **options: Any) -> None:
        import ray  # only where Ray is wanted: it is not a dependency

        self._ray = ray
        self._options = {"num_cpus": 1, **options}
        self._remote: Dict[Any, Any] = {}

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future:
        # One remote function per callable: Ray registers (pickles) it once, not per task.
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self._ray.remote(**self._options)(fn)
        return remote.remote(*args, **kwargs).future()

    @property
    def _max_workers(self) -> int:
        """The tasks the cluster runs at once (its CPUs over each task's)."""
        cpus = self._ray.cluster_resources().get("CPU", 1)
        return max(1, int(cpus // self._options["num_cpus"]))


def _workers(executor: Any, max_workers: Optional[int]) -> Optional[int]:
    """How many workers `executor` runs tasks on, when it says."""
    if max_workers:
        return max_workers
    client = getattr(executor, "_client", None)  # a Dask ClientExecutor
    if client is not None and hasattr(client, "scheduler_info"):
        return max(1, len(client.scheduler_info().get("workers", {})))
    return getattr(executor, "_max_workers", None)


def _seconds_value(value: Any) -> float:
    return _native.parse_seconds(value) if isinstance(value, str) else float(value)


def _traces(traces: Traces) -> Dict[str, TraceLike]:
    if isinstance(traces, (str, os.PathLike)):
        directory = Path(traces)
        if not directory.is_dir():
            raise BadRequestError(f"{directory}: not a directory of CSV traces", "bad-request")
        files = sorted(directory.glob("*.csv"))
        if not files:
            raise BadRequestError(f"{directory}: has no .csv trace", "bad-request")
        return {f.stem: f for f in files}
    return dict(traces)


def _progress(progress: Union[bool, Callable[[int, int, int], None]], total: int) -> Callable[[int, int], None]:
    """``report(done, failed)``: calls the caller's function, prints a line to stderr (in place on
    a terminal), or does nothing."""
    if callable(progress):
        return lambda done, failed: progress(done, failed, total)
    if not progress:
        return lambda done, failed: None
    try:
        from tqdm.auto import tqdm  # type: ignore[import-not-found]
    except ImportError:
        tqdm = None
    if tqdm is not None:
        bar = tqdm(total=total, unit="workload", desc="fleet")

        def advance(done: int, failed: int) -> None:
            bar.update(done - bar.n)
            bar.set_postfix(failed=failed)
            if done == total:
                bar.close()

        return advance
    tty = sys.stderr.isatty()

    def report(done: int, failed: int) -> None:
        line = f"fleet: {done}/{total} workloads ({100 * done // max(total, 1)}%), {failed} failed"
        end = "\n" if not tty or done == total else ""
        print(("\r" if tty else "") + line, end=end, file=sys.stderr, flush=True)

    return report


def _executor(executor: Any, max_workers: Optional[int]) -> Tuple[Any, bool]:
    """The executor to submit to, and whether this call owns it (and must shut it down)."""
    if executor is None:
        # Spawned, not forked: a fork of a process whose engine runs threads is not safe.
        context = multiprocessing.get_context("spawn")
        return cf.ProcessPoolExecutor(max_workers=max_workers or os.cpu_count(), mp_context=context), True
    if hasattr(executor, "get_executor"):
        # A Dask distributed.Client: its concurrent.futures face.
        return executor.get_executor(), False
    if not hasattr(executor, "submit"):
        raise BadRequestError(f"{type(executor).__name__} is not a concurrent.futures.Executor", "bad-request")
    return executor, False


def backtest(
    traces: Traces,
    policies: Sequence[PolicySpec] = ("predictive", "hpa"),
    *,
    executor: Any = None,
    max_workers: Optional[int] = None,
    baseline: Optional[str] = "hpa",
    on_error: str = "raise",
    capacity_per_pod: Union[float, Mapping[str, float], None] = None,
    chunksize: Optional[int] = None,
    progress: Union[bool, Callable[[int, int, int], None]] = False,
    **settings: Any,
) -> FleetResult:
    """Backtests ``policies`` on every workload of ``traces`` (a mapping of name to trace, as
    ``leadtime.backtest`` takes them, or a directory of CSV files named by their stems), on
    ``executor`` (default: a pool of local processes, ``max_workers`` of them; a Dask
    ``distributed.Client`` or any ``concurrent.futures.Executor``).

    ``settings`` are ``leadtime.backtest``'s (``ready_time``, ``peak_pods``, ``warmup``,
    ``sweep``, ...); ``capacity_per_pod`` may map a workload to its own. ``baseline`` is the row
    label the summary compares with (``None``: no comparison). ``on_error="skip"`` records a
    failed workload in ``.errors`` instead of raising its exception, whether it failed where it
    ran or in the checks of its trace here. ``chunksize`` workloads go in one task (default:
    about four tasks per worker, when the executor tells its workers). ``progress=True`` shows a
    tqdm bar where tqdm is installed, else prints how many workloads are done (and failed) to
    stderr as they finish; a callable is called as ``progress(done, failed, total)`` instead.
    Each task's backtest takes ``threads`` threads (a setting; default the cores over the
    workers), so that N workers run about N times as fast as one.
    """
    if on_error not in ("raise", "skip"):
        raise BadRequestError(f"on_error is 'raise' or 'skip', not {on_error!r}", "bad-request")
    if isinstance(policies, (str, os.PathLike)):
        policies = [policies]
    jobs = [job(p) for p in policies]
    labels = [label for label, _ in jobs]
    if settings.get("schedule") is not None:
        # Checked once here (errors name the file); workers get its text, not a path. Each
        # policy then has a row without it and one with it (`NAME+schedule`).
        settings["schedule"] = Schedule.of(settings["schedule"])
        labels = [row for label in labels for row in (label, f"{label}+schedule")]
    if baseline is not None and baseline not in labels:
        raise BadRequestError(f"baseline {baseline!r} is not one of the policies' rows {labels}", "bad-request")
    workloads = _traces(traces)
    if not workloads:
        raise BadRequestError("no workload to backtest", "bad-request")
    trace_options = {k: settings.pop(k) for k in ("step", "start", "time_column", "value_column", "resample") if k in settings}
    pool, owned = _executor(executor, max_workers)
    workers = _workers(pool, max_workers) or len(workloads)
    if chunksize is None:
        chunksize = max(1, len(workloads) // (4 * workers))
    # Each backtest runs its policies on a thread per core by default; N workers side by side
    # then fight over the same cores (two Dask workers gave 1.33x one). A task gets its share.
    settings.setdefault("threads", max(1, (os.cpu_count() or 1) // max(1, workers)))
    if chunksize < 1:
        raise BadRequestError(f"chunksize must be 1 or more, got {chunksize}", "bad-request")
    futures: List[Any] = []
    errors: List[Dict[str, str]] = []
    chunk: List[Tuple[str, _native.Trace, Dict[str, Any]]] = []
    report = _progress(progress, len(workloads))
    done = 0

    def failed(name: str, error: LeadtimeError) -> None:
        if on_error == "raise":
            raise type(error)(f"workload {name}: {error.message}", error.kind) from error
        errors.append({"workload": name, "kind": error.kind, "message": error.message})

    try:
        for name, trace in workloads.items():
            own = dict(settings)
            if isinstance(capacity_per_pod, Mapping):
                if name not in capacity_per_pod:
                    raise BadRequestError(f"capacity_per_pod has no entry for workload {name!r}", "bad-request")
                own["capacity_per_pod"] = capacity_per_pod[name]
            elif capacity_per_pod is not None:
                own["capacity_per_pod"] = capacity_per_pod
            # Read and checked here, shipped as one array.
            try:
                checked = load_trace(trace, name=name, **trace_options)
            except LeadtimeError as error:
                failed(name, error)
                done += 1
                report(done, len(errors))
                continue
            chunk.append((name, checked, own))
            if len(chunk) == chunksize:
                futures.append(pool.submit(_run_chunk, chunk, jobs))
                chunk = []
        if chunk:
            futures.append(pool.submit(_run_chunk, chunk, jobs))
        parts: List[Tuple[pd.DataFrame, pd.DataFrame, float]] = []
        for future in cf.as_completed(futures):
            for name, outcome in future.result():
                if isinstance(outcome, LeadtimeError):
                    failed(name, outcome)
                else:
                    parts.append(outcome)
                done += 1
            report(done, len(errors))
    except BaseException:
        for future in futures:  # what has not started yet, on any executor
            future.cancel()
        raise
    finally:
        if owned:
            pool.shutdown(wait=True, cancel_futures=True)
    order = {name: i for i, name in enumerate(workloads)}
    parts.sort(key=lambda p: order[p[0]["workload"].iloc[0]])
    results = pd.concat([p[0] for p in parts], ignore_index=True) if parts else pd.DataFrame(columns=["workload", "sweep", *RESULT_COLUMNS])
    matched = pd.concat([p[1] for p in parts], ignore_index=True) if parts else pd.DataFrame(columns=["workload", *MATCHED_COLUMNS])
    return FleetResult(
        results=results,
        matched=matched,
        summary=summarize(results, matched, labels, baseline),
        errors=pd.DataFrame(errors, columns=["workload", "kind", "message"]),
        workload_days=float(sum(p[2] for p in parts)),
    )


def summarize(results: pd.DataFrame, matched: pd.DataFrame, labels: Iterable[str], baseline: Optional[str]) -> pd.DataFrame:
    """One row per policy (the baseline and the oracle aside) over the fleet: ``workloads``;
    ``pod_hours`` and ``baseline_pod_hours`` summed, ``pod_hours_change`` (the policy's less the
    baseline's: negative where it saves) and ``pod_hours_change_pct``; the mean ``under_provisioned_pct`` and the
    baseline's; with a sweep, the baseline's mean under-provisioned time at the policy's cost
    (``baseline_at_equal_cost_pct``, over the workloads where the policy's cost is inside the
    baseline's curve: ``at_equal_cost_workloads``); and ``worse_workloads``, the workloads where
    the policy is worse than the baseline: under-provisioned longer than the baseline at the same
    cost with a sweep, else under-provisioned longer and not cheaper."""
    rows = []
    plain = results[~results["sweep"]] if "sweep" in results else results
    for label in labels:
        if label == baseline:
            continue
        mine = plain[plain["policy"] == label].set_index("workload")
        row: Dict[str, Any] = {"policy": label, "workloads": len(mine), "pod_hours": mine["pod_hours"].sum(), "under_provisioned_pct": mine["under_provisioned_pct"].mean()}
        if baseline is not None:
            base = plain[plain["policy"] == baseline].set_index("workload").reindex(mine.index)
            change = row["pod_hours"] - base["pod_hours"].sum()
            row.update(
                baseline_pod_hours=base["pod_hours"].sum(),
                pod_hours_change=change,
                pod_hours_change_pct=100.0 * change / base["pod_hours"].sum() if base["pod_hours"].sum() > 0 else np.nan,
                baseline_under_provisioned_pct=base["under_provisioned_pct"].mean(),
            )
            against = matched[(matched["policy"] == label) & (matched["against"] == baseline)] if len(matched) else matched
            if len(against):
                inside = against.dropna(subset=["against_under_provisioned_pct"])
                row.update(
                    at_equal_cost_workloads=len(inside),
                    under_provisioned_at_equal_cost_pct=inside["under_provisioned_pct"].mean(),
                    baseline_at_equal_cost_pct=inside["against_under_provisioned_pct"].astype(float).mean(),
                )
                worse = inside[inside["under_provisioned_pct"] > inside["against_under_provisioned_pct"].astype(float)]
            else:
                joined = mine.join(base.add_suffix("_baseline"))
                worse = joined[
                    (joined["under_provisioned_pct"] > joined["under_provisioned_pct_baseline"])
                    & (joined["pod_hours"] >= joined["pod_hours_baseline"])
                ].reset_index()
            row["worse_workloads"] = sorted(worse["workload"].tolist())
        rows.append(row)
    return pd.DataFrame(rows)


def from_prometheus(
    url: str,
    queries: Mapping[str, str],
    policies: Sequence[PolicySpec] = ("predictive", "hpa"),
    *,
    range: Any = "14d",
    step: Any = "1m",
    end: Any = None,
    connection: Optional[Mapping[str, Any]] = None,
    timeout: float = 60.0,
    on_error: str = "raise",
    **settings: Any,
) -> FleetResult:
    """:func:`backtest` of every workload of ``queries`` (a workload's name to the PromQL of its
    load), each trace read from the Prometheus at ``url`` over ``range`` ending at ``end``
    (default now), as :func:`leadtime.from_prometheus` reads one (``connection``: its
    ``ca_file``, ``username``, ``headers``...). Traces are read here, then shipped to the
    executor as arrays; a workload that cannot be read raises, or with ``on_error="skip"`` is
    recorded in ``.errors`` (kind ``several-series``, ``no-data``...) and the rest runs."""
    from . import prometheus

    if on_error not in ("raise", "skip"):
        raise BadRequestError(f"on_error is 'raise' or 'skip', not {on_error!r}", "bad-request")
    read, failed = prometheus.traces(url, queries, range=range, step=step, end=end, timeout=timeout, **dict(connection or {}))
    if failed and on_error == "raise":
        name, error = next(iter(failed.items()))
        raise type(error)(f"workload {name}: {error.message}", error.kind) from error
    if not read:
        raise BadRequestError(f"no workload could be read from {url}: {[f'{n}: {e}' for n, e in failed.items()]}", "bad-request")
    result = backtest(read, policies, on_error=on_error, **settings)
    unread = pd.DataFrame([{"workload": n, "kind": e.kind, "message": e.message} for n, e in failed.items()], columns=["workload", "kind", "message"])
    result.errors = pd.concat([unread, result.errors], ignore_index=True) if len(unread) else result.errors
    return result
