"""Tasks: read the caches, plan with `core.task_planning`, apply the plan.

The plan is applied status first (so a crash between the two never mistakes our own pod
deletion for someone else's), then pod creation or deletion, then events.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ecs_operator.controllers.cache import Key, owner_name
from ecs_operator.controllers.context import NODE_INDEX, OperatorContext
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.workqueue import WorkQueue
from ecs_operator.core import events
from ecs_operator.core.capacity import cluster_instances
from ecs_operator.core.launches import is_controlled_by
from ecs_operator.core.ownership import owned_by
from ecs_operator.core.placement import ContainerInstance
from ecs_operator.core.render import RenderedPod
from ecs_operator.core.task_planning import (
    Launched,
    LaunchOutcome,
    NotLaunched,
    PodLaunch,
    TaskPlan,
    TaskState,
    place_pod,
    plan_task,
    revision_reference,
    secret_failure,
)
from ecs_operator.core.validation import unreadable_task_status
from ecs_operator.kube.client import PODS, SECRETS, SERVICE_ACCOUNTS, TASKS, KubeError
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.service import Service, ServiceSpec
from ecs_operator.models.task import Task
from ecs_operator.models.taskdefinition import parse_task_definition_ref

# The API refuses such a Pod for good (Pod Security Admission, an invalid field): the task fails.
POD_REFUSED_CODES = (400, 403, 422)


class TaskController:
    def __init__(
        self, context: OperatorContext, events: EventRecorder, metrics: OperatorMetrics
    ) -> None:
        self.context = context
        self.events = events
        self.metrics = metrics
        self.rng = random.Random()
        self._launched_at: dict[Key, float] = {}  # when this operator created a task's Pod
        self.started_at = datetime.now(UTC)
        self.queue: WorkQueue[Key] = WorkQueue(
            "tasks",
            self.reconcile,
            workers=context.options.workers,
            observe=metrics.observe_reconcile,
        )

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def enqueue_waiting(self, namespace: str, family: str) -> None:
        """Wake the tasks of `namespace` still waiting for a revision of `family`."""
        for task in self.context.tasks.in_namespace(namespace):
            if (task.get("status") or {}).get("taskDefinitionArn"):
                continue
            try:
                wanted, _ = parse_task_definition_ref(task["spec"]["taskDefinition"])
            except (KeyError, ValueError):
                continue
            if wanted == family:
                self.queue.add((namespace, task["metadata"]["name"]))

    def start(self) -> None:
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()

    async def reconcile(self, key: Key) -> None:
        body = self.context.tasks.get(key)
        if body is None:
            self._launched_at.pop(key, None)
            return  # deleted: ownerReference garbage collection removes its Pod
        try:
            task = self.context.tasks.parsed(body, Task)
        except ValidationError as error:
            await self._refuse_unreadable(body, error)
            return
        state = self._state(key, body, task)
        plan = plan_task(state)
        if plan.launch is not None:
            plan = plan_task(replace(state, launched=await self._launch(key, body, plan.launch)))
        await self._apply(key, body, plan)

    def _state(self, key: Key, body: dict[str, Any], task: Task) -> TaskState:
        namespace, pod, service = key[0], self.context.pods.get(key), owner_name(body, "Service")
        launched = self._launched_at.get(key)
        reference, new = revision_reference(body, task, pod, service)
        service_spec = self._service_spec(body, service)
        balanced = service_spec is not None and bool(service_spec.load_balancers)
        return TaskState(
            body=body,
            task=task,
            resolved=self.context.revision_reader.resolve(namespace, reference, for_new_task=new),
            policy=self.context.security_policy(namespace),
            now=datetime.now(UTC),
            operator_started_at=self.started_at,
            resolve_grace_seconds=self.context.options.resolve_grace_seconds,
            pod=pod,
            node=self._node_of(pod),
            pod_tombstone=self.context.pods.tombstone(key),
            service=service,
            service_spec=service_spec,
            load_balancers=self.context.load_balancers_in(namespace) if balanced else {},
            namespace_seen=self.context.namespaces.get(("", namespace)) is not None,
            since_launch=time.monotonic() - launched if launched is not None else None,
        )

    def _service_spec(self, body: dict[str, Any], service: str | None) -> ServiceSpec | None:
        found = self.context.services.get((body["metadata"]["namespace"], service or ""))
        if found is None or not owned_by(body, found):
            return None  # not a service task, or one with a forged ownerReference
        try:
            return self.context.services.parsed(found, Service).spec
        except ValidationError:
            return None

    def _node_of(self, pod: dict[str, Any] | None) -> dict[str, Any] | None:
        node_name = (pod or {}).get("spec", {}).get("nodeName")
        return self.context.nodes.get(("", node_name)) if node_name else None

    async def _apply(self, key: Key, body: dict[str, Any], plan: TaskPlan) -> None:
        if plan.delete_task:
            await self.context.kube.delete(TASKS, key[0], key[1], uid=body["metadata"]["uid"])
            return
        if plan.status is not None:
            status = plan.status.model_dump(mode="json", by_alias=True, exclude_none=True)
            updated = await self.context.kube.write_status(TASKS, body, status)
            if updated is None:
                return  # deleted meanwhile: garbage collection removes its Pod
            self.context.tasks.record("MODIFIED", updated)
        if (pod := plan.delete_pod) is not None:
            await self.context.kube.delete(PODS, *key, grace_seconds=pod.grace_seconds, uid=pod.uid)
        for event in plan.events:
            await self.events.record(body, event.type, event.reason, event.message)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)

    async def _launch(self, key: Key, body: dict[str, Any], launch: PodLaunch) -> LaunchOutcome:
        """Check that what the Pod needs exists, then place it and create it."""
        for reference in launch.secrets:
            secret = await self.context.kube.get(SECRETS, key[0], reference.secret)
            missing = secret_failure(key[0], reference, secret)
            if missing is not None:
                return missing
        account = None
        if launch.service_account is not None:
            account = await self.context.kube.get(SERVICE_ACCOUNTS, key[0], launch.service_account)
        pod = place_pod(launch, account, self._instances(key[0], launch.placed_node), self.rng)
        if isinstance(pod, NotLaunched):
            if pod.placement_failure is not None:
                self.metrics.placement_failures.labels(pod.placement_failure).inc()
            return pod
        return await self._create(key, body, pod)

    def _instances(self, namespace: str, placed: str | None) -> list[ContainerInstance]:
        """Where the task may go: only the node its Service placed it on, if any (the task still
        checks it fits; only that node's pods count, so a scale-out rescans no other pods)."""
        if placed is None:
            return self.context.container_instances(namespace)
        node = self.context.nodes.get(("", placed))
        pods = self.context.pods.indexed(NODE_INDEX, placed)
        found = cluster_instances([node] if node else [], pods, self.context.footprints)
        return [instance.in_cluster(namespace) for instance in found]

    async def _create(self, key: Key, body: dict[str, Any], pod: RenderedPod) -> LaunchOutcome:
        # Count the pod in the cache before awaiting its creation: a task placed meanwhile
        # must see this one (distinctInstance, spread, remaining resources).
        self.context.pods.record("ADDED", pod.manifest)
        try:
            found, created = await self.context.kube.create_or_get(PODS, key[0], pod.manifest)
        except BaseException as error:
            self.context.pods.record("DELETED", pod.manifest)
            if isinstance(error, KubeError) and error.code in POD_REFUSED_CODES:
                return NotLaunched(events.pod_refused(error.message))
            raise
        self.context.pods.record("ADDED", found)
        if not created and not is_controlled_by(found, body["metadata"]["uid"]):
            # Someone else's Pod holds the name: a conflict, never taken for our launch. One
            # still stopping (a previous Task's of the same name) is waited for by the retry.
            if found["metadata"].get("deletionTimestamp"):
                raise KubeError(409, "AlreadyExists", f"a previous pod {key[1]} is still stopping")
            return NotLaunched(events.pod_name_taken(key[1]))
        self._launched_at[key] = time.monotonic()
        launched = self.context.pods.get(key)
        return Launched(launched, self._node_of(launched), pod.unsupported)

    async def _refuse_unreadable(self, body: dict[str, Any], error: ValidationError) -> None:
        """A Task the CRD admitted but the operator cannot read (a stricter rule, or a CRD of
        another version): say so once, in status and an event, and never launch it."""
        metadata = body["metadata"]
        generation = int(metadata.get("generation") or 1)
        status = unreadable_task_status(body.get("status"), error, generation, datetime.now(UTC))
        if status is None:
            return
        await self.context.kube.patch(
            TASKS, metadata["namespace"], metadata["name"], {"status": status}, subresource="status"
        )
        reason = status["stoppedReason"]
        await self.events.record(body, "Warning", events.REASON_FAILED_TO_START, reason)
