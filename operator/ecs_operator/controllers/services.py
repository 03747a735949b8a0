"""Services: keep desiredCount tasks running, place them, roll deployments out.

A reconcile reads the Service, its Tasks and its namespace's LoadBalancers and nodes from the
caches; `core.service_planning` decides (the scheduler's plan, placements, the Task manifests,
the status); this controller applies it: stops, creates (what cannot be placed is reported as
ECS does, without creating a task), one status write, its events.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ecs_operator.controllers.cache import Key, finalizer_write_event, object_key
from ecs_operator.controllers.context import OperatorContext
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.task_launcher import TaskLauncher
from ecs_operator.controllers.workqueue import WorkQueue
from ecs_operator.core import events, labels, service_planning
from ecs_operator.core.deployments import StopRequest
from ecs_operator.kube.client import SERVICES, TASKS, KubeError
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.service import Service, ServiceStatus
from ecs_operator.models.task import Task
from ecs_operator.models.taskdefinition import TaskDefinitionSpec

logger = logging.getLogger(__name__)

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
        self.launcher = TaskLauncher(context, events, self.rng, self.queue.add_after)

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def handle_event(self, event_type: str | None, body: Mapping[str, Any]) -> Key:
        """Cache a Service's watch event and reconcile it, unless it is the echo of our own
        status write: that version was cached when written, by the reconcile that decided it,
        so reconciling it again would only retry at once what the reconcile scheduled for
        later (placement is retried after `service_planning.PLACEMENT_RETRY_SECONDS`, not on
        every write)."""
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
            self.launcher.forget(key)
            return  # deleted: ownerReference garbage collection removes its stopped tasks
        if body["metadata"].get("deletionTimestamp"):
            await self._delete(key, body)
            return
        now = datetime.now(UTC)
        try:
            service = self.context.services.parsed(body, Service)
        except ValidationError as error:
            logger.warning("service %s/%s cannot be read: %s", *key, error)
            return
        if service_planning.wants_drain_finalizer(service.spec, body):
            await self._set_finalizer(body, add=True)
        await self.launcher.settle_in_flight(key)
        state = self._read(key[0], body, service, now)
        plan = service_planning.plan_reconcile(state, self.rng)
        for request in plan.scheduled.stop:
            await self._stop_task(key[0], request)
        launched, failures, launch_error = await self.launcher.launch_all(
            body, service, plan.scheduled.launch
        )
        outcome = service_planning.record_outcome(
            state, plan.scheduled, launched, failures, self.rng
        )
        if outcome.status is not None:
            await self._write_status(body, outcome.status)
        for message in outcome.events:
            await self.events.record(body, "Normal", events.REASON_SERVICE_EVENT, message)
        for task in plan.delete:
            await self.context.kube.delete(TASKS, key[0], task.metadata.name, uid=task.metadata.uid)
        if outcome.requeue_after is not None:
            self.queue.add_after(key, outcome.requeue_after)
        if launch_error is not None:
            raise launch_error  # retried with back-off, the tasks it did launch recorded above

    def _read(
        self, namespace: str, body: Mapping[str, Any], service: Service, now: datetime
    ) -> service_planning.ReconcileState:
        """What the plan decides from, as the caches have it."""
        tasks = self._tasks(body)
        checked = self._health_checks(namespace)
        return service_planning.ReconcileState(
            service,
            tasks,
            self.context.load_balancers_in(namespace),
            self.context.container_instances(namespace),
            now,
            *self._resolve(namespace, service),
            health_checked=frozenset(t.metadata.name for t in tasks if checked(t)),
        )

    async def _delete(self, key: Key, body: dict[str, Any]) -> None:
        """A load-balanced Service goes only when none of its tasks is left running, each
        stopped through its deregistration, so no client is cut off mid-request."""
        if not service_planning.drains_on_deletion(body):
            return
        live = service_planning.live_tasks(self._tasks(body))
        if live and not await self._live_in_api(key, body):
            live = []  # the watch missed their deletion (their CRD deleted, say): nothing drains
        for request in service_planning.drain_stops(key[1], live):
            await self._stop_task(key[0], request)
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
        return service_planning.lists_live_task(listed, body)

    async def _set_finalizer(self, body: dict[str, Any], *, add: bool) -> None:
        updated = await self.context.kube.set_finalizer(
            SERVICES, body, labels.DRAIN_FINALIZER, present=add
        )
        if updated is not None:
            self._record_own_write(body, updated)

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
        patch = service_planning.stop_patch(request)
        try:
            updated = await self.context.kube.patch(TASKS, namespace, request.task, patch)
        except KubeError as error:
            if error.not_found:
                return
            raise
        self.context.tasks.record("MODIFIED", updated)

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
        if service_planning.reads_changed(read, written):
            self.queue.add(object_key(written))
