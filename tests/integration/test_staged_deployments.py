"""BLUE_GREEN, LINEAR and CANARY deployments end to end (issue #11): the real operator on the
cluster starts the new revision at the full count beside the old one, moves the
LoadBalancer's production endpoints to it as the strategy says, bakes, then stops the old
revision; every EndpointSlice change is checked as it was committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from support.ecs_api import Ecs
from support.load_balancers import (
    DEREGISTRATION_DELAY,
    LB_NAME,
    ClusterWatch,
    EndpointInvariants,
    LoadBalancers,
    WatchEvent,
    assert_clean,
    lb_entry,
    load_balancer,
    namespace_paths,
    web_definition,
)
from support.services import Services, revision_of

FAMILY = "web"
SERVICE = "web"
BLUE, GREEN = f"{FAMILY}:1", f"{FAMILY}:2"
CONVERGE = 60

Body = dict[str, Any]


@dataclass
class StagedTraffic(EndpointInvariants):
    """R5, and the order a staged deployment promises: production lists no green task before
    every green task is up, blue keeps every task until green serves, and once production
    left blue it never comes back (`mixed`: whether blue and green may be listed together,
    as LINEAR and CANARY do and BLUE_GREEN never does)."""

    desired: int = 2
    mixed: bool = False
    green_listed_at: int | None = None
    blue_left_at: int | None = None
    blue_stopped_early: list[str] = field(default_factory=list)

    def after(self, event: WatchEvent, view: dict[str, dict[str, Body]]) -> None:
        super().after(event, view)
        listed = self._listed_pods(view)
        by_revision = {BLUE: set(), GREEN: set()}
        for name in listed:
            task = view["tasks"].get(name)
            if task is not None:
                by_revision.setdefault(revision_of(task), set()).add(name)
        where = f"rv {event.resource_version} ({event.type} {event.kind})"
        if by_revision[GREEN] and self.green_listed_at is None:
            self.green_listed_at = event.resource_version
            green_up = [
                t
                for t in view["tasks"].values()
                if revision_of(t) == GREEN
                and (t.get("status") or {}).get("lastStatus") == "RUNNING"
            ]
            if len(green_up) < self.desired:
                self.violations.append(f"{where}: green listed before all green tasks ran")
        if by_revision[GREEN] and by_revision[BLUE] and not self.mixed:
            self.violations.append(f"{where}: production lists blue and green at once")
        if self.green_listed_at is not None and not by_revision[BLUE]:
            self.blue_left_at = self.blue_left_at or event.resource_version
        if self.blue_left_at is not None and by_revision[BLUE]:
            self.violations.append(f"{where}: blue listed again after production left it")
        if event.kind == "tasks" and self.green_listed_at is None:
            task = event.object
            stopping = (task.get("spec") or {}).get("desiredStatus") == "STOPPED"
            if revision_of(task) == BLUE and stopping:
                self.blue_stopped_early.append(task["metadata"]["name"])


@pytest.fixture
def services(ecs: Ecs) -> Services:
    return Services(ecs)


@pytest.fixture
def lbs(services: Services) -> LoadBalancers:
    return LoadBalancers(services)


def deploy_staged(
    services: Services, lbs: LoadBalancers, desired: int, configuration: Body, check: StagedTraffic
) -> Body:
    lbs.create(load_balancer())
    services.create_body(web_definition(FAMILY))
    services.ecs.wait_accepted(FAMILY)
    with ClusterWatch(services, namespace_paths(services)) as watch:
        services.create(
            SERVICE,
            FAMILY,
            desiredCount=desired,
            loadBalancers=[lb_entry()],
            deploymentConfiguration=configuration,
        )
        services.wait(
            lambda: services.steady(SERVICE, desired, BLUE), "web:1 steady", SERVICE, CONVERGE
        )
        services.ecs.wait(
            lambda: len(lbs.listed_endpoints()) == desired,
            "blue serving",
            lambda: lbs.listed_endpoints(),
            CONVERGE,
        )
        services.update_task_definition(
            FAMILY, web_definition(FAMILY, environment=[{"name": "V", "value": "2"}])["spec"]
        )
        status = services.wait(
            lambda: services.steady(SERVICE, desired, GREEN), "web:2 steady", SERVICE, CONVERGE * 2
        )
    assert_clean(watch, check)
    assert check.green_listed_at is not None and check.blue_left_at is not None
    assert not check.blue_stopped_early, check.blue_stopped_early
    return status


def test_blue_green_flips_production_in_one_write_and_stops_blue_after(
    services: Services, lbs: LoadBalancers
) -> None:
    check = StagedTraffic(LB_NAME, SERVICE, DEREGISTRATION_DELAY, desired=2)
    status = deploy_staged(
        services, lbs, 2, {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0}, check
    )
    [deployment] = status["deployments"]
    assert (deployment["rolloutState"], deployment["strategy"]) == ("COMPLETED", "BLUE_GREEN")
    assert deployment["productionTrafficWeight"] == 100
    messages = services.messages(SERVICE)
    stages = [
        m
        for m in messages
        if m.endswith(("(SCALE_UP).", "(PRODUCTION_TRAFFIC_SHIFT).", "(BAKE_TIME).", "(CLEAN_UP)."))
    ]
    assert len(stages) == 4, messages
    assert {revision_of(t) for t in services.live(SERVICE)} == {GREEN}


def test_canary_lists_a_share_of_green_first(services: Services, lbs: LoadBalancers) -> None:
    check = StagedTraffic(LB_NAME, SERVICE, DEREGISTRATION_DELAY, desired=4, mixed=True)
    configuration = {
        "strategy": "CANARY",
        "canaryConfiguration": {"canaryPercent": 25, "canaryBakeTimeInMinutes": 0},
    }
    deploy_staged(services, lbs, 4, configuration, check)
    messages = services.messages(SERVICE)
    assert any("shifted 25% of production traffic" in m for m in messages), messages
    assert any("shifted 100% of production traffic" in m for m in messages), messages
