"""Exact traffic weights through Gateway API HTTPRoutes.

A Service's ``loadBalancers[]`` entry with an alternate (``core.traffic_roles``) may name an
HTTPRoute as its ``advancedConfiguration.productionListenerRule`` (ECS: the listener rule whose
forward action splits traffic between the two target groups) and another as its
``testListenerRule`` (ECS: the rule that forwards test traffic to the alternate target group):
``httproute/NAME`` or ``NAME``, an HTTPRoute in the Service's namespace
(``models.service.route_name``; the two must differ, refused at admission). A value that is
neither (an ELB listener rule ARN pasted from ECS) names no HTTPRoute and stays not honoured.

The production route carries the split: its rules whose ``backendRefs`` name the production or
the test LoadBalancer's Kubernetes Service get both, weighted ``ROUTE_WEIGHT_TOTAL - green`` and
``green``, green being the PRIMARY deployment's production share; outside a BLUE_GREEN, LINEAR
or CANARY deployment production gets everything. The production LoadBalancer then lists blue
tasks only while a share is set (no endpoint mix on top of the route's split), the test
LoadBalancer lists green. The test route's such rules give the test LoadBalancer's Service
everything and production's nothing, always: as in ECS, test traffic reaches the green target
group only (empty outside a deployment), never blue; after the two LoadBalancers swap roles it
follows the new test LoadBalancer. Nothing else in a route changes: only those rules'
``backendRefs`` entries that name one of the two Services (their ``weight``; a missing one is
added with the other's port); other rules, other backendRefs, matches, filters and parentRefs
are left as they are.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ecs_operator.core import events, names
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.service import ServiceLoadBalancer, route_name

# Per mille: canaryPercent goes down to 0.1 %, which a total of 100 cannot express.
ROUTE_WEIGHT_TOTAL: Final = 1000


@dataclass(frozen=True)
class RouteWeights:
    """The weights the HTTPRoute ``route`` gives the production and test LoadBalancers'
    Kubernetes Services; ``traffic``: the listener rule that names it."""

    route: str
    production: str
    test: str
    production_weight: int
    test_weight: int
    traffic: events.RouteTraffic = "production"


def green_weight(share: float | None) -> int:
    """The test (green) Service's weight for a production share in %; never more than the
    share (rounded down), 0 outside a weighted deployment."""
    if share is None:
        return 0
    return max(0, min(ROUTE_WEIGHT_TOTAL, math.floor(share * ROUTE_WEIGHT_TOTAL / 100 + 1e-9)))


def route_weights(
    entries: Sequence[ServiceLoadBalancer], lb_name: str, share: float | None
) -> list[RouteWeights]:
    """The weights of every HTTPRoute the (resolved) entries whose production LoadBalancer is
    ``lb_name`` name as a listener rule, for the PRIMARY's production ``share`` (None: no
    weighted deployment): the production route splits by it, the test route sends everything
    to the test LoadBalancer."""
    green = green_weight(share)
    found: list[RouteWeights] = []
    for entry in entries:
        test = names.alternate_load_balancer_of(entry)
        advanced = entry.advanced_configuration
        if test is None or advanced is None or names.load_balancer_of(entry) != lb_name:
            continue
        rules: tuple[tuple[events.RouteTraffic, str | None, int], ...] = (
            ("production", advanced.production_listener_rule, green),
            ("test", advanced.test_listener_rule, ROUTE_WEIGHT_TOTAL),
        )
        for traffic, rule, test_weight in rules:
            route = route_name(rule)
            if route is None:
                continue
            weights = RouteWeights(
                route, lb_name, test, ROUTE_WEIGHT_TOTAL - test_weight, test_weight, traffic
            )
            if weights not in found:
                found.append(weights)
    return found


def _names_service(ref: Mapping[str, Any], service: str, namespace: str) -> bool:
    return (
        ref.get("name") == service
        and ref.get("group", "") in ("", "core")
        and ref.get("kind", "Service") == "Service"
        and ref.get("namespace", namespace) == namespace
    )


def route_patch(
    route: Mapping[str, Any], weights: RouteWeights, namespace: str
) -> dict[str, Any] | str | None:
    """The JSON merge patch that gives ``route`` the ``weights`` (with its resourceVersion, so a
    route changed since it was read is a conflict); None when it already has them; a problem
    text when no rule's backendRefs names either Service."""
    rules = list((route.get("spec") or {}).get("rules") or ())
    wanted = {weights.production: weights.production_weight, weights.test: weights.test_weight}
    new_rules, touched = [], False
    for rule in rules:
        refs = list(rule.get("backendRefs") or ())
        named = {s: [r for r in refs if _names_service(r, s, namespace)] for s in wanted}
        if not any(named.values()):
            new_rules.append(rule)
            continue
        touched = True
        port = next((r.get("port") for found in named.values() for r in found), None)
        new_refs = [
            dict(ref, weight=wanted[s])
            if (s := next((s for s in wanted if _names_service(ref, s, namespace)), None))
            else ref
            for ref in refs
        ]
        for service, found in named.items():
            if not found:
                added = {"name": service, "weight": wanted[service]}
                new_refs.append(added if port is None else dict(added, port=port))
        new_rules.append(dict(rule, backendRefs=new_refs))
    if not touched:
        return events.route_without_backends(
            weights.route, weights.production, weights.test, weights.traffic
        )
    if new_rules == rules:
        return None
    version = (route.get("metadata") or {}).get("resourceVersion")
    return {"metadata": {"resourceVersion": version}, "spec": {"rules": new_rules}}


def reported_problems(lb: LoadBalancer) -> list[str]:
    """The HTTPRoute problems ``lb``'s status already reports (their event was recorded)."""
    conditions = (lb.status.conditions if lb.status else None) or ()
    return [
        m for c in conditions for m in (c.message or "").split("; ") if m.startswith("HTTPRoute ")
    ]
