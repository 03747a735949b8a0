"""AWS_LAMBDA lifecycle hooks at the traffic stages end to end (issue #11): the real operator
calls a CANARY deployment's hook at PRODUCTION_TRAFFIC_SHIFT once per traffic step with that
step's weights, SUCCEEDED letting the deployment complete and FAILED rolling it back with blue
serving, the rollback calling it once more with green at 0 and blue at 100 (`kubectl ecs`
showing that run as the rollback's); a task target runs
its task definition again as a Task in the rollback, which completes whatever it answers; a
TEST_TRAFFIC_SHIFT hook's rollback run is called once green left the test LoadBalancer; and a
task target whose run times out has its Task stopped.

The hook's server runs in this test process on 127.0.0.1 (the operator runs on this machine in
the tests, on either target)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from support.ecs_api import Ecs, Plugin, container, shell, task_definition
from support.helpers import ApiSession
from support.hook_server import HookServer, serving_hooks
from support.load_balancers import (
    LoadBalancers,
    create_staged_service,
    deploy_web_revision,
    lb_entry,
    load_balancer,
    web_definition,
)
from support.services import Services, revision_of

FAMILY = "web"
SERVICE = "web"
BLUE, GREEN = f"{FAMILY}:1", f"{FAMILY}:2"
DESIRED = 4  # a 25 % canary lists one green endpoint beside three blue ones
CONVERGE = 60
REVISION_ARN = "arn:aws:ecs:::service-revision/{namespace}/web/{digits}"

Body = dict[str, Any]


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    with serving_hooks() as server:
        yield server


@pytest.fixture
def services(ecs: Ecs) -> Services:
    return Services(ecs)


@pytest.fixture
def lbs(services: Services) -> LoadBalancers:
    return LoadBalancers(services)


def deploy_canary(services: Services, lbs: LoadBalancers, hook: Body) -> tuple[str, str]:
    """web:1 steady behind the LoadBalancer, then web:2 deployed CANARY (25 %, then the rest)
    with ``hook``; returns the (green, blue) deployment ids."""
    configuration = {
        "strategy": "CANARY",
        "canaryConfiguration": {"canaryPercent": 25, "canaryBakeTimeInMinutes": 0},
        "bakeTimeInMinutes": 0,
        "lifecycleHooks": [hook],
    }
    status = create_staged_service(lbs, SERVICE, FAMILY, DESIRED, configuration, CONVERGE)
    blue: Body = status["deployments"][0]
    deploy_web_revision(services, FAMILY, "2")
    green: Body = services.wait(
        lambda: (p := services.primary(SERVICE))["taskDefinition"] == GREEN and p,
        "green deploying",
        SERVICE,
        CONVERGE,
    )
    return str(green["id"]), str(blue["id"])


def revision_arn(services: Services, deployment: str) -> str:
    return REVISION_ARN.format(
        namespace=services.ecs.namespace, digits=deployment.removeprefix("ecs-svc/")
    )


def record_of(services: Services, deployment: str) -> Body:
    """The service deployment of ``deployment`` (its ARN ends in its digits)."""
    digits = deployment.removeprefix("ecs-svc/")
    records = services.status(SERVICE).get("serviceDeployments") or ()
    found: Body = next(r for r in records if r["serviceDeploymentArn"].endswith("/" + digits))
    return found


def rollback_record(services: Services, deployment: str) -> Body:
    """The service deployment of ``deployment`` once ROLLBACK_SUCCESSFUL with no hook run left
    IN_PROGRESS."""

    def ended(record: Body) -> bool:
        runs = record.get("lifecycleHookDetails") or ()
        return record["status"] == "ROLLBACK_SUCCESSFUL" and all(
            r["status"] != "IN_PROGRESS" for r in runs
        )

    found: Body = services.wait(
        lambda: ended(r := record_of(services, deployment)) and r,
        "rollback and its hook run recorded",
        SERVICE,
        CONVERGE,
    )
    return found


def test_a_production_hook_is_called_at_each_canary_step_with_its_weights(
    services: Services, lbs: LoadBalancers, hooks: HookServer
) -> None:
    hook = {"lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"], "hookTargetArn": hooks.url}
    green, blue = deploy_canary(services, lbs, hook)
    services.wait_steady(SERVICE, DESIRED, GREEN, CONVERGE * 2)
    record = record_of(services, green)
    assert record["status"] == "SUCCESSFUL"
    green_arn, blue_arn = revision_arn(services, green), revision_arn(services, blue)
    assert [
        (p["lifecycleStage"], p["executionDetails"]["productionTrafficWeights"])
        for p in hooks.payloads
    ] == [
        ("PRODUCTION_TRAFFIC_SHIFT", {green_arn: 25.0, blue_arn: 75.0}),
        ("PRODUCTION_TRAFFIC_SHIFT", {green_arn: 100.0, blue_arn: 0.0}),
    ]
    runs = record["lifecycleHookDetails"]
    assert [(r["lifecycleStage"], r["status"]) for r in runs] == [
        ("PRODUCTION_TRAFFIC_SHIFT", "SUCCEEDED")
    ] * 2
    assert [p["executionId"] for p in hooks.payloads] == [r["hookId"] for r in runs]


def test_a_failed_production_hook_rolls_back_with_blue_serving_and_is_called_again(
    services: Services, lbs: LoadBalancers, hooks: HookServer
) -> None:
    hooks.answer = lambda _n: {"hookStatus": "FAILED"}
    hook = {"lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"], "hookTargetArn": hooks.url}
    green, blue = deploy_canary(services, lbs, hook)
    services.wait_steady(SERVICE, DESIRED, BLUE, CONVERGE * 2)
    record = rollback_record(services, green)
    run, again = record["lifecycleHookDetails"]
    assert (run["lifecycleStage"], run["status"]) == ("PRODUCTION_TRAFFIC_SHIFT", "FAILED")
    # The rollback ran the hook once more (a fresh run): its FAILED answer changed nothing.
    assert (again["lifecycleStage"], again["status"], again["rollback"]) == (
        "PRODUCTION_TRAFFIC_SHIFT",
        "FAILED",
        True,
    )
    step, rolled_back = hooks.payloads  # the canary step's, then the rollback's
    green_arn, blue_arn = revision_arn(services, green), revision_arn(services, blue)
    assert step["executionDetails"]["productionTrafficWeights"] == {
        green_arn: 25.0,
        blue_arn: 75.0,
    }
    assert rolled_back["executionId"] == again["hookId"] != step["executionId"]
    assert rolled_back["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT"
    assert rolled_back["executionDetails"]["targetServiceRevisionArn"] == green_arn
    assert rolled_back["executionDetails"]["productionTrafficWeights"] == {
        green_arn: 0.0,
        blue_arn: 100.0,
    }

    def serving() -> set[str | None]:
        by_name = {t["metadata"]["name"]: revision_of(t) for t in services.live(SERVICE)}
        return {by_name.get(pod) for pod in lbs.listed_endpoints()}

    services.ecs.wait(
        lambda: serving() == {BLUE},
        "blue serving alone",
        lambda: lbs.listed_endpoints(),
        CONVERGE,
    )


def test_kubectl_ecs_shows_the_rollback_s_hook_run_while_it_runs(
    services: Services, lbs: LoadBalancers, hooks: HookServer, plugin: Plugin
) -> None:
    """The rollback's run answers IN_PROGRESS until the test lets it succeed: meanwhile
    `kubectl ecs describe-services` lists it with `rollback: true`, its table marking it."""
    done = threading.Event()

    def answer(n: int) -> Body:
        details = hooks.payloads[n]["executionDetails"]
        if details["productionTrafficWeights"].get(details["targetServiceRevisionArn"]) != 0:
            return {"hookStatus": "FAILED"}  # the canary step: roll back
        return {"hookStatus": "SUCCEEDED" if done.is_set() else "IN_PROGRESS", "callBackDelay": 1}

    hooks.answer = answer
    hook = {"lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"], "hookTargetArn": hooks.url}
    green, _blue = deploy_canary(services, lbs, hook)

    def rollback_run() -> Body | None:
        deployments = services.status(SERVICE).get("deployments") or ()
        runs = [
            d
            for deployment in deployments
            if deployment["id"] == green
            for d in deployment.get("lifecycleHookDetails") or ()
            if d.get("rollback") and (d.get("invocations") or 0) >= 1
        ]
        return runs[0] if runs else None

    run: Body = services.wait(rollback_run, "the rollback's run called", SERVICE, CONVERGE)
    described = plugin("describe-services", "--services", SERVICE, "-o", "json")
    assert described.returncode == 0, described.stderr
    [service] = json.loads(described.stdout)["services"]
    [listed] = [d for d in service["deployments"] if d["id"] == green]
    rows = {d["hookId"]: d for d in listed["lifecycleHookDetails"]}
    assert (rows[run["hookId"]]["rollback"], rows[run["hookId"]]["status"]) == (
        True,
        "IN_PROGRESS",
    )
    assert [d.get("rollback") for d in rows.values() if d["hookId"] != run["hookId"]] == [None]
    table = plugin("describe-services", "--services", SERVICE)
    assert table.returncode == 0, table.stderr
    hooks_section = next(s for s in table.stdout.split("\n\n") if s.startswith("LIFECYCLE HOOKS"))
    [row] = [line.split() for line in hooks_section.splitlines() if run["hookId"] in line]
    assert row[:4] == [SERVICE, green, run["hookId"], "PRODUCTION_TRAFFIC_SHIFT"]
    assert row[5:7] == ["IN_PROGRESS", "true"]
    done.set()
    services.wait_steady(SERVICE, DESIRED, BLUE, CONVERGE)
    [ended] = [d for d in record_of(services, green)["lifecycleHookDetails"] if d.get("rollback")]
    assert (ended["hookId"], ended["status"]) == (run["hookId"], "SUCCEEDED")


def test_a_failed_task_hook_rolls_back_and_runs_its_task_again_in_the_rollback(
    services: Services, lbs: LoadBalancers
) -> None:
    services.create_body(task_definition("check", container("check", shell("exit 1"))))
    services.ecs.wait_accepted("check")
    hook = {
        "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"],
        "hookTargetArn": "task-definition/check",
    }
    green, blue = deploy_canary(services, lbs, hook)
    services.wait_steady(SERVICE, DESIRED, BLUE, CONVERGE * 2)
    record = rollback_record(services, green)
    run, again = record["lifecycleHookDetails"]
    assert (run["lifecycleStage"], run["status"], run.get("rollback")) == (
        "PRODUCTION_TRAFFIC_SHIFT",
        "FAILED",
        None,
    )
    assert run["hookId"] in record["rollback"]["reason"]
    # The rollback ran the task once more (a fresh run, its own Task): its failure is recorded
    # and changed nothing, the rollback completed.
    assert (again["lifecycleStage"], again["status"], again["rollback"]) == (
        "PRODUCTION_TRAFFIC_SHIFT",
        "FAILED",
        True,
    )
    assert again["hookId"] != run["hookId"] and again["invocations"] == 1
    assert again["statusReason"].endswith("(check exit code 1)")
    task = services.ecs.task(again["hookId"])
    assert task["status"]["lastStatus"] == "STOPPED"
    assert task["spec"]["taskDefinition"] == "check"
    assert task["metadata"]["ownerReferences"][0]["kind"] == "Service"
    [variable] = [
        e
        for e in task["spec"]["overrides"]["containerOverrides"][0]["environment"]
        if e["name"] == "ECS_LIFECYCLE_HOOK_PAYLOAD"
    ]
    payload = json.loads(variable["value"])
    green_arn, blue_arn = revision_arn(services, green), revision_arn(services, blue)
    assert payload["executionId"] == again["hookId"]
    assert payload["executionDetails"]["targetServiceRevisionArn"] == green_arn
    assert payload["executionDetails"]["productionTrafficWeights"] == {
        green_arn: 0.0,
        blue_arn: 100.0,
    }
    messages = services.messages(SERVICE)
    assert any(
        f"{again['hookId']} is in progress at PRODUCTION_TRAFFIC_SHIFT in the rollback: "
        f"running task-definition/check as task {again['hookId']}" in m
        for m in messages
    )
    assert any(f"{again['hookId']} failed: " in m and "the rollback goes on" in m for m in messages)
    assert services.primary(SERVICE)["taskDefinition"] == BLUE


def test_a_rollback_calls_the_test_hook_once_green_left_the_test_load_balancer(
    services: Services, lbs: LoadBalancers, hooks: HookServer
) -> None:
    """BLUE_GREEN with test traffic: the production hook FAILED rolls back; the test hook's
    rollback run is called only once the test LoadBalancer registers none of green's tasks
    (each call looks at the test LoadBalancer as it is then)."""
    test_lb = "web-lb-test"
    ecs = services.ecs
    lbs.create(load_balancer())
    lbs.create(load_balancer(test_lb))
    services.create_body(web_definition(FAMILY))
    ecs.wait_accepted(FAMILY)
    # The hook server's thread reads the LoadBalancer through a session of its own.
    api = ApiSession(ecs.target.configuration.host, ecs.target.configuration)
    test_targets: dict[str, list[Body]] = {}

    def answer(n: int) -> Body:
        payload = hooks.payloads[n]
        details = payload["executionDetails"]
        back = details["productionTrafficWeights"].get(details["targetServiceRevisionArn"]) == 0
        stage = payload["lifecycleStage"]
        if stage == "TEST_TRAFFIC_SHIFT":
            response = api.get(ecs.path("loadbalancers", test_lb))
            assert response.ok, response.text
            listed = (response.json().get("status") or {}).get("targets") or []
            test_targets["rollback" if back else "forward"] = listed
        failing = stage == "PRODUCTION_TRAFFIC_SHIFT" and not back
        return {"hookStatus": "FAILED" if failing else "SUCCEEDED"}

    hooks.answer = answer
    configuration = {
        "strategy": "BLUE_GREEN",
        "bakeTimeInMinutes": 0,
        "lifecycleHooks": [
            {"lifecycleStages": ["TEST_TRAFFIC_SHIFT"], "hookTargetArn": hooks.url},
            {"lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"], "hookTargetArn": hooks.url},
        ],
    }
    entry = lb_entry() | {"advancedConfiguration": {"alternateTargetGroupArn": test_lb}}
    services.create(
        SERVICE,
        FAMILY,
        desiredCount=2,
        loadBalancers=[entry],
        deploymentConfiguration=configuration,
    )
    services.wait_steady(SERVICE, 2, BLUE, CONVERGE)
    deploy_web_revision(services, FAMILY, "2")
    green: str = services.wait(
        lambda: (p := services.primary(SERVICE))["taskDefinition"] == GREEN and p["id"],
        "green deploying",
        SERVICE,
        CONVERGE,
    )
    services.wait_steady(SERVICE, 2, BLUE, CONVERGE * 2)
    record = services.wait(
        lambda: (
            (r := record_of(services, green))["status"] == "ROLLBACK_SUCCESSFUL"
            and all(d["status"] != "IN_PROGRESS" for d in r.get("lifecycleHookDetails") or ())
            and r
        ),
        "rollback and its hook runs recorded",
        SERVICE,
        CONVERGE,
    )
    again = [d for d in record["lifecycleHookDetails"] if d.get("rollback")]
    assert sorted((d["lifecycleStage"], d["status"]) for d in again) == [
        ("PRODUCTION_TRAFFIC_SHIFT", "SUCCEEDED"),
        ("TEST_TRAFFIC_SHIFT", "SUCCEEDED"),
    ]
    # Forward, the test LoadBalancer listed green (healthy) when the test hook was called; in
    # the rollback, none of those tasks was registered there any more (draining or gone).
    green_tasks = {t["task"] for t in test_targets["forward"] if t["state"] == "healthy"}
    assert len(green_tasks) == 2
    still = [
        (t["task"], t["state"])
        for t in test_targets["rollback"]
        if t["task"] in green_tasks and t["state"] != "draining"
    ]
    assert still == []


def test_a_task_hook_that_times_out_has_its_task_stopped(
    services: Services, lbs: LoadBalancers
) -> None:
    services.create_body(task_definition("check", container("check", shell("sleep 600"))))
    services.ecs.wait_accepted("check")
    hook = {
        "lifecycleStages": ["POST_SCALE_UP"],
        "hookTargetArn": "task-definition/check",
        "timeoutConfiguration": {"timeoutInMinutes": 1, "action": "ROLLBACK"},
    }
    green, _blue = deploy_canary(services, lbs, hook)
    record = services.wait(
        lambda: (r := record_of(services, green))["status"] == "ROLLBACK_SUCCESSFUL" and r,
        "rolled back after the timeout",
        SERVICE,
        CONVERGE * 3,
    )
    [run] = record["lifecycleHookDetails"]
    assert run["status"] == "TIMED_OUT"
    services.ecs.wait_last_status(run["hookId"], "STOPPED", timeout=CONVERGE)
    task = services.ecs.task(run["hookId"])
    assert task["spec"]["desiredStatus"] == "STOPPED"
    assert task["status"]["stoppedReason"] == (
        f"Task stopped: lifecycle hook {run['hookId']} timed out (HOOK_TIMED_OUT)"
    )
