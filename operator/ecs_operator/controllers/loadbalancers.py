"""LoadBalancers: register service tasks as targets and keep a real data path in step.

`core.load_balancing` decides the targets (initial → healthy/unhealthy → draining → gone) from the
Services that name the LoadBalancer, their Tasks and Pods; this controller applies it to the
Kubernetes Service (no selector) and EndpointSlices it owns, writes status, and records the ECS
events on the Services.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import ValidationError

from ecs_operator.controllers.cache import Key, finalizer_write_event
from ecs_operator.controllers.context import SERVICE_INDEX, OperatorContext
from ecs_operator.controllers.http_routes import RouteWeigher
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.triggers import Change, Trigger, every_object, its_namespace, itself
from ecs_operator.controllers.workqueue import WorkQueue
from ecs_operator.core import events as ecs_events
from ecs_operator.core import labels, load_balancing
from ecs_operator.core.ownership import service_of_task
from ecs_operator.kube.client import (
    ENDPOINT_SLICES,
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
from ecs_operator.models.service import Service, ServiceLoadBalancer
from ecs_operator.models.task import Task

logger = logging.getLogger(__name__)

IN_USE_FINALIZER = labels.IN_USE_FINALIZER
IN_USE_RECHECK_SECONDS = 30.0
NAME_CLASH_RECHECK_SECONDS = 10.0


_in_namespace = every_object("load_balancers", its_namespace)


def _service_task_moved(change: Change, context: OperatorContext) -> Iterable[Key]:
    """A service task's state, or its Pod's readiness (target health), moved."""
    if service_of_task(change.body) is None:
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
        self.routes = RouteWeigher(context, events, self.queue.add_after)

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
        routed, route_problems = await self.routes.weigh(key, body, lb, members)
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
        """Every Service naming the LoadBalancer, or still holding targets in it; and the
        names of those naming it."""
        holding, members, users = load_balancing.holding_services(lb), [], set()
        for body, service, by_deployment in self._running_services(namespace):
            if load_balancing.names_load_balancer(service.spec, by_deployment, lb.metadata.name):
                users.add(service.metadata.name)
            elif service.metadata.name not in holding:
                continue
            tasks, pods = self._with_pods(namespace, self.context.service_tasks(body))
            members.append(load_balancing.ServiceMembers(service, tasks, pods, by_deployment))
        return members, users

    def _running_services(
        self, namespace: str
    ) -> Iterator[tuple[dict[str, Any], Service, dict[str, list[ServiceLoadBalancer]]]]:
        """The namespace's readable Services, each with the settings it runs with (after a
        rollback, the load balancers of the revision it restored) and the load balancers of
        each deployment's revision (each task registers with those of its own)."""
        reader = self.context.service_revisions
        for body in self.context.services.in_namespace(namespace):
            try:
                service = self.context.services.parsed(body, Service)
            except ValidationError:
                continue
            running = service.model_copy(update={"spec": reader.running_spec(service)})
            yield body, running, reader.load_balancers_by_deployment(running)

    def _departed(self, namespace: str, lb: LoadBalancer) -> list[load_balancing.DepartedTasks]:
        """The tasks of each Service gone while it still has targets in the LoadBalancer:
        found by their ownerReference's name (the Service's uid is gone with it)."""
        departed = []
        for service in sorted(load_balancing.holding_services(lb)):
            if self.context.services.get((namespace, service)) is None:
                bodies = self.context.tasks.indexed(SERVICE_INDEX, f"{namespace}/{service}")
                tasks, pods = self._with_pods(namespace, bodies)
                departed.append(load_balancing.DepartedTasks(service, tasks, pods))
        return departed

    def _with_pods(
        self, namespace: str, bodies: Iterable[dict[str, Any]]
    ) -> tuple[list[Task], dict[str, Mapping[str, Any]]]:
        """The readable Tasks and the Pods they own, by task name."""
        readable = list(self._readable_tasks(bodies))
        pods = load_balancing.own_pods(
            (body, self.context.pods.get((namespace, task.metadata.name)))
            for body, task in readable
        )
        return [task for _, task in readable], pods

    def _readable_tasks(
        self, bodies: Iterable[dict[str, Any]]
    ) -> Iterator[tuple[dict[str, Any], Task]]:
        """Each Task body that can be read, with the Task."""
        for body in bodies:
            try:
                yield body, self.context.tasks.parsed(body, Task)
            except ValidationError:
                continue

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
