"""Custom resources checked against their CRDs' schemas, as the npm packages
@kubernetes-models/keda and @kubernetes-models/prometheus-operator carry them
(serve/tests/deploy/crds: package.json pins them, README.md says what they check and what not).

`errors` sends the documents, as JSON, to crds/validate.js (node), which validates each with its
kind's model and names each failure as "<source> <kind>/<name>: <field>: <what is wrong>".
"""

import json
import pathlib
import subprocess

from conftest import tool

CRDS = pathlib.Path(__file__).resolve().parent / "crds"
VALIDATE = CRDS / "validate.js"

# The custom resources serve/deploy has; validate.js knows every kind of the two packages.
KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
}


def is_custom(doc: dict) -> bool:
    return (doc["apiVersion"], doc["kind"]) in KINDS


def errors(docs: list[tuple[str, dict]]) -> list[str]:
    """What the models refuse in the (source, document) pairs: one line per error, [] if none."""
    assert (CRDS / "node_modules" / "@kubernetes-models").is_dir(), (
        f"{CRDS}/node_modules is missing: run `make setup`"
    )
    run = subprocess.run(
        [tool("node"), str(VALIDATE)],
        input=json.dumps([{"source": s, "document": d} for s, d in docs]),
        capture_output=True, text=True, cwd=CRDS,
    )
    assert run.returncode in (0, 1), f"validate.js exited {run.returncode}:\n{run.stderr}"
    found = run.stdout.splitlines()
    # Exit status and output agree: 1 exactly when something is reported.
    assert (run.returncode == 1) == bool(found), run.stdout + run.stderr
    return found
