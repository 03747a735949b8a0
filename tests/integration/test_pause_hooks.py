"""PAUSE lifecycle hooks end to end (issue #11 item 4): the real operator holds a BLUE_GREEN
deployment at POST_SCALE_UP (green up, blue serving all production traffic, the hook
AWAITING_ACTION) until the user patches spec.continueServiceDeployment, or the hook's timeout
applies."""

from __future__ import annotations

from typing import Any

import pytest

from support.ecs_api import Ecs
from support.load_balancers import (
    LoadBalancers,
    blue_green,
    create_staged_service,
    deploy_web_revision,
    pause_hook,
)
from support.services import Services, revision_of

FAMILY = "web"
SERVICE = "web"
BLUE, GREEN = f"{FAMILY}:1", f"{FAMILY}:2"
DESIRED = 2
CONVERGE = 60

Body = dict[str, Any]


@pytest.fixture
def services(ecs: Ecs) -> Services:
    return Services(ecs)


@pytest.fixture
def lbs(services: Services) -> LoadBalancers:
    return LoadBalancers(services)


def awaiting_hook(services: Services) -> Body | None:
    """The newest service deployment's hook awaiting action, if any."""
    records = services.status(SERVICE).get("serviceDeployments") or [{}]
    for detail in records[0].get("lifecycleHookDetails") or ():
        if detail["status"] == "AWAITING_ACTION":
            found: Body = detail
            return found
    return None


def paused_deployment(
    services: Services, lbs: LoadBalancers, minutes: int = 60, action: str = "ROLLBACK"
) -> Body:
    """web:1 steady behind the LoadBalancer, then web:2 deployed BLUE_GREEN with a PAUSE hook
    at POST_SCALE_UP; returns the hook once it awaits action."""
    configuration = blue_green(pause_hook(minutes, action))
    create_staged_service(lbs, SERVICE, FAMILY, DESIRED, configuration, CONVERGE)
    deploy_web_revision(services, FAMILY, "2")
    run: Body = services.wait(lambda: awaiting_hook(services), "hook awaiting", SERVICE, CONVERGE)
    # Held: green is up, blue keeps every task and all production traffic.
    live = services.live(SERVICE)
    assert sorted(revision_of(t) for t in live) == [BLUE] * DESIRED + [GREEN] * DESIRED
    assert all((t.get("status") or {}).get("lastStatus") == "RUNNING" for t in live)
    by_name = {t["metadata"]["name"]: revision_of(t) for t in live}
    assert {by_name.get(pod) for pod in lbs.listed_endpoints()} == {BLUE}
    status = services.status(SERVICE)
    primary = services.primary(SERVICE)
    assert (primary["lifecycleStage"], primary["productionTrafficWeight"]) == (
        "POST_SCALE_UP",
        0,
    )
    assert run["hookId"] == "ecs-pause-" + primary["id"].removeprefix("ecs-svc/") + "-1"
    assert (run["targetType"], run["timeoutAction"]) == ("PAUSE", action)
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "AwaitingAction"
    assert any(
        f"lifecycle hook {run['hookId']} is awaiting action at POST_SCALE_UP" in m
        for m in services.messages(SERVICE)
    )
    return run


def answer(services: Services, hook_id: str, action: str) -> None:
    services.update(SERVICE, continueServiceDeployment={"hookId": hook_id, "action": action})


def newest_record(services: Services) -> Body:
    record: Body = services.status(SERVICE)["serviceDeployments"][0]
    return record


def test_a_paused_deployment_continues_when_the_spec_says_so(
    services: Services, lbs: LoadBalancers
) -> None:
    run = paused_deployment(services, lbs)
    deployment = services.primary(SERVICE)["id"]
    answer(services, run["hookId"], "CONTINUE")
    status = services.wait_steady(SERVICE, DESIRED, GREEN, CONVERGE)
    assert [d["id"] for d in status["deployments"]] == [deployment]  # the answer deployed nothing
    record = newest_record(services)
    assert record["status"] == "SUCCESSFUL"
    assert [d["status"] for d in record["lifecycleHookDetails"]] == ["SUCCEEDED"]
    assert any("was continued (HOOK_SUCCEEDED)" in m for m in services.messages(SERVICE))


def test_a_paused_deployment_rolls_back_when_the_spec_says_so(
    services: Services, lbs: LoadBalancers
) -> None:
    run = paused_deployment(services, lbs)
    answer(services, run["hookId"], "ROLLBACK")
    services.wait_steady(SERVICE, DESIRED, BLUE, CONVERGE)
    record = services.wait(
        lambda: (
            newest_record(services)["status"] == "ROLLBACK_SUCCESSFUL" and newest_record(services)
        ),
        "rollback recorded",
        SERVICE,
        CONVERGE,
    )
    assert [d["status"] for d in record["lifecycleHookDetails"]] == ["FAILED"]
    assert run["hookId"] in record["rollback"]["reason"]


def test_a_paused_deployment_times_out_into_its_timeout_action(
    services: Services, lbs: LoadBalancers
) -> None:
    # timeoutInMinutes is whole minutes (ECS's API): the shortest pause is one minute.
    run = paused_deployment(services, lbs, minutes=1, action="CONTINUE")
    services.wait_steady(SERVICE, DESIRED, GREEN, 60 + CONVERGE)
    record = newest_record(services)
    assert record["status"] == "SUCCESSFUL"
    assert [d["status"] for d in record["lifecycleHookDetails"]] == ["TIMED_OUT"]
    assert any(
        f"lifecycle hook {run['hookId']} timed out: its timeout action CONTINUE applies" in m
        for m in services.messages(SERVICE)
    )
