"""ECS-worded status strings and Kubernetes Event reasons, in one place.

ECS users search for the exact texts ECS writes (``Essential container in task exited``,
``CannotPullContainerError: ...``), so the operator writes them verbatim; the texts ECS has no
counterpart for follow the same style and are marked below. Event reasons are CamelCase, unique
and specific, as the Kubernetes API conventions ask.
"""

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final, Literal

MAX_REASON_LENGTH: Final = 1024
"""ECS caps ``stoppedReason`` and a container's ``reason`` at 1,024 characters."""

# stoppedReason texts written by ECS itself.
ESSENTIAL_CONTAINER_EXITED: Final = "Essential container in task exited"
TASK_STOPPED_BY_USER: Final = "Task stopped by user"
OUT_OF_MEMORY: Final = "OutOfMemoryError: Container killed due to memory usage"

# Category prefixes ECS puts in front of a start failure (``<prefix>: <detail>``).
CANNOT_PULL_CONTAINER: Final = "CannotPullContainerError"
RESOURCE_INITIALIZATION: Final = "ResourceInitializationError"
CANNOT_START_CONTAINER: Final = "CannotStartContainerError"
TASK_FAILED_TO_START: Final = "TaskFailedToStart"
CLIENT_EXCEPTION: Final = "ClientException"
"""RunTask's refusal of a request it cannot serve (unknown revision, invalid overrides)."""

# Operator wording (ECS has no such case): the Pod was removed by someone other than the operator.
POD_DELETED: Final = "Task stopped: its pod was deleted"
POD_DELETED_BEFORE_START: Final = "TaskFailedToStart: its pod was deleted before the task started"


def pod_name_taken(task: str) -> str:
    """Operator wording: the Task's Pod name is held by a Pod this Task does not control."""
    return start_failure(TASK_FAILED_TO_START, f"a Pod named {task} exists and is not this task's")


def client_exception(detail: str) -> str:
    """stoppedReason of a task ECS would have refused at RunTask, e.g. ``ClientException: task
    definition "web" does not exist``."""
    return f"{CLIENT_EXCEPTION}: {detail}"


def task_not_placed(reason: str, closest: str | None, detail: str) -> str:
    """stoppedReason of a task no node fits: RunTask's failure ``reason`` (``RESOURCE:MEMORY``)
    and, when some node came close, which one and why it does not fit."""
    nearest = f" The closest matching container-instance {closest} {detail}." if closest else ""
    return f"{TASK_FAILED_TO_START}: {reason}{nearest}"


def pod_refused(message: str) -> str:
    """Operator wording: the API server refused the task's Pod (Pod Security Admission, a
    quota, an invalid field), with its message."""
    return f"{CANNOT_START_CONTAINER}: the Pod was refused: {message}"


def _secret_unavailable(value_from: str, field: str) -> str:
    return f'{RESOURCE_INITIALIZATION}: unable to retrieve secret "{value_from}" ({field})'


def secret_not_found(field: str, value_from: str, secret: str, namespace: str) -> str:
    """The Secret a container's ``secrets`` entry (``field``, ``value_from``) maps to does not
    exist: both names, so the user sees which Secret to create."""
    return (
        f'{_secret_unavailable(value_from, field)}: Secret "{secret}" not found in namespace '
        f"{namespace}"
    )


def secret_key_missing(field: str, value_from: str, secret: str, key: str) -> str:
    """The Secret exists but has no such key."""
    return f'{_secret_unavailable(value_from, field)}: Secret "{secret}" has no key "{key}"'


# Why a task definition reference does not resolve (the detail of a ClientException, or of a
# service's refused deployment).


def family_missing(family: str) -> str:
    return f'task definition "{family}" does not exist'


def family_pending(family: str) -> str:
    """The family's TaskDefinition exists and has registered no revision: not yet, or it was
    refused (``family_not_accepted`` says which, when the caller knows its Accepted condition)."""
    return (
        f'task definition "{family}" has no ACTIVE revision yet (not registered yet, or '
        "refused: see the TaskDefinition's Accepted condition)"
    )


def family_deleted(family: str) -> str:
    return f'task definition "{family}" has no ACTIVE revision (the TaskDefinition was deleted)'


def family_not_accepted(family: str, message: str) -> str:
    """The family's TaskDefinition exists and its Accepted condition says why it is refused."""
    return f'task definition "{family}" is not accepted: {message}'


def revision_missing(reference: str, latest: str | None) -> str:
    """``latest``: the family's newest stored revision, if it has any."""
    newest = f" (latest is {latest})" if latest else ""
    return f'task definition revision "{reference}" does not exist{newest}'


def revision_inactive(reference: str) -> str:
    return (
        f'task definition revision "{reference}" is INACTIVE and cannot be used to start new tasks'
    )


EventType = Literal["Normal", "Warning"]

# Kubernetes Event reasons.
REASON_PENDING: Final = "TaskPending"
REASON_ACTIVATING: Final = "TaskActivating"
REASON_RUNNING: Final = "TaskRunning"
REASON_DEACTIVATING: Final = "TaskDeactivating"
REASON_STOPPING: Final = "TaskStopping"
REASON_STOPPED: Final = "TaskStopped"
REASON_ESSENTIAL_EXITED: Final = "EssentialContainerExited"
REASON_FAILED_TO_START: Final = "TaskFailedToStart"
REASON_INTERRUPTED: Final = "TaskInterrupted"
REASON_CONTAINER_EXITED: Final = "ContainerExited"
REASON_UNHEALTHY: Final = "TaskUnhealthy"
REASON_HEALTHY: Final = "TaskHealthy"
REASON_NODE_LOST: Final = "TaskNodeLost"
REASON_UNSUPPORTED_FIELDS: Final = "UnsupportedFields"
REASON_TASKS_LAUNCHED: Final = "TasksLaunched"
"""On the first Task of a run (RunTask's count): its tasks were all created."""

# Kubernetes Event messages of the task's health and connectivity.
TASK_UNHEALTHY: Final = "An essential container is UNHEALTHY"
TASK_HEALTHY: Final = "All essential containers are HEALTHY"


def node_unreachable(node: str | None) -> str:
    return f"The task's node (node {node}) stopped answering; its last known state is kept"


# Control characters (C0, DEL, C1) and the invisible marks that reorder bidirectional text.
_UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control characters and bidirectional overrides escaped (``\\x1b``,
    ``\\u202e``): status and event texts carry what users and Pods wrote (a stoppedReason, a
    termination message), and a terminal showing them must not obey escape sequences or show
    reordered text."""
    return _UNPRINTABLE.sub(_escape, text)


def clip(text: str, limit: int = MAX_REASON_LENGTH) -> str:
    """``text``, printable, cut to ``limit`` characters, ending in ``...`` when cut (ECS's
    field limit). A ``ServiceEventText`` stays one, with its reason."""
    clipped = printable(text)
    clipped = clipped if len(clipped) <= limit else clipped[: limit - 3] + "..."
    return text.with_text(clipped) if isinstance(text, ServiceEventText) else clipped


def start_failure(prefix: str, detail: str) -> str:
    """A start failure in ECS's ``<Category>Error: <detail>`` form, clipped to the field limit."""
    detail = " ".join(detail.split())
    return clip(f"{prefix}: {detail}" if detail else prefix)


def task_role_not_found(role: str, account: str, field: str, namespace: str) -> str:
    """Operator wording: the task role maps to a ServiceAccount the namespace does not have
    (ECS fails a task whose role cannot be assumed the same way, before any container starts).
    Names both the role and the ServiceAccount tried."""
    return start_failure(
        RESOURCE_INITIALIZATION,
        f'unable to assume the task role "{role}" ({field}): ServiceAccount "{account}" not '
        f"found in namespace {namespace}",
    )


def dependency_not_successful(dependency: str, target: str) -> str:
    """The ECS agent's reason for a container whose SUCCESS dependency exited non-zero."""
    return (
        f"dependency graph: failed to resolve container ordering dependency [{dependency}] "
        f"for target [{target}] as dependency did not exit successfully."
    )


def dependency_never_started(dependency: str, target: str) -> str:
    """The ECS agent's reason for a container whose dependency can never start."""
    return (
        f"dependency graph: failed to resolve container ordering dependency [{dependency}] "
        f"for target [{target}] because dependency will never start"
    )


def unschedulable(detail: str) -> str:
    """stoppedReason of a task whose pod no node accepted (operator wording, ECS's prefix)."""
    return start_failure(TASK_FAILED_TO_START, detail or "no node can run the task")


def node_lost(node: str) -> str:
    """stoppedReason of a task whose node stopped answering (modelled on ECS's
    ``Host EC2 (instance {id}) stopped/terminated``)."""
    return f"Task stopped: its node (node {node}) was lost"


def pod_disrupted(cause: str, detail: str) -> str:
    """stoppedReason of a task whose pod Kubernetes removed (eviction, preemption, pod GC)."""
    detail = " ".join(detail.split())
    return clip(f"Task stopped: its pod was {cause}" + (f": {detail}" if detail else ""))


def pod_failed(detail: str) -> str:
    """stoppedReason of a task whose pod ended without an essential container exiting."""
    return clip("Task stopped: its pod failed: " + " ".join(detail.split()))


def container_exited(name: str, exit_code: int | None, reason: str | None = None) -> str:
    """Event message for a container that stopped, e.g. ``Container log exited with code 1``."""
    code = "without running" if exit_code is None else f"with code {exit_code}"
    return f"Container {name} exited {code}" + (f": {reason}" if reason else "")


def status_message(task: str, last_status: str, node: str | None) -> str:
    """Event message for a lifecycle step, e.g. ``Task web-1 is RUNNING on node (node n1)``."""
    where = f" on node (node {node})" if node else ""
    return f"Task {task} is {last_status}{where}"


# ---------------------------------------------------------------------------------------------
# Services. Event messages use the API form ``(service NAME)`` ("service (NAME)" is only the
# console's). *Decision*: a task is referred to by its Task's name, in ECS's ``(task …)``
# form: ``(task web-service-29a3f359ee)``, which ``kubectl get ecstask NAME`` (and
# ``kubectl ecs describe-tasks``) finds, where ECS shows the 32-hex task id that nothing here
# can look up (the id stays in the Task's ``status.taskArn``).
#
# Each message is also a Kubernetes Event on the Service, with a reason of its own per kind of
# event (``kubectl get events --field-selector reason=TasksStarted``): every text function
# below returns a ``ServiceEventText``, the text carrying its reason and event type, so the
# controller that records it needs no parsing.

TASK_FAILED_HEALTH_CHECKS: Final = "Task failed container health checks"
ROLLOUT_CIRCUIT_BREAKER_FAILED: Final = "ECS deployment circuit breaker: tasks failed to start."
# ServiceDeployment.statusReason of a deployment the circuit breaker rolled back (ECS's pattern,
# "Service deployment rolled back because ...", ecs-deployments.md §8).
SERVICE_DEPLOYMENT_ROLLED_BACK: Final = (
    "Service deployment rolled back because the circuit breaker threshold was exceeded."
)
# rolloutStateReason of a deployment an alarm failed, and the service event: ECS's texts as its
# 2022 announcement showed them (ecs-deployments.md §7.2 gives none; *inferred*).
ROLLOUT_ALARM_FAILED: Final = "ECS deployment detected triggered alarm(s)."
SERVICE_DEPLOYMENT_ROLLED_BACK_BY_ALARMS: Final = (
    "Service deployment rolled back because one or more alarms went into the ALARM state."
)
# Operator wording: why a deployment cannot start when ``resolve_reference`` gives no reason.
TASK_DEFINITION_UNRESOLVED: Final = "the task definition does not resolve"
_STEADY_STATE: Final = " has reached a steady state."

# Kubernetes Event reasons of the service events, one per kind.
REASON_STEADY_STATE: Final = "SteadyState"
REASON_TASKS_STARTED: Final = "TasksStarted"
REASON_TASKS_STOPPED: Final = "TasksStopped"
REASON_TASK_FAILED_HEALTH_CHECKS: Final = "TaskFailedHealthChecks"
REASON_UNABLE_TO_PLACE: Final = "UnableToPlaceTask"
REASON_TASK_STARTS_THROTTLED: Final = "TaskStartsThrottled"
REASON_DEPLOYMENT_COMPLETED: Final = "DeploymentCompleted"
REASON_DEPLOYMENT_FAILED: Final = "DeploymentFailed"
REASON_DEPLOYMENT_ROLLING_BACK: Final = "DeploymentRollingBack"
REASON_DEPLOYMENT_BLOCKED: Final = "DeploymentBlocked"
REASON_DEPLOYMENT_REFUSED: Final = "DeploymentRefused"
REASON_DEPLOYMENT_STAGE: Final = "DeploymentStage"
REASON_LIFECYCLE_HOOK: Final = "LifecycleHook"
REASON_AZ_BALANCED: Final = "AZBalanced"
REASON_AZ_REBALANCING: Final = "AZRebalancing"
REASON_TARGETS_REGISTERED: Final = "TargetsRegistered"
REASON_TARGETS_DEREGISTERED: Final = "TargetsDeregistered"
REASON_DRAINING_CONNECTIONS: Final = "DrainingConnections"
REASON_TARGET_UNHEALTHY: Final = "TargetUnhealthy"
REASON_ALARM_UNREADABLE: Final = "AlarmNotEvaluated"
REASON_SERVICE_EVENT: Final = "ServiceEvent"
"""The reason of a service event whose text carries none (every text below carries one)."""

SERVICE_EVENT_REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "steady state": REASON_STEADY_STATE,
        "tasks started (scaling, replacement, AZ rebalancing)": REASON_TASKS_STARTED,
        "tasks stopped (running or pending; AZ rebalancing)": REASON_TASKS_STOPPED,
        "a task failed its container health checks": REASON_TASK_FAILED_HEALTH_CHECKS,
        "unable to place a task": REASON_UNABLE_TO_PLACE,
        "unable to consistently start tasks (throttled)": REASON_TASK_STARTS_THROTTLED,
        "deployment completed": REASON_DEPLOYMENT_COMPLETED,
        "deployment failed (circuit breaker, alarms)": REASON_DEPLOYMENT_FAILED,
        "rolling back": REASON_DEPLOYMENT_ROLLING_BACK,
        "deployment blocked by min/max percent": REASON_DEPLOYMENT_BLOCKED,
        "unable to start a deployment": REASON_DEPLOYMENT_REFUSED,
        "a BLUE_GREEN/LINEAR/CANARY deployment's lifecycle stage": REASON_DEPLOYMENT_STAGE,
        "a lifecycle hook awaits action, is in progress, or ended": REASON_LIFECYCLE_HOOK,
        "spec fields accepted but not honoured": REASON_UNSUPPORTED_FIELDS,
        "AZ balanced": REASON_AZ_BALANCED,
        "AZ rebalancing in progress": REASON_AZ_REBALANCING,
        "targets registered": REASON_TARGETS_REGISTERED,
        "targets deregistered": REASON_TARGETS_DEREGISTERED,
        "draining connections": REASON_DRAINING_CONNECTIONS,
        "a target is unhealthy": REASON_TARGET_UNHEALTHY,
        "a deployment alarm cannot be evaluated": REASON_ALARM_UNREADABLE,
    }
)
"""Every kind of service event and its Kubernetes Event reason (each its own)."""


class ServiceEventText(str):
    """A service event's message, ECS's text, that knows its Kubernetes Event ``reason`` and
    ``type``: it is stored as text in ``status.events`` and recorded as an Event on the
    Service with that reason. ``clip`` keeps them."""

    reason: str
    type: EventType

    def __new__(cls, text: str, reason: str, type: EventType = "Normal") -> "ServiceEventText":
        made = super().__new__(cls, text)
        made.reason = reason
        made.type = type
        return made

    def __getnewargs__(self) -> tuple[str, str, EventType]:  # type: ignore[override]
        """What ``copy`` and ``pickle`` rebuild it from."""
        return str(self), self.reason, self.type

    def with_text(self, text: str) -> "ServiceEventText":
        """Another text of the same kind (clipped, say)."""
        return ServiceEventText(text, self.reason, self.type)


def service_event_kind(message: str) -> tuple[EventType, str]:
    """The Kubernetes Event type and reason to record service event ``message`` with."""
    if isinstance(message, ServiceEventText):
        return message.type, message.reason
    return "Normal", REASON_SERVICE_EVENT


LaunchPurpose = Literal["scale", "replace_unhealthy", "rebalance", "daemon"]

MAX_TASKS_PER_EVENT: Final = 10
"""Tasks listed in one started/stopped event; more tasks make more events."""


def task_batches(tasks: Sequence[str]) -> list[Sequence[str]]:
    """``tasks`` (names) in groups of ``MAX_TASKS_PER_EVENT``, one event message each."""
    return [
        tasks[start : start + MAX_TASKS_PER_EVENT]
        for start in range(0, len(tasks), MAX_TASKS_PER_EVENT)
    ]


def scaling_activity(deployment_id: str) -> str:
    """stoppedReason of a task the service scheduler stops (deployment, scale-in, rebalance)."""
    return f"Scaling activity initiated by (deployment {deployment_id})"


def hook_task_timed_out(hook_id: str) -> str:
    """stoppedReason of a lifecycle hook's Task stopped because its run timed out (operator
    wording: ECS has no task target)."""
    return f"Task stopped: lifecycle hook {hook_id} timed out (HOOK_TIMED_OUT)"


def node_draining(node: str) -> str:
    """stoppedReason of a service task replaced because its node is cordoned (ECS DRAINING);
    ECS leaves this text undocumented, so it follows ``node_lost``."""
    return f"Task stopped: its node (node {node}) is draining"


def rollout_in_progress(deployment_id: str) -> str:
    return f"ECS deployment {deployment_id} in progress."


def rollout_completed(deployment_id: str) -> str:
    return f"ECS deployment {deployment_id} completed."


def rollout_rolling_back(deployment_id: str, cause: str = ROLLOUT_CIRCUIT_BREAKER_FAILED) -> str:
    """rolloutStateReason of the deployment rolled back to, by what failed the other (the
    circuit breaker, alarms, or else a lifecycle hook: ``hook_rollback_reason``)."""
    if cause == ROLLOUT_ALARM_FAILED:
        return f"ECS deployment alarms: rolling back to deploymentId {deployment_id}."
    if cause == ROLLOUT_CIRCUIT_BREAKER_FAILED:
        return f"ECS deployment circuit breaker: rolling back to deploymentId {deployment_id}."
    return f"ECS deployment lifecycle hook: rolling back to deploymentId {deployment_id}."


def service_deployment_rolled_back(cause: str) -> str:
    """statusReason of a service deployment rolled back, by what failed it (its
    rollback.reason: the circuit breaker, alarms, or else a lifecycle hook)."""
    if cause == ROLLOUT_ALARM_FAILED:
        return SERVICE_DEPLOYMENT_ROLLED_BACK_BY_ALARMS
    if cause == ROLLOUT_CIRCUIT_BREAKER_FAILED:
        return SERVICE_DEPLOYMENT_ROLLED_BACK
    return f"Service deployment rolled back because of a lifecycle hook: {cause}"


def service_deployment_rollback_failed(deployment_id: str) -> str:
    """statusReason of a service deployment whose rollback failed too (operator wording)."""
    return (
        f"{ROLLOUT_CIRCUIT_BREAKER_FAILED} The rollback to deploymentId {deployment_id} "
        "failed: its tasks failed to start too."
    )


def service_deployment_superseded(deployment_id: str | None) -> str:
    """statusReason of a service deployment stopped before it finished because a newer one
    replaced it (operator wording: ECS documents none)."""
    newer = f" ({deployment_id})" if deployment_id else ""
    return f"Service deployment stopped: a newer service deployment{newer} replaced it."


def rolled_back(
    task_definition: str,
    deployment_id: str,
    failed_task_definition: str,
    cause: str = ROLLOUT_CIRCUIT_BREAKER_FAILED,
) -> str:
    """Degraded's message after a rollback (operator wording after ECS's ``cause``)."""
    return (
        f"{cause} Rolled back to {task_definition} "
        f"(deployment {deployment_id}); {failed_task_definition} is tried again when the "
        "spec changes."
    )


def service_deleting(service: str) -> str:
    """stoppedReason of the tasks of a load-balanced Service being deleted (operator wording)."""
    return f"Service {service} is being deleted"


def _task_list(tasks: Sequence[str]) -> str:
    return " ".join(f"(task {task})" for task in tasks)


def service_steady(service: str) -> ServiceEventText:
    return ServiceEventText(f"(service {service}){_STEADY_STATE}", REASON_STEADY_STATE)


def is_service_steady(message: str) -> bool:
    """Whether a recorded service event is ``service_steady``'s (the history keeps only text)."""
    return message.endswith(_STEADY_STATE)


def service_tasks_started(
    service: str,
    tasks: Sequence[str],
    purpose: LaunchPurpose = "scale",
    zone: str | None = None,
) -> ServiceEventText:
    """``(service S) has started N tasks: (task a) (task b).`` (``tasks``: their names), with
    ECS's variants for unhealthy replacements and AZ rebalancing (``zone``)."""
    count = len(tasks)
    if purpose == "rebalance":
        message = (
            f"(service {service}) has started {count} tasks in {zone} to AZ Rebalance: "
            f"{_task_list(tasks)}."
        )
    else:
        message = f"(service {service}) has started {count} tasks: {_task_list(tasks)}."
    if purpose == "replace_unhealthy":
        message += f" Amazon ECS replaced {count} tasks due to an unhealthy status."
    return ServiceEventText(message, REASON_TASKS_STARTED)


def service_tasks_stopped(
    service: str, tasks: Sequence[str], zone: str | None = None
) -> ServiceEventText:
    """``(service S) has stopped N running tasks: (task a).`` (``tasks``: their names;
    ``zone``: AZ rebalancing)."""
    where = f" in {zone} due to AZ rebalancing" if zone else ""
    return ServiceEventText(
        f"(service {service}) has stopped {len(tasks)} running tasks{where}: {_task_list(tasks)}.",
        REASON_TASKS_STOPPED,
    )


def service_pending_stopped(service: str, count: int) -> ServiceEventText:
    return ServiceEventText(
        f"(service {service}) stopped {count} pending tasks.", REASON_TASKS_STOPPED
    )


def service_task_unhealthy(service: str, task: str) -> ServiceEventText:
    """``task``: the Task's name."""
    return ServiceEventText(
        f"(service {service}) (task {task}) failed container health checks.",
        REASON_TASK_FAILED_HEALTH_CHECKS,
        "Warning",
    )


def deployment_completed(service: str, deployment_id: str) -> ServiceEventText:
    return ServiceEventText(
        f"(service {service}) (deployment {deployment_id}) deployment completed.",
        REASON_DEPLOYMENT_COMPLETED,
    )


def deployment_stage(
    service: str, deployment_id: str, stage: str, weight: float, revision: str, minutes: int
) -> ServiceEventText:
    """A BLUE_GREEN, LINEAR or CANARY deployment entered a lifecycle stage (or traffic step).
    ECS documents no service event for these (ecs-deployments.md §10.7): operator wording."""
    head = f"(service {service}) (deployment {deployment_id})"
    if stage == "SCALE_UP":
        message = f"{head} is starting {revision} beside the current tasks (SCALE_UP)."
    elif stage == "TEST_TRAFFIC_SHIFT":
        message = f"{head} is shifting test traffic to {revision} (TEST_TRAFFIC_SHIFT)."
    elif stage == "PRODUCTION_TRAFFIC_SHIFT":
        message = (
            f"{head} shifted {weight:g}% of production traffic to {revision} "
            "(PRODUCTION_TRAFFIC_SHIFT)."
        )
    elif stage == "BAKE_TIME":
        message = (
            f"{head} is baking for {minutes} minutes with the previous revision still running "
            "(BAKE_TIME)."
        )
    else:
        message = f"{head} is stopping the previous revision's tasks (CLEAN_UP)."
    return ServiceEventText(message, REASON_DEPLOYMENT_STAGE)


_HOOK_EVENT_NAMES: Final = {
    "SUCCEEDED": "HOOK_SUCCEEDED",
    "FAILED": "HOOK_FAILED",
    "TIMED_OUT": "HOOK_TIMED_OUT",
}


def hook_awaiting_action(
    service: str, deployment_id: str, hook_id: str, stage: str, expires_at: datetime
) -> ServiceEventText:
    """A PAUSE hook holds the deployment (ECS's EventBridge HOOK_AWAITING_ACTION; ECS has no
    service event for it, ecs-deployments.md §10.7)."""
    expiry = expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return ServiceEventText(
        f"(service {service}) (deployment {deployment_id}) lifecycle hook {hook_id} is awaiting "
        f"action at {stage} until {expiry} (HOOK_AWAITING_ACTION).",
        REASON_LIFECYCLE_HOOK,
    )


def hook_in_progress(
    service: str,
    deployment_id: str,
    hook_id: str,
    stage: str,
    target: str,
    task: bool,
    rollback: bool = False,
) -> ServiceEventText:
    """An AWS_LAMBDA hook's run started: its URL is called until it answers, or its task
    definition runs as Task ``hook_id`` (ECS's EventBridge HOOK_IN_PROGRESS); ``rollback``: as
    the deployment's traffic returns to the previous revision."""
    doing = f"running {target} as task {hook_id}" if task else f"calling {target}"
    during = " in the rollback" if rollback else ""
    return ServiceEventText(
        f"(service {service}) (deployment {deployment_id}) lifecycle hook {hook_id} is in "
        f"progress at {stage}{during}: {doing} (HOOK_IN_PROGRESS).",
        REASON_LIFECYCLE_HOOK,
    )


def hook_answered(
    service: str,
    deployment_id: str,
    hook_id: str,
    status: str,
    timeout_action: str,
    target: str | None = None,
    why: str | None = None,
    rollback: bool = False,
) -> ServiceEventText:
    """A hook run ended: a PAUSE hook was continued (SUCCEEDED) or rolled back (FAILED); an
    AWS_LAMBDA hook's ``target`` succeeded or failed, ``why`` saying how (it answered so, its
    call failed, its task exited); either timed out (TIMED_OUT, its ``timeout_action``
    applies, except in a ``rollback``, which goes on whatever it answers): ECS's hook event
    names, operator wording."""
    if status == "TIMED_OUT" and rollback:
        outcome = "timed out in the rollback, which goes on"
    elif status == "TIMED_OUT":
        outcome = f"timed out: its timeout action {timeout_action} applies"
    elif target is None:
        outcome = "was continued" if status == "SUCCEEDED" else "was rolled back"
    elif status == "SUCCEEDED":
        outcome = f"succeeded: {target}: {why or 'answered SUCCEEDED'}"
    else:
        outcome = f"failed: {target}: {why or 'answered FAILED'}"
    rolls_back = status == "FAILED" or (timeout_action == "ROLLBACK" and status == "TIMED_OUT")
    if rollback and status == "FAILED":
        outcome += "; the rollback goes on"
    return ServiceEventText(
        f"(service {service}) (deployment {deployment_id}) lifecycle hook {hook_id} {outcome} "
        f"({_HOOK_EVENT_NAMES[status]}).",
        REASON_LIFECYCLE_HOOK,
        "Warning" if rolls_back else "Normal",
    )


def hook_unknown(service: str, hook_id: str) -> ServiceEventText:
    """spec.continueServiceDeployment names a hook no deployment of the service has (ECS
    answers ContinueServiceDeployment with InvalidParameterException then)."""
    return ServiceEventText(
        f"(service {service}) spec.continueServiceDeployment names lifecycle hook {hook_id}, "
        "which no deployment of the service has: ignored.",
        REASON_LIFECYCLE_HOOK,
        "Warning",
    )


def hook_rollback_reason(hook_id: str, status: str, why: str | None = None) -> str:
    """rolloutStateReason of a deployment a hook rolled back (operator wording)."""
    if status == "FAILED":
        return f"ECS deployment lifecycle hook {hook_id} FAILED: " + (
            why or "rolled back by its action."
        )
    return f"ECS deployment lifecycle hook {hook_id} TIMED_OUT: its timeout action is ROLLBACK."


def deployment_failed(service: str, deployment_id: str) -> ServiceEventText:
    return ServiceEventText(
        f"(service {service}) (deployment {deployment_id}) deployment failed: "
        "tasks failed to start.",
        REASON_DEPLOYMENT_FAILED,
        "Warning",
    )


def deployment_failed_by_alarms(
    service: str, deployment_id: str, alarms: Sequence[str]
) -> ServiceEventText:
    """ECS's event, then the alarms (operator addition: ECS names them in the deployment)."""
    return ServiceEventText(
        f"(service {service}) (deployment {deployment_id}) deployment failed: alarm detected. "
        f"In ALARM: {', '.join(alarms)}.",
        REASON_DEPLOYMENT_FAILED,
        "Warning",
    )


def alarm_not_evaluated(service: str, problems: Sequence[tuple[str, str]]) -> ServiceEventText:
    """Operator wording: alarms of a deployment that could not be read (reported, throttled)."""
    listed = "; ".join(f"{name}: {why}" for name, why in problems)
    return ServiceEventText(
        f"(service {service}) was unable to evaluate deployment alarms: {listed}.",
        REASON_ALARM_UNREADABLE,
        "Warning",
    )


def deployment_rolling_back(service: str, deployment_id: str) -> ServiceEventText:
    return ServiceEventText(
        f"(service {service}) rolling back to deployment {deployment_id}.",
        REASON_DEPLOYMENT_ROLLING_BACK,
        "Warning",
    )


def service_throttled(service: str) -> ServiceEventText:
    return ServiceEventText(
        f"(service {service}) is unable to consistently start tasks successfully.",
        REASON_TASK_STARTS_THROTTLED,
        "Warning",
    )


def deployment_blocked(service: str) -> ServiceEventText:
    """min/max percent allow neither a start nor a stop."""
    return ServiceEventText(
        f"(service {service}) was unable to stop or start tasks during a deployment because of "
        "the service deployment configuration. Update the minimumHealthyPercent or "
        "maximumPercent value and try again.",
        REASON_DEPLOYMENT_BLOCKED,
        "Warning",
    )


def service_unable_to_place(
    service: str, closest: str | None, detail: str, zone: str | None = None
) -> ServiceEventText:
    """No node fits a service task. ``closest``/``detail`` come from a placement failure
    (``detail`` e.g. ``has insufficient memory available``); ``zone`` for AZ rebalancing."""
    where = f"is unable to place a task in {zone}" if zone else "was unable to place a task"
    message = (
        f"(service {service}) {where} because no container instance met all of its requirements."
    )
    if closest:
        message += f" The closest matching (container-instance {closest}) {detail}."
    return ServiceEventText(message, REASON_UNABLE_TO_PLACE, "Warning")


def az_balance(service: str, tasks_per_zone: Mapping[str, int], balanced: bool) -> ServiceEventText:
    """``(service S) is [not ]AZ balanced with 3 tasks in a, 1 tasks in b.`` (most first)."""
    zones = sorted(tasks_per_zone.items(), key=lambda item: (-item[1], item[0]))
    listed = ", ".join(f"{count} tasks in {zone}" for zone, count in zones)
    if balanced:
        return ServiceEventText(
            f"(service {service}) is AZ balanced with {listed}.", REASON_AZ_BALANCED
        )
    return ServiceEventText(
        f"(service {service}) is not AZ balanced with {listed}. AZ Rebalancing in progress.",
        REASON_AZ_REBALANCING,
    )


REASON_TASK_NAME_TAKEN: Final = "TaskNameTaken"
"""A launch's Task name (a service task's, or a task of a run) is held by another object."""
REASON_REVISION_NAME_TAKEN: Final = "RevisionNameTaken"


def run_tasks_launched(launched: Sequence[str], count: int) -> str:
    """Operator wording (ECS's RunTask answers with the tasks it started): the tasks of a run
    that were created, the first included."""
    return f"launched {len(launched)} of {count} tasks: {', '.join(launched)}"


def run_task_name_taken(task: str, holder: str) -> str:
    """Operator wording (RunTask's ``failures[]``): a task of a run was not created, its name
    being held by an object that is not that task (``holder``: whose it is)."""
    return (
        f"did not launch task {task}: a Task of that name exists and is not this run's ({holder})"
    )


def revision_name_taken(reference: str, name: str) -> str:
    """Operator wording: the ControllerRevision name revision `reference` would be stored under
    is held by an object this operator did not write; the number is skipped."""
    return (
        f"revision {reference} skipped: ControllerRevision {name} exists and is not a revision "
        "this operator registered"
    )


def service_task_name_taken(service: str, task: str, holder: str) -> str:
    """Operator wording: a launch's derived name is held by another Task (``holder`` says
    whose); that launch is skipped and made again under another name."""
    return f"(service {service}) did not start task {task}: a Task of that name exists ({holder})."


def service_task_definition_unusable(service: str, error: str) -> ServiceEventText:
    """Operator wording (ECS refuses such an UpdateService call outright)."""
    return ServiceEventText(
        f"(service {service}) was unable to start a deployment: {error}.",
        REASON_DEPLOYMENT_REFUSED,
        "Warning",
    )


NOT_HONOURED_PREFIX: Final = "accepted but not honoured on Kubernetes: "
"""Operator wording, before the list of fields (``field (reason); …``) a spec has and the
operator does not honour: in a TaskDefinition's Accepted message, a Service's Ready message and
their events."""


def service_fields_not_honoured(service: str, fields: str) -> ServiceEventText:
    """Operator wording: the Service's spec has fields Kubernetes cannot honour (``fields``:
    ``spec.cluster (why); …``), said when that list changes."""
    return ServiceEventText(
        f"(service {service}) {NOT_HONOURED_PREFIX}{fields}.", REASON_UNSUPPORTED_FIELDS, "Warning"
    )


# Events of conditions that last (no node fits a task, a deployment cannot start) would be said
# on every reconcile while they last; ECS says "unable to place" again only every few minutes
# per service. *Decision*: 5 minutes per service and kind, whatever the details (closest node,
# zone) of each message; an identical message still waits 6 hours unless the service reached
# a steady state in between (``core.deployments``).
REPEATING_EVENT_INTERVAL: Final = timedelta(minutes=5)


def repeating_event_due(last_recorded: datetime | None, now: datetime) -> bool:
    """Whether an event of a lasting condition, last recorded at ``last_recorded`` for this
    service and kind, may be recorded again ``now``."""
    if last_recorded is None:
        return True
    # A clock set back counts as the interval being over, rather than silencing the event.
    return not last_recorded <= now < last_recorded + REPEATING_EVENT_INTERVAL


# ---------------------------------------------------------------------------------------------
# Load balancers. ECS names the target group by its ARN; here the LoadBalancer's name stands in.

ELB_HEALTH_CHECKS_FAILED: Final = "Task failed ELB health checks"
REASON_LOAD_BALANCER_IN_USE: Final = "LoadBalancerInUse"
REASON_NAME_CONFLICT: Final = "NameConflict"


def targets_registered(service: str, count: int, load_balancer: str) -> ServiceEventText:
    """``(service S) registered N targets in (target-group LB)`` (ECS: no final period)."""
    return ServiceEventText(
        f"(service {service}) registered {count} targets in (target-group {load_balancer})",
        REASON_TARGETS_REGISTERED,
    )


def targets_deregistered(service: str, count: int, load_balancer: str) -> ServiceEventText:
    """``(service S) deregistered N targets in (target-group LB)`` (ECS: no final period)."""
    return ServiceEventText(
        f"(service {service}) deregistered {count} targets in (target-group {load_balancer})",
        REASON_TARGETS_DEREGISTERED,
    )


def draining_connections(service: str, task_count: int) -> ServiceEventText:
    """ECS's older form, without ``, taskSet ecs-svc/N`` (this operator has no task sets)."""
    return ServiceEventText(
        f"(service {service}) has begun draining connections on {task_count} tasks.",
        REASON_DRAINING_CONNECTIONS,
    )


def target_unhealthy(service: str, task: str, port: int, load_balancer: str) -> ServiceEventText:
    """A target (of Task ``task``, its name) turned unhealthy; readiness probes give no
    response code, so ECS's generic ``Health checks failed`` stands as the reason."""
    return ServiceEventText(
        f"(service {service}) (task {task}) (port {port}) is unhealthy in (target-group "
        f"{load_balancer}) due to (reason Health checks failed).",
        REASON_TARGET_UNHEALTHY,
        "Warning",
    )


def elb_health_checks_failed(load_balancer: str) -> str:
    """stoppedReason of a service task replaced for its unhealthy target."""
    return f"{ELB_HEALTH_CHECKS_FAILED} in (target-group {load_balancer})"


def load_balancer_in_use(load_balancer: str, services: Sequence[str]) -> str:
    """Operator wording (ELBv2 refuses DeleteTargetGroup with ResourceInUse)."""
    return (
        f"LoadBalancer {load_balancer} is being deleted while Services still use it: "
        f"{', '.join(sorted(services))}"
    )


def load_balancer_name_taken(load_balancer: str, kind: str, name: str, holder: str) -> str:
    """Operator wording: the Kubernetes object a LoadBalancer would publish through exists and
    is not the LoadBalancer's (``holder``: ``ownership.owner_description``), so nothing is
    published (as Kubernetes refuses EndpointSlice writes to `edit`, CVE-2021-25740)."""
    return (
        f"LoadBalancer {load_balancer} publishes nothing: the {kind} {name!r} in this namespace "
        f"is not managed by it ({holder}); rename the LoadBalancer or remove that {kind}"
    )


REASON_ROUTE_NOT_WEIGHTED: Final = "HTTPRouteNotWeighted"


RouteTraffic = Literal["production", "test"]
"""Which listener rule names an HTTPRoute: productionListenerRule or testListenerRule."""

# What happens instead when the route a listener rule names cannot carry its weights.
_ROUTE_FALLBACK: Final[dict[RouteTraffic, str]] = {
    "production": "production traffic moves by the endpoint mix instead",
    "test": "its test traffic is not steered to the test LoadBalancer",
}


def route_without_backends(
    route: str, production: str, test: str, traffic: RouteTraffic = "production"
) -> str:
    """Operator wording: the HTTPRoute a productionListenerRule or testListenerRule
    (``traffic``) names cannot carry its weights."""
    return (
        f"HTTPRoute {route} has no rule whose backendRefs name the Service {production} or "
        f"{test}: {_ROUTE_FALLBACK[traffic]}"
    )


def route_refused(
    route: str,
    action: str,
    code: int,
    message: str,
    traffic: RouteTraffic = "production",
) -> str:
    """Operator wording: the API server refused to read or weigh the named HTTPRoute (the
    operator's RBAC, a validating webhook, the route's own validation)."""
    return f"HTTPRoute {route} could not be {action}: {code} {message}: {_ROUTE_FALLBACK[traffic]}"


def route_not_found(route: str, traffic: RouteTraffic = "production") -> str:
    """Operator wording: the named HTTPRoute (or the Gateway API itself) is not served."""
    return (
        f"HTTPRoute {route} not found (is the Gateway API installed?): {_ROUTE_FALLBACK[traffic]}"
    )
