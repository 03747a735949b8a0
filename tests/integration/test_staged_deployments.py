"""BLUE_GREEN, LINEAR and CANARY deployments end to end (issue #11): the real operator on the
cluster starts the new revision at the full count beside the old one, moves the
LoadBalancer's production endpoints to it as the strategy says, bakes, then stops the old
revision; every EndpointSlice change is checked as it was committed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from support.ecs_api import Ecs
from support.helpers import holds_for
from support.load_balancers import (
    DEREGISTRATION_DELAY,
    LB_NAME,
    ClusterWatch,
    EndpointInvariants,
    LoadBalancers,
    WatchEvent,
    assert_clean,
    blue_green,
    create_staged_service,
    deploy_web_revision,
    namespace_paths,
    pause_hook,
)
from support.services import ZONES, Services, is_stopped, revision_of, zone_counts

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
    with ClusterWatch(services, namespace_paths(services)) as watch:
        create_staged_service(lbs, SERVICE, FAMILY, desired, configuration, CONVERGE)
        deploy_web_revision(services, FAMILY, "2")
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
    status = deploy_staged(services, lbs, 2, blue_green(), check)
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


SUPERSEDING = f"{FAMILY}:3"


@dataclass
class SupersededTraffic(EndpointInvariants):
    """R5, and what a superseded BLUE_GREEN deployment may do to production: its revision
    (web:2) is never listed, no two revisions are listed at once, and once the newest
    (web:3) is listed blue never comes back."""

    newest_listed_at: int | None = None

    def after(self, event: WatchEvent, view: dict[str, dict[str, Body]]) -> None:
        super().after(event, view)
        listed = {
            revision_of(view["tasks"][name])
            for name in self._listed_pods(view)
            if name in view["tasks"]
        }
        where = f"rv {event.resource_version} ({event.type} {event.kind})"
        if GREEN in listed:
            self.violations.append(f"{where}: production lists the superseded {GREEN}")
        if len(listed) > 1:
            self.violations.append(f"{where}: production lists {sorted(listed)} at once")
        if SUPERSEDING in listed and self.newest_listed_at is None:
            self.newest_listed_at = event.resource_version
        if self.newest_listed_at is not None and BLUE in listed:
            self.violations.append(f"{where}: blue listed again after {SUPERSEDING}")


def held_hook(services: Services, deployment_id: str) -> Body | None:
    """The PAUSE hook run holding `deployment_id`, once it awaits action."""
    record = service_deployment(services, deployment_id)
    for detail in (record or {}).get("lifecycleHookDetails") or ():
        if detail["status"] == "AWAITING_ACTION":
            found: Body = detail
            return found
    return None


def service_deployment(services: Services, deployment_id: str) -> Body | None:
    digits = deployment_id.removeprefix("ecs-svc/")
    for record in services.status(SERVICE).get("serviceDeployments") or ():
        if record["serviceDeploymentArn"].endswith("/" + digits):
            found: Body = record
            return found
    return None


def test_a_new_revision_supersedes_an_in_flight_blue_green_deployment(
    services: Services, lbs: LoadBalancers
) -> None:
    """As ECS: the in-flight deployment (web:2, held by a PAUSE hook at POST_SCALE_UP) is
    STOPPED and its green tasks stopped; the newest (web:3) starts over from blue, which keeps
    its tasks and all production traffic until web:3 takes it."""
    desired = 2
    check = SupersededTraffic(LB_NAME, SERVICE, DEREGISTRATION_DELAY)
    configuration = blue_green(pause_hook())
    with ClusterWatch(services, namespace_paths(services)) as watch:
        blue = create_staged_service(lbs, SERVICE, FAMILY, desired, configuration, CONVERGE)
        blue_id = blue["deployments"][0]["id"]
        deploy_web_revision(services, FAMILY, "2")
        services.wait(lambda: services.primary(SERVICE)["id"] != blue_id, "web:2 started", SERVICE)
        superseded_id = services.primary(SERVICE)["id"]
        first_hook = services.wait(
            lambda: held_hook(services, superseded_id), "web:2 held", SERVICE, CONVERGE
        )
        deploy_web_revision(services, FAMILY, "3")

        def superseded() -> Body | None:
            status = services.status(SERVICE)
            record = service_deployment(services, superseded_id)
            tasks = [t for t in services.tasks(SERVICE) if revision_of(t) == GREEN]
            done = (
                status["deployments"][0]["id"] not in (blue_id, superseded_id)
                and superseded_id not in [d["id"] for d in status["deployments"]]
                and (record or {}).get("status") == "STOPPED"
                and all(is_stopped(t) for t in tasks)
            )
            return status if done else None

        status = services.wait(superseded, "web:2 superseded, its tasks stopped", SERVICE, CONVERGE)
        newest = status["deployments"][0]
        assert newest["taskDefinition"].endswith(SUPERSEDING), newest
        # Blue was not touched: all its tasks live, serving all production traffic.
        assert (
            sorted(revision_of(t) for t in services.live(SERVICE) if revision_of(t) == BLUE)
            == [BLUE] * desired
        )
        assert {revision_of(t) for t in services.live(SERVICE)} <= {BLUE, SUPERSEDING}
        record = service_deployment(services, superseded_id)
        assert record is not None
        assert newest["id"].removeprefix("ecs-svc/") in record["statusReason"], record
        assert "newer service deployment" in record["statusReason"], record
        # The newest deployment runs its own stages from the start: held by a hook of its own.
        second_hook = services.wait(
            lambda: held_hook(services, newest["id"]), "web:3 held", SERVICE, CONVERGE
        )
        assert second_hook["hookId"] != first_hook["hookId"]
        services.update(
            SERVICE,
            continueServiceDeployment={"hookId": second_hook["hookId"], "action": "CONTINUE"},
        )
        status = services.wait(
            lambda: services.steady(SERVICE, desired, SUPERSEDING),
            "web:3 steady",
            SERVICE,
            CONVERGE,
        )
    assert_clean(watch, check)
    assert check.newest_listed_at is not None
    assert [d["id"] for d in status["deployments"]] == [newest["id"]]
    records = {
        r["serviceDeploymentArn"].rsplit("/", 1)[1]: r["status"]
        for r in status["serviceDeployments"]
    }
    assert records == {
        newest["id"].removeprefix("ecs-svc/"): "SUCCESSFUL",
        superseded_id.removeprefix("ecs-svc/"): "STOPPED",
        blue_id.removeprefix("ecs-svc/"): "SUCCESSFUL",
    }, status["serviceDeployments"]


def test_green_spreads_over_itself_so_an_uneven_blue_leaves_no_rebalancing(
    services: Services, lbs: LoadBalancers
) -> None:
    """Blue is placed while a memberOf keeps it out of zone-c (3 + 3 + 0, AZ balanced over
    the zones it may use); removing the constraint starts a BLUE_GREEN deployment. Spread over
    the service's task group, green would fill zone-c first and end 1 + 1 + 4, and AZ
    rebalancing would follow COMPLETED; spread over its own tasks it ends 2 + 2 + 2 and
    nothing follows."""
    desired = 6
    away_from_c = {"type": "memberOf", "expression": "attribute:ecs.availability-zone != zone-c"}
    blue = create_staged_service(
        lbs,
        SERVICE,
        FAMILY,
        desired,
        blue_green(),
        CONVERGE,
        placementConstraints=[away_from_c],
    )
    blue_id = blue["deployments"][0]["id"]
    assert zone_counts(services.live(SERVICE)) == Counter({"zone-a": 3, "zone-b": 3, "zone-c": 0})
    services.update(SERVICE, placementConstraints=None)  # a placement change deploys
    status = services.wait(
        lambda: (
            services.primary(SERVICE).get("id") not in (None, blue_id)
            and services.steady(SERVICE, desired)
        ),
        "the BLUE_GREEN deployment completed",
        SERVICE,
        CONVERGE * 2,
    )
    [green] = status["deployments"]
    assert green["strategy"] == "BLUE_GREEN"
    live = services.live(SERVICE)
    assert {t["spec"]["startedBy"] for t in live} == {green["id"]}
    assert zone_counts(live) == Counter(dict.fromkeys(ZONES, 2))
    known = {t["metadata"]["name"] for t in services.tasks(SERVICE)}

    def rebalancing() -> str | None:
        messages = services.messages(SERVICE)
        said = [m for m in messages if "AZ Rebalancing" in m or "due to AZ rebalancing" in m]
        started = {t["metadata"]["name"] for t in services.tasks(SERVICE)} - known
        if said or started:
            return f"after COMPLETED: {said} {sorted(started)}\n{messages[:8]}"
        return None

    # The rebalance the old placement left would start in the plan that completes.
    holds_for(rebalancing, 10 * services.target.slowness)
