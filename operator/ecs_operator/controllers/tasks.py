"""Tasks: read the caches, plan with `core.task_planning`, apply the plan.

The plan is applied status first (so a crash between the two never mistakes our own pod
stop for someone else's), then pod creation or stop, then the other tasks of a run (RunTask's
count), then events. A stopped task keeps its
Pod, terminated, until the Task is deleted (``lifecycle``: the Pod outlives the stop).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import ValidationError

from ecs_operator.controllers.cache import Key, object_key
from ecs_operator.controllers.context import OperatorContext
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.pod_launcher import PodLauncher
from ecs_operator.controllers.task_writer import TaskWriter
from ecs_operator.controllers.triggers import Change, Trigger, itself, owner
from ecs_operator.controllers.workqueue import WorkQueue
from ecs_operator.core import launches, revisions
from ecs_operator.core.load_balancing import moved_targets
from ecs_operator.core.ownership import owned_by, service_of_task
from ecs_operator.core.task_planning import (
    NamespaceReads,
    PodReads,
    ServiceReads,
    TaskPlan,
    TaskState,
    Timing,
    drain_released_unreadable,
    looks_up_targets,
    namespace_reads,
    plan_task,
    revision_reference,
    task_state,
    waits_for_family,
)
from ecs_operator.kube.client import (
    CONTROLLER_REVISIONS,
    LOAD_BALANCERS,
    PODS,
    TASK_DEFINITIONS,
    TASKS,
)
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.service import Service, ServiceSpec
from ecs_operator.models.task import Task


def _targets_moved(change: Change, _context: OperatorContext) -> Iterable[Key]:
    after = None if change.type == "DELETED" else change.body
    return [(change.namespace, task) for task in moved_targets(change.before, after)]


def _waiting_for_revision(change: Change, context: OperatorContext) -> Iterable[Key]:
    if change.resource == CONTROLLER_REVISIONS:
        family = revisions.annotated_family(change.body)
    else:
        family = change.key[1]
    tasks = context.tasks.in_namespace(change.namespace) if family else ()
    return [object_key(task) for task in tasks if waits_for_family(task, family or "")]


class TaskController:
    TRIGGERS: ClassVar[tuple[Trigger, ...]] = (
        Trigger(TASKS, itself),
        Trigger(TASKS, owner("Task")),  # a task of a run wakes its first Task
        Trigger(PODS, owner("Task")),
        Trigger(LOAD_BALANCERS, _targets_moved),
        Trigger(TASK_DEFINITIONS, _waiting_for_revision),
        Trigger(CONTROLLER_REVISIONS, _waiting_for_revision),
    )

    def __init__(
        self, context: OperatorContext, events: EventRecorder, metrics: OperatorMetrics
    ) -> None:
        self.context = context
        self.events = events
        self.launcher = PodLauncher(context, metrics)
        self.started_at = datetime.now(UTC)
        self.queue: WorkQueue[Key] = WorkQueue(
            "tasks",
            self.reconcile,
            workers=context.options.workers,
            observe=metrics.observe_reconcile,
        )
        self.writer = TaskWriter(context, events, self.queue)

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def start(self) -> None:
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()

    async def reconcile(self, key: Key) -> None:
        body = self.context.tasks.get(key)
        if body is None:
            self.launcher.forget(key)
            self.writer.forget(key)
            return  # deleted: ownerReference garbage collection removes its Pod
        try:
            task = self.context.tasks.parsed(body, Task)
        except ValidationError as error:
            await self.writer.refuse_unreadable(body, error)
            if drain_released_unreadable(body):
                await self.writer.set_drain_finalizer(body, False)
            return
        state = self._state(key, body, task)
        plan = plan_task(state)
        if plan.launch is not None:
            launched = await self.launcher.launch(key, body, plan.launch)
            plan = plan_task(replace(state, launched=launched))
        await self._apply(key, body, plan)

    def _state(self, key: Key, body: dict[str, Any], task: Task) -> TaskState:
        """What the plan decides from, as the caches have it now."""
        namespace = key[0]
        pod, service = self._pod_reads(key), self._service_reads(namespace, body, task)
        reference, new = revision_reference(body, task, pod.pod, service.name)
        resolved = self.context.revision_reader.resolve(namespace, reference, for_new_task=new)
        seen, members = self._namespace_reads(namespace), self._run_members(key, task)
        return task_state(body, task, resolved, pod, service, seen, members, self._timing())

    def _timing(self) -> Timing:
        grace = self.context.options.resolve_grace_seconds
        return Timing(datetime.now(UTC), self.started_at, grace)

    def _pod_reads(self, key: Key) -> PodReads:
        pod = self.context.pods.get(key)
        return PodReads(
            pod,
            self.context.node_of(pod),
            self.context.pods.tombstone(key),
            self.launcher.since_launch(key),
            self.writer.since_stop(key),
        )

    def _service_reads(self, namespace: str, body: dict[str, Any], task: Task) -> ServiceReads:
        """Its Service (``service_of_task``), read only when it truly owns the task; the
        namespace's LoadBalancers only when its targets are looked up."""
        name = service_of_task(body)
        owner = self.context.services.get((namespace, name or ""))
        if owner is not None and not owned_by(body, owner):
            owner = None  # not a service task, or one with a forged ownerReference
        spec = self._service_spec(task, owner)
        lbs = self.context.load_balancers_in(namespace) if looks_up_targets(body, spec) else {}
        return ServiceReads(name, spec, name is not None and owner is None, lbs)

    def _namespace_reads(self, namespace: str) -> NamespaceReads:
        body = self.context.namespaces.get(("", namespace))
        return namespace_reads(body, self.context.security_policy(namespace))

    def _run_members(self, key: Key, task: Task) -> dict[str, dict[str, Any] | None]:
        """The Task cached under each other name of its run (count above 1)."""
        names = launches.run_task_names(key[1], task.spec.count)
        return {name: self.context.tasks.get((key[0], name)) for _, name in names}

    def _service_spec(self, task: Task, owner: dict[str, Any] | None) -> ServiceSpec | None:
        """The settings of the task's own service revision (the deployment that started it)."""
        if owner is None:
            return None
        try:
            service = self.context.services.parsed(owner, Service)
        except ValidationError:
            return None
        return self.context.service_revisions.task_spec(service, task.spec.started_by)

    async def _apply(self, key: Key, body: dict[str, Any], plan: TaskPlan) -> None:
        if plan.delete_task:
            await self.context.api.delete(TASKS, key[0], key[1], uid=body["metadata"]["uid"])
            return
        if plan.status is not None:
            status = plan.status.model_dump(mode="json", by_alias=True, exclude_none=True)
            written = await self.context.api.write_status(TASKS, body, status)
            if written is None:
                return  # deleted meanwhile: garbage collection removes its Pod
            body = written
        if (stop := plan.stop_pod) is not None:
            await self.writer.stop_pod(key, stop)
        if plan.drain_finalizer is not None:
            await self.writer.set_drain_finalizer(body, plan.drain_finalizer)
        if plan.run is not None:
            await self.writer.launch_run(key, body, plan.run)
        for event in plan.events:
            await self.events.record(body, event.type, event.reason, event.message)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)
