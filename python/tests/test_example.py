"""The notebook-style example runs end to end and draws its PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_fleet_example_draws_its_pareto_curves(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "pareto.png"
    example = root / "python" / "examples" / "fleet.py"
    done = subprocess.run(
        [sys.executable, str(example), "--workloads", "5", "--days", "2", "--no-dask", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "predictive: worse than the HPA at equal cost on" in done.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
