"""Traces and fleets straight from a real Prometheus (#31): history written with `promtool tsdb
create-blocks-from openmetrics` (three days, one with a two-hour gap, one query giving two
series), read by the client the scaler and the CLI use, and compared with the CLI reading the
same Prometheus."""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Tuple

import numpy as np
import pandas as pd
import pytest

import leadtime

DAYS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, int]]:
    """A Prometheus holding the history; its URL and the last point's Unix time."""
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            pytest.exit(f"`{tool}` is not on PATH: run `make setup`", returncode=3)
    d = tmp_path_factory.mktemp("prometheus")
    end = int(time.time()) // 60 * 60 - 3600
    lines = ["# TYPE load gauge"]
    minutes = DAYS * 1440
    for i in range(minutes + 1):
        t = end - (minutes - i) * 60
        day = (t % 86400) / 86400
        lines.append(f'load{{workload="web"}} {200 + 100 * math.sin(2 * math.pi * day):.3f} {t}')
        if not 600 <= i < 720:  # two hours missing
            lines.append(f'load{{workload="api"}} {50 + (i % 11)} {t}')
    lines.append("# TYPE split gauge")
    for pod in ("a", "b"):
        lines += [f'split{{pod="{pod}"}} 1 {end - k * 60}' for k in range(60)]
    lines.append("# EOF")
    (d / "history.om").write_text("\n".join(lines) + "\n")
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "history.om", "data"], cwd=d, check=True, capture_output=True)
    (d / "prometheus.yml").write_text("scrape_configs: []\n")
    port = _free_port()
    process = subprocess.Popen(
        ["prometheus", "--config.file=prometheus.yml", "--storage.tsdb.path=data", "--storage.tsdb.retention.time=30d", f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        cwd=d,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).read()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "prometheus did not start"
                time.sleep(0.2)
        yield url, end
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_trace_from_prometheus_is_the_clis(prometheus: Tuple[str, int], cli: Path, tmp_path: Path) -> None:
    url, end = prometheus
    trace = leadtime.from_prometheus(url, 'load{workload="api"}', range=f"{DAYS}d", step="1m", end=end, name="api.csv")
    # Two hours missing, less the five minutes Prometheus carries a last sample over.
    assert trace.gaps == 115, trace.gaps
    # The CLI reads the same points through the same client: its saved trace is this one.
    saved = tmp_path / "api.csv"
    subprocess.run(
        [str(cli), "backtest", "--prometheus", url, "--query", 'load{workload="api"}', "--range", f"{DAYS}d", "--end", str(end), "--save-trace", str(saved), "--policy", "hpa", "--ready-time", "5m", "--peak-pods", "20"],
        check=True,
        capture_output=True,
    )
    from_file = leadtime.load_trace(saved)
    assert (from_file.start_ms, from_file.step_ms, from_file.gaps) == (trace.start_ms, trace.step_ms, trace.gaps)
    np.testing.assert_array_equal(from_file.values, trace.values)
    # And a backtest of it is the CLI's.
    ours = leadtime.backtest(trace, ["hpa"], ready_time="5m", peak_pods=20)
    theirs = leadtime.backtest(saved, ["hpa"], ready_time="5m", peak_pods=20)
    columns = ["policy", "under_provisioned_pct", "pod_hours", "scale_events"]
    pd.testing.assert_frame_equal(pd.DataFrame(ours)[columns], pd.DataFrame(theirs)[columns])


def test_a_fleet_from_prometheus_records_what_cannot_be_read(prometheus: Tuple[str, int]) -> None:
    url, end = prometheus
    queries = {"web": 'load{workload="web"}', "api": 'load{workload="api"}', "split": "split"}
    settings = dict(range=f"{DAYS}d", end=end, ready_time="5m", capacity_per_pod=20.0, max_workers=1, baseline="hpa")
    with pytest.raises(leadtime.PrometheusError, match="workload split: .*returned 2 series"):
        leadtime.fleet.from_prometheus(url, queries, ["predictive", "hpa"], **settings)
    result = leadtime.fleet.from_prometheus(url, queries, ["predictive", "hpa"], on_error="skip", **settings)
    assert sorted(result.results["workload"].unique()) == ["api", "web"]
    assert result.errors.to_dict("records")[0]["workload"] == "split"
    assert result.errors["kind"][0] == "several-series"
    # Each workload's rows are its own backtest's.
    alone = leadtime.backtest(leadtime.from_prometheus(url, queries["web"], range=f"{DAYS}d", end=end, name="web"), ["predictive", "hpa"], ready_time="5m", capacity_per_pod=20.0)
    mine = result.results[result.results["workload"] == "web"]
    assert list(mine["under_provisioned_pct"]) == list(pd.DataFrame(alone)["under_provisioned_pct"])


def test_prometheus_errors_say_which() -> None:
    with pytest.raises(leadtime.PrometheusError) as caught:
        leadtime.from_prometheus(f"http://127.0.0.1:{_free_port()}", "up", range="1h", timeout=5)
    assert caught.value.kind == "unreachable", caught.value
    with pytest.raises(leadtime.BadRequestError, match="unknown connection settings"):
        leadtime.from_prometheus("http://127.0.0.1:1", "up", pasword_file="x")
    with pytest.raises(leadtime.BadRequestError, match="no time zone"):
        leadtime.from_prometheus("http://127.0.0.1:1", "up", end="2026-01-01 00:00")
