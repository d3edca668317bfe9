"""The manifests of serve/deploy: schema-valid (built-in kinds with kubernetes-validate, custom
resources against their CRDs' schemas with the npm models of serve/tests/deploy/crds),
consistent with each other, and shaped as kustomize, the Rust tests and the docs expect."""

import copy
import re
import shutil

import kubernetes_validate
import pytest
import yaml

import crd
from conftest import (DEPLOY, EXAMPLE_FILES, SCALER_FILES, doc_block, find, kustomize,
                      kustomize_version, load_all)

# Kubernetes versions the built-in kinds are validated against: the oldest this suite supports
# and the newest kubernetes-validate knows.
K8S_VERSIONS = ["1.30", kubernetes_validate.utils.latest_version().rsplit(".", 1)[0]]


def _files():
    out = []
    for name in SCALER_FILES + EXAMPLE_FILES:
        for i, doc in enumerate(load_all(DEPLOY / name)):
            out.append(pytest.param(doc, id=f"{name}[{i}]:{doc['kind']}/{doc['metadata']['name']}"))
    return out


FILE_DOCS = _files()


def test_every_manifest_in_the_directory_is_checked(kustomization):
    yamls = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert yamls == set(SCALER_FILES + EXAMPLE_FILES), "a manifest this suite does not know"
    assert kustomization["resources"] == SCALER_FILES


# --- Schemas ----------------------------------------------------------------------------------

BUILTIN = [p for p in FILE_DOCS if not crd.is_custom(p.values[0])]
# (source, document): the source, "file[index]", is how validate.js names a document.
CUSTOM = [pytest.param(p.id.split(":")[0], p.values[0], id=p.id)
          for p in FILE_DOCS if crd.is_custom(p.values[0])]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("doc", BUILTIN)
def test_builtin_kinds_validate_strictly(doc, version):
    # strict: a field the schema does not know is an error, as kubectl's field validation.
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_kustomize_build_validates_strictly(built, version):
    for doc in built:
        if not crd.is_custom(doc):
            kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_validate_refuses_what_it_should():
    deployment = copy.deepcopy(find(load_all(DEPLOY / "scaler.yaml"), "Deployment"))
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)
    deployment = copy.deepcopy(find(load_all(DEPLOY / "scaler.yaml"), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def test_every_custom_resource_kind_is_checked():
    assert {(d["apiVersion"], d["kind"]) for _, d in (p.values for p in CUSTOM)} == crd.KINDS


# KEDA's ScaledObject CRD (v2.20.2) has one CEL rule (x-kubernetes-validations on .spec), which
# the API server runs and the models do not carry (test_what_the_models_do_not_check): checked
# here by hand.
def _scaledobject_min_le_max(doc) -> list[str]:
    spec = doc["spec"]
    if "minReplicaCount" in spec and spec["minReplicaCount"] > spec.get("maxReplicaCount", 100):
        return [f"ScaledObject/{doc['metadata']['name']}: .spec: minReplicaCount must be less "
                "than or equal to maxReplicaCount"]
    return []


def _by_hand(doc) -> list[str]:
    return _scaledobject_min_le_max(doc) if doc["kind"] == "ScaledObject" else []


@pytest.mark.parametrize("source,doc", CUSTOM)
def test_custom_resources_validate_against_their_crds(source, doc):
    assert crd.errors([(source, doc)]) == []
    assert _by_hand(doc) == []
    name = doc["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) and len(name) <= 253


def test_the_kustomize_build_of_custom_resources_validates(built):
    custom = [(f"kustomize build[{i}]", d) for i, d in enumerate(built) if crd.is_custom(d)]
    assert {d["kind"] for _, d in custom} == {"ServiceMonitor", "PrometheusRule"}
    assert crd.errors(custom) == []
    assert [e for _, d in custom for e in _by_hand(d)] == []


def _custom(kind: str) -> tuple[str, dict]:
    source, doc = next(p.values for p in CUSTOM if p.values[1]["kind"] == kind)
    return source, copy.deepcopy(doc)


@pytest.mark.parametrize(
    "kind,break_it,expected",
    [
        ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(honorLabels="yes"),
         ".spec.endpoints[0].honorLabels: must be boolean"),
        ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(scheme="gopher"),
         ".spec.endpoints[0].scheme: must be one of"),
        ("ServiceMonitor", lambda d: d["spec"].pop("selector"), ".spec.selector: required"),
        ("ScaledObject", lambda d: d["spec"]["triggers"][0]["metadata"].update(minReplicas=1),
         ".spec.triggers[0].metadata.minReplicas: must be string"),
        ("ScaledObject", lambda d: d["spec"].update(maxReplicaCount="40"),
         ".spec.maxReplicaCount: must be integer"),
        ("ScaledObject", lambda d: d["spec"].pop("scaleTargetRef"),
         ".spec.scaleTargetRef: required"),
        ("TriggerAuthentication", lambda d: d["spec"]["secretTargetRef"][0].pop("key"),
         ".spec.secretTargetRef[0].key: required"),
        ("TriggerAuthentication", lambda d: d["spec"].update(secretTargetRef={"key": "ca.crt"}),
         ".spec.secretTargetRef: must be array"),
        ("PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0].pop("expr"),
         ".spec.groups[0].rules[0].expr: required"),
        ("PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0].update({"for": "15 min"}),
         ".spec.groups[0].rules[0].for: must match pattern"),
        ("PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0]["labels"].update(page=True),
         ".spec.groups[0].rules[0].labels.page: must be string"),
    ],
    ids=["wrong-type", "not-in-enum", "required", "metadata-not-string", "count-not-integer",
         "required-target", "required-nested", "list-not-object", "rule-without-expr",
         "bad-duration", "label-not-string"],
)
def test_the_crd_check_refuses_what_the_api_server_would(kind, break_it, expected):
    source, doc = _custom(kind)
    break_it(doc)
    found = crd.errors([(source, doc)])
    # Each error names the document (file and index, kind/name) and the field.
    prefix = f"{source} {kind}/{doc['metadata']['name']}: "
    assert any(e.startswith(prefix + expected) for e in found), found


def test_a_kind_without_a_model_is_refused():
    source, doc = _custom("ScaledObject")
    doc["apiVersion"] = "keda.sh/v1alpha2"
    assert crd.errors([(source, doc)]) == [
        f"{source} ScaledObject/llm: no model for apiVersion keda.sh/v1alpha2, kind ScaledObject"
    ]


def test_what_the_models_do_not_check():
    """The models are made from the projects' Go types, not from their CRD files: they carry no
    `additionalProperties: false` (an unknown field, such as a misspelt one, passes, where
    kubectl's strict field validation would refuse it) and no CEL rule. If a release starts
    checking either, crds/README.md and the by-hand check above need updating."""
    source, doc = _custom("ServiceMonitor")
    doc["spec"]["endpoints"][0]["prot"] = "http"
    assert crd.errors([(source, doc)]) == []
    source, doc = _custom("ScaledObject")
    doc["spec"]["minReplicaCount"] = 50  # above maxReplicaCount: KEDA's CEL rule refuses it
    assert crd.errors([(source, doc)]) == []
    assert "minReplicaCount must be less than or equal to maxReplicaCount" in _by_hand(doc)[0]
    doc["spec"].pop("maxReplicaCount")  # the rule's default maximum is 100
    assert _by_hand(doc) == []
    doc["spec"]["minReplicaCount"] = 101
    assert _by_hand(doc)


# --- The kustomization ------------------------------------------------------------------------

def test_kustomize_sets_namespace_image_and_prometheus_url(built, kustomization):
    namespace = kustomization["namespace"]
    for doc in built:
        assert doc["metadata"]["namespace"] == namespace, doc["kind"]
    (image,) = kustomization["images"]
    deployment = find(built, "Deployment", "leadtime-scaler")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{image['newName']}:{image['newTag']}"

    (generator,) = kustomization["configMapGenerator"]
    (generated,) = [d for d in built if d["kind"] == "ConfigMap"
                    and d["metadata"]["name"].startswith(generator["name"] + "-")]
    url = dict(lit.split("=", 1) for lit in generator["literals"])["url"]
    assert generated["data"] == {"url": url}
    (env,) = [e for e in container["env"] if e["name"] == "LEADTIME_PROMETHEUS"]
    # kustomize renamed the reference to the generated (hashed) name: a new URL rolls the pod.
    assert env["valueFrom"]["configMapKeyRef"] == {"name": generated["metadata"]["name"], "key": "url"}


def test_the_overlay_in_the_docs_changes_all_three(tmp_path):
    """docs/operating.md's overlay: another namespace, a digest-pinned image, another URL."""
    if kustomize_version() < (4, 1):
        pytest.skip("the overlay's inline `patches:` need kustomize 4.1 or later (kubectl 1.22+)")
    # The overlay's directory beside a checkout of leadtime, as the docs lay it out (kustomize
    # takes a base by relative path only).
    (tmp_path / "leadtime").symlink_to(DEPLOY.parents[1], target_is_directory=True)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    text = doc_block("overlay")
    assert "../leadtime/serve/deploy" in text
    (overlay / "kustomization.yaml").write_text(text)
    wanted = yaml.safe_load(text)
    docs = kustomize(overlay)
    assert {d["metadata"]["namespace"] for d in docs} == {wanted["namespace"]}
    (image,) = wanted["images"]
    deployment = find(docs, "Deployment", "leadtime-scaler")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"{image['newName']}@{image['digest']}"
    )
    (generator,) = wanted["configMapGenerator"]
    url = generator["literals"][0].split("=", 1)[1]
    cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("leadtime-scaler-prometheus-")]
    assert [c["data"]["url"] for c in cms] == [url]
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert find(docs, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"


# --- Consistency ------------------------------------------------------------------------------

def test_the_service_monitor_scrapes_the_metrics_port(built):
    service = find(built, "Service", "leadtime-scaler")
    monitor = find(built, "ServiceMonitor", "leadtime-scaler")
    deployment = find(built, "Deployment", "leadtime-scaler")
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    (endpoint,) = monitor["spec"]["endpoints"]
    port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    target = next(p for p in container["ports"] if p["name"] == port["targetPort"])
    assert target["containerPort"] == 9091  # the scaler's --http-listen (serve/Dockerfile)
    assert endpoint["path"] == "/metrics"
    # The workload's namespace label must survive the scrape (the dashboard and alerts read it).
    assert endpoint["honorLabels"] is True
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(target["containerPort"])


def test_the_disruption_budget_covers_the_scaler_and_never_blocks_a_drain(built):
    pdb = find(built, "PodDisruptionBudget", "leadtime-scaler")
    deployment = find(built, "Deployment", "leadtime-scaler")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == pdb["spec"]["selector"]["matchLabels"]
    # One replica: minAvailable 1 or maxUnavailable 0 would block every drain.
    assert deployment["spec"]["replicas"] == 1
    assert pdb["spec"]["maxUnavailable"] >= 1 and "minAvailable" not in pdb["spec"]


def test_the_scaled_object_bounds_match_its_trigger_and_its_address_the_service(built, kustomization):
    so, auth = load_all(DEPLOY / "scaledobject.yaml")
    (trigger,) = so["spec"]["triggers"]
    metadata = trigger["metadata"]
    assert all(isinstance(v, str) for v in metadata.values()), "KEDA takes only strings"
    assert int(metadata["minReplicas"]) == so["spec"]["minReplicaCount"]
    assert int(metadata["maxReplicas"]) == so["spec"]["maxReplicaCount"]
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert auth["metadata"]["namespace"] == so["metadata"]["namespace"]
    service = find(built, "Service", "leadtime-scaler")
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert metadata["scalerAddress"] == (
        f"{service['metadata']['name']}.{kustomization['namespace']}.svc:{grpc['port']}"
    )


def test_the_files_the_rust_tests_read_keep_their_shape():
    """serve/src/config.rs reads scaler.yaml's first document as the ConfigMap, and
    serve/tests/harness the first trigger of scaledobject.yaml's first document."""
    first = (DEPLOY / "scaler.yaml").read_text().split("\n---\n")[0]
    config_map = yaml.safe_load(first)
    assert config_map["kind"] == "ConfigMap"
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert config["tls"]["allowedClients"] and config["queries"]["namespaceLabel"] == "namespace"
    # The URL is the Deployment's LEADTIME_PROMETHEUS (kustomization.yaml), not here.
    assert "url" not in (config.get("prometheus") or {})
    first = (DEPLOY / "scaledobject.yaml").read_text().split("\n---\n")[0]
    assert yaml.safe_load(first)["kind"] == "ScaledObject"


def test_the_bounds_replacement_in_the_docs_carries_one_value_to_both(tmp_path):
    if kustomize_version() < (4, 1):
        pytest.skip("replacements need kustomize 4.1 or later (kubectl 1.22+)")
    shutil.copy(DEPLOY / "scaledobject.yaml", tmp_path / "scaledobject.yaml")
    text = (tmp_path / "scaledobject.yaml").read_text()
    text = text.replace("minReplicaCount: 1\n", "minReplicaCount: 3\n").replace(
        "maxReplicaCount: 40\n", "maxReplicaCount: 7\n")
    (tmp_path / "scaledobject.yaml").write_text(text)
    (tmp_path / "kustomization.yaml").write_text(doc_block("bounds"))
    so = find(kustomize(tmp_path), "ScaledObject", "llm")
    metadata = so["spec"]["triggers"][0]["metadata"]
    assert (metadata["minReplicas"], metadata["maxReplicas"]) == ("3", "7")
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (3, 7)


def test_the_fleet_fixture_is_what_keda_admits():
    # testdata/fleet/scaledobjects.yaml stands for `kubectl get scaledobjects -A -o yaml`
    # (cli/tests/backtest_prometheus.rs replays it with `leadtime fleet`): every item must be a
    # ScaledObject the API server would have admitted.
    from conftest import ROOT

    listing = yaml.safe_load((ROOT / "testdata" / "fleet" / "scaledobjects.yaml").read_text())
    assert listing["kind"] == "List"
    docs = [(f"scaledobjects.yaml item {i}", item) for i, item in enumerate(listing["items"])]
    assert len(docs) == 4
    assert crd.errors(docs) == []
    assert [e for _, d in docs for e in _by_hand(d)] == []
