"""Operator-side checks of task definitions and of a Task's changes to them."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from ecs_operator.core.render import NOT_HONOURED
from ecs_operator.core.security import SecurityPolicy, Violation
from ecs_operator.core.validation import (
    field_path,
    task_definition_problems,
    task_problems,
    unreadable_task_status,
    unsupported_fields,
    validation_problems,
)
from ecs_operator.models.task import TaskSpec
from ecs_operator.models.taskdefinition import TaskDefinitionSpec


def definition(*containers: dict[str, Any], **fields: Any) -> TaskDefinitionSpec:
    return TaskDefinitionSpec.model_validate({"containerDefinitions": list(containers), **fields})


def container(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "nginx", **fields}


def task(**fields: Any) -> TaskSpec:
    return TaskSpec.model_validate({"taskDefinition": "web", **fields})


def test_a_sound_definition_has_no_problems() -> None:
    spec = definition(
        container("a", cpu=256, memory=512, memoryReservation=256),
        container("b", cpu=256, memoryReservation=256),
        cpu="0.5 vCPU",
        memory="1GB",
    )
    assert task_definition_problems(spec, SecurityPolicy()) == []
    assert task_problems(spec, task(), SecurityPolicy()) == []


def test_memory_and_cpu_must_fit_the_task() -> None:
    spec = definition(
        container("a", cpu=512, memory=600),
        container("b", cpu=600, memoryReservation=500),
        cpu="1 vCPU",
        memory="512",
    )
    assert task_definition_problems(spec, SecurityPolicy()) == [
        Violation(
            "spec.containerDefinitions[0].memory",
            "the container's memory (600 MiB) is greater than the task's (512 MiB)",
        ),
        Violation(
            "spec.containerDefinitions",
            "the containers reserve 1100 MiB of memory (memoryReservation, else memory), more "
            "than the task's 512 MiB",
        ),
        Violation(
            "spec.containerDefinitions",
            "the containers reserve 1112 CPU units, more than the task's 1024",
        ),
    ]


def test_overrides_are_checked_together_with_the_definition() -> None:
    spec = definition(container("a", memory=256, memoryReservation=128), memory="1GB")
    assert task_problems(spec, task(), SecurityPolicy()) == []
    shrunk = task(overrides={"memory": "200", "containerOverrides": [{"name": "a", "memory": 64}]})
    assert task_problems(spec, shrunk, SecurityPolicy()) == [
        Violation(
            "spec.containerDefinitions[0].memoryReservation",
            "memoryReservation (128 MiB) must be less than memory (64 MiB) with the task's "
            "overrides",
        )
    ]
    grown = task(overrides={"containerOverrides": [{"name": "a", "memory": 2048}]})
    assert task_problems(spec, grown, SecurityPolicy()) == [
        Violation(
            "spec.containerDefinitions[0].memory",
            "the container's memory (2048 MiB) is greater than the task's (1024 MiB) with the "
            "task's overrides",
        )
    ]


def test_port_names_are_unique_across_containers() -> None:
    ports = [{"containerPort": 80, "name": "http"}]
    spec = definition(
        container("a", memory=64, portMappings=ports),
        container("b", memory=64, portMappings=[{"containerPort": 81, "name": "admin"}, *ports]),
    )
    assert task_definition_problems(spec, SecurityPolicy()) == [
        Violation(
            "spec.containerDefinitions[1].portMappings[1].name",
            "port name 'http' is also used by container 'a'; port names must be unique in the "
            "task definition",
        )
    ]
    distinct = definition(
        container("a", memory=64, portMappings=ports),
        container("b", memory=64, portMappings=[{"containerPort": 81, "name": "admin"}]),
    )
    assert task_definition_problems(distinct, SecurityPolicy()) == []


def test_overrides_are_limited_to_8192_characters_of_json() -> None:
    spec = definition(container("a", memory=256))
    fits = task(overrides={"containerOverrides": [{"name": "a", "command": ["x" * 8000]}]})
    assert task_problems(spec, fits, SecurityPolicy()) == []
    too_big = task(overrides={"containerOverrides": [{"name": "a", "command": ["x" * 8200]}]})
    size = len(too_big.overrides.model_dump_json(exclude_none=True)) if too_big.overrides else 0
    assert task_problems(spec, too_big, SecurityPolicy()) == [
        Violation("spec.overrides", f"{size} characters of JSON; ECS allows at most 8192")
    ]


def test_validation_problems_name_each_field_once() -> None:
    with pytest.raises(ValidationError) as raised:
        TaskDefinitionSpec.model_validate(
            {"containerDefinitions": [{"name": "a", "image": "i", "memory": 2**40}]}
        )
    assert validation_problems(raised.value) == (
        "containerDefinitions[0].memory: Input should be less than or equal to 16777216"
    )
    assert field_path(["spec", "volumes", 0, "host"]) == "spec.volumes[0].host"


def test_an_unreadable_task_is_stopped_with_conditions_naming_the_field() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError) as raised:
        TaskSpec.model_validate({"taskDefinition": "web", "overrides": {"cpu": "999 vCPU"}})
    status = unreadable_task_status(None, raised.value, 3, now)
    assert status is not None
    assert status["stoppedReason"].startswith("ClientException: overrides.cpu")
    assert "999 vCPU" in status["stoppedReason"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Stopped"]["status"] == "True"
    assert conditions["Stopped"]["reason"] == "TaskFailedToStart"
    assert conditions["Stopped"]["message"] == status["stoppedReason"]
    assert conditions["Ready"]["status"] == "False"
    assert unreadable_task_status(status, raised.value, 3, now) is None  # written once


def test_placement_constraints_count_with_the_definitions() -> None:
    member = {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}
    spec = definition(container("a", memory=64), placementConstraints=[member] * 6)
    assert task_problems(spec, task(placementConstraints=[member] * 4), SecurityPolicy()) == []
    assert task_problems(spec, task(placementConstraints=[member] * 5), SecurityPolicy()) == [
        Violation(
            "spec.placementConstraints",
            "11 placement constraints together with the task definition's; at most 10",
        )
    ]


def test_render_refusals_are_problems_all_at_once() -> None:
    spec = definition(
        container("a", memory=64, privileged=True),
        container("b", memory=64, secrets=[{"name": "X", "valueFrom": "a/b:key"}]),
        taskRoleArn="ecs-operator",
    )
    own = SecurityPolicy(operator_service_account="ecs-operator")
    problems = task_definition_problems(spec, own)
    assert [p.field for p in problems] == [
        "spec.containerDefinitions[0].privileged",
        "spec.taskRoleArn",
        "spec.containerDefinitions[1].secrets[0].valueFrom",
    ]
    allowed = task_definition_problems(spec, replace(own, allow_privileged=True))
    assert [p.field for p in allowed] == [
        "spec.taskRoleArn",
        "spec.containerDefinitions[1].secrets[0].valueFrom",
    ]


def test_a_dependency_cycle_is_a_problem() -> None:
    spec = definition(
        container("a", memory=64, dependsOn=[{"containerName": "b", "condition": "START"}]),
        container("b", memory=64, dependsOn=[{"containerName": "a", "condition": "START"}]),
    )
    assert task_definition_problems(spec, SecurityPolicy()) == [
        Violation("spec.containerDefinitions[0].dependsOn", "dependsOn cycle: a -> b -> a")
    ]
    assert unsupported_fields(spec) == []


def test_unsupported_fields_of_a_definition_and_of_a_task() -> None:
    spec = definition(
        container("a", memory=64, ulimits=[{"name": "nofile", "softLimit": 1, "hardLimit": 2}]),
        container("b", memory=64, privileged=True),
    )
    assert [(u.field, u.reason) for u in unsupported_fields(spec)] == [
        ("spec.containerDefinitions[0].ulimits", NOT_HONOURED["containerDefinitions[].ulimits"])
    ]
    with_task = unsupported_fields(spec, task(enableExecuteCommand=True))
    assert [u.field for u in with_task] == [
        "spec.enableExecuteCommand",
        "spec.containerDefinitions[0].ulimits",
    ]
