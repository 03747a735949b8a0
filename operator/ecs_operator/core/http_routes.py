"""Exact production traffic weights through a Gateway API HTTPRoute.

A Service's ``loadBalancers[]`` entry with an alternate (``core.traffic_roles``) may name an
HTTPRoute as its ``advancedConfiguration.productionListenerRule`` (ECS: the listener rule whose
forward action splits traffic between the two target groups): ``httproute/NAME`` or ``NAME``,
an HTTPRoute in the Service's namespace. A value that is neither (an ELB listener rule ARN
pasted from ECS) names no HTTPRoute and stays not honoured.

The route carries the split: its rules whose ``backendRefs`` name the production or the test
LoadBalancer's Kubernetes Service get both, weighted ``ROUTE_WEIGHT_TOTAL - green`` and
``green``, green being the PRIMARY deployment's production share; outside a BLUE_GREEN, LINEAR
or CANARY deployment production gets everything. The production LoadBalancer then lists blue
tasks only while a share is set (no endpoint mix on top of the route's split), the test
LoadBalancer lists green. Nothing else in the route changes: only those rules' ``backendRefs``
entries that name one of the two Services (their ``weight``; a missing one is added with the
other's port); other rules, other backendRefs, matches, filters and parentRefs are left as
they are.
"""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ecs_operator.core import events, names
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.service import ServiceLoadBalancer

ROUTE_PREFIX: Final = "httproute/"
# Per mille: canaryPercent goes down to 0.1 %, which a total of 100 cannot express.
ROUTE_WEIGHT_TOTAL: Final = 1000
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def route_name(rule: str | None) -> str | None:
    """The HTTPRoute a ``productionListenerRule`` names; None when it names none."""
    if not rule:
        return None
    name = rule[len(ROUTE_PREFIX) :] if rule.lower().startswith(ROUTE_PREFIX) else rule
    return name if _NAME.match(name) else None


@dataclass(frozen=True)
class RouteWeights:
    """The weights the HTTPRoute ``route`` gives the production and test LoadBalancers'
    Kubernetes Services."""

    route: str
    production: str
    test: str
    production_weight: int
    test_weight: int


def green_weight(share: float | None) -> int:
    """The test (green) Service's weight for a production share in %; never more than the
    share (rounded down), 0 outside a weighted deployment."""
    if share is None:
        return 0
    return max(0, min(ROUTE_WEIGHT_TOTAL, math.floor(share * ROUTE_WEIGHT_TOTAL / 100 + 1e-9)))


def routed_entries(
    entries: Sequence[ServiceLoadBalancer], lb_name: str
) -> list[tuple[str, str, str]]:
    """(route, production, test) of each (resolved) entry whose production LoadBalancer is
    ``lb_name``, with an alternate and an HTTPRoute as its productionListenerRule."""
    found = []
    for entry in entries:
        test = names.alternate_load_balancer_of(entry)
        advanced = entry.advanced_configuration
        route = route_name(advanced.production_listener_rule if advanced else None)
        if test is None or route is None or names.load_balancer_of(entry) != lb_name:
            continue
        if (route, lb_name, test) not in found:
            found.append((route, lb_name, test))
    return found


def route_weights(
    entries: Sequence[ServiceLoadBalancer], lb_name: str, share: float | None
) -> list[RouteWeights]:
    """The weights of every HTTPRoute the entries name for production LoadBalancer
    ``lb_name``, for the PRIMARY's production ``share`` (None: no weighted deployment)."""
    green = green_weight(share)
    return [
        RouteWeights(route, production, test, ROUTE_WEIGHT_TOTAL - green, green)
        for route, production, test in routed_entries(entries, lb_name)
    ]


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
        return events.route_without_backends(weights.route, weights.production, weights.test)
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
