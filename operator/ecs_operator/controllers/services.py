"""Services: keep desiredCount tasks running, place them, roll deployments out.

A reconcile reads its deployment alarms and makes the lifecycle hook calls due
(`controllers.alarms`, `controllers.hooks`), then reads the Service, its Tasks and its
namespace's LoadBalancers and nodes from the caches; `core.service_planning` decides (the
scheduler's plan, placements, the Task manifests, the status); this controller applies it:
stops, creates (what cannot be placed is reported as ECS does, without creating a task), one
status write, its events, and stops the Tasks of hook runs that timed out.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import ValidationError

from ecs_operator.controllers.alarms import AlarmReader
from ecs_operator.controllers.cache import Key
from ecs_operator.controllers.concurrently import settle_all_or_raise
from ecs_operator.controllers.context import OperatorContext
from ecs_operator.controllers.hooks import ServiceHooks
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.revisions import delete_service_revision, record_service_revisions
from ecs_operator.controllers.task_launcher import TaskLauncher, stop_task
from ecs_operator.controllers.triggers import Change, Trigger, every_object, its_namespace, owner
from ecs_operator.controllers.workqueue import WorkQueue
from ecs_operator.core import (
    alarms,
    events,
    labels,
    revisions,
    service_planning,
    service_revisions,
)
from ecs_operator.core.capacity import placement_facts
from ecs_operator.core.revisions import ResolvedRevision
from ecs_operator.kube.client import (
    CONTROLLER_REVISIONS,
    LOAD_BALANCERS,
    NODES,
    SERVICES,
    TASK_DEFINITIONS,
    TASKS,
)
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.service import Service, ServiceStatus
from ecs_operator.models.task import Task

logger = logging.getLogger(__name__)


def _service_itself(change: Change, _context: OperatorContext) -> Iterable[Key]:
    """A Service's change, unless it is the response of our own status write: reconciling
    that again would only retry at once what the reconcile scheduled for later (placement is
    retried after `service_planning.PLACEMENT_RETRY_SECONDS`, not on every write). A change of
    someone else's that the write's response reveals (the spec changed since it was read: its
    own watch event, older than our write, changes nothing) is reconciled."""
    echo = change.written and change.before is not None and change.type != "DELETED"
    if echo and not service_planning.reads_changed(change.before or {}, change.body):
        return ()
    return (change.key,)


_in_namespace = every_object("services", its_namespace)
_everywhere = every_object("services", lambda _change: None)


_revision_owner = owner("Service")


def _family_moved(change: Change, context: OperatorContext) -> Iterable[Key]:
    """A family's revisions changed: `family` may now mean another revision. A service
    revision changed: its Service may run with its settings."""
    if change.resource == CONTROLLER_REVISIONS and service_revisions.is_service_revision(
        change.body
    ):
        return _revision_owner(change, context)
    if change.resource == CONTROLLER_REVISIONS and revisions.annotated_family(change.body) is None:
        return ()
    return _in_namespace(change, context)


def _load_balancer_moved(change: Change, context: OperatorContext) -> Iterable[Key]:
    """A LoadBalancer came, went, or its targets' health moved."""
    if not change.differs(lambda lb: lb.get("status")):
        return ()
    return _in_namespace(change, context)


def _node_moved(change: Change, context: OperatorContext) -> Iterable[Key]:
    """Heartbeats change nothing placement cares about; only real changes wake the services."""
    return _everywhere(change, context) if change.differs(placement_facts) else ()


class ServiceController:
    TRIGGERS: ClassVar[tuple[Trigger, ...]] = (
        Trigger(SERVICES, _service_itself),
        Trigger(TASKS, owner("Service")),
        Trigger(TASK_DEFINITIONS, _in_namespace),
        Trigger(CONTROLLER_REVISIONS, _family_moved),
        Trigger(LOAD_BALANCERS, _load_balancer_moved),
        Trigger(NODES, _node_moved),
    )

    def __init__(
        self, context: OperatorContext, events: EventRecorder, metrics: OperatorMetrics
    ) -> None:
        self.context = context
        self.events = events
        self.rng = random.Random()
        self.queue: WorkQueue[Key] = WorkQueue(
            "services",
            self.reconcile,
            workers=max(2, context.options.workers // 2),
            observe=metrics.observe_reconcile,
        )
        self.launcher = TaskLauncher(context, events, self.rng, self.queue.add_after)
        options = context.options
        self.alarms = AlarmReader(
            options.prometheus_url,
            options.alarms,
            options.alarm_interval_seconds,
            options.alarm_bake_seconds,
        )
        self.hooks = ServiceHooks(context)
        # The uids of each Service's stopped tasks deleted and still cached: the cache learns of
        # a deletion from its watch event, and until then every plan names them again.
        self._deleting: dict[Key, set[str]] = {}

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def start(self) -> None:
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()
        await self.alarms.close()
        await self.hooks.close()

    async def reconcile(self, key: Key) -> None:
        body = self.context.services.get(key)
        if body is None:
            self.launcher.forget(key)
            self._deleting.pop(key, None)
            # Deleted: ownerReference garbage collection deletes its tasks, each of a
            # load-balanced Service once its targets drained (their own finalizer).
            return
        if service_planning.holds_former_drain_finalizer(body):
            await self.context.api.set_finalizer(
                SERVICES, body, labels.DRAIN_FINALIZER, present=False
            )
        if body["metadata"].get("deletionTimestamp"):
            return  # only another's finalizer can hold it: its tasks go with it
        now = datetime.now(UTC)
        try:
            service = self.context.services.parsed(body, Service)
        except ValidationError as error:
            logger.warning("service %s/%s cannot be read: %s", *key, error)
            return
        await self.launcher.settle_in_flight(key)
        state = await self._read(body, service, now)
        plan = service_planning.plan_reconcile(state, self.rng)
        await settle_all_or_raise(stop_task(self.context, key[0], r) for r in plan.scheduled.stop)
        running = service.model_copy(update={"spec": state.running_spec})
        launched, failures, launch_error = await self.launcher.launch_all(
            body, running, plan.scheduled.launch
        )
        outcome = service_planning.record_outcome(
            state, plan.scheduled, launched, failures, self.rng
        )
        revision_error = await record_service_revisions(self.context, key[0], plan.revisions.create)
        if outcome.status is not None:
            await self._write_status(body, outcome.status)
        await self.hooks.stop_timed_out(body, outcome.status or service.status)
        for message in outcome.events:
            await self.events.record(body, *events.service_event_kind(message), message)
        await settle_all_or_raise(self._trim(key, state.tasks, plan.delete))
        for name in plan.revisions.delete:
            await delete_service_revision(self.context, key[0], name)
        requeue = [outcome.requeue_after]
        if plan.settings_moved:
            requeue.append(0.0)  # a rollback: plan again with the settings it restores
        if (delay := min((d for d in requeue if d is not None), default=None)) is not None:
            self.queue.add_after(key, delay)
        if launch_error is not None:
            raise launch_error  # retried with back-off, the tasks it did launch recorded above
        if revision_error is not None:
            raise revision_error  # recorded on the retry: the plan wants it until it is stored

    async def _read(
        self, body: dict[str, Any], service: Service, now: datetime
    ) -> service_planning.ReconcileState:
        """What the plan decides from: the alarms' states and the replies of the hook calls
        due (the status keeps what they said), then the caches as they are after those."""
        generation = service.metadata.generation or 1
        readings = await self.alarms.read(
            alarms.names_to_read(service.spec, service.status, generation)
        )
        replies = await self.hooks.replies(body, service, now)
        namespace, tasks = body["metadata"]["namespace"], self._tasks(body)
        return service_planning.ReconcileState(
            service,
            tasks,
            self.context.load_balancers_in(namespace),
            self.context.container_instances(namespace),
            now,
            *service_planning.new_deployment_revision(self._resolve(namespace, service)),
            health_checked=self._health_checked(namespace, tasks),
            service_revisions=tuple(self.context.service_revisions.of(service)),
            alarms=readings,
            hook_replies=replies,
        )

    def _resolve(self, namespace: str, service: Service) -> ResolvedRevision:
        """What the Service's taskDefinition resolves to for a new deployment."""
        reader = self.context.revision_reader
        return reader.resolve(namespace, service.spec.task_definition, for_new_task=True)

    def _health_checked(self, namespace: str, tasks: Iterable[Task]) -> frozenset[str]:
        spec_of = self.context.revision_reader.spec
        return service_planning.health_checked(tasks, lambda r: spec_of(namespace, r))

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

    def _trim(
        self, key: Key, tasks: Iterable[Task], stopped: Iterable[Task]
    ) -> list[Awaitable[None]]:
        """The deletions of the `stopped` tasks not already deleted by an earlier reconcile
        (whose watch event has not come yet); `tasks` are the Service's tasks as cached."""
        deleting = self._deleting.setdefault(key, set())
        deleting &= {t.metadata.uid for t in tasks if t.metadata.uid}
        return [
            self._delete_task(key[0], task, deleting)
            for task in stopped
            if task.metadata.uid not in deleting
        ]

    async def _delete_task(self, namespace: str, task: Task, deleting: set[str]) -> None:
        uid = task.metadata.uid
        deleting.add(uid or "")
        try:
            await self.context.api.delete(TASKS, namespace, task.metadata.name, uid=uid)
        except BaseException:
            deleting.discard(uid or "")  # the next plan deletes it again
            raise

    async def _write_status(self, body: Mapping[str, Any], status: ServiceStatus) -> None:
        # Deleted meanwhile (None), its DELETED event ends the story.
        await self.context.api.write_status(
            SERVICES, body, status.model_dump(mode="json", by_alias=True, exclude_none=True)
        )
