"""Custom resources checked against their CustomResourceDefinitions' schemas.

A CRD's `openAPIV3Schema` is a structural OpenAPI v3 schema: JSON Schema (draft 4 keywords) plus
Kubernetes extensions. `json_schema` turns it into a plain JSON Schema the jsonschema package
checks, keeping the API server's meaning:

- `nullable: true` also admits null;
- `x-kubernetes-int-or-string` admits an integer or a string;
- a field the schema does not name is an error (kubectl's default strict field validation), except
  under `x-kubernetes-preserve-unknown-fields` or where `additionalProperties` says otherwise;
- `x-kubernetes-validations` (CEL rules) cannot be run here: they are collected and returned, and
  the tests check each one they know by hand (and fail on one they do not know);
- `format` is not checked (the API server checks only a few formats), nor list-type uniqueness.

The CRDs are the upstream projects' own files at a pinned release (testdata/crds/README.md).
"""

import os
import pathlib

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]

# (apiVersion, kind) -> the upstream CRD file.
CRD_FILES = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.yaml",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_triggerauthentications.yaml",
}

# Extensions that say nothing a single object could violate here.
_IGNORED = {
    "description", "example", "externalDocs", "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-embedded-resource",
    "format",
}


def crd_dirs() -> list[pathlib.Path]:
    """Where the CRD files are looked for, in order: testdata/crds, $LEADTIME_CRDS, and
    ../shared/crds beside the repository."""
    dirs = [ROOT / "testdata" / "crds"]
    if os.environ.get("LEADTIME_CRDS"):
        dirs.append(pathlib.Path(os.environ["LEADTIME_CRDS"]))
    dirs.append(ROOT.parent / "shared" / "crds")
    return dirs


def find_crd(api_version: str, kind: str) -> pathlib.Path | None:
    name = CRD_FILES[(api_version, kind)]
    for d in crd_dirs():
        if (d / name).is_file():
            return d / name
    return None


def json_schema(node, rules: list, path: str = ""):
    """The JSON Schema of an openAPIV3Schema node; CEL rules found go into `rules` as
    (path, rule, message)."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in _IGNORED or key == "nullable":
            continue
        if key == "x-kubernetes-validations":
            rules += [(path or ".", r["rule"], r.get("message", "")) for r in value]
        elif key == "x-kubernetes-preserve-unknown-fields":
            continue
        elif key == "x-kubernetes-int-or-string":
            if value and "type" not in node and "anyOf" not in node:
                out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        elif key == "properties":
            out["properties"] = {k: json_schema(v, rules, f"{path}.{k}") for k, v in value.items()}
        elif key == "items":
            out["items"] = json_schema(value, rules, f"{path}[]")
        elif key == "additionalProperties":
            out[key] = json_schema(value, rules, f"{path}.*") if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [json_schema(v, rules, path) for v in value]
        elif key == "not":
            out[key] = json_schema(value, rules, path)
        else:
            out[key] = value
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def schema_for(crd_path: pathlib.Path, api_version: str):
    """(JSON Schema, CEL rules) of the CRD's version named by apiVersion."""
    crd = yaml.safe_load(crd_path.read_text())
    version = api_version.split("/")[-1]
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            assert v.get("served"), f"{crd_path.name}: {version} is not served"
            rules: list = []
            schema = json_schema(v["schema"]["openAPIV3Schema"], rules)
            return schema, rules
    raise AssertionError(f"{crd_path.name} has no version {version}")


def errors(doc, schema) -> list[str]:
    """What in a custom resource its schema refuses, as "path: message"."""
    validator = jsonschema.Draft4Validator(schema)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '.'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]
