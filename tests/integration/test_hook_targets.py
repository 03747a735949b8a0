"""AWS_LAMBDA lifecycle hooks end to end (issue #11 item 4): at POST_SCALE_UP of a BLUE_GREEN
deployment the real operator calls the URL a hook's hookTargetArn names, and the answers decide
(IN_PROGRESS calls again, SUCCEEDED completes it, FAILED rolls it back to blue), or runs the
task definition it names once as a Task, whose exit decides.

The hook's server runs in this test process on 127.0.0.1 (the operator runs on this machine in
the tests, on either target)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support.ecs_api import Ecs, container, shell, task_definition
from support.hook_server import HookServer, serving_hooks
from support.load_balancers import (
    LoadBalancers,
    blue_green,
    create_staged_service,
    deploy_web_revision,
)
from support.services import Services, revision_of

FAMILY = "web"
SERVICE = "web"
BLUE, GREEN = f"{FAMILY}:1", f"{FAMILY}:2"
DESIRED = 2
CONVERGE = 60

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


def deploy_with_hook(services: Services, lbs: LoadBalancers, url: str) -> str:
    """web:1 steady behind the LoadBalancer, then web:2 deployed BLUE_GREEN with an
    AWS_LAMBDA hook whose target is ``url`` at POST_SCALE_UP; returns the new deployment's
    id."""
    hook = {"lifecycleStages": ["POST_SCALE_UP"], "hookTargetArn": url}
    create_staged_service(lbs, SERVICE, FAMILY, DESIRED, blue_green(hook), CONVERGE)
    deploy_web_revision(services, FAMILY, "2")
    primary: Body = services.wait(
        lambda: (p := services.primary(SERVICE))["taskDefinition"] == GREEN and p,
        "green deploying",
        SERVICE,
        CONVERGE,
    )
    return str(primary["id"])


def record_of(services: Services, deployment: str) -> Body:
    """The service deployment of ``deployment`` (its ARN ends in its digits)."""
    digits = deployment.removeprefix("ecs-svc/")
    records = services.status(SERVICE).get("serviceDeployments") or ()
    found: Body = next(r for r in records if r["serviceDeploymentArn"].endswith("/" + digits))
    return found


def test_a_hook_answering_in_progress_then_succeeded_completes_the_deployment(
    services: Services, lbs: LoadBalancers, hooks: HookServer
) -> None:
    hooks.answer = lambda n: (
        {"hookStatus": "IN_PROGRESS", "callBackDelay": 1, "hookDetails": {"checks": n + 1}}
        if n < 2
        else {"hookStatus": "SUCCEEDED"}
    )
    deployment = deploy_with_hook(services, lbs, hooks.url)
    services.wait_steady(SERVICE, DESIRED, GREEN, CONVERGE)
    record = record_of(services, deployment)
    assert record["status"] == "SUCCESSFUL"
    [run] = record["lifecycleHookDetails"]
    assert (run["targetType"], run["targetArn"], run["status"], run["invocations"]) == (
        "AWS_LAMBDA",
        hooks.url,
        "SUCCEEDED",
        3,
    )
    assert [p["hookDetails"] for p in hooks.payloads] == [None, {"checks": 1}, {"checks": 2}]
    first = hooks.payloads[0]
    assert (first["executionId"], first["lifecycleStage"]) == (run["hookId"], "POST_SCALE_UP")
    assert first["resourceArn"] == record["serviceDeploymentArn"]
    messages = services.messages(SERVICE)
    assert any(f"{run['hookId']} is in progress at POST_SCALE_UP" in m for m in messages)
    assert any(f"{run['hookId']} succeeded: {hooks.url}: answered SUCCEEDED" in m for m in messages)


def test_a_hook_answering_failed_rolls_back_to_blue(
    services: Services, lbs: LoadBalancers, hooks: HookServer
) -> None:
    hooks.answer = lambda _n: {"hookStatus": "FAILED"}
    deployment = deploy_with_hook(services, lbs, hooks.url)
    services.wait_steady(SERVICE, DESIRED, BLUE, CONVERGE)
    record = services.wait(
        lambda: (r := record_of(services, deployment))["status"] == "ROLLBACK_SUCCESSFUL" and r,
        "rollback recorded",
        SERVICE,
        CONVERGE,
    )
    [run] = record["lifecycleHookDetails"]
    assert (run["status"], run["statusReason"]) == ("FAILED", "answered FAILED")
    assert hooks.url in record["rollback"]["reason"]
    by_name = {t["metadata"]["name"]: revision_of(t) for t in services.live(SERVICE)}
    assert {by_name.get(pod) for pod in lbs.listed_endpoints()} == {BLUE}  # blue serves
    assert len(hooks.payloads) == 1
    assert any(
        f"{run['hookId']} failed: {hooks.url}: answered FAILED (HOOK_FAILED)." in m
        for m in services.messages(SERVICE)
    )


@pytest.mark.parametrize(("code", "outcome"), [(0, "SUCCEEDED"), (1, "FAILED")])
def test_a_task_hook_runs_its_task_once_and_its_exit_decides(
    services: Services, lbs: LoadBalancers, code: int, outcome: str
) -> None:
    services.create_body(task_definition("check", container("check", shell(f"exit {code}"))))
    services.ecs.wait_accepted("check")
    deployment = deploy_with_hook(services, lbs, "task-definition/check")
    serving = GREEN if code == 0 else BLUE
    services.wait_steady(SERVICE, DESIRED, serving, CONVERGE)
    record = services.wait(
        lambda: (
            (r := record_of(services, deployment))["status"]
            in ("SUCCESSFUL", "ROLLBACK_SUCCESSFUL")
            and r
        ),
        "deployment ended",
        SERVICE,
        CONVERGE,
    )
    [run] = record["lifecycleHookDetails"]
    assert (run["status"], run["invocations"]) == (outcome, 1)
    task = services.ecs.get("tasks", run["hookId"])
    assert task is not None
    assert task["status"]["lastStatus"] == "STOPPED"
    assert task["spec"]["taskDefinition"] == "check"
    assert task["metadata"]["ownerReferences"][0]["kind"] == "Service"
    messages = services.messages(SERVICE)
    assert any(f"running task-definition/check as task {run['hookId']}" in m for m in messages)
    if code == 0:
        assert record["status"] == "SUCCESSFUL"
        assert run["statusReason"] == f"its task {run['hookId']} exited 0"
    else:
        assert record["status"] == "ROLLBACK_SUCCESSFUL"
        assert run["statusReason"].endswith("(check exit code 1)")
        assert run["hookId"] in record["rollback"]["reason"]
