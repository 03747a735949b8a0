"""Tasks: resolve the revision once, place and launch one Pod, mirror it as ECS task status.

Every decision is made in `core` (lifecycle, placement, render, validation); this module reads
the caches, calls it, and applies the result: status first (so a crash between the two never
mistakes our own pod deletion for someone else's), then pod creation or deletion, then events.
"""

from __future__ import annotations

import logging
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
from ecs_operator.core import events as ecs_events
from ecs_operator.core import labels, placement
from ecs_operator.core.capacity import cluster_instances, reservation, task_requirements
from ecs_operator.core.events import pod_name_taken
from ecs_operator.core.launches import is_controlled_by
from ecs_operator.core.lifecycle import (
    Event,
    Observation,
    StopPod,
    TaskView,
    expires_at,
    is_expired,
    is_on_lost_node,
    observe,
)
from ecs_operator.core.load_balancing import (
    awaiting_registration,
    readiness_probe,
    task_deregistering,
)
from ecs_operator.core.ownership import owned_by
from ecs_operator.core.placement import ZONE_LABEL
from ecs_operator.core.registration import MAX_UNSUPPORTED, accepted_condition, unsupported_text
from ecs_operator.core.render import (
    ResolvedTaskDefinition,
    effective_spec,
    render_pod,
    secret_references,
    service_account_name,
)
from ecs_operator.core.revisions import (
    RevisionRecord,
    is_new_reference,
    resolve_reference,
)
from ecs_operator.core.validation import task_problems, unreadable_task_status
from ecs_operator.kube.client import PODS, SECRETS, SERVICE_ACCOUNTS, TASKS, KubeError
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.common import UnsupportedField
from ecs_operator.models.service import Service, ServiceSpec
from ecs_operator.models.task import StopCode, Task, TaskStatus
from ecs_operator.models.taskdefinition import TaskDefinitionSpec, parse_task_definition_ref

logger = logging.getLogger(__name__)

PROGRESS_STATES = ("PROVISIONING", "PENDING")
# How long after a launch a progress-only status write may wait for the Pod to run.
PROGRESS_WRITE_WINDOW_SECONDS = 0.5


class TaskController:
    def __init__(
        self, context: OperatorContext, events: EventRecorder, metrics: OperatorMetrics
    ) -> None:
        self.context = context
        self.events = events
        self.metrics = metrics
        self.rng = random.Random()
        self._launched_at: dict[Key, float] = {}  # monotonic launch times, for _defer_progress
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
            return  # deleted: ownerReference garbage collection removes its Pod
        now = datetime.now(UTC)
        try:
            task = self.context.tasks.parsed(body, Task)
        except ValidationError as error:
            await self._refuse_unreadable(body, error)
            return
        if task.status and is_expired(task.status, now, task.spec.ttl_seconds_after_stopped):
            await self.context.kube.delete(TASKS, key[0], key[1], uid=body["metadata"]["uid"])
            return
        pod = self.context.pods.get(key)
        if pod is not None and not owned_by(pod, body):
            if pod["metadata"].get("deletionTimestamp"):
                self.queue.add_after(key, 0.5)  # a previous Task's pod is still stopping
                return
            pod = None
            failure = pod_name_taken(key[1])
        else:
            failure = None
        record, resolve_error = self._resolve(
            task, pod, launched_by_service=owner_name(body, "Service") is not None
        )
        waiting = False
        if record is None and failure is None:
            waiting = self._within_resolve_grace(task, now)
            if not waiting:
                failure = f"ClientException: {resolve_error}"
        spec = TaskDefinitionSpec.model_validate(record.spec) if record else None
        containers = effective_spec(spec, task.spec.overrides).container_definitions if spec else []
        node = self._node_of(pod)
        view = replace(
            TaskView.of(task, containers, now),
            requested_stop_code=_requested_stop_code(task),
            status=self._identity(task, body, record, spec),
            start_failure=failure,
            node_lost=pod is not None and is_on_lost_node(pod, node),
            availability_zone=_zone(node),
        )
        view = self._with_load_balancing(task, body, view, now)
        observation = observe(view, pod, now)
        if pod is None:
            observation = self._with_final_pod_state(key, body, view, observation, now)
        if observation.wants_pod and not waiting and record is not None and spec is not None:
            if self._namespace_unseen(key[0], task, now):
                self.queue.add_after(key, 0.2)
                return
            launch_failure, unsupported = await self._launch(task, body, record, spec)
            if launch_failure is not None:
                observation = observe(replace(view, start_failure=launch_failure), None, now)
            else:
                # Report the new Pod straight away (PENDING) instead of PROVISIONING first:
                # one status write fewer per task launched. Its watch events may already
                # have arrived (bound, even running): its zone is that of the node it is on.
                launched = self.context.pods.get(key)
                zone = _zone(self._node_of(launched))
                observation = observe(replace(view, availability_zone=zone), launched, now)
                observation = _with_unsupported(observation, unsupported)
        if self._defer_progress(key, task, observation):
            self.queue.add_after(key, PROGRESS_WRITE_WINDOW_SECONDS)
            return
        if not await self._write_status(body, task.status, observation.status):
            return  # deleted meanwhile: garbage collection removes its Pod
        await self._act(key, body, pod, observation)
        self._schedule_follow_up(
            key, task, observation.status, observation.recheck_after_seconds, waiting, now
        )

    def _defer_progress(self, key: Key, task: Task, observation: Observation) -> bool:
        """Whether to hold back a status write that only reports progress (PROVISIONING or
        PENDING) of a task launched moments ago: its Pod usually runs within the window, and
        RUNNING is then the one write. Warnings and actions are never held back; after the
        window a slow Pod shows PENDING as usual."""
        launched = self._launched_at.get(key)
        if launched is None:
            return False
        if time.monotonic() - launched > PROGRESS_WRITE_WINDOW_SECONDS:
            del self._launched_at[key]
            return False
        before = task.status.last_status if task.status else None
        return (
            observation.status.last_status in PROGRESS_STATES
            and before in (None, *PROGRESS_STATES)
            and not observation.actions
            and all(event.type == "Normal" for event in observation.events)
        )

    def _service_spec(self, body: dict[str, Any]) -> ServiceSpec | None:
        service = owner_name(body, "Service")
        found = self.context.services.get((body["metadata"]["namespace"], service or ""))
        if found is None or not owned_by(body, found):
            return None  # not a service task, or one with a forged ownerReference
        try:
            return self.context.services.parsed(found, Service).spec
        except ValidationError:
            return None

    def _with_load_balancing(
        self, task: Task, body: dict[str, Any], view: TaskView, now: datetime
    ) -> TaskView:
        """A load-balanced service task is ACTIVATING until its targets are registered and
        DEACTIVATING, once its stop is decided, until they have drained (ECS §2.3): the Pod is
        stopped only then. A forced stop (its node is lost) does not wait."""
        spec = self._service_spec(body)
        if spec is None or not spec.load_balancers:
            return view
        load_balancers = self.context.load_balancers_in(task.metadata.namespace or "")
        stopping = task.spec.desired_status == "STOPPED"
        forced = _requested_stop_code(task) == "TerminationNotice"
        return replace(
            view,
            activating=not stopping
            and awaiting_registration(task.metadata.name, spec, load_balancers),
            deactivating=stopping
            and not forced
            and task_deregistering(task.metadata.name, load_balancers.values(), now),
        )

    def _readiness_probes(self, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The health checks of the LoadBalancers a service task is registered with, as the
        readiness probes of the containers they target."""
        spec = self._service_spec(body)
        if spec is None:
            return {}
        load_balancers = self.context.load_balancers_in(body["metadata"]["namespace"])
        probes = {}
        for entry in spec.load_balancers or ():
            lb = load_balancers.get(entry.load_balancer_name)
            if lb is not None:
                probes[entry.container_name] = readiness_probe(lb.spec, entry.container_port)
        return probes

    def _with_final_pod_state(
        self,
        key: Key,
        body: dict[str, Any],
        view: TaskView,
        observation: Observation,
        now: datetime,
    ) -> Observation:
        """When the Pod is already gone, first read how it ended (its deleted body): the
        watch may deliver its last update and its deletion before this reconcile runs, and the
        containers' final exit codes must not be lost with it."""
        last = self.context.pods.tombstone(key)
        already_stopped = view.status is not None and view.status.last_status == "STOPPED"
        if last is None or already_stopped or not owned_by(last, body):
            return observation
        if not last["metadata"].get("uid"):
            # Only the Pod we were creating, withdrawn from the cache when its create failed
            # with an unknown outcome: no sign that a Pod ran. The next launch finds out.
            return observation
        ending = observe(view, last, now)
        final = observe(replace(view, status=ending.status), None, now)
        return replace(final, events=ending.events + final.events, actions=final.actions)

    async def _act(
        self,
        key: Key,
        body: dict[str, Any],
        pod: dict[str, Any] | None,
        observation: Observation,
    ) -> None:
        """Carry out what the observation asks (after its status is written) and post its
        events."""
        for action in observation.actions:
            if isinstance(action, StopPod) and pod is not None:
                await self.context.kube.delete(
                    PODS,
                    key[0],
                    key[1],
                    grace_seconds=action.grace_seconds,
                    uid=pod["metadata"]["uid"],
                )
        service_task = owner_name(body, "Service") is not None
        for event in observation.events:
            # A service reports its tasks' starts and stops in its own (ECS) events; its
            # tasks post only their warnings, which keeps a scale-out to a few writes a task.
            if not (service_task and event.type == "Normal"):
                await self.events.record(body, event.type, event.reason, event.message)

    def _schedule_follow_up(
        self,
        key: Key,
        task: Task,
        status: TaskStatus,
        recheck: float | None,
        waiting: bool,
        now: datetime,
    ) -> None:
        if waiting:
            self.queue.add_after(key, 1.0)
        if recheck is not None:
            self.queue.add_after(key, recheck)
        expiry = expires_at(status, task.spec.ttl_seconds_after_stopped)
        if expiry is not None:
            delay = (expiry - now).total_seconds()
            if delay <= 0:
                self.queue.add_after(key, 0)  # expired: the next pass deletes it
            else:
                self.queue.add_after(key, delay)

    async def _write_status(
        self, body: dict[str, Any], previous: TaskStatus | None, status: TaskStatus
    ) -> bool:
        """Write the status if it changed; False when the Task no longer exists."""
        if previous == status:
            return True
        updated = await self.context.kube.write_status(
            TASKS, body, status.model_dump(mode="json", by_alias=True, exclude_none=True)
        )
        if updated is None:
            return False
        self.context.tasks.record("MODIFIED", updated)
        return True

    def _node_of(self, pod: dict[str, Any] | None) -> dict[str, Any] | None:
        node_name = (pod or {}).get("spec", {}).get("nodeName")
        return self.context.nodes.get(("", node_name)) if node_name else None

    def _resolve(
        self, task: Task, pod: dict[str, Any] | None, *, launched_by_service: bool
    ) -> tuple[RevisionRecord | None, str | None]:
        """The revision the task runs: resolved once, then read back from status (or the
        Pod's annotation, should the operator have stopped between launch and status write)."""
        namespace = task.metadata.namespace or ""
        pod_annotations = (pod or {}).get("metadata", {}).get("annotations") or {}
        resolved = (task.status.task_definition_arn if task.status else None) or (
            pod_annotations.get(labels.TASK_DEFINITION_ANNOTATION)
        )
        reference = resolved or task.spec.task_definition
        try:
            family, _ = parse_task_definition_ref(reference)
        except ValueError as error:
            return None, str(error)
        live = self.context.task_definitions.get((namespace, family))
        resolution = resolve_reference(
            reference,
            [stored.record for stored in self.context.family_revisions(namespace, family)],
            live["metadata"]["uid"] if live else None,
            for_new_task=is_new_reference(resolved, launched_by_service),
        )
        if resolution.record is None and live is not None:
            accepted = accepted_condition(live.get("status"))
            if accepted is not None and accepted.status == "False":
                return None, f'task definition "{family}" is not accepted: {accepted.message}'
        return resolution.record, resolution.error

    def _namespace_unseen(self, namespace: str, task: Task, now: datetime) -> bool:
        """Whether to wait for the task's namespace to reach the cache before launching: its
        labels decide what the task may do (a namespace and a Task applied together may have
        their watch events arrive in either order). Not beyond the resolve grace."""
        unseen = self.context.namespaces.get(("", namespace)) is None
        return unseen and self._within_resolve_grace(task, now)

    def _within_resolve_grace(self, task: Task, now: datetime) -> bool:
        """The grace runs from the task's creation, or from this operator's start if later:
        a restarted operator gives its caches the same time to fill."""
        created = (task.metadata.model_extra or {}).get("creationTimestamp")
        if not created:
            return True
        since = max(datetime.fromisoformat(created), self.started_at)
        return (now - since).total_seconds() < self.context.options.resolve_grace_seconds

    def _identity(
        self,
        task: Task,
        body: dict[str, Any],
        record: RevisionRecord | None,
        spec: TaskDefinitionSpec | None,
    ) -> TaskStatus:
        """The previous status plus the fields fixed at launch (id, revision, group …)."""
        status = task.status or TaskStatus()
        update: dict[str, Any] = {
            "task_arn": status.task_arn or body["metadata"]["uid"].replace("-", ""),
            "group": status.group or _group(task),
            "started_by": status.started_by or task.spec.started_by,
            "pod_name": task.metadata.name,
        }
        if record is not None and spec is not None and status.task_definition_arn is None:
            effective = effective_spec(spec, task.spec.overrides)
            cpu, memory = reservation(effective)
            update |= {
                "task_definition_arn": record.reference,
                "revision": record.revision,
                "cpu": str(cpu),
                "memory": str(memory),
            }
        return status.model_copy(update=update)

    async def _launch(
        self, task: Task, body: dict[str, Any], record: RevisionRecord, spec: TaskDefinitionSpec
    ) -> tuple[str | None, list[UnsupportedField]]:
        """Place and create the task's Pod. Returns the ECS-worded reason when it cannot start,
        and what the Pod does not honour of its definition."""
        namespace, name = task.metadata.namespace or "", task.metadata.name
        policy = self.context.security_policy(namespace)
        problems = task_problems(spec, task.spec, policy)
        if problems:
            return "ClientException: " + "; ".join(str(p) for p in problems), []
        effective = effective_spec(spec, task.spec.overrides)
        missing = await self._missing_secret(namespace, effective)
        if missing is not None:
            return missing, []
        automount: bool | None = None
        if effective.task_role_arn:
            account = service_account_name(effective.task_role_arn)
            found = await self.context.kube.get(SERVICE_ACCOUNTS, namespace, account)
            if found is None:
                return ecs_events.task_role_not_found(account, namespace), []
            automount = found.get("automountServiceAccountToken")
        group = (task.status.group if task.status else None) or _group(task)
        try:
            requirements = task_requirements(
                effective,
                group=group,
                constraints=task.spec.placement_constraints or (),
                strategies=task.spec.placement_strategy or (),
            )
        except ValueError as error:
            return f"ClientException: {error}", []
        # A Service places its tasks itself (to report what cannot be placed) and names the
        # node; the task still checks it fits, so the cluster never oversubscribes. Only that
        # node's pods count then: a large scale-out does not rescan every pod per launch.
        placed = (task.metadata.annotations or {}).get(labels.PLACED_NODE_ANNOTATION)
        if placed:
            node = self.context.nodes.get(("", placed))
            instances = [
                instance.in_cluster(namespace)
                for instance in cluster_instances(
                    [node] if node else [],
                    self.context.pods.indexed(NODE_INDEX, placed),
                    self.context.footprints,
                )
            ]
        else:
            instances = self.context.container_instances(namespace)
        result = placement.place(requirements, instances, self.rng)
        if isinstance(result, placement.PlacementFailure):
            self.metrics.placement_failures.labels(result.reason).inc()
            closest = (
                f" The closest matching container-instance {result.closest} {result.detail}."
                if result.closest
                else ""
            )
            return f"TaskFailedToStart: {result.reason}{closest}", []
        rendered = render_pod(
            task_name=name,
            namespace=namespace,
            task_uid=body["metadata"]["uid"],
            task=task.spec,
            task_definition=ResolvedTaskDefinition(record.family, record.revision, spec),
            node_name=result.instance,
            group=group,
            policy=policy,
            service=owner_name(body, "Service"),
            readiness_probes=self._readiness_probes(body),
            service_account_automount=automount,
        )
        # Count the pod in the cache before awaiting its creation: a task placed meanwhile
        # must see this one (distinctInstance, spread, remaining resources).
        self.context.pods.record("ADDED", rendered.manifest)
        try:
            found, created = await self.context.kube.create_or_get(
                PODS, namespace, rendered.manifest
            )
        except KubeError as error:
            self.context.pods.record("DELETED", rendered.manifest)
            if error.code in (400, 403, 422):
                return f"CannotStartContainerError: the Pod was refused: {error.message}", []
            raise
        except BaseException:
            self.context.pods.record("DELETED", rendered.manifest)
            raise
        self.context.pods.record("ADDED", found)
        if not created and not is_controlled_by(found, body["metadata"]["uid"]):
            # Someone else's Pod holds the name: a conflict, never taken for our launch. One
            # still stopping (a previous Task's of the same name) is waited for by the retry.
            if found["metadata"].get("deletionTimestamp"):
                raise KubeError(409, "AlreadyExists", f"a previous pod {name} is still stopping")
            return pod_name_taken(name), []
        self._launched_at[(namespace, name)] = time.monotonic()
        return None, rendered.unsupported

    async def _missing_secret(self, namespace: str, spec: TaskDefinitionSpec) -> str | None:
        for reference in secret_references(spec):
            failure = f"ResourceInitializationError: unable to retrieve secret ({reference.field})"
            secret = await self.context.kube.get(SECRETS, namespace, reference.secret)
            if secret is None:
                return f'{failure}: Secret "{reference.secret}" not found in namespace {namespace}'
            if reference.key not in (secret.get("data") or {}) | (secret.get("stringData") or {}):
                return f'{failure}: Secret "{reference.secret}" has no key "{reference.key}"'
        return None

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
        await self.events.record(body, "Warning", "TaskFailedToStart", status["stoppedReason"])


def _with_unsupported(observation: Observation, unsupported: list[UnsupportedField]) -> Observation:
    """Record, once at launch, what the Pod does not honour: in status and as a warning."""
    if not unsupported:
        return observation
    status = observation.status.model_copy(update={"unsupported": unsupported[:MAX_UNSUPPORTED]})
    warning = Event("Warning", "UnsupportedFields", unsupported_text(unsupported))
    return replace(observation, status=status, events=(*observation.events, warning))


def _requested_stop_code(task: Task) -> StopCode:
    """Who asked the task to stop: a Service's scheduler marks its stops; otherwise StopTask."""
    code = (task.metadata.annotations or {}).get(labels.STOP_CODE_ANNOTATION)
    if code == "ServiceSchedulerInitiated":
        return "ServiceSchedulerInitiated"
    if code == "TerminationNotice":
        return "TerminationNotice"
    return "UserInitiated"


def _group(task: Task) -> str:
    """ECS's default group for a standalone task is `family:NAME`."""
    family, _ = parse_task_definition_ref(task.spec.task_definition)
    return task.spec.group or f"family:{family}"


def _zone(node: dict[str, Any] | None) -> str | None:
    zone = ((node or {}).get("metadata", {}).get("labels") or {}).get(ZONE_LABEL)
    return str(zone) if zone else None
