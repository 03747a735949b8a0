"""controllers.hooks through the Service controller at the traffic stages: a LINEAR deployment's
AWS_LAMBDA hook at PRODUCTION_TRAFFIC_SHIFT POSTs ECS's payload with each step's weights to a
real local HTTP server, and once more with green at 0 when its FAILED answer rolls back; a
task target's run is a Task again in the rollback, which does not wait for it; and a task
target's run that times out has its Task stopped, once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from ecs_operator.core import labels
from ecs_operator.core.revisions import controller_revision_manifest
from ecs_operator.kube.client import (
    CONTROLLER_REVISIONS,
    PODS,
    SERVICES,
    TASK_DEFINITIONS,
    TASKS,
)
from support.controllers import (
    FAMILY,
    NAMESPACE,
    Operator,
    cluster,
    exit_pod,
    service,
    service_events,
)
from support.fake_kube import FakeKube
from support.prometheus import free_port

KEY = (NAMESPACE, "api")
REVISION_ARN = f"arn:aws:ecs:::service-revision/{NAMESPACE}/api/"


@dataclass
class HookServer:
    url: str = ""
    status: str = "SUCCEEDED"
    payloads: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def hooks() -> AsyncIterator[HookServer]:
    server = HookServer()

    async def verify(request: web.Request) -> web.Response:
        server.payloads.append(await request.json())
        return web.json_response({"hookStatus": server.status})

    app = web.Application()
    app.router.add_post("/verify", verify)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    server.url = f"http://127.0.0.1:{port}/verify"
    yield server
    await runner.cleanup()


@pytest.fixture
async def operators() -> AsyncIterator[list[Operator]]:
    made: list[Operator] = []
    yield made
    for operator in made:
        await operator.services.hooks.close()


async def deployed(made: list[Operator], hook: dict[str, Any], **configuration: Any) -> Operator:
    """Service api steady on web:1 with ``hook``, then web:2 registered and converged on."""
    kube = cluster()
    body = service("api", 1)
    body["spec"]["deploymentConfiguration"] = {
        "strategy": "BLUE_GREEN",
        "bakeTimeInMinutes": 0,
        "lifecycleHooks": [hook],
    } | configuration
    kube.seed(SERVICES, body)
    operator = Operator(kube)
    made.append(operator)
    await operator.converge()
    definition = kube.stored(TASK_DEFINITIONS, NAMESPACE, FAMILY)
    container = definition["spec"]["containerDefinitions"][0]
    spec = definition["spec"] | {
        "containerDefinitions": [container | {"environment": [{"name": "V", "value": "2"}]}]
    }
    uid = definition["metadata"]["uid"]
    kube.seed(
        CONTROLLER_REVISIONS, controller_revision_manifest(FAMILY, NAMESPACE, uid, 2, 2, spec)
    )
    operator.catch_up()
    await operator.converge()
    return operator


def deployments(kube: FakeKube) -> dict[str, dict[str, Any]]:
    """status.deployments by task definition."""
    listed = kube.stored(SERVICES, *KEY)["status"]["deployments"]
    return {d["taskDefinition"]: d for d in listed}


def arn(deployment: dict[str, Any]) -> str:
    return REVISION_ARN + deployment["id"].removeprefix("ecs-svc/")


async def test_a_linear_production_hook_is_called_at_each_step_with_its_weights(
    hooks: HookServer, operators: list[Operator]
) -> None:
    operator = await deployed(
        operators,
        {"lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"], "hookTargetArn": hooks.url},
        strategy="LINEAR",
        linearConfiguration={"stepPercent": 50, "stepBakeTimeInMinutes": 0},
    )
    by_revision = deployments(operator.kube)
    green, blue = arn(by_revision[f"{FAMILY}:2"]), arn(by_revision[f"{FAMILY}:1"])
    assert [
        (
            p["lifecycleStage"],
            p["executionDetails"]["productionTrafficWeights"],
            p["executionDetails"]["testTrafficWeights"],
        )
        for p in hooks.payloads
    ] == [
        ("PRODUCTION_TRAFFIC_SHIFT", {green: 50.0, blue: 50.0}, {}),
        ("PRODUCTION_TRAFFIC_SHIFT", {green: 100.0, blue: 0.0}, {}),
    ]
    runs = by_revision[f"{FAMILY}:2"]["lifecycleHookDetails"]
    assert [(r["lifecycleStage"], r["status"]) for r in runs] == [
        ("PRODUCTION_TRAFFIC_SHIFT", "SUCCEEDED")
    ] * 2
    assert [p["executionId"] for p in hooks.payloads] == [r["hookId"] for r in runs]
    assert by_revision[f"{FAMILY}:2"]["lifecycleStage"] == "CLEAN_UP"


async def test_a_failed_production_hook_rolls_back_to_blue_and_is_called_again(
    hooks: HookServer, operators: list[Operator]
) -> None:
    hooks.status = "FAILED"
    operator = await deployed(
        operators, {"lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"], "hookTargetArn": hooks.url}
    )
    status = operator.kube.stored(SERVICES, *KEY)["status"]
    blue = deployments(operator.kube)[f"{FAMILY}:1"]
    assert (blue["status"], blue["rollback"], blue["productionTrafficWeight"]) == (
        "PRIMARY",
        True,
        100.0,
    )
    # The rollback calls the hook once more: green still the target, its weight 0, blue's 100.
    first, again = hooks.payloads
    [record] = [r for r in status["serviceDeployments"] if r.get("rollback")]
    green = record["targetServiceRevision"]["arn"]
    assert first["executionDetails"]["productionTrafficWeights"] == {green: 100.0, arn(blue): 0.0}
    assert again["executionId"] != first["executionId"]
    assert again["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT"
    assert again["resourceArn"] == record["serviceDeploymentArn"]
    assert again["executionDetails"]["targetServiceRevisionArn"] == green
    assert again["executionDetails"]["productionTrafficWeights"] == {green: 0.0, arn(blue): 100.0}
    # Its FAILED answer is recorded in the service deployment and changes nothing.
    assert [
        (r["hookId"], r["status"], r.get("rollback")) for r in record["lifecycleHookDetails"]
    ] == [
        (first["executionId"], "FAILED", None),
        (again["executionId"], "FAILED", True),
    ]
    assert record["status"] == "ROLLBACK_IN_PROGRESS"  # green's task is still stopping
    assert blue["rolloutState"] == "IN_PROGRESS"


def hook_payload(kube: FakeKube, task: str) -> dict[str, Any]:
    """The invocation payload a hook's Task (its Pod) was given."""
    [pod] = [p for p in kube.all_stored(PODS) if p["metadata"]["name"] == task]
    [variable] = [
        e for e in pod["spec"]["containers"][0]["env"] if e["name"] == "ECS_LIFECYCLE_HOOK_PAYLOAD"
    ]
    payload: dict[str, Any] = json.loads(variable["value"])
    return payload


def green_id(record: dict[str, Any]) -> str:
    """The deployment id of a service deployment (``ecs-svc/DIGITS``)."""
    return "ecs-svc/" + str(record["serviceDeploymentArn"]).rpartition("/")[2]


def task_creates(kube: FakeKube, name: str) -> int:
    return sum(
        (r.verb, r.plural) == ("create", "tasks") and r.body["metadata"]["name"] == name
        for r in kube.written()
    )


@pytest.mark.parametrize(("code", "outcome"), [(0, "SUCCEEDED"), (1, "FAILED")])
async def test_a_task_target_runs_again_as_a_task_in_the_rollback_whatever_it_answers(
    operators: list[Operator], code: int, outcome: str
) -> None:
    hook = {
        "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"],
        "hookTargetArn": f"task-definition/{FAMILY}:1",
    }
    operator = await deployed(operators, hook)
    kube = operator.kube
    [forward] = deployments(kube)[f"{FAMILY}:2"]["lifecycleHookDetails"]
    assert (forward["status"], forward.get("rollback")) == ("IN_PROGRESS", None)
    exit_pod(kube, forward["hookId"], 1)  # the hook's Task fails: the deployment rolls back
    operator.catch_up()
    await operator.converge()
    status = kube.stored(SERVICES, *KEY)["status"]
    [record] = [r for r in status["serviceDeployments"] if r.get("rollback")]
    forward, again = record["lifecycleHookDetails"]
    assert forward["status"] == "FAILED"
    # A fresh run of the same hook, its Task started once production is back on blue.
    assert (again["lifecycleStage"], again["status"], again["rollback"]) == (
        "PRODUCTION_TRAFFIC_SHIFT",
        "IN_PROGRESS",
        True,
    )
    assert again["hookId"] != forward["hookId"] and again["invocations"] == 1
    task = kube.stored(TASKS, NAMESPACE, again["hookId"])
    assert task["metadata"]["labels"][labels.HOOK_LABEL] == again["hookId"]
    assert task["spec"]["startedBy"] == again["hookId"]
    payload = hook_payload(kube, again["hookId"])
    green = record["targetServiceRevision"]["arn"]
    blue = deployments(kube)[f"{FAMILY}:1"]
    assert (payload["executionId"], payload["lifecycleStage"]) == (
        again["hookId"],
        "PRODUCTION_TRAFFIC_SHIFT",
    )
    assert payload["executionDetails"]["targetServiceRevisionArn"] == green
    assert payload["executionDetails"]["productionTrafficWeights"] == {
        green: 0.0,
        arn(blue): 100.0,
    }
    assert (blue["status"], blue["rollback"]) == ("PRIMARY", True)
    assert any(
        f"lifecycle hook {again['hookId']} is in progress at PRODUCTION_TRAFFIC_SHIFT in the "
        f"rollback: running task-definition/{FAMILY}:1 as task {again['hookId']}" in message
        for message in service_events(kube)
    )
    assert status["runningCount"] == 1  # blue's task: green's is stopping, the hook's not counted
    # The rollback does not wait for the run: once green's task stopped (its kubelet ends
    # the Pod the operator gave a deadline), blue completes while the run's Task still runs.
    [stopping] = [
        t["metadata"]["name"]
        for t in kube.all_stored(TASKS)
        if t["spec"].get("startedBy") == green_id(record)
    ]
    exit_pod(kube, stopping, 143)
    operator.catch_up()
    await operator.converge()
    status = kube.stored(SERVICES, *KEY)["status"]
    [record] = [r for r in status["serviceDeployments"] if r.get("rollback")]
    blue = deployments(kube)[f"{FAMILY}:1"]
    assert kube.stored(TASKS, NAMESPACE, again["hookId"])["status"]["lastStatus"] == "RUNNING"
    assert blue["rolloutState"] == "COMPLETED"
    assert record["status"] == "ROLLBACK_SUCCESSFUL"
    assert f"{FAMILY}:2" in deployments(kube)  # kept while its rollback run waits
    exit_pod(kube, again["hookId"], code)
    operator.catch_up()
    await operator.converge()
    status = kube.stored(SERVICES, *KEY)["status"]
    [record] = [r for r in status["serviceDeployments"] if r.get("rollback")]
    ended = record["lifecycleHookDetails"][1]
    assert (ended["hookId"], ended["status"], ended["rollback"]) == (
        again["hookId"],
        outcome,
        True,
    )
    # Its end changes nothing: blue serves, green is dropped, nothing else rolls back.
    assert list(deployments(kube)) == [f"{FAMILY}:1"]
    assert deployments(kube)[f"{FAMILY}:1"]["rolloutState"] == "COMPLETED"
    assert record["status"] == "ROLLBACK_SUCCESSFUL"
    assert task_creates(kube, again["hookId"]) == 1 and task_creates(kube, forward["hookId"]) == 1


async def test_a_timed_out_task_hook_has_its_task_stopped_once(
    operators: list[Operator],
) -> None:
    hook = {
        "lifecycleStages": ["POST_SCALE_UP"],
        "hookTargetArn": f"task-definition/{FAMILY}:1",
        "timeoutConfiguration": {"timeoutInMinutes": 1, "action": "CONTINUE"},
    }
    operator = await deployed(operators, hook)
    kube = operator.kube
    [run] = deployments(kube)[f"{FAMILY}:2"]["lifecycleHookDetails"]
    assert run["status"] == "IN_PROGRESS"
    assert kube.stored(TASKS, NAMESPACE, run["hookId"])["spec"].get("desiredStatus") in (
        None,
        "RUNNING",
    )
    # Its minute is over (as the status has it: a restarted operator would read the same).
    body = kube.stored(SERVICES, *KEY)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    for deployment in body["status"]["deployments"]:
        for detail in deployment.get("lifecycleHookDetails") or ():
            detail["expiresAt"] = past
    kube.put(SERVICES, body)
    operator.catch_up()
    await operator.converge()
    [run] = deployments(kube)[f"{FAMILY}:2"]["lifecycleHookDetails"]
    assert run["status"] == "TIMED_OUT"
    task = kube.stored(TASKS, NAMESPACE, run["hookId"])
    assert task["spec"]["desiredStatus"] == "STOPPED"
    assert task["spec"]["stoppedReason"] == (
        f"Task stopped: lifecycle hook {run['hookId']} timed out (HOOK_TIMED_OUT)"
    )
    # Told once: a restarted operator finds nothing more to stop.
    assert len(stops(kube, run["hookId"])) == 1
    restarted = Operator(kube)
    operators.append(restarted)
    await restarted.services.reconcile(KEY)
    assert len(stops(kube, run["hookId"])) == 1


def stops(kube: FakeKube, task: str) -> list[Any]:
    """The patches of ``task``'s spec telling it to stop."""
    return [
        r
        for r in kube.written()
        if (r.verb, r.plural, r.name) == ("patch", "tasks", task)
        and (r.body.get("spec") or {}).get("desiredStatus") == "STOPPED"
    ]
