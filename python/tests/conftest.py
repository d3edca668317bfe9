"""Shared fixtures: the repository, its bundled traces, and the real `leadtime` CLI to compare with."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable, List

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "testdata" / "traces"
ADVERSARIAL = ROOT / "tests" / "adversarial"


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository's root."""
    return ROOT


@pytest.fixture(scope="session")
def traces() -> List[Path]:
    """The bundled traces (testdata/traces/*.csv)."""
    found = sorted(TRACES.glob("*.csv"))
    assert len(found) >= 5, found
    return found


@pytest.fixture(scope="session")
def cli() -> Path:
    """The `leadtime` binary: $LEADTIME_CLI, else the workspace's debug build (what
    `cargo test --workspace` leaves), built with cargo when missing."""
    given = os.environ.get("LEADTIME_CLI")
    if given:
        return Path(given)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "debug" / "leadtime"
    if not binary.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "leadtime-cli"], cwd=ROOT, check=True)
    return binary


@pytest.fixture(scope="session")
def run_cli(cli: Path) -> Callable[..., dict]:
    """Runs `leadtime ARGS... --json` and returns its parsed output."""

    def run(*args: str) -> dict:
        done = subprocess.run([str(cli), *args, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run
