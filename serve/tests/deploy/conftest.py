"""Shared pieces of the deployment checks (serve/tests/deploy): the repository's paths, the
manifests as files and as kustomize builds them, and the tools (kubectl's kustomize, promtool).

Run: target/pyenv/bin/python -m pytest serve/tests/deploy   (or `make deploy-check`)
"""

import json
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "serve" / "deploy"
DOCS = ROOT / "docs" / "operating.md"

# The scaler's manifests (kustomization.yaml's resources) and the workload example beside them.
SCALER_FILES = ["scaler.yaml", "pdb.yaml", "servicemonitor.yaml", "alerts.yaml"]
EXAMPLE_FILES = ["scaledobject.yaml"]


def load_all(path: pathlib.Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def tool(name: str) -> str:
    """A tool `make setup` installs; its absence is a failure, not a skip."""
    path = shutil.which(name)
    assert path, f"{name} is not installed: run `make setup`"
    return path


def kustomize(directory: pathlib.Path) -> list[dict]:
    """`kubectl kustomize DIR`: the objects kustomize builds."""
    run = subprocess.run(
        [tool("kubectl"), "kustomize", str(directory)], capture_output=True, text=True
    )
    assert run.returncode == 0, f"kubectl kustomize {directory}:\n{run.stderr}"
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def kustomize_version() -> tuple[int, ...]:
    """The version of the kustomize built into kubectl, (0,) if it does not say."""
    run = subprocess.run(
        [tool("kubectl"), "version", "--client", "-o", "json"], capture_output=True, text=True
    )
    try:
        version = json.loads(run.stdout).get("kustomizeVersion", "")
    except json.JSONDecodeError:
        return (0,)
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3]) or (0,)


def doc_block(marker: str) -> str:
    """The fenced code block that follows `<!-- marker -->` in docs/operating.md: the docs'
    snippets that the tests run."""
    text = DOCS.read_text()
    m = re.search(rf"<!-- {re.escape(marker)} -->\s*```\w*\n(.*?)```", text, re.S)
    assert m, f"docs/operating.md has no code block after <!-- {marker} -->"
    return m.group(1)


@pytest.fixture(scope="session")
def kustomization() -> dict:
    return yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())


@pytest.fixture(scope="session")
def built() -> list[dict]:
    """serve/deploy as `kubectl apply -k serve/deploy` would apply it."""
    return kustomize(DEPLOY)


def find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs
             if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
