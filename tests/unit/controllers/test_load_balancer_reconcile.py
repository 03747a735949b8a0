"""The LoadBalancer controller at its surface (`support.fake_kube`)."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_operator.controllers.cache import Key
from ecs_operator.controllers.http_routes import ROUTE_RECHECK_SECONDS, RouteWeigher
from ecs_operator.core.events import route_not_found, route_refused
from ecs_operator.core.labels import IN_USE_FINALIZER
from ecs_operator.core.load_balancing import ServiceMembers
from ecs_operator.kube.client import EVENTS, HTTP_ROUTES, LOAD_BALANCERS, SERVICES
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.service import Service
from support.controllers import ECS, NAMESPACE, Operator, cluster, service
from support.fake_kube import FakeKube

KEY = (NAMESPACE, "web-lb")


def load_balancer() -> dict[str, Any]:
    return {
        "apiVersion": ECS,
        "kind": "LoadBalancer",
        "metadata": {"name": "web-lb", "namespace": NAMESPACE},
        "spec": {"listeners": [{"port": 80}]},
    }


def seed_with_test_route(kube: FakeKube, body: dict[str, Any]) -> None:
    """The Service `body`, the LoadBalancer web-lb, and the production and test HTTPRoutes."""
    kube.seed(SERVICES, body)
    kube.seed(LOAD_BALANCERS, load_balancer())
    kube.seed(HTTP_ROUTES, http_route())
    kube.seed(HTTP_ROUTES, http_route("shop-test"))


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
    controller = operator.load_balancers
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


def routed_service(
    weight: float, production_rule: str | None = "httproute/shop", test_rule: str | None = None
) -> dict[str, Any]:
    """A CANARY Service whose PRIMARY deployment has ``weight`` % of production traffic, with
    web-lb production, web-lb-test its test LoadBalancer and the HTTPRoute shop (and
    ``test_rule`` as its testListenerRule)."""
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
                "productionListenerRule": production_rule,
                "testListenerRule": test_rule,
            },
        }
    ]
    advanced = body["spec"]["loadBalancers"][0]["advancedConfiguration"]
    body["spec"]["loadBalancers"][0]["advancedConfiguration"] = {
        field: value for field, value in advanced.items() if value is not None
    }
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


def http_route(name: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NAMESPACE},
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
    controller = Operator(kube).load_balancers

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
    controller = Operator(kube).load_balancers

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
    controller = Operator(kube).load_balancers

    await controller.reconcile(KEY)
    await controller.reconcile(KEY)

    problem = route_refused("shop", action, code, "not allowed here")
    status = kube.stored(LOAD_BALANCERS, *KEY)["status"]
    assert any(problem in (c.get("message") or "") for c in status["conditions"])
    assert len([e for e in kube.all_stored(EVENTS) if e["message"] == problem]) == 1
    assert kube.stored(HTTP_ROUTES, NAMESPACE, "shop") == before  # untouched


def refs(name: str, kube: Any) -> dict[str, int | None]:
    """The weights of the first rule's backendRefs of the stored HTTPRoute ``name``."""
    rule = kube.stored(HTTP_ROUTES, NAMESPACE, name)["spec"]["rules"][0]
    return {r["name"]: r.get("weight") for r in rule["backendRefs"]}


async def test_the_test_route_sends_everything_to_the_test_load_balancer() -> None:
    """During the shift the production route splits, the test route gives the test
    LoadBalancer's Service 1000 and production's 0 (the ref added with the other's port);
    its other rule stays as written. Converged, a second reconcile writes nothing."""
    kube = cluster()
    seed_with_test_route(kube, routed_service(10.0, test_rule="httproute/shop-test"))
    operator = Operator(kube)
    controller = operator.load_balancers

    await controller.reconcile(KEY)

    assert refs("shop", kube) == {"web-lb": 900, "web-lb-test": 100}
    assert refs("shop-test", kube) == {"web-lb": 0, "web-lb-test": 1000}
    test_route = kube.stored(HTTP_ROUTES, NAMESPACE, "shop-test")
    assert test_route["spec"]["rules"][0]["backendRefs"][1] == {
        "name": "web-lb-test",
        "weight": 1000,
        "port": 80,
    }
    assert test_route["spec"]["rules"][1] == http_route()["spec"]["rules"][1]
    operator.catch_up()
    written = len(kube.written())
    await controller.reconcile(KEY)
    assert kube.written()[written:] == []


async def test_after_the_swap_the_test_route_follows_the_new_test_load_balancer() -> None:
    """Once the deployment completed and web-lb-test carries production, the test route sends
    everything to web-lb, now the test LoadBalancer; only the production LoadBalancer's
    reconcile weighs the routes."""
    kube = cluster()
    body = routed_service(100.0, test_rule="shop-test")
    body["status"]["deployments"][0] |= {"rolloutState": "COMPLETED", "lifecycleStage": None}
    body["status"]["resolvedConfiguration"] = {
        "loadBalancers": [
            {
                "loadBalancerName": "web-lb-test",
                "alternateLoadBalancerName": "web-lb",
                "containerName": "app",
                "containerPort": 80,
            }
        ]
    }
    seed_with_test_route(kube, body)
    test_lb = load_balancer()
    test_lb["metadata"]["name"] = "web-lb-test"
    kube.seed(LOAD_BALANCERS, test_lb)
    controller = Operator(kube).load_balancers

    await controller.reconcile(KEY)  # web-lb: the test LoadBalancer now
    assert refs("shop-test", kube) == {"web-lb": None}
    await controller.reconcile((NAMESPACE, "web-lb-test"))

    assert refs("shop", kube) == {"web-lb": 0, "web-lb-test": 1000}
    assert refs("shop-test", kube) == {"web-lb": 1000, "web-lb-test": 0}


async def test_a_user_change_to_a_route_is_corrected_at_the_periodic_recheck() -> None:
    """Routes are not watched: while the LoadBalancer has routes it is reconciled again after
    ROUTE_RECHECK_SECONDS, which restores the weights a user changed."""
    kube = cluster()
    seed_with_test_route(kube, routed_service(10.0, test_rule="shop-test"))
    controller = Operator(kube).load_balancers
    await controller.reconcile(KEY)
    assert KEY in controller.queue._timers  # looked at again
    changed = kube.stored(HTTP_ROUTES, NAMESPACE, "shop-test")
    changed["spec"]["rules"][0]["backendRefs"][0]["weight"] = 500
    kube.put(HTTP_ROUTES, changed)

    await controller.reconcile(KEY)  # as the timer does

    assert refs("shop-test", kube) == {"web-lb": 0, "web-lb-test": 1000}


class RecordedRequeues:
    def __init__(self) -> None:
        self.calls: list[tuple[Key, float]] = []

    def __call__(self, key: Key, delay: float) -> None:
        self.calls.append((key, delay))


def members(body: dict[str, Any]) -> list[ServiceMembers]:
    return [ServiceMembers(Service.model_validate(body), [], {})]


@pytest.mark.parametrize(
    ("production_rule", "routes", "routed"),
    [
        # The test route alone carries no production split: the endpoint mix does.
        (None, ["shop-test"], False),
        # A test route that cannot be weighed leaves the production split to its route.
        ("httproute/shop", ["shop"], True),
    ],
)
async def test_only_the_production_route_carries_the_production_split(
    production_rule: str | None, routes: list[str], routed: bool
) -> None:
    kube = cluster()
    body = routed_service(10.0, production_rule, test_rule="shop-test")
    lb = load_balancer()
    kube.seed(LOAD_BALANCERS, lb)
    for name in routes:
        kube.seed(HTTP_ROUTES, http_route(name))
    operator = Operator(kube)
    requeues = RecordedRequeues()
    weigher = RouteWeigher(operator.context, EventRecorder(kube), requeues)

    found, problems = await weigher.weigh(KEY, lb, LoadBalancer.model_validate(lb), members(body))

    assert found == (frozenset({"web"}) if routed else frozenset())
    missing = route_not_found("shop-test", "test")
    assert problems == ([] if "shop-test" in routes else [missing])
    assert "test traffic" in missing and "production traffic" not in missing
    assert requeues.calls == [(KEY, ROUTE_RECHECK_SECONDS)]
    assert [e["message"] for e in kube.all_stored(EVENTS)] == problems


async def test_a_load_balancer_without_routes_is_not_rechecked() -> None:
    kube = cluster()
    lb = load_balancer()
    kube.seed(LOAD_BALANCERS, lb)
    operator = Operator(kube)
    requeues = RecordedRequeues()
    weigher = RouteWeigher(operator.context, EventRecorder(kube), requeues)

    for body in (routed_service(10.0, production_rule=None), service("web", 1)):
        found = await weigher.weigh(KEY, lb, LoadBalancer.model_validate(lb), members(body))
        assert found == (frozenset(), [])
    assert requeues.calls == []
