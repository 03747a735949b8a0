"""TaskDefinition families: register revisions, deactivate and collect them, report status."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from ecs_operator.controllers.cache import Key
from ecs_operator.controllers.context import OperatorContext
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.triggers import Change, Trigger, itself
from ecs_operator.controllers.workqueue import WorkQueue
from ecs_operator.core import events, revisions
from ecs_operator.core.registration import RegistrationPlan, plan_registration
from ecs_operator.kube.client import CONTROLLER_REVISIONS, NAMESPACES, TASK_DEFINITIONS, KubeError
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.taskdefinition import (
    format_task_definition_ref,
    parse_task_definition_ref,
)


def _revision_family(change: Change, _context: OperatorContext) -> Iterable[Key]:
    family = revisions.annotated_family(change.body)
    return [(change.namespace, family)] if family else []


def _policy_changed(change: Change, context: OperatorContext) -> Iterable[Key]:
    """Which families are accepted in a namespace depends on what it allows (running tasks keep
    their Pods, as Pod Security Admission keeps running Pods)."""
    if not change.differs(context.security_policy_of):
        return []
    namespace = change.key[1]
    return [
        (namespace, body["metadata"]["name"])
        for body in context.task_definitions.in_namespace(namespace)
    ]


class TaskDefinitionController:
    TRIGGERS: ClassVar[tuple[Trigger, ...]] = (
        Trigger(TASK_DEFINITIONS, itself),
        Trigger(CONTROLLER_REVISIONS, _revision_family),
        Trigger(NAMESPACES, _policy_changed),
    )

    def __init__(
        self, context: OperatorContext, events: EventRecorder, metrics: OperatorMetrics
    ) -> None:
        self.context = context
        self.events = events
        self.queue: WorkQueue[Key] = WorkQueue(
            "taskdefinitions", self.reconcile, workers=2, observe=metrics.observe_reconcile
        )
        # Per family: revision numbers whose ControllerRevision name an object this operator
        # did not write holds (learnt from a create's 409; skipped).
        self._taken: dict[Key, set[int]] = {}

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def start(self) -> None:
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()

    def referenced_revisions(self, namespace: str, family: str) -> set[int]:
        referenced = set()
        for task in self.context.tasks.in_namespace(namespace):
            resolved = (task.get("status") or {}).get("taskDefinitionArn")
            if not resolved:
                continue
            task_family, number = parse_task_definition_ref(resolved)
            if task_family == family and number is not None:
                referenced.add(number)
        return referenced

    def _plan(self, key: Key) -> RegistrationPlan:
        namespace, family = key
        return plan_registration(
            self.context.task_definitions.get(key),
            self.context.revision_reader.family(namespace, family),
            self.referenced_revisions(namespace, family),
            self.context.security_policy(namespace),
            datetime.now(UTC),
            self._taken.get(key, ()),
        )

    async def reconcile(self, key: Key) -> None:
        namespace, family = key
        body = self.context.task_definitions.get(key)
        if body is None:
            self._taken.pop(key, None)
        plan = self._plan(key)
        api = self.context.api
        if plan.register is not None:
            try:
                await api.create(CONTROLLER_REVISIONS, namespace, plan.register)
            except KubeError as error:
                if error.conflict:
                    await self._name_taken(key, body, plan.register)
                    return
                raise
            # Plan again from the stored revision, so status carries its real registration
            # time at once (one status write per registration, not a second to correct it).
            plan = replace(self._plan(key), events=plan.events)
        for number in plan.deactivate:
            name = revisions.controller_revision_name(family, number)
            await self._patch_revision(namespace, name, revisions.status_patch("INACTIVE"))
        for number in plan.collect:
            name = revisions.controller_revision_name(family, number)
            await api.delete(CONTROLLER_REVISIONS, namespace, name)
        if body is not None and plan.status is not None:
            written = await api.write_status(TASK_DEFINITIONS, body, plan.status)
            if written is None:
                return  # deleted meanwhile: its DELETED event reconciles the family again
        for type_, reason, message in plan.events:
            if body is not None:
                await self.events.record(body, type_, reason, message)

    async def _name_taken(
        self, key: Key, body: dict[str, Any] | None, manifest: dict[str, Any]
    ) -> None:
        """The revision's name is held: by our own revision the watch has not shown yet (cache
        it and plan again: never guess a number), or by an object we did not write (its number
        is skipped, once said in an event)."""
        namespace, family = key
        name = manifest["metadata"]["name"]
        holder = await self.context.api.get(CONTROLLER_REVISIONS, namespace, name)
        if holder is None:
            self.queue.add_after(key, 0.2)  # deleted meanwhile: try the name again
            return
        if not revisions.is_family_revision(holder, family):
            self._taken.setdefault(key, set()).add(int(manifest["revision"]))
            if body is not None:
                reference = format_task_definition_ref(family, int(manifest["revision"]))
                message = events.revision_name_taken(reference, name)
                await self.events.record(
                    body, "Warning", events.REASON_REVISION_NAME_TAKEN, message
                )
        self.queue.add(key)

    async def _patch_revision(self, namespace: str, name: str, patch: dict[str, object]) -> None:
        try:
            await self.context.api.patch(CONTROLLER_REVISIONS, namespace, name, patch)
        except KubeError as error:
            if not error.not_found:
                raise
