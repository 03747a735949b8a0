"""Load-balancer targets as pure functions: who is registered, in which state, and the
Kubernetes Service and EndpointSlices that carry the traffic.

``desired_targets(lb, services, now)`` is called on every reconcile of a LoadBalancer
(level-triggered) with every Service whose ``loadBalancers[]`` names it, their Task objects and
their Pods; the previous targets are read from ``lb.status.targets``. It returns the complete new
target list, the ECS events for the Services, and when to look again.

Target rules (ELBv2, adapted; *decision* marks what ELB leaves open or Kubernetes cannot see):

Registration
    A task is registered when its ``lastStatus`` is ACTIVATING or RUNNING, no stop is decided
    (spec or status ``desiredStatus`` RUNNING, the Task not being deleted), its Pod exists, is
    not being deleted and has an IP, and the entry's container declares ``containerPort`` in the
    Pod (ECS container names map to Pod container names through the Pod annotation
    ``ecs.operator.dev/containers``). Target = (Pod IP, containerPort), keyed by (task, port):
    two entries for the same port of one task are one target. *Decision*: every task of a
    Service uses the Service's current ``loadBalancers[]`` (ECS keeps each deployment's own).

Health
    The LoadBalancer's health check is rendered as the container's readiness probe
    (``readiness_probe``: successThreshold = healthyThresholdCount, failureThreshold =
    unhealthyThresholdCount), so the container's ``ready`` flag is the target's health:
    ready, once the task is RUNNING (registration done), -> ``healthy``; not ready after having
    been healthy -> ``unhealthy``
    (``Target.FailedHealthChecks``); not ready yet -> ``initial``
    (``Elb.InitialHealthChecking``), and ``unhealthy`` once ``(healthyThresholdCount +
    unhealthyThresholdCount) * intervalSeconds`` passed since registration (*decision*: the
    probe's individual results are invisible, and a healthy target needs only the first part).

Deregistration
    A registered target whose task gets a stop decided (or whose Service stops naming the
    LoadBalancer, or the Service was deleted: its tasks are then ``DepartedTasks``) while its
    Pod still runs starts ``draining`` (``Target.DeregistrationInProgress``, ``drainingSince``
    = now) and is removed ``deregistrationDelaySeconds`` later. The Task controller keeps the
    task DEACTIVATING while ``task_deregistering`` is true, so the Pod is only stopped after
    draining; a deleted task's drain finalizer holds it as long. If the task stops
    anyway while draining, the target stays ``draining`` until the delay ends, as ELB does, with
    ``taskStopped`` set, and is no longer an endpoint (*decision*). A target whose task stopped
    without draining (a crash, an essential exit, a lost node: ``connectivity`` DISCONNECTED) is
    removed at once.

Data path
    ``render_service``: a Service without selector named after the LoadBalancer, one port per
    listener (a TCP_UDP listener gives a TCP and a UDP port), ``targetPort`` = the port's name,
    since every target brings its own port. ``render_endpoint_slices``: the endpoints, grouped by
    target port (an EndpointSlice has one port set), at most 100 per slice, named ``LB-0``,
    ``LB-1`` ... in (port, service, task) order, so an unchanged target list renders identically.
    Healthy targets are ready and serving; draining ones are terminating, neither ready nor
    serving (no new connections, as ELB); initial and unhealthy targets are not listed.
"""

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from ecs_operator.core import events, labels, names, strategies, traffic_roles
from ecs_operator.core.conditions import set_condition
from ecs_operator.core.deployments import LONG_AGO, ServiceTask
from ecs_operator.core.ownership import managed_by_operator, owned_by, owner_description
from ecs_operator.core.security import Violation
from ecs_operator.models.common import UnsupportedField
from ecs_operator.models.loadbalancer import (
    CONDITION_DEGRADED,
    CONDITION_READY,
    DEFAULT_HTTP_CODE,
    DEFAULT_PATH,
    TRAFFIC_PORT,
    LoadBalancer,
    LoadBalancerSpec,
    LoadBalancerStatus,
    Target,
    TargetState,
    TrafficWeight,
)
from ecs_operator.models.service import Service, ServiceLoadBalancer, ServiceSpec
from ecs_operator.models.task import Task
from ecs_operator.models.taskdefinition import TaskDefinitionSpec

__all__ = [
    "MAX_ENDPOINTS_PER_SLICE",
    "DepartedTasks",
    "ServiceMembers",
    "ServicePort",
    "SliceChanges",
    "StatusUpdate",
    "TargetEvent",
    "TargetsPlan",
    "awaiting_registration",
    "deregistration_complete",
    "desired_targets",
    "draining_deadline",
    "failed_elb_health",
    "holding_services",
    "lb_status",
    "load_balancer_problems",
    "name_clash",
    "names_load_balancer",
    "own_endpoint_slices",
    "own_pods",
    "readiness_probe",
    "render_endpoint_slices",
    "render_service",
    "reported_refusal",
    "service_changes",
    "service_ports",
    "slice_changes",
    "task_deregistering",
    "task_load_balancer_health",
    "unsupported_fields",
]

MAX_ENDPOINTS_PER_SLICE: Final = 100
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
SLICE_MANAGED_BY_LABEL: Final = "endpointslice.kubernetes.io/managed-by"

REASON_INITIAL: Final = "Elb.InitialHealthChecking"
REASON_FAILED: Final = "Target.FailedHealthChecks"
REASON_DEREGISTRATION: Final = "Target.DeregistrationInProgress"
DESCRIPTIONS: Final[Mapping[str, str]] = {
    REASON_INITIAL: "Initial health checks in progress",
    REASON_FAILED: "Health checks failed",
    REASON_DEREGISTRATION: "Target deregistration is in progress",
}

_CONDITION_NAMES: Final = ("ready", "serving", "terminating")
_RUNNING_STATES: Final = frozenset({"ACTIVATING", "RUNNING"})
_STOPPED_STATES: Final = frozenset({"STOPPING", "DEPROVISIONING", "STOPPED"})


# ---------------------------------------------------------------------------------------------
# Inputs and outputs


@dataclass(frozen=True)
class ServiceMembers:
    """A Service that names the LoadBalancer (or still has targets in it), with its Tasks and
    their Pods (Pod manifests by task name; a Task's Pod has the Task's name)."""

    service: Service
    tasks: Sequence[Task]
    pods: Mapping[str, Mapping[str, Any]]
    by_deployment: Mapping[str, Sequence[ServiceLoadBalancer]] = field(default_factory=dict)
    """The loadBalancers of each deployment's service revision: a task registers with those of
    the deployment that started it (``core.service_revisions.task_spec``), else the Service's."""

    def entries(self, task: Task, lb_name: str) -> list[ServiceLoadBalancer]:
        """The task's loadBalancers[] entries that register it with ``lb_name``: those whose
        production LoadBalancer it is, and for a task of the deployment test traffic goes to,
        those whose test LoadBalancer it is."""
        found = self.by_deployment.get(task.spec.started_by or "")
        entries = self.service.spec.load_balancers if found is None else found
        tested = task.spec.started_by is not None and (
            task.spec.started_by == test_traffic_deployment(self.service)
        )
        return [
            e
            for e in entries or ()
            if names.load_balancer_of(e) == lb_name
            or (tested and names.alternate_load_balancer_of(e) == lb_name)
        ]

    def tests_with(self, lb_name: str) -> bool:
        """``lb_name`` is the test LoadBalancer of one of the Service's entries."""
        return lb_name in traffic_roles.alternates(self.service.spec.load_balancers or ())


@dataclass(frozen=True)
class DepartedTasks:
    """The Tasks (and their Pods, by task name) of ``service``, a Service that is gone but
    still has targets in the LoadBalancer: they register nothing, and their targets drain
    while garbage collection deletes them (each task's deletion waits for its drain)."""

    service: str
    tasks: Sequence[Task]
    pods: Mapping[str, Mapping[str, Any]]


def holding_services(lb: LoadBalancer) -> set[str]:
    """The Services that still have targets in ``lb`` (as its status lists them)."""
    return {t.service for t in (lb.status.targets or ())} if lb.status else set()


def names_load_balancer(
    spec: ServiceSpec, by_deployment: Mapping[str, Sequence[ServiceLoadBalancer]], lb_name: str
) -> bool:
    """Whether a Service running with ``spec`` names ``lb_name``, as a production or test
    LoadBalancer, in its own entries or in those of a deployment's service revision
    (``ServiceMembers.by_deployment``): it uses the LoadBalancer."""
    entries = [e for found in (spec.load_balancers, *by_deployment.values()) for e in found or ()]
    return lb_name in {names.load_balancer_of(e) for e in entries} | traffic_roles.alternates(
        entries
    )


def own_pods(
    candidates: Iterable[tuple[Mapping[str, Any], Mapping[str, Any] | None]],
) -> dict[str, Mapping[str, Any]]:
    """The Pods by task name of Tasks (bodies) each paired with the Pod of its name: only a
    Pod its Task owns (a Pod that merely has a task's name is not a target)."""
    return {
        task["metadata"]["name"]: pod
        for task, pod in candidates
        if pod is not None and owned_by(pod, task)
    }


@dataclass(frozen=True)
class TargetEvent:
    """An ECS service event caused by target changes; record it on ``service``."""

    service: str
    message: str


@dataclass(frozen=True)
class TargetsPlan:
    targets: tuple[Target, ...]
    """The complete new target list, in (service, task, port) order."""
    weights: tuple[TrafficWeight, ...] = ()
    """The production shares the targets carry, per Service with a weighted deployment."""
    events: tuple[TargetEvent, ...] = ()
    requeue_after: float | None = None
    """Look again after this many seconds (a draining delay or initial health check ends)."""


@dataclass(frozen=True)
class StatusUpdate:
    status: LoadBalancerStatus
    changed: bool
    """Whether ``status`` differs from the previous one (write it only then)."""


@dataclass(frozen=True)
class ServicePort:
    """One port of the Kubernetes Service (a listener; TCP_UDP gives two)."""

    name: str
    port: int
    protocol: Literal["TCP", "UDP"]
    app_protocol: str | None = None


@dataclass(frozen=True)
class SliceChanges:
    create: tuple[dict[str, Any], ...] = ()
    update: tuple[dict[str, Any], ...] = ()
    """Desired manifests carrying the current ``metadata.resourceVersion`` (for a replace)."""
    delete: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


@dataclass(frozen=True)
class _Candidate:
    """A task port that should be registered now."""

    service: str
    task: Task
    task_id: str
    ip: str
    port: int
    ready: bool


# ---------------------------------------------------------------------------------------------
# Small readers


def _stop_decided(task: Task) -> bool:
    status = task.status
    return (
        task.spec.desired_status == "STOPPED"
        or (status is not None and status.desired_status == "STOPPED")
        or (task.metadata.model_extra or {}).get("deletionTimestamp") is not None
    )


def _pod_alive(pod: Mapping[str, Any] | None) -> bool:
    """The Pod exists, is not being deleted, has not terminated (a stopped task keeps its Pod,
    whose IP may already be another Pod's) and has an IP."""
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    return status.get("phase") not in ("Succeeded", "Failed") and bool(status.get("podIP"))


def _container_names(pod: Mapping[str, Any]) -> dict[str, str]:
    """ECS container name -> Pod container name (identity without the annotation)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    try:
        mapping = json.loads(annotations.get(labels.CONTAINERS_ANNOTATION) or "{}")
    except json.JSONDecodeError:
        mapping = {}
    return {str(ecs): str(k8s) for k8s, ecs in mapping.items()} if isinstance(mapping, dict) else {}


def _pod_containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Regular containers and native sidecars (init containers that keep running)."""
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    return [*(spec.get("containers") or []), *sidecars]


def _port_readiness(
    pod: Mapping[str, Any], container_name: str, container_port: int
) -> bool | None:
    """The container's ``ready`` flag when it declares ``container_port``; None otherwise."""
    name = _container_names(pod).get(container_name, container_name)
    container = next((c for c in _pod_containers(pod) if c.get("name") == name), None)
    ports = [p.get("containerPort") for p in (container or {}).get("ports") or []]
    if container_port not in ports:
        return None
    status = pod.get("status") or {}
    statuses = [
        *(status.get("containerStatuses") or []),
        *(status.get("initContainerStatuses") or []),
    ]
    return any(s.get("name") == name and s.get("ready") is True for s in statuses)


def _candidates(
    lb_name: str, services: Sequence[ServiceMembers], now: datetime
) -> dict[tuple[str, int], _Candidate]:
    found: dict[tuple[str, int], _Candidate] = {}
    for members in services:
        for task in members.tasks:
            entries = members.entries(task, lb_name)
            status = task.status
            pod = members.pods.get(task.metadata.name)
            if (
                not entries
                or status is None
                or status.last_status not in _RUNNING_STATES
                or _stop_decided(task)
                or pod is None
                or not _pod_alive(pod)
            ):
                continue
            for entry in entries:
                ready = _port_readiness(pod, entry.container_name, entry.container_port)
                key = (task.metadata.name, entry.container_port)
                if ready is None or key in found:
                    continue
                found[key] = _Candidate(
                    service=members.service.metadata.name,
                    task=task,
                    task_id=ServiceTask.of(task, now).task_id,
                    ip=str(pod["status"]["podIP"]),
                    port=entry.container_port,
                    ready=ready,
                )
    return found


# ---------------------------------------------------------------------------------------------
# Target state machine


def draining_deadline(target: Target, delay_seconds: int) -> datetime | None:
    """When a draining target is removed; None unless it is draining."""
    if target.state != "draining" or target.draining_since is None:
        return None
    return target.draining_since + timedelta(seconds=delay_seconds)


def deregistration_complete(target: Target, lb: LoadBalancer, now: datetime) -> bool:
    """The target has drained for the LoadBalancer's whole deregistration delay."""
    deadline = draining_deadline(target, lb.spec.deregistration_delay_seconds)
    return deadline is not None and now >= deadline


def _initial_deadline(spec: LoadBalancerSpec, registered_at: datetime) -> datetime:
    check = spec.health_check
    thresholds = check.healthy_threshold_count + check.unhealthy_threshold_count
    return registered_at + timedelta(seconds=thresholds * check.interval_seconds)


def _with_state(target: Target, state: TargetState, reason: str | None, **changes: Any) -> Target:
    return target.model_copy(
        update={
            "state": state,
            "reason": reason,
            "description": DESCRIPTIONS.get(reason or ""),
            **changes,
        }
    )


class _Planner:
    def __init__(self, lb: LoadBalancer, now: datetime) -> None:
        self.lb = lb
        self.name = lb.metadata.name
        self.now = now
        self.registered: Counter[str] = Counter()
        self.deregistered: Counter[str] = Counter()
        self.draining_tasks: defaultdict[str, set[str]] = defaultdict(set)
        self.messages: list[TargetEvent] = []
        self.requeue: list[float] = []

    def wait_until(self, moment: datetime) -> None:
        self.requeue.append(max((moment - self.now).total_seconds(), 0.0))

    def registered_target(self, candidate: _Candidate, previous: Target | None) -> Target:
        task_status = candidate.task.status
        fresh = previous is None or previous.state == "draining"
        if fresh:
            self.registered[candidate.service] += 1
        base = Target(
            id=candidate.task_id,
            task=candidate.task.metadata.name,
            service=candidate.service,
            ip=candidate.ip,
            port=candidate.port,
            availability_zone=task_status.availability_zone if task_status else None,
            node_name=task_status.node_name if task_status else None,
            state="initial",
            registered_at=self.now if fresh or previous is None else previous.registered_at,
        )
        was_checked = previous is not None and previous.state in ("healthy", "unhealthy")
        # Health checks start once registration is done, i.e. once the task is RUNNING: a ready
        # container of a task still ACTIVATING stays initial, so no endpoint takes traffic
        # before its task says RUNNING (on a real cluster a Pod can be ready at once).
        if candidate.ready and task_status is not None and task_status.last_status == "RUNNING":
            return _with_state(base, "healthy", None)
        deadline = _initial_deadline(self.lb.spec, base.registered_at)
        if (was_checked and not fresh) or self.now >= deadline:
            if previous is None or previous.state != "unhealthy":
                self.messages.append(
                    TargetEvent(
                        candidate.service,
                        events.target_unhealthy(
                            candidate.service,
                            candidate.task.metadata.name,
                            candidate.port,
                            self.name,
                        ),
                    )
                )
            return _with_state(base, "unhealthy", REASON_FAILED)
        self.wait_until(deadline)
        return _with_state(base, "initial", REASON_INITIAL)

    def unregistered_target(
        self, previous: Target, task: Task | None, pod: Mapping[str, Any] | None
    ) -> Target | None:
        """A previous target that should not be registered now: draining, or gone."""
        task_runs = (
            task is not None
            and task.status is not None
            and task.status.last_status not in _STOPPED_STATES
            and task.status.connectivity != "DISCONNECTED"
            and _pod_alive(pod)
        )
        if previous.state == "draining":
            target = previous if task_runs else previous.model_copy(update={"task_stopped": True})
        elif task_runs:
            self.deregistered[previous.service] += 1
            self.draining_tasks[previous.service].add(previous.task)
            target = _with_state(
                previous, "draining", REASON_DEREGISTRATION, draining_since=self.now
            )
        else:
            self.deregistered[previous.service] += 1
            return None
        deadline = draining_deadline(target, self.lb.spec.deregistration_delay_seconds)
        if deadline is None or self.now >= deadline:
            return None
        self.wait_until(deadline)
        return target

    def summary_events(self) -> list[TargetEvent]:
        summary = [
            TargetEvent(service, events.targets_registered(service, count, self.name))
            for service, count in sorted(self.registered.items())
        ]
        for service, count in sorted(self.deregistered.items()):
            summary.append(
                TargetEvent(service, events.targets_deregistered(service, count, self.name))
            )
            if self.draining_tasks[service]:
                summary.append(
                    TargetEvent(
                        service,
                        events.draining_connections(service, len(self.draining_tasks[service])),
                    )
                )
        return summary


def desired_targets(
    lb: LoadBalancer,
    services: Sequence[ServiceMembers],
    now: datetime,
    departed: Sequence[DepartedTasks] = (),
    routed: frozenset[str] = frozenset(),
) -> TargetsPlan:
    """The LoadBalancer's targets as they should now read (rules in the module docstring).

    ``services``: every Service whose ``loadBalancers[]`` names ``lb``, plus those that still
    have targets in it (so their draining targets find their tasks); ``departed``: the tasks of
    deleted Services that still have targets in it, whose targets drain or go by the same
    rules. ``routed``: the Services whose production share an HTTPRoute carries
    (``core.http_routes``): here they list blue only while a share is set."""
    planner = _Planner(lb, now)
    previous = {(t.task, t.port): t for t in (lb.status.targets if lb.status else None) or ()}
    members: list[ServiceMembers | DepartedTasks] = [*services, *departed]
    tasks = {t.metadata.name: t for m in members for t in m.tasks}
    pods = {name: pod for m in members for name, pod in m.pods.items()}
    targets: list[Target] = []
    candidates = _candidates(lb.metadata.name, services, now)
    for key, candidate in candidates.items():
        targets.append(planner.registered_target(candidate, previous.get(key)))
    for key, target in previous.items():
        if key in candidates:
            continue
        kept = planner.unregistered_target(target, tasks.get(target.task), pods.get(target.task))
        if kept is not None:
            targets.append(kept)
    targets = _with_production_weights(targets, services, previous, lb.metadata.name, routed)
    targets.sort(key=lambda t: (t.service, t.task, t.port))
    return TargetsPlan(
        targets=tuple(targets),
        weights=_applied_weights(lb, services, now),
        events=(*planner.summary_events(), *planner.messages),
        requeue_after=min(planner.requeue) if planner.requeue else None,
    )


def production_weight(service: Service) -> tuple[float, str] | None:
    """The share of production traffic (%) the PRIMARY deployment's tasks get, and its id; None
    when every healthy task serves (no BLUE_GREEN, LINEAR or CANARY deployment set one)."""
    deployments = service.status.deployments if service.status else None
    primary = next((d for d in deployments or () if d.status == "PRIMARY"), None)
    if primary is None or primary.production_traffic_weight is None:
        return None
    return primary.production_traffic_weight, primary.id


TEST_TRAFFIC_STAGES: Final = frozenset(
    {"TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"}
)


def test_traffic_deployment(service: Service) -> str | None:
    """The deployment whose tasks the Service's test LoadBalancers list: a BLUE_GREEN, LINEAR
    or CANARY PRIMARY in progress, from TEST_TRAFFIC_SHIFT on (never blue: the older
    deployments are never PRIMARY while one is)."""
    deployments = service.status.deployments if service.status else None
    primary = next((d for d in deployments or () if d.status == "PRIMARY"), None)
    if (
        primary is None
        or primary.rollout_state != "IN_PROGRESS"
        or primary.lifecycle_stage not in TEST_TRAFFIC_STAGES
    ):
        return None
    return primary.id


def test_traffic_check(
    spec: ServiceSpec, load_balancers: Mapping[str, LoadBalancer]
) -> Callable[[Sequence[str]], bool] | None:
    """Whether every test LoadBalancer of the Service's (resolved) entries has each of the
    given tasks registered and healthy on the entry's port, i.e. as an endpoint; None when no
    entry has a test LoadBalancer."""
    tested = [
        (entry.container_port, name)
        for entry in spec.load_balancers or ()
        if (name := names.alternate_load_balancer_of(entry)) is not None
    ]
    if not tested:
        return None

    def shifted(tasks: Sequence[str]) -> bool:
        for port, name in tested:
            lb = load_balancers.get(name)
            if lb is None:
                return False
            for task in tasks:
                found = [t for t in _targets_of(task, lb) if t.port == port]
                if not found or any(t.state != "healthy" for t in found):
                    return False
        return True

    return shifted


def test_traffic_withdrawn(
    test_load_balancers: Iterable[str], load_balancers: Mapping[str, LoadBalancer]
) -> Callable[[Sequence[str]], bool]:
    """Whether none of ``test_load_balancers`` (the Service's test LoadBalancers) has any of
    the given tasks registered any more: a target of theirs there is draining (deregistered:
    no new connections) or gone. A LoadBalancer that is gone lists nothing; a Service without
    test LoadBalancers has no test traffic to withdraw (always true)."""
    named = [lb for name in sorted(set(test_load_balancers)) if (lb := load_balancers.get(name))]

    def withdrawn(tasks: Sequence[str]) -> bool:
        return not any(
            target.state != "draining"
            for lb in named
            for task in tasks
            for target in _targets_of(task, lb)
        )

    return withdrawn


def _with_production_weights(
    targets: list[Target],
    services: Sequence[ServiceMembers],
    previous: Mapping[tuple[str, int], Target],
    lb_name: str,
    routed: frozenset[str],
) -> list[Target]:
    """Mark which healthy targets serve production, per Service and port, so that the PRIMARY's
    share of the endpoints follows its traffic weight (``strategies.endpoint_mix``); the others
    stay registered and health-checked, but are no endpoint. Those that served before keep
    serving first, so a weight that holds moves nobody. A Service's test LoadBalancer carries
    no production share: every green target it lists serves. A routed Service's HTTPRoute
    sends green's share to its test LoadBalancer, so here green gets none of it."""
    weights = {
        m.service.metadata.name: _listed_weight(m.service, routed)
        for m in services
        if not m.tests_with(lb_name)
    }
    started_by = {t.metadata.name: t.spec.started_by for m in services for t in m.tasks}
    serving: set[tuple[str, int]] = set()
    groups: defaultdict[tuple[str, int], list[Target]] = defaultdict(list)
    for target in targets:
        if target.state == "healthy" and weights.get(target.service) is not None:
            groups[(target.service, target.port)].append(target)
    for (service, _), group in groups.items():
        weight, primary = weights[service] or (100.0, "")

        def preference(target: Target) -> tuple[bool, str]:
            before = previous.get((target.task, target.port))
            return (before is None or before.serving is False, target.task)

        green = sorted((t for t in group if started_by.get(t.task) == primary), key=preference)
        blue = sorted((t for t in group if started_by.get(t.task) != primary), key=preference)
        listed_green, listed_blue = strategies.endpoint_mix(len(green), len(blue), weight)
        serving.update((t.task, t.port) for t in green[:listed_green] + blue[:listed_blue])
    return [
        target.model_copy(
            update={"serving": None if (target.task, target.port) in serving else False}
        )
        if (target.service, target.port) in groups
        else target
        for target in targets
    ]


def shifting_weight(service: Service) -> float | None:
    """The PRIMARY's production share while its deployment is in progress (a completed one
    keeps its last share, but then it alone serves)."""
    deployments = service.status.deployments if service.status else None
    primary = next((d for d in deployments or () if d.status == "PRIMARY"), None)
    if primary is None or primary.rollout_state != "IN_PROGRESS":
        return None
    return primary.production_traffic_weight


def _listed_weight(service: Service, routed: frozenset[str]) -> tuple[float, str] | None:
    weight = production_weight(service)
    if weight is None or service.metadata.name not in routed or shifting_weight(service) is None:
        return weight
    return 0.0, weight[1]


def _applied_weights(
    lb: LoadBalancer, services: Sequence[ServiceMembers], now: datetime
) -> tuple[TrafficWeight, ...]:
    """The shares this plan's EndpointSlices carry, since when (kept from the previous status
    while the same)."""
    before = {w.service: w for w in (lb.status.traffic_weights if lb.status else None) or ()}
    applied = []
    for members in services:
        weight = production_weight(members.service)
        if weight is None or members.tests_with(lb.metadata.name):
            continue
        name = members.service.metadata.name
        held = before.get(name)
        if held is not None and (held.weight, held.deployment_id) == weight:
            applied.append(held)
        else:
            applied.append(
                TrafficWeight(
                    service=name, deployment_id=weight[1], weight=weight[0], applied_at=now
                )
            )
    return tuple(sorted(applied, key=lambda w: w.service))


def traffic_applied_at(
    service: str, spec: ServiceSpec, load_balancers: Mapping[str, LoadBalancer]
) -> Callable[[str, float], datetime | None]:
    """When every LoadBalancer the Service names carries ``weight`` % for ``deployment`` in
    its EndpointSlices (the latest of them; None: one does not yet). Without load balancers
    there is no traffic to move: at once."""
    named = [load_balancers.get(names.load_balancer_of(e)) for e in spec.load_balancers or ()]

    def applied_at(deployment: str, weight: float) -> datetime | None:
        moments = []
        for lb in named:
            if lb is None:
                continue
            found = next(
                (
                    w
                    for w in (lb.status.traffic_weights if lb.status else None) or ()
                    if (w.service, w.deployment_id, w.weight) == (service, deployment, weight)
                ),
                None,
            )
            if found is None:
                return None
            moments.append(found.applied_at)
        return max(moments, default=LONG_AGO)

    return applied_at


# ---------------------------------------------------------------------------------------------
# What the Task and Service controllers ask


def _targets_of(task: str, lb: LoadBalancer) -> list[Target]:
    return [t for t in (lb.status.targets if lb.status else None) or () if t.task == task]


def task_deregistering(task: str, load_balancers: Iterable[LoadBalancer], now: datetime) -> bool:
    """A task whose stop is decided stays DEACTIVATING while this holds: some target of it has
    not drained for its LoadBalancer's whole deregistration delay (``TaskView.deactivating``)."""
    return any(
        not deregistration_complete(target, lb, now)
        for lb in load_balancers
        for target in _targets_of(task, lb)
    )


def drained_at(task: str, load_balancers: Iterable[LoadBalancer]) -> datetime | None:
    """When every target of a deregistering task will have drained for its LoadBalancer's
    whole deregistration delay, ``task_deregistering`` turning false then (whether or not the
    LoadBalancer's controller removed the targets yet); None while one is not draining yet
    (its draining is a change of the LoadBalancer, which wakes the task)."""
    deadlines = [
        draining_deadline(target, lb.spec.deregistration_delay_seconds)
        for lb in load_balancers
        for target in _targets_of(task, lb)
    ]
    known = [deadline for deadline in deadlines if deadline is not None]
    return max(known) if known and len(known) == len(deadlines) else None


def awaiting_registration(
    task: str, spec: ServiceSpec, load_balancers: Mapping[str, LoadBalancer]
) -> bool:
    """A running service task is ACTIVATING while a LoadBalancer its Service names (and that
    exists) has not registered it yet (``TaskView.activating``)."""
    for entry in spec.load_balancers or ():
        lb = load_balancers.get(names.load_balancer_of(entry))
        if lb is not None and not any(
            t.port == entry.container_port and t.state != "draining" for t in _targets_of(task, lb)
        ):
            return True
    return False


def task_load_balancer_health(
    task: str, spec: ServiceSpec, load_balancers: Mapping[str, LoadBalancer]
) -> bool:
    """Healthy in every target group: each LoadBalancer the Service names has the task's port
    registered and healthy (for the Service planner's ``healthy`` predicate, together with
    ``deployments.is_healthy``). A Service without load balancers is always healthy here."""
    for entry in spec.load_balancers or ():
        lb = load_balancers.get(names.load_balancer_of(entry))
        ports = [t for t in _targets_of(task, lb) if t.port == entry.container_port] if lb else []
        if not ports or any(t.state != "healthy" for t in ports):
            return False
    return True


def tasks_with_unhealthy_targets(load_balancers: Iterable[LoadBalancer]) -> set[str]:
    """The tasks with an unhealthy target in any of ``load_balancers``: only they can have
    failed ELB health checks (found once per plan, not per task and LoadBalancer)."""
    return {
        t.task
        for lb in load_balancers
        for t in (lb.status.targets if lb.status else None) or ()
        if t.state == "unhealthy"
    }


def failed_elb_health(
    task: str,
    started_at: datetime | None,
    grace_seconds: int,
    load_balancers: Iterable[LoadBalancer],
    now: datetime,
) -> str | None:
    """``Task failed ELB health checks in (target-group LB)`` when a target of the task is
    unhealthy and ``healthCheckGracePeriodSeconds`` since the task started have passed; the
    first such LoadBalancer by name. None otherwise (also before the task started)."""
    if started_at is None or now < started_at + timedelta(seconds=grace_seconds):
        return None
    for lb in sorted(load_balancers, key=lambda lb: lb.metadata.name):
        if any(t.state == "unhealthy" for t in _targets_of(task, lb)):
            return events.elb_health_checks_failed(lb.metadata.name)
    return None


def readiness_probe(spec: LoadBalancerSpec, traffic_port: int) -> dict[str, Any]:
    """The health check as the readiness probe of the registered container."""
    check = spec.health_check
    port = traffic_port if check.port == TRAFFIC_PORT else int(check.port)
    protocol = spec.health_check_protocol
    handler: dict[str, Any] = (
        {"tcpSocket": {"port": port}}
        if protocol == "TCP"
        else {"httpGet": {"path": check.path or DEFAULT_PATH, "port": port, "scheme": protocol}}
    )
    return {
        **handler,
        "periodSeconds": check.interval_seconds,
        "timeoutSeconds": check.timeout_seconds,
        "successThreshold": check.healthy_threshold_count,
        "failureThreshold": check.unhealthy_threshold_count,
    }


def load_balancer_problems(
    spec: ServiceSpec,
    task_definition: TaskDefinitionSpec,
    load_balancers: Mapping[str, LoadBalancer],
) -> list[Violation]:
    """Why the Service's ``loadBalancers[]`` cannot be registered with the resolved revision
    and the LoadBalancers of its namespace (by name); empty when they can."""
    containers = {c.name: c for c in task_definition.container_definitions}
    problems: list[Violation] = []
    for index, entry in enumerate(spec.load_balancers or ()):
        field = f"spec.loadBalancers[{index}]"
        name = names.load_balancer_of(entry)
        written = entry.target_group_arn or entry.load_balancer_name
        named_by = f"{field}.{names.load_balancer_field(entry)}"
        problems += _unusable(named_by, name, str(written), load_balancers)
        alternate = names.alternate_load_balancer_of(entry)
        if alternate is not None and entry.advanced_configuration is not None:
            named_by = f"{field}.advancedConfiguration.alternateTargetGroupArn"
            if alternate == name:
                problems.append(
                    Violation(named_by, f"names LoadBalancer {name!r}, the production one")
                )
            else:
                written = entry.advanced_configuration.alternate_target_group_arn
                problems += _unusable(named_by, alternate, written, load_balancers)
        container = containers.get(entry.container_name)
        if container is None:
            problems.append(
                Violation(
                    f"{field}.containerName",
                    f"no container named {entry.container_name!r} in the task definition "
                    f"(containers: {', '.join(sorted(containers))})",
                )
            )
            continue
        ports = [m.container_port for m in container.port_mappings or () if m.container_port]
        if entry.container_port not in ports:
            known = ", ".join(str(p) for p in ports) or "none"
            problems.append(
                Violation(
                    f"{field}.containerPort",
                    f"container {entry.container_name!r} has no port mapping for "
                    f"{entry.container_port} (its containerPorts: {known})",
                )
            )
    return problems


def _unusable(
    field: str, name: str, written: str, load_balancers: Mapping[str, LoadBalancer]
) -> list[Violation]:
    """Why the LoadBalancer ``name`` (``written`` at ``field``) cannot take targets."""
    lb = load_balancers.get(name)
    if lb is None:
        mapped = f" ({written!r} maps to it)" if written != name else ""
        return [Violation(field, f"no LoadBalancer named {name!r} in this namespace{mapped}")]
    if (lb.metadata.model_extra or {}).get("deletionTimestamp"):
        return [Violation(field, f"LoadBalancer {name!r} is being deleted")]
    if (refusal := reported_refusal(lb)) is not None:
        return [Violation(field, refusal)]
    return []


def unsupported_fields(spec: LoadBalancerSpec) -> list[UnsupportedField]:
    """What the LoadBalancer accepts but Kubernetes does not honour."""
    reported = [
        UnsupportedField(
            field=f"spec.listeners[{index}].protocol",
            reason=f"{listener.protocol} is not terminated: traffic reaches the targets unchanged",
        )
        for index, listener in enumerate(spec.listeners)
        if listener.protocol in ("HTTPS", "TLS")
    ]
    matcher = spec.health_check.matcher
    if matcher is not None and matcher.http_code != DEFAULT_HTTP_CODE:
        reported.append(
            UnsupportedField(
                field="spec.healthCheck.matcher.httpCode",
                reason="Kubernetes probes pass on any 200-399 answer; the matcher is not applied",
            )
        )
    return reported


# ---------------------------------------------------------------------------------------------
# Kubernetes Service and EndpointSlices


def service_ports(spec: LoadBalancerSpec) -> list[ServicePort]:
    """The Service's ports: one per listener, two (TCP, then UDP ``NAME-udp``) for TCP_UDP."""
    ports: list[ServicePort] = []
    for listener in spec.listeners:
        name = listener.name or f"port-{listener.port}"
        if listener.protocol == "UDP":
            ports.append(ServicePort(name, listener.port, "UDP"))
            continue
        app = {"HTTP": "http", "HTTPS": "https"}.get(listener.protocol)
        ports.append(ServicePort(name, listener.port, "TCP", app))
        if listener.protocol == "TCP_UDP":
            ports.append(ServicePort(f"{name}-udp", listener.port, "UDP"))
    return ports


def _owner(lb: LoadBalancer) -> dict[str, Any]:
    return {
        "apiVersion": labels.OWNER_API_VERSION,
        "kind": "LoadBalancer",
        "name": lb.metadata.name,
        "uid": lb.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def render_service(lb: LoadBalancer) -> dict[str, Any]:
    """The Kubernetes Service (no selector: the operator writes its EndpointSlices)."""
    ports = []
    for port in service_ports(lb.spec):
        rendered: dict[str, Any] = {
            "name": port.name,
            "port": port.port,
            "protocol": port.protocol,
            "targetPort": port.name,
        }
        if port.app_protocol:
            rendered["appProtocol"] = port.app_protocol
        ports.append(rendered)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": lb.metadata.name,
            "namespace": lb.metadata.namespace,
            "labels": {labels.MANAGED_BY_LABEL: labels.MANAGED_BY},
            "ownerReferences": [_owner(lb)],
        },
        "spec": {"type": lb.spec.type, "ports": ports},
    }


def _comparable_ports(ports: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            p.get("name"),
            p.get("port"),
            p.get("protocol", "TCP"),
            p.get("targetPort"),
            p.get("appProtocol"),
        )
        for p in ports
    ]


def service_changes(
    current: Mapping[str, Any], desired: Mapping[str, Any]
) -> dict[str, Any] | None:
    """A merge patch that brings ``current`` to ``desired`` (type and ports; node ports the API
    server allocated are kept), or None when nothing meaningful differs."""
    spec, wanted = current.get("spec") or {}, desired["spec"]
    ports = spec.get("ports") or []
    if spec.get("type", "ClusterIP") == wanted["type"] and _comparable_ports(
        ports
    ) == _comparable_ports(wanted["ports"]):
        return None
    node_ports = {p.get("name"): p.get("nodePort") for p in ports if p.get("nodePort")}
    patched = [
        {**p, "nodePort": node_ports[p["name"]]}
        if wanted["type"] != "ClusterIP" and p["name"] in node_ports
        else p
        for p in wanted["ports"]
    ]
    return {"spec": {"type": wanted["type"], "ports": patched}}


def _endpoint(target: Target, namespace: str | None) -> dict[str, Any]:
    healthy = target.state == "healthy"
    endpoint: dict[str, Any] = {
        "addresses": [target.ip],
        "conditions": {
            "ready": healthy,
            "serving": healthy,
            "terminating": target.state == "draining",
        },
        "targetRef": {"kind": "Pod", "namespace": namespace, "name": target.task},
    }
    if target.node_name:
        endpoint["nodeName"] = target.node_name
    if target.availability_zone:
        endpoint["zone"] = target.availability_zone
    return endpoint


def render_endpoint_slices(lb: LoadBalancer, targets: Sequence[Target]) -> list[dict[str, Any]]:
    """The EndpointSlices of the LoadBalancer's Service: healthy targets ready, draining ones
    terminating; nothing else (module docstring)."""
    listed = sorted(
        (
            t
            for t in targets
            if t.serving is not False
            and (t.state == "healthy" or (t.state == "draining" and not t.task_stopped))
        ),
        key=lambda t: (t.port, t.service, t.task),
    )
    by_port: defaultdict[int, list[Target]] = defaultdict(list)
    for target in listed:
        by_port[target.port].append(target)
    namespace = lb.metadata.namespace
    slices: list[dict[str, Any]] = []
    for port, group in sorted(by_port.items()):
        for start in range(0, len(group), MAX_ENDPOINTS_PER_SLICE):
            chunk = group[start : start + MAX_ENDPOINTS_PER_SLICE]
            ports: list[dict[str, Any]] = []
            for service_port in service_ports(lb.spec):
                rendered: dict[str, Any] = {
                    "name": service_port.name,
                    "port": port,
                    "protocol": service_port.protocol,
                }
                if service_port.app_protocol:
                    rendered["appProtocol"] = service_port.app_protocol
                ports.append(rendered)
            slices.append(
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": f"{lb.metadata.name}-{len(slices)}",
                        "namespace": namespace,
                        "labels": {
                            SERVICE_NAME_LABEL: lb.metadata.name,
                            SLICE_MANAGED_BY_LABEL: labels.MANAGED_BY,
                            labels.MANAGED_BY_LABEL: labels.MANAGED_BY,
                        },
                        "ownerReferences": [_owner(lb)],
                    },
                    "addressType": "IPv4",
                    "endpoints": [_endpoint(t, namespace) for t in chunk],
                    "ports": ports,
                }
            )
    return slices


def _owner_reference_to(lb: LoadBalancer) -> dict[str, Any]:
    return {"metadata": {"uid": lb.metadata.uid}}


def name_clash(lb: LoadBalancer, kind: str, found: Mapping[str, Any]) -> str | None:
    """Why the LoadBalancer may not write ``found``, the ``kind`` object it would publish
    through (its Service, one of its EndpointSlices), or None when ``found`` is its own: owned
    by it (ownerReference uid) and labelled managed-by the operator. Another's object under
    that name is never taken over (ownership module docstring)."""
    if owned_by(found, _owner_reference_to(lb)) and managed_by_operator(found):
        return None
    name = str((found.get("metadata") or {}).get("name"))
    return events.load_balancer_name_taken(lb.metadata.name, kind, name, owner_description(found))


def own_endpoint_slices(
    lb: LoadBalancer, slices: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The EndpointSlices of the LoadBalancer's Service that are its own (``name_clash``
    finds nothing): the only ones ``slice_changes`` may replace or delete; a slice with
    copied labels is someone else's."""
    return [
        piece
        for piece in slices
        if ((piece.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
        == lb.metadata.name
        and name_clash(lb, "EndpointSlice", piece) is None
    ]


def _slice_key(manifest: Mapping[str, Any]) -> tuple[Any, ...]:
    """The fields of an EndpointSlice that matter (API-server defaults normalised)."""
    metadata = manifest.get("metadata") or {}
    slice_labels = metadata.get("labels") or {}
    endpoints = tuple(
        (
            tuple(e.get("addresses") or ()),
            tuple(
                bool((e.get("conditions") or {}).get(c))
                for c in ("ready", "serving", "terminating")
            ),
            e.get("nodeName"),
            e.get("zone"),
            ((e.get("targetRef") or {}).get("kind"), (e.get("targetRef") or {}).get("name")),
        )
        for e in manifest.get("endpoints") or ()
    )
    ports = tuple(
        (p.get("name"), p.get("port"), p.get("protocol", "TCP"), p.get("appProtocol"))
        for p in manifest.get("ports") or ()
    )
    return (
        manifest.get("addressType"),
        slice_labels.get(SERVICE_NAME_LABEL),
        slice_labels.get(SLICE_MANAGED_BY_LABEL),
        endpoints,
        ports,
    )


def slice_changes(
    current: Sequence[Mapping[str, Any]], desired: Sequence[Mapping[str, Any]]
) -> SliceChanges:
    """What to create, replace and delete so the operator's slices (``current``: those labelled
    ``endpointslice.kubernetes.io/managed-by: ecs-operator`` for the Service) become
    ``desired``; an unchanged set gives no change at all."""
    existing = {
        str((s.get("metadata") or {}).get("name")): s
        for s in current
        if ((s.get("metadata") or {}).get("labels") or {}).get(SLICE_MANAGED_BY_LABEL)
        == labels.MANAGED_BY
    }
    create: list[dict[str, Any]] = []
    update: list[dict[str, Any]] = []
    for manifest in desired:
        name = str(manifest["metadata"]["name"])
        before = existing.pop(name, None)
        if before is None:
            create.append(dict(manifest))
        elif _slice_key(before) != _slice_key(manifest):
            version = (before.get("metadata") or {}).get("resourceVersion")
            metadata = dict(manifest["metadata"])
            if version is not None:
                metadata["resourceVersion"] = version
            update.append({**manifest, "metadata": metadata})
    return SliceChanges(tuple(create), tuple(update), tuple(sorted(existing)))


# ---------------------------------------------------------------------------------------------
# Status


def reported_refusal(lb: LoadBalancer) -> str | None:
    """The name clash the LoadBalancer's status already reports (``lb_status`` ``refusal``)."""
    for condition in (lb.status.conditions if lb.status else None) or ():
        if condition.type == CONDITION_READY and condition.reason == events.REASON_NAME_CONFLICT:
            return condition.message
    return None


def lb_status(
    lb: LoadBalancer,
    targets: Sequence[Target],
    services: Iterable[str],
    problems: Sequence[str],
    now: datetime,
    refusal: str | None = None,
    weights: Sequence[TrafficWeight] = (),
) -> StatusUpdate:
    """The complete new status. ``services``: the Services whose ``loadBalancers[]`` name it;
    ``problems``: what the controller found wrong about their use of it or about its own
    deletion (``load_balancer_problems`` of each, ``events.load_balancer_in_use``), each a
    sentence; they make it Degraded. ``refusal``: the ``name_clash`` of its Service, which
    makes it neither Ready nor publish anything. ``weights``: the plan's production shares."""
    previous = lb.status
    counts = Counter(t.state for t in targets)
    generation = lb.metadata.generation or 0
    conditions = previous.conditions if previous else None
    healthy, unhealthy = counts["healthy"], counts["unhealthy"]
    if refusal is not None:
        ready = set_condition(
            conditions,
            CONDITION_READY,
            "False",
            events.REASON_NAME_CONFLICT,
            refusal,
            generation,
            now,
        )
    else:
        ready = set_condition(
            conditions,
            CONDITION_READY,
            "True" if healthy else "False",
            "TargetsHealthy" if healthy else ("NoHealthyTargets" if targets else "NoTargets"),
            f"{healthy} of {len(targets)} targets healthy",
            generation,
            now,
        )
    if refusal is not None:
        degraded = set_condition(
            conditions,
            CONDITION_DEGRADED,
            "True",
            events.REASON_NAME_CONFLICT,
            "; ".join([refusal, *problems]),
            generation,
            now,
        )
    elif problems:
        degraded = set_condition(
            conditions,
            CONDITION_DEGRADED,
            "True",
            "ServiceMisconfigured",
            "; ".join(problems),
            generation,
            now,
        )
    elif unhealthy:
        degraded = set_condition(
            conditions,
            CONDITION_DEGRADED,
            "True",
            "TargetsUnhealthy",
            f"{unhealthy} targets unhealthy",
            generation,
            now,
        )
    else:
        degraded = set_condition(
            conditions, CONDITION_DEGRADED, "False", "AsExpected", "", generation, now
        )
    status = LoadBalancerStatus(
        observed_generation=generation,
        targets=list(targets) or None,
        healthy_count=healthy,
        unhealthy_count=unhealthy,
        draining_count=counts["draining"],
        initial_count=counts["initial"],
        services=sorted(set(services)) or None,
        service_name=lb.metadata.name,
        conditions=[ready, degraded],
        unsupported=unsupported_fields(lb.spec) or None,
        traffic_weights=list(weights) or None,
    )
    changed = previous is None or status.model_dump(mode="json") != previous.model_dump(mode="json")
    return StatusUpdate(status=status, changed=changed)


def moved_targets(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> set[str]:
    """The tasks whose target differs between two versions of a LoadBalancer (None: it is not
    there): registration and draining move their ACTIVATING and DEACTIVATING."""

    def targets(lb: Mapping[str, Any] | None) -> dict[str, Any]:
        listed = ((lb or {}).get("status") or {}).get("targets") or ()
        return {target.get("task"): target for target in listed}

    old, new = targets(before), targets(after)
    return {task for task in old.keys() | new.keys() if old.get(task) != new.get(task)}
