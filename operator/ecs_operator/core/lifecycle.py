"""The ECS task lifecycle, computed from a Task and the current state of its Pod.

``observe(task, pod, now)`` is a pure function: the same Task, Pod and ``now`` always give the
same new ``TaskStatus``, actions and events. It has no clock of its own and does no I/O; the
operator calls it on every reconcile (level-triggered) and writes the status only when
``changed`` is true, so a resync of a converged task writes nothing. The operator should write the
status *before* it executes the actions, so that a crash in between never makes its own pod
deletion look like somebody else's.

Task ``lastStatus`` (ECS order; states may be skipped, never revisited; ``version`` +1 on every
change; ACTIVATING/DEACTIVATING only when the operator says load-balancer work is in progress):

=================  =========================================================================
PROVISIONING       no Pod yet and no stop decided (``wants_pod`` is true)
PENDING            the Pod exists and not every regular container has started
ACTIVATING         as RUNNING, while ``TaskView.activating`` (target registration)
RUNNING            every regular container has started (init containers finished, sidecars
                   started: Kubernetes enforces dependsOn through the pod shape render chose)
DEACTIVATING       a stop is decided and ``TaskView.deactivating`` (target draining) holds it;
                   no ``StopPod`` yet
STOPPING           a stop is decided and a container still runs: ``StopPod`` is issued
DEPROVISIONING     a stop is decided, nothing runs any more, the Pod is not over yet (its
                   kubelet is ending it, or it is being deleted)
STOPPED            a stop is decided and the Pod is over: terminated (phase Succeeded or
                   Failed) or gone. A terminated Pod holds no capacity (the Kubernetes
                   scheduler and kubelet, and ``placement``, count only Pods that have not
                   terminated), so a Service may count on the capacity being free
=================  =========================================================================

**The Pod outlives the stop** (as a Job's Pods do): a task whose containers all exited keeps its
terminated Pod, and with it ``kubectl logs``, until the Task itself is deleted (its
``ttlSecondsAfterStopped``, a Service trimming its stopped tasks, or the user), when
ownerReference garbage collection removes the Pod. A task stopped while containers still run
is stopped the Kubernetes way that keeps the Pod: ``StopPod`` sets the Pod's
``activeDeadlineSeconds`` to ``STOP_DEADLINE_SECONDS``, which its kubelet enforces by stopping
every container (SIGTERM, then SIGKILL after the Pod's ``terminationGracePeriodSeconds``, the
largest ``stopTimeout``) and failing the Pod (reason ``DeadlineExceeded``); the Pod then stays,
terminated, logs included. Only a Pod no kubelet will end is deleted (``StopPod.delete``): one
never bound to a node (it has no logs), or one on a lost node (its logs are out of reach, and
the Pod would stay Terminating for ever without a forced deletion).

A stop, once decided, is recorded in the status (``desiredStatus: STOPPED``, ``stopCode``,
``stoppedReason``) and never re-decided. Causes, first match wins:

1. ``TaskView.start_failure`` (the operator could not launch: placement, missing revision,
   secret ...) -> ``TaskFailedToStart`` with that text.
2. ``spec.desiredStatus: STOPPED`` or deletion of the Task -> ``TaskView.requested_stop_code``
   (``UserInitiated``; the operator passes ``ServiceSchedulerInitiated`` for service tasks), with
   ``spec.stoppedReason`` or ``Task stopped by user``.
3. The Pod vanished or is being deleted, not by the operator -> ``TaskFailedToStart``
   (``TaskFailedToStart: its pod was deleted before the task started``) when the task never
   started, else ``TerminationNotice`` (the platform removed the task; the nearest ECS code):
   ``Task stopped: its node (node N) was lost`` on a lost node, ``Task stopped: its pod was
   evicted|preempted|...: <message>`` when Kubernetes says why (``DisruptionTarget``), else
   ``Task stopped: its pod was deleted`` (``Task stopped: its pod failed: <reason>: <message>``
   for a pod that ended on its own without an essential container exiting, e.g.
   ``DeadlineExceeded``).
4. A container cannot start: waiting reason ErrImagePull/ImagePullBackOff/InvalidImageName/
   ErrImageNeverPull/RegistryUnavailable -> ``CannotPullContainerError: <message>``;
   CreateContainerConfigError (missing Secret or ConfigMap) -> ``ResourceInitializationError:
   <message>``; CreateContainerError/RunContainerError/StartError/ContainerCannotRun ->
   ``CannotStartContainerError: <message>``. Decided at once (ECS does not keep retrying
   either). It stops the task for an essential container or any init/sidecar container (those
   block the whole pod); a non-essential regular container is only marked STOPPED with the reason.
5. The Pod stayed ``PodScheduled=False/Unschedulable`` for ``unschedulable_grace_seconds``
   (default 30: the operator pins the node, so this means the node filled up or vanished) ->
   ``TaskFailedToStart: <scheduler message>``. ``recheck_after_seconds`` says when to look again.
6. An essential container exited, with any code (a native sidecar counts once it has exited,
   even if the kubelet restarted it) -> ``EssentialContainerExited``, ``Essential container in
   task exited`` (``OutOfMemoryError: Container killed due to memory usage`` when OOM-killed),
   ``executionStoppedAt`` = now.
7. An essential container can never start because a dependency did not exit successfully ->
   ``TaskFailedToStart`` with the agent's text ``dependency graph: failed to resolve container
   ordering dependency [X] for target [Y] as dependency did not exit successfully.`` (the same
   text is the container's ``reason``).
8. The Pod ended (phase Succeeded/Failed) for another reason -> as 3 when it ran, else
   ``TaskFailedToStart: <pod reason>: <pod message>``.

Node loss: ``TaskView.node_lost`` (see ``is_on_lost_node``) keeps the containers' last known
health (ECS keeps the last value when the agent disconnects; the pod's readiness is stale), counts
the containers as possibly running, sets ``connectivity: DISCONNECTED``, turns ``Ready`` False
with reason ``NodeLost`` and emits ``TaskNodeLost``; a standalone task is not stopped for it (the
Service replaces its tasks). A stop on a lost node uses ``StopPod(grace_seconds=0)``
(no kubelet is left to honour a grace period, the pod would stay Terminating forever) and
``delete`` set.

Containers: ``lastStatus`` PENDING -> RUNNING -> STOPPED, never backwards (a restarted sidecar
stays STOPPED with its first exit code); ``exitCode`` absent if it never ran, never overwritten;
``reason`` keeps the first one. Health (only for containers with a ``healthCheck``, which render
turns into a readiness probe with ``failureThreshold = retries``): HEALTHY while ready; UNHEALTHY
when not ready after having been HEALTHY, or not ready yet ``startPeriod + retries * interval``
seconds after the container started (ECS: failures in the start period do not count, then
``retries`` consecutive failures); UNKNOWN otherwise and for containers without a health check.
Stopped containers keep their last health. Task health aggregates the essential containers that
have a health check (ECS ignores the others): any UNHEALTHY -> UNHEALTHY, else any UNKNOWN ->
UNKNOWN, else HEALTHY; none -> UNKNOWN.

``networkBindings`` appear when the container first runs: a ``hostPort`` in the pod gives
``bindIP 0.0.0.0`` and that port (bridge-style); otherwise ``bindIP`` is the pod IP and
``hostPort`` the container port (awsvpc-style: the port is reachable on the pod's own address).

Timestamps are the operator's observation times (``now``), set once and never overwritten:
``pullStartedAt`` and ``connectivityAt`` when the Pod is first seen on a node; ``pullStoppedAt``
when every container is running or has ended (all images pulled); ``startedAt`` when every
regular container has started (also when the task is already past RUNNING by then);
``stoppingAt`` when a stop is decided; ``executionStoppedAt`` when nothing runs any more (or at an
essential exit); ``stoppedAt`` at STOPPED. Missing earlier ones are filled with the same instant,
so ``createdAt <= pullStartedAt <= pullStoppedAt <= startedAt <= stoppedAt`` always holds.

Conditions: ``Ready`` True while RUNNING and not UNHEALTHY and the node is reachable, else False
with reason ``Pending``/``Running``/``Unhealthy``/``NodeLost``/``Stopping``/...; ``Stopped`` True
at STOPPED with reason = stopCode and message = stoppedReason, else False. ``lastTransitionTime``
moves only when a condition's status flips.

Events come from transitions only (so a resync emits none): the first lifecycle steps (TaskPending,
TaskActivating, TaskRunning, TaskDeactivating, TaskStopped), the stop decision (TaskStopping for
UserInitiated/ServiceSchedulerInitiated, EssentialContainerExited, TaskFailedToStart,
TaskInterrupted for TerminationNotice), a non-essential container exit (ContainerExited), health
flips (TaskUnhealthy, TaskHealthy) and node loss (TaskNodeLost).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal, get_args

from ecs_operator.core import events, labels
from ecs_operator.core.conditions import set_condition
from ecs_operator.models.common import Condition
from ecs_operator.models.task import (
    CONDITION_READY,
    CONDITION_STOPPED,
    DEFAULT_TTL_SECONDS_AFTER_STOPPED,
    ContainerLastStatus,
    ContainerStatus,
    DesiredStatus,
    HealthStatus,
    LastStatus,
    NetworkBinding,
    StopCode,
    Task,
    TaskStatus,
)
from ecs_operator.models.taskdefinition import ContainerDefinition, HealthCheck

__all__ = [
    "DEFAULT_STOP_TIMEOUT_SECONDS",
    "DEFAULT_UNSCHEDULABLE_GRACE_SECONDS",
    "STOP_DEADLINE_SECONDS",
    "Event",
    "Observation",
    "StopPod",
    "TaskView",
    "aggregate_health",
    "expires_at",
    "is_expired",
    "is_on_lost_node",
    "observe",
]

DEFAULT_STOP_TIMEOUT_SECONDS: Final = 30
"""ECS's container ``stopTimeout`` when the task definition gives none."""
DEFAULT_UNSCHEDULABLE_GRACE_SECONDS: Final = 30.0
STOP_DEADLINE_SECONDS: Final = 1
"""The ``activeDeadlineSeconds`` that stops a Pod's containers and keeps the Pod: counted from
the Pod's start, so already over for a Pod that ran (the smallest value the API accepts)."""

# The model lists the states in ECS's lifecycle order.
TASK_ORDER: Final[tuple[LastStatus, ...]] = get_args(LastStatus)
CONTAINER_ORDER: Final[tuple[ContainerLastStatus, ...]] = get_args(ContainerLastStatus)

PULL_FAILURES: Final = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
    | {"RegistryUnavailable", "ImageInspectError", "SignatureValidationFailed"}
)
CONFIG_FAILURES: Final = frozenset({"CreateContainerConfigError"})
START_FAILURES: Final = frozenset(
    {"CreateContainerError", "RunContainerError", "PreStartHookError", "PostStartHookError"}
)
# Terminated reasons of a container the runtime could not start: it never ran.
TERMINATED_NEVER_RAN: Final = frozenset({"StartError", "ContainerCannotRun"})
OOM_KILLED: Final = "OOMKilled"
UNREACHABLE_TAINT: Final = "node.kubernetes.io/unreachable"
# DisruptionTarget condition reasons (Kubernetes >= 1.26) -> how the pod was removed.
DISRUPTION_CAUSES: Final[Mapping[str, str]] = {
    "EvictionByEvictionAPI": "evicted",
    "PreemptionByScheduler": "preempted",
    "DeletionByTaintManager": "deleted by the taint manager",
    "DeletionByPodGC": "deleted by the pod garbage collector",
    "TerminationByKubelet": "terminated by the kubelet",
}

ContainerKind = Literal["init", "sidecar", "regular"]


# ---------------------------------------------------------------------------------------------
# Inputs and outputs


@dataclass(frozen=True)
class TaskView:
    """What ``observe`` needs to know about a Task, beyond its Pod.

    ``containers`` are the container definitions of the resolved revision, in order (essential
    flags, health checks, dependsOn, stopTimeout). ``start_failure`` is a launch failure the
    operator already decided (``TaskFailedToStart: RESOURCE:CPU``, ``ResourceInitializationError:
    ...``); ``node_lost`` comes from ``is_on_lost_node``; ``activating``/``deactivating`` say that
    load-balancer registration/draining is in progress for the task.
    """

    name: str
    generation: int
    created_at: datetime
    containers: Sequence[ContainerDefinition]
    status: TaskStatus | None = None
    desired_status: DesiredStatus = "RUNNING"
    stopped_reason: str | None = None
    deletion_requested: bool = False
    requested_stop_code: StopCode = "UserInitiated"
    start_failure: str | None = None
    node_lost: bool = False
    availability_zone: str | None = None
    activating: bool = False
    deactivating: bool = False
    unschedulable_grace_seconds: float = DEFAULT_UNSCHEDULABLE_GRACE_SECONDS

    @classmethod
    def of(cls, task: Task, containers: Sequence[ContainerDefinition], now: datetime) -> "TaskView":
        """The view of a ``Task`` object; set the operator's facts with ``dataclasses.replace``.

        ``now`` stands in for a missing ``creationTimestamp`` (an object not yet stored)."""
        extra = task.metadata.model_extra or {}
        return cls(
            name=task.metadata.name,
            generation=task.metadata.generation or 0,
            created_at=_parse_time(extra.get("creationTimestamp")) or now,
            containers=containers,
            status=task.status,
            desired_status=task.spec.desired_status,
            stopped_reason=task.spec.stopped_reason,
            deletion_requested=extra.get("deletionTimestamp") is not None,
        )


@dataclass(frozen=True)
class StopPod:
    """Stop the task's containers: SIGTERM, then SIGKILL after ``grace_seconds``. The Pod is
    kept: its ``activeDeadlineSeconds`` set to ``STOP_DEADLINE_SECONDS`` makes its kubelet stop
    it (within the Pod's ``terminationGracePeriodSeconds``, which render sets to the same
    grace) and leave it terminated, logs included. ``delete``: delete the Pod instead, with
    ``grace_seconds`` (no kubelet will end it: never bound to a node, or its node is lost)."""

    grace_seconds: int
    reason: str
    delete: bool = False


Action = StopPod


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to record on the Task."""

    type: events.EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Observation:
    """The result of one observation: the complete new status and what to do about it."""

    status: TaskStatus
    changed: bool
    wants_pod: bool
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()
    recheck_after_seconds: float | None = None
    """Look again after this long even if nothing changes (a time-based rule is pending)."""


# ---------------------------------------------------------------------------------------------
# Reading the Pod


@dataclass(frozen=True)
class _Seen:
    """One Kubernetes container, in ECS terms."""

    kind: ContainerKind
    last_status: ContainerLastStatus
    exit_code: int | None = None
    reason: str | None = None
    start_failure: str | None = None
    ready: bool = False
    running_since: datetime | None = None
    image_digest: str | None = None
    runtime_id: str | None = None
    ports: tuple[Mapping[str, Any], ...] = ()

    @property
    def ran(self) -> bool:
        return self.last_status == "RUNNING" or self.exit_code is not None

    @property
    def settled(self) -> bool:
        """Past its image pull: running, ended, or failed for good."""
        return self.last_status != "PENDING"


@dataclass(frozen=True)
class _PodFacts:
    name: str | None
    node_name: str | None
    pod_ip: str | None
    terminal: bool
    deleting: bool
    force_deleting: bool
    stop_requested: bool
    """Its ``activeDeadlineSeconds`` is the operator's stop (``STOP_DEADLINE_SECONDS``)."""
    containers: Mapping[str, _Seen]
    failure_text: str
    disruption: str | None
    unschedulable_since: datetime | None
    unschedulable_message: str


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in _list(_mapping(pod.get("status")).get("conditions")):
        if condition.get("type") == kind:
            return condition
    return {}


def _ecs_names(pod: Mapping[str, Any]) -> Mapping[str, str]:
    """Kubernetes container name -> ECS container name, from the annotation render wrote."""
    annotations = _mapping(_mapping(pod.get("metadata")).get("annotations"))
    try:
        names = json.loads(annotations.get(labels.CONTAINERS_ANNOTATION, "{}"))
    except (TypeError, ValueError):
        return {}
    return {str(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}


def _waiting_failure(reason: str, message: str) -> str | None:
    if reason in PULL_FAILURES:
        return events.start_failure(events.CANNOT_PULL_CONTAINER, message or reason)
    if reason in CONFIG_FAILURES:
        return events.start_failure(events.RESOURCE_INITIALIZATION, message or reason)
    if reason in START_FAILURES:
        return events.start_failure(events.CANNOT_START_CONTAINER, message or reason)
    return None


def _terminated(kind: ContainerKind, state: Mapping[str, Any], extra: dict[str, Any]) -> _Seen:
    reason = str(state.get("reason") or "")
    message = str(state.get("message") or "")
    if reason in TERMINATED_NEVER_RAN:
        failure = events.start_failure(events.CANNOT_START_CONTAINER, message or reason)
        return _Seen(kind, "STOPPED", reason=failure, start_failure=failure, **extra)
    exit_code = state.get("exitCode")
    return _Seen(
        kind,
        "STOPPED",
        exit_code=exit_code if isinstance(exit_code, int) else 0,
        reason=events.OUT_OF_MEMORY if reason == OOM_KILLED else None,
        **extra,
    )


def _digest(image_id: Any) -> str | None:
    text = str(image_id or "")
    return text.rpartition("@")[2] or None if "@" in text else None


def _read_container(
    kind: ContainerKind, spec: Mapping[str, Any], status: Mapping[str, Any]
) -> _Seen:
    extra: dict[str, Any] = {
        "image_digest": _digest(status.get("imageID")),
        "runtime_id": str(status.get("containerID") or "").partition("://")[2] or None,
        "ports": tuple(_list(spec.get("ports"))),
    }
    state = _mapping(status.get("state"))
    previous = _mapping(_mapping(status.get("lastState")).get("terminated"))
    if kind == "sidecar" and previous:
        # A native sidecar is restarted by the kubelet; for ECS it has exited once, for good.
        return _terminated(kind, previous, extra)
    if "terminated" in state:
        return _terminated(kind, _mapping(state["terminated"]), extra)
    if "running" in state:
        return _Seen(
            kind,
            "RUNNING",
            ready=status.get("ready") is True,
            running_since=_parse_time(_mapping(state["running"]).get("startedAt")),
            **extra,
        )
    waiting = _mapping(state.get("waiting"))
    failure = _waiting_failure(str(waiting.get("reason") or ""), str(waiting.get("message") or ""))
    return _Seen(kind, "PENDING", reason=failure, start_failure=failure, **extra)


def _read_containers(pod: Mapping[str, Any]) -> dict[str, _Seen]:
    spec = _mapping(pod.get("spec"))
    status = _mapping(pod.get("status"))
    names = _ecs_names(pod)
    statuses = {
        str(s.get("name")): s
        for key in ("initContainerStatuses", "containerStatuses")
        for s in _list(status.get(key))
    }
    seen: dict[str, _Seen] = {}
    for key in ("initContainers", "containers"):
        for container in _list(spec.get(key)):
            k8s_name = str(container.get("name"))
            kind: ContainerKind = "regular"
            if key == "initContainers":
                kind = "sidecar" if container.get("restartPolicy") == "Always" else "init"
            seen[names.get(k8s_name, k8s_name)] = _read_container(
                kind, container, _mapping(statuses.get(k8s_name))
            )
    return seen


def _disruption(pod: Mapping[str, Any]) -> str | None:
    """Why Kubernetes removed the pod, when it says so."""
    target = _condition(pod, "DisruptionTarget")
    if target.get("status") == "True":
        cause = DISRUPTION_CAUSES.get(str(target.get("reason")), "disrupted")
        return events.pod_disrupted(cause, str(target.get("message") or ""))
    status = _mapping(pod.get("status"))
    if status.get("reason") == "Evicted":
        return events.pod_disrupted("evicted", str(status.get("message") or ""))
    return None


def _read_pod(pod: Mapping[str, Any]) -> _PodFacts:
    metadata = _mapping(pod.get("metadata"))
    spec = _mapping(pod.get("spec"))
    status = _mapping(pod.get("status"))
    scheduled = _condition(pod, "PodScheduled")
    unschedulable = scheduled.get("status") == "False" and scheduled.get("reason") == (
        "Unschedulable"
    )
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "")
    return _PodFacts(
        name=metadata.get("name"),
        node_name=spec.get("nodeName") or None,
        pod_ip=status.get("podIP") or None,
        terminal=status.get("phase") in ("Succeeded", "Failed"),
        deleting=metadata.get("deletionTimestamp") is not None,
        force_deleting=metadata.get("deletionGracePeriodSeconds") == 0,
        stop_requested=_stop_requested(spec.get("activeDeadlineSeconds")),
        containers=_read_containers(pod),
        failure_text=": ".join(part for part in (reason, message) if part) or "pod failed",
        disruption=_disruption(pod),
        unschedulable_since=(
            _parse_time(scheduled.get("lastTransitionTime"))
            or _parse_time(metadata.get("creationTimestamp"))
            if unschedulable
            else None
        ),
        unschedulable_message=str(scheduled.get("message") or "") if unschedulable else "",
    )


def _stop_requested(deadline: Any) -> bool:
    return isinstance(deadline, int) and 0 < deadline <= STOP_DEADLINE_SECONDS


def is_on_lost_node(pod: Mapping[str, Any], node: Mapping[str, Any] | None) -> bool:
    """Whether ``pod`` sits on a node that stopped answering (its status is then stale).

    True when the pod says ``NodeLost``, its node object is gone, or the node's ``Ready``
    condition is Unknown or missing or it carries the ``unreachable`` taint (what the node
    lifecycle controller sets when the kubelet stops posting status). A node whose kubelet
    reports NotReady (Ready=False) is reachable: its pods' statuses are still reported.
    """
    if _mapping(pod.get("status")).get("reason") == "NodeLost":
        return True
    if not _mapping(pod.get("spec")).get("nodeName"):
        return False
    if node is None:
        return True
    if any(
        t.get("key") == UNREACHABLE_TAINT for t in _list(_mapping(node.get("spec")).get("taints"))
    ):
        return True
    ready = _condition(node, "Ready")
    return ready.get("status") not in ("True", "False")


# ---------------------------------------------------------------------------------------------
# Health


def aggregate_health(containers: Sequence[tuple[bool, bool, HealthStatus]]) -> HealthStatus:
    """Task health from ``(essential, has_health_check, health)`` per container (ECS rule)."""
    considered = [health for essential, checked, health in containers if essential and checked]
    if "UNHEALTHY" in considered:
        return "UNHEALTHY"
    if not considered or "UNKNOWN" in considered:
        return "UNKNOWN"
    return "HEALTHY"


def _startup_window(check: HealthCheck) -> timedelta:
    return timedelta(seconds=(check.start_period or 0) + check.retries * check.interval)


def _container_health(
    definition: ContainerDefinition,
    seen: _Seen | None,
    previous: HealthStatus | None,
    now: datetime,
) -> tuple[HealthStatus, datetime | None]:
    """The container's health and, while undecided, when it turns UNHEALTHY if still unready."""
    check = definition.health_check
    if check is None:
        return "UNKNOWN", None
    if seen is None or seen.last_status != "RUNNING":
        return previous or "UNKNOWN", None
    if seen.ready:
        return "HEALTHY", None
    if previous in ("HEALTHY", "UNHEALTHY"):
        return "UNHEALTHY", None
    if seen.running_since is None:
        return "UNKNOWN", None
    deadline = seen.running_since + _startup_window(check)
    return ("UNHEALTHY", None) if now >= deadline else ("UNKNOWN", deadline)


# ---------------------------------------------------------------------------------------------
# Containers


def _later(order: Sequence[str], old: str | None, new: str) -> str:
    return new if old is None or order.index(new) > order.index(old) else old


def _bindings(seen: _Seen, pod_ip: str | None) -> list[NetworkBinding]:
    bindings = []
    for port in seen.ports:
        container_port = port.get("containerPort")
        host_port = port.get("hostPort")
        protocol = str(port.get("protocol") or "TCP").lower()
        bindings.append(
            NetworkBinding(
                bind_ip="0.0.0.0" if host_port else pod_ip or "0.0.0.0",
                container_port=container_port,
                host_port=host_port or container_port,
                protocol="udp" if protocol == "udp" else "tcp",
            )
        )
    return bindings


def _dependency_block(definition: ContainerDefinition, seen: Mapping[str, _Seen]) -> str | None:
    """The agent's reason when ``definition`` can never start because of a dependency."""
    for dependency in definition.depends_on or ():
        other = seen.get(dependency.container_name)
        if other is None:
            continue
        # An init container that exits non-zero fails the pod, whatever the condition.
        failed = other.exit_code not in (None, 0)
        if failed and (dependency.condition == "SUCCESS" or other.kind == "init"):
            return events.dependency_not_successful(dependency.container_name, definition.name)
        if other.start_failure is not None:
            return events.dependency_never_started(dependency.container_name, definition.name)
    return None


@dataclass
class _Containers:
    statuses: list[ContainerStatus] = field(default_factory=list)
    health_deadline: datetime | None = None


def _container_statuses(
    view: TaskView, pod: _PodFacts | None, execution_over: bool, now: datetime
) -> _Containers:
    previous = {c.name: c for c in (view.status.containers or ())} if view.status else {}
    seen_all = pod.containers if pod else {}
    result = _Containers()
    for definition in view.containers:
        before = previous.get(definition.name) or ContainerStatus(
            name=definition.name, image=definition.image, last_status="PENDING"
        )
        seen = seen_all.get(definition.name)
        last: str = before.last_status or "PENDING"
        exit_code = before.exit_code
        reason = before.reason
        if seen is not None:
            last = _later(CONTAINER_ORDER, last, seen.last_status)
            exit_code = exit_code if exit_code is not None else seen.exit_code
            reason = reason or seen.reason
        blocked = _dependency_block(definition, seen_all)
        if blocked is not None and (seen is None or not seen.ran):
            last, reason = "STOPPED", reason or blocked
        if seen is not None and seen.start_failure is not None:
            last = "STOPPED"  # ECS gives up on a container that cannot start
        if execution_over:
            last = "STOPPED"
        health, deadline = _container_health(
            definition, None if view.node_lost else seen, before.health_status, now
        )
        if deadline is not None and (
            result.health_deadline is None or deadline < result.health_deadline
        ):
            result.health_deadline = deadline
        bindings = before.network_bindings
        if not bindings and seen is not None and seen.last_status == "RUNNING" and seen.ports:
            bindings = _bindings(seen, pod.pod_ip if pod else None)
        result.statuses.append(
            before.model_copy(
                update={
                    "image": before.image or definition.image,
                    "image_digest": before.image_digest or (seen and seen.image_digest),
                    "runtime_id": before.runtime_id or (seen and seen.runtime_id),
                    "last_status": last,
                    "exit_code": exit_code,
                    "reason": events.clip(reason) if reason else None,
                    "health_status": health,
                    "network_bindings": bindings,
                }
            )
        )
    return result


# ---------------------------------------------------------------------------------------------
# The stop decision


@dataclass(frozen=True)
class _Stop:
    code: StopCode
    reason: str
    event: Event | None
    execution_stopped: bool = False


def _failure_event(reason: str) -> Event:
    return Event("Warning", events.REASON_FAILED_TO_START, reason)


def _removed(view: TaskView, pod: _PodFacts | None, started: bool) -> _Stop:
    """The pod was taken away (deleted, evicted, node lost) without the operator asking."""
    if not started:
        return _Stop(
            "TaskFailedToStart",
            events.POD_DELETED_BEFORE_START,
            _failure_event(events.POD_DELETED_BEFORE_START),
        )
    node = (pod.node_name if pod else None) or (view.status.node_name if view.status else None)
    if view.node_lost and node:
        reason = events.node_lost(node)
    elif pod is not None and pod.disruption:
        reason = pod.disruption
    elif pod is not None and pod.terminal and not pod.deleting:
        reason = events.pod_failed(pod.failure_text)
    else:
        reason = events.POD_DELETED
    return _Stop("TerminationNotice", reason, Event("Warning", events.REASON_INTERRUPTED, reason))


def _start_failure(view: TaskView, pod: _PodFacts) -> str | None:
    for definition in view.containers:
        seen = pod.containers.get(definition.name)
        if seen and seen.start_failure and (definition.essential or seen.kind != "regular"):
            return seen.start_failure
    return None


def _essential_exit(view: TaskView, pod: _PodFacts) -> _Stop | None:
    for definition in view.containers:
        seen = pod.containers.get(definition.name)
        if definition.essential and seen is not None and seen.exit_code is not None:
            reason = seen.reason if seen.reason == events.OUT_OF_MEMORY else None
            message = (
                f"{events.ESSENTIAL_CONTAINER_EXITED}: "
                f"{events.container_exited(definition.name, seen.exit_code)}"
            )
            kind: events.EventType = "Normal" if seen.exit_code == 0 else "Warning"
            return _Stop(
                "EssentialContainerExited",
                reason or events.ESSENTIAL_CONTAINER_EXITED,
                Event(kind, events.REASON_ESSENTIAL_EXITED, message),
                execution_stopped=True,
            )
    return None


def _never_started(view: TaskView, pod: _PodFacts, containers: Sequence[ContainerStatus]) -> str:
    """The most telling reason a task that never ran stopped: an essential container's first."""
    by_name = {c.name: c for c in containers}
    for essential_first in (True, False):
        for definition in view.containers:
            reason = by_name[definition.name].reason
            if definition.essential == essential_first and reason:
                return reason
    return events.start_failure(events.TASK_FAILED_TO_START, pod.failure_text)


def _decide_stop(
    view: TaskView,
    pod: _PodFacts | None,
    started: bool,
    containers: Sequence[ContainerStatus],
    now: datetime,
) -> tuple[_Stop | None, datetime | None]:
    """A new stop decision (or None) and, while undecided, when a time rule would decide it."""
    if view.start_failure:
        return _Stop(
            "TaskFailedToStart", events.clip(view.start_failure), _failure_event(view.start_failure)
        ), None
    if view.desired_status == "STOPPED" or view.deletion_requested:
        reason = events.clip(view.stopped_reason or events.TASK_STOPPED_BY_USER)
        return _Stop(
            view.requested_stop_code, reason, Event("Normal", events.REASON_STOPPING, reason)
        ), None
    last = view.status.last_status if view.status else None
    if pod is None:
        return (
            (None, None)
            if last in (None, "PROVISIONING")
            else (_removed(view, None, started), None)
        )
    if pod.deleting:
        return _removed(view, pod, started), None
    failure = _start_failure(view, pod)
    if failure:
        return _Stop("TaskFailedToStart", failure, _failure_event(failure)), None
    if pod.unschedulable_since is not None:
        deadline = pod.unschedulable_since + timedelta(seconds=view.unschedulable_grace_seconds)
        if now < deadline:
            return None, deadline
        reason = events.unschedulable(pod.unschedulable_message)
        return _Stop("TaskFailedToStart", reason, _failure_event(reason)), None
    exited = _essential_exit(view, pod)
    if exited:
        return exited, None
    if pod.terminal and started:
        return _removed(view, pod, started), None
    by_name = {c.name: c for c in containers}
    blocked = any(
        d.essential
        and by_name[d.name].last_status == "STOPPED"
        and by_name[d.name].exit_code is None
        for d in view.containers
    )
    if blocked or pod.terminal:
        reason = _never_started(view, pod, containers)
        return _Stop("TaskFailedToStart", reason, _failure_event(reason)), None
    return None, None


# ---------------------------------------------------------------------------------------------
# Status assembly


def _later_task(old: LastStatus | None, new: LastStatus) -> LastStatus:
    return new if old is None or TASK_ORDER.index(new) > TASK_ORDER.index(old) else old


def _any_running(pod: _PodFacts | None) -> bool:
    return pod is not None and any(s.last_status == "RUNNING" for s in pod.containers.values())


def _all_started(view: TaskView, pod: _PodFacts | None) -> bool:
    """Every regular container has run (a non-essential one that cannot start is given up on)."""
    if pod is None:
        return False
    regular = [
        (definition, seen)
        for definition in view.containers
        if (seen := pod.containers.get(definition.name)) is not None and seen.kind == "regular"
    ]
    return bool(regular) and all(
        seen.ran or (not definition.essential and seen.start_failure is not None)
        for definition, seen in regular
    )


def _camel(status: str) -> str:
    return status.capitalize()


def _conditions(view: TaskView, status: TaskStatus, now: datetime) -> list[Condition]:
    previous = (view.status.conditions or []) if view.status else []
    last = status.last_status or "PROVISIONING"
    ready_status: Literal["True", "False"] = "False"
    if view.node_lost and last != "STOPPED":
        ready_reason, ready_message = "NodeLost", "The task's node stopped answering"
    elif last == "RUNNING" and status.health_status == "UNHEALTHY":
        ready_reason, ready_message = "Unhealthy", events.TASK_UNHEALTHY
    elif last == "RUNNING":
        ready_status, ready_reason, ready_message = "True", "Running", "The task is RUNNING"
    else:
        ready_reason, ready_message = _camel(last), f"The task is {last}"
    if last == "STOPPED":
        stopped = set_condition(
            previous,
            CONDITION_STOPPED,
            "True",
            status.stop_code or "Stopped",
            status.stopped_reason or "",
            view.generation,
            now,
        )
    else:
        stopped = set_condition(
            previous,
            CONDITION_STOPPED,
            "False",
            _camel(last),
            f"The task is {last}",
            view.generation,
            now,
        )
    ready = set_condition(
        previous, CONDITION_READY, ready_status, ready_reason, ready_message, view.generation, now
    )
    others = [c for c in previous if c.type not in (CONDITION_READY, CONDITION_STOPPED)]
    return [ready, stopped, *others]


def _target_status(
    view: TaskView, pod: _PodFacts | None, stopped: bool, running: bool, all_started: bool
) -> LastStatus:
    if stopped:
        if pod is None or pod.terminal:
            return "STOPPED"
        if running and view.deactivating:
            return "DEACTIVATING"
        return "STOPPING" if running else "DEPROVISIONING"
    if pod is None:
        return "PROVISIONING"
    if all_started:
        return "ACTIVATING" if view.activating else "RUNNING"
    return "PENDING"


def _stop_grace(view: TaskView) -> int:
    """ECS stops each container after its own stopTimeout; the pod waits for the longest."""
    if view.node_lost:
        return 0
    return max(
        (
            DEFAULT_STOP_TIMEOUT_SECONDS if c.stop_timeout is None else c.stop_timeout
            for c in view.containers
        ),
        default=DEFAULT_STOP_TIMEOUT_SECONDS,
    )


def _stop_pod(view: TaskView, pod: _PodFacts, reason: str) -> StopPod | None:
    """What stops the Pod of a stopped task, unless it is over or already being stopped: a
    deadline its kubelet enforces, keeping the Pod (and its logs); a deletion when no kubelet
    will (see the module docstring)."""
    if pod.terminal and not view.node_lost:
        return None  # nothing runs, and the Pod keeps the logs
    grace = _stop_grace(view)
    if view.node_lost or pod.node_name is None:
        if not pod.deleting or (grace == 0 and not pod.force_deleting):
            return StopPod(grace, reason, delete=True)
        return None
    if pod.deleting or pod.stop_requested:
        return None
    return StopPod(grace, reason)


def _status_events(
    view: TaskView, before: TaskStatus | None, after: TaskStatus, stop: _Stop | None
) -> list[Event]:
    found: list[Event] = []
    old_last = before.last_status if before else None
    new_last = after.last_status or "PROVISIONING"
    if stop is not None and stop.event is not None:
        found.append(stop.event)
    if new_last != old_last and new_last in ("PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING"):
        reason = {
            "PENDING": events.REASON_PENDING,
            "ACTIVATING": events.REASON_ACTIVATING,
            "RUNNING": events.REASON_RUNNING,
            "DEACTIVATING": events.REASON_DEACTIVATING,
        }[new_last]
        found.append(
            Event("Normal", reason, events.status_message(view.name, new_last, after.node_name))
        )
    if new_last != old_last and new_last == "STOPPED":
        message = f"{events.status_message(view.name, new_last, None)}: {after.stopped_reason}"
        found.append(Event("Normal", events.REASON_STOPPED, message))
    if after.desired_status == "RUNNING":
        old_containers = {c.name: c for c in (before.containers or ())} if before else {}
        for container in after.containers or ():
            old = old_containers.get(container.name)
            if container.last_status == "STOPPED" and (old is None or old.last_status != "STOPPED"):
                found.append(
                    Event(
                        "Normal",
                        events.REASON_CONTAINER_EXITED,
                        events.container_exited(
                            container.name, container.exit_code, container.reason
                        ),
                    )
                )
        old_health = before.health_status if before else None
        if after.health_status != old_health and after.health_status == "UNHEALTHY":
            found.append(Event("Warning", events.REASON_UNHEALTHY, events.TASK_UNHEALTHY))
        if old_health == "UNHEALTHY" and after.health_status == "HEALTHY":
            found.append(Event("Normal", events.REASON_HEALTHY, events.TASK_HEALTHY))
    was_lost = before is not None and before.connectivity == "DISCONNECTED"
    if after.connectivity == "DISCONNECTED" and not was_lost:
        message = events.node_unreachable(after.node_name)
        found.append(Event("Warning", events.REASON_NODE_LOST, message))
    return found


def observe(task: TaskView, pod: Mapping[str, Any] | None, now: datetime) -> Observation:
    """The task's new status, and the actions and events it calls for, given its Pod now."""
    before = task.status
    facts = _read_pod(pod) if pod is not None else None
    previous_last = before.last_status if before else None
    running = facts is not None and not facts.terminal
    running = running and (task.node_lost or _any_running(facts))
    all_started = _all_started(task, facts)
    started = (before is not None and before.started_at is not None) or all_started
    pod_gone = facts is None and previous_last not in (None, "PROVISIONING")
    over = pod_gone or (facts is not None and facts.terminal)

    decided = (
        before is not None and before.desired_status == "STOPPED" and before.stop_code is not None
    )
    stop: _Stop | None = None
    stop_deadline: datetime | None = None
    if not decided:
        provisional = _container_statuses(task, facts, over, now)
        stop, stop_deadline = _decide_stop(task, facts, started, provisional.statuses, now)
    stopped = decided or stop is not None
    over = over or (stopped and not running)
    containers = _container_statuses(task, facts, over, now)

    target = _target_status(task, facts, stopped, running, all_started)
    last = _later_task(previous_last, target)

    base = before or TaskStatus()
    node_name = base.node_name or (facts.node_name if facts else None)
    connectivity, connectivity_at = base.connectivity, base.connectivity_at
    wanted: Literal["CONNECTED", "DISCONNECTED"] = "DISCONNECTED" if task.node_lost else "CONNECTED"
    if node_name and last != "STOPPED" and wanted != connectivity:
        connectivity, connectivity_at = wanted, now
    status = base.model_copy(
        update={
            "last_status": last,
            "desired_status": "STOPPED" if stopped else "RUNNING",
            "stop_code": stop.code if stop else base.stop_code,
            "stopped_reason": stop.reason if stop else base.stopped_reason,
            "containers": containers.statuses,
            "health_status": aggregate_health(
                [
                    (d.essential, d.health_check is not None, c.health_status or "UNKNOWN")
                    for d, c in zip(task.containers, containers.statuses, strict=True)
                ]
            ),
            "node_name": node_name,
            "availability_zone": base.availability_zone or task.availability_zone,
            "pod_name": base.pod_name or (facts.name if facts else None),
            "connectivity": connectivity,
            "connectivity_at": connectivity_at,
            "version": (base.version or 0) + 1 if last != previous_last else base.version,
            "observed_generation": task.generation,
            **_timestamps(
                task, base, None if decided else facts, stop, last, started, stopped and over, now
            ),
        }
    )
    status = status.model_copy(update={"conditions": _conditions(task, status, now)})
    changed = before is None or status.model_dump() != before.model_dump()

    actions: list[Action] = []
    if stopped and facts is not None and last != "DEACTIVATING":
        stop_pod = _stop_pod(task, facts, status.stopped_reason or "")
        if stop_pod is not None:
            actions.append(stop_pod)
    deadlines = [d for d in (stop_deadline, containers.health_deadline) if d is not None]
    return Observation(
        status=status,
        changed=changed,
        wants_pod=not stopped and facts is None and last == "PROVISIONING",
        actions=tuple(actions),
        events=tuple(_status_events(task, before, status, stop)) if changed else (),
        recheck_after_seconds=(
            max(0.0, (min(deadlines) - now).total_seconds()) if deadlines and not stopped else None
        ),
    )


def _timestamps(
    view: TaskView,
    base: TaskStatus,
    pod: _PodFacts | None,
    stop: _Stop | None,
    last: LastStatus,
    started: bool,
    execution_over: bool,
    now: datetime,
) -> dict[str, datetime | None]:
    """The timestamps, each set once; earlier missing ones get the same instant.

    ``pod`` is None once a stop was decided earlier: a task stopped before RUNNING never gets
    ``startedAt``, and a late pod of a stopped task changes nothing."""
    stamps: dict[str, datetime | None] = {
        "created_at": base.created_at or view.created_at,
        "pull_started_at": base.pull_started_at,
        "pull_stopped_at": base.pull_stopped_at,
        "started_at": base.started_at,
        "stopping_at": base.stopping_at,
        "execution_stopped_at": base.execution_stopped_at,
        "stopped_at": base.stopped_at,
    }

    def mark(*names: str) -> None:
        for name in names:
            stamps[name] = stamps[name] or now

    if pod is not None and pod.node_name:
        mark("pull_started_at")
    if pod is not None and pod.containers and all(s.settled for s in pod.containers.values()):
        mark("pull_started_at", "pull_stopped_at")
    if pod is not None and started:
        mark("pull_started_at", "pull_stopped_at", "started_at")
    if stop is not None:
        mark("stopping_at")
        if stop.execution_stopped:
            mark("execution_stopped_at")
    if execution_over or last in ("DEPROVISIONING", "STOPPED"):
        mark("stopping_at", "execution_stopped_at")
    if last == "STOPPED":
        mark("stopped_at")
    return stamps


# ---------------------------------------------------------------------------------------------
# Time to live


def expires_at(
    status: TaskStatus | None, ttl_seconds: int = DEFAULT_TTL_SECONDS_AFTER_STOPPED
) -> datetime | None:
    """When a STOPPED task may be deleted (``ttlSecondsAfterStopped`` after ``stoppedAt``)."""
    if status is None or status.last_status != "STOPPED" or status.stopped_at is None:
        return None
    return status.stopped_at + timedelta(seconds=ttl_seconds)


def is_expired(
    status: TaskStatus | None,
    now: datetime,
    ttl_seconds: int = DEFAULT_TTL_SECONDS_AFTER_STOPPED,
) -> bool:
    """Whether a STOPPED task has outlived its TTL and may be deleted."""
    deadline = expires_at(status, ttl_seconds)
    return deadline is not None and now >= deadline
