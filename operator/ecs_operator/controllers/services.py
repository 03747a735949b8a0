"""Services: keep desiredCount tasks running, place them, roll deployments out.

`core.deployments.plan_service` decides everything from the Service, its Task objects and the
nodes; this controller places the launches it asks for (so what cannot be placed is reported
as ECS does, without creating a task), creates and stops Task objects, and writes status once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.controllers.cache import Key, finalizer_write_event, object_key
from ecs_operator.controllers.context import OperatorContext
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.workqueue import WorkQueue
from ecs_operator.core import deployments, events, labels, launches, load_balancing, placement
from ecs_operator.core.capacity import task_requirements
from ecs_operator.core.deployments import LaunchRequest, ServiceState, ServiceTask, StopRequest
from ecs_operator.core.ownership import owned_by
from ecs_operator.core.render import effective_spec
from ecs_operator.kube.client import SERVICES, TASKS, KubeError
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.placement import PlacementConstraint
from ecs_operator.models.service import Service, ServiceSpec, ServiceStatus
from ecs_operator.models.task import Task
from ecs_operator.models.taskdefinition import TaskDefinitionSpec, parse_task_definition_ref

logger = logging.getLogger(__name__)

FINALIZER = labels.DRAIN_FINALIZER

# ECS keeps stopped tasks visible for about an hour; a crash-looping service would otherwise
# pile up thousands of them, so each service keeps only its newest stopped tasks.
MAX_STOPPED_TASKS_PER_SERVICE = 20
PLACEMENT_RETRY_SECONDS = 30.0
CONCURRENT_CREATES = 16
DRAIN_CHECK_SECONDS = 5.0


class ServiceController:
    def __init__(
        self, context: OperatorContext, events: EventRecorder, metrics: OperatorMetrics
    ) -> None:
        self.context = context
        self.events = events
        self.rng = random.Random()
        self._drain_checked: dict[Key, float] = {}  # when a deleted Service's tasks were listed
        self.queue: WorkQueue[Key] = WorkQueue(
            "services",
            self.reconcile,
            workers=max(2, context.options.workers // 2),
            observe=metrics.observe_reconcile,
        )
        # Our expectations: names of service tasks whose create may or may not have happened
        # (the request failed with an unknown outcome), by Service.
        self._in_flight: dict[Key, set[str]] = {}

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def handle_event(self, event_type: str | None, body: Mapping[str, Any]) -> Key:
        """Cache a Service's watch event and reconcile it, unless it is the echo of our own
        status write: that version was cached when written, by the reconcile that decided it,
        so reconciling it again would only retry at once what the reconcile scheduled for
        later (placement is retried every PLACEMENT_RETRY_SECONDS, not on every write)."""
        echo = event_type != "DELETED" and self.context.services.holds(body)
        key = self.context.services.record(event_type, body)
        if not echo:
            self.queue.add(key)
        return key

    def enqueue_all(self, namespace: str | None = None) -> None:
        """Every service (of one namespace): nodes changed, or a family's revisions moved."""
        services = (
            self.context.services.values()
            if namespace is None
            else self.context.services.in_namespace(namespace)
        )
        for body in services:
            self.queue.add((body["metadata"].get("namespace", ""), body["metadata"]["name"]))

    def start(self) -> None:
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()

    async def reconcile(self, key: Key) -> None:
        body = self.context.services.get(key)
        if body is None:
            self._in_flight.pop(key, None)
            return  # deleted: ownerReference garbage collection removes its stopped tasks
        if body["metadata"].get("deletionTimestamp"):
            await self._delete(key, body)
            return
        namespace, name = key
        now = datetime.now(UTC)
        try:
            service = self.context.services.parsed(body, Service)
        except ValidationError as error:
            logger.warning("service %s/%s cannot be read: %s", namespace, name, error)
            return
        if service.spec.load_balancers and FINALIZER not in _finalizers(body):
            await self._set_finalizer(body, add=True)
        load_balancers = self.context.load_balancers_in(namespace)
        resolved, resolution_error, definition = self._resolve(namespace, service)
        load_balancer_error = _load_balancer_error(service.spec, definition, load_balancers)
        await self._settle_in_flight(key)
        tasks = self._tasks(body)
        health_checked = self._health_checks(namespace)
        plan = deployments.plan_service(
            ServiceState(
                name=name,
                uid=body["metadata"]["uid"],
                generation=int(body["metadata"].get("generation") or 1),
                spec=service.spec,
                status=service.status,
                tasks=[
                    ServiceTask.of(task, now, health_checked=health_checked(task)) for task in tasks
                ],
                nodes=self.context.container_instances(namespace),
                now=now,
                resolved_task_definition=None if load_balancer_error else resolved,
                resolution_error=resolution_error,
                load_balancer_error=load_balancer_error,
                task_definition_constraints=tuple(
                    (definition.placement_constraints or ()) if definition else ()
                ),
                healthy=_healthy_in(service.spec, load_balancers),
            ),
            self.rng,
        )
        stops = [
            *plan.stop,
            *self._failed_elb_health(key, service, tasks, load_balancers, plan, now),
        ]
        for request in stops:
            await self._stop_task(namespace, request)
        status, changed = plan.status, plan.changed
        launched, failures, launch_error = await self._launch_all(body, service, plan.launch)
        messages = list(plan.events)
        if launched:
            status, recorded = deployments.record_launches(status, name, launched, now, self.rng)
            messages += recorded
        if failures:
            status, recorded = deployments.record_placement_failures(
                status,
                service.status,
                name,
                failures,
                int(body["metadata"].get("generation") or 1),
                now,
                self.rng,
            )
            messages += recorded
        if changed or launched or failures:
            await self._write_status(body, status)
        for message in messages:
            await self.events.record(body, "Normal", "ServiceEvent", message)
        await self._trim_stopped(namespace, tasks)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)
        if failures:
            self.queue.add_after(key, PLACEMENT_RETRY_SECONDS)
        if launch_error is not None:
            raise launch_error  # retried with back-off, the tasks it did launch recorded above

    async def _delete(self, key: Key, body: dict[str, Any]) -> None:
        """ECS's DeleteService for a load-balanced service: every task is stopped through its
        deregistration (DEACTIVATING, targets draining), and the Service goes only when none is
        left running, so no client is cut off mid-request."""
        if FINALIZER not in _finalizers(body):
            return
        namespace = key[0]
        live = [
            t for t in self._tasks(body) if not (t.status and t.status.last_status == "STOPPED")
        ]
        if live and not await self._live_in_api(key, body):
            live = []  # the watch missed their deletion (their CRD deleted, say): nothing drains
        for task in live:
            if task.spec.desired_status != "STOPPED":
                reason = f"Service {key[1]} is being deleted"
                await self._stop_task(
                    namespace, StopRequest(task.metadata.name, "ServiceSchedulerInitiated", reason)
                )
        if live:
            self.queue.add_after(key, 1.0)
        else:
            self._drain_checked.pop(key, None)
            await self._set_finalizer(body, add=False)

    async def _live_in_api(self, key: Key, body: Mapping[str, Any]) -> bool:
        """Whether the API still lists a live task of the Service being deleted (asked at most
        every DRAIN_CHECK_SECONDS; True in between). The cache alone could wait for ever on
        tasks whose deletion its watch never reported: their CRD was deleted, or the watch
        stopped."""
        now = time.monotonic()
        checked = self._drain_checked.get(key)
        if checked is not None and now - checked < DRAIN_CHECK_SECONDS:
            return True
        self._drain_checked[key] = now
        selector = f"{labels.SERVICE_LABEL}={labels.label_value(key[1])}"
        try:
            listed = await self.context.kube.list(TASKS, key[0], label_selector=selector)
        except KubeError as error:
            if not error.not_found:
                raise
            return False  # the Task kind itself is gone
        return any(
            owned_by(task, body) and (task.get("status") or {}).get("lastStatus") != "STOPPED"
            for task in listed
        )

    async def _set_finalizer(self, body: dict[str, Any], *, add: bool) -> None:
        updated = await self.context.kube.set_finalizer(SERVICES, body, FINALIZER, present=add)
        if updated is not None:
            self._record_own_write(body, updated)

    def _failed_elb_health(
        self,
        key: Key,
        service: Service,
        tasks: list[Task],
        load_balancers: dict[str, LoadBalancer],
        plan: deployments.ServicePlan,
        now: datetime,
    ) -> list[StopRequest]:
        """Tasks whose target stayed unhealthy past healthCheckGracePeriodSeconds: stopped
        (and so replaced) with ECS's reason. A task unhealthy within its grace period is looked
        at again when the period ends."""
        used = [
            load_balancers[e.load_balancer_name]
            for e in service.spec.load_balancers or ()
            if e.load_balancer_name in load_balancers
        ]
        if not used:
            return []
        planned = {request.task for request in plan.stop}
        grace = service.spec.health_check_grace_period_seconds or 0
        stops = []
        for task in tasks:
            name, status = task.metadata.name, task.status
            if task.spec.desired_status == "STOPPED" or status is None or name in planned:
                continue
            reason = load_balancing.failed_elb_health(name, status.started_at, grace, used, now)
            if reason is not None:
                stops.append(StopRequest(name, "ServiceSchedulerInitiated", reason))
            elif status.started_at and load_balancing.failed_elb_health(
                name, status.started_at, 0, used, now
            ):
                grace_ends = status.started_at + timedelta(seconds=grace)
                self.queue.add_after(key, (grace_ends - now).total_seconds())
        return stops

    def _resolve(
        self, namespace: str, service: Service
    ) -> tuple[str | None, str | None, TaskDefinitionSpec | None]:
        """The revision a new deployment would run (and its spec), or why there is none."""
        resolved = self.context.revision_reader.resolve(
            namespace, service.spec.task_definition, for_new_task=True
        )
        if resolved.revision is None:
            return None, resolved.error, None
        return resolved.revision.record.reference, None, resolved.revision.spec

    def _tasks(self, body: Mapping[str, Any]) -> list[Task]:
        tasks = []
        for task in self.context.service_tasks(body):
            try:
                tasks.append(self.context.tasks.parsed(task, Task))
            except ValidationError as error:
                logger.warning(
                    "service task %s cannot be read: %s", task["metadata"]["name"], error
                )
        return tasks

    def _health_checks(self, namespace: str) -> Callable[[Task], bool]:
        """Whether a task's revision health-checks an essential container (then a task is
        healthy only once HEALTHY, not merely RUNNING); each revision is read once per
        reconcile, not once per task."""
        known: dict[str, bool] = {}

        def checked(task: Task) -> bool:
            resolved = task.status.task_definition_arn if task.status else None
            reference = resolved or task.spec.task_definition
            if reference not in known:
                known[reference] = self._revision_health_checked(namespace, reference)
            return known[reference]

        return checked

    def _revision_health_checked(self, namespace: str, reference: str) -> bool:
        spec = self.context.revision_reader.spec(namespace, reference)
        return spec is not None and any(
            c.essential and c.health_check for c in spec.container_definitions
        )

    async def _stop_task(self, namespace: str, request: StopRequest) -> None:
        patch = {
            "metadata": {"annotations": {labels.STOP_CODE_ANNOTATION: request.stop_code}},
            "spec": {"desiredStatus": "STOPPED", "stoppedReason": request.reason[:255]},
        }
        try:
            updated = await self.context.kube.patch(TASKS, namespace, request.task, patch)
        except KubeError as error:
            if error.not_found:
                return
            raise
        self.context.tasks.record("MODIFIED", updated)

    async def _launch_all(
        self, body: Mapping[str, Any], service: Service, requests: Iterable[LaunchRequest]
    ) -> tuple[
        dict[LaunchRequest, list[str]],
        list[tuple[LaunchRequest, placement.PlacementFailure]],
        BaseException | None,
    ]:
        """Every launch of a plan: the ids created, what could not be placed, and the create
        that failed, after which the rest waits for the next plan."""
        launched: dict[LaunchRequest, list[str]] = {}
        failures: list[tuple[LaunchRequest, placement.PlacementFailure]] = []
        if self.context.namespace_terminating(body["metadata"].get("namespace", "")):
            # Every create would be refused (403) until the namespace is gone.
            return launched, failures, None
        for launch in requests:
            ids, failure, error = await self._launch(body, service, launch)
            if ids:
                launched[launch] = ids
            if failure is not None:
                failures.append((launch, failure))
            if error is not None:
                return launched, failures, error
        return launched, failures, None

    async def _launch(
        self, body: Mapping[str, Any], service: Service, launch: LaunchRequest
    ) -> tuple[list[str], placement.PlacementFailure | None, BaseException | None]:
        """Place and create `launch.count` tasks: the ids created, the first placement failure
        and the first create that failed."""
        namespace, name = body["metadata"].get("namespace", ""), body["metadata"]["name"]
        family, number = parse_task_definition_ref(launch.task_definition)
        record = next(
            (
                s.record
                for s in self.context.revision_reader.family(namespace, family)
                if s.record.revision == number
            ),
            None,
        )
        if record is None:
            logger.warning(
                "service %s/%s: revision %s is gone", namespace, name, launch.task_definition
            )
            return [], None, None
        spec = effective_spec(TaskDefinitionSpec.model_validate(record.spec), None)
        constraints = list(service.spec.placement_constraints or ())
        if launch.node is not None:
            constraints.append(
                PlacementConstraint(type="memberOf", expression=f"ec2InstanceId == {launch.node}")
            )
        if launch.zone is not None:
            constraints.append(_member_of(f"attribute:ecs.availability-zone == {launch.zone}"))
        requirements = task_requirements(
            spec,
            group=deployments.service_group(name),
            constraints=constraints,
            strategies=deployments.placement_strategies(service.spec),
        )
        results = placement.place_many(
            [requirements] * launch.count, self.context.container_instances(namespace), self.rng
        )
        nodes = [r.instance for r in results if not isinstance(r, placement.PlacementFailure)]
        failure = next((r for r in results if isinstance(r, placement.PlacementFailure)), None)
        # Creates of unknown outcome were settled before planning: the cache knows every name.
        # A name whose Pod is still there (its Task deleted, the Pod not yet collected) is
        # taken too: the new Task would find someone else's Pod under its name.
        names = launches.launch_names(
            name,
            body["metadata"]["uid"],
            launch.deployment_id,
            len(nodes),
            lambda task: (
                self.context.tasks.get((namespace, task)) is not None
                or self.context.pods.get((namespace, task)) is not None
            ),
        )
        # Created concurrently, a bounded number at a time: one request at a time would pace a
        # large scale-out by the API's round trip.
        limit = asyncio.Semaphore(CONCURRENT_CREATES)

        async def create(ordinal: int, task: str, node: str) -> str | None:
            async with limit:
                created = await self._create_task(body, service, launch, node, ordinal, task)
            return None if created is None else str(created["metadata"]["uid"]).replace("-", "")

        # Every create settles before the next plan: one still in flight would not be counted.
        creates = [create(o, task, node) for (o, task), node in zip(names, nodes, strict=True)]
        settled = await asyncio.gather(*creates, return_exceptions=True)
        error = next((r for r in settled if isinstance(r, BaseException)), None)
        if isinstance(error, asyncio.CancelledError):
            raise error
        return [r for r in settled if isinstance(r, str)], failure, error

    async def _settle_in_flight(self, key: Key) -> None:
        """Creates whose outcome is unknown are read back before anything is planned, as the
        ReplicaSet controller waits for its expectations: a task created after all is counted
        (never launched twice), one that was not may be launched again. Until a read answers,
        the reconcile fails and is retried."""
        names = self._in_flight.get(key)
        while names:
            task = min(names)
            if self.context.tasks.get((key[0], task)) is None:
                found = await self.context.kube.get(TASKS, key[0], task)
                if found is not None:
                    self.context.tasks.record("ADDED", found)
            names.discard(task)
        self._in_flight.pop(key, None)

    async def _create_task(
        self,
        body: Mapping[str, Any],
        service: Service,
        launch: LaunchRequest,
        node: str,
        ordinal: int,
        task: str,
    ) -> dict[str, Any] | None:
        """Create service task `task` (the launch's `ordinal`): the Task, or None when its
        name is held by something that is not this launch (reported; the next plan names the
        launch anew, since the holder is now in the cache)."""
        namespace, name = body["metadata"].get("namespace", ""), body["metadata"]["name"]
        manifest: dict[str, Any] = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "Task",
            "metadata": {
                "name": task,
                "namespace": namespace,
                "labels": {
                    labels.SERVICE_LABEL: labels.label_value(name),
                    labels.MANAGED_BY_LABEL: labels.MANAGED_BY,
                },
                "annotations": {
                    labels.PLACED_NODE_ANNOTATION: node,
                    launches.LAUNCH_ORDINAL_ANNOTATION: str(ordinal),
                },
                "ownerReferences": [
                    {
                        "apiVersion": f"{API_GROUP}/{API_VERSION}",
                        "kind": "Service",
                        "name": name,
                        "uid": body["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "taskDefinition": launch.task_definition,
                "group": deployments.service_group(name),
                "startedBy": launch.deployment_id,
            },
        }
        if service.spec.propagate_tags == "SERVICE" and service.spec.tags:
            manifest["spec"]["tags"] = [
                t.model_dump(by_alias=True, exclude_none=True) for t in service.spec.tags
            ]
        try:
            found, created = await self.context.kube.create_or_get(TASKS, namespace, manifest)
        except KubeError as error:
            if error.outcome_unknown:
                self._in_flight.setdefault((namespace, name), set()).add(task)
            raise
        # Counted at once (our expectations): the next plan sees it even before the watch does.
        # A holder that is not ours is cached too, so the next plan avoids its name.
        self.context.tasks.record("ADDED", found)
        if created:
            return found
        verdict = launches.existing_verdict(found, manifest)
        if verdict is launches.Existing.SAME_LAUNCH:
            return found  # created by an attempt whose response was lost
        logger.warning("service %s/%s: task name %s is taken (%s)", namespace, name, task, verdict)
        await self.events.record(
            body,
            "Warning",
            events.REASON_TASK_NAME_TAKEN,
            events.service_task_name_taken(name, task, verdict.value),
        )
        self.queue.add_after((namespace, name), 1.0)
        return None

    async def _write_status(self, body: Mapping[str, Any], status: ServiceStatus) -> None:
        updated = await self.context.kube.write_status(
            SERVICES, body, status.model_dump(mode="json", by_alias=True, exclude_none=True)
        )
        if updated is not None:  # else deleted meanwhile: its DELETED event ends the story
            self._record_own_write(body, updated)

    def _record_own_write(self, read: Mapping[str, Any], written: dict[str, Any]) -> None:
        """Cache the response of a write to the Service a reconcile `read` (as DELETED when
        the write removed the last finalizer of a Service being deleted). Changed by someone
        else since it was read, the watch event of that change is older than our write, so
        `handle_event` takes it for an echo: the change is reconciled from here instead."""
        self.context.services.record(finalizer_write_event(written), written)
        if _what_reconcile_reads(written) != _what_reconcile_reads(read):
            self.queue.add(object_key(written))

    async def _trim_stopped(self, namespace: str, tasks: list[Task]) -> None:
        stopped = sorted(
            (task.status.stopped_at, task.metadata.name, task.metadata.uid)
            for task in tasks
            if task.status and task.status.last_status == "STOPPED" and task.status.stopped_at
        )
        for _, name, uid in stopped[: max(0, len(stopped) - MAX_STOPPED_TASKS_PER_SERVICE)]:
            await self.context.kube.delete(TASKS, namespace, name, uid=uid)


def _member_of(expression: str) -> PlacementConstraint:
    return PlacementConstraint(type="memberOf", expression=expression)


def _healthy_in(
    spec: ServiceSpec, load_balancers: dict[str, LoadBalancer]
) -> Callable[[ServiceTask], bool]:
    """A task counts as healthy when ECS says so and, for a load-balanced service, when it is
    healthy in every target group."""
    if not spec.load_balancers:
        return deployments.is_healthy
    return lambda task: (
        deployments.is_healthy(task)
        and load_balancing.task_load_balancer_health(task.name, spec, load_balancers)
    )


def _load_balancer_error(
    spec: ServiceSpec,
    definition: TaskDefinitionSpec | None,
    load_balancers: dict[str, LoadBalancer],
) -> str | None:
    """Why a loadBalancers[] entry cannot be registered with the resolved revision: it blocks
    a deployment, as ECS refuses such a CreateService/UpdateService."""
    if definition is None or not spec.load_balancers:
        return None
    problems = load_balancing.load_balancer_problems(spec, definition, load_balancers)
    return "; ".join(str(p) for p in problems) or None


def _what_reconcile_reads(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """The parts of a Service besides its status that a reconcile decides from."""
    metadata = body["metadata"]
    return (metadata.get("generation"), metadata.get("deletionTimestamp"))


def _finalizers(body: Mapping[str, Any]) -> list[str]:
    return list(body["metadata"].get("finalizers") or ())
