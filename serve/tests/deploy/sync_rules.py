#!/usr/bin/env python3
"""Writes serve/deploy/alerts.yaml, prometheus-operator's PrometheusRule, from the plain rule file
serve/deploy/prometheus/leadtime.rules.yaml, its source: the same groups, the same text.

    python3 serve/tests/deploy/sync_rules.py          # rewrite alerts.yaml
    python3 serve/tests/deploy/sync_rules.py --check  # exit 1 if alerts.yaml is not up to date

test_alerts.py runs the check, so the two files cannot drift apart. Standard library only.
"""

import pathlib
import sys

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "leadtime.rules.yaml"
ALERTS = DEPLOY / "alerts.yaml"

HEADER = """\
# GENERATED from prometheus/leadtime.rules.yaml by serve/tests/deploy/sync_rules.py: edit that
# file and run the script; do not edit this one.
# The scaler's alerts for prometheus-operator (docs/operating.md, "What to alert on"). Your
# Prometheus must select it: kube-prometheus-stack, for one, selects PrometheusRules by its
# `release` label (docs/operating.md says how to add it in an overlay).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: leadtime-scaler
  namespace: leadtime
  labels: {app: leadtime-scaler}
spec:
"""


def render(rules_text: str) -> str:
    """The PrometheusRule whose spec is the rule file from its `groups:` line on, indented."""
    lines = rules_text.splitlines()
    try:
        start = lines.index("groups:")
    except ValueError:
        raise SystemExit(f"{RULES}: no top-level `groups:` line") from None
    body = "".join(f"  {line}\n" if line.strip() else "\n" for line in lines[start:])
    return HEADER + body


def main(argv: list[str]) -> int:
    want = render(RULES.read_text())
    if argv[1:] == ["--check"]:
        if ALERTS.read_text() != want:
            print(f"{ALERTS} is not made from {RULES}: run {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0
    if argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    ALERTS.write_text(want)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
