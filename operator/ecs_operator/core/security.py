"""Security by default: what a task definition may ask of a node, and of a namespace.

A Task is a proxy for "create pods": it gives its creator what creating a Pod in that namespace
gives (the namespace's ServiceAccounts and Secrets), and no more. So by default the operator
refuses what would let a task escape its pod: privileged containers and host devices, the
node's network, PID or IPC namespace, host-path volumes, and Linux capabilities beyond the
container runtime's default set (the set the ``baseline`` Pod Security Standard allows;
dropping capabilities is always fine). An installation lifts these everywhere with
``--allow-privileged``, or for some namespaces only (``InstallPolicy``): a list of names, or a
namespace label that only whoever may edit Namespace objects can set.

A namespace labelled ``pod-security.kubernetes.io/enforce`` (Pod Security Admission) refuses
Pods that break its standard at creation. The operator renders Pods that meet it
(``core/render.py``) and refuses, before any create, a task that cannot meet it, naming the
task definition field and the standard's rule (``pod_security_violations``). The install's
permissions never override the namespace's standard.

A task role (``taskRoleArn``) may name any ServiceAccount of the task's namespace, as a Pod may,
except the operator's own: a task never runs with the operator's permissions.

ECS ``containerOverrides`` cannot change any of these fields, so a task definition that passes
passes for every Task that runs it; no override is examined (the task role override is checked
where the role is rendered).
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final, Literal

from ecs_operator.models.taskdefinition import TaskDefinitionSpec

PodSecurityLevel = Literal["privileged", "baseline", "restricted"]

ENFORCE_LABEL: Final = "pod-security.kubernetes.io/enforce"
LEVELS: Final[tuple[PodSecurityLevel, ...]] = ("privileged", "baseline", "restricted")

# The capabilities the container runtime grants by default, which the baseline standard lets a
# Pod add back after dropping them: adding one gives nothing a plain Pod does not have.
DEFAULT_CAPABILITIES: Final = frozenset(
    {
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
    }
)
# The only capability the restricted standard lets a container add.
RESTRICTED_CAPABILITIES: Final = frozenset({"NET_BIND_SERVICE"})
# The sysctls the baseline standard allows (Kubernetes' "safe" set).
SAFE_SYSCTLS: Final = frozenset(
    {
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
    }
)

_NAMESPACED_SYSCTLS: Final = ("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.")

_HINT = (
    "start the operator with --allow-privileged, or grant this namespace "
    "(--allow-privileged-namespace, --allow-privileged-label), to permit them"
)


def capability_name(name: str) -> str:
    """A capability as Kubernetes spells it: upper case, without ``CAP_``."""
    return name.upper().removeprefix("CAP_")


def is_namespaced_sysctl(name: str, host_network: bool) -> bool:
    """Whether a Pod may set the sysctl ``name`` at all (the kernel namespaces it)."""
    if name.startswith("net."):
        return not host_network
    return name == "kernel.sem" or name.startswith(_NAMESPACED_SYSCTLS)


def pod_security_level(namespace_labels: Mapping[str, str]) -> PodSecurityLevel:
    """The standard a namespace enforces. Without the label, ``privileged`` (nothing enforced);
    with a value that is not a level, ``restricted``, as Pod Security Admission reads it."""
    value = namespace_labels.get(ENFORCE_LABEL)
    if value is None:
        return "privileged"
    return next((level for level in LEVELS if level == value), "restricted")


@dataclass(frozen=True)
class SecurityPolicy:
    """What one namespace allows: the installation's permissions beyond the secure default
    (everything False), the Pod Security Standard the namespace enforces, and the
    ServiceAccount no task there may use (the operator's own, in its namespace)."""

    allow_privileged: bool = False
    allow_host_namespaces: bool = False
    allow_host_path: bool = False
    allow_added_capabilities: bool = False
    pod_security: PodSecurityLevel = "privileged"
    operator_service_account: str | None = None

    @classmethod
    def from_allow_privileged(cls, allowed: bool) -> "SecurityPolicy":
        """The policy of the single install flag: everything allowed, or the secure default."""
        return cls(allowed, allowed, allowed, allowed)

    @property
    def restricted(self) -> bool:
        return self.pod_security == "restricted"


@dataclass(frozen=True)
class InstallPolicy:
    """What the installation grants, namespace by namespace: everything everywhere
    (``--allow-privileged``), or in the listed namespaces, or in namespaces carrying the label
    ``KEY=VALUE``; and which ServiceAccount (``NAMESPACE/NAME``) is the operator's own."""

    allow_privileged: bool = False
    privileged_namespaces: frozenset[str] = frozenset()
    privileged_label: tuple[str, str] | None = None
    operator_service_account: tuple[str, str] | None = None

    def privileged_in(self, namespace: str, namespace_labels: Mapping[str, str]) -> bool:
        if self.allow_privileged or namespace in self.privileged_namespaces:
            return True
        if self.privileged_label is None:
            return False
        key, value = self.privileged_label
        return namespace_labels.get(key) == value

    def for_namespace(self, namespace: str, namespace_labels: Mapping[str, str]) -> SecurityPolicy:
        """The policy of a task in ``namespace``, whose labels are ``namespace_labels``."""
        own = self.operator_service_account
        return replace(
            SecurityPolicy.from_allow_privileged(self.privileged_in(namespace, namespace_labels)),
            pod_security=pod_security_level(namespace_labels),
            operator_service_account=own[1] if own and own[0] == namespace else None,
        )


def parse_label(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (the flag's form) as (key, value); raises ValueError naming the form."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise ValueError(f"{text!r} is not a label KEY=VALUE")
    return key, value


def parse_service_account(text: str) -> tuple[str, str]:
    """``NAMESPACE/NAME`` as (namespace, name); raises ValueError naming the form."""
    namespace, separator, name = text.partition("/")
    if not separator or not namespace or not name or "/" in name:
        raise ValueError(f"{text!r} is not a ServiceAccount NAMESPACE/NAME")
    return namespace, name


@dataclass(frozen=True)
class Violation:
    """A field that breaks a rule, and the rule in one sentence."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def security_violations(spec: TaskDefinitionSpec, policy: SecurityPolicy) -> list[Violation]:
    """Every field of ``spec`` the policy refuses, in field order; empty when it may run: first
    what the installation refuses, then what the namespace's Pod Security Standard refuses of
    the rest."""
    violations = _install_violations(spec, policy)
    refused = {violation.field for violation in violations}
    violations.extend(
        violation
        for violation in pod_security_violations(spec, policy.pod_security)
        if violation.field not in refused
    )
    return violations


def _install_violations(spec: TaskDefinitionSpec, policy: SecurityPolicy) -> list[Violation]:
    violations: list[Violation] = []
    if not policy.allow_host_namespaces:
        for field, value in (
            ("networkMode", spec.network_mode),
            ("pidMode", spec.pid_mode),
            ("ipcMode", spec.ipc_mode),
        ):
            if value == "host":
                violations.append(
                    Violation(
                        f"spec.{field}",
                        f"the node's namespaces ({field} host) are refused; {_HINT}",
                    )
                )
    if not policy.allow_host_path:
        for index, volume in enumerate(spec.volumes or []):
            if volume.host is not None and volume.host.source_path:
                violations.append(
                    Violation(
                        f"spec.volumes[{index}].host.sourcePath",
                        f"host-path volumes are refused; {_HINT}",
                    )
                )
    for index, container in enumerate(spec.container_definitions):
        path = f"spec.containerDefinitions[{index}]"
        linux = container.linux_parameters
        if container.privileged and not policy.allow_privileged:
            violations.append(
                Violation(f"{path}.privileged", f"privileged containers are refused; {_HINT}")
            )
        if linux is not None and linux.devices and not policy.allow_privileged:
            violations.append(
                Violation(f"{path}.linuxParameters.devices", f"host devices are refused; {_HINT}")
            )
        beyond = [
            name for name in _added_capabilities(spec, index) if name not in DEFAULT_CAPABILITIES
        ]
        if beyond and not policy.allow_added_capabilities:
            violations.append(
                Violation(
                    f"{path}.linuxParameters.capabilities.add",
                    f"Linux capabilities beyond the container runtime's default set "
                    f"({', '.join(beyond)}) are refused; {_HINT}",
                )
            )
    return violations


def _added_capabilities(spec: TaskDefinitionSpec, index: int) -> list[str]:
    linux = spec.container_definitions[index].linux_parameters
    added = linux.capabilities.add if linux and linux.capabilities else None
    return [capability_name(name) for name in added or ()]


def _standard(level: PodSecurityLevel, rule: str, advice: str) -> str:
    return f'the namespace enforces the "{level}" Pod Security Standard ({rule}): {advice}'


def user_id(user: str | None) -> int | None:
    """The numeric uid of an ECS ``user`` (``uid[:gid]``), or None (absent or a name)."""
    uid = (user or "").partition(":")[0]
    return int(uid) if uid.isascii() and uid.isdigit() else None


def pod_security_violations(spec: TaskDefinitionSpec, level: PodSecurityLevel) -> list[Violation]:
    """What keeps the Pod of ``spec`` from meeting the ``level`` Pod Security Standard, as the
    fields that ask for it; empty when the rendered Pod meets it. What the standard requires
    and ECS leaves open (seccomp, no privilege escalation, dropped capabilities) the Pod is
    rendered with, so only what the task definition asks for can break it."""
    if level == "privileged":
        return []
    violations: list[Violation] = []
    for field, value in (
        ("networkMode", spec.network_mode),
        ("pidMode", spec.pid_mode),
        ("ipcMode", spec.ipc_mode),
    ):
        if value == "host":
            violations.append(
                Violation(
                    f"spec.{field}",
                    _standard(level, "host namespaces", "the node's namespaces are not allowed"),
                )
            )
    for index, volume in enumerate(spec.volumes or []):
        if volume.host is not None and volume.host.source_path:
            violations.append(
                Violation(
                    f"spec.volumes[{index}].host.sourcePath",
                    _standard(level, "hostPath volumes", "host-path volumes are not allowed"),
                )
            )
    for index in range(len(spec.container_definitions)):
        violations.extend(_container_pod_security(spec, index, level))
    return violations


def _container_pod_security(
    spec: TaskDefinitionSpec, index: int, level: PodSecurityLevel
) -> list[Violation]:
    container = spec.container_definitions[index]
    path = f"spec.containerDefinitions[{index}]"
    linux = container.linux_parameters
    violations: list[Violation] = []
    if container.privileged:
        violations.append(
            Violation(
                f"{path}.privileged",
                _standard(level, "privileged", "privileged containers are not allowed"),
            )
        )
    if linux is not None and linux.devices:
        violations.append(
            Violation(
                f"{path}.linuxParameters.devices",
                _standard(level, "hostPath volumes", "host devices are not allowed"),
            )
        )
    allowed = RESTRICTED_CAPABILITIES if level == "restricted" else DEFAULT_CAPABILITIES
    beyond = [name for name in _added_capabilities(spec, index) if name not in allowed]
    if beyond:
        violations.append(
            Violation(
                f"{path}.linuxParameters.capabilities.add",
                _standard(
                    level,
                    "capabilities",
                    f"{', '.join(beyond)} may not be added (allowed: {', '.join(sorted(allowed))})",
                ),
            )
        )
    if spec.network_mode == "bridge":
        for position, mapping in enumerate(container.port_mappings or []):
            if mapping.host_port:
                violations.append(
                    Violation(
                        f"{path}.portMappings[{position}].hostPort",
                        _standard(
                            level,
                            "hostPorts",
                            "host ports are not allowed; reach the port on the pod IP or "
                            "through a LoadBalancer",
                        ),
                    )
                )
    for position, control in enumerate(container.system_controls or []):
        name = control.namespace
        if name not in SAFE_SYSCTLS and is_namespaced_sysctl(name, host_network=False):
            violations.append(
                Violation(
                    f"{path}.systemControls[{position}]",
                    _standard(
                        level,
                        "sysctls",
                        f"{name} is not one of the safe sysctls "
                        f"({', '.join(sorted(SAFE_SYSCTLS))})",
                    ),
                )
            )
    if level == "restricted":
        violations.extend(_run_as_non_root(path, container.user))
    return violations


def _run_as_non_root(path: str, user: str | None) -> list[Violation]:
    uid = user_id(user)
    if uid is not None and uid != 0:
        return []
    if uid == 0:
        problem = "the container runs as root (uid 0)"
    elif user:
        problem = f"the user {user!r} is a name, and only a numeric uid can be verified"
    else:
        problem = "the container gives no user, so it may run as root"
    return [
        Violation(
            f"{path}.user",
            _standard(
                "restricted",
                "runAsNonRoot",
                f'{problem}; set user to a non-root numeric uid, e.g. "1000" or "1000:1000"',
            ),
        )
    ]
