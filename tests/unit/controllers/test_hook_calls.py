"""controllers.hooks through the Service controller: a BLUE_GREEN deployment's AWS_LAMBDA hook
at POST_SCALE_UP POSTs ECS's payload to a real local HTTP server, and what it answers (or that
it cannot answer) moves the deployment; or it runs a task definition once as a Task, whose exit
decides. Everything the hook's run needs is in the status."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from ecs_operator.core import labels
from ecs_operator.core.revisions import controller_revision_manifest
from ecs_operator.kube.client import CONTROLLER_REVISIONS, PODS, SERVICES, TASK_DEFINITIONS, TASKS
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
Answer = Callable[[int], web.Response]


@dataclass
class HookServer:
    """Answers the n-th call (from 0) with ``answer(n)``; records each payload."""

    url: str = ""
    answer: Answer = lambda _n: web.json_response({"hookStatus": "SUCCEEDED"})
    payloads: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def hooks() -> AsyncIterator[HookServer]:
    server = HookServer()

    async def verify(request: web.Request) -> web.Response:
        server.payloads.append(await request.json())
        return server.answer(len(server.payloads) - 1)

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
    """The operators a test made: their hook callers' HTTP sessions are closed after it."""
    made: list[Operator] = []
    yield made
    for operator in made:
        await operator.services.hooks.close()


async def deployed_with_hook(made: list[Operator], url: str, **hook: Any) -> Operator:
    """Service api steady on web:1 (BLUE_GREEN, an AWS_LAMBDA hook at POST_SCALE_UP calling
    ``url``), then web:2 registered and the operator converged on the deployment."""
    kube = cluster()
    body = service("api", 1)
    body["spec"]["deploymentConfiguration"] = {
        "strategy": "BLUE_GREEN",
        "bakeTimeInMinutes": 0,
        "lifecycleHooks": [
            {"lifecycleStages": ["POST_SCALE_UP"], "hookTargetArn": url} | hook,
        ],
    }
    kube.seed(SERVICES, body)
    operator = Operator(kube)
    made.append(operator)
    await operator.converge()
    register_revision_2(kube)
    operator.catch_up()
    await operator.converge()
    return operator


def register_revision_2(kube: FakeKube) -> None:
    definition = kube.stored(TASK_DEFINITIONS, NAMESPACE, FAMILY)
    spec = definition["spec"] | {
        "containerDefinitions": [
            definition["spec"]["containerDefinitions"][0]
            | {"environment": [{"name": "V", "value": "2"}]}
        ]
    }
    kube.seed(
        CONTROLLER_REVISIONS,
        controller_revision_manifest(FAMILY, NAMESPACE, definition["metadata"]["uid"], 2, 2, spec),
    )


def newest_record(kube: FakeKube) -> dict[str, Any]:
    record: dict[str, Any] = kube.stored(SERVICES, *KEY)["status"]["serviceDeployments"][0]
    return record


async def test_in_progress_then_succeeded_completes_the_deployment(
    hooks: HookServer, operators: list[Operator]
) -> None:
    def answer(n: int) -> web.Response:
        if n == 0:  # call again at once, remembering where it got to
            return web.json_response(
                {"hookStatus": "IN_PROGRESS", "callBackDelay": 0, "hookDetails": {"done": 1}}
            )
        return web.json_response({"hookStatus": "SUCCEEDED"})

    hooks.answer = answer
    operator = await deployed_with_hook(operators, hooks.url, hookDetails={"suite": "smoke"})
    record = newest_record(operator.kube)
    # Past the hook: stopping blue's tasks (whose Pods the fake cluster never terminates).
    assert (record["status"], record["lifecycleStage"]) == ("IN_PROGRESS", "CLEAN_UP")
    [run] = record["lifecycleHookDetails"]
    assert (run["status"], run["invocations"], run["targetArn"]) == ("SUCCEEDED", 2, hooks.url)
    first, second = hooks.payloads
    assert first["lifecycleStage"] == "POST_SCALE_UP"
    assert first["resourceArn"] == record["serviceDeploymentArn"]
    assert (
        first["executionDetails"]["targetServiceRevisionArn"]
        == (record["targetServiceRevision"]["arn"])
    )
    assert first["hookDetails"] == {"suite": "smoke"}
    assert second["hookDetails"] == {"suite": "smoke", "done": 1}
    said = [m for m in service_events(operator.kube) if "lifecycle hook" in m]
    assert [m.rpartition("(")[2] for m in said] == ["HOOK_IN_PROGRESS).", "HOOK_SUCCEEDED)."]


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (lambda _n: web.json_response({"hookStatus": "FAILED"}), "answered FAILED"),
        (lambda _n: web.Response(status=500, text="boom"), "it answered HTTP 500: boom"),
        (lambda _n: web.Response(text="not json"), "its answer is not JSON"),
        (
            lambda _n: web.json_response({"hookStatus": "DONE"}),
            "the answer's hookStatus 'DONE' is not SUCCEEDED, FAILED or IN_PROGRESS",
        ),
    ],
)
async def test_a_failed_hook_rolls_back_saying_why(
    hooks: HookServer, operators: list[Operator], answer: Answer, why: str
) -> None:
    hooks.answer = answer
    operator = await deployed_with_hook(operators, hooks.url)
    kube = operator.kube
    record = newest_record(kube)
    assert record["status"] in ("ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL")
    [run] = record["lifecycleHookDetails"]
    assert (run["status"], run["statusReason"], run["invocations"]) == ("FAILED", why, 1)
    assert record["rollback"]["reason"].endswith(f"FAILED: {hooks.url}: {why}")
    assert any(f"failed: {hooks.url}: {why} (HOOK_FAILED)." in m for m in service_events(kube))
    primary = next(
        d for d in kube.stored(SERVICES, *KEY)["status"]["deployments"] if d["status"] == "PRIMARY"
    )
    assert (primary["taskDefinition"], primary["rollback"]) == (f"{FAMILY}:1", True)  # blue
    assert len(hooks.payloads) == 1


async def test_an_unreachable_url_is_a_function_error(operators: list[Operator]) -> None:
    url = f"http://127.0.0.1:{free_port()}/verify"  # nothing listens there
    operator = await deployed_with_hook(operators, url)
    [run] = newest_record(operator.kube)["lifecycleHookDetails"]
    assert run["status"] == "FAILED"
    assert run["statusReason"].startswith("it cannot be reached: ")


async def test_a_restarted_operator_waits_for_the_next_call_it_finds_in_the_status(
    hooks: HookServer, operators: list[Operator]
) -> None:
    hooks.answer = lambda _n: web.json_response(
        {"hookStatus": "IN_PROGRESS", "callBackDelay": 600, "hookDetails": {"step": 3}}
    )
    operator = await deployed_with_hook(operators, hooks.url)
    kube = operator.kube
    [run] = newest_record(kube)["lifecycleHookDetails"]
    assert (run["status"], run["invocations"], run["hookDetails"]) == (
        "IN_PROGRESS",
        1,
        {"step": 3},
    )
    assert run["nextInvocationAt"] > run["startedAt"]
    # Held at POST_SCALE_UP; a restarted operator, remembering nothing, neither calls before
    # the next call is due nor writes anything.
    primary = next(
        d for d in kube.stored(SERVICES, *KEY)["status"]["deployments"] if d["status"] == "PRIMARY"
    )
    assert primary["lifecycleStage"] == "POST_SCALE_UP"
    written = len(kube.written())
    restarted = Operator(kube)
    operators.append(restarted)
    await restarted.services.reconcile(KEY)
    assert len(hooks.payloads) == 1 and kube.written()[written:] == []
    json.dumps(run)  # the status holds plain JSON


@pytest.mark.parametrize(("code", "outcome"), [(0, "SUCCEEDED"), (1, "FAILED")])
async def test_a_task_target_runs_once_as_a_task_and_its_exit_decides(
    operators: list[Operator], code: int, outcome: str
) -> None:
    operator = await deployed_with_hook(operators, f"task-definition/{FAMILY}:1")
    kube = operator.kube
    [run] = newest_record(kube)["lifecycleHookDetails"]
    assert (run["status"], run["invocations"]) == ("IN_PROGRESS", 1)
    task = kube.stored(TASKS, NAMESPACE, run["hookId"])
    assert task["metadata"]["labels"][labels.HOOK_LABEL] == run["hookId"]
    owner = kube.stored(SERVICES, *KEY)["metadata"]
    assert [(r["kind"], r["uid"]) for r in task["metadata"]["ownerReferences"]] == [
        ("Service", owner["uid"])
    ]
    # Its Pod runs with the payload; the Service does not count it among its tasks.
    [pod] = [p for p in kube.all_stored(PODS) if p["metadata"]["name"] == run["hookId"]]
    [variable] = [
        e for e in pod["spec"]["containers"][0]["env"] if e["name"] == "ECS_LIFECYCLE_HOOK_PAYLOAD"
    ]
    payload = json.loads(variable["value"])
    assert (payload["executionId"], payload["lifecycleStage"]) == (run["hookId"], "POST_SCALE_UP")
    status = kube.stored(SERVICES, *KEY)["status"]
    assert status["runningCount"] == 2  # blue and green, not the hook's task
    # A restarted operator neither creates it again nor writes anything while it runs.
    written = len(kube.written())
    restarted = Operator(kube)
    operators.append(restarted)
    await restarted.services.reconcile(KEY)
    assert kube.written()[written:] == []
    exit_pod(kube, run["hookId"], code)
    restarted.catch_up()
    await restarted.converge()
    record = newest_record(kube)
    [run] = record["lifecycleHookDetails"]
    assert (run["status"], run["invocations"]) == (outcome, 1)
    if outcome == "SUCCEEDED":
        assert run["statusReason"] == f"its task {run['hookId']} exited 0"
        assert record["lifecycleStage"] == "CLEAN_UP"
    else:
        assert run["statusReason"].endswith("(app exit code 1)")
        assert record["status"] in ("ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL")
    creates = [
        r
        for r in kube.written()
        if (r.verb, r.plural) == ("create", "tasks") and r.body["metadata"]["name"] == run["hookId"]
    ]
    assert len(creates) == 1
