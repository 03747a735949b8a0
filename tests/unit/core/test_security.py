"""Security by default: what a task definition may ask of a node."""

from dataclasses import replace
from typing import Any

import pytest

from ecs_operator.core.security import (
    ENFORCE_LABEL,
    InstallPolicy,
    SecurityPolicy,
    Violation,
    parse_label,
    parse_service_account,
    pod_security_level,
    pod_security_violations,
    security_violations,
)
from ecs_operator.models.taskdefinition import TaskDefinitionSpec

HINT = (
    "start the operator with --allow-privileged, or grant this namespace "
    "(--allow-privileged-namespace, --allow-privileged-label), to permit them"
)


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
            "Linux capabilities beyond the container runtime's default set (NET_ADMIN, SYS_TIME) "
            f"are refused; {HINT}",
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


def test_capabilities_of_the_runtimes_default_set_may_be_added_back_without_permission() -> None:
    spec = definition({"linuxParameters": {"capabilities": {"add": ["CAP_CHOWN", "setuid"]}}})
    assert security_violations(spec, SecurityPolicy()) == []


@pytest.mark.parametrize(
    ("labels", "level"),
    [
        ({}, "privileged"),
        ({ENFORCE_LABEL: "privileged"}, "privileged"),
        ({ENFORCE_LABEL: "baseline"}, "baseline"),
        ({ENFORCE_LABEL: "restricted"}, "restricted"),
        # Pod Security Admission reads a value that is not a level as the strictest.
        ({ENFORCE_LABEL: "Restricted!"}, "restricted"),
        ({"pod-security.kubernetes.io/warn": "restricted"}, "privileged"),
    ],
)
def test_the_enforced_level_is_read_from_the_namespace_label(
    labels: dict[str, str], level: str
) -> None:
    assert pod_security_level(labels) == level


def test_privilege_is_granted_everywhere_by_the_flag_or_per_namespace() -> None:
    secure = SecurityPolicy()
    everything = SecurityPolicy.from_allow_privileged(True)
    assert InstallPolicy().for_namespace("a", {}) == secure
    assert InstallPolicy(allow_privileged=True).for_namespace("a", {}) == everything
    listed = InstallPolicy(privileged_namespaces=frozenset({"agents"}))
    assert listed.for_namespace("agents", {}) == everything
    assert listed.for_namespace("web", {}) == secure
    labelled = InstallPolicy(privileged_label=("ecs.operator.dev/allow-privileged", "true"))
    assert labelled.for_namespace("x", {"ecs.operator.dev/allow-privileged": "true"}) == everything
    assert labelled.for_namespace("x", {"ecs.operator.dev/allow-privileged": "yes"}) == secure
    assert labelled.for_namespace("x", {}) == secure


def test_the_namespace_standard_and_the_operators_account_go_with_the_namespace() -> None:
    install = InstallPolicy(allow_privileged=True, operator_service_account=("ops", "ecs-operator"))
    policy = install.for_namespace("ops", {ENFORCE_LABEL: "restricted"})
    assert policy.pod_security == "restricted"
    assert policy.allow_privileged  # the standard still refuses privileged containers
    assert policy.operator_service_account == "ecs-operator"
    assert install.for_namespace("web", {}).operator_service_account is None


def test_the_standard_refuses_what_the_install_allows() -> None:
    spec = definition({"privileged": True, "user": "1000"}, networkMode="host")
    policy = SecurityPolicy.from_allow_privileged(True)
    assert security_violations(spec, policy) == []
    fields = [v.field for v in security_violations(spec, replace(policy, pod_security="baseline"))]
    assert fields == ["spec.networkMode", "spec.containerDefinitions[1].privileged"]


def test_restricted_needs_a_non_root_numeric_user_on_every_container() -> None:
    spec = definition({"user": "1000:0"})
    [violation] = pod_security_violations(spec, "restricted")
    # The first container gives no user.
    assert violation.field == "spec.containerDefinitions[0].user"
    assert violation.message == (
        'the namespace enforces the "restricted" Pod Security Standard (runAsNonRoot): the '
        "container gives no user, so it may run as root; set user to a non-root numeric uid, "
        'e.g. "1000" or "1000:1000"'
    )
    assert pod_security_violations(spec, "baseline") == []
    assert pod_security_violations(spec, "privileged") == []


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_label, "no-equals"),
        (parse_label, "=value"),
        (parse_service_account, "no-slash"),
        (parse_service_account, "ns/"),
        (parse_service_account, "a/b/c"),
    ],
)
def test_flag_values_that_do_not_parse_are_refused_naming_the_form(parse: Any, text: str) -> None:
    with pytest.raises(ValueError, match=repr(text)):
        parse(text)
    assert parse_label("a/b=") == ("a/b", "")
    assert parse_service_account("ops/ecs-operator") == ("ops", "ecs-operator")
