"""The Grafana dashboard: well-formed, every query parses (promtool) and reads only series and
labels the scaler exports, and it shows what operators need."""

import json
import re
import subprocess

import pytest
import yaml

import exported
from conftest import DEPLOY, tool

DASHBOARD = DEPLOY / "grafana" / "leadtime-dashboard.json"

# Grafana's variables, as values a query can be checked with.
VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$namespace": "shop", "$name": "llm"}


def _dashboard():
    return json.loads(DASHBOARD.read_text())


def _panels():
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _targets():
    return [(p["title"], t) for p in _panels() for t in p["targets"]]


def _concrete(expr: str) -> str:
    for var, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(var, value)
    assert "$" not in expr, expr
    return expr


def test_the_dashboard_is_well_formed():
    d = _dashboard()
    assert d["uid"] and d["title"] and isinstance(d["schemaVersion"], int)
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
    names = [v["name"] for v in d["templating"]["list"]]
    assert names == ["datasource", "namespace", "name"]
    # Every query goes to the Prometheus chosen in the `datasource` variable.
    for p in _panels():
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"] and t["expr"], p["title"]


def test_every_query_parses(tmp_path):
    """promtool parses each query as the expression of a recording rule."""
    exprs = [_concrete(t["expr"]) for _, t in _targets()]
    exprs += [_concrete(re.fullmatch(r"label_values\((.*), \w+\)", v["query"]["query"]).group(1))
              for v in _dashboard()["templating"]["list"] if v["type"] == "query"]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    run = subprocess.run([tool("promtool"), "check", "rules", str(tmp_path / "queries.yaml")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("title,target", _targets(), ids=lambda x: x if isinstance(x, str) else x["refId"])
def test_every_query_reads_exported_series_and_labels(title, target):
    series = exported.exported()
    expr = target["expr"]
    names = exported.metric_names(_concrete(expr))
    assert names and names <= set(series), f"{title}: not exported: {names - set(series)}"
    known = set().union(*(series[n] for n in names)) | exported.SCRAPE_LABELS
    for name, matched in exported.selectors(expr):
        assert matched <= series[name] | exported.SCRAPE_LABELS, (title, name, matched)
    grouping = exported.grouping_labels(expr)
    assert grouping <= known, (title, grouping - known)
    # A legend names labels the result keeps: the grouping's, or the series' own.
    kept = grouping or known
    for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")):
        assert label in kept, (title, label)


def test_the_variables_read_exported_labels():
    series = exported.exported()
    for v in _dashboard()["templating"]["list"]:
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((\w+)(\{.*\})?, (\w+)\)", v["query"]["query"])
            assert m and m.group(3) in series[m.group(1)], v["name"]


def _panels_using(metric):
    return [p["title"] for p in _panels() if any(metric in t["expr"] for t in p["targets"])]


@pytest.mark.parametrize("metric", [
    "leadtime_decisions_total", "leadtime_policy_replicas", "leadtime_desired_replicas",
    "leadtime_fallback_active", "leadtime_circuit_state", "leadtime_policy_fuel_bucket",
    "leadtime_rpc_duration_seconds_bucket", "leadtime_policy_errors_total",
    "leadtime_prometheus_errors_total",
])
def test_it_shows_what_operators_need(metric):
    assert _panels_using(metric), f"no panel shows {metric}"


def test_decisions_by_source_and_policy_against_returned_target():
    panels = {p["title"]: p for p in _panels()}
    assert "sum by (source)" in panels["Decisions by source"]["targets"][0]["expr"]
    exprs = [t["expr"] for t in panels["Policy target vs returned target"]["targets"]]
    assert any("leadtime_policy_replicas" in e for e in exprs)
    assert any("leadtime_desired_replicas" in e for e in exprs)


# Label values for made-up series shaped as the scaler exports them.
_VALUES = {"namespace": "shop", "name": "llm", "metric": "leadtime-desired-replicas",
           "source": "policy", "mode": "decide", "kind": "trap", "rpc": "GetMetrics", "code": "ok",
           "client": "keda-operator"}


def _input_series() -> list[dict]:
    """Twenty minutes of every exported series: counters rising, gauges at 1, histograms with
    three buckets; labelled as the ServiceMonitor scrapes them."""
    out = []
    for name, labels in exported.exported().items():
        if name.endswith("_bucket"):
            continue
        plain = {k: _VALUES[k] for k in sorted(labels)}
        plain["job"] = "leadtime-scaler"
        sel = ",".join(f'{k}="{v}"' for k, v in plain.items())
        if name.endswith("_count") and name[: -len("_count")] + "_bucket" in exported.exported():
            base = name[: -len("_count")]
            for i, le in enumerate(["1", "10", "+Inf"]):
                out.append({"series": f'{base}_bucket{{{sel},le="{le}"}}', "values": f"0+{i + 1}x20"})
            out.append({"series": f"{name}{{{sel}}}", "values": "0+3x20"})
        elif name.endswith("_total") or name.endswith("_sum"):
            out.append({"series": f"{name}{{{sel}}}", "values": "0+1x20"})
        else:
            out.append({"series": f"{name}{{{sel}}}", "values": "1x20"})
    return out


def test_every_query_returns_data_on_series_shaped_as_the_scalers(tmp_path):
    """Each panel's query, as an alert `count(query) > 0`, fires on made-up series with the
    scaler's names and labels (promtool test rules): no panel reads nothing."""
    queries = [(title, _concrete(t["expr"])) for title, t in _targets()]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"alert": f"Query{i}", "expr": f"count({q}) > 0"} for i, (_, q) in enumerate(queries)]}]}
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    tests = {"rule_files": ["queries.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": _input_series(),
        "alert_rule_test": [
            {"eval_time": "15m", "alertname": f"Query{i}", "exp_alerts": [{"exp_labels": {}}]}
            for i in range(len(queries))],
    }]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(tests))
    run = subprocess.run([tool("promtool"), "test", "rules", str(tmp_path / "test.yaml")],
                         capture_output=True, text=True)
    failed = {int(n) for n in re.findall(r"alertname: Query(\d+)", run.stdout + run.stderr)}
    assert run.returncode == 0 and not failed, (
        [queries[n] for n in sorted(failed)] or run.stdout + run.stderr)
