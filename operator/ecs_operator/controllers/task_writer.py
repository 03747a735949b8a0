"""The Task controller's writes other than launching a Pod (`pod_launcher`): stopping a Pod,
the drain finalizer, the other Tasks of a run, and the refusal of an unreadable Task. Each
write is guarded by the object's uid, and a conflict plans the task again."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ecs_operator.controllers.cache import Key
from ecs_operator.controllers.context import OperatorContext
from ecs_operator.controllers.workqueue import WorkQueue
from ecs_operator.core import events, labels
from ecs_operator.core.task_planning import PodStop, RunLaunch
from ecs_operator.core.validation import unreadable_task_status
from ecs_operator.kube.client import PODS, TASKS, KubeError
from ecs_operator.kube.events import EventRecorder

STOP_RETRY_SECONDS = 1.0
"""When to plan again a task whose Pod stop was refused as a conflict."""


class TaskWriter:
    def __init__(
        self, context: OperatorContext, events: EventRecorder, queue: WorkQueue[Key]
    ) -> None:
        self.context = context
        self.events = events
        self.queue = queue
        self._stopped_at: dict[Key, float] = {}  # when this operator first stopped a task's Pod

    def since_stop(self, key: Key) -> float | None:
        """Seconds since this operator first stopped the task's Pod (None: it did not)."""
        stopped = self._stopped_at.get(key)
        return time.monotonic() - stopped if stopped is not None else None

    def forget(self, key: Key) -> None:
        """The Task is gone."""
        self._stopped_at.pop(key, None)

    async def launch_run(self, key: Key, body: dict[str, Any], run: RunLaunch) -> None:
        """Label the first Task of a run, then create the run's other Tasks. Their names are
        fixed, so a create repeated (a lost response, a restart) is refused as 409 and the
        holder cached; the next plan, at once, judges it and records the run once all exist."""
        if run.label is not None:
            # The uid makes the patch apply to this Task only, never to one of the same name
            # created meanwhile.
            patch = {
                "metadata": {
                    "uid": body["metadata"]["uid"],
                    "labels": {labels.RUN_LABEL: run.label},
                }
            }
            try:
                await self.context.api.patch(TASKS, *key, patch)
            except KubeError as error:
                if not (error.not_found or error.conflict or error.code == 422):
                    raise
                return  # gone or replaced meanwhile: its watch event plans it again
        for manifest in run.create:
            await self.context.api.create_or_get(TASKS, key[0], manifest)
        if run.create:
            self.queue.add(key)

    async def set_drain_finalizer(self, body: dict[str, Any], present: bool) -> None:
        """Removing it from a deleted task deletes it: garbage collection then deletes its Pod
        (already stopping, its targets drained)."""
        try:
            await self.context.api.set_finalizer(
                TASKS, body, labels.DRAIN_FINALIZER, present=present
            )
        except KubeError as error:
            if not error.conflict:
                raise
            # Changed meanwhile (garbage collection deleting it, say): that change's watch
            # event plans the task again.

    async def stop_pod(self, key: Key, stop: PodStop) -> None:
        """Stop the task's containers and keep its Pod (its logs): the kubelet enforces the
        Pod's activeDeadlineSeconds by stopping every container within the Pod's grace period,
        and leaves it Failed. A Pod no kubelet will end is deleted instead."""
        self._stopped_at.setdefault(key, time.monotonic())
        if stop.delete:
            await self.context.api.delete(
                PODS, *key, grace_seconds=stop.grace_seconds, uid=stop.uid
            )
            return
        # The uid makes the patch apply to this Pod only: it is immutable, so a Pod of the same
        # name created meanwhile is refused (422, or 409 as a failed precondition) rather than
        # stopped.
        patch = {
            "metadata": {"uid": stop.uid},
            "spec": {"activeDeadlineSeconds": stop.deadline_seconds},
        }
        try:
            await self.context.api.patch(PODS, *key, patch)
        except KubeError as error:
            if error.not_found:
                return  # gone meanwhile: its deletion plans this task again
            if not (error.conflict or error.code == 422):
                raise
            # Replaced meanwhile (or a refusal that says nothing more): plan again from what
            # the cache then holds; a Pod that is not this task's is never stopped.
            self.queue.add_after(key, STOP_RETRY_SECONDS)

    async def refuse_unreadable(self, body: dict[str, Any], error: ValidationError) -> None:
        """A Task the CRD admitted but the operator cannot read (a stricter rule, or a CRD of
        another version): say so once, in status and an event, and never launch it."""
        metadata = body["metadata"]
        generation = int(metadata.get("generation") or 1)
        status = unreadable_task_status(body.get("status"), error, generation, datetime.now(UTC))
        if status is None:
            return
        await self.context.api.patch(
            TASKS, metadata["namespace"], metadata["name"], {"status": status}, subresource="status"
        )
        reason = status["stoppedReason"]
        await self.events.record(body, "Warning", events.REASON_FAILED_TO_START, reason)
