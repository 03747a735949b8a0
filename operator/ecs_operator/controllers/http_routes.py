"""HTTPRoute weights for the LoadBalancer controller.

`core.http_routes` decides the weights of the HTTPRoutes that Services name for a production
LoadBalancer; this writes them to the routes and records, once, the problems of those that
cannot carry them (their production share then goes by the endpoint mix).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ecs_operator.controllers.cache import Key
from ecs_operator.controllers.context import OperatorContext
from ecs_operator.core import events as ecs_events
from ecs_operator.core import http_routes, load_balancing
from ecs_operator.kube.client import HTTP_ROUTES, KubeError
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.service import Service


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
        `key` and `body`) their weights: the Services whose routes carry them, and the problems of
        those that cannot."""
        routed, problems = set(), []
        for member in members:
            found = await self._weigh_service(key, member.service)
            if found == []:
                routed.add(member.service.metadata.name)
            problems += found or []
        await self._report(body, lb, problems)
        return frozenset(routed), problems

    async def _report(self, body: dict[str, Any], lb: LoadBalancer, problems: list[str]) -> None:
        """Record the `problems` as events on the LoadBalancer, unless its status reports them
        already (their events were recorded then)."""
        if problems and problems != http_routes.reported_problems(lb):
            for problem in problems:
                await self.events.record(
                    body, "Warning", ecs_events.REASON_ROUTE_NOT_WEIGHTED, problem
                )

    async def _weigh_service(self, key: Key, service: Service) -> list[str] | None:
        """Weigh the HTTPRoutes `service` names for the LoadBalancer `key`: the problems of
        those that cannot carry their weights; None when it names none."""
        wanted = http_routes.route_weights(
            service.spec.load_balancers or (), key[1], load_balancing.shifting_weight(service)
        )
        if not wanted:
            return None
        return [problem for w in wanted if (problem := await self._weigh_route(key, w)) is not None]

    async def _weigh_route(self, key: Key, wanted: http_routes.RouteWeights) -> str | None:
        """Write one HTTPRoute's weights; the problem when it cannot carry them."""
        namespace = key[0]
        try:
            route = await self.context.api.get(HTTP_ROUTES, namespace, wanted.route)
        except KubeError as error:
            if not error.refused:
                raise
            return ecs_events.route_refused(wanted.route, "read", error.code, error.message)
        if route is None:  # also when the Gateway API CRDs are not installed (404)
            return ecs_events.route_not_found(wanted.route)
        patch = http_routes.route_patch(route, wanted, namespace)
        if isinstance(patch, str):
            return patch
        if patch is not None:
            try:
                await self.context.api.patch(HTTP_ROUTES, namespace, wanted.route, patch)
            except KubeError as error:
                if error.refused:
                    return ecs_events.route_refused(
                        wanted.route, "weighted", error.code, error.message
                    )
                if not error.conflict:
                    raise
                # Changed since read: read and weigh it again at once.
                self.requeue(key, 0)
        return None
