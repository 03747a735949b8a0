"""Security by default: what a task definition may ask of a node."""

from typing import Any

import pytest

from ecs_operator.core.security import SecurityPolicy, Violation, security_violations
from ecs_operator.models.taskdefinition import TaskDefinitionSpec

HINT = "start the operator with --allow-privileged to permit them"


def definition(container: dict[str, Any] | None = None, **fields: Any) -> TaskDefinitionSpec:
    return TaskDefinitionSpec.model_validate(
        {
            "containerDefinitions": [
                {"name": "ok", "image": "nginx", "memory": 64},
                {"name": "app", "image": "nginx", "memory": 64, **(container or {})},
            ],
            **fields,
        }
    )


def test_a_plain_task_definition_passes_the_default_policy() -> None:
    spec = definition(
        {"linuxParameters": {"capabilities": {"drop": ["ALL"]}}},
        networkMode="awsvpc",
        pidMode="task",
        ipcMode="task",
        volumes=[{"name": "scratch", "host": {}}],
    )
    assert security_violations(spec, SecurityPolicy()) == []


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            definition({"privileged": True}),
            "spec.containerDefinitions[1].privileged",
            f"privileged containers are refused; {HINT}",
        ),
        (
            definition({"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}}),
            "spec.containerDefinitions[1].linuxParameters.devices",
            f"host devices are refused; {HINT}",
        ),
        (
            definition({"linuxParameters": {"capabilities": {"add": ["NET_ADMIN", "SYS_TIME"]}}}),
            "spec.containerDefinitions[1].linuxParameters.capabilities.add",
            f"added Linux capabilities (NET_ADMIN, SYS_TIME) are refused; {HINT}",
        ),
        (
            definition(networkMode="host"),
            "spec.networkMode",
            f"the node's namespaces (networkMode host) are refused; {HINT}",
        ),
        (
            definition(pidMode="host"),
            "spec.pidMode",
            f"the node's namespaces (pidMode host) are refused; {HINT}",
        ),
        (
            definition(ipcMode="host"),
            "spec.ipcMode",
            f"the node's namespaces (ipcMode host) are refused; {HINT}",
        ),
        (
            definition(volumes=[{"name": "a"}, {"name": "logs", "host": {"sourcePath": "/var"}}]),
            "spec.volumes[1].host.sourcePath",
            f"host-path volumes are refused; {HINT}",
        ),
    ],
)
def test_each_refusal_names_its_field(spec: TaskDefinitionSpec, field: str, message: str) -> None:
    assert security_violations(spec, SecurityPolicy()) == [Violation(field, message)]
    assert str(Violation(field, message)) == f"{field}: {message}"
    assert security_violations(spec, SecurityPolicy.from_allow_privileged(True)) == []


def test_each_permission_lifts_only_its_own_refusals() -> None:
    spec = definition(
        {
            "privileged": True,
            "linuxParameters": {
                "devices": [{"hostPath": "/dev/kvm"}],
                "capabilities": {"add": ["SYS_ADMIN"]},
            },
        },
        networkMode="host",
        volumes=[{"name": "root", "host": {"sourcePath": "/"}}],
    )

    def fields(policy: SecurityPolicy) -> set[str]:
        return {violation.field for violation in security_violations(spec, policy)}

    every = fields(SecurityPolicy())
    assert every == {
        "spec.networkMode",
        "spec.volumes[0].host.sourcePath",
        "spec.containerDefinitions[1].privileged",
        "spec.containerDefinitions[1].linuxParameters.devices",
        "spec.containerDefinitions[1].linuxParameters.capabilities.add",
    }
    assert fields(SecurityPolicy(allow_privileged=True)) == every - {
        "spec.containerDefinitions[1].privileged",
        "spec.containerDefinitions[1].linuxParameters.devices",
    }
    assert fields(SecurityPolicy(allow_host_namespaces=True)) == every - {"spec.networkMode"}
    assert fields(SecurityPolicy(allow_host_path=True)) == every - {
        "spec.volumes[0].host.sourcePath"
    }
    assert fields(SecurityPolicy(allow_added_capabilities=True)) == every - {
        "spec.containerDefinitions[1].linuxParameters.capabilities.add"
    }


def test_the_install_flag_is_all_or_nothing() -> None:
    assert SecurityPolicy.from_allow_privileged(False) == SecurityPolicy()
    assert SecurityPolicy.from_allow_privileged(True) == SecurityPolicy(True, True, True, True)
