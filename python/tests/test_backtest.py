"""`leadtime.backtest` on the bundled traces gives what `leadtime backtest --json` gives for the
same flags: the same rows, sweep and comparison at equal cost, the call timings aside."""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import pandas as pd
import pytest

import leadtime

TIMING = ("policy_us_p50", "policy_us_p99")


@pytest.fixture(scope="module")
def small(root: Path) -> Path:
    """The shortest bundled trace (two weeks at 5 minutes)."""
    return root / "testdata" / "traces" / "art_daily_small_noise.csv"


def comparable(out: Dict[str, Any]) -> Dict[str, Any]:
    """A `--json` object without the call timings (the only fields that vary run to run)."""
    out = dict(out)
    for key in ("results", "sweep"):
        if key in out:
            out[key] = [{k: v for k, v in row.items() if k not in TIMING} for row in out[key]]
    return out


def records(frame: pd.DataFrame) -> List[Dict[str, Any]]:
    """A frame's rows as JSON-like dicts (NaN as None, NumPy numbers as Python's)."""
    rows = []
    for row in frame.to_dict("records"):
        clean = {}
        for k, v in row.items():
            if k in TIMING:
                continue
            if isinstance(v, float) and math.isnan(v):
                v = None
            clean[k] = v.item() if hasattr(v, "item") else v
        rows.append(clean)
    return rows


# (trace, CLI flags, the same as leadtime.backtest's arguments)
CASES: List[Tuple[str, List[str], Dict[str, Any]]] = [
    (
        name,
        ["--policy", "predictive", "--policy", "hpa", "--ready-time", "5m", "--peak-pods", "20", "--lookback", "2d"],
        dict(policies=["predictive", "hpa"], ready_time="5m", peak_pods=20, lookback="2d"),
    )
    for name in ["nyc_taxi", "art_daily_small_noise", "crane_dsp_input0", "elb_request_count_8c0756", "Twitter_volume_AMZN"]
] + [
    (
        "art_daily_small_noise",
        ["--policy", "predictive", "--policy", "hpa", "--ready-time", "5m", "--peak-pods", "20", "--warmup", "2d", "--sweep", "--lookback", "2d"],
        dict(policies=["predictive", "hpa"], ready_time=300, peak_pods=20, warmup=pd.Timedelta("2D"), sweep=True, lookback=172800),
    ),
    (
        "elb_request_count_8c0756",
        [
            "--policy", "phpa=holt-winters", "--param", "phpa:alpha=0.9", "--policy", "target-tracking",
            "--pods-at-quantile", "0.99:20", "--ready-time-dist", "lognormal:2m,5m", "--seed", "7", "--lookback", "2d",
        ],
        dict(
            policies=[("phpa", "holt-winters"), "target-tracking"],
            params={"phpa": {"alpha": 0.9}},
            pods_at_quantile=(0.99, 20),
            ready_time_dist="lognormal:2m,5m",
            seed=7,
            lookback="2d",
        ),
    ),
    (
        "crane_dsp_input0",
        [
            "--policy", "hpa", "--policy", "tests/adversarial/ok_fixed.wat", "--capacity-per-pod", "5",
            "--interval", "5m", "--ready-time", "90s", "--target-utilization", "0.8", "--min-replicas", "2",
            "--max-replicas", "40", "--lookback", "1d",
        ],
        dict(
            policies=["hpa", "tests/adversarial/ok_fixed.wat"],
            capacity_per_pod=5,
            interval="5m",
            ready_time=90,
            target_utilization=0.8,
            min_replicas=2,
            max_replicas=40,
            lookback=pd.Timedelta("1D"),
        ),
    ),
]


@pytest.mark.parametrize("trace,flags,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_results_equal_the_cli(root: Path, run_cli: Callable[..., dict], trace: str, flags: List[str], kwargs: Dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(root)  # the .wat path is relative, as the CLI's
    path = root / "testdata" / "traces" / f"{trace}.csv"
    report = ["--report", str(tmp_path / "cli.html")] if kwargs.get("sweep") else []
    expected = run_cli("backtest", "--trace", str(path), *flags, *report)
    frame = leadtime.backtest(path, **kwargs)
    assert comparable(frame.cli_json()) == comparable(expected)
    # The DataFrame holds the same rows, with the contract's columns first and in order.
    assert records(frame) == comparable(expected)["results"]
    assert frame["policy"].iloc[-1] == "oracle"
    assert frame.steps == expected["steps"] and frame.trace_name == expected["trace"] == path.name
    if kwargs.get("sweep"):
        assert records(frame.sweep) == comparable(expected)["sweep"]
        assert records(frame.matched) == expected["matched"]
        assert set(frame.matched["against"]) == {"predictive", "hpa"}
        # The same HTML report as the CLI's, but for the call timings.
        written = frame.report(tmp_path / "py.html")
        timings = re.compile(r"<td>\d+/\d+</td>")  # the call p50/p99 cells
        ours = timings.sub("<td>t</td>", written.read_text(encoding="utf-8"))
        theirs = timings.sub("<td>t</td>", (tmp_path / "cli.html").read_text(encoding="utf-8"))
        assert "<svg" in ours and "predictive" in ours
        assert ours == theirs
    else:
        assert frame.sweep is None and frame.matched is None


def test_columns_are_the_contracts_in_order(small: Path) -> None:
    from leadtime.backtest import RESULT_COLUMNS

    frame = leadtime.backtest(small, ["hpa"], ready_time="2m", peak_pods=10)
    assert list(frame.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert frame["scale_events"].dtype.kind == "i"


def _read(path: Path) -> pd.Series:
    frame = pd.read_csv(path)
    time, value = frame.columns[0], frame.columns[1]
    index = pd.to_datetime(frame[time], unit="s") if pd.api.types.is_numeric_dtype(frame[time]) else pd.to_datetime(frame[time])
    return pd.Series(frame[value].to_numpy(dtype=float), index=pd.DatetimeIndex(index), name=path.name)


@pytest.mark.parametrize("trace", ["nyc_taxi", "art_daily_small_noise"])
def test_series_and_arrays_give_the_csvs_results(root: Path, trace: str) -> None:
    path = root / "testdata" / "traces" / f"{trace}.csv"
    settings = dict(policies=["hpa"], ready_time="5m", peak_pods=20, lookback="1d")
    from_csv = comparable(leadtime.backtest(path, **settings).cli_json())
    series = _read(path)
    assert comparable(leadtime.backtest(series, **settings).cli_json()) == from_csv
    # A zone-aware index is the same instants.
    eastern = series.tz_localize("UTC").tz_convert("America/New_York")
    assert comparable(leadtime.backtest(eastern, **settings).cli_json()) == from_csv
    # A DataFrame with a time column.
    frame = pd.DataFrame({"when": series.index, "load": series.to_numpy()})
    assert comparable(leadtime.backtest(frame, time_column="when", name=path.name, **settings).cli_json()) == from_csv
    # A NumPy array with its step, from its start (the bundled traces have no gaps).
    step = series.index[1] - series.index[0]
    array = leadtime.backtest(series.to_numpy(), step=step, start=series.index[0], name=path.name, **settings)
    assert comparable(array.cli_json()) == from_csv


def test_gaps_in_a_series_are_gaps(small: Path) -> None:
    series = _read(small)
    holed = series.copy()
    holed.iloc[100:110] = np.nan
    trace = leadtime.load_trace(holed)
    assert trace.gaps == 10 and len(trace) == len(series)
    assert np.isnan(trace.values[100:110]).all()
    dropped = leadtime.load_trace(holed.dropna())
    np.testing.assert_array_equal(dropped.values, trace.values)


def test_series_are_per_decision(small: Path) -> None:
    frame = leadtime.backtest(small, ["hpa"], ready_time="5m", peak_pods=20)
    series = frame.series()
    assert set(series["policy"]) == {"hpa", "oracle"}
    hpa = series[series["policy"] == "hpa"]
    assert len(hpa) == frame.steps
    assert (hpa["replicas"] >= 1).all() and hpa["time"].is_monotonic_increasing
    # The mean of the replicas over equal intervals is the row's time-weighted mean.
    assert hpa["replicas"].mean() == pytest.approx(frame.loc[0, "mean_replicas"], rel=0.02)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(ready_time="5m"), "capacity_per_pod, peak_pods, pods_at_quantile"),
        (dict(peak_pods=20), "ready_time, ready_time_dist, ready_times"),
        (dict(peak_pods=20, ready_time="5 parsecs"), "ready_time"),
        (dict(peak_pods=20, ready_time="5m", warmup="400d"), "warmup"),
        (dict(capacity_per_pod=-1, ready_time="5m"), "capacity per pod"),
        (dict(peak_pods=20, ready_time="5m", policies=["=hpa"]), "NAME=POLICY"),
    ],
)
def test_bad_settings_are_bad_requests(small: Path, kwargs: Dict[str, Any], needle: str) -> None:
    kwargs.setdefault("policies", ["hpa"])
    with pytest.raises(leadtime.BadRequestError) as caught:
        leadtime.backtest(small, **kwargs)
    assert caught.value.kind == "bad-request"
    assert needle in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_bad_traces_name_the_point() -> None:
    times = ["00:00:00", "00:01:00", "00:02:00", "00:02:30", "00:04:00", "00:05:00"]
    index = pd.to_datetime([f"2024-01-01 {t}" for t in times])
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    with pytest.raises(leadtime.BadRequestError, match=r"load:4: time is 30s off the trace's 60s grid.*resample=\"STEP\" in Python"):
        leadtime.load_trace(pd.Series(values, index=index, name="load"))
    with pytest.raises(leadtime.BadRequestError, match="must be a finite number"):
        leadtime.load_trace(np.array([1.0, -2.0]), step="1m")
    with pytest.raises(leadtime.BadRequestError, match="DatetimeIndex"):
        leadtime.load_trace(pd.Series([1.0, 2.0]))
    # A DataFrame as read_csv gives it: its time column is found as the CLI finds it.
    frame = pd.DataFrame({"timestamp": index, "load": values})
    found = leadtime.load_trace(frame, resample="1m:max")
    np.testing.assert_array_equal(found.values, trace_values := [1.0, 2.0, 4.0, np.nan, 5.0, 6.0])
    named = pd.DataFrame({"when": index, "load": values})
    np.testing.assert_array_equal(leadtime.load_trace(named, resample="1m:max").values, trace_values)
    text = pd.DataFrame({"time": [str(t) for t in index], "load": values})
    np.testing.assert_array_equal(leadtime.load_trace(text, resample="1m:max").values, trace_values)
    # A missing time is named as such, with its row, not as a huge negative number.
    with pytest.raises(leadtime.BadRequestError, match=r"row 2 has no time \(NaT; 1 such rows\)"):
        leadtime.load_trace(pd.DataFrame({"timestamp": list(index[:2]) + [pd.NaT] + list(index[3:]), "load": values}))
    # Where the time column cannot be found, the error names time_column= and the columns seen.
    for ambiguous in [pd.DataFrame({"a": index, "b": index, "load": values}), pd.DataFrame({"x": values, "load": values})]:
        with pytest.raises(leadtime.BadRequestError, match=r"pass time_column= \(columns: \["):
            leadtime.load_trace(ambiguous)
    with pytest.raises(leadtime.BadRequestError, match="no such file|No such file"):
        leadtime.load_trace("missing.csv")
    # Resampling takes what the grid check refuses.
    trace = leadtime.load_trace(pd.Series(values, index=index, name="load"), resample="1m:max")
    assert trace.step_ms == 60_000 and trace.gaps == 1
    np.testing.assert_array_equal(trace.values, [1.0, 2.0, 4.0, np.nan, 5.0, 6.0])


def test_unknown_policy_is_a_typed_policy_error(small: Path, cli: Path) -> None:
    with pytest.raises(leadtime.PolicyError) as caught:
        leadtime.backtest(small, ["no-such-policy"], ready_time="5m", peak_pods=20)
    done = subprocess.run([str(cli), "backtest", "--trace", str(small), "--policy", "no-such-policy", "--ready-time", "5m", "--peak-pods", "20"], capture_output=True, text=True)
    assert done.returncode != 0
    assert f"{caught.value.kind}:" in done.stderr
    assert caught.value.kind == "unknown-policy"


def test_traces_pickle_as_their_grid(small: Path) -> None:
    import pickle

    trace = leadtime.load_trace(small)
    back = pickle.loads(pickle.dumps(trace))
    assert (back.name, back.start_ms, back.step_ms, len(back)) == (trace.name, trace.start_ms, trace.step_ms, len(trace))
    np.testing.assert_array_equal(back.values, trace.values)


CTRL_C = """
import sys
import numpy as np
import leadtime

# Sixty days at one minute: 86,400 decisions of the predictive policy, a minute or more of work.
values = 200 + 100 * np.sin(np.arange(60 * 1440) * 2 * np.pi / 1440)
trace = leadtime.load_trace(values, step="1m", start="2026-01-01T00:00:00Z")
print("started", flush=True)
try:
    leadtime.backtest(trace, ["predictive", "hpa"], ready_time="5m", peak_pods=20, sweep=True)
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    # The interpreter carries on, and the next backtest runs whole.
    small = leadtime.load_trace(values[:2880], step="1m", start="2026-01-01T00:00:00Z")
    rows = leadtime.backtest(small, ["hpa"], ready_time="5m", peak_pods=20)
    print("again", len(rows), flush=True)
"""


def test_ctrl_c_stops_a_backtest_at_once(root: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CTRL_C], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
        # Before: KeyboardInterrupt came only when the run had ended, its result thrown away.
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert "interrupted" in out and "finished" not in out, (out, err)
    assert "again 2" in out, (out, err)


def test_threads_change_how_fast_not_what(root: Path) -> None:
    trace = root / "testdata" / "traces" / "art_daily_small_noise.csv"
    columns = ["policy", "under_provisioned_pct", "pod_hours", "scale_events"]
    one = pd.DataFrame(leadtime.backtest(trace, ["predictive", "hpa"], ready_time="5m", peak_pods=20, threads=1))[columns]
    every = pd.DataFrame(leadtime.backtest(trace, ["predictive", "hpa"], ready_time="5m", peak_pods=20))[columns]
    pd.testing.assert_frame_equal(one, every)
    with pytest.raises(leadtime.BadRequestError, match="threads must be 1 or more"):
        leadtime.backtest(trace, ["hpa"], ready_time="5m", peak_pods=20, threads=0)
