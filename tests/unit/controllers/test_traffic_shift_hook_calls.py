"""controllers.hooks through the Service controller at the traffic stages: a LINEAR deployment's
AWS_LAMBDA hook at PRODUCTION_TRAFFIC_SHIFT POSTs ECS's payload with each step's weights to a
real local HTTP server, and once more with green at 0 when its FAILED answer rolls back; and a
task target's run that times out has its Task stopped, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from ecs_operator.core.revisions import controller_revision_manifest
from ecs_operator.kube.client import CONTROLLER_REVISIONS, SERVICES, TASK_DEFINITIONS, TASKS
from support.controllers import FAMILY, NAMESPACE, Operator, cluster, service
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
