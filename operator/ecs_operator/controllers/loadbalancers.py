"""LoadBalancers: register service tasks as targets and keep a real data path in step.

`core.load_balancing` decides the targets (initial → healthy/unhealthy → draining → gone) from the
Services that name the LoadBalancer, their Tasks and Pods; this controller applies it to the
Kubernetes Service (no selector) and EndpointSlices it owns, writes status, and records the ECS
events on the Services.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import ValidationError

from ecs_operator.controllers.cache import Key, finalizer_write_event, owner_name
from ecs_operator.controllers.context import SERVICE_INDEX, OperatorContext
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.triggers import Change, Trigger, every_object, its_namespace, itself
from ecs_operator.controllers.workqueue import WorkQueue
from ecs_operator.core import events as ecs_events
from ecs_operator.core import http_routes, labels, load_balancing
from ecs_operator.core.names import load_balancer_of
from ecs_operator.core.ownership import owned_by
from ecs_operator.core.traffic_roles import alternates
from ecs_operator.kube.client import (
    ENDPOINT_SLICES,
    HTTP_ROUTES,
    KUBERNETES_SERVICES,
    LOAD_BALANCERS,
    PODS,
    SERVICES,
    TASKS,
    KubeError,
    Resource,
)
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.service import Service
from ecs_operator.models.task import Task

logger = logging.getLogger(__name__)

IN_USE_FINALIZER = labels.IN_USE_FINALIZER
IN_USE_RECHECK_SECONDS = 30.0
NAME_CLASH_RECHECK_SECONDS = 10.0


_in_namespace = every_object("load_balancers", its_namespace)


def _service_task_moved(change: Change, context: OperatorContext) -> Iterable[Key]:
    """A service task's state, or its Pod's readiness (target health), moved."""
    if owner_name(change.body, "Service") is None or labels.is_hook_task(change.body):
        return ()
    return _in_namespace(change, context)


def _service_pod_moved(change: Change, context: OperatorContext) -> Iterable[Key]:
    if not (change.body["metadata"].get("labels") or {}).get(labels.SERVICE_LABEL):
        return ()
    return _in_namespace(change, context)


def _its_endpoint_slice(change: Change, _context: OperatorContext) -> Iterable[Key]:
    name = (change.body["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
    return [(change.namespace, name)] if name else []


class LoadBalancerController:
    TRIGGERS: ClassVar[tuple[Trigger, ...]] = (
        Trigger(LOAD_BALANCERS, itself),
        # Its Kubernetes Service is named after it: restore what changed.
        Trigger(KUBERNETES_SERVICES, itself),
        Trigger(ENDPOINT_SLICES, _its_endpoint_slice),
        Trigger(SERVICES, _in_namespace),
        Trigger(TASKS, _service_task_moved),
        Trigger(PODS, _service_pod_moved),
    )

    def __init__(
        self, context: OperatorContext, events: EventRecorder, metrics: OperatorMetrics
    ) -> None:
        self.context = context
        self.events = events
        self.queue: WorkQueue[Key] = WorkQueue(
            "loadbalancers", self.reconcile, workers=2, observe=metrics.observe_reconcile
        )

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def start(self) -> None:
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()

    async def reconcile(self, key: Key) -> None:
        namespace, name = key
        body = self.context.load_balancers.get(key)
        if body is None:
            return  # deleted: its Kubernetes Service and EndpointSlices are garbage-collected
        try:
            lb = self.context.load_balancers.parsed(body, LoadBalancer)
        except ValidationError as error:
            logger.warning("LoadBalancer %s/%s cannot be read: %s", namespace, name, error)
            return
        now = datetime.now(UTC)
        members, users = self._members(namespace, lb)
        departed = self._departed(namespace, lb)
        problems = []
        deleting = bool(body["metadata"].get("deletionTimestamp"))
        if deleting and users:
            problems.append(ecs_events.load_balancer_in_use(name, sorted(users)))
            await self.events.record(
                body, "Warning", ecs_events.REASON_LOAD_BALANCER_IN_USE, problems[-1]
            )
            # Looked at again even if no watch event comes: the Services' deletion may be seen
            # only by the Service controller (a watch gone with their CRD).
            self.queue.add_after(key, IN_USE_RECHECK_SECONDS)
        updated = await self._mark_in_use(body, bool(users))
        if updated is None:
            return
        if updated is not body:
            body, lb = updated, self.context.load_balancers.parsed(updated, LoadBalancer)
        # Ownership before action: under another's Service of its name it registers and
        # publishes nothing, and says so.
        refusal = await self._sync_service(namespace, lb)
        routed, route_problems = await self._sync_routes(namespace, lb, members)
        if route_problems and route_problems != self._reported_route_problems(lb):
            for problem in route_problems:
                await self.events.record(
                    body, "Warning", ecs_events.REASON_ROUTE_NOT_WEIGHTED, problem
                )
        problems += route_problems
        plan = load_balancing.desired_targets(
            lb, [] if refusal else members, now, [] if refusal else departed, routed
        )
        problems += await self._sync_slices(namespace, lb, plan.targets)
        update = load_balancing.lb_status(
            lb, plan.targets, sorted(users), problems, now, refusal, plan.weights
        )
        if refusal is not None and refusal != load_balancing.reported_refusal(lb):
            await self.events.record(body, "Warning", ecs_events.REASON_NAME_CONFLICT, refusal)
        if update.changed:
            # Its response wakes the tasks whose targets moved, and the Services.
            written = await self.context.api.write_status(
                LOAD_BALANCERS,
                body,
                update.status.model_dump(mode="json", by_alias=True, exclude_none=True),
            )
            if written is None:
                return
        for event in plan.events:
            # A deleted Service's events (its targets draining) go to its last known state:
            # `kubectl get events` shows them for as long as events are kept.
            service_key = (namespace, event.service)
            service = self.context.services.get(service_key) or self.context.services.tombstone(
                service_key
            )
            if service is not None:
                await self.events.record(
                    service, *ecs_events.service_event_kind(event.message), event.message
                )
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)
        if refusal is not None:
            # Another's Service is not watched: look again for it to be gone.
            self.queue.add_after(key, NAME_CLASH_RECHECK_SECONDS)

    async def _mark_in_use(self, body: dict[str, Any], used: bool) -> dict[str, Any] | None:
        """While a Service names it, a LoadBalancer's deletion waits (reported on both), so no
        Service is left registering into nothing; an unused one goes at once. The body after
        setting or clearing the in-use finalizer; None when that deleted it (its Service and
        EndpointSlices are garbage-collected), it is gone, or it changed since it was read."""
        if used == (IN_USE_FINALIZER in (body["metadata"].get("finalizers") or ())):
            return body
        try:
            updated = await self.context.api.set_finalizer(
                LOAD_BALANCERS, body, IN_USE_FINALIZER, present=used
            )
        except KubeError as error:
            if not error.conflict:
                raise
            return None  # changed meanwhile: that change's watch event plans it again
        if updated is None or finalizer_write_event(updated) == "DELETED":
            return None
        return updated

    def _members(
        self, namespace: str, lb: LoadBalancer
    ) -> tuple[list[load_balancing.ServiceMembers], set[str]]:
        """Every Service naming the LoadBalancer, or still holding targets in it."""
        holding = {t.service for t in (lb.status.targets or ())} if lb.status else set()
        members, users = [], set()
        for body in self.context.services.in_namespace(namespace):
            try:
                service = self.context.services.parsed(body, Service)
            except ValidationError:
                continue
            # After a rollback, the load balancers of the revision it restored; each task
            # those of its own deployment's revision.
            reader = self.context.service_revisions
            service = service.model_copy(update={"spec": reader.running_spec(service)})
            by_deployment = reader.load_balancers_by_deployment(service)
            every_entry = [
                e
                for entries in (service.spec.load_balancers, *by_deployment.values())
                for e in entries or ()
            ]
            names = {load_balancer_of(e) for e in every_entry} | alternates(every_entry)
            if lb.metadata.name in names:
                users.add(service.metadata.name)
            elif service.metadata.name not in holding:
                continue
            tasks, pods = self._with_pods(namespace, self.context.service_tasks(body))
            members.append(load_balancing.ServiceMembers(service, tasks, pods, by_deployment))
        return members, users

    async def _sync_routes(
        self, namespace: str, lb: LoadBalancer, members: Iterable[load_balancing.ServiceMembers]
    ) -> tuple[frozenset[str], list[str]]:
        """Give the HTTPRoutes that Services name for this production LoadBalancer their
        weights (``core.http_routes``): the Services whose routes carry them, and the problems
        of those that cannot (their production share then goes by the endpoint mix)."""
        routed, problems = set(), []
        for member in members:
            service = member.service
            weights = http_routes.route_weights(
                service.spec.load_balancers or (),
                lb.metadata.name,
                load_balancing.shifting_weight(service),
            )
            carried = bool(weights)
            for wanted in weights:
                problem = await self._weigh_route((namespace, lb.metadata.name), wanted)
                if problem is not None:
                    problems.append(problem)
                    carried = False
            if carried:
                routed.add(service.metadata.name)
        return frozenset(routed), problems

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
                self.queue.add_after(key, 0)
        return None

    @staticmethod
    def _reported_route_problems(lb: LoadBalancer) -> list[str]:
        """The route problems the status already reports (their event was recorded)."""
        conditions = (lb.status.conditions if lb.status else None) or ()
        return [
            m
            for c in conditions
            for m in (c.message or "").split("; ")
            if m.startswith("HTTPRoute ")
        ]

    def _departed(self, namespace: str, lb: LoadBalancer) -> list[load_balancing.DepartedTasks]:
        """The tasks of each Service gone while it still has targets in the LoadBalancer:
        found by their ownerReference's name (the Service's uid is gone with it)."""
        holding = {t.service for t in (lb.status.targets or ())} if lb.status else set()
        departed = []
        for service in sorted(holding):
            if self.context.services.get((namespace, service)) is None:
                bodies = self.context.tasks.indexed(SERVICE_INDEX, f"{namespace}/{service}")
                tasks, pods = self._with_pods(namespace, bodies)
                departed.append(load_balancing.DepartedTasks(service, tasks, pods))
        return departed

    def _with_pods(
        self, namespace: str, bodies: Iterable[dict[str, Any]]
    ) -> tuple[list[Task], dict[str, Mapping[str, Any]]]:
        """The Tasks and their Pods: only a Pod the Task owns (a Pod that merely has a task's
        name is not a target)."""
        tasks: list[Task] = []
        pods: dict[str, Mapping[str, Any]] = {}
        for body in bodies:
            try:
                task = self.context.tasks.parsed(body, Task)
            except ValidationError:
                continue
            tasks.append(task)
            pod = self.context.pods.get((namespace, task.metadata.name))
            if pod is not None and owned_by(pod, body):
                pods[task.metadata.name] = pod
        return tasks, pods

    async def _sync_service(self, namespace: str, lb: LoadBalancer) -> str | None:
        """Keep the LoadBalancer's Kubernetes Service as rendered; the name clash instead when
        a Service of its name exists and is not its own (then it is left untouched)."""
        desired = load_balancing.render_service(lb)
        current = self.context.kubernetes_services.get((namespace, lb.metadata.name))
        if current is None:
            current = await self._create_or_read(KUBERNETES_SERVICES, namespace, desired)
            if current is None:
                return None
        refusal = load_balancing.name_clash(lb, "Service", current)
        if refusal is not None:
            return refusal
        patch = load_balancing.service_changes(current, desired)
        if patch is not None:
            await self.context.api.patch(KUBERNETES_SERVICES, namespace, lb.metadata.name, patch)
        return None

    async def _create_or_read(
        self, resource: Resource, namespace: str, manifest: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Create `manifest`; None when created, else the object that already has its name
        (read from the API: the watch sees only objects labelled as the operator's)."""
        found, created = await self.context.api.create_or_get(resource, namespace, manifest)
        return None if created else found

    async def _sync_slices(
        self, namespace: str, lb: LoadBalancer, current_targets: tuple[Any, ...]
    ) -> list[str]:
        """Bring the LoadBalancer's own EndpointSlices to the targets; the name clashes with
        slices that are not its own (those it never changes)."""
        desired = load_balancing.render_endpoint_slices(lb, current_targets)
        cache = self.context.endpoint_slices
        current = load_balancing.own_endpoint_slices(lb, cache.in_namespace(namespace))
        changes = load_balancing.slice_changes(current, desired)
        api, clashes = self.context.api, []
        for manifest in changes.create:
            existing = await self._create_or_read(ENDPOINT_SLICES, namespace, manifest)
            clash = (
                None
                if existing is None
                else load_balancing.name_clash(lb, "EndpointSlice", existing)
            )
            if clash is not None:
                clashes.append(clash)
        for manifest in changes.update:
            name = manifest["metadata"]["name"]
            await api.replace(ENDPOINT_SLICES, namespace, name, manifest)
        for name in changes.delete:
            await api.delete(ENDPOINT_SLICES, namespace, name)
        return clashes
