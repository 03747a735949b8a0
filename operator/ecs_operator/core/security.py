"""Security by default: what a task definition may ask of a node.

A Task is a proxy for "create pods", so by default the operator refuses what would let a task
escape its pod: privileged containers and host devices, the node's network, PID or IPC
namespace, host-path volumes, and added Linux capabilities (dropping capabilities is always
fine). An installation lifts these one by one, or all at once with ``--allow-privileged``
(``SecurityPolicy.from_allow_privileged``).

ECS ``containerOverrides`` cannot change any of these fields, so a task definition that passes
passes for every Task that runs it; no override is examined.
"""

from dataclasses import dataclass

from ecs_operator.models.taskdefinition import TaskDefinitionSpec

_HINT = "start the operator with --allow-privileged to permit them"


@dataclass(frozen=True)
class SecurityPolicy:
    """What the installation allows beyond the secure default (everything False)."""

    allow_privileged: bool = False
    allow_host_namespaces: bool = False
    allow_host_path: bool = False
    allow_added_capabilities: bool = False

    @classmethod
    def from_allow_privileged(cls, allowed: bool) -> "SecurityPolicy":
        """The policy of the single install flag: everything allowed, or the secure default."""
        return cls(allowed, allowed, allowed, allowed)


@dataclass(frozen=True)
class Violation:
    """A field that breaks a rule, and the rule in one sentence."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def security_violations(spec: TaskDefinitionSpec, policy: SecurityPolicy) -> list[Violation]:
    """Every field of ``spec`` the policy refuses, in field order; empty when it may run."""
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
        added = linux.capabilities.add if linux and linux.capabilities else None
        if added and not policy.allow_added_capabilities:
            violations.append(
                Violation(
                    f"{path}.linuxParameters.capabilities.add",
                    f"added Linux capabilities ({', '.join(added)}) are refused; {_HINT}",
                )
            )
    return violations
