"""Pod Security Admission, the part the sandbox enforces: a namespace labelled
``pod-security.kubernetes.io/enforce: baseline|restricted`` refuses a Pod that breaks the
standard, with the API server's message (``violates PodSecurity "restricted:latest": …``).

Checked, as the API server checks them: host namespaces, privileged, added capabilities, host
ports, hostPath volumes, sysctls and seccomp (baseline); allowPrivilegeEscalation, volume types,
runAsNonRoot, runAsUser, seccompProfile and dropped capabilities (restricted). Not checked:
AppArmor, SELinux, procMount, Windows host process (the operator never renders them). Audit
and warn labels, exemptions and version pinning are not implemented.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
_BASELINE_CAPABILITIES = frozenset(
    [
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ]
)
_SAFE_SYSCTLS = frozenset(
    [
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ]
)
_RESTRICTED_VOLUMES = frozenset(
    [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ]
)


def enforced_level(namespace_labels: Mapping[str, str]) -> str:
    """``privileged`` without the label; an unknown value enforces ``restricted``."""
    value = namespace_labels.get(ENFORCE_LABEL)
    if value is None:
        return "privileged"
    return value if value in ("privileged", "baseline", "restricted") else "restricted"


def violations(pod: Mapping[str, Any], level: str) -> list[str]:
    """What in ``pod`` breaks the ``level`` standard, one text per check, as the API server
    words them; empty when it meets it."""
    if level == "privileged":
        return []
    spec = pod.get("spec") or {}
    found = list(_baseline(spec))
    if level == "restricted":
        found.extend(_restricted(spec))
    return found


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]


def _context(item: Mapping[str, Any]) -> Mapping[str, Any]:
    return item.get("securityContext") or {}


def _baseline(spec: Mapping[str, Any]) -> Iterator[str]:
    hosts = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    if hosts:
        yield f"host namespaces ({', '.join(hosts)})"
    containers = _containers(spec)
    privileged = [c["name"] for c in containers if _context(c).get("privileged")]
    if privileged:
        yield f"privileged (containers {privileged} must not set privileged=true)"
    added = sorted(
        {
            name
            for c in containers
            for name in (_context(c).get("capabilities") or {}).get("add") or ()
            if name not in _BASELINE_CAPABILITIES
        }
    )
    if added:
        yield f"non-default capabilities ({added})"
    ports = [
        port["hostPort"]
        for c in containers
        for port in c.get("ports") or ()
        if port.get("hostPort")
    ]
    if ports:
        yield f"hostPort (hostPorts {ports})"
    host_paths = [v["name"] for v in spec.get("volumes") or () if "hostPath" in v]
    if host_paths:
        yield f"restricted volume types (hostPath volumes {host_paths})"
    unsafe = [
        s["name"]
        for s in (_context(spec).get("sysctls") or ())
        if s.get("name") not in _SAFE_SYSCTLS
    ]
    if unsafe:
        yield f"forbidden sysctls ({unsafe})"
    profiles = [_context(spec).get("seccompProfile")] + [
        _context(c).get("seccompProfile") for c in containers
    ]
    if any((p or {}).get("type") == "Unconfined" for p in profiles):
        yield "seccompProfile (Unconfined is forbidden)"


def _restricted(spec: Mapping[str, Any]) -> Iterator[str]:
    pod = _context(spec)
    containers = _containers(spec)
    escalating = [
        c["name"] for c in containers if _context(c).get("allowPrivilegeEscalation") is not False
    ]
    if escalating:
        yield f"allowPrivilegeEscalation != false (containers {escalating})"
    kinds = [
        v["name"]
        for v in spec.get("volumes") or ()
        if not (set(v) - {"name"}) <= _RESTRICTED_VOLUMES
    ]
    if kinds:
        yield f"restricted volume types (volumes {kinds})"
    root_allowed = [
        c["name"]
        for c in containers
        if _context(c).get("runAsNonRoot", pod.get("runAsNonRoot")) is not True
    ]
    if root_allowed:
        yield f"runAsNonRoot != true (containers {root_allowed})"
    root = [
        c["name"] for c in containers if _context(c).get("runAsUser", pod.get("runAsUser")) == 0
    ]
    if root:
        yield f"runAsUser=0 (containers {root})"
    unconfined = [
        c["name"]
        for c in containers
        if (_context(c).get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
        not in ("RuntimeDefault", "Localhost")
    ]
    if unconfined:
        yield f"seccompProfile (containers {unconfined} must set RuntimeDefault or Localhost)"
    undropped = [
        c["name"]
        for c in containers
        if "ALL" not in ((_context(c).get("capabilities") or {}).get("drop") or ())
    ]
    if undropped:
        yield f'unrestricted capabilities (containers {undropped} must drop "ALL")'
    added = sorted(
        {
            name
            for c in containers
            for name in (_context(c).get("capabilities") or {}).get("add") or ()
            if name != "NET_BIND_SERVICE"
        }
    )
    if added:
        yield f"unrestricted capabilities (only NET_BIND_SERVICE may be added, not {added})"
