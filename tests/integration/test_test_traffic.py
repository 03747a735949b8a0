"""Test traffic through an alternate LoadBalancer end to end (issue #11 item 3): during a
BLUE_GREEN deployment the test LoadBalancer lists the new tasks from TEST_TRAFFIC_SHIFT on and
never an old one, production moves as before, and on completion the two LoadBalancers swap
roles (status.resolvedConfiguration); the next deployment tests through the other one. Every
EndpointSlice change is checked as it was committed."""

from __future__ import annotations

from dataclasses import dataclass
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
    endpoint_listed,
    lb_entry,
    load_balancer,
    namespace_paths,
    web_definition,
)
from support.load_balancers import SERVICE_NAME_LABEL as LISTED_BY
from support.services import Services, revision_of

FAMILY = "web"
SERVICE = "web"
TEST_LB = "web-lb-test"
DESIRED = 2
CONVERGE = 60

Body = dict[str, Any]


@dataclass
class AlternateTraffic(EndpointInvariants):
    """R5 on the production LoadBalancer, and on the test one at every committed change: it
    lists only tasks of the `green` revision, and lists one before production does."""

    test_lb: str = TEST_LB
    green: str = ""
    test_listed_at: int | None = None
    production_listed_at: int | None = None

    def after(self, event: WatchEvent, view: dict[str, dict[str, Body]]) -> None:
        super().after(event, view)
        where = f"rv {event.resource_version} ({event.type} {event.kind})"
        for lb in (self.lb, self.test_lb):
            listed = {
                endpoint["targetRef"]["name"]
                for piece in view["endpointslices"].values()
                if (piece["metadata"].get("labels") or {}).get(LISTED_BY) == lb
                for endpoint in piece.get("endpoints") or ()
                if endpoint_listed(endpoint)
            }
            green = {n for n in listed if n in view["tasks"] and self._green(view["tasks"][n])}
            if lb == self.test_lb:
                if listed - green:
                    self.violations.append(f"{where}: test lists {sorted(listed - green)}")
                if green and self.test_listed_at is None:
                    self.test_listed_at = event.resource_version
            elif green and self.production_listed_at is None:
                self.production_listed_at = event.resource_version

    def _green(self, task: Body) -> bool:
        return revision_of(task) == self.green


@pytest.fixture
def services(ecs: Ecs) -> Services:
    return Services(ecs)


@pytest.fixture
def lbs(services: Services) -> LoadBalancers:
    return LoadBalancers(services)


def roles(services: Services) -> tuple[str, str] | None:
    resolved = services.status(SERVICE).get("resolvedConfiguration") or {}
    entries = resolved.get("loadBalancers") or []
    if len(entries) != 1:
        return None
    return entries[0]["loadBalancerName"], entries[0]["alternateLoadBalancerName"]


def deploy(
    services: Services, lbs: LoadBalancers, version: int, production: str, test: str
) -> None:
    """Deploy web:VERSION over web:VERSION-1 with `production` and `test` in those roles."""
    green = f"{FAMILY}:{version}"
    check = AlternateTraffic(production, SERVICE, DEREGISTRATION_DELAY, test_lb=test, green=green)
    with ClusterWatch(services, namespace_paths(services)) as watch:
        services.update_task_definition(
            FAMILY,
            web_definition(FAMILY, environment=[{"name": "V", "value": str(version)}])["spec"],
        )
        services.wait(
            lambda: services.steady(SERVICE, DESIRED, green),
            f"{green} steady",
            SERVICE,
            CONVERGE * 2,
        )
        # The roles swapped: the LoadBalancer that tested green serves it, the other drains.
        services.ecs.wait(
            lambda: (
                roles(services) == (test, production)
                and len(lbs.listed_endpoints(test)) == DESIRED
                and not lbs.listed_endpoints(production)
            ),
            "roles swapped",
            lambda: (roles(services), lbs.listed_endpoints(test), lbs.listed_endpoints(production)),
            CONVERGE,
        )
    assert_clean(watch, check)
    assert check.test_listed_at is not None and check.production_listed_at is not None
    assert check.test_listed_at < check.production_listed_at  # TEST_TRAFFIC_SHIFT first
    green_tasks = {t["metadata"]["name"] for t in services.live(SERVICE)}
    assert {revision_of(t) for t in services.live(SERVICE)} == {green}
    assert set(lbs.listed_endpoints(test)) == green_tasks


def test_blue_green_tests_through_the_alternate_then_swaps_roles(
    services: Services, lbs: LoadBalancers
) -> None:
    lbs.create(load_balancer())
    lbs.create(load_balancer(TEST_LB))
    services.create_body(web_definition(FAMILY))
    services.ecs.wait_accepted(FAMILY)
    entry = lb_entry() | {"advancedConfiguration": {"alternateTargetGroupArn": TEST_LB}}
    services.create(
        SERVICE,
        FAMILY,
        desiredCount=DESIRED,
        loadBalancers=[entry],
        deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0},
    )
    services.wait(
        lambda: services.steady(SERVICE, DESIRED, f"{FAMILY}:1"), "web:1 steady", SERVICE, CONVERGE
    )
    services.ecs.wait(
        lambda: len(lbs.listed_endpoints()) == DESIRED and roles(services) == (LB_NAME, TEST_LB),
        "web:1 in production, nothing tested",
        lambda: (lbs.listed_endpoints(), lbs.listed_endpoints(TEST_LB), roles(services)),
        CONVERGE,
    )
    assert not lbs.listed_endpoints(TEST_LB)
    deploy(services, lbs, 2, LB_NAME, TEST_LB)
    messages = services.messages(SERVICE)
    assert any(m.endswith("(TEST_TRAFFIC_SHIFT).") for m in messages), messages
    deploy(services, lbs, 3, TEST_LB, LB_NAME)  # the next deployment tests through web-lb
