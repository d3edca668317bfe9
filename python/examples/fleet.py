"""A fleet backtest as a notebook would run it: workloads cut from the bundled traces, backtested on
a local Dask cluster (or local processes), then each policy's Pareto curve over the fleet --
under-provisioned time against cost vs the oracle -- drawn with matplotlib to a PNG.

    python python/examples/fleet.py [--workloads 24] [--days 4] [--out fleet-pareto.png] [--no-dask]

Each cell below is one step; paste them into a notebook as they are.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict

import matplotlib

matplotlib.use("Agg")  # files, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import leadtime  # noqa: E402

TRACES = Path(__file__).resolve().parents[2] / "testdata" / "traces"


def load(path: Path) -> pd.Series:
    """A bundled CSV as a Series with a DatetimeIndex (1-minute traces averaged to 5 minutes)."""
    frame = pd.read_csv(path)
    time, value = frame.columns[0], frame.columns[1]
    unix = pd.api.types.is_numeric_dtype(frame[time])
    index = pd.DatetimeIndex(pd.to_datetime(frame[time], unit="s") if unix else pd.to_datetime(frame[time]))
    series = pd.Series(frame[value].to_numpy(dtype=float), index=index)
    return series.resample("5min").mean() if index[1] - index[0] < pd.Timedelta("5min") else series


def fleet_of(count: int, days: float = 4.0) -> Dict[str, pd.Series]:
    """`count` workloads: windows of `days` days of the bundled traces, each scaled differently."""
    sources = [load(p) for p in sorted(TRACES.glob("*.csv"))]
    out = {}
    for i in range(count):
        series = sources[i % len(sources)]
        span = pd.Timedelta(days=days)
        room = (series.index[-1] - span) - series.index[0]
        start = series.index[0] + room * ((i // len(sources)) / max(1, count // len(sources)))
        out[f"w{i:03d}"] = series[start : start + span] * (1.0 + 0.1 * i)
    return out


def pareto(result: leadtime.fleet.FleetResult) -> pd.DataFrame:
    """Each sweep point over the fleet: its pod-hours summed over the oracle's (the cost), and its
    under-provisioned time, the mean over workloads."""
    sweep = result.results[result.results["sweep"]].copy()
    sweep["base"] = sweep["policy"].str.split(" ").str[0]
    return (
        sweep.groupby(["base", "policy"])
        .agg(pod_hours=("pod_hours", "sum"), oracle=("oracle_pod_hours", "sum"), under=("under_provisioned_pct", "mean"))
        .assign(cost_vs_oracle=lambda f: f["pod_hours"] / f["oracle"])
        .reset_index()
        .sort_values(["base", "cost_vs_oracle"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=24)
    parser.add_argument("--days", type=float, default=4.0, help="days of trace per workload")
    parser.add_argument("--out", type=Path, default=Path("fleet-pareto.png"))
    parser.add_argument("--no-dask", action="store_true", help="local processes instead of a Dask cluster")
    args = parser.parse_args()

    # The fleet: a mapping of workload name to a pandas Series.
    fleet = fleet_of(args.workloads, args.days)

    # Backtest it: on a local Dask cluster (a real one takes `distributed.Client("tcp://...")`).
    settings = dict(ready_time="5m", peak_pods=20, warmup="1d", sweep=True)
    if args.no_dask:
        result = leadtime.fleet.backtest(fleet, ["predictive", "hpa"], **settings)
    else:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
            result = leadtime.fleet.backtest(fleet, ["predictive", "hpa"], executor=client, **settings)

    # The summary per policy, against the HPA.
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(result.summary.drop(columns=["worse_workloads"]).to_string(index=False))
    for row in result.summary.itertuples():
        print(f"{row.policy}: worse than the HPA at equal cost on {len(row.worse_workloads)} of {row.workloads}: {row.worse_workloads}")

    # The Pareto curves: under-provisioned time against cost, per policy, over the fleet.
    curves = pareto(result)
    defaults = result.results[~result.results["sweep"] & (result.results["policy"] != "oracle")]
    points = defaults.groupby("policy").agg(pod_hours=("pod_hours", "sum"), oracle=("oracle_pod_hours", "sum"), under=("under_provisioned_pct", "mean"))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (base, curve) in enumerate(curves.groupby("base")):
        color = f"C{i}"
        ax.plot(curve["cost_vs_oracle"], curve["under"], marker="o", color=color, label=f"{base} (sweep)")
        if base in points.index:
            p = points.loc[base]
            ax.scatter([p["pod_hours"] / p["oracle"]], [p["under"]], marker="*", s=220, color=color, edgecolor="black", zorder=3, label=f"{base} (default)")
    ax.set_xlabel("cost vs the oracle (pod-hours over the fleet)")
    ax.set_ylabel("under-provisioned time, mean over workloads (%)")
    ax.set_title(f"{len(fleet)} workloads, 5-minute ready time: lower left is better")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out} ({result.workload_days:.0f} workload-days)")


if __name__ == "__main__":
    main()
