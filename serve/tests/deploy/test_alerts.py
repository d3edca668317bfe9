"""The alert rules: promtool checks and unit-tests them, the PrometheusRule has exactly the
plain rule file's groups, and every series and label they read is one the scaler exports."""

import pathlib
import re
import subprocess

import yaml

import exported
import sync_rules
from conftest import DEPLOY, DOCS, tool

HERE = pathlib.Path(__file__).resolve().parent
RULES = DEPLOY / "prometheus" / "leadtime.rules.yaml"
UNIT_TESTS = HERE / "alerts.test.yaml"


def _promtool(*args):
    run = subprocess.run([tool("promtool"), *args], capture_output=True, text=True)
    assert run.returncode == 0, f"promtool {' '.join(args)}:\n{run.stdout}\n{run.stderr}"
    return run.stdout


def _rules():
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_promtool_checks_the_rule_file():
    out = _promtool("check", "rules", str(RULES))
    assert f"SUCCESS: {len(_rules())} rules found" in out


def test_promtool_checks_the_prometheus_rule_spec(tmp_path):
    spec = yaml.safe_load((DEPLOY / "alerts.yaml").read_text())["spec"]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    _promtool("check", "rules", str(tmp_path / "spec.yaml"))


def test_promtool_unit_tests_pass():
    out = _promtool("test", "rules", str(UNIT_TESTS))
    assert "SUCCESS" in out


def test_the_prometheus_rule_is_made_from_the_rule_file():
    # Text: alerts.yaml is what sync_rules.py writes (comments and all).
    assert (DEPLOY / "alerts.yaml").read_text() == sync_rules.render(RULES.read_text()), (
        "alerts.yaml is stale: run python3 serve/tests/deploy/sync_rules.py"
    )
    # Meaning: the same groups, whatever the text.
    rule = yaml.safe_load((DEPLOY / "alerts.yaml").read_text())
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_the_sync_check_notices_drift(tmp_path, monkeypatch):
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(sync_rules.render(RULES.read_text()).replace("for: 5m", "for: 6m", 1))
    monkeypatch.setattr(sync_rules, "ALERTS", alerts)
    assert sync_rules.main(["sync_rules.py", "--check"]) == 1
    alerts.write_text(sync_rules.render(RULES.read_text()))
    assert sync_rules.main(["sync_rules.py", "--check"]) == 0


def test_the_rules_read_only_exported_series_and_labels():
    series = exported.exported()
    for rule in _rules():
        expr = rule["expr"]
        names = exported.metric_names(expr)
        assert names, rule["alert"]
        assert names <= set(series), f"{rule['alert']}: not exported: {names - set(series)}"
        known = set().union(*(series[n] for n in names)) | exported.SCRAPE_LABELS
        for name, matched in exported.selectors(expr):
            assert matched <= series[name] | exported.SCRAPE_LABELS, (rule["alert"], name, matched)
        assert exported.grouping_labels(expr) <= known, rule["alert"]
        for label in re.findall(r"\$labels\.(\w+)", str(rule.get("annotations"))):
            assert label in known | set(rule.get("labels", {})), (rule["alert"], label)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_each_alert_has_a_severity_a_text_and_a_runbook_section():
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", DOCS.read_text(), re.M)}
    for rule in _rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"]
        page, anchor = annotations["runbook"].split("#")
        assert page == "docs/operating.md"
        assert anchor == rule["alert"].lower() and anchor in anchors, rule["alert"]


def test_each_alert_is_unit_tested_firing_and_quiet():
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    cases = [c for t in tests for c in t.get("alert_rule_test", [])]
    for rule in _rules():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']} is never tested firing"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} is never tested quiet"
