"""The scaler's resident memory over a load test (scripts/loadtest-keda.sh with SHAPE=quota), as
an SVG chart: memory against time, the phases shaded, the memory limit of the shipped
Deployment drawn across.

    python scripts/plot-loadtest.py target/loadtest-quota.csv docs/figures/loadtest-quota.svg
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LIMIT_MIB = 1024  # serve/deploy/scaler.yaml: resources.limits.memory


def main(source: str, out: str) -> None:
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    t = [float(r["seconds"]) for r in rows]
    rss = [float(r["rss_mib"]) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(t, rss, color="#1f77b4", label="scaler resident memory")
    ax.axhline(LIMIT_MIB, color="#d62728", linestyle="--", label="Deployment limit (1 GiB)")
    # Shade each phase: the backfill and every poll round.
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i]["phase"] != rows[start]["phase"]:
            phase = rows[start]["phase"]
            if phase != "idle":
                ax.axvspan(t[start], t[i - 1], color="#cccccc" if phase == "backfill" else "#ffe0a0", alpha=0.5, lw=0)
                ax.text((t[start] + t[i - 1]) / 2, LIMIT_MIB * 0.05, phase, ha="center", fontsize=8)
            start = i
    ax.set_xlabel("seconds from the scaler's start")
    ax.set_ylabel("MiB")
    ax.set_ylim(0, LIMIT_MIB * 1.1)
    ax.set_title("leadtime serve at the shipped limits' worst case", fontsize=10)
    # Below the plot, so that no line is hidden under it.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
