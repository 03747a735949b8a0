"""HTTPRoute weights for exact production traffic and for test traffic (core.http_routes)."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ecs_operator.core import events, traffic_roles
from ecs_operator.core.http_routes import (
    ROUTE_WEIGHT_TOTAL,
    RouteWeights,
    green_weight,
    reported_problems,
    route_patch,
    route_weights,
)
from ecs_operator.core.service_fields import unsupported_service_fields
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.service import (
    ServiceLoadBalancer,
    ServiceSpec,
    ServiceStatus,
    route_name,
)

RULE_ARN = "arn:aws:elasticloadbalancing:r:1:listener-rule/app/a/b/c"


def _entry(
    rule: str | None, alternate: str | None = "web-test", test_rule: str | None = None
) -> ServiceLoadBalancer:
    body: dict[str, Any] = {
        "loadBalancerName": "web",
        "containerName": "app",
        "containerPort": 80,
    }
    if alternate is not None:
        advanced: dict[str, Any] = {"alternateTargetGroupArn": alternate}
        if rule is not None:
            advanced["productionListenerRule"] = rule
        if test_rule is not None:
            advanced["testListenerRule"] = test_rule
        body["advancedConfiguration"] = advanced
    return ServiceLoadBalancer.model_validate(body)


def _route(*rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "shop", "namespace": "ns", "resourceVersion": "7"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [{"matches": [{"path": {"value": "/"}}], "backendRefs": r} for r in rules],
        },
    }


WEIGHTS = RouteWeights("shop", "web", "web-test", 900, 100)


def apply(route: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``route`` after the merge ``patch`` of its rules."""
    return route | {"spec": route["spec"] | patch["spec"]}


def test_route_name_rule() -> None:
    assert route_name("httproute/shop") == "shop"
    assert route_name("HTTPRoute/shop") == "shop"
    assert route_name("shop") == "shop"
    assert route_name(RULE_ARN) is None
    assert route_name("httproute/Not_A_Name") is None
    assert route_name("shop\n") is None
    assert route_name(None) is None


@given(st.floats(min_value=0.0, max_value=100.0))
def test_weights_sum_and_never_exceed_the_share(share: float) -> None:
    (weights,) = route_weights([_entry("httproute/shop")], "web", share)
    assert weights.production_weight + weights.test_weight == ROUTE_WEIGHT_TOTAL
    assert weights.test_weight * 100 <= share * ROUTE_WEIGHT_TOTAL + 1e-6
    assert 0 <= weights.test_weight <= ROUTE_WEIGHT_TOTAL


def test_outside_a_deployment_production_gets_everything() -> None:
    (weights,) = route_weights([_entry("shop")], "web", None)
    assert (weights.production_weight, weights.test_weight) == (ROUTE_WEIGHT_TOTAL, 0)
    assert green_weight(0.1) == 1
    assert green_weight(10.0) == 100
    assert green_weight(100.0) == ROUTE_WEIGHT_TOTAL


def test_only_routed_entries_of_the_production_load_balancer() -> None:
    assert route_weights([_entry(None)], "web", 10.0) == []
    assert route_weights([_entry(RULE_ARN, test_rule=RULE_ARN)], "web", 10.0) == []
    assert route_weights([_entry("shop")], "web-test", 10.0) == []
    assert route_weights([_entry(None, test_rule="shop-test")], "web-test", 10.0) == []


def test_patch_sets_only_the_weights_of_the_two_services() -> None:
    other = {"name": "legacy", "port": 80, "weight": 5}
    route = _route(
        [{"name": "web", "port": 80}, other], [{"name": "static", "port": 8080, "weight": 1}]
    )
    patch = route_patch(route, WEIGHTS, "ns")
    assert isinstance(patch, dict)
    assert patch["metadata"] == {"resourceVersion": "7"}
    first, second = patch["spec"]["rules"]
    assert first["matches"] == [{"path": {"value": "/"}}]
    assert first["backendRefs"] == [
        {"name": "web", "port": 80, "weight": 900},
        other,
        {"name": "web-test", "weight": 100, "port": 80},
    ]
    assert second == route["spec"]["rules"][1]
    assert "parentRefs" not in patch["spec"]


def test_patch_is_none_when_the_weights_hold() -> None:
    route = _route(
        [
            {"name": "web", "port": 80, "weight": 900},
            {"name": "web-test", "port": 80, "weight": 100},
        ]
    )
    assert route_patch(route, WEIGHTS, "ns") is None


def test_refs_of_another_namespace_or_kind_are_not_the_services() -> None:
    route = _route([{"name": "web", "namespace": "elsewhere", "port": 80}])
    assert route_patch(route, WEIGHTS, "ns") == events.route_without_backends(
        "shop", "web", "web-test"
    )
    route = _route([{"name": "web", "kind": "ServiceImport", "group": "x.io", "port": 80}])
    assert isinstance(route_patch(route, WEIGHTS, "ns"), str)


def test_a_named_route_is_no_longer_unsupported() -> None:
    spec = ServiceSpec.model_validate(
        {
            "taskDefinition": "web:1",
            "desiredCount": 1,
            "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0},
            "loadBalancers": [
                _entry("httproute/shop").model_dump(by_alias=True, exclude_none=True)
            ],
        }
    )
    assert not [
        f for f in unsupported_service_fields("web", spec) if "productionListenerRule" in f.field
    ]


def test_a_test_route_is_honoured_and_a_test_rule_arn_is_unsupported() -> None:
    def unsupported(test_rule: str) -> list[str]:
        entry = _entry("httproute/shop", test_rule=test_rule)
        spec = ServiceSpec.model_validate(
            {
                "taskDefinition": "web:1",
                "desiredCount": 1,
                "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0},
                "loadBalancers": [entry.model_dump(by_alias=True, exclude_none=True)],
            }
        )
        return [f.field for f in unsupported_service_fields("web", spec)]

    assert unsupported("httproute/shop-test") == []
    assert unsupported("shop-test") == []
    assert unsupported(RULE_ARN) == ["spec.loadBalancers[0].advancedConfiguration.testListenerRule"]


@given(st.one_of(st.none(), st.floats(min_value=0.0, max_value=100.0)))
def test_the_test_route_sends_everything_to_the_test_load_balancer(share: float | None) -> None:
    """In and outside a deployment, whatever the production share: test traffic never
    reaches the production (blue) LoadBalancer."""
    weights = route_weights([_entry("shop", test_rule="httproute/shop-test")], "web", share)
    production, test = weights
    assert production.traffic == "production" and production.route == "shop"
    assert test == RouteWeights("shop-test", "web", "web-test", 0, ROUTE_WEIGHT_TOTAL, "test")
    # A test route alone (no production route) is weighed all the same.
    assert route_weights([_entry(None, test_rule="shop-test")], "web", share) == [test]


def test_after_the_swap_the_test_route_follows_the_new_test_load_balancer() -> None:
    swapped = ServiceStatus.model_validate(
        {
            "resolvedConfiguration": {
                "loadBalancers": [
                    {
                        "loadBalancerName": "web-test",
                        "alternateLoadBalancerName": "web",
                        "containerName": "app",
                        "containerPort": 80,
                    }
                ]
            }
        }
    )
    entries = traffic_roles.resolved_entries([_entry("shop", test_rule="shop-test")], swapped)
    assert route_weights(entries, "web", None) == []  # web is the test LoadBalancer now
    assert route_weights(entries, "web-test", None) == [
        RouteWeights("shop", "web-test", "web", ROUTE_WEIGHT_TOTAL, 0),
        RouteWeights("shop-test", "web-test", "web", 0, ROUTE_WEIGHT_TOTAL, "test"),
    ]


_REF_NAMES = st.sampled_from(["web", "web-test", "other"])
_REFS = st.lists(
    st.fixed_dictionaries(
        {"name": _REF_NAMES},
        optional={"port": st.sampled_from([80, 8080]), "weight": st.integers(0, 1000)},
    ),
    max_size=4,
)


@given(st.lists(_REFS, min_size=1, max_size=3))
def test_a_weighed_test_route_never_reaches_production(rules: list[list[dict[str, Any]]]) -> None:
    """Whatever the route's rules, once weighed: every rule that names either Service names
    the test one weighted 1000 and production (if at all) 0; the others are as written."""
    route = _route(*rules)
    test_route = RouteWeights("shop", "web", "web-test", 0, ROUTE_WEIGHT_TOTAL, "test")
    patch = route_patch(route, test_route, "ns")
    if not any(r["name"] in ("web", "web-test") for refs in rules for r in refs):
        assert patch == events.route_without_backends("shop", "web", "web-test", "test")
        return
    weighed = route["spec"]["rules"] if patch is None else patch["spec"]["rules"]
    assert isinstance(weighed, list)
    for before, after in zip(route["spec"]["rules"], weighed, strict=True):
        refs = after["backendRefs"]
        if not any(r["name"] in ("web", "web-test") for r in before["backendRefs"]):
            assert after == before
            continue
        assert all(r["weight"] == 0 for r in refs if r["name"] == "web")
        assert [r["weight"] for r in refs if r["name"] == "web-test"][:1] == [ROUTE_WEIGHT_TOTAL]
        assert all(r["weight"] == ROUTE_WEIGHT_TOTAL for r in refs if r["name"] == "web-test")
        assert [r for r in refs if r["name"] == "other"] == [
            r for r in before["backendRefs"] if r["name"] == "other"
        ]
    assert patch is None or route_patch(apply(route, patch), test_route, "ns") is None


def test_a_test_route_problem_says_what_happens_to_test_traffic() -> None:
    route = _route([{"name": "static", "port": 8080}])
    test_route = RouteWeights("shop-test", "web", "web-test", 0, ROUTE_WEIGHT_TOTAL, "test")
    problem = route_patch(route, test_route, "ns")
    assert problem == events.route_without_backends("shop-test", "web", "web-test", "test")
    assert isinstance(problem, str) and "test traffic" in problem
    assert "production" not in events.route_not_found("shop-test", "test")


def test_the_route_problems_already_reported_are_read_from_the_status_conditions() -> None:
    missing = events.route_not_found("shop")
    refused = events.route_refused("cart", "read", 403, "forbidden")

    def lb(message: str | None) -> LoadBalancer:
        status: dict[str, Any] = {}
        if message is not None:
            condition = {"type": "Degraded", "status": "True", "reason": "Problems"}
            status["conditions"] = [
                condition | {"lastTransitionTime": "2026-01-01T00:00:00Z", "message": message}
            ]
        body = {"metadata": {"name": "web"}, "spec": {"listeners": [{"port": 80}]}}
        return LoadBalancer.model_validate(body | {"status": status})

    assert reported_problems(lb(None)) == []
    assert reported_problems(lb(f"another problem; {missing}; {refused}")) == [missing, refused]
