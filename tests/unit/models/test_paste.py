"""The paste rules at admission (the generated CRDs, as the sandbox's kube-apiserver model admits
them) and in the models: describe-task-definition's wrapper and read-only fields, "" for an
unset enum, families that are not object names, and every CEL rule naming its field."""

from functools import cache
from typing import Any

import pytest
from pydantic import ValidationError

from ecs_operator.models.crd import CUSTOM_RESOURCES, openapi_schema, render_crds
from ecs_operator.models.service import ServiceSpec
from ecs_operator.models.taskdefinition import TaskDefinition, TaskDefinitionSpec
from ecs_sandbox.errors import ApiError
from ecs_sandbox.schema import SchemaValidator
from support.crd_rules import walk_rules

CONTAINER = {"name": "web", "image": "nginx", "memory": 128}


@cache
def validator(kind: str) -> SchemaValidator:
    crd = next(c for c in render_crds().values() if c["spec"]["names"]["kind"] == kind)
    [version] = crd["spec"]["versions"]
    return SchemaValidator.from_crd_version(crd, version)


def admit(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    obj = {
        "apiVersion": "ecs.operator.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }
    return validator(kind).admit(obj, None, strict=True)


def refusal(kind: str, name: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as error:
        admit(kind, name, spec)
    return str(error.value)


@pytest.mark.parametrize("resource", CUSTOM_RESOURCES, ids=lambda r: r.kind)
def test_every_cel_rule_names_its_field(resource: Any) -> None:
    """A rule without fieldPath is reported at the node that holds it; at the root that is no
    field at all, which kube-apiserver prints as `<nil>:`."""
    for path, rule in walk_rules(openapi_schema(resource.model)):
        assert rule.get("fieldPath", "").startswith("."), (path, rule["message"])


def test_root_rules_are_reported_at_their_field() -> None:
    message = refusal(
        "TaskDefinition", "api", {"family": "web", "containerDefinitions": [CONTAINER]}
    )
    assert "spec.family: Invalid value" in message and "<nil>" not in message
    message = refusal("TaskDefinition", "f" * 246, {"containerDefinitions": [CONTAINER]})
    assert "metadata.name: Invalid value" in message
    message = refusal("Service", "s" * 201, {"taskDefinition": "web", "desiredCount": 1})
    assert "metadata.name: Invalid value" in message


def test_a_family_may_differ_from_the_name_in_case_and_underscores() -> None:
    admit(
        "TaskDefinition",
        "consulserver",
        {"family": "consulServer", "containerDefinitions": [CONTAINER]},
    )
    admit(
        "TaskDefinition",
        "clerk-backend-task",
        {"taskDefinition": {"family": "clerk_backend_task", "containerDefinitions": [CONTAINER]}},
    )
    message = refusal(
        "TaskDefinition",
        "clerk",
        {"taskDefinition": {"family": "clerk_backend_task", "containerDefinitions": [CONTAINER]}},
    )
    assert "spec.taskDefinition.family: Invalid value" in message


def test_describe_output_is_admitted_with_its_wrapper_and_errors_name_the_inner_field() -> None:
    body = {
        "family": "web",
        "revision": 4,
        "status": "ACTIVE",
        "registeredAt": 1699999999.5,
        "containerDefinitions": [CONTAINER],
    }
    stored = admit(
        "TaskDefinition", "web", {"taskDefinition": body, "tags": [{"key": "a", "value": "b"}]}
    )
    assert stored["spec"]["taskDefinition"]["revision"] == 4
    assert stored["spec"]["networkMode"] == "bridge"  # defaulted beside the wrapper: ignored
    assert TaskDefinition.model_validate(stored).spec.network_mode == "bridge"
    bad = body | {"containerDefinitions": [CONTAINER | {"memory": 2}]}
    message = refusal("TaskDefinition", "web", {"taskDefinition": bad})
    assert "spec.taskDefinition.containerDefinitions[0].memory: Invalid value: 2" in message
    bad = body | {"containerDefinitions": [CONTAINER, CONTAINER]}
    message = refusal("TaskDefinition", "web", {"taskDefinition": bad})
    assert "spec.taskDefinition.containerDefinitions: Invalid value" in message
    assert "container names must be unique" in message
    message = refusal("TaskDefinition", "web", {"taskDefinition": body, "memory": "512"})
    assert "spec.taskDefinition: Forbidden: spec.taskDefinition holds the whole task" in message
    message = refusal("TaskDefinition", "web", {"family": "web"})
    assert "spec.containerDefinitions: Required value" in message
    message = refusal("TaskDefinition", "web", {"taskDefinition": body | {"tags": []}})
    assert 'unknown field "spec.taskDefinition.tags"' in message


def test_the_models_read_the_wrapper_as_the_definition_it_describes() -> None:
    body = {
        "family": "web",
        "revision": 4,
        "registeredAt": "2024-01-01T00:00:00Z",
        "containerDefinitions": [CONTAINER],
    }
    spec = TaskDefinitionSpec.model_validate({"taskDefinition": body})
    assert spec.wrapped and spec.revision == 4 and spec.container_definitions[0].name == "web"
    assert spec.read_only_fields == ["revision", "registeredAt"]
    assert "revision" not in spec.model_dump(mode="json", exclude_none=True)
    assert (
        spec.user_path("spec.containerDefinitions[0]")
        == "spec.taskDefinition.containerDefinitions[0]"
    )
    assert spec.user_path("spec.tags[0]") == "spec.tags[0]"
    plain = TaskDefinitionSpec.model_validate(body)
    assert not plain.wrapped and plain.user_path("spec.revision") == "spec.revision"
    with pytest.raises(ValidationError, match="registeredAt"):
        TaskDefinitionSpec.model_validate(body | {"registeredAt": {"when": "now"}})
    with pytest.raises(ValidationError, match=r"spec\.cpu: spec\.taskDefinition holds the whole"):
        TaskDefinitionSpec.model_validate({"taskDefinition": body, "cpu": "256"})


TD_EMPTY = {
    "ipcMode": "",
    "pidMode": "",
    "networkMode": "",
    "containerDefinitions": [
        CONTAINER
        | {
            "portMappings": [{"containerPort": 80, "appProtocol": "", "protocol": ""}],
            "versionConsistency": "",
        }
    ],
    "runtimePlatform": {"cpuArchitecture": "", "operatingSystemFamily": "LINUX"},
}


def test_an_empty_enum_means_not_set_in_the_schema_and_the_model() -> None:
    admit("TaskDefinition", "web", TD_EMPTY)
    spec = TaskDefinitionSpec.model_validate(TD_EMPTY)
    assert (spec.ipc_mode, spec.pid_mode, spec.network_mode) == (None, None, "bridge")
    [mapping] = spec.container_definitions[0].port_mappings or []
    assert (mapping.app_protocol, mapping.protocol) == (None, "tcp")
    assert spec.runtime_platform is not None and spec.runtime_platform.cpu_architecture is None
    service = {"taskDefinition": "web", "desiredCount": 1, "launchType": "", "propagateTags": ""}
    admit("Service", "web", service)
    assert ServiceSpec.model_validate(service).launch_type is None
    message = refusal("TaskDefinition", "web", TD_EMPTY | {"ipcMode": "shareable"})
    assert "spec.ipcMode: Unsupported value" in message
