"""Exact weights through Gateway API HTTPRoutes (issue #11): a CANARY deployment with an
alternate LoadBalancer and `productionListenerRule: httproute/shop`. Every committed version of
the route is read from a watch: its weights sum to 1000 at each step, the test LoadBalancer's
Service gets 0, then the canary's 10 %, then everything, and after the roles swap the new
production LoadBalancer has it all. Rules and refs of other Services stay as the user wrote
them. A `testListenerRule: httproute/shop-test` sends everything to the test LoadBalancer, in
and outside the deployment, and follows it when the roles swap; a user's change to it is
undone by the periodic re-check; the same route as both rules is refused at admission."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_operator.controllers.http_routes import ROUTE_RECHECK_SECONDS
from support.ecs_api import MERGE_PATCH, Ecs
from support.load_balancers import (
    LB_NAME,
    ClusterWatch,
    LoadBalancers,
    deploy_web_revision,
    lb_entry,
    load_balancer,
    web_definition,
)
from support.services import Services, service

FAMILY = "web"
SERVICE = "web"
TEST_LB = "web-lb-test"
ROUTE = "shop"
TEST_ROUTE = "shop-test"
DESIRED = 2
CONVERGE = 60
GATEWAY = "gateway.networking.k8s.io"

Body = dict[str, Any]

OTHER_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
    "backendRefs": [{"name": "static", "port": 8080}],
}


def http_route(name: str = ROUTE) -> Body:
    return {
        "apiVersion": f"{GATEWAY}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"name": LB_NAME, "port": 80}],
                },
                OTHER_RULE,
            ],
        },
    }


@pytest.fixture
def services(ecs: Ecs, gateway_api: None) -> Services:
    return Services(ecs)


def read_route(ecs: Ecs, name: str = ROUTE) -> Body:
    response = ecs.http.get(ecs.path("httproutes", name, group=GATEWAY, version="v1"))
    assert response.ok, response.text
    found: Body = response.json()
    return found


def weights(route: Body) -> tuple[int | None, int | None]:
    """(web-lb, web-lb-test) weights of the route's first rule."""
    refs = {r["name"]: r.get("weight") for r in route["spec"]["rules"][0]["backendRefs"]}
    return refs.get(LB_NAME), refs.get(TEST_LB)


def test_canary_sets_the_http_route_weights_at_each_stage(services: Services) -> None:
    ecs = services.ecs
    lbs = LoadBalancers(services)
    lbs.create(load_balancer())
    lbs.create(load_balancer(TEST_LB))
    route_path = ecs.path("httproutes", group=GATEWAY, version="v1")
    created = ecs.http.post(route_path, json=http_route())
    assert created.status_code == 201, created.text
    services.create_body(web_definition(FAMILY))
    ecs.wait_accepted(FAMILY)
    entry = lb_entry() | {
        "advancedConfiguration": {
            "alternateTargetGroupArn": TEST_LB,
            "productionListenerRule": f"httproute/{ROUTE}",
        }
    }
    services.create(
        SERVICE,
        FAMILY,
        desiredCount=DESIRED,
        loadBalancers=[entry],
        deploymentConfiguration={
            "strategy": "CANARY",
            "canaryConfiguration": {"canaryPercent": 10, "canaryBakeTimeInMinutes": 0},
        },
    )
    services.wait(
        lambda: services.steady(SERVICE, DESIRED, f"{FAMILY}:1"), "web:1 steady", SERVICE, CONVERGE
    )
    ecs.wait(
        lambda: weights(read_route(ecs)) == (1000, 0),
        "production has all the route's weight",
        lambda: read_route(ecs),
        CONVERGE,
    )
    unsupported = services.status(SERVICE).get("unsupported") or []
    assert not [f for f in unsupported if "productionListenerRule" in f["field"]], unsupported
    with ClusterWatch(services, {"httproutes": route_path}) as watch:
        deploy_web_revision(services, FAMILY, "2")
        services.wait_steady(SERVICE, DESIRED, f"{FAMILY}:2", CONVERGE * 2)
        ecs.wait(
            lambda: weights(read_route(ecs)) == (0, 1000),
            "the swapped production (web-lb-test) has all the route's weight",
            lambda: read_route(ecs),
            CONVERGE,
        )
    seen = [weights(e.object) for e in watch.events if e.type != "DELETED"]
    steps = [w for i, w in enumerate(seen) if i == 0 or w != seen[i - 1]]
    assert all(p is not None and t is not None and p + t == 1000 for p, t in steps[1:]), steps
    # 10 % of production to green, then all of it; the swap keeps green on web-lb-test.
    assert (900, 100) in steps and (0, 1000) in steps, steps
    assert steps.index((900, 100)) < steps.index((0, 1000)), steps
    route = read_route(ecs)
    # The API server's defaults (group, kind, weight 1) are all that differs.
    assert route["spec"]["rules"][1]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "static", "port": 8080, "weight": 1}
    ]
    assert [p["name"] for p in route["spec"]["parentRefs"]] == ["gateway"]


def test_the_test_route_sends_test_traffic_to_the_test_load_balancer_only(
    services: Services,
) -> None:
    ecs = services.ecs
    lbs = LoadBalancers(services)
    lbs.create(load_balancer())
    lbs.create(load_balancer(TEST_LB))
    route_path = ecs.path("httproutes", group=GATEWAY, version="v1")
    for name in (ROUTE, TEST_ROUTE):
        created = ecs.http.post(route_path, json=http_route(name))
        assert created.status_code == 201, created.text
    services.create_body(web_definition(FAMILY))
    ecs.wait_accepted(FAMILY)
    advanced = {"alternateTargetGroupArn": TEST_LB, "productionListenerRule": f"httproute/{ROUTE}"}
    strategy = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0}

    same = lb_entry() | {"advancedConfiguration": advanced | {"testListenerRule": ROUTE}}
    refused = ecs.http.post(
        ecs.path("services"),
        json=service(
            SERVICE,
            FAMILY,
            desiredCount=DESIRED,
            loadBalancers=[same],
            deploymentConfiguration=strategy,
        ),
    )
    assert refused.status_code == 422, refused.text
    assert "advancedConfiguration.testListenerRule" in refused.text, refused.text
    assert "distinct production and test listener rules" in refused.text, refused.text

    entry = lb_entry() | {
        "advancedConfiguration": advanced | {"testListenerRule": f"httproute/{TEST_ROUTE}"}
    }
    services.create(
        SERVICE,
        FAMILY,
        desiredCount=DESIRED,
        loadBalancers=[entry],
        deploymentConfiguration=strategy,
    )
    services.wait(
        lambda: services.steady(SERVICE, DESIRED, f"{FAMILY}:1"), "web:1 steady", SERVICE, CONVERGE
    )
    ecs.wait(
        lambda: weights(read_route(ecs, TEST_ROUTE)) == (0, 1000),
        "the test route sends everything to web-lb-test",
        lambda: read_route(ecs, TEST_ROUTE),
        CONVERGE,
    )
    unsupported = services.status(SERVICE).get("unsupported") or []
    assert not [f for f in unsupported if "ListenerRule" in f["field"]], unsupported

    # Routes are not watched: a user's change is undone by the LoadBalancer's periodic re-check
    # (or by any reconcile before it).
    stray = http_route(TEST_ROUTE)["spec"]["rules"]
    stray[0]["backendRefs"] = [
        {"name": LB_NAME, "port": 80, "weight": 500},
        {"name": TEST_LB, "port": 80, "weight": 500},
    ]
    patched = ecs.http.patch(
        ecs.path("httproutes", TEST_ROUTE, group=GATEWAY, version="v1"),
        json={"spec": {"rules": stray}},
        headers=MERGE_PATCH,
    )
    assert patched.status_code == 200, patched.text
    assert weights(patched.json()) == (500, 500)
    ecs.wait(
        lambda: weights(read_route(ecs, TEST_ROUTE)) == (0, 1000),
        "the periodic re-check restores the test route",
        lambda: read_route(ecs, TEST_ROUTE),
        ROUTE_RECHECK_SECONDS + CONVERGE,
    )

    with ClusterWatch(services, {"httproutes": route_path}) as watch:
        deploy_web_revision(services, FAMILY, "2")
        services.wait_steady(SERVICE, DESIRED, f"{FAMILY}:2", CONVERGE * 2)
        ecs.wait(
            lambda: weights(read_route(ecs, TEST_ROUTE)) == (1000, 0),
            "after the swap the test route sends everything to web-lb, the new test LoadBalancer",
            lambda: read_route(ecs, TEST_ROUTE),
            CONVERGE,
        )
        ecs.wait(
            lambda: weights(read_route(ecs)) == (0, 1000),
            "the swapped production (web-lb-test) has all the production route's weight",
            lambda: read_route(ecs),
            CONVERGE,
        )
    seen = [weights(watch.initial["httproutes"][TEST_ROUTE])] + [
        weights(e.object)
        for e in watch.events
        if e.type != "DELETED" and e.object["metadata"]["name"] == TEST_ROUTE
    ]
    steps = [w for i, w in enumerate(seen) if i == 0 or w != seen[i - 1]]
    # Test traffic went to the new tasks' LoadBalancer throughout, never to blue's, then to the
    # next test LoadBalancer once the two swapped.
    assert steps == [(0, 1000), (1000, 0)], steps
    route = read_route(ecs, TEST_ROUTE)
    assert route["spec"]["rules"][1]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "static", "port": 8080, "weight": 1}
    ]
