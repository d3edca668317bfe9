"""Fleet throughput: workload-days backtested per second on a local Dask cluster of 1 and of 2
worker processes (one thread each), median of a few runs. The numbers go in docs/performance.md.

    python python/bench/fleet_bench.py [--workloads 40] [--runs 3] [--workers 1 2]

Each workload is a week of a bundled trace at 5-minute steps (predictive and the HPA, no sweep,
a 5-minute ready time). A warm-up run first lets each worker compile the policies once (the
disk cache would make that cheap on a second start), so the figure is the steady state.

Each run also prints the share of the VM's CPU time the hypervisor gave to others (`steal` in
/proc/stat): on a shared host it is what keeps 2 workers under 2x.

A backtest runs its policies on as many threads as its process may use cores; each worker is
pinned to its own core (Linux), so that "1 worker" is one core's throughput and the ratio is
the scaling from one core to two. `--no-pin` leaves them free.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import pandas as pd

import leadtime

TRACES = Path(__file__).resolve().parents[2] / "testdata" / "traces"


def load(path: Path) -> pd.Series:
    """A bundled CSV as a Series (1-minute traces averaged to 5 minutes)."""
    frame = pd.read_csv(path)
    time_col, value = frame.columns[0], frame.columns[1]
    unix = pd.api.types.is_numeric_dtype(frame[time_col])
    index = pd.DatetimeIndex(pd.to_datetime(frame[time_col], unit="s") if unix else pd.to_datetime(frame[time_col]))
    series = pd.Series(frame[value].to_numpy(dtype=float), index=index)
    return series.resample("5min").mean() if index[1] - index[0] < pd.Timedelta("5min") else series


def fleet_of(count: int, days: float) -> Dict[str, pd.Series]:
    """`count` windows of `days` days cut from the bundled traces (all at 5-minute steps)."""
    sources = [s for s in (load(p) for p in sorted(TRACES.glob("*.csv"))) if s.index[1] - s.index[0] == pd.Timedelta("5min")]
    out = {}
    for i in range(count):
        series = sources[i % len(sources)]
        span = pd.Timedelta(days=days)
        room = (series.index[-1] - span) - series.index[0]
        start = series.index[0] + room * (((i // len(sources)) * 0.37) % 1.0)
        out[f"w{i:03d}"] = series[start : start + span] * (1.0 + 0.05 * i)
    return out


def pin_process(core: int) -> None:
    """Pins every thread of this process to `core` (threads started later inherit it)."""
    set_affinity({core})


def set_affinity(cores: set) -> None:
    """Sets the affinity of every live thread of this process (one may end meanwhile)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except ProcessLookupError:
            pass


def steal_ticks() -> int:
    """Clock ticks the hypervisor gave the VM's CPUs to others (Linux /proc/stat `steal`)."""
    try:
        with open("/proc/stat") as stat:
            return int(stat.readline().split()[8])
    except (OSError, IndexError, ValueError):
        return 0


def steal_pct(ticks: int, seconds: float) -> float:
    """Stolen time as a share of the VM's CPU time over `seconds`."""
    return 100.0 * ticks / (os.sysconf("SC_CLK_TCK") * seconds * (os.cpu_count() or 1))


def pin(client) -> None:
    """Pins each of the client's worker processes to its own core (Linux only)."""
    cores = sorted(os.sched_getaffinity(0))
    for i, address in enumerate(sorted(client.scheduler_info()["workers"])):
        client.run(pin_process, cores[i % len(cores)], workers=[address])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=40)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunksize", type=int, default=None, help="workloads per task (default: fleet.backtest's)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin each worker to its own core")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    fleet = fleet_of(args.workloads, args.days)
    print(f"load average before: {os.getloadavg()}")
    settings = dict(ready_time="5m", peak_pods=20, chunksize=args.chunksize)
    figures: Dict[int, float] = {}
    for workers in args.workers:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
            if not args.no_pin:
                pin(client)
            leadtime.fleet.backtest(dict(list(fleet.items())[: 2 * workers]), ["predictive", "hpa"], executor=client, **settings)
            rates: List[float] = []
            for _ in range(args.runs):
                cpu = sum(client.run(time.process_time).values())
                stolen = steal_ticks()
                start = time.perf_counter()
                result = leadtime.fleet.backtest(fleet, ["predictive", "hpa"], executor=client, **settings)
                took = time.perf_counter() - start
                cpu = sum(client.run(time.process_time).values()) - cpu
                stolen = steal_ticks() - stolen
                rates.append(result.workload_days / took)
                print(
                    f"{workers} worker(s): {result.workload_days:.0f} workload-days in {took:.2f} s = {rates[-1]:.1f}/s; "
                    f"workers' CPU {cpu:.2f} s = {1000 * cpu / result.workload_days:.1f} ms per workload-day; "
                    f"steal {steal_pct(stolen, took):.0f}%",
                    flush=True,
                )
            figures[workers] = statistics.median(rates)
    print(f"load average after: {os.getloadavg()}")
    # The same work in this process on one core, without Dask: the per-core rate the workers
    # are measured against (what distribution costs).
    before = os.sched_getaffinity(0)
    pin_process(min(before))
    rates = []
    for _ in range(args.runs):
        stolen = steal_ticks()
        start = time.perf_counter()
        days = sum(leadtime.backtest(s, ["predictive", "hpa"], series=False, ready_time="5m", peak_pods=20).steps * 300 / 86_400 for s in fleet.values())
        took = time.perf_counter() - start
        stolen = steal_ticks() - stolen
        rates.append(days / took)
        print(f"in process, one core: {days:.0f} workload-days in {took:.2f} s = {rates[-1]:.1f}/s; steal {steal_pct(stolen, took):.0f}%", flush=True)
    set_affinity(before)
    print(f"median, in process on one core: {statistics.median(rates):.1f} workload-days/s")
    for workers, rate in figures.items():
        print(f"median, {workers} worker(s): {rate:.1f} workload-days/s")
    if len(figures) >= 2:
        few, many = min(figures), max(figures)
        print(f"ratio {many} vs {few} worker(s): {figures[many] / figures[few]:.2f}x")


if __name__ == "__main__":
    main()
