"""HTTPRoute weights for the LoadBalancer controller.

`core.http_routes` decides the weights of the HTTPRoutes that Services name for a production
LoadBalancer; this writes them to the routes and records, once, the problems of those that
cannot carry them (a production share then goes by the endpoint mix).

A user's change to a weighted route is corrected within `ROUTE_RECHECK_SECONDS`: while a
LoadBalancer has routes to weigh, it is reconciled again after that long (one read of each
route; a write only when it strayed). Decision: a periodic re-check, not a watch of HTTPRoutes.
The Gateway API CRDs are optional and may be installed after the operator starts; controllers
start once every watched kind is listed, so a watch would have to tell an absent kind from a
failing one, and notice it appear, while the re-check needs nothing of that (the operator reads
routes with get and patch only) and heals a route created or a Gateway API installed later
within the same bound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from ecs_operator.controllers.cache import Key
from ecs_operator.controllers.context import OperatorContext
from ecs_operator.core import events as ecs_events
from ecs_operator.core import http_routes, load_balancing
from ecs_operator.kube.client import HTTP_ROUTES, KubeError
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.loadbalancer import LoadBalancer

ROUTE_RECHECK_SECONDS: Final = 30.0


class RouteWeigher:
    def __init__(
        self,
        context: OperatorContext,
        events: EventRecorder,
        requeue: Callable[[Key, float], None],
    ) -> None:
        self.context = context
        self.events = events
        self.requeue = requeue
        """Reconcile the LoadBalancer again after so many seconds."""

    async def weigh(
        self,
        key: Key,
        body: dict[str, Any],
        lb: LoadBalancer,
        members: Iterable[load_balancing.ServiceMembers],
    ) -> tuple[frozenset[str], list[str]]:
        """Give the HTTPRoutes that the `members` name for production LoadBalancer `lb` (its
        `key` and `body`) their weights: the Services whose production routes carry their
        split, and the problems of the routes that cannot carry their weights. While there are
        routes, look at them again after `ROUTE_RECHECK_SECONDS`."""
        routed, problems, named = set(), [], False
        for member in members:
            service = member.service
            wanted = http_routes.route_weights(
                service.spec.load_balancers or (), key[1], load_balancing.shifting_weight(service)
            )
            named = named or bool(wanted)
            weighed = [(w, await self._weigh_route(key, w)) for w in wanted]
            production = [problem for w, problem in weighed if w.traffic == "production"]
            if production and not any(production):
                routed.add(service.metadata.name)
            problems += [problem for _, problem in weighed if problem is not None]
        await self._report(body, lb, problems)
        if named:
            self.requeue(key, ROUTE_RECHECK_SECONDS)
        return frozenset(routed), problems

    async def _report(self, body: dict[str, Any], lb: LoadBalancer, problems: list[str]) -> None:
        """Record the `problems` as events on the LoadBalancer, unless its status reports them
        already (their events were recorded then)."""
        if problems and problems != http_routes.reported_problems(lb):
            for problem in problems:
                await self.events.record(
                    body, "Warning", ecs_events.REASON_ROUTE_NOT_WEIGHTED, problem
                )

    async def _weigh_route(self, key: Key, wanted: http_routes.RouteWeights) -> str | None:
        """Write one HTTPRoute's weights; the problem when it cannot carry them."""
        namespace = key[0]
        try:
            route = await self.context.api.get(HTTP_ROUTES, namespace, wanted.route)
        except KubeError as error:
            if not error.refused:
                raise
            return ecs_events.route_refused(
                wanted.route, "read", error.code, error.message, wanted.traffic
            )
        if route is None:  # also when the Gateway API CRDs are not installed (404)
            return ecs_events.route_not_found(wanted.route, wanted.traffic)
        patch = http_routes.route_patch(route, wanted, namespace)
        if isinstance(patch, str):
            return patch
        if patch is not None:
            try:
                await self.context.api.patch(HTTP_ROUTES, namespace, wanted.route, patch)
            except KubeError as error:
                if error.refused:
                    return ecs_events.route_refused(
                        wanted.route, "weighted", error.code, error.message, wanted.traffic
                    )
                if not error.conflict:
                    raise
                # Changed since read: read and weigh it again at once.
                self.requeue(key, 0)
        return None
