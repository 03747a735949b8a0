"""The LoadBalancer controller at its surface (`support.fake_kube`)."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_operator.controllers.loadbalancers import LoadBalancerController
from ecs_operator.core.events import route_not_found, route_refused
from ecs_operator.core.labels import IN_USE_FINALIZER
from ecs_operator.kube.client import EVENTS, HTTP_ROUTES, LOAD_BALANCERS, SERVICES
from ecs_operator.kube.events import EventRecorder
from support.controllers import ECS, NAMESPACE, Operator, cluster, service

KEY = (NAMESPACE, "web-lb")


def load_balancer() -> dict[str, Any]:
    return {
        "apiVersion": ECS,
        "kind": "LoadBalancer",
        "metadata": {"name": "web-lb", "namespace": NAMESPACE},
        "spec": {"listeners": [{"port": 80}]},
    }


async def test_a_load_balancer_changed_since_it_was_read_is_planned_again_not_failed() -> None:
    """The in-use finalizer is a compare-and-swap: when someone changed the LoadBalancer since
    the watch showed it, the write is refused (409) and the reconcile ends quietly; the
    change's watch event plans it again, and then the finalizer is set."""
    kube = cluster()
    used = service("web", 1)
    used["spec"]["loadBalancers"] = [
        {"loadBalancerName": "web-lb", "containerName": "app", "containerPort": 80}
    ]
    kube.seed(SERVICES, used)
    kube.seed(LOAD_BALANCERS, load_balancer())
    operator = Operator(kube)
    controller = LoadBalancerController(operator.context, EventRecorder(kube), operator.metrics)
    changed = kube.stored(LOAD_BALANCERS, *KEY)
    changed["metadata"]["labels"] = {"team": "shop"}
    kube.put(LOAD_BALANCERS, changed)  # not yet seen by the watch

    await controller.reconcile(KEY)  # does not raise
    assert IN_USE_FINALIZER not in (
        kube.stored(LOAD_BALANCERS, *KEY)["metadata"].get("finalizers") or ()
    )

    operator.catch_up()
    await controller.reconcile(KEY)
    assert IN_USE_FINALIZER in kube.stored(LOAD_BALANCERS, *KEY)["metadata"]["finalizers"]


def routed_service(weight: float) -> dict[str, Any]:
    """A CANARY Service whose PRIMARY deployment has ``weight`` % of production traffic, with
    web-lb production, web-lb-test its test LoadBalancer and the HTTPRoute shop."""
    stamp = "2026-01-01T00:00:00Z"
    body = service("web", 2)
    body["spec"]["deploymentConfiguration"] = {
        "strategy": "CANARY",
        "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 1},
        "bakeTimeInMinutes": 0,
    }
    body["spec"]["loadBalancers"] = [
        {
            "loadBalancerName": "web-lb",
            "containerName": "app",
            "containerPort": 80,
            "advancedConfiguration": {
                "alternateTargetGroupArn": "web-lb-test",
                "productionListenerRule": "httproute/shop",
            },
        }
    ]
    green = {
        "id": "ecs-svc/0000000000000000002",
        "status": "PRIMARY",
        "taskDefinition": "web:2",
        "createdAt": stamp,
        "updatedAt": stamp,
        "rolloutState": "IN_PROGRESS",
        "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT",
        "productionTrafficWeight": weight,
    }
    body["status"] = {"deployments": [green]}
    return body


def http_route() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": NAMESPACE},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"name": "web-lb", "port": 80}],
                },
                {"backendRefs": [{"name": "other", "port": 81}]},
            ],
        },
    }


async def test_the_named_http_route_gets_the_production_share_as_weights() -> None:
    """Only the backendRefs of the rule naming the production LoadBalancer's Service change:
    production keeps 1000 - green, the test LoadBalancer's Service gets green (per mille)."""
    kube = cluster()
    kube.seed(SERVICES, routed_service(10.0))
    kube.seed(LOAD_BALANCERS, load_balancer())
    kube.seed(HTTP_ROUTES, http_route())
    operator = Operator(kube)
    controller = LoadBalancerController(operator.context, EventRecorder(kube), operator.metrics)

    await controller.reconcile(KEY)

    route = kube.stored(HTTP_ROUTES, NAMESPACE, "shop")
    first, second = route["spec"]["rules"]
    assert first["backendRefs"] == [
        {"name": "web-lb", "port": 80, "weight": 900},
        {"name": "web-lb-test", "weight": 100, "port": 80},
    ]
    assert first["matches"] == http_route()["spec"]["rules"][0]["matches"]
    assert second == http_route()["spec"]["rules"][1]
    assert route["spec"]["parentRefs"] == [{"name": "gateway"}]


async def test_a_missing_http_route_is_reported_not_raised() -> None:
    kube = cluster()
    kube.seed(SERVICES, routed_service(10.0))
    kube.seed(LOAD_BALANCERS, load_balancer())
    operator = Operator(kube)
    controller = LoadBalancerController(operator.context, EventRecorder(kube), operator.metrics)

    await controller.reconcile(KEY)

    problem = route_not_found("shop")
    status = kube.stored(LOAD_BALANCERS, *KEY)["status"]
    assert any(problem in (c.get("message") or "") for c in status["conditions"])
    assert [e for e in kube.all_stored(EVENTS) if e["message"] == problem]


@pytest.mark.parametrize(
    ("verb", "code", "action"),
    [("get", 403, "read"), ("patch", 403, "weighted"), ("patch", 422, "weighted")],
)
async def test_a_refused_http_route_is_reported_not_raised(
    verb: str, code: int, action: str
) -> None:
    """The operator's RBAC cut down, or a webhook or the route's validation refusing the
    weights: said on the LoadBalancer and in one event; production goes by the endpoint mix."""
    kube = cluster()
    kube.seed(SERVICES, routed_service(10.0))
    kube.seed(LOAD_BALANCERS, load_balancer())
    kube.seed(HTTP_ROUTES, http_route())
    kube.fail(verb, HTTP_ROUTES.plural, code, "Forbidden", "not allowed here", times=2)
    before = kube.stored(HTTP_ROUTES, NAMESPACE, "shop")
    operator = Operator(kube)
    controller = LoadBalancerController(operator.context, EventRecorder(kube), operator.metrics)

    await controller.reconcile(KEY)
    await controller.reconcile(KEY)

    problem = route_refused("shop", action, code, "not allowed here")
    status = kube.stored(LOAD_BALANCERS, *KEY)["status"]
    assert any(problem in (c.get("message") or "") for c in status["conditions"])
    assert len([e for e in kube.all_stored(EVENTS) if e["message"] == problem]) == 1
    assert kube.stored(HTTP_ROUTES, NAMESPACE, "shop") == before  # untouched
