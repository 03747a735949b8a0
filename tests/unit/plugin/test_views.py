"""`plugin.views`: ECS's describe output and plain-text tables from the objects, and the
waiters' verdicts (pure)."""

from __future__ import annotations

from typing import Any

from ecs_operator.plugin import views

TASK_ID = "0123456789abcdef0123456789abcdef"


def stopped_task() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web-1",
            "namespace": "prod",
            "creationTimestamp": "2026-12-07T00:00:00Z",
        },
        "spec": {
            "taskDefinition": "web",
            "desiredStatus": "STOPPED",
            "stoppedReason": "done",
            "overrides": {"containerOverrides": [{"name": "app", "command": ["true"]}]},
        },
        "status": {
            "taskArn": TASK_ID,
            "taskDefinitionArn": "web:3",
            "revision": 3,
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stopCode": "UserInitiated",
            "stoppedReason": "done",
            "containers": [{"name": "app", "lastStatus": "STOPPED", "exitCode": 143}],
            "availabilityZone": "zone-a",
            "createdAt": "2026-12-07T00:00:01Z",
            "observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "False"}],
        },
    }


def service(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "api", "namespace": "prod", "generation": 2},
        "spec": {"taskDefinition": "web", "desiredCount": 3, "forceNewDeployment": "t"},
        "status": {
            "observedGeneration": 2,
            "desiredCount": 3,
            "runningCount": 3,
            "pendingCount": 0,
            "taskDefinition": "web:3",
            "deployments": [
                {
                    "id": "ecs-svc/1234567890123456789",
                    "status": "PRIMARY",
                    "taskDefinition": "web:3",
                    "specHash": "abc",
                    "desiredCount": 3,
                    "runningCount": 3,
                    "rolloutState": "COMPLETED",
                }
            ],
            "events": [
                {
                    "id": "1",
                    "createdAt": "t1",
                    "message": "(service api) has reached a steady state.",
                }
            ],
            "scheduler": {"azRebalancing": False},
            **status,
        },
    }


def test_a_task_is_described_as_ecs_does_without_the_operator_s_bookkeeping() -> None:
    described = views.describe_task(stopped_task())
    assert described["name"] == "web-1"
    assert described["taskArn"] == TASK_ID
    assert described["clusterArn"] == "prod"
    assert described["taskDefinitionArn"] == "web:3"
    assert (described["lastStatus"], described["stopCode"], described["stoppedReason"]) == (
        "STOPPED",
        "UserInitiated",
        "done",
    )
    assert described["containers"] == [{"name": "app", "lastStatus": "STOPPED", "exitCode": 143}]
    assert described["overrides"] == stopped_task()["spec"]["overrides"]
    assert not {"conditions", "observedGeneration", "revision"} & described.keys()


def test_a_new_task_shows_its_request_and_a_stop_shows_at_once() -> None:
    task = {
        "metadata": {"name": "web-2", "namespace": "prod", "creationTimestamp": "c"},
        "spec": {"taskDefinition": "web", "startedBy": "me", "desiredStatus": "STOPPED"},
        "status": {"lastStatus": "RUNNING", "desiredStatus": "RUNNING"},
    }
    described = views.describe_task(task)
    assert described["taskDefinitionArn"] == "web"  # not resolved yet
    assert described["desiredStatus"] == "STOPPED"  # StopTask answers with it
    assert described["startedBy"] == "me" and described["createdAt"] == "c"


def test_a_service_is_described_with_ecs_deployments_and_events() -> None:
    described = views.describe_service(service())
    assert described["serviceName"] == "api" and described["status"] == "ACTIVE"
    assert (described["desiredCount"], described["runningCount"]) == (3, 3)
    assert described["taskDefinition"] == "web:3"
    assert described["schedulingStrategy"] == "REPLICA"
    [deployment] = described["deployments"]
    assert "specHash" not in deployment and deployment["rolloutState"] == "COMPLETED"
    assert described["events"][0]["message"].endswith("steady state.")
    assert not {"forceNewDeployment", "scheduler", "observedGeneration"} & described.keys()
    deleting = service()
    deleting["metadata"]["deletionTimestamp"] = "now"
    assert views.describe_service(deleting)["status"] == "DRAINING"


def test_a_task_definition_is_described_with_its_latest_revision() -> None:
    described = views.describe_task_definition(
        {
            "metadata": {"name": "web"},
            "spec": {"family": "web", "containerDefinitions": []},
            "status": {"revision": 2, "taskDefinitionArn": "web:2", "status": "ACTIVE"},
        }
    )
    assert described == {
        "taskDefinitionArn": "web:2",
        "family": "web",
        "revision": 2,
        "status": "ACTIVE",
        "containerDefinitions": [],
    }


def test_tables_align_columns_and_escape_control_characters() -> None:
    text = views.render_table(("A", "LONGER"), [("x", None), ("\x1b[31mred", "two\nlines")])
    assert text.splitlines() == [
        "A             LONGER",
        "x             -",
        "\\x1b[31mred   two lines",
    ]


def test_the_task_table_shows_stop_codes_and_container_exit_codes() -> None:
    described = views.describe_task(stopped_task())
    text = views.tasks_text([described], [views.failure("gone")])
    tasks, containers, failures = text.split("\n\n")
    assert tasks.splitlines()[1].split() == [
        "web-1", "web:3", "STOPPED", "STOPPED", "-", "zone-a", "UserInitiated", "done",
    ]  # fmt: skip
    assert containers.splitlines()[1].split() == ["web-1", "app", "STOPPED", "143", "-", "-"]
    assert failures == "MISSING: gone"


def test_the_service_table_shows_deployments_and_the_newest_events() -> None:
    events = [{"createdAt": f"t{i}", "message": f"event {i}"} for i in range(12)]
    text = views.services_text([views.describe_service(service(events=events))], events=10)
    summary, deployments, shown = text.split("\n\n")
    assert summary.splitlines()[1].split() == ["api", "ACTIVE", "web:3", "3", "3", "0"]
    assert "ecs-svc/1234567890123456789" in deployments
    assert shown.splitlines()[0] == "EVENTS of api (newest first, 2 more with --output json)"
    assert "event 9" in shown and "event 10" not in shown


def rolled_back_with_hook_runs() -> dict[str, Any]:
    """api rolled back from web:4: its production hook FAILED, then ran once more in the
    rollback (still in progress), a PAUSE hook's run answered before."""
    body = service()
    blue = body["status"]["deployments"][0] | {"rollback": True, "rolloutState": "IN_PROGRESS"}
    run = {
        "targetType": "AWS_LAMBDA",
        "targetArn": "http://hooks.prod.svc:8080/verify",
        "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT",
        "timeoutAction": "ROLLBACK",
    }
    green = {
        "id": "ecs-svc/2234567890123456789",
        "status": "ACTIVE",
        "taskDefinition": "web:4",
        "rolloutState": "FAILED",
        "lifecycleHookDetails": [
            {
                "hookId": "ecs-pause-2234567890123456789-1",
                "targetType": "PAUSE",
                "lifecycleStage": "POST_SCALE_UP",
                "status": "SUCCEEDED",
                "expiresAt": "t1",
            },
            run
            | {"hookId": "ecs-hook-2234567890123456789-2", "status": "FAILED", "expiresAt": "t2"},
            run
            | {
                "hookId": "ecs-hook-2234567890123456789-3",
                "status": "IN_PROGRESS",
                "expiresAt": "t3",
                "rollback": True,
            },
        ],
    }
    body["status"]["deployments"] = [blue, green]
    return body


def test_the_hook_runs_are_described_and_the_table_marks_a_rollback_s() -> None:
    described = views.describe_service(rolled_back_with_hook_runs())
    _, green = described["deployments"]
    assert [(h["hookId"][-1], h.get("rollback")) for h in green["lifecycleHookDetails"]] == [
        ("1", None),
        ("2", None),
        ("3", True),
    ]
    text = views.services_text([described])
    _, _, hooks, _ = text.split("\n\n")
    title, headers, *rows = hooks.splitlines()
    assert title == "LIFECYCLE HOOKS"
    assert headers.split() == [
        "SERVICE", "DEPLOYMENT", "HOOK", "STAGE", "TARGET", "STATUS", "ROLLBACK", "EXPIRES",
    ]  # fmt: skip
    assert [row.split() for row in rows] == [
        [
            "api", green["id"], "ecs-pause-2234567890123456789-1", "POST_SCALE_UP", "PAUSE",
            "SUCCEEDED", "-", "t1",
        ],
        [
            "api", green["id"], "ecs-hook-2234567890123456789-2", "PRODUCTION_TRAFFIC_SHIFT",
            "http://hooks.prod.svc:8080/verify", "FAILED", "-", "t2",
        ],
        [
            "api", green["id"], "ecs-hook-2234567890123456789-3", "PRODUCTION_TRAFFIC_SHIFT",
            "http://hooks.prod.svc:8080/verify", "IN_PROGRESS", "true", "t3",
        ],
    ]  # fmt: skip
    # Without hook runs there is no such section.
    assert "LIFECYCLE HOOKS" not in views.services_text([views.describe_service(service())])


def test_services_stable_needs_one_deployment_all_running_and_the_latest_spec_seen() -> None:
    assert views.service_stable("api", service()).done
    assert not views.service_stable("api", service(runningCount=2)).done
    two = service()
    two["status"]["deployments"].append({**two["status"]["deployments"][0], "status": "ACTIVE"})
    assert not views.service_stable("api", two).done
    unseen = service(observedGeneration=1)
    verdict = views.service_stable("api", unseen)
    assert not verdict.done and "not seen the latest spec" in verdict.progress
    assert views.service_stable("api", None).failed == "service api: MISSING"


def test_task_waiters() -> None:
    stopped = stopped_task()
    assert views.task_stopped("web-1", stopped).done
    assert views.task_running("web-1", stopped).failed == ("task web-1 stopped: UserInitiated done")
    running = {"status": {"lastStatus": "RUNNING"}}
    assert views.task_running("t", running).done and not views.task_stopped("t", running).done
    assert views.task_stopped("t", {}).progress == "t: not yet reported"
    assert views.task_stopped("t", None).failed == "task t: MISSING"
