"""What the scaler exports on /metrics, read from serve/src/telemetry.rs itself, and the metric
and label names a PromQL expression uses: so the dashboard and the alerts can name only series
that exist.

The registry there has the prefix `leadtime` and is encoded as OpenMetrics by the
prometheus_client crate: a counter `x` is exposed as `x_total`, a histogram `x` as `x_bucket`
(with `le`), `x_sum` and `x_count`, a gauge as `x`.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[3]
TELEMETRY = ROOT / "serve" / "src" / "telemetry.rs"

# Labels the scrape adds to every series: Prometheus' own, and prometheus-operator's target
# labels for a ServiceMonitor endpoint (its Service, pod, container, endpoint). `namespace` is
# not here: on a workload's series it is the workload's (the ServiceMonitor honours it).
SCRAPE_LABELS = {"job", "instance", "pod", "service", "container", "endpoint"}


def exported(source: str | None = None) -> dict[str, set[str]]:
    """Each series name the scaler exposes, with its label names."""
    text = source if source is not None else TELEMETRY.read_text()
    prefix = re.search(r'Registry::with_prefix\("(\w+)"\)', text)
    assert prefix, "telemetry.rs: no Registry::with_prefix"
    prefix = prefix.group(1)

    # A label set's String fields are its labels; a field of another label set
    # (`#[prometheus(flatten)]`) brings that one's labels.
    structs = {
        m.group(1): re.findall(r"pub (\w+): (\w+)", m.group(2))
        for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", text, re.S)
    }

    def label_names(struct: str) -> list[str]:
        names = []
        for field, kind in structs[struct]:
            if kind == "String":
                names.append(field)
            elif kind in structs:
                names += label_names(kind)
        return names

    labels = {name: label_names(name) for name in structs if name != "Telemetry"}

    telemetry = re.search(r"pub struct Telemetry \{(.*?)\n\}", text, re.S)
    assert telemetry, "telemetry.rs: no struct Telemetry"
    fields: dict[str, tuple[str, list[str]]] = {}
    for m in re.finditer(
        r"pub (\w+): (?:Family<(\w+), (Counter|Gauge|Histogram)>|(Counter|Gauge|Histogram))",
        telemetry.group(1),
    ):
        field, label_struct, family_type, plain_type = m.groups()
        if label_struct:
            assert label_struct in labels, f"telemetry.rs: {label_struct} has no label fields"
            fields[field] = (family_type, labels[label_struct])
        else:
            fields[field] = (plain_type, [])

    series: dict[str, set[str]] = {}
    registered = re.findall(
        r'register\(\s*"(\w+)",\s*"(?:[^"\\]|\\.)*",\s*(\w+)\.clone\(\),?\s*\)', text
    )
    assert registered, "telemetry.rs: no registry.register calls found"
    for name, field in registered:
        kind, names = fields[field]
        full = f"{prefix}_{name}"
        if kind == "Counter":
            series[f"{full}_total"] = set(names)
        elif kind == "Gauge":
            series[full] = set(names)
        else:
            series[f"{full}_bucket"] = set(names) | {"le"}
            series[f"{full}_sum"] = set(names)
            series[f"{full}_count"] = set(names)
    return series


# PromQL words that are not metric names.
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk",
    "bottomk", "quantile", "count_values", "group", "rate", "irate", "increase", "delta",
    "idelta", "deriv", "absent", "absent_over_time", "histogram_quantile", "max_over_time",
    "min_over_time", "avg_over_time", "sum_over_time", "last_over_time", "vector", "scalar",
    "clamp_min", "clamp_max", "clamp", "label_replace", "label_join", "time", "changes",
    "resets", "round", "ceil", "floor", "abs", "sort", "sort_desc", "inf", "nan", "le",
}


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects (identifiers that are not functions, keywords,
    label names in braces or grouping clauses, or durations)."""
    bare = _strip_strings(expr)
    bare = re.sub(r"\{[^}]*\}", " ", bare)  # label matchers
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)  # ranges
    names = set()
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", bare):
        word = m.group(1)
        if word.lower() in _KEYWORDS or re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """Each `name{matchers}` of an expression: the name and the label names it matches on."""
    out = []
    for m in re.finditer(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}", expr):
        matchers = _strip_strings(m.group(2))
        out.append((m.group(1), set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))))
    return out


def grouping_labels(expr: str) -> set[str]:
    """Label names of by/without/on/ignoring/group_left/group_right clauses."""
    out = set()
    for m in re.finditer(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr
    ):
        out |= {w.strip() for w in m.group(1).split(",") if w.strip()}
    return out
