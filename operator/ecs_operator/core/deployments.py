"""The ECS service scheduler as a pure function: a Service and its tasks in, a plan out.

``plan_service(state, rng)`` is called on every reconcile (level-triggered). It reads the
Service (spec and previous status), all its Task objects (``ServiceTask``; include the tasks the
controller created but has not seen yet, so a lagging watch never causes a double launch), the
nodes (``ContainerInstance``) and the revision ``spec.taskDefinition`` resolves to now, and
returns a ``ServicePlan``: tasks to launch (each placed, then created as a Task object with
``startedBy`` = the deployment id), tasks to stop, the complete new status and the new event
messages. It does no I/O and has no clock (``state.now``); randomness (scale-in ties, event ids)
comes from ``rng``. ``core.service_planning`` wraps it for the Service controller: ELB-health
stops, placement, and the launch outcome appended with
``record_launches``/``record_placement_failures`` before the status is written.

Rules (ECS Developer Guide; the choices ECS leaves open are marked *decision*):

Deployments
    A new deployment starts when the spec resolves to a configuration other than the one the
    newest deployment was started for (``status.scheduler.lastDeploymentRequest``): another
    revision (also ``family`` whose latest ACTIVE revision moved), or another ``spec_hash``
    (placement, ``forceNewDeployment`` token, load balancers, network, launch type, tag
    propagation). ``desiredCount`` never starts one. The new deployment is PRIMARY
    (``rolloutState`` IN_PROGRESS); the previous ones are ACTIVE while they have tasks that are
    not STOPPED, then INACTIVE and dropped (*decision*: the newest COMPLETED one is kept, INACTIVE,
    while no listed deployment is COMPLETED: it is the circuit breaker's rollback target). Ids are
    ``ecs-svc/`` + 19 digits derived from (service uid, generation, revision, spec hash), so a
    recomputed plan after a crash names the same deployment. Tasks of a deployment the status
    does not list (status lost) are adopted as ACTIVE deployments; one running the wanted revision
    becomes the PRIMARY instead of being redeployed.

Rolling update (REPLICA; D = desiredCount)
    ``maxTasks = floor(D * maximumPercent / 100)``, ``minHealthy = ceil(D * minimumHealthyPercent
    / 100)`` (defaults 200/100; DAEMON 100/0). Tasks counted against maxTasks: every task whose
    desiredStatus is RUNNING and that is not STOPPED, of any deployment (*decision*, current ECS
    doc: tasks already stopping are not counted). Healthy: RUNNING and ``healthy(task)``
    (default: HEALTHY when the revision has an essential health check, else not UNHEALTHY;
    *decision*: no 40-second wait). Each plan, in order:

    1. tasks on a lost node (not Ready, or gone) are stopped (force, ``TerminationNotice``) and
       not counted, so their replacements start at once;
    2. tasks to replace -- of an older deployment, or on a cordoned (DRAINING) node -- that are
       not healthy are stopped at once (they do not count towards minHealthy), except what an
       older deployment holds (below);
    3. PRIMARY tasks UNHEALTHY past ``healthCheckGracePeriodSeconds`` (from ``startedAt``) are
       stopped (``Task failed container health checks``) once their replacement exists; when
       maximumPercent leaves no room for the replacement, one at a time;
    4. healthy tasks to replace are stopped while ``healthy - 1 >= minHealthy``: those on
       cordoned nodes first, then the oldest deployments, AZ-balanced within each
       (``choose_tasks_to_stop``);
    5. PRIMARY tasks beyond D (scale-in) are stopped: pending ones first, then by
       ``choose_tasks_to_stop`` with the service's strategies, healthy ones within minHealthy;
    6. ``min(D - primary tasks, maxTasks - counted tasks)`` PRIMARY tasks are launched, after
       the older deployments' replacements.

    Availability (ECS since 2025-11): each ACTIVE deployment holds a task count (its
    ``desiredCount`` in status: what it had when superseded, less what the rollout stopped).
    A task of it that exits or fails its health checks is replaced from its own revision, not
    the PRIMARY's, whatever the PRIMARY's health; a raise of D mid-deployment raises what each
    holds by the same factor (rounded down). Both only while healthy tasks are short of
    minHealthy (*decision*: beyond it the rollout would stop the task at once) and within
    maxTasks, the COMPLETED deployment first; its tasks on their way to healthy are kept as
    far as that shortfall needs them. A FAILED deployment holds nothing.

    Stops come before launches in one plan (a stopped task no longer counts), so e.g. D=4,
    50/200 stops 2 and starts 4 at once. When there is work left and neither a stop nor a launch
    is allowed and no task is on its way to healthy, the event says the configuration blocks the
    deployment (Degraded ``DeploymentBlocked``). The PRIMARY is COMPLETED when it alone has tasks,
    D of them RUNNING and healthy; events ``deployment completed`` then ``has reached a steady
    state``.

Circuit breaker (``deploymentCircuitBreaker.enable``)
    While the PRIMARY is IN_PROGRESS, each of its tasks that stopped before RUNNING or was
    stopped for failed health checks adds 1 to ``failedTasks``; a healthy PRIMARY task resets it
    to 0 (ECS ``resetOnHealthyTask``). At ``min(200, max(3, ceil(D / 2)))`` the PRIMARY is FAILED
    and launches nothing more (nor stops older tasks). With ``rollback`` the newest COMPLETED
    deployment becomes PRIMARY again, keeping its id (*decision*), IN_PROGRESS with ECS's
    rolling-back reason and its ``rollback`` flag set (what Progressing's ``RollingBack`` reads);
    the failed configuration stays in ``lastDeploymentRequest`` so it is not retried until the
    spec (or the family's latest revision) changes. A task counts as stopped for failed health
    checks by ``StopRequest.failed_health_checks``, which the Task keeps in an annotation.

Throttle (tasks that stop before RUNNING, any deployment; *decision* on the curve)
    After the k-th consecutive such failure the next launch waits ``throttle_delay_seconds(k)``:
    0, 5, 10, 20, 40 ... seconds, doubling, capped at 15 minutes; never giving up. A task reaching
    RUNNING or a new deployment (or rollback) resets it. ``is unable to consistently start tasks
    successfully`` is emitted once per episode, when the first delay applies.

Placement (*decision*: ECS documents no task group per deployment)
    Every task is placed in the service's task group ``service:NAME`` (``distinctInstance``,
    ``memberOf``'s ``task:group``), and CPU, memory, GPUs and ports count every task on the
    node. What the spread strategies count depends on the deployment. A rolling deployment (and
    a service between deployments) spreads over the whole task group, old and new tasks mixed,
    as ECS spreads a service. During a BLUE_GREEN, LINEAR or CANARY deployment each revision
    spreads over its own tasks only: green over green, blue's replacements over blue
    (``LaunchRequest.spread_counts``, the group ``deployment_group(id)``). Both run in full
    and green alone is what remains once blue stops; counted with blue's tasks, green would
    fill blue's gaps and end as uneven as blue was, the other way, and AZ rebalancing would
    follow COMPLETED. Spread over itself, green is AZ balanced (with room in every zone) when
    blue stops. A scale-in within a revision mirrors it (``choose_tasks_to_stop`` over that
    revision's tasks).

AZ rebalancing (REPLICA, ENABLED -- absent means ENABLED unless a binpack strategy is used)
    Only in steady state (*decision*). When the tasks per zone (zones with an eligible node count,
    with zero) differ by more than one (*decision*), one task is launched in the emptiest zone
    (``LaunchRequest.zone``) if maximumPercent allows, else one is first stopped in the fullest
    zone within minHealthy; once the extra task runs, the AZ-balanced scale-in stops one in the
    fullest zone. ECS's ``is not AZ balanced ... in progress`` / ``is AZ balanced`` bracket it.

DAEMON
    D = eligible nodes: Ready, not cordoned, no NoSchedule/NoExecute taint, and matching every
    memberOf constraint (service and revision). One PRIMARY task per eligible node; tasks on other
    nodes are stopped; a node whose old-deployment task is stopped (within minHealthy) gets its
    new task once nothing of the service is left running there (ports and resources are free).

Task definition unavailable
    When ``spec.taskDefinition`` does not resolve to an ACTIVE revision, only a *new*
    deployment is refused: one the spec asks for because no PRIMARY exists, the deployment
    fields changed, or the reference names another revision than the PRIMARY runs. Then
    Degraded is ``TaskDefinitionUnavailable``, ``was unable to start a deployment`` is said
    (throttled, below) and no steady state is said. A spec that still names what the PRIMARY
    runs (its family deleted, its revision INACTIVE) needs nothing new: the PRIMARY keeps
    replacing and scaling on its revision, as ECS services do. loadBalancers[] that do not fit
    the revision (``load_balancer_error``) are refused and reported the same way, always.

Events are recorded newest first, at most 100; an identical message is not repeated within
6 hours unless a steady state was reached in between; the steady-state message is repeated
only when something else happened since, or after 6 hours. Lasting conditions (``was unable to
place a task``, ``was unable to start a deployment``) are said at most every 5 minutes per
service and kind (``events.REPEATING_EVENT_INTERVAL``, *decision* after ECS's throttled
placement events), whatever their details. A plan whose outcome is the previous one returns
the previous status unchanged (``changed`` False, nothing to write); so does
``record_placement_failures`` for the same failure again.
"""

import hashlib
import json
import math
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from ecs_operator.core import alarms, events, labels, lifecycle_hooks, strategies, traffic_roles
from ecs_operator.core.alarms import AlarmReadings
from ecs_operator.core.conditions import set_condition
from ecs_operator.core.events import LaunchPurpose
from ecs_operator.core.placement import (
    SERVICE_DEFAULT_STRATEGIES,
    ContainerInstance,
    PlacementFailure,
    choose_tasks_to_stop,
    with_spread_counts,
)
from ecs_operator.core.query import Expression, QueryError, parse_expression
from ecs_operator.core.registration import MAX_UNSUPPORTED, unsupported_text
from ecs_operator.core.revisions import names_revision
from ecs_operator.core.service_fields import unsupported_service_fields
from ecs_operator.models.common import Condition, UnsupportedField
from ecs_operator.models.placement import PlacementConstraint, PlacementStrategy
from ecs_operator.models.service import (
    CONDITION_DEGRADED,
    CONDITION_PROGRESSING,
    CONDITION_READY,
    MAX_EVENTS,
    MAX_SERVICE_EVENT_LENGTH,
    Deployment,
    DeploymentRequest,
    LifecycleHookDetail,
    LifecycleStage,
    SchedulerState,
    ServiceEvent,
    ServiceSpec,
    ServiceStatus,
)
from ecs_operator.models.task import DesiredStatus, HealthStatus, LastStatus, StopCode, Task

__all__ = [
    "EVENT_REPEAT_AFTER",
    "HealthPredicate",
    "LaunchRequest",
    "ServicePlan",
    "ServiceState",
    "ServiceTask",
    "StopRequest",
    "az_rebalancing_enabled",
    "circuit_breaker_threshold",
    "deployment_bounds",
    "deployment_id",
    "deployment_spec_hash",
    "is_healthy",
    "placement_strategies",
    "plan_service",
    "record_events",
    "record_launches",
    "record_placement_failures",
    "record_repeating_events",
    "service_group",
    "service_selector",
    "throttle_delay_seconds",
]

DEFAULT_MAXIMUM_PERCENT: Final = {"REPLICA": 200, "DAEMON": 100}
DEFAULT_MINIMUM_HEALTHY_PERCENT: Final = {"REPLICA": 100, "DAEMON": 0}
CIRCUIT_BREAKER_MIN_THRESHOLD: Final = 3
CIRCUIT_BREAKER_MAX_THRESHOLD: Final = 200
THROTTLE_FIRST_DELAY_SECONDS: Final = 5.0
THROTTLE_MAX_DELAY_SECONDS: Final = 900.0
EVENT_REPEAT_AFTER: Final = timedelta(hours=6)
PENDING_STATES: Final[frozenset[LastStatus | None]] = frozenset(
    {None, "PROVISIONING", "PENDING", "ACTIVATING"}
)
# A task that stops on its own this soon after starting failed to start (ECS documents no
# figure; a crash-looping container exits well within it).
STARTUP_FAILURE_SECONDS: Final = 30.0

# Fields (by ECS name) whose change starts a new deployment, besides the task definition.
DEPLOYMENT_FIELDS: Final = (
    "placementStrategy",
    "placementConstraints",
    "forceNewDeployment",
    "loadBalancers",
    "networkConfiguration",
    "launchType",
    "propagateTags",
    "enableECSManagedTags",
    "serviceRegistries",
    "capacityProviderStrategy",
    "platformVersion",
)

# Condition reasons.
REASON_STEADY: Final = "SteadyState"
REASON_NOT_STEADY: Final = "NotSteady"
REASON_IN_PROGRESS: Final = "DeploymentInProgress"
REASON_ROLLING_BACK: Final = "RollingBack"
REASON_AWAITING_ACTION: Final = "AwaitingAction"
REASON_COMPLETED: Final = "DeploymentCompleted"
REASON_FAILED: Final = "DeploymentFailed"
REASON_BLOCKED: Final = "DeploymentBlocked"
REASON_THROTTLED: Final = "TasksFailingToStart"
REASON_UNPLACEABLE: Final = "TasksCannotBePlaced"
REASON_TASK_DEFINITION: Final = "TaskDefinitionUnavailable"
REASON_CONSTRAINT: Final = "InvalidPlacementConstraint"
REASON_AS_EXPECTED: Final = "AsExpected"


# ---------------------------------------------------------------------------------------------
# Inputs and outputs


@dataclass(frozen=True)
class ServiceTask:
    """One Task object of the service, as the scheduler sees it; build it with ``of``."""

    name: str
    task_id: str
    """The 32-hex ECS task id (events name the task by ``name``)."""
    deployment_id: str | None
    """``startedBy``: the deployment that launched it."""
    task_definition: str
    last_status: LastStatus | None
    """None: not observed yet (PROVISIONING)."""
    desired_status: DesiredStatus
    health_status: HealthStatus | None
    node: str | None
    zone: str | None
    created_at: datetime
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_code: StopCode | None = None
    stopped_for_health_checks: bool = False
    """Its Service stopped it for failed container or ELB health checks
    (``StopRequest.failed_health_checks``)."""
    health_checked: bool = False
    """The revision has a health check on an essential container: healthy means HEALTHY."""
    placed_node: str | None = None
    """The node its Service placed it on (``labels.PLACED_NODE_ANNOTATION``): where it runs or
    will run, before its status names ``node``."""

    @classmethod
    def of(cls, task: Task, now: datetime, *, health_checked: bool = False) -> "ServiceTask":
        """The view of a Task object; ``now`` stands in for a missing creation time."""
        status = task.status
        extra = task.metadata.model_extra or {}
        annotations = task.metadata.annotations or {}
        created = (status.created_at if status else None) or _parse_time(
            extra.get("creationTimestamp")
        )
        desired: DesiredStatus = (
            "STOPPED"
            if task.spec.desired_status == "STOPPED"
            or (status and status.desired_status == "STOPPED")
            else "RUNNING"
        )
        return cls(
            name=task.metadata.name,
            task_id=(status.task_arn if status else None)
            or (task.metadata.uid or task.metadata.name).replace("-", ""),
            deployment_id=task.spec.started_by,
            task_definition=(status.task_definition_arn if status else None)
            or task.spec.task_definition,
            last_status=status.last_status if status else None,
            desired_status=desired,
            health_status=status.health_status if status else None,
            node=status.node_name if status else None,
            zone=status.availability_zone if status else None,
            created_at=created or now,
            started_at=status.started_at if status else None,
            stopped_at=status.stopped_at if status else None,
            stop_code=status.stop_code if status else None,
            stopped_for_health_checks=(
                annotations.get(labels.FAILED_HEALTH_CHECKS_ANNOTATION) == "true"
            ),
            health_checked=health_checked,
            placed_node=annotations.get(labels.PLACED_NODE_ANNOTATION),
        )

    @property
    def stopped(self) -> bool:
        return self.last_status == "STOPPED"

    @property
    def live(self) -> bool:
        """Wanted running and not stopped: counted against maximumPercent."""
        return self.desired_status == "RUNNING" and not self.stopped

    @property
    def pending(self) -> bool:
        return self.last_status in PENDING_STATES

    @property
    def running(self) -> bool:
        return self.last_status == "RUNNING"

    @property
    def failed_to_start(self) -> bool:
        """Stopped on its own (not by the scheduler or a user) without ever running, or within
        ``STARTUP_FAILURE_SECONDS`` of starting: a container that exits at once fails its task
        as surely as one that never starts (circuit breaker and throttling count both)."""
        own_stop = self.stop_code in ("TaskFailedToStart", "EssentialContainerExited")
        if not self.stopped or not own_stop:
            return False
        if self.started_at is None or self.stopped_at is None:
            return True
        return (self.stopped_at - self.started_at).total_seconds() < STARTUP_FAILURE_SECONDS

    @property
    def failed_health_checks(self) -> bool:
        return (
            self.stopped
            and self.stop_code == "ServiceSchedulerInitiated"
            and self.stopped_for_health_checks
        )


HealthPredicate = Callable[[ServiceTask], bool]


def is_healthy(task: ServiceTask) -> bool:
    """The default health rule: RUNNING and HEALTHY (health-checked) or not UNHEALTHY.

    The controller passes its own predicate once load-balancer target health counts too."""
    if not task.running:
        return False
    if task.health_checked:
        return task.health_status == "HEALTHY"
    return task.health_status != "UNHEALTHY"


LONG_AGO: Final = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ServiceState:
    """Everything ``plan_service`` reads."""

    name: str
    uid: str
    generation: int
    spec: ServiceSpec
    status: ServiceStatus | None
    tasks: Sequence[ServiceTask]
    """Every Task of the service (STOPPED ones too: failures are counted from them)."""
    nodes: Sequence[ContainerInstance]
    now: datetime
    resolved_task_definition: str | None
    """``family:revision`` that spec.taskDefinition resolves to for a new deployment."""
    resolution_error: str | None = None
    """Why it does not resolve (``resolve_reference``'s text), when it does not."""
    load_balancer_error: str | None = None
    """Why ``spec.loadBalancers[]`` cannot be used with that revision (then
    ``resolved_task_definition`` is None): unlike a revision that is gone, this concerns the
    running deployment too (say its LoadBalancer is being deleted), so it is always reported."""
    task_definition_constraints: Sequence[PlacementConstraint] = ()
    """The resolved revision's placementConstraints (DAEMON eligibility, rebalancing zones)."""
    healthy: HealthPredicate = is_healthy
    traffic_applied_at: Callable[[str, float], datetime | None] = lambda _d, _w: LONG_AGO
    """Since when the load balancers carry a deployment's production share (None: not yet);
    a service without load balancers has no traffic to move (LONG_AGO)."""
    test_traffic_shifted: Callable[[Sequence[str]], bool] | None = None
    """Whether the test LoadBalancers list each of these tasks as an endpoint; None: no
    ``loadBalancers[]`` entry has an alternate (``load_balancing.test_traffic_check``)."""
    test_traffic_withdrawn: Callable[[Sequence[str]], bool] = lambda _tasks: True
    """Whether the test LoadBalancers no longer register any of these tasks (a rollback
    takes green out of them: ``load_balancing.test_traffic_withdrawn``); true without test
    LoadBalancers."""
    running_spec: ServiceSpec | None = None
    """The spec with the settings (placement, healthCheckGracePeriodSeconds, loadBalancers) of
    the service revision the Service runs, when they are not the spec's: after a rollback
    (``core.service_revisions.running_spec``). ``spec`` still says what a new deployment is."""
    alarms: AlarmReadings = field(default_factory=AlarmReadings)
    """The deployment alarms' states (``core.alarms``), read for ``spec``'s alarm names."""
    hook_replies: Mapping[str, lifecycle_hooks.HookReply] = field(default_factory=dict)
    """The replies of the AWS_LAMBDA hook calls made for this plan
    (``lifecycle_hooks.calls_due``), by hookId."""


@dataclass(frozen=True)
class LaunchRequest:
    """Launch ``count`` tasks of a deployment. Place them with ``core.placement`` using
    ``placement_strategies(spec)``, the group ``service_group(name)`` and the nodes
    ``spread_nodes`` returns; ``node`` pins a DAEMON task to one node, ``zone`` restricts an
    AZ-rebalancing launch to that zone's nodes."""

    deployment_id: str
    task_definition: str
    count: int
    purpose: LaunchPurpose = "scale"
    node: str | None = None
    zone: str | None = None
    spread_counts: tuple[tuple[str, int], ...] | None = None
    """(node, tasks) of the deployment's own live tasks, which the spread strategies count
    instead of the service's task group (a BLUE_GREEN, LINEAR or CANARY deployment: see
    "Placement" above); None: they count the task group."""


@dataclass(frozen=True)
class StopRequest:
    """Stop a task: ``spec.desiredStatus: STOPPED`` with this stop code and reason. ``force``:
    its node is lost, delete the pod without a grace period or load-balancer draining.
    ``failed_health_checks``: the circuit breaker counts the task as failed once stopped."""

    task: str
    stop_code: StopCode
    reason: str
    force: bool = False
    failed_health_checks: bool = False


@dataclass(frozen=True)
class ServicePlan:
    """The outcome of one plan: what to do and the complete new status."""

    status: ServiceStatus
    launch: tuple[LaunchRequest, ...] = ()
    stop: tuple[StopRequest, ...] = ()
    events: tuple[str, ...] = ()
    """New event messages (already in ``status.events``), e.g. for Kubernetes Events."""
    requeue_after: float | None = None
    """Plan again after this many seconds even if nothing changes (throttle, grace period)."""
    changed: bool = True
    """Whether ``status`` differs from the previous status (write it only then)."""


# ---------------------------------------------------------------------------------------------
# Small rules, public for the controller and the tests


def service_group(service: str) -> str:
    """ECS's task group of a service's tasks, used by spread and distinctInstance."""
    return f"service:{service}"


def service_selector(service: str) -> str:
    """Label selector of the service's Task objects and Pods (``status.selector``)."""
    return f"{labels.SERVICE_LABEL}={labels.label_value(service)}"


def deployment_group(deployment_id: str) -> str:
    """The group of one deployment's tasks, which only the spread strategies count (no task
    names it: its tasks are in ``service_group``)."""
    return f"deployment:{deployment_id}"


def spread_nodes(
    launch: LaunchRequest, nodes: Sequence[ContainerInstance]
) -> tuple[str | None, Sequence[ContainerInstance]]:
    """The group ``launch``'s tasks spread over when it is not the service's
    (``TaskRequirements.spread_over``; None: the service's), and ``nodes`` counting its tasks."""
    if launch.spread_counts is None:
        return None, nodes
    group = deployment_group(launch.deployment_id)
    return group, with_spread_counts(nodes, group, dict(launch.spread_counts))


def placement_strategies(spec: ServiceSpec) -> tuple[PlacementStrategy, ...]:
    """The strategies a service places and scales in with (default: AZ balance, then node)."""
    return tuple(spec.placement_strategy or SERVICE_DEFAULT_STRATEGIES)


def az_rebalancing_enabled(spec: ServiceSpec) -> bool:
    """``availabilityZoneRebalancing``; absent means ENABLED unless a binpack strategy is used.
    DAEMON services are never rebalanced (one task per node)."""
    if spec.scheduling_strategy == "DAEMON":
        return False
    if spec.availability_zone_rebalancing is not None:
        return spec.availability_zone_rebalancing == "ENABLED"
    return not any(s.type == "binpack" for s in spec.placement_strategy or ())


def deployment_bounds(spec: ServiceSpec, desired: int) -> tuple[int, int]:
    """``(maxTasks, minHealthy)`` for ``desired`` tasks, with the strategy's defaults."""
    configuration = spec.deployment_configuration
    strategy = spec.scheduling_strategy
    maximum = (configuration.maximum_percent if configuration else None) or (
        DEFAULT_MAXIMUM_PERCENT[strategy]
    )
    minimum = configuration.minimum_healthy_percent if configuration else None
    if minimum is None:
        minimum = DEFAULT_MINIMUM_HEALTHY_PERCENT[strategy]
    return desired * maximum // 100, -(-desired * minimum // 100)


def circuit_breaker_threshold(desired: int) -> int:
    """Failed tasks that fail a deployment: ``min(200, max(3, ceil(desired / 2)))``."""
    return min(
        CIRCUIT_BREAKER_MAX_THRESHOLD, max(CIRCUIT_BREAKER_MIN_THRESHOLD, math.ceil(desired / 2))
    )


def throttle_delay_seconds(consecutive_failures: int) -> float:
    """Wait before the next launch after ``consecutive_failures`` tasks failed to start:
    0 for none or one, then 5, 10, 20, 40 ... seconds, capped at 900 (ECS: 15 minutes)."""
    if consecutive_failures < 2:
        return 0.0
    exponent = min(consecutive_failures - 2, 16)  # 5 * 2**8 already exceeds the cap
    return min(THROTTLE_MAX_DELAY_SECONDS, THROTTLE_FIRST_DELAY_SECONDS * float(2**exponent))


def deployment_spec_hash(spec: ServiceSpec) -> str:
    """Digest of the spec fields (other than taskDefinition) that start a new deployment."""
    dumped = spec.model_dump(mode="json", exclude_none=True)
    relevant = {name: dumped[name] for name in DEPLOYMENT_FIELDS if name in dumped}
    text = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def deployment_id(service_uid: str, generation: int, task_definition: str, spec_hash: str) -> str:
    """``ecs-svc/`` + 19 digits, the same for the same inputs (restart-safe)."""
    digest = hashlib.sha256(
        f"{service_uid}/{generation}/{task_definition}/{spec_hash}".encode()
    ).digest()
    number = int.from_bytes(digest[:8], "big") % (9 * 10**18) + 10**18
    return f"ecs-svc/{number}"


# ---------------------------------------------------------------------------------------------
# Events


def _new_event(message: str, now: datetime, rng: random.Random) -> ServiceEvent:
    return ServiceEvent(
        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), created_at=now, message=message
    )


def _is_repeat(message: str, history: Sequence[ServiceEvent], now: datetime) -> bool:
    steady = events.is_service_steady(message)
    for event in history:
        if now - event.created_at >= EVENT_REPEAT_AFTER:
            return False
        if event.message == message:
            return True
        if steady or events.is_service_steady(event.message):
            return False  # the steady message repeats after anything else; others after steady
    return False


def record_events(
    status: ServiceStatus, messages: Iterable[str], now: datetime, rng: random.Random
) -> tuple[ServiceStatus, list[str]]:
    """``status`` with ``messages`` prepended (newest first, at most 100) and the messages
    actually recorded; repeats are dropped (see the module docstring)."""
    history = list(status.events or ())
    recorded: list[str] = []
    for text in messages:
        message = events.clip(text, MAX_SERVICE_EVENT_LENGTH)  # printable, as stored
        if _is_repeat(message, history, now):
            continue
        history.insert(0, _new_event(message, now, rng))
        recorded.append(message)
    if not recorded:
        return status, recorded
    return status.model_copy(update={"events": history[:MAX_EVENTS]}), recorded


RepeatingEvent = Literal["unable_to_place", "deployment_refused", "alarm_not_evaluated"]


def record_repeating_events(
    status: ServiceStatus,
    kind: RepeatingEvent,
    messages: Sequence[str],
    now: datetime,
    rng: random.Random,
) -> tuple[ServiceStatus, list[str]]:
    """``record_events`` for a lasting condition's messages, throttled per service and kind
    (``events.repeating_event_due``); the time of the last one recorded is kept in
    ``status.scheduler``."""
    scheduler = status.scheduler or SchedulerState()
    stamp = f"{kind}_event_at"  # the SchedulerState field of this kind
    last: datetime | None = getattr(scheduler, stamp)
    if not messages or not events.repeating_event_due(last, now):
        return status, []
    updated, recorded = record_events(status, messages, now, rng)
    if not recorded:
        return status, []
    stamped = scheduler.model_copy(update={stamp: now})
    return updated.model_copy(update={"scheduler": stamped}), recorded


def record_launches(
    status: ServiceStatus,
    service: str,
    launched: Mapping[LaunchRequest, Sequence[str]],
    now: datetime,
    rng: random.Random,
) -> tuple[ServiceStatus, list[str]]:
    """Record ``has started N tasks`` for the tasks created (their names) per launch request."""
    messages = [
        events.service_tasks_started(service, batch, request.purpose, request.zone)
        for request, task_ids in launched.items()
        for batch in events.task_batches(task_ids)
    ]
    return record_events(status, messages, now, rng)


def record_placement_failures(
    status: ServiceStatus,
    previous: ServiceStatus | None,
    service: str,
    failures: Sequence[tuple[LaunchRequest, PlacementFailure]],
    generation: int,
    now: datetime,
    rng: random.Random,
) -> tuple[ServiceStatus, list[str]]:
    """Record ``was unable to place a task ...`` (throttled: ``record_repeating_events``) and
    set Degraded (``TasksCannotBePlaced``) unless it already says something more specific.
    ``previous`` is the status before the plan: a condition that was already set keeps its
    transition time, so failing again the same way changes nothing (and writes nothing). Plan
    again later (e.g. on node changes)."""
    if not failures:
        return status, []
    messages = [
        events.service_unable_to_place(service, failure.closest, failure.detail, request.zone)
        for request, failure in failures
    ]
    updated, recorded = record_repeating_events(status, "unable_to_place", messages, now, rng)
    conditions = list(updated.conditions or ())
    degraded = next((c for c in conditions if c.type == CONDITION_DEGRADED), None)
    if degraded is None or degraded.status != "True":
        condition = set_condition(
            previous.conditions if previous else None,
            CONDITION_DEGRADED,
            "True",
            REASON_UNPLACEABLE,
            messages[-1],
            generation,
            now,
        )
        conditions = [c for c in conditions if c.type != CONDITION_DEGRADED] + [condition]
        updated = updated.model_copy(update={"conditions": conditions})
    return updated, recorded


# ---------------------------------------------------------------------------------------------
# The planner


def plan_service(state: ServiceState, rng: random.Random) -> ServicePlan:
    """The scheduler's decisions for ``state`` (see the module docstring)."""
    return _Planner(state, rng).plan()


def _parse_time(value: object) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _constraint_expressions(
    constraints: Iterable[PlacementConstraint],
) -> tuple[list[Expression], str | None]:
    expressions = []
    for index, constraint in enumerate(constraints):
        if constraint.type == "memberOf" and constraint.expression is not None:
            try:
                expressions.append(parse_expression(constraint.expression))
            except QueryError as error:
                return [], f"placementConstraints[{index}].expression: {error}"
    return expressions, None


@dataclass
class _Blockers:
    """Why the plan could not do everything it wanted (for conditions and events)."""

    blocked: bool = False
    throttled: bool = False
    invalid_constraint: str | None = None


@dataclass
class _Work:
    """The plan under construction."""

    stops: dict[str, StopRequest] = field(default_factory=dict)
    launches: list[LaunchRequest] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    requeue: list[float] = field(default_factory=list)


class _Planner:
    def __init__(self, state: ServiceState, rng: random.Random) -> None:
        self.state = state
        self.rng = rng
        self.now = state.now
        self.spec = state.running_spec or state.spec  # what runs; the spec's hash starts them
        previous = state.status or ServiceStatus()
        self.previous = previous
        self.scheduler = (previous.scheduler or SchedulerState()).model_copy()
        self.deployments: list[Deployment] = [d.model_copy() for d in previous.deployments or ()]
        self.nodes = {node.name: node for node in state.nodes}
        self.work = _Work()
        self.blockers = _Blockers()
        self.spec_hash = deployment_spec_hash(state.spec)
        expressions, error = _constraint_expressions(
            [*(self.spec.placement_constraints or ()), *state.task_definition_constraints]
        )
        self.member_of = expressions
        self.blockers.invalid_constraint = error
        # Tasks whose stop already has its own event (AZ rebalancing names the zone).
        self.announced_stops: set[str] = set()
        # What each ACTIVE deployment holds after this plan, where the rolling plan decided it.
        self.held: dict[str, int] = {}
        # Deployment alarms that could not be read: (name, why).
        self.alarm_problems: tuple[tuple[str, str], ...] = ()

    # -- deployments ----------------------------------------------------------------------------

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)

    def _replace(self, old: Deployment, **changes: object) -> Deployment:
        new = old.model_copy(update=changes)
        self.deployments = [new if d.id == old.id else d for d in self.deployments]
        return new

    def _adopt_unlisted_deployments(self) -> None:
        """Deployments known only from their tasks' startedBy (the status was lost)."""
        listed = {d.id for d in self.deployments}
        by_id: defaultdict[str, list[ServiceTask]] = defaultdict(list)
        for task in self.state.tasks:
            if task.deployment_id and task.deployment_id not in listed and not task.stopped:
                by_id[task.deployment_id].append(task)
        for found_id, tasks in by_id.items():
            first = min(tasks, key=lambda t: t.created_at)
            self.deployments.append(
                Deployment(
                    id=found_id,
                    status="ACTIVE",
                    task_definition=first.task_definition,
                    desired_count=sum(t.live for t in tasks),
                    created_at=first.created_at,
                    updated_at=self.now,
                )
            )

    def _start_deployment_if_needed(self) -> None:
        resolved = self.state.resolved_task_definition
        if resolved is None:
            return
        request = DeploymentRequest(task_definition=resolved, spec_hash=self.spec_hash)
        primary = self.primary
        if primary is not None and (
            self.scheduler.last_deployment_request == request
            or (primary.task_definition, primary.spec_hash) == (resolved, self.spec_hash)
        ):
            # Unchanged, or changed back to what the PRIMARY runs (e.g. after a rollback).
            self.scheduler.last_deployment_request = request
            return
        if primary is None and self.scheduler.last_deployment_request is None:
            adopted = self._adoptable(resolved)
            if adopted is not None:
                self._replace(adopted, status="PRIMARY", spec_hash=self.spec_hash)
                self.scheduler.last_deployment_request = request
                return
        new_id = deployment_id(self.state.uid, self.state.generation, resolved, self.spec_hash)
        for deployment in self.deployments:
            if deployment.status == "PRIMARY":
                live = sum(t.live and t.deployment_id == deployment.id for t in self.state.tasks)
                held = min(deployment.desired_count, live)
                self._replace(deployment, status="ACTIVE", desired_count=held, updated_at=self.now)
        self.deployments = [d for d in self.deployments if d.id != new_id]
        strategy = strategies.strategy_of(self.spec)
        # Staged only while a revision serves production: a first deployment just starts tasks.
        staged = strategies.is_staged(strategy) and self._last_completed(new_id) is not None
        # ECS reconciles first when it starts while more than one revision has tasks.
        with_tasks = sum(d.status != "INACTIVE" for d in self.deployments if d.id != new_id)
        first_stage = "RECONCILE_SERVICE" if with_tasks > 1 else "PRE_SCALE_UP"
        self.deployments.insert(
            0,
            Deployment(
                id=new_id,
                status="PRIMARY",
                task_definition=resolved,
                spec_hash=self.spec_hash,
                created_at=self.now,
                updated_at=self.now,
                rollout_state="IN_PROGRESS",
                rollout_state_reason=events.rollout_in_progress(new_id),
                strategy=strategy,
                lifecycle_stage=first_stage if staged else None,
                stage_started_at=self.now if staged else None,
                production_traffic_weight=0.0 if staged else None,
            ),
        )
        self.scheduler.last_deployment_request = request
        self._reset_throttle()
        self.scheduler.az_rebalancing = False
        self.scheduler.rollback_cause = None

    def _last_completed(self, other_than: str) -> Deployment | None:
        """The newest COMPLETED deployment but ``other_than``: the revision serving production
        while another rolls out, and the circuit breaker's rollback target."""
        return max(
            (d for d in self.deployments if d.id != other_than and d.rollout_state == "COMPLETED"),
            key=lambda d: d.created_at,
            default=None,
        )

    def _adoptable(self, resolved: str) -> Deployment | None:
        """After a status loss: the newest adopted deployment running the wanted revision."""
        candidates = [d for d in self.deployments if d.task_definition == resolved]
        return max(candidates, key=lambda d: d.created_at, default=None)

    # -- failures: circuit breaker and throttle ------------------------------------------------

    def _reset_throttle(self) -> None:
        self.scheduler.consecutive_start_failures = 0
        self.scheduler.last_start_failure_at = None

    def _count_failures(self) -> None:
        watermark = self.scheduler.failures_counted_until
        fresh = [
            task
            for task in self.state.tasks
            if (task.failed_to_start or task.failed_health_checks)
            and (watermark is None or (task.stopped_at or task.created_at) > watermark)
        ]
        primary = self.primary
        if fresh:
            self.scheduler.failures_counted_until = max(
                (t.stopped_at or t.created_at) for t in fresh
            )
        start_failures = [t for t in fresh if t.failed_to_start]
        before = self.scheduler.consecutive_start_failures
        if start_failures:
            self.scheduler.consecutive_start_failures += len(start_failures)
            self.scheduler.last_start_failure_at = max(
                (t.stopped_at or t.created_at) for t in start_failures
            )
        last_failure = self.scheduler.last_start_failure_at
        if last_failure is not None and any(
            t.started_at is not None and t.started_at > last_failure for t in self.state.tasks
        ):
            self._reset_throttle()
        elif before < 2 <= self.scheduler.consecutive_start_failures:
            self.work.messages.append(events.service_throttled(self.state.name))
        if primary is None or primary.rollout_state != "IN_PROGRESS":
            return
        failed = primary.failed_tasks + sum(t.deployment_id == primary.id for t in fresh)
        if any(t.deployment_id == primary.id and self._healthy(t) for t in self.state.tasks):
            failed = 0
        if failed != primary.failed_tasks:
            self._replace(primary, failed_tasks=failed)

    def _throttled(self) -> bool:
        delay = throttle_delay_seconds(self.scheduler.consecutive_start_failures)
        last = self.scheduler.last_start_failure_at
        if delay <= 0 or last is None:
            return False
        remaining = (last + timedelta(seconds=delay) - self.now).total_seconds()
        if remaining <= 0:
            return False
        self.work.requeue.append(remaining)
        return True

    def _circuit_breaker(self, desired: int) -> None:
        configuration = self.spec.deployment_configuration
        breaker = configuration.deployment_circuit_breaker if configuration else None
        primary = self.primary
        if (
            breaker is None
            or not breaker.enable
            or primary is None
            or primary.rollout_state != "IN_PROGRESS"
            or primary.failed_tasks < circuit_breaker_threshold(desired)
        ):
            return
        self.work.messages.append(events.deployment_failed(self.state.name, primary.id))
        self._fail_primary(primary, events.ROLLOUT_CIRCUIT_BREAKER_FAILED, breaker.rollback)

    def _fail_primary(
        self, primary: Deployment, reason: str, rollback: bool, **changes: object
    ) -> None:
        """FAILED for ``reason``; back to the last COMPLETED deployment with ``rollback``, and
        always when staged (blue still serves)."""
        target = self._last_completed(primary.id)
        staged = primary.lifecycle_stage is not None  # blue still serves: always back to it
        rolling_back = (rollback or staged) and target is not None
        details = primary.lifecycle_hook_details
        if rolling_back and staged:
            details = self._with_rollback_runs(primary)
        self._replace(
            primary,
            status="ACTIVE" if rolling_back else "PRIMARY",
            rollout_state="FAILED",
            rollout_state_reason=reason,
            updated_at=self.now,
            lifecycle_hook_details=details,
            **changes,
        )
        if rolling_back and target is not None:
            self._replace(
                target,
                status="PRIMARY",
                rollout_state="IN_PROGRESS",
                rollout_state_reason=events.rollout_rolling_back(target.id, reason),
                rollback=True,
                failed_tasks=0,
                updated_at=self.now,
                # Production returns to it whole at once; the failed revision's tasks serve none.
                production_traffic_weight=strategies.FULL if staged else None,
            )
            self.work.messages.append(events.deployment_rolling_back(self.state.name, target.id))
            self.scheduler.rollback_cause = reason
            self._reset_throttle()

    # -- lifecycle hooks (core/lifecycle_hooks.py) ----------------------------------------

    def _with_rollback_runs(self, failed: Deployment) -> list[LifecycleHookDetail] | None:
        """``failed``'s runs and those of its rollback: the AWS_LAMBDA hooks of the traffic
        stages it had reached, run once more."""
        details = failed.lifecycle_hook_details or ()
        stages = lifecycle_hooks.rollback_stages(
            failed.lifecycle_stage,
            failed.production_traffic_weight,
            self.state.test_traffic_shifted is not None,
        )
        runs = lifecycle_hooks.rollback_runs(
            self.state.spec.deployment_configuration, failed.id, details, stages, self.now
        )
        for run in runs:
            self.work.messages.append(
                events.hook_in_progress(
                    self.state.name,
                    failed.id,
                    run.hook_id,
                    run.lifecycle_stage,
                    run.target_arn or "",
                    lifecycle_hooks.task_definition_of(run.target_arn) is not None,
                    rollback=True,
                )
            )
        return lifecycle_hooks.bounded([*details, *runs]) or None

    def _answer_rollback_hooks(self) -> None:
        """The replies and timeouts of the rollback runs (of the deployments rolled back),
        which end them and change nothing else; their first call is due once their stage's
        traffic is back (``_traffic_back``)."""
        primary = self.primary
        for deployment in list(self.deployments):
            details = deployment.lifecycle_hook_details or ()
            if deployment is primary or not lifecycle_hooks.rollback_waiting(details):
                continue
            answers = lifecycle_hooks.answer(
                details, None, self.now, self.state.hook_replies, rollback_only=True
            )
            updated = lifecycle_hooks.release(
                answers.details, self.now, self._traffic_back(primary, deployment)
            )
            if updated != list(details):
                self._replace(deployment, lifecycle_hook_details=updated, updated_at=self.now)
            self._tell_ended(deployment.id, answers.ended, rollback=True)
            wakeup = lifecycle_hooks.next_wakeup(updated, self.now)
            if wakeup is not None:
                self.work.requeue.append(wakeup)

    def _traffic_back(
        self, primary: Deployment | None, rolled_back: Deployment
    ) -> set[LifecycleStage]:
        """The traffic stages whose traffic has moved back off ``rolled_back``, whose rollback
        runs are released: PRODUCTION_TRAFFIC_SHIFT once production is back on the PRIMARY
        (``_production_back``), TEST_TRAFFIC_SHIFT once the test LoadBalancers no longer
        register any of its tasks (at once without test LoadBalancers). Only the runs' first
        call waits for this: the rollback itself never does."""
        back: set[LifecycleStage] = set()
        if self._production_back(primary):
            back.add("PRODUCTION_TRAFFIC_SHIFT")
        green = [t.name for t in self.state.tasks if t.deployment_id == rolled_back.id]
        if self.state.test_traffic_withdrawn(green):
            back.add("TEST_TRAFFIC_SHIFT")
        return back

    def _production_back(self, primary: Deployment | None) -> bool:
        """Whether the load balancers carry the PRIMARY's production share (a rollback's: all
        of it); a service without a share to carry has it at once."""
        if primary is None or primary.production_traffic_weight is None:
            return True
        weight = primary.production_traffic_weight
        return self.state.traffic_applied_at(primary.id, weight) is not None

    def _answer_hooks(self) -> None:
        """spec.continueServiceDeployment, the replies of the calls made for this plan and the
        timeouts due answer the PRIMARY's hook runs; a run that FAILED, or TIMED_OUT with
        ROLLBACK, rolls it back."""
        primary = self.primary
        if primary is None or primary.rollout_state != "IN_PROGRESS":
            return
        request = self.state.spec.continue_service_deployment
        answers = lifecycle_hooks.answer(
            primary.lifecycle_hook_details or (), request, self.now, self.state.hook_replies
        )
        if not answers.changed:
            return
        primary = self._replace(
            primary, lifecycle_hook_details=answers.details, updated_at=self.now
        )
        self._tell_ended(primary.id, answers.ended, rollback=False)
        failed = next((run.detail for run in answers.ended if run.rolls_back), None)
        if failed is not None:
            reason = events.hook_rollback_reason(
                failed.hook_id,
                failed.status,
                f"{failed.target_arn}: {failed.status_reason}" if failed.target_arn else None,
            )
            self._fail_primary(primary, reason, rollback=True)

    def _tell_ended(
        self, deployment_id: str, ended: Sequence[lifecycle_hooks.Answered], *, rollback: bool
    ) -> None:
        for run in ended:
            detail = run.detail
            self.work.messages.append(
                events.hook_answered(
                    self.state.name,
                    deployment_id,
                    detail.hook_id,
                    detail.status,
                    detail.timeout_action,
                    detail.target_arn,
                    detail.status_reason,
                    rollback=rollback,
                )
            )

    def _note_unknown_hook(self) -> None:
        """Say once when spec.continueServiceDeployment names a hook no deployment has."""
        request = self.state.spec.continue_service_deployment
        if request is None or request.hook_id == self.scheduler.ignored_hook_id:
            return
        known = {
            detail.hook_id
            for record in [*self.deployments, *(self.previous.service_deployments or ())]
            for detail in record.lifecycle_hook_details or ()
        }
        if request.hook_id not in known:
            self.scheduler.ignored_hook_id = request.hook_id
            self.work.messages.append(events.hook_unknown(self.state.name, request.hook_id))

    def _watch_alarms(self) -> None:
        """deploymentConfiguration.alarms (``core.alarms``): baselines, then an armed alarm in
        ALARM fails the PRIMARY; read again every interval while it is watched."""
        names = alarms.watched_names(self.spec)
        primary = self.primary
        if not names or primary is None or not alarms.monitoring(primary):
            return
        found = alarms.check(
            names, primary.alarms_armed or (), primary.alarms_ignored or (), self.state.alarms
        )
        primary = self._replace(
            primary,
            alarms_armed=list(found.armed) or None,
            alarms_ignored=list(found.ignored) or None,
        )
        self.alarm_problems = found.problems
        if not found.triggered:
            self.work.requeue.append(self.state.alarms.interval_seconds)
            return
        self.work.messages.append(
            events.deployment_failed_by_alarms(self.state.name, primary.id, found.triggered)
        )
        self._fail_primary(
            primary,
            events.ROLLOUT_ALARM_FAILED,
            alarms.rollback_wanted(self.spec),
            triggered_alarms=list(found.triggered),
        )

    def _alarm_bake_over(self, primary: Deployment) -> bool:
        """ROLLING with alarms completes only after the bake time from its first steady state
        (the staged strategies bake in BAKE_TIME); schedules the plan that completes it."""
        if not alarms.watched_names(self.spec) or not alarms.monitoring(primary):
            return True
        if primary.lifecycle_stage is not None:
            return True
        started = primary.alarm_bake_started_at or self.now
        if primary.alarm_bake_started_at is None:
            self._replace(primary, alarm_bake_started_at=started)
        remaining = (
            started + timedelta(seconds=self.state.alarms.bake_seconds) - self.now
        ).total_seconds()
        if remaining > 0:
            self.work.requeue.append(remaining)
            return False
        return True

    # -- task classification -------------------------------------------------------------------

    def _healthy(self, task: ServiceTask) -> bool:
        return task.live and self.state.healthy(task)

    def _lost(self, task: ServiceTask) -> bool:
        if task.node is None:
            return False
        node = self.nodes.get(task.node)
        return node is None or not node.ready

    def _zone(self, task: ServiceTask) -> str | None:
        """The task's zone, else its node's: a RUNNING task's status can lack its zone for a
        moment (written before the Pod's node was seen), and counting it nowhere would make a
        balanced service look unbalanced and rebalance healthy tasks away."""
        if task.zone:
            return task.zone
        node = self.nodes.get(task.node or "")
        return node.zone if node is not None else None

    def _by_zone(self, tasks: Iterable[ServiceTask]) -> dict[str, list[ServiceTask]]:
        grouped: defaultdict[str, list[ServiceTask]] = defaultdict(list)
        for task in tasks:
            grouped[self._zone(task) or ""].append(task)
        return dict(grouped)

    def _draining(self, task: ServiceTask) -> bool:
        node = self.nodes.get(task.node or "")
        return node is not None and not node.schedulable

    def _unhealthy_due(self, task: ServiceTask) -> bool:
        """UNHEALTHY past the grace period; schedules a re-plan when the grace period ends."""
        if not task.running or task.health_status != "UNHEALTHY":
            return False
        grace = timedelta(seconds=self.spec.health_check_grace_period_seconds)
        remaining = ((task.started_at or task.created_at) + grace - self.now).total_seconds()
        if remaining > 0:
            self.work.requeue.append(remaining)
            return False
        return True

    def _eligible(self, node: ContainerInstance) -> bool:
        return (
            node.ready
            and node.schedulable
            and not node.blocking_taints
            and all(e.matches(node, node.group_counts) for e in self.member_of)
        )

    def _live(self) -> list[ServiceTask]:
        """Live tasks not stopped by this plan."""
        return [t for t in self.state.tasks if t.live and t.name not in self.work.stops]

    # -- stopping ------------------------------------------------------------------------------

    def _stop(self, task: ServiceTask, code: StopCode, reason: str, force: bool = False) -> None:
        self.work.stops[task.name] = StopRequest(task.name, code, reason, force)

    def _stop_unhealthy_task(self, task: ServiceTask) -> None:
        """Failed container health checks past the grace period: stopped, counted as failed."""
        self.work.messages.append(events.service_task_unhealthy(self.state.name, task.name))
        self.work.stops[task.name] = StopRequest(
            task.name,
            "ServiceSchedulerInitiated",
            events.TASK_FAILED_HEALTH_CHECKS,
            failed_health_checks=True,
        )

    def _scheduler_stop(self, task: ServiceTask) -> None:
        primary = self.primary
        reason = (
            events.node_draining(task.node or "")
            if self._draining(task)
            else events.scaling_activity(primary.id if primary else task.deployment_id or "")
        )
        self._stop(task, "ServiceSchedulerInitiated", reason)

    def _stop_lost(self) -> None:
        for task in self.state.tasks:
            if task.live and self._lost(task):
                self._stop(task, "TerminationNotice", events.node_lost(task.node or ""), True)

    def _stop_order(
        self, tasks: Sequence[ServiceTask], strategies: Sequence[PlacementStrategy]
    ) -> list[ServiceTask]:
        """``tasks`` in the order scale-in would stop them (placement mirror)."""
        by_name = {t.name: t for t in tasks}
        by_node: defaultdict[str, list[str]] = defaultdict(list)
        for task in tasks:
            by_node[task.node or ""].append(task.name)
        instances = [n for n in self.nodes.values() if n.name in by_node]
        order = choose_tasks_to_stop(by_node, instances, len(tasks), strategies, self.rng)
        return [by_name[name] for name in order]

    def _stop_healthy(self, candidates: Sequence[ServiceTask], allowed: int) -> int:
        """Stop up to ``allowed`` of ``candidates`` (already ordered); returns how many."""
        chosen = list(candidates)[: max(0, allowed)]
        for task in chosen:
            self._scheduler_stop(task)
        return len(chosen)

    # -- REPLICA ---------------------------------------------------------------------------------

    def _plan_replica(self, primary: Deployment, desired: int) -> None:
        if primary.rollout_state == "FAILED":
            return  # ECS: a failed deployment launches nothing and leaves older tasks alone
        max_tasks, min_healthy = deployment_bounds(self.spec, desired)
        strategies = placement_strategies(self.spec)
        holding = self._holding(desired)
        live = self._live()
        replace = [t for t in live if t.deployment_id != primary.id or self._draining(t)]
        replace_names = {t.name for t in replace}
        unhealthy = [t for t in live if t.name not in replace_names and self._unhealthy_due(t)]
        unhealthy_names = {t.name for t in unhealthy}
        keepers = [t for t in live if t.name not in replace_names | unhealthy_names]
        healthy = sum(self._healthy(t) for t in live)
        failed: set[str] = set()
        on_the_way: list[ServiceTask] = []
        for task in replace:
            if self._healthy(task):
                continue
            if task.deployment_id not in holding or self._draining(task):
                self._scheduler_stop(task)
            elif self._unhealthy_due(task):
                self._stop_unhealthy_task(task)  # failed: its own deployment replaces it
                failed.add(task.name)
            else:
                on_the_way.append(task)
        self._stop_unhealthy(unhealthy, len(keepers), desired, max_tasks - len(self._live()))
        missing = Counter(
            {
                held_id: target
                - sum(t.deployment_id == held_id and t.name not in failed for t in live)
                for held_id, (_, target) in holding.items()
            }
        )
        unfilled = self._hold_old_revisions(
            holding, missing, on_the_way, healthy - min_healthy, max_tasks
        )
        # Healthy tasks to replace: cordoned nodes first, then the oldest deployments.
        created = {d.id: d.created_at for d in self.deployments}
        groups: defaultdict[tuple[bool, datetime], list[ServiceTask]] = defaultdict(list)
        for task in replace:
            if task.name not in self.work.stops and self._healthy(task):
                key = (not self._draining(task), created.get(task.deployment_id or "", self.now))
                groups[key].append(task)
        ordered = [t for key in sorted(groups) for t in self._stop_order(groups[key], strategies)]
        healthy -= self._stop_healthy(ordered, healthy - min_healthy)
        healthy -= self._scale_in(keepers, desired, healthy - min_healthy, strategies)
        self._launch_replica(primary, desired, max_tasks, keepers, len(unhealthy))
        for held_id in holding:
            # What it holds now: its tasks left running, its replacements, those still wanted.
            self.held[held_id] = (
                sum(t.deployment_id == held_id for t in self._live())
                + sum(r.count for r in self.work.launches if r.deployment_id == held_id)
                + unfilled[held_id]
            )
        self._check_blocked(desired, max_tasks, healthy - min_healthy, primary)

    def _holding(self, desired: int) -> dict[str, tuple[Deployment, int]]:
        """The ACTIVE deployments a rolling deployment still serves from, each with the tasks
        it holds: its ``desiredCount`` in status (restart-safe). The COMPLETED one (what served
        before) comes first, then the newest first (*decision*: a superseded deployment that
        never completed must not take the shortfall from a revision known to work). FAILED
        ones hold nothing (ECS launches nothing for a failed deployment). A raise of the
        service's desiredCount since the last plan scales each by the same factor as the
        PRIMARY, rounded down (the rest goes to the PRIMARY): ECS applies a scale-out to both
        revisions."""
        before = self.previous.desired_count or 0
        active = [d for d in self.deployments if d.status == "ACTIVE"]
        active.sort(key=lambda d: (d.rollout_state != "COMPLETED", -d.created_at.timestamp()))
        holding: dict[str, tuple[Deployment, int]] = {}
        for deployment in active:
            if deployment.rollout_state == "FAILED":
                continue
            target = deployment.desired_count
            if 0 < before < desired:
                target = target * desired // before
            holding[deployment.id] = (deployment, target)
        return holding

    def _hold_old_revisions(
        self,
        holding: Mapping[str, tuple[Deployment, int]],
        missing: Mapping[str, int],
        on_the_way: Sequence[ServiceTask],
        healthy_allowance: int,
        max_tasks: int,
    ) -> Counter[str]:
        """ECS since 2025-11: while healthy tasks are below minHealthy, an ACTIVE deployment
        keeps its tasks on their way to healthy and replaces its ``missing`` (failed, or added
        by a scale-out) from its own revision, newest deployment first, as far as the shortfall
        and maximumPercent allow; what the rolling progress would stop now anyway (at or above
        minHealthy) is let go instead. Returns the replacements wanted but not launched (no
        room yet, or throttled): the deployment still holds them."""
        needed = max(0, -healthy_allowance)
        throttled = self._throttled()
        unfilled: Counter[str] = Counter()
        for held_id, (deployment, _) in holding.items():
            waiting = sorted(
                (t for t in on_the_way if t.deployment_id == held_id),
                key=lambda t: (not t.running, t.created_at),
            )
            for task in waiting[needed:]:
                self._scheduler_stop(task)
            needed -= min(needed, len(waiting))
            wanted = min(max(0, missing.get(held_id, 0)), needed)
            needed -= wanted
            room = max_tasks - len(self._live()) - sum(r.count for r in self.work.launches)
            count = 0 if throttled else max(0, min(wanted, room))
            if count:
                self.work.launches.append(LaunchRequest(held_id, deployment.task_definition, count))
            unfilled[held_id] = wanted - count
        return unfilled

    def _stop_unhealthy(
        self, unhealthy: Sequence[ServiceTask], keepers: int, desired: int, headroom: int
    ) -> None:
        """Stop the PRIMARY's unhealthy tasks whose replacement exists; when maximumPercent
        leaves no room for a replacement first, one at a time."""
        with_replacement = max(0, keepers + len(unhealthy) - desired)
        count = min(len(unhealthy), with_replacement or (1 if headroom <= 0 else 0))
        for task in sorted(unhealthy, key=lambda t: t.started_at or t.created_at)[:count]:
            self._stop_unhealthy_task(task)

    def _scale_in(
        self,
        keepers: Sequence[ServiceTask],
        desired: int,
        healthy_allowance: int,
        strategies: Sequence[PlacementStrategy],
    ) -> int:
        """Stop PRIMARY tasks beyond ``desired``; returns how many healthy ones were stopped."""
        excess = len(keepers) - desired
        if excess <= 0:
            return 0
        rebalancing = self.scheduler.az_rebalancing
        if rebalancing:
            if any(not self._healthy(t) for t in keepers):
                return 0  # the rebalancing task is not running yet
            strategies = SERVICE_DEFAULT_STRATEGIES
        # Not yet RUNNING first, then running but not healthy; the newest first in each.
        unhealthy = sorted(
            (t for t in keepers if not self._healthy(t)),
            key=lambda t: (t.running, -t.created_at.timestamp()),
        )
        for task in unhealthy[:excess]:
            self._scheduler_stop(task)
        excess -= min(excess, len(unhealthy))
        ordered = self._stop_order([t for t in keepers if self._healthy(t)], strategies)
        chosen = ordered[: max(0, min(excess, healthy_allowance))]
        for task in chosen:
            self._scheduler_stop(task)
        running = [t for t in chosen if t.running]
        if rebalancing and running:
            for zone, tasks in self._by_zone(running).items():
                for batch in events.task_batches([t.name for t in tasks]):
                    self.work.messages.append(
                        events.service_tasks_stopped(self.state.name, batch, zone)
                    )
            self.announced_stops.update(t.name for t in running)
        return len(chosen)

    def _launch_replica(
        self,
        primary: Deployment,
        desired: int,
        max_tasks: int,
        keepers: Sequence[ServiceTask],
        unhealthy: int,
    ) -> None:
        if primary.rollout_state == "FAILED" or self._throttled():
            return
        kept = sum(1 for t in keepers if t.name not in self.work.stops)
        # An older revision's replacements (launched first) take their share of maximumPercent.
        launched = sum(r.count for r in self.work.launches)
        count = min(desired - kept, max_tasks - len(self._live()) - launched)
        if count <= 0:
            return
        replacing = min(count, max(0, min(unhealthy, desired - len(keepers))))
        if replacing:
            self.work.launches.append(
                LaunchRequest(primary.id, primary.task_definition, replacing, "replace_unhealthy")
            )
        if count - replacing:
            self.work.launches.append(
                LaunchRequest(primary.id, primary.task_definition, count - replacing)
            )

    def _check_blocked(
        self, desired: int, max_tasks: int, healthy_allowance: int, primary: Deployment
    ) -> None:
        """min/max percent allow neither a stop nor a launch, and nothing is in flight."""
        if self.work.stops or self.work.launches or primary.rollout_state == "FAILED":
            return
        if self.blockers.throttled:
            return
        live = self._live()
        work_left = any(t.deployment_id != primary.id or self._draining(t) for t in live) or (
            sum(t.deployment_id == primary.id for t in live) < desired
        )
        in_flight = any(not self._healthy(t) for t in live)
        if work_left and not in_flight and len(live) >= max_tasks and healthy_allowance < 1:
            self.blockers.blocked = True
            self.work.messages.append(events.deployment_blocked(self.state.name))

    # -- BLUE_GREEN, LINEAR, CANARY (core/strategies.py) ------------------------------------------

    def _plan_staged(self, primary: Deployment, desired: int) -> None:
        """Green (the PRIMARY) at ``desired`` beside blue (the revision serving production) at
        ``desired`` too, each replacing its own failed tasks; the stage moves as far as green's
        health and the bake times allow; CLEAN_UP stops blue."""
        blue = self._last_completed(primary.id)
        order = placement_strategies(self.spec)
        for task in self._live():
            # Neither revision in play: a deployment this one superseded mid-way.
            if task.deployment_id not in (primary.id, blue.id if blue else None):
                self._scheduler_stop(task)
        stage = strategies.Stage(
            primary.lifecycle_stage or "SCALE_UP",
            primary.production_traffic_weight or 0.0,
            primary.stage_started_at or primary.created_at,
        )
        configuration = self.spec.deployment_configuration
        details = list(primary.lifecycle_hook_details or ())
        check = self.state.test_traffic_shifted
        green = [t.name for t in self._live() if t.deployment_id == primary.id]

        def applied_at(weight: float) -> datetime | None:
            return self.state.traffic_applied_at(primary.id, weight)

        shifted = None if check is None else lambda: check(green)

        def moved_on(current: strategies.Stage, ready: bool) -> strategies.Advance:
            return strategies.advance(
                current,
                primary.strategy or "BLUE_GREEN",
                configuration,
                ready,
                applied_at,
                self.now,
                lambda at: lifecycle_hooks.passable(configuration, details, at),
                shifted,
            )

        passed: list[strategies.Stage] = []
        if stage.name in strategies.BEFORE_SCALE_UP:
            early = moved_on(stage, False)  # green starts only once these stages passed
            passed.extend(early.passed)
            stage = early.stage
        moved = strategies.Advance(stage, (), None)
        if stage.name not in strategies.BEFORE_SCALE_UP:
            moved = moved_on(stage, self._keep_count(primary, desired, order))
            passed.extend(moved.passed)
        for entered in passed:
            if entered.name in strategies.ANNOUNCED:
                self.work.messages.append(
                    events.deployment_stage(
                        self.state.name,
                        primary.id,
                        entered.name,
                        entered.weight,
                        primary.task_definition,
                        strategies.bake_minutes(configuration),
                    )
                )
        if moved.wait_seconds is not None:
            self.work.requeue.append(moved.wait_seconds)
        in_place = strategies.traffic_in_place(moved.stage, applied_at, shifted)
        details = self._start_hook_runs(primary, details, moved.stage, in_place)
        if blue is not None and moved.stage.name == "CLEAN_UP":
            for task in self._live():
                if task.deployment_id == blue.id:
                    self._scheduler_stop(task)
        elif blue is not None:
            self._keep_count(blue, desired, order)
        self._replace(
            primary,
            lifecycle_stage=moved.stage.name,
            stage_started_at=moved.stage.since,
            production_traffic_weight=moved.stage.weight,
            lifecycle_hook_details=details or None,
        )

    def _start_hook_runs(
        self,
        primary: Deployment,
        details: list[LifecycleHookDetail],
        stage: strategies.Stage,
        traffic_in_place: bool,
    ) -> list[LifecycleHookDetail]:
        """The hooks holding the deployment at ``stage`` start (PAUSE ones await action,
        AWS_LAMBDA ones are called; at a traffic stage once ``traffic_in_place``); plan again
        when a run expires or is due for a call (or at once if the spec answers one already)."""
        configuration = self.spec.deployment_configuration
        traffic = stage.name in strategies.TRAFFIC_HOOK_STAGES
        runs = (
            lifecycle_hooks.start_runs(
                configuration, primary.id, details, stage, self.now if traffic else None
            )
            if traffic_in_place
            else []
        )
        for run in runs:
            if run.target_arn is None:
                message = events.hook_awaiting_action(
                    self.state.name, primary.id, run.hook_id, stage.name, run.expires_at
                )
            else:
                message = events.hook_in_progress(
                    self.state.name,
                    primary.id,
                    run.hook_id,
                    stage.name,
                    run.target_arn,
                    lifecycle_hooks.task_definition_of(run.target_arn) is not None,
                )
            self.work.messages.append(message)
        details = lifecycle_hooks.bounded([*details, *runs])
        request = self.state.spec.continue_service_deployment
        if request is not None and any(run.hook_id == request.hook_id for run in runs):
            self.work.requeue.append(0.0)
        wakeup = lifecycle_hooks.next_wakeup(details, self.now)
        if wakeup is not None:
            self.work.requeue.append(wakeup)
        return details

    def _keep_count(
        self, deployment: Deployment, desired: int, order: Sequence[PlacementStrategy]
    ) -> bool:
        """Keep ``desired`` tasks of ``deployment``, replacing its failed ones from its own
        revision (ECS since 2025-11); whether all of them are healthy."""
        tasks = [t for t in self._live() if t.deployment_id == deployment.id]
        for task in tasks:
            if self._draining(task):
                self._scheduler_stop(task)
            elif self._unhealthy_due(task):
                self._stop_unhealthy_task(task)
        kept = [t for t in tasks if t.name not in self.work.stops]
        if len(kept) > desired:
            self._scale_in(kept, desired, len(kept), order)
            kept = [t for t in kept if t.name not in self.work.stops]
        missing = desired - len(kept)
        if missing > 0 and deployment.rollout_state != "FAILED" and not self._throttled():
            own = Counter(t.node or t.placed_node for t in kept)
            self.work.launches.append(
                LaunchRequest(
                    deployment.id,
                    deployment.task_definition,
                    missing,
                    spread_counts=tuple(sorted((n, c) for n, c in own.items() if n)),
                )
            )
        return len(kept) == desired and all(self._healthy(t) for t in kept)

    # -- AZ rebalancing ----------------------------------------------------------------------------

    def _rebalance(self, primary: Deployment, desired: int) -> None:
        live = self._live()
        # Called only in steady state: an IN_PROGRESS primary completes in this very plan, and
        # its own status write is not reconciled again, so the rebalance must not wait for it.
        if not az_rebalancing_enabled(self.spec) or primary.rollout_state == "FAILED":
            return
        counts: Counter[str] = Counter(
            {n.zone: 0 for n in self.nodes.values() if n.zone and self._eligible(n)}
        )
        counts.update(zone for zone in map(self._zone, live) if zone)
        if not counts:
            return
        if max(counts.values()) - min(counts.values()) <= 1:
            if self.scheduler.az_rebalancing:
                self.scheduler.az_rebalancing = False
                self.work.messages.append(events.az_balance(self.state.name, counts, True))
            return
        if not self.scheduler.az_rebalancing:
            self.scheduler.az_rebalancing = True
            self.work.messages.append(events.az_balance(self.state.name, counts, False))
        emptiest = min(counts, key=lambda zone: (counts[zone], zone))
        max_tasks, min_healthy = deployment_bounds(self.spec, desired)
        if len(live) >= max_tasks:
            if len(live) - 1 < min_healthy:
                return
            fullest = max(counts, key=lambda zone: (counts[zone], zone))
            in_fullest = [t for t in live if self._zone(t) == fullest]
            victim = self._stop_order(in_fullest, SERVICE_DEFAULT_STRATEGIES)[0]
            self._scheduler_stop(victim)
            self.work.messages.append(
                events.service_tasks_stopped(self.state.name, [victim.name], fullest)
            )
            self.announced_stops.add(victim.name)
        if self._throttled():
            return
        self.work.launches.append(
            LaunchRequest(primary.id, primary.task_definition, 1, "rebalance", zone=emptiest)
        )

    # -- DAEMON ------------------------------------------------------------------------------------

    def _plan_daemon(self, primary: Deployment, eligible: Sequence[ContainerInstance]) -> None:
        if primary.rollout_state == "FAILED":
            return
        desired = len(eligible)
        _, min_healthy = deployment_bounds(self.spec, desired)
        eligible_names = {n.name for n in eligible}
        live = self._live()
        by_node: defaultdict[str, list[ServiceTask]] = defaultdict(list)
        for task in live:
            if task.node in eligible_names:
                by_node[task.node or ""].append(task)
            elif task.node is not None:
                self._scheduler_stop(task)  # node cordoned or no longer matching
        healthy = sum(self._healthy(t) for t in live if t.name not in self.work.stops)
        old_healthy: list[ServiceTask] = []
        for node in sorted(by_node):
            tasks = by_node[node]
            mine = sorted(
                (t for t in tasks if t.deployment_id == primary.id),
                key=lambda t: (not self._healthy(t), not t.running, t.created_at),
            )
            for extra in mine[1:]:
                self._scheduler_stop(extra)
            if mine and self._unhealthy_due(mine[0]):
                self._stop_unhealthy_task(mine[0])
            for task in tasks:
                if task.deployment_id == primary.id:
                    continue
                if mine or not self._healthy(task):
                    healthy -= self._healthy(task)
                    self._scheduler_stop(task)
                else:
                    old_healthy.append(task)
        healthy -= self._stop_healthy(old_healthy, healthy - min_healthy)
        self._launch_daemon(primary, eligible)
        self._check_blocked(desired, desired, healthy - min_healthy, primary)

    def _launch_daemon(self, primary: Deployment, eligible: Sequence[ContainerInstance]) -> None:
        if primary.rollout_state == "FAILED":
            return
        occupied = {t.node for t in self.state.tasks if not t.stopped and t.node is not None}
        free = [n.name for n in eligible if n.name not in occupied]
        if not free or self._throttled():
            return
        for node in free:
            self.work.launches.append(
                LaunchRequest(primary.id, primary.task_definition, 1, "daemon", node=node)
            )

    # -- the plan ----------------------------------------------------------------------------------

    def plan(self) -> ServicePlan:
        self._adopt_unlisted_deployments()
        self._count_failures()
        self._start_deployment_if_needed()
        eligible = [n for n in self.state.nodes if self._eligible(n)]
        daemon = self.spec.scheduling_strategy == "DAEMON"
        desired = len(eligible) if daemon else self.spec.desired_count or 0
        self._circuit_breaker(desired)
        self._answer_hooks()
        self._watch_alarms()
        self._answer_rollback_hooks()
        self._stop_lost()
        primary = self.primary
        steady = False
        if primary is not None and self.blockers.invalid_constraint is None:
            self.blockers.throttled = self._throttled()
            if daemon:
                self._plan_daemon(primary, eligible)
            elif primary.lifecycle_stage is not None and primary.rollout_state == "IN_PROGRESS":
                self._plan_staged(primary, desired)
            else:
                self._plan_replica(primary, desired)
            self._note_unknown_hook()
            # Rebalancing happens in steady state and does not leave it.
            steady = self._steady(desired)
            if not daemon and steady:
                self._rebalance(primary, desired)
        self._stop_messages()
        return self._finish(desired, steady)

    def _stop_messages(self) -> None:
        by_name = {t.name: t for t in self.state.tasks}
        stopped = [by_name[name] for name in self.work.stops]
        running = [t.name for t in stopped if t.running and t.name not in self.announced_stops]
        pending = [t for t in stopped if not t.running]
        for batch in events.task_batches(running):
            self.work.messages.append(events.service_tasks_stopped(self.state.name, batch))
        if pending:
            self.work.messages.append(events.service_pending_stopped(self.state.name, len(pending)))

    # -- status ------------------------------------------------------------------------------------

    def _finish(self, desired: int, steady: bool) -> ServicePlan:
        live = self._live()
        remaining = [t for t in self.state.tasks if not t.stopped]
        primary = self.primary
        completing = (
            steady
            and primary is not None
            and primary.rollout_state == "IN_PROGRESS"
            and self._alarm_bake_over(primary)
        )
        # As ECS's target groups: the test LoadBalancers, which listed green, now carry
        # production, and the production ones take the next deployment's test traffic.
        swap = completing and primary is not None and primary.lifecycle_stage is not None
        if completing and primary is not None:
            self._replace(
                primary,
                rollout_state="COMPLETED",
                rollout_state_reason=events.rollout_completed(primary.id),
                lifecycle_stage=None,
                stage_started_at=None,
            )
            self.work.messages.append(events.deployment_completed(self.state.name, primary.id))
        refusal = self._deployment_refusal()
        # While its spec asks for a deployment that cannot start, the service is not where its
        # spec wants it: the refusal is told (throttled), not a steady state (each would make
        # the other "something new" and both would repeat on every plan).
        if steady and not self.work.launches and not self.work.stops and refusal is None:
            self.work.messages.append(events.service_steady(self.state.name))
        if self.blockers.invalid_constraint:
            self.work.messages.append(
                events.service_task_definition_unusable(
                    self.state.name, self.blockers.invalid_constraint
                )
            )
        self._update_deployments(live, remaining, desired)
        unsupported = unsupported_service_fields(self.state.name, self.state.spec)[:MAX_UNSUPPORTED]
        if unsupported and unsupported != (self.previous.unsupported or []):
            self.work.messages.append(
                events.service_fields_not_honoured(self.state.name, unsupported_text(unsupported))
            )
        status = ServiceStatus(
            observed_generation=self.state.generation,
            desired_count=desired,
            running_count=sum(t.running for t in live),
            pending_count=sum(t.pending for t in live),
            task_definition=primary.task_definition if primary else None,
            deployments=self.deployments,
            events=self.previous.events,
            conditions=self._conditions(steady, live, desired, unsupported),
            selector=service_selector(self.state.name),
            scheduler=self.scheduler,
            unsupported=unsupported or None,
            resolved_configuration=traffic_roles.recorded_roles(
                self.spec.load_balancers or (), self.previous, swap
            ),
        )
        status, recorded = record_events(status, self.work.messages, self.now, self.rng)
        if refusal is not None:
            message = events.service_task_definition_unusable(self.state.name, refusal)
            status, refused = record_repeating_events(
                status, "deployment_refused", [message], self.now, self.rng
            )
            recorded += refused
        if self.alarm_problems:
            message = events.alarm_not_evaluated(self.state.name, self.alarm_problems)
            status, unread = record_repeating_events(
                status, "alarm_not_evaluated", [message], self.now, self.rng
            )
            recorded += unread
        return ServicePlan(
            status=status,
            launch=tuple(self.work.launches),
            stop=tuple(self.work.stops.values()),
            events=tuple(recorded),
            requeue_after=min(self.work.requeue, default=None),
            changed=_comparable(status) != _comparable(self.previous),
        )

    def _deployment_refusal(self) -> str | None:
        """Why the new deployment the spec asks for cannot start, if it asks for one. Only a
        new deployment needs an ACTIVE revision (and loadBalancers[] that fit it): while the
        spec still names what the PRIMARY runs (say its family was deleted), the PRIMARY keeps
        launching on its revision, INACTIVE or not, and nothing is refused. Load balancer
        entries that do not fit are refused whether or not a deployment is wanted."""
        if self.state.load_balancer_error is not None:
            return self.state.load_balancer_error
        if self.state.resolved_task_definition is not None:
            return None
        primary = self.primary
        wanted = (
            primary is None
            or primary.spec_hash != self.spec_hash
            or not names_revision(self.spec.task_definition, primary.task_definition)
        )
        if not wanted:
            return None
        return self.state.resolution_error or events.TASK_DEFINITION_UNRESOLVED

    def _steady(self, desired: int) -> bool:
        """Only the PRIMARY has tasks, ``desired`` of them, all healthy, nothing to do."""
        primary = self.primary
        live = self._live()
        remaining = [t for t in self.state.tasks if not t.stopped]
        return (
            primary is not None
            and primary.rollout_state != "FAILED"
            and not self.work.stops
            and not self.work.launches
            and all(t.deployment_id == primary.id for t in remaining)
            and len(remaining) == len(live) == desired
            and all(self._healthy(t) for t in live)
        )

    def _update_deployments(
        self, live: Sequence[ServiceTask], remaining: Sequence[ServiceTask], desired: int
    ) -> None:
        updated: list[Deployment] = []
        for deployment in self.deployments:
            mine = [t for t in live if t.deployment_id == deployment.id]
            has_tasks = any(t.deployment_id == deployment.id for t in remaining) or any(
                r.deployment_id == deployment.id for r in self.work.launches
            )
            changes: dict[str, object] = {
                "desired_count": (
                    desired
                    if deployment.status == "PRIMARY"
                    else self.held.get(deployment.id, len(mine))
                ),
                "running_count": sum(t.running for t in mine),
                "pending_count": sum(t.pending for t in mine),
            }
            if deployment.status == "ACTIVE" and not has_tasks:
                changes["status"] = "INACTIVE"
            new = deployment.model_copy(update=changes)
            if new != deployment:
                new = new.model_copy(update={"updated_at": self.now})
            updated.append(new)
        completed = [d for d in updated if d.rollout_state == "COMPLETED"]
        keep_inactive = (
            None
            if any(d.status != "INACTIVE" for d in completed)
            else max(completed, key=lambda d: d.created_at, default=None)
        )
        # A deployment rolled back stays listed while its rollback runs wait, and one plan more
        # so that its service deployment records how they ended.
        waited = {
            d.id
            for d in self.previous.deployments or ()
            if lifecycle_hooks.rollback_waiting(d.lifecycle_hook_details)
        }
        waiting = {
            d.id for d in updated if lifecycle_hooks.rollback_waiting(d.lifecycle_hook_details)
        }
        kept = [
            d
            for d in updated
            if d.status != "INACTIVE" or d is keep_inactive or d.id in waited | waiting
        ]
        if any(d.status == "INACTIVE" and d.id in waited - waiting for d in kept):
            self.work.requeue.append(0.0)  # the plan that drops it
        rank = {"PRIMARY": 0, "ACTIVE": 1, "INACTIVE": 2}
        kept.sort(key=lambda d: (rank[d.status], -d.created_at.timestamp()))
        self.deployments = kept

    def _conditions(
        self,
        steady: bool,
        live: Sequence[ServiceTask],
        desired: int,
        unsupported: Sequence[UnsupportedField],
    ) -> list[Condition]:
        previous = self.previous.conditions
        generation = self.state.generation
        primary = self.primary
        healthy = sum(self._healthy(t) for t in live)
        pending = sum(t.pending for t in live)
        counts = f"{healthy} of {desired} tasks running and healthy, {pending} pending"
        if unsupported:
            counts += "; " + events.NOT_HONOURED_PREFIX + unsupported_text(unsupported)
        ready = set_condition(
            previous,
            CONDITION_READY,
            "True" if steady else "False",
            REASON_STEADY if steady else REASON_NOT_STEADY,
            counts,
            generation,
            self.now,
        )
        in_progress = primary is not None and primary.rollout_state == "IN_PROGRESS"
        if primary is None:
            progress_reason, progress_message = REASON_NOT_STEADY, "no deployment"
        elif in_progress and (awaiting := self._awaiting(primary)) is not None:
            progress_reason = REASON_AWAITING_ACTION
            progress_message = events.hook_awaiting_action(
                self.state.name,
                primary.id,
                awaiting.hook_id,
                awaiting.lifecycle_stage,
                awaiting.expires_at,
            )
        elif in_progress:
            progress_reason = REASON_ROLLING_BACK if primary.rollback else REASON_IN_PROGRESS
            progress_message = primary.rollout_state_reason or ""
            if self.alarm_problems:
                progress_message += " " + events.alarm_not_evaluated(
                    self.state.name, self.alarm_problems
                )
        else:
            progress_reason = (
                REASON_COMPLETED if primary.rollout_state == "COMPLETED" else REASON_FAILED
            )
            progress_message = primary.rollout_state_reason or ""
        progressing = set_condition(
            previous,
            CONDITION_PROGRESSING,
            "True" if in_progress else "False",
            progress_reason,
            progress_message,
            generation,
            self.now,
        )
        reason, message = self._degradation()
        degraded = set_condition(
            previous,
            CONDITION_DEGRADED,
            "False" if reason == REASON_AS_EXPECTED else "True",
            reason,
            message,
            generation,
            self.now,
        )
        return [ready, progressing, degraded]

    @staticmethod
    def _awaiting(deployment: Deployment) -> LifecycleHookDetail | None:
        """The deployment's first PAUSE hook awaiting action at its stage."""
        return next(
            (
                d
                for d in deployment.lifecycle_hook_details or ()
                if d.status == "AWAITING_ACTION"
                and d.lifecycle_stage == deployment.lifecycle_stage
                and d.started_at == deployment.stage_started_at
            ),
            None,
        )

    def _degradation(self) -> tuple[str, str]:
        name = self.state.name
        primary = self.primary
        request = self.scheduler.last_deployment_request
        if self.blockers.invalid_constraint:
            return REASON_CONSTRAINT, self.blockers.invalid_constraint
        refusal = self._deployment_refusal()
        if refusal is not None:
            return REASON_TASK_DEFINITION, refusal
        if primary is not None and primary.rollout_state == "FAILED":
            if primary.triggered_alarms:
                return REASON_FAILED, events.deployment_failed_by_alarms(
                    name, primary.id, primary.triggered_alarms
                )
            return REASON_FAILED, events.deployment_failed(name, primary.id)
        if (
            primary is not None
            and request is not None
            and (primary.task_definition, primary.spec_hash)
            != (request.task_definition, request.spec_hash)
        ):
            return REASON_FAILED, events.rolled_back(
                primary.task_definition,
                primary.id,
                request.task_definition,
                self.scheduler.rollback_cause or events.ROLLOUT_CIRCUIT_BREAKER_FAILED,
            )
        if self.blockers.blocked:
            return REASON_BLOCKED, events.deployment_blocked(name)
        if self.scheduler.consecutive_start_failures >= 2:
            return REASON_THROTTLED, events.service_throttled(name)
        return REASON_AS_EXPECTED, ""


def _comparable(status: ServiceStatus) -> dict[str, object]:
    return status.model_dump(mode="json", exclude_none=True)
