"""`plugin.translate`: ECS requests and flags -> the manifests and patches `kubectl ecs` sends.
Every refusal names its field or flag; what is sent is what the models validated, by ECS name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ecs_operator.models.common import API_GROUP_VERSION
from ecs_operator.models.task import TaskSpec
from ecs_operator.models.taskdefinition import TaskDefinition
from ecs_operator.plugin import translate
from ecs_operator.plugin.translate import InputError

CONTAINER = {"name": "app", "image": "busybox:1.36", "memory": 64}


def refused(call: Any, *args: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(InputError) as raised:
        call(*args, **kwargs)
    return raised.value.problems


# --- register-task-definition -------------------------------------------------------------------


def test_a_task_definition_is_named_after_its_family_and_reads_back_as_the_model() -> None:
    request = {"family": "web", "containerDefinitions": [CONTAINER], "cpu": "1 vCPU"}
    manifest = translate.task_definition_manifest(request)
    assert manifest == {
        "apiVersion": API_GROUP_VERSION,
        "kind": "TaskDefinition",
        "metadata": {"name": "web"},
        "spec": request,  # only what was given: no defaults added
    }
    assert TaskDefinition.model_validate(manifest).family == "web"


def test_the_family_is_required_and_must_be_an_object_name() -> None:
    assert refused(translate.task_definition_manifest, {"containerDefinitions": [CONTAINER]}) == [
        "family: required (the TaskDefinition is named after its family)"
    ]
    [problem] = refused(
        translate.task_definition_manifest,
        {"family": "My_App", "containerDefinitions": [CONTAINER]},
    )
    assert problem.startswith("family: 'My_App' cannot name a Kubernetes object")
    [too_long] = refused(
        translate.task_definition_manifest,
        {"family": "a" * 246, "containerDefinitions": [CONTAINER]},
    )
    assert too_long.startswith("family: String should have at most 245 characters")


def test_every_problem_names_its_field_by_its_ecs_name() -> None:
    request = {
        "family": "web",
        "containerDefinitions": [{**CONTAINER, "memory": 2, "essential": "maybe"}],
        "appMeshProxy": {},
        "container_definitions": [],
    }
    problems = refused(translate.task_definition_manifest, request)
    assert problems == [
        "containerDefinitions[0].memory: Input should be greater than or equal to 6",
        "containerDefinitions[0].essential: Input should be a valid boolean, unable to "
        "interpret input",
        "appMeshProxy: unknown field (not a field of this ECS request, or one ecs-operator "
        "does not take)",
        "container_definitions: unknown field (not a field of this ECS request, or one "
        "ecs-operator does not take)",
    ]


def test_a_union_field_reports_one_line_without_pydantic_internals() -> None:
    [problem] = refused(
        translate.task_definition_manifest,
        {"family": "web", "containerDefinitions": [CONTAINER], "cpu": "lots"},
    )
    assert problem.startswith("cpu: ")
    assert "function-after" not in problem and " or " in problem


@pytest.mark.parametrize("request_", [[], "web", None, 3])
def test_a_request_that_is_not_an_object_is_refused(request_: Any) -> None:
    [problem] = refused(translate.task_definition_manifest, request_)
    assert problem.startswith("input: expected a JSON object, got ")


def test_replace_spec_keeps_metadata_and_its_resource_version() -> None:
    existing = {
        "metadata": {"name": "web", "resourceVersion": "7", "labels": {"a": "b"}},
        "spec": {"containerDefinitions": []},
        "status": {"revision": 1},
    }
    manifest = translate.task_definition_manifest(
        {"family": "web", "containerDefinitions": [CONTAINER]}
    )
    body = translate.replace_spec(existing, manifest)
    assert body["metadata"] == existing["metadata"]
    assert body["spec"] == manifest["spec"] and "status" not in body


def test_parse_json_says_where_it_breaks() -> None:
    assert translate.parse_json('{"a": 1}', "--x") == {"a": 1}
    assert refused(translate.parse_json, '{"a": ', "--overrides") == [
        "--overrides: not valid JSON: Expecting value (line 1, column 7)"
    ]


# --- run-task, stop-task --------------------------------------------------------------------------


def test_run_task_makes_one_task_per_token_named_after_the_family() -> None:
    overrides = {"containerOverrides": [{"name": "app", "command": ["sleep", "5"]}]}
    manifests = translate.run_task_manifests(
        "web:3", ["aaaaaaaaaa", "bbbbbbbbbb"], overrides=overrides, started_by="ci/42"
    )
    assert [m["metadata"]["name"] for m in manifests] == ["web-aaaaaaaaaa", "web-bbbbbbbbbb"]
    for manifest in manifests:
        assert manifest["kind"] == "Task"
        assert manifest["spec"] == {
            "taskDefinition": "web:3",
            "overrides": overrides,
            "startedBy": "ci/42",
        }
        TaskSpec.model_validate(manifest["spec"])


def test_a_task_definition_arn_names_the_family() -> None:
    arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3"
    [manifest] = translate.run_task_manifests(arn, ["cccccccccc"])
    assert manifest["metadata"]["name"] == "web-cccccccccc"
    assert manifest["spec"]["taskDefinition"] == arn


def test_a_long_family_is_cut_to_an_object_name() -> None:
    name = translate.task_name("f" * 245, "0123456789")
    assert len(name) == 253 and name.endswith("-0123456789")


@pytest.mark.parametrize("count", [0, 11])
def test_run_task_count_is_ecs_s_1_to_10(count: int) -> None:
    assert refused(translate.run_task_manifests, "web", ["t"] * count) == [
        f"--count: {count} is out of range: ECS runs 1-10 tasks per call"
    ]


def test_run_task_problems_are_named_after_the_flags() -> None:
    [reference] = refused(translate.run_task_manifests, "web:x", ["t"])
    assert reference.startswith("--task-definition: taskDefinition 'web:x' is not family")
    problems = refused(
        translate.run_task_manifests,
        "web",
        ["t"],
        overrides={"containerOverrides": [{"nam": "app"}]},
        started_by="not allowed!",
    )
    assert problems == [
        "--overrides: containerOverrides[0].name: required",
        "--overrides: containerOverrides[0].nam: unknown field (not a field of this ECS "
        "request, or one ecs-operator does not take)",
        "--started-by: String should match pattern '^[A-Za-z0-9/_-]{1,128}$'",
    ]


def test_overrides_are_at_most_8192_characters_as_ecs_runtask_allows() -> None:
    big = {"containerOverrides": [{"name": "app", "command": ["x" * 9000]}]}
    [problem] = refused(translate.run_task_manifests, "web", ["t"], overrides=big)
    assert problem.startswith("--overrides: ") and "at most 8192" in problem


def test_stop_task_is_the_desired_status_and_the_reason() -> None:
    assert translate.stop_task_patch("done") == {
        "spec": {"desiredStatus": "STOPPED", "stoppedReason": "done"}
    }
    assert translate.stop_task_patch(None) == {"spec": {"desiredStatus": "STOPPED"}}
    assert refused(translate.stop_task_patch, "x" * 256) == [
        "--reason: 256 characters; at most 255"
    ]


# --- create-service, update-service -------------------------------------------------------------


def test_create_service_takes_the_request_level_keys_out_of_the_spec() -> None:
    request = {
        "cluster": "prod",
        "serviceName": "web",
        "clientToken": "abc",
        "taskDefinition": "web:1",
        "desiredCount": 2,
        "deploymentConfiguration": {"maximumPercent": 150, "minimumHealthyPercent": 50},
    }
    manifest, cluster = translate.service_manifest(request)
    assert cluster == "prod"
    assert manifest["metadata"] == {"name": "web"} and manifest["kind"] == "Service"
    assert manifest["spec"] == {
        "taskDefinition": "web:1",
        "desiredCount": 2,
        "deploymentConfiguration": {"maximumPercent": 150, "minimumHealthyPercent": 50},
    }


def test_create_service_flags_replace_the_request_s_fields() -> None:
    manifest, cluster = translate.service_manifest(
        {"serviceName": "a", "taskDefinition": "x", "desiredCount": 1},
        service_name="b",
        task_definition="web:2",
        desired_count=3,
    )
    assert cluster is None
    assert manifest["metadata"]["name"] == "b"
    assert manifest["spec"] == {"taskDefinition": "web:2", "desiredCount": 3}


def test_create_service_refusals_name_the_field() -> None:
    assert refused(translate.service_manifest, {"taskDefinition": "web", "desiredCount": 1}) == [
        "serviceName: required (the Service is named after it)"
    ]
    assert refused(translate.service_manifest, {"serviceName": "web", "taskDefinition": "web"}) == [
        "desiredCount is required for the REPLICA scheduling strategy"
    ]
    balancer = refused(
        translate.service_manifest,
        {
            "serviceName": "web",
            "taskDefinition": "web",
            "desiredCount": 1,
            "loadBalancers": [
                {"targetGroupArn": "arn:x", "containerName": "a", "containerPort": 1}
            ],
        },
    )
    [problem] = balancer
    assert problem.startswith("loadBalancers[0].targetGroupArn: String should match pattern")
    [name] = refused(
        translate.service_manifest,
        {"serviceName": "Web_1", "taskDefinition": "w", "desiredCount": 1},
    )
    assert name.startswith("serviceName: 'Web_1' cannot name a Kubernetes object")


def test_update_service_patches_only_what_changes_and_validates_the_result() -> None:
    spec = {"taskDefinition": "web:1", "desiredCount": 2}
    assert translate.update_service_patch(spec, desired_count=5) == {"spec": {"desiredCount": 5}}
    assert translate.update_service_patch(spec, task_definition="web:2", force_token="t") == {
        "spec": {"taskDefinition": "web:2", "forceNewDeployment": "t"}
    }
    assert refused(translate.update_service_patch, spec, desired_count=-1) == [
        "--desired-count: Input should be greater than or equal to 0"
    ]
    daemon = {"taskDefinition": "agent", "schedulingStrategy": "DAEMON"}
    assert refused(translate.update_service_patch, daemon, desired_count=2) == [
        "desiredCount is not allowed for a DAEMON service: it runs one task on each node"
    ]
    [nothing] = refused(translate.update_service_patch, spec)
    assert "--desired-count" in nothing and "--force-new-deployment" in nothing


def test_a_new_deployment_token_is_the_time_and_never_the_previous_one() -> None:
    now = datetime(2026, 12, 7, 3, 4, 5, 6, tzinfo=UTC)
    token = translate.deployment_token(now, None)
    assert token == "2026-12-07T03:04:05.000006Z"
    assert translate.deployment_token(now, token) != token


# --- cluster and references --------------------------------------------------------------------


def test_a_cluster_is_a_namespace_and_an_arn_names_it() -> None:
    assert translate.cluster_namespace("prod") == "prod"
    assert translate.cluster_namespace("arn:aws:ecs:eu-west-1:123456789012:cluster/prod") == "prod"
    [problem] = refused(translate.cluster_namespace, "Prod_1")
    assert problem.startswith("--cluster: 'Prod_1' is not a namespace name")


def test_references_by_name_id_or_arn() -> None:
    task_id = "0123456789abcdef0123456789abcdef"
    assert translate.object_reference(f"arn:aws:ecs:r:1:task/prod/{task_id}") == task_id
    assert translate.object_reference("web-1") == "web-1"
    assert translate.is_task_id(task_id) and not translate.is_task_id("web-1")
