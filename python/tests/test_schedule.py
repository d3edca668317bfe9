"""`leadtime.backtest(..., schedule=...)`: the CLI's `--schedule` (docs/schedules.md) from a file
or a dict; each policy with and without it, and what the bounds do to the decisions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Callable, Dict

import pandas as pd
import pytest

import leadtime
from test_backtest import comparable, records

FLAGS = ["--policy", "predictive", "--policy", "hpa", "--ready-time", "5m", "--peak-pods", "20", "--warmup", "2d"]
KWARGS: Dict[str, Any] = dict(policies=["predictive", "hpa"], ready_time="5m", peak_pods=20, warmup="2d")


@pytest.fixture(scope="module")
def taxi(root: Path) -> Path:
    return root / "testdata" / "traces" / "nyc_taxi.csv"


@pytest.fixture(scope="module")
def example(root: Path) -> Path:
    """The bundled example: weekday evenings at 12 pods or more, a 3x event on 2014-07-22."""
    return root / "examples" / "schedule.yaml"


def test_a_schedule_file_gives_the_clis_rows(taxi: Path, example: Path, run_cli: Callable[..., dict]) -> None:
    expected = run_cli("backtest", "--trace", str(taxi), *FLAGS, "--schedule", str(example))
    frame = leadtime.backtest(taxi, schedule=example, **KWARGS)
    assert comparable(frame.cli_json()) == comparable(expected)
    assert records(frame) == comparable(expected)["results"]
    assert list(frame["policy"]) == ["predictive", "predictive+schedule", "hpa", "hpa+schedule", "oracle"]
    # With events, every row says how it did while the event's load was under way.
    assert frame["event_under_provisioned_pct"].notna().all()


def test_a_dict_is_the_same_schedule(taxi: Path, example: Path) -> None:
    from_file = leadtime.backtest(taxi, schedule=str(example), series=False, **KWARGS)
    as_dict = {
        "timezone": "UTC",
        "windows": [{"name": "weekday-evenings", "cron": "* 17-21 * * 1-5", "min": 12}],
        # Python times and durations are taken as they are (a zone is required).
        "events": [
            {
                "name": "launch",
                "start": dt.datetime(2014, 7, 22, 20, 0, tzinfo=dt.timezone.utc),
                "duration": pd.Timedelta("2h"),
                "factor": 3,
            }
        ],
    }
    from_dict = leadtime.backtest(taxi, schedule=as_dict, series=False, **KWARGS)
    assert comparable(from_dict.cli_json()) == comparable(from_file.cli_json())


def test_the_bounds_hold_in_the_scheduled_rows_only(taxi: Path) -> None:
    floor = {"windows": [{"name": "evenings", "cron": "* 17-21 * * *", "min": 15}]}
    frame = leadtime.backtest(taxi, schedule=floor, **KWARGS)
    series = frame.series()
    evening = series["time"].dt.hour.between(17, 21)
    for policy in ("predictive", "hpa"):
        scheduled = series[(series["policy"] == f"{policy}+schedule") & evening]
        unscheduled = series[(series["policy"] == policy) & evening]
        assert len(scheduled) > 0 and (scheduled["replicas"] >= 15).all()
        # Without the window the policy goes below the floor on quiet evenings: the floor costs.
        assert (unscheduled["replicas"] < 15).any()
    pod_hours = frame.set_index("policy")["pod_hours"]
    assert pod_hours["hpa+schedule"] > pod_hours["hpa"]
    # Without events there is no event column.
    assert "event_under_provisioned_pct" not in frame.columns


@pytest.mark.parametrize(
    "schedule,needle",
    [
        ({"windows": [{"name": "w", "cron": "* 9-17 * * 1-5"}]}, "give a `min`, a `max` or both"),
        ({"windows": [{"name": "w", "cron": "* 9-17 * *", "min": 2}]}, "windows[0]"),
        ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"events": [{"name": "e", "start": dt.datetime(2014, 7, 22, 20), "duration": "2h", "min": 3}]}, "no time zone"),
        ({"windows": [{"name": "w", "cron": "* * * * *", "min": 2, "mni": 3}]}, "mni"),
        (42, "a leadtime.Schedule, a dict or a YAML file"),
        ("no-such-schedule.yaml", "no-such-schedule.yaml"),
    ],
)
def test_bad_schedules_are_bad_requests_naming_it(taxi: Path, schedule: Any, needle: str) -> None:
    with pytest.raises(leadtime.BadRequestError) as caught:
        leadtime.backtest(taxi, schedule=schedule, **KWARGS)
    assert caught.value.kind == "bad-request"
    assert "schedule" in str(caught.value) and needle in str(caught.value), str(caught.value)


def test_a_bad_file_names_its_line(taxi: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("timezone: UTC\nwindows:\n  - name: w\n    cron: '* 9-17 * * 1-5'\n    min: lots\n", encoding="utf-8")
    with pytest.raises(leadtime.BadRequestError) as caught:
        leadtime.backtest(taxi, schedule=path, **KWARGS)
    assert str(path) in str(caught.value) and "line 5" in str(caught.value), str(caught.value)


def test_a_schedule_is_checked_once_and_pickles_as_its_text(example: Path, tmp_path: Path) -> None:
    import pickle

    schedule = leadtime.Schedule.from_file(example)
    assert "weekday-evenings" in schedule.text
    assert pickle.loads(pickle.dumps(schedule)) == schedule
    assert leadtime.Schedule.parse(schedule.text) == schedule
    with pytest.raises(leadtime.BadRequestError, match=r"windows\[0\]"):
        leadtime.Schedule({"windows": [{"name": "w", "cron": "* 9-17 * *", "min": 2}]})


def test_a_fleet_runs_each_workload_with_and_without_it(root: Path, example: Path, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    traces = {"taxi": root / "testdata" / "traces" / "nyc_taxi.csv"}
    with ThreadPoolExecutor(1) as pool:
        fleet = leadtime.fleet.backtest(traces, schedule=str(example), executor=pool, **KWARGS)
    single = leadtime.backtest(traces["taxi"], schedule=example, series=False, **KWARGS)
    rows = fleet.results.drop(columns=["workload", "sweep"])
    assert list(rows["policy"]) == list(single["policy"])
    assert rows["pod_hours"].tolist() == single["pod_hours"].tolist()
    # The summary has both rows of each policy against the baseline (the HPA without it).
    assert list(fleet.summary["policy"]) == ["predictive", "predictive+schedule", "hpa+schedule"]
    # A bad file fails once, before any work is sent, naming the file.
    bad = tmp_path / "bad.yaml"
    bad.write_text("windows:\n  - name: w\n    cron: '* * * * *'\n", encoding="utf-8")
    with pytest.raises(leadtime.BadRequestError, match="bad.yaml"):
        leadtime.fleet.backtest(traces, schedule=bad, executor=pool, **KWARGS)
