"""Registering a TaskDefinition pasted as ECS writes it: describe-task-definition's output (its
wrapper, its read-only fields), "" for an unset enum, a family that is not an object name."""

import copy
from datetime import UTC, datetime
from typing import Any

from ecs_operator.core.registration import plan_registration
from ecs_operator.core.security import SecurityPolicy
from ecs_operator.models.taskdefinition import READ_ONLY_FIELDS

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
BODY: dict[str, Any] = {
    "family": "hello_world",
    "taskDefinitionArn": "arn:aws:ecs:us-west-2:123456789012:task-definition/hello_world:8",
    "revision": 8,
    "status": "ACTIVE",
    "compatibilities": ["EC2"],
    "registeredAt": "2024-03-14T10:21:07.117000-07:00",
    "registeredBy": "arn:aws:iam::123456789012:user/admin",
    "networkMode": "bridge",
    "containerDefinitions": [
        {"name": "web", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80}]}
    ],
}


def td(spec: dict[str, Any], name: str = "hello-world") -> dict[str, Any]:
    return {
        "apiVersion": "ecs.operator.dev/v1alpha1",
        "kind": "TaskDefinition",
        "metadata": {"name": name, "namespace": "default", "uid": "uid-1", "generation": 1},
        "spec": copy.deepcopy(spec),
    }


def register(spec: dict[str, Any], name: str = "hello-world") -> Any:
    return plan_registration(td(spec, name), [], set(), SecurityPolicy(), NOW)


def accepted(plan: Any) -> dict[str, Any]:
    [condition] = plan.status["conditions"]
    assert condition["type"] == "Accepted"
    return dict(condition)


def test_describe_output_registers_what_it_describes_and_reports_its_read_only_fields() -> None:
    wrapped = register({"taskDefinition": BODY, "tags": [{"key": "team", "value": "blog"}]})
    unwrapped = register(BODY)
    for plan, where in ((wrapped, "spec.taskDefinition"), (unwrapped, "spec")):
        assert accepted(plan)["status"] == "True"
        assert plan.status["taskDefinitionArn"] == "hello-world:1"  # the operator's own
        stored = plan.register["data"]
        assert not set(READ_ONLY_FIELDS) & set(stored)
        assert stored["containerDefinitions"][0]["name"] == "web"
        read_only = [u["field"] for u in plan.status["unsupported"] if u.get("readOnly")]
        assert read_only == [
            f"{where}.{name}"
            for name in (
                "taskDefinitionArn",
                "revision",
                "status",
                "compatibilities",
                "registeredAt",
                "registeredBy",
            )
        ]
        assert f"{where}.revision (output of ECS, not input" in accepted(plan)["message"]
    assert wrapped.register["data"]["tags"] == [{"key": "team", "value": "blog"}]
    assert {u["field"] for u in wrapped.status["unsupported"]} >= {"spec.tags"}
    assert wrapped.register["data"] == unwrapped.register["data"] | {
        "tags": [{"key": "team", "value": "blog"}]
    }


def test_a_refused_wrapped_spec_names_the_fields_where_the_user_wrote_them() -> None:
    body = copy.deepcopy(BODY)
    body["memory"] = "64"  # the container's memory (128 MiB) exceeds the task's
    plan = register({"taskDefinition": body})
    refused = accepted(plan)
    assert refused["status"] == "False"
    assert refused["message"].startswith("spec.taskDefinition.containerDefinitions[0].memory:")
    body["cpu"] = "0.01 vCPU"  # admitted by the pattern, refused by the model (10 units)
    refused = accepted(register({"taskDefinition": body}))
    assert "spec.taskDefinition.cpu: " in refused["message"]
    refused = accepted(register({"taskDefinition": BODY, "cpu": "256"}))
    assert refused["message"].startswith("spec.cpu: spec.taskDefinition holds the whole")


def test_an_empty_enum_means_not_set() -> None:
    plain = {k: v for k, v in BODY.items() if k not in READ_ONLY_FIELDS}
    exported = plain | {"ipcMode": "", "pidMode": "", "networkMode": ""}
    exported["containerDefinitions"] = [
        plain["containerDefinitions"][0]
        | {"portMappings": [{"containerPort": 80, "appProtocol": "", "protocol": ""}]}
    ]
    assert accepted(register(exported))["status"] == "True"
    assert register(exported).register["data"] == register(plain).register["data"]


def test_a_family_registers_under_its_kubernetes_name() -> None:
    plan = register(BODY | {"family": "Hello_World"})
    assert accepted(plan)["status"] == "True"
    assert plan.status["taskDefinitionArn"] == "hello-world:1"
    refused = accepted(register(BODY, name="hello"))
    assert refused["status"] == "False"
    assert "spec.family 'hello_world' must match metadata.name" in refused["message"]
    wrapped = accepted(register({"taskDefinition": BODY}, name="hello"))
    assert "spec.taskDefinition.family 'hello_world' must match" in wrapped["message"]


def test_proxy_configuration_and_inference_accelerators_are_reported() -> None:
    body = {k: v for k, v in BODY.items() if k not in READ_ONLY_FIELDS}
    body["proxyConfiguration"] = {
        "type": "APPMESH",
        "containerName": "web",
        "properties": [{"name": "IgnoredUID", "value": "1337"}],
    }
    body["inferenceAccelerators"] = [{"deviceName": "d1", "deviceType": "eia2.medium"}]
    plan = register(body)
    assert accepted(plan)["reason"] == "RegisteredWithUnsupportedFields"
    fields = [u["field"] for u in plan.status["unsupported"]]
    assert "spec.proxyConfiguration" in fields and "spec.inferenceAccelerators" in fields
    assert plan.register["data"]["proxyConfiguration"]["containerName"] == "web"
