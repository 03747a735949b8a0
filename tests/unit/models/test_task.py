"""Task model: RunTask JSON parses as is, defaults, status, and the CEL rules' verdicts."""

import copy
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from ecs_operator.models.crd import openapi_schema
from ecs_operator.models.task import (
    DEFAULT_TTL_SECONDS_AFTER_STOPPED,
    LOAD_BALANCERS_MESSAGE,
    Task,
    TaskSpec,
    TaskStatus,
)
from support.crd_rules import evaluate, find_rule, fixture, instances, schemas, walk_rules

RUN_TASK = "nightly-report.runtask.json"
STATUS = "nightly-report.task-status.json"


def k8s_object(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "ecs.operator.dev/v1alpha1",
        "kind": "Task",
        "metadata": {"name": "nightly-report-7xk2p", "namespace": "batch", "generation": 1},
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


def test_run_task_json_round_trips_unchanged() -> None:
    raw = fixture(RUN_TASK)
    assert TaskSpec.model_validate(raw).model_dump(mode="json", exclude_unset=True) == raw


def test_status_round_trips_unchanged() -> None:
    raw = fixture(STATUS)
    status = TaskStatus.model_validate(raw)
    assert status.containers is not None
    assert status.containers[0].network_bindings is not None
    assert status.containers[0].network_bindings[0].bind_ip == "10.0.0.12"
    assert status.model_dump(mode="json", exclude_none=True) == raw


def test_kubernetes_object_parses() -> None:
    task = Task.model_validate(k8s_object(fixture(RUN_TASK), fixture(STATUS)))
    assert task.metadata.namespace == "batch"
    assert task.spec.task_definition == "nightly-report:3"
    assert task.spec.count == 2
    assert task.status is not None and task.status.stop_code == "EssentialContainerExited"
    assert task.spec.overrides is not None and task.spec.overrides.container_overrides is not None
    assert task.spec.overrides.container_overrides[0].memory_reservation == 512


def test_defaults() -> None:
    spec = TaskSpec.model_validate({"taskDefinition": "web"})
    assert spec.desired_status == "RUNNING"
    assert spec.ttl_seconds_after_stopped == DEFAULT_TTL_SECONDS_AFTER_STOPPED == 3600
    assert spec.count == 1
    assert spec.group is None  # the operator applies family:NAME, never writing spec
    assert spec.model_dump(exclude_defaults=True) == {"taskDefinition": "web"}


def test_explicit_alias_for_ecs_managed_tags() -> None:
    spec = TaskSpec(task_definition="web", enable_ecs_managed_tags=True)
    assert spec.model_dump(exclude_defaults=True)["enableECSManagedTags"] is True


def test_load_balancers_are_refused_with_the_ecs_message() -> None:
    with pytest.raises(ValidationError, match="standalone tasks cannot use a load balancer"):
        TaskSpec.model_validate(
            {"taskDefinition": "web", "loadBalancers": [{"containerName": "web"}]}
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"taskDefinition": "web:0"}, "taskDefinition"),
        ({"taskDefinition": "web:latest"}, "taskDefinition"),
        ({"startedBy": "me@example"}, "startedBy"),
        ({"startedBy": "a" * 129}, "startedBy"),
        ({"desiredStatus": "PENDING"}, "desiredStatus"),
        ({"stoppedReason": "x" * 256}, "stoppedReason"),
        ({"ttlSecondsAfterStopped": -1}, "ttlSecondsAfterStopped"),
        ({"tags": [{"key": "k" * 129}]}, "key"),
        ({"tags": [{"key": "k"}] * 51}, "tags"),
        ({"placementStrategy": [{"type": "random"}] * 6}, "placementStrategy"),
        ({"placementConstraints": [{"type": "distinctInstance"}] * 11}, "placementConstraints"),
        ({"overrides": {"cpu": "lots"}}, "cpu"),
        ({"overrides": {"containerOverrides": [{"command": ["x"]}]}}, "name"),
        ({"overrides": {"containerOverrides": [{"name": "a", "image": "b"}]}}, "image"),
        ({"count": 0}, "count"),
        ({"count": 11}, "count"),
    ],
)
def test_bad_input_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        TaskSpec.model_validate({"taskDefinition": "web"} | change)
    assert field in str(error.value)


@pytest.mark.parametrize("count", [0, 11, -1])
def test_a_count_outside_run_task_s_1_to_10_is_refused_by_the_schema_and_the_model(
    count: int,
) -> None:
    """What the API server refuses at admission (the CRD's schema, here validated as the API
    server does) the model refuses too, both naming spec.count."""
    schema = openapi_schema(Task)
    good, bad = (
        k8s_object({"taskDefinition": "web", "count": 10}),
        k8s_object({"taskDefinition": "web", "count": count}),
    )
    assert list(jsonschema.Draft7Validator(schema).iter_errors(good)) == []
    [error] = jsonschema.Draft7Validator(schema).iter_errors(bad)
    assert list(error.absolute_path) == ["spec", "count"]
    assert Task.model_validate(good).spec.count == 10
    with pytest.raises(ValidationError) as refused:
        Task.model_validate(bad)
    assert [e["loc"] for e in refused.value.errors()] == [("spec", "count")]


def test_bad_status_names_the_field() -> None:
    with pytest.raises(ValidationError, match="taskArn"):
        TaskStatus.model_validate({"taskArn": "ABC"})
    with pytest.raises(ValidationError, match="lastStatus"):
        TaskStatus.model_validate({"lastStatus": "DELETED"})


# ---------------------------------------------------------------------------------------------
# CEL rules

BASE = {"taskDefinition": "web", "desiredStatus": "RUNNING"}
STOPPED = BASE | {"desiredStatus": "STOPPED"}

SPEC_CASES = [
    # (message fragment, good self, bad self)
    (LOAD_BALANCERS_MESSAGE, BASE, BASE | {"loadBalancers": [{"containerName": "web"}]}),
    (
        "stoppedReason is only allowed with desiredStatus STOPPED",
        STOPPED | {"stoppedReason": "maintenance"},
        BASE | {"stoppedReason": "maintenance"},
    ),
]

NESTED_CASES = [
    (
        "spec.overrides",
        "each container may be overridden once",
        {"containerOverrides": [{"name": "a"}, {"name": "b"}]},
        {"containerOverrides": [{"name": "a"}, {"name": "a", "memory": 64}]},
    ),
    (
        "spec.overrides.containerOverrides[]",
        "memory must be greater than memoryReservation",
        {"name": "a", "memory": 128, "memoryReservation": 64},
        {"name": "a", "memory": 64, "memoryReservation": 128},
    ),
    (
        "spec.tags[]",
        "the aws: prefix is reserved",
        {"key": "team"},
        {"key": "aws:createdBy"},
    ),
]

# (message fragment, old self, good new self, bad new self)
TRANSITION_CASES = [
    ("a stopped task cannot run again", STOPPED, STOPPED | {"stoppedReason": "x"}, BASE),
    ("spec.taskDefinition cannot change", BASE, STOPPED, BASE | {"taskDefinition": "web:2"}),
    (
        "spec.overrides cannot change",
        BASE | {"overrides": {"cpu": "256"}},
        STOPPED | {"overrides": {"cpu": "256"}},
        BASE | {"overrides": {"cpu": "512"}},
    ),
    ("spec.group cannot change", BASE, BASE | {"ttlSecondsAfterStopped": 5}, BASE | {"group": "g"}),
    (
        "spec.startedBy cannot change",
        BASE | {"startedBy": "me"},
        BASE | {"startedBy": "me", "tags": [{"key": "a"}]},
        BASE,
    ),
    (
        "spec.placementConstraints cannot change",
        BASE | {"placementConstraints": [{"type": "distinctInstance"}]},
        STOPPED | {"placementConstraints": [{"type": "distinctInstance"}]},
        BASE | {"placementConstraints": []},
    ),
    (
        "spec.placementStrategy cannot change",
        BASE,
        BASE,
        BASE | {"placementStrategy": [{"type": "random"}]},
    ),
    ("spec.launchType cannot change", BASE, BASE, BASE | {"launchType": "EC2"}),
    (
        "spec.count cannot change",
        BASE | {"count": 3},
        STOPPED | {"count": 3},
        BASE | {"count": 2},
    ),
    (
        "spec.networkConfiguration cannot change",
        BASE,
        BASE,
        BASE | {"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s-1"]}}},
    ),
    (
        "spec.enableExecuteCommand cannot change",
        BASE | {"enableExecuteCommand": False},
        BASE | {"enableExecuteCommand": False},
        BASE | {"enableExecuteCommand": True},
    ),
]


@pytest.mark.parametrize(("message", "good", "bad"), SPEC_CASES, ids=[c[0] for c in SPEC_CASES])
def test_spec_rule(message: str, good: dict[str, Any], bad: dict[str, Any]) -> None:
    rule = find_rule("Task", "spec", message)
    assert evaluate(rule, good) is True
    assert evaluate(rule, bad) is False


@pytest.mark.parametrize(
    ("path", "message", "good", "bad"), NESTED_CASES, ids=[c[1] for c in NESTED_CASES]
)
def test_nested_rule(path: str, message: str, good: dict[str, Any], bad: dict[str, Any]) -> None:
    rule = find_rule("Task", path, message)
    assert evaluate(rule, good) is True
    assert evaluate(rule, bad) is False


@pytest.mark.parametrize(
    ("message", "old", "good", "bad"), TRANSITION_CASES, ids=[c[0] for c in TRANSITION_CASES]
)
def test_transition_rule(
    message: str, old: dict[str, Any], good: dict[str, Any], bad: dict[str, Any]
) -> None:
    rule = find_rule("Task", "spec", message)
    assert evaluate(rule, good, old_self=old) is True
    assert evaluate(rule, bad, old_self=old) is False


def test_every_rule_accepts_the_run_task_example_and_an_unchanged_update() -> None:
    obj = k8s_object(fixture(RUN_TASK))
    for path, rule in walk_rules(schemas()["Task"]):
        for value in instances(obj, path):
            old = copy.deepcopy(value) if "oldSelf" in rule["rule"] else None
            assert evaluate(rule["rule"], value, old_self=old), rule["message"]


def test_every_rule_has_a_case() -> None:
    covered = {("spec", message) for message, _, _ in SPEC_CASES}
    covered |= {("spec", message) for message, _, _, _ in TRANSITION_CASES}
    covered |= {(path, message) for path, message, _, _ in NESTED_CASES}
    for path, rule in walk_rules(schemas()["Task"]):
        if path in ("spec.placementConstraints[]", "spec.placementStrategy[]"):
            continue  # the placement model's own rules, tested with that model
        assert any(p == path and m in rule["message"] for p, m in covered), rule["message"]
