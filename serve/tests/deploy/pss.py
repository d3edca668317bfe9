"""The Pod Security Standards' "restricted" profile as plain checks, for manifests on disk.

Source: https://kubernetes.io/docs/concepts/security/pod-security-standards/ ("Baseline" and
"Restricted", which includes everything of Baseline), as the Pod Security admission controller
enforces them for Linux pods. No tool here checks a manifest offline against the profile, so
each control of that page is a function below, named after it, returning what violates it.
`violations(pod_spec, pod_annotations)` runs them all; an empty list passes.
"""

# Baseline, "Capabilities": what may be added beyond the default set.
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}
# Baseline, "Sysctls": the safe set.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
# Baseline, "SELinux": the allowed types.
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# Restricted, "Volume Types": the only volume sources allowed.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}


def containers(spec):
    """Every container of a pod spec, with where it is: containers, initContainers and
    ephemeralContainers all count."""
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for i, c in enumerate(spec.get(field) or []):
            yield f"spec.{field}[{i}]", c


def _sc(obj):
    return obj.get("securityContext") or {}


# --- Baseline ---------------------------------------------------------------------------------

def host_process(spec, _annotations):
    out = []
    if (_sc(spec).get("windowsOptions") or {}).get("hostProcess"):
        out.append("spec.securityContext.windowsOptions.hostProcess is true")
    for where, c in containers(spec):
        if (_sc(c).get("windowsOptions") or {}).get("hostProcess"):
            out.append(f"{where}.securityContext.windowsOptions.hostProcess is true")
    return out


def host_namespaces(spec, _annotations):
    return [f"spec.{f} is true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]


def privileged_containers(spec, _annotations):
    return [f"{w}.securityContext.privileged is true" for w, c in containers(spec)
            if _sc(c).get("privileged")]


def baseline_capabilities(spec, _annotations):
    out = []
    for where, c in containers(spec):
        for cap in (_sc(c).get("capabilities") or {}).get("add") or []:
            if cap not in BASELINE_CAPABILITIES:
                out.append(f"{where}.securityContext.capabilities.add has {cap}")
    return out


def hostpath_volumes(spec, _annotations):
    return [f"spec.volumes[{i}] ({v.get('name')}) is a hostPath"
            for i, v in enumerate(spec.get("volumes") or []) if "hostPath" in v]


def host_ports(spec, _annotations):
    out = []
    for where, c in containers(spec):
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append(f"{where}.ports hostPort {p['hostPort']}")
    return out


def apparmor(spec, annotations):
    out = []
    allowed = {None, "RuntimeDefault", "Localhost"}
    profile = (_sc(spec).get("appArmorProfile") or {}).get("type")
    if profile not in allowed:
        out.append(f"spec.securityContext.appArmorProfile.type is {profile}")
    for where, c in containers(spec):
        profile = (_sc(c).get("appArmorProfile") or {}).get("type")
        if profile not in allowed:
            out.append(f"{where}.securityContext.appArmorProfile.type is {profile}")
    for key, value in (annotations or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/"):
            if value != "runtime/default" and not value.startswith("localhost/"):
                out.append(f"annotation {key} is {value}")
    return out


def selinux(spec, _annotations):
    out = []
    places = [("spec", spec)] + list(containers(spec))
    for where, obj in places:
        options = _sc(obj).get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES:
            out.append(f"{where}.securityContext.seLinuxOptions.type is {options['type']}")
        for field in ("user", "role"):
            if options.get(field):
                out.append(f"{where}.securityContext.seLinuxOptions.{field} is set")
    return out


def proc_mount(spec, _annotations):
    return [f"{w}.securityContext.procMount is {_sc(c)['procMount']}" for w, c in containers(spec)
            if _sc(c).get("procMount") not in (None, "Default")]


def baseline_seccomp(spec, _annotations):
    out = []
    places = [("spec", spec)] + list(containers(spec))
    for where, obj in places:
        if (_sc(obj).get("seccompProfile") or {}).get("type") == "Unconfined":
            out.append(f"{where}.securityContext.seccompProfile.type is Unconfined")
    return out


def sysctls(spec, _annotations):
    return [f"spec.securityContext.sysctls has {s.get('name')}"
            for s in _sc(spec).get("sysctls") or [] if s.get("name") not in SAFE_SYSCTLS]


# --- Restricted -------------------------------------------------------------------------------

def volume_types(spec, _annotations):
    out = []
    for i, v in enumerate(spec.get("volumes") or []):
        sources = set(v) - {"name"}
        if not sources <= RESTRICTED_VOLUMES:
            out.append(f"spec.volumes[{i}] ({v.get('name')}) is {sorted(sources - RESTRICTED_VOLUMES)}")
    return out


def privilege_escalation(spec, _annotations):
    return [f"{w}.securityContext.allowPrivilegeEscalation is not false" for w, c in containers(spec)
            if _sc(c).get("allowPrivilegeEscalation") is not False]


def running_as_non_root(spec, _annotations):
    pod = _sc(spec).get("runAsNonRoot")
    out = []
    if pod is not None and pod is not True:
        out.append("spec.securityContext.runAsNonRoot is false")
    for where, c in containers(spec):
        mine = _sc(c).get("runAsNonRoot")
        if mine is False or (mine is None and pod is not True):
            out.append(f"{where}: runAsNonRoot is true neither here nor on the pod")
    return out


def running_as_non_root_user(spec, _annotations):
    places = [("spec", spec)] + list(containers(spec))
    return [f"{w}.securityContext.runAsUser is 0" for w, obj in places
            if _sc(obj).get("runAsUser") == 0]


def restricted_seccomp(spec, _annotations):
    allowed = {"RuntimeDefault", "Localhost"}
    pod = (_sc(spec).get("seccompProfile") or {}).get("type")
    out = []
    if pod is not None and pod not in allowed:
        out.append(f"spec.securityContext.seccompProfile.type is {pod}")
    for where, c in containers(spec):
        mine = (_sc(c).get("seccompProfile") or {}).get("type")
        if mine is not None and mine not in allowed:
            out.append(f"{where}.securityContext.seccompProfile.type is {mine}")
        elif mine is None and pod not in allowed:
            out.append(f"{where}: seccompProfile is RuntimeDefault or Localhost neither here nor on the pod")
    return out


def restricted_capabilities(spec, _annotations):
    out = []
    for where, c in containers(spec):
        caps = _sc(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{where}.securityContext.capabilities.drop lacks ALL")
        for cap in caps.get("add") or []:
            if cap != "NET_BIND_SERVICE":
                out.append(f"{where}.securityContext.capabilities.add has {cap}")
    return out


CONTROLS = [
    host_process, host_namespaces, privileged_containers, baseline_capabilities,
    hostpath_volumes, host_ports, apparmor, selinux, proc_mount, baseline_seccomp, sysctls,
    volume_types, privilege_escalation, running_as_non_root, running_as_non_root_user,
    restricted_seccomp, restricted_capabilities,
]


def violations(spec, annotations=None):
    """Every violation of the restricted profile in a pod spec, as "control: what"."""
    out = []
    for control in CONTROLS:
        out += [f"{control.__name__}: {v}" for v in control(spec, annotations or {})]
    return out


def pod_templates(doc):
    """(where, pod spec, pod annotations) of each pod an object makes."""
    kind = doc.get("kind")
    if kind == "Pod":
        yield "", doc.get("spec") or {}, (doc.get("metadata") or {}).get("annotations")
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
                  "ReplicationController"):
        t = doc["spec"]["template"]
        yield "spec.template.", t.get("spec") or {}, (t.get("metadata") or {}).get("annotations")
    elif kind == "CronJob":
        t = doc["spec"]["jobTemplate"]["spec"]["template"]
        yield ("spec.jobTemplate.spec.template.", t.get("spec") or {},
               (t.get("metadata") or {}).get("annotations"))
