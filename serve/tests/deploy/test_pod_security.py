"""Pod Security "restricted" (pss.py: each control of
https://kubernetes.io/docs/concepts/security/pod-security-standards/) for every pod the manifests
make, and the project's own rules on top: a read-only root file system, no service-account
token. The checker itself is tested too: each broken rule is caught by its control."""

import copy

import pytest

import pss
from conftest import DEPLOY, SCALER_FILES, find, load_all


def _pods(docs):
    for doc in docs:
        for where, spec, annotations in pss.pod_templates(doc):
            yield f"{doc['kind']}/{doc['metadata']['name']} {where}", spec, annotations


def test_every_pod_of_the_build_passes_restricted(built):
    pods = list(_pods(built))
    assert pods, "no pod template found"
    for where, spec, annotations in pods:
        assert pss.violations(spec, annotations) == [], where


def test_every_pod_in_the_files_passes_restricted():
    for name in SCALER_FILES:
        for where, spec, annotations in _pods(load_all(DEPLOY / name)):
            assert pss.violations(spec, annotations) == [], f"{name}: {where}"


def test_the_scaler_pod_is_hardened_beyond_restricted(built):
    spec = find(built, "Deployment", "leadtime-scaler")["spec"]["template"]["spec"]
    # It calls no Kubernetes API: no token to steal.
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["securityContext"]["runAsUser"] != 0
    for _, c in pss.containers(spec):
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsNonRoot"] is True
        assert "memory" in c["resources"]["limits"]


def _scaler_pod():
    deployment = find(load_all(DEPLOY / "scaler.yaml"), "Deployment")
    return copy.deepcopy(deployment["spec"]["template"]["spec"])


def _container(spec):
    return spec["containers"][0]


def _sc(obj):
    return obj.setdefault("securityContext", {})


BREAKS = {
    "host_process": lambda s: _sc(s).update(windowsOptions={"hostProcess": True}),
    "host_namespaces": lambda s: s.update(hostPID=True),
    "privileged_containers": lambda s: _sc(_container(s)).update(privileged=True),
    "baseline_capabilities": lambda s: _sc(_container(s))["capabilities"].update(add=["SYS_ADMIN"]),
    "hostpath_volumes": lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    "host_ports": lambda s: _container(s)["ports"][0].update(hostPort=9090),
    "apparmor": lambda s: _sc(s).update(appArmorProfile={"type": "Unconfined"}),
    "selinux": lambda s: _sc(s).update(seLinuxOptions={"type": "spc_t"}),
    "proc_mount": lambda s: _sc(_container(s)).update(procMount="Unmasked"),
    "baseline_seccomp": lambda s: _sc(s).update(seccompProfile={"type": "Unconfined"}),
    "sysctls": lambda s: _sc(s).update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    "volume_types": lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
    "privilege_escalation": lambda s: _sc(_container(s)).pop("allowPrivilegeEscalation"),
    "running_as_non_root": lambda s: (_sc(s).pop("runAsNonRoot"), _sc(_container(s)).pop("runAsNonRoot")),
    "running_as_non_root_user": lambda s: _sc(_container(s)).update(runAsUser=0),
    "restricted_seccomp": lambda s: (_sc(s).pop("seccompProfile"), _sc(_container(s)).pop("seccompProfile")),
    "restricted_capabilities": lambda s: _sc(_container(s))["capabilities"].update(drop=["NET_RAW"]),
}


def test_every_control_is_exercised():
    assert set(BREAKS) == {c.__name__ for c in pss.CONTROLS}


@pytest.mark.parametrize("control", sorted(BREAKS))
def test_each_broken_rule_is_caught_by_its_control(control):
    spec = _scaler_pod()
    assert pss.violations(spec) == []
    BREAKS[control](spec)
    found = pss.violations(spec)
    assert any(v.startswith(control + ":") for v in found), found


def test_an_init_container_is_checked_too():
    spec = _scaler_pod()
    spec["initContainers"] = [{"name": "init", "image": "busybox"}]
    found = pss.violations(spec)
    assert any("initContainers[0]" in v and v.startswith("privilege_escalation") for v in found)
    assert any("initContainers[0]" in v and v.startswith("restricted_capabilities") for v in found)


def test_an_apparmor_annotation_is_checked():
    assert pss.violations(_scaler_pod(), {
        "container.apparmor.security.beta.kubernetes.io/scaler": "unconfined"})
    assert not pss.violations(_scaler_pod(), {
        "container.apparmor.security.beta.kubernetes.io/scaler": "runtime/default"})
