"""`leadtime.fleet.backtest` over many workloads: on a real Dask cluster (a scheduler and worker
processes started here), and on the default pool of local processes; the rows are what
`leadtime.backtest` gives for each workload alone, and the summary is what the rows say."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pandas as pd
import pytest

import leadtime
from leadtime.backtest import RESULT_COLUMNS

TIMING = ["policy_us_p50", "policy_us_p99"]
SETTINGS = dict(ready_time="5m", peak_pods=20, warmup="12h", lookback="1d", interval="15m", sweep=True)


def read(path: Path) -> pd.Series:
    """A bundled trace as a Series on 5-minute steps or longer (1-minute ones averaged)."""
    frame = pd.read_csv(path)
    time, value = frame.columns[0], frame.columns[1]
    unix = pd.api.types.is_numeric_dtype(frame[time])
    index = pd.DatetimeIndex(pd.to_datetime(frame[time], unit="s") if unix else pd.to_datetime(frame[time]))
    series = pd.Series(frame[value].to_numpy(dtype=float), index=index)
    if (index[1] - index[0]) < pd.Timedelta("5min"):
        series = series.resample("5min").mean()
    return series


def workloads(traces: List[Path], per_trace: int = 11, days: float = 2.0) -> Dict[str, pd.Series]:
    """Windows of the bundled traces, each scaled differently: `per_trace` of each trace."""
    out = {}
    for path in traces:
        series = read(path)
        span = pd.Timedelta(days=days)
        starts = pd.date_range(series.index[0], series.index[-1] - span, periods=per_trace)
        for k, start in enumerate(starts):
            window = series[start : start + span]
            out[f"{path.stem}-{k}"] = window * (1.0 + 0.25 * k)
    return out


def without_timing(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in TIMING if c in frame.columns]).reset_index(drop=True)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_a_fleet_on_a_dask_cluster(traces: List[Path], dask_client) -> None:
    fleet = workloads(traces)
    assert len(fleet) >= 50
    result = leadtime.fleet.backtest(fleet, ["predictive", "hpa"], executor=dask_client, **SETTINGS)
    rows = result.results
    assert list(rows["workload"].unique()) == list(fleet)  # in the order given
    plain = rows[~rows["sweep"]]
    assert plain.groupby("workload", sort=False)["policy"].apply(list).to_dict() == {w: ["predictive", "hpa", "oracle"] for w in fleet}
    assert rows["sweep"].any() and result.errors.empty
    assert list(rows.columns[2 : 2 + len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    # Both worker processes ran workloads (they imported the package to unpickle them).
    assert all(dask_client.run(lambda: "leadtime._native" in sys.modules).values())

    # Each workload's rows are what a backtest of it alone gives.
    for name in [next(iter(fleet)), list(fleet)[len(fleet) // 2], list(fleet)[-1]]:
        alone = leadtime.backtest(fleet[name], ["predictive", "hpa"], **SETTINGS)
        mine = rows[rows["workload"] == name]
        expected = pd.concat([pd.DataFrame(alone), alone.sweep], ignore_index=True)
        pd.testing.assert_frame_equal(without_timing(mine.drop(columns=["workload", "sweep"])), without_timing(expected), check_dtype=False)
        theirs = result.matched[result.matched["workload"] == name].drop(columns=["workload"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(theirs, alone.matched.reset_index(drop=True), check_dtype=False)

    # The summary is what the rows say.
    summary = result.summary.set_index("policy")
    assert list(summary.index) == ["predictive"]
    by = plain.pivot(index="workload", columns="policy", values="pod_hours")
    assert summary.loc["predictive", "pod_hours_change"] == pytest.approx((by["predictive"] - by["hpa"]).sum())
    assert summary.loc["predictive", "workloads"] == len(fleet)
    against = result.matched[(result.matched["policy"] == "predictive") & (result.matched["against"] == "hpa")].dropna()
    worse = sorted(against[against["under_provisioned_pct"] > against["against_under_provisioned_pct"]]["workload"])
    assert summary.loc["predictive", "worse_workloads"] == worse
    assert summary.loc["predictive", "at_equal_cost_workloads"] == len(against)
    assert summary.loc["predictive", "baseline_at_equal_cost_pct"] == pytest.approx(against["against_under_provisioned_pct"].mean())
    # Scored days: every workload's scored decisions times its step.
    assert result.workload_days == pytest.approx(sum((len(s) * (s.index[1] - s.index[0]) - pd.Timedelta("12h")) / pd.Timedelta(days=1) for s in fleet.values()), rel=0.02)


def test_a_directory_on_local_processes(root: Path, traces: List[Path]) -> None:
    directory = root / "testdata" / "traces"
    settings = dict(ready_time="5m", peak_pods=20, lookback="1d", interval="1h")
    result = leadtime.fleet.backtest(directory, ["hpa", "target-tracking"], baseline="hpa", max_workers=2, **settings)
    assert list(result.results["workload"].unique()) == [p.stem for p in traces]
    alone = leadtime.backtest(traces[0], ["hpa", "target-tracking"], **settings)
    mine = result.results[result.results["workload"] == traces[0].stem].drop(columns=["workload", "sweep"])
    pd.testing.assert_frame_equal(without_timing(mine), without_timing(pd.DataFrame(alone)), check_dtype=False)
    # Without a sweep, a policy is worse where it is short longer and costs no less.
    rows = result.results.pivot(index="workload", columns="policy", values=["under_provisioned_pct", "pod_hours"])
    worse = rows[(rows[("under_provisioned_pct", "target-tracking")] > rows[("under_provisioned_pct", "hpa")]) & (rows[("pod_hours", "target-tracking")] >= rows[("pod_hours", "hpa")])]
    assert result.summary.set_index("policy").loc["target-tracking", "worse_workloads"] == sorted(worse.index)


def test_failed_workloads_raise_or_are_recorded(traces: List[Path]) -> None:
    fleet = {"good": read(traces[0]).iloc[:600], "bad": read(traces[1]).iloc[:600]}
    settings = dict(ready_time="5m", capacity_per_pod={"good": 100.0, "bad": -1.0}, max_workers=1)
    with pytest.raises(leadtime.BadRequestError, match="workload bad: capacity per pod"):
        leadtime.fleet.backtest(fleet, ["hpa"], **settings)
    result = leadtime.fleet.backtest(fleet, ["hpa"], on_error="skip", **settings)
    assert list(result.results["workload"].unique()) == ["good"]
    assert result.errors.to_dict("records") == [{"workload": "bad", "kind": "bad-request", "message": result.errors["message"][0]}]
    assert "capacity per pod" in result.errors["message"][0]
    with pytest.raises(leadtime.BadRequestError, match="baseline"):
        leadtime.fleet.backtest(fleet, ["predictive"], ready_time="5m", peak_pods=20)


def test_a_trace_refused_where_the_fleet_is_called_is_skipped_too(traces: List[Path]) -> None:
    good = read(traces[0]).iloc[:600]
    empty = pd.Series(np.nan, index=good.index, name="empty")
    fleet = {"good": good, "empty": empty}
    settings = dict(ready_time="5m", capacity_per_pod=100.0, max_workers=1)
    with pytest.raises(leadtime.BadRequestError, match="workload empty: "):
        leadtime.fleet.backtest(fleet, ["hpa"], baseline=None, **settings)
    seen = []
    result = leadtime.fleet.backtest(fleet, ["hpa"], baseline=None, on_error="skip", progress=lambda *a: seen.append(a), **settings)
    assert list(result.results["workload"].unique()) == ["good"]
    assert list(result.errors["workload"]) == ["empty"] and result.errors["kind"][0] == "bad-request"
    # Progress: every workload counted once, the failed one among them, ending at the total.
    assert seen[-1] == (2, 1, 2) and [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)


def test_progress_prints_to_stderr(traces: List[Path], capsys: pytest.CaptureFixture[str]) -> None:
    fleet = {f"w{i}": read(traces[0]).iloc[:600] for i in range(3)}
    leadtime.fleet.backtest(fleet, ["hpa"], baseline=None, ready_time="5m", capacity_per_pod=100.0, max_workers=1, chunksize=1, progress=True)
    err = capsys.readouterr().err
    try:
        import tqdm  # noqa: F401  (where installed, the bar is tqdm's)

        assert "3/3" in err, err
    except ImportError:
        assert err.splitlines()[-1] == "fleet: 3/3 workloads (100%), 0 failed", err


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    # A real local Ray cluster (its raylet, GCS and worker processes), small: two CPUs, a
    # modest object store.
    ray.init(num_cpus=2, object_store_memory=100 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_a_fleet_on_ray(traces: List[Path], ray_cluster) -> None:
    fleet = workloads(traces, per_trace=2)
    settings = dict(ready_time="5m", peak_pods=20, lookback="1d", interval="15m")
    executor = leadtime.fleet.RayExecutor()
    assert executor._max_workers == 2  # the cluster's CPUs: the default chunks follow them
    result = leadtime.fleet.backtest(fleet, ["predictive", "hpa"], executor=executor, **settings)
    assert list(result.results["workload"].unique()) == list(fleet) and result.errors.empty
    # The rows are what each workload alone gives, here.
    for name in fleet:
        alone = leadtime.backtest(fleet[name], ["predictive", "hpa"], series=False, **settings)
        mine = result.results[result.results["workload"] == name].drop(columns=["workload", "sweep"])
        pd.testing.assert_frame_equal(without_timing(mine), without_timing(pd.DataFrame(alone)), check_dtype=False)
    # Ray registered the task function once, not once per chunk.
    assert len(executor._remote) == 1
    # Ray's driver took the fault signals when it started: a trap here is still an exception.
    request = {
        "abi_version": 1, "now": 1_700_000_000_000, "workload": {"namespace": "default", "name": "web"},
        "replicas": {"current": 2, "ready": 2, "min": 1, "max": 10}, "ready_times": [], "params": {},
        "metrics": [{"name": "load", "target_per_pod": 10.0, "interval_seconds": 60.0, "end": 1_700_000_000_000, "values": [10.0]}],
    }
    for name in ("divide_by_zero", "load_out_of_bounds"):
        with pytest.raises(leadtime.PolicyError) as caught:
            leadtime.Policy(str(Path(__file__).resolve().parents[2] / "tests" / "adversarial" / f"{name}.wat")).decide(request)
        assert caught.value.kind == "trap"
    # A failing workload comes back as its typed error, through Ray.
    with pytest.raises(leadtime.BadRequestError, match="workload bad: capacity per pod"):
        leadtime.fleet.backtest({"bad": fleet[next(iter(fleet))]}, ["hpa"], executor=executor, ready_time="5m", capacity_per_pod=-1.0)
