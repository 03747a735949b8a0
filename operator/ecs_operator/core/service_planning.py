"""One Service reconcile's decisions, with no I/O: the scheduler's plan and what surrounds it.

The Service controller reads its caches into a ``ReconcileState`` and applies what this module
decides: ``plan_reconcile`` (the ``core.deployments`` scheduler's plan, plus the tasks failing
ELB health checks, the stopped tasks to delete, and the service deployments and service
revisions to record: ``core.service_revisions``), then for each launch ``place_launch`` and
``task_manifest``, then ``record_outcome`` (the launch results added to the status, written
once). The settings it runs with are the service revision's after a rollback
(``ReconcileState.running_spec``), and each task is judged in the load balancers of its own
revision. A load-balanced Service's tasks carry the drain finalizer from their creation
(``task_manifest``): deleting the Service returns at once, and each task's deletion (garbage
collection) waits until its targets drained.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import chain
from typing import Any, Final

from ecs_operator.core import (
    alarms,
    deployments,
    events,
    labels,
    launches,
    lifecycle_hooks,
    load_balancing,
    names,
    placement,
    service_revisions,
    traffic_roles,
)
from ecs_operator.core.alarms import AlarmReadings
from ecs_operator.core.capacity import task_requirements
from ecs_operator.core.deployments import (
    HealthPredicate,
    LaunchRequest,
    ServicePlan,
    ServiceState,
    ServiceTask,
    StopRequest,
)
from ecs_operator.core.placement import ContainerInstance, PlacementFailure
from ecs_operator.core.render import effective_spec
from ecs_operator.core.revisions import ResolvedRevision
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.placement import PlacementConstraint
from ecs_operator.models.service import Service, ServiceLoadBalancer, ServiceSpec, ServiceStatus
from ecs_operator.models.task import MAX_STOPPED_REASON_SPEC, Task
from ecs_operator.models.taskdefinition import TaskDefinitionSpec

# ECS keeps stopped tasks visible for about an hour; a crash-looping service would otherwise
# pile up thousands of them, so each service keeps only its newest stopped tasks.
MAX_STOPPED_TASKS_PER_SERVICE: Final = 20
PLACEMENT_RETRY_SECONDS: Final = 30.0


@dataclass(frozen=True)
class ReconcileState:
    """What one reconcile of a Service reads from the caches."""

    service: Service
    tasks: Sequence[Task]
    """Every Task the Service owns (STOPPED ones too)."""
    load_balancers: Mapping[str, LoadBalancer]
    """The LoadBalancers of the Service's namespace, by name."""
    nodes: Sequence[ContainerInstance]
    now: datetime
    resolved: str | None
    """``family:revision`` that spec.taskDefinition resolves to for a new deployment."""
    resolution_error: str | None
    revision: TaskDefinitionSpec | None
    """The spec of ``resolved``."""
    health_checked: frozenset[str]
    """The tasks whose revision health-checks an essential container (healthy means HEALTHY)."""
    service_revisions: tuple[service_revisions.StoredRevision, ...] = ()
    """The Service's stored service revisions."""
    alarms: AlarmReadings = field(default_factory=AlarmReadings)
    """Its deployment alarms' states (``core.alarms``)."""
    hook_replies: Mapping[str, lifecycle_hooks.HookReply] = field(default_factory=dict)
    """The replies of its AWS_LAMBDA hook calls made for this reconcile, by hookId."""

    @property
    def running_spec(self) -> ServiceSpec:
        """The settings the Service runs with (``service_revisions.running_spec``)."""
        service = self.service
        return service_revisions.running_spec(service.spec, service.status, self.service_revisions)


@dataclass(frozen=True)
class ReconcilePlan:
    """What to do, in order: stop, launch (then ``record_outcome``), store the new service
    revisions, write the status that names them, delete (stopped tasks, then collected service
    revisions)."""

    scheduled: ServicePlan
    """The scheduler's plan, its stops including the tasks that failed ELB health checks; its
    status with the service deployments."""
    delete: tuple[Task, ...]
    """Stopped tasks beyond the newest ``MAX_STOPPED_TASKS_PER_SERVICE``."""
    revisions: service_revisions.RevisionPlan = field(
        default_factory=service_revisions.RevisionPlan
    )
    settings_moved: bool = False
    """The plan changes the settings the Service runs with (a rollback to a revision whose
    settings differ): plan again with them at once."""


@dataclass(frozen=True)
class Outcome:
    """After the launches: the status to write (None: unchanged), the event messages to record
    and when to reconcile again at the latest."""

    status: ServiceStatus | None
    events: tuple[str, ...]
    requeue_after: float | None


def plan_reconcile(state: ReconcileState, rng: random.Random) -> ReconcilePlan:
    """The scheduler's plan for ``state``; then the tasks whose target stayed unhealthy, which
    the plan left running, are stopped (replaced by the next plan), as ECS does."""
    load_balancer_error = _load_balancer_error(state)
    scheduled = deployments.plan_service(_service_state(state, load_balancer_error), rng)
    stops, grace_ends = _failed_elb_health(state, {request.task for request in scheduled.stop})
    delays = [d for d in (scheduled.requeue_after, *grace_ends) if d is not None]
    scheduled = replace(
        scheduled, stop=(*scheduled.stop, *stops), requeue_after=min(delays, default=None)
    )
    scheduled, revisions = _record_service_revisions(state, scheduled)
    running = service_revisions.running_spec(
        state.service.spec, scheduled.status, state.service_revisions
    )
    return ReconcilePlan(
        scheduled,
        tuple(stopped_to_delete(state.tasks)),
        revisions,
        settings_moved=running != state.running_spec,
    )


def _record_service_revisions(
    state: ReconcileState, scheduled: ServicePlan
) -> tuple[ServicePlan, service_revisions.RevisionPlan]:
    """The plan's status with its service deployments, and the service revisions to record
    (the PRIMARY's, when it runs what the spec asks for and none is stored) and collect."""
    service, status = state.service, scheduled.status
    metadata = service.metadata
    breaker = (
        service.spec.deployment_configuration.deployment_circuit_breaker
        if service.spec.deployment_configuration
        else None
    )
    inputs = service_revisions.RecordInputs(
        namespace=metadata.namespace or "",
        service=metadata.name,
        deployments=status.deployments or (),
        breaker_enabled=bool(breaker and breaker.enable),
        threshold=deployments.circuit_breaker_threshold(status.desired_count or 0),
        now=state.now,
        alarm_names=alarms.watched_names(service.spec),
    )
    recorded = service_revisions.record_status(status, service.status, inputs)
    spec_hash = deployments.deployment_spec_hash(service.spec)
    wanted = {
        d.id: d.task_definition
        for d in status.deployments or ()
        if d.status == "PRIMARY"
        and not d.rollback
        and (d.task_definition, d.spec_hash) == (state.resolved, spec_hash)
    }
    revisions = service_revisions.plan_revisions(
        service, wanted, recorded, state.service_revisions, state.now
    )
    records = ("service_deployments", "current_service_deployment", "current_service_revisions")
    moved = any(getattr(recorded, name) != getattr(service.status, name, None) for name in records)
    return replace(scheduled, status=recorded, changed=scheduled.changed or moved), revisions


def record_outcome(
    state: ReconcileState,
    plan: ServicePlan,
    launched: Mapping[LaunchRequest, Sequence[str]],
    failures: Sequence[tuple[LaunchRequest, PlacementFailure]],
    rng: random.Random,
) -> Outcome:
    """``plan``'s status with the tasks started and the launches that could not be placed
    (tried again after ``PLACEMENT_RETRY_SECONDS``, or when the nodes change)."""
    service = state.service
    name, now = service.metadata.name, state.now
    status, started = deployments.record_launches(plan.status, name, launched, now, rng)
    status, unplaced = deployments.record_placement_failures(
        status, service.status, name, failures, _generation(service), now, rng
    )
    delays = [plan.requeue_after, PLACEMENT_RETRY_SECONDS if failures else None]
    return Outcome(
        status if plan.changed or launched or failures else None,
        (*plan.events, *started, *unplaced),
        min((d for d in delays if d is not None), default=None),
    )


def _generation(service: Service) -> int:
    return service.metadata.generation or 1


def _service_state(state: ReconcileState, load_balancer_error: str | None) -> ServiceState:
    metadata, spec = state.service.metadata, state.service.spec
    running = state.running_spec
    by_deployment = service_revisions.load_balancers_by_deployment(
        state.service.status, state.service_revisions
    )
    return ServiceState(
        name=metadata.name,
        uid=metadata.uid or "",
        generation=_generation(state.service),
        spec=spec,
        status=state.service.status,
        tasks=[
            ServiceTask.of(t, state.now, health_checked=t.metadata.name in state.health_checked)
            for t in state.tasks
        ],
        nodes=state.nodes,
        now=state.now,
        resolved_task_definition=None if load_balancer_error else state.resolved,
        resolution_error=state.resolution_error,
        load_balancer_error=load_balancer_error,
        task_definition_constraints=tuple(
            (state.revision.placement_constraints or ()) if state.revision else ()
        ),
        healthy=_healthy_in(state, running, by_deployment),
        traffic_applied_at=load_balancing.traffic_applied_at(
            metadata.name, running, state.load_balancers
        ),
        test_traffic_shifted=load_balancing.test_traffic_check(running, state.load_balancers),
        # Where a deployment's tasks had test traffic: its own revision's test LoadBalancers.
        test_traffic_withdrawn=load_balancing.test_traffic_withdrawn(
            traffic_roles.alternates(
                [*(running.load_balancers or ()), *chain.from_iterable(by_deployment.values())]
            ),
            state.load_balancers,
        ),
        running_spec=running,
        alarms=state.alarms,
        hook_replies=state.hook_replies,
    )


def _healthy_in(
    state: ReconcileState,
    running: ServiceSpec,
    by_deployment: Mapping[str, Sequence[ServiceLoadBalancer]],
) -> HealthPredicate:
    """A task counts as healthy when ECS says so and, for a load-balanced service, when it is
    healthy in every target group of its service revision (``by_deployment``'s entries)."""
    if not running.load_balancers and not any(by_deployment.values()):
        return deployments.is_healthy
    spec_of = _task_specs(running, by_deployment)
    return lambda task: (
        deployments.is_healthy(task)
        and load_balancing.task_load_balancer_health(
            task.name, spec_of(task.deployment_id), state.load_balancers
        )
    )


def _task_specs(
    running: ServiceSpec, by_deployment: Mapping[str, Sequence[ServiceLoadBalancer]]
) -> Callable[[str | None], ServiceSpec]:
    """``service_revisions.task_spec`` by deployment, each made once."""
    made: dict[str | None, ServiceSpec] = {}

    def spec_of(deployment_id: str | None) -> ServiceSpec:
        if deployment_id not in made:
            made[deployment_id] = service_revisions.task_spec(running, by_deployment, deployment_id)
        return made[deployment_id]

    return spec_of


def _load_balancer_error(state: ReconcileState) -> str | None:
    """Why a loadBalancers[] entry cannot be registered with the resolved revision: it blocks
    a deployment, as ECS refuses such a CreateService/UpdateService."""
    spec = state.service.spec
    if state.revision is None or not spec.load_balancers:
        return None
    problems = load_balancing.load_balancer_problems(spec, state.revision, state.load_balancers)
    return "; ".join(str(p) for p in problems) or None


def _failed_elb_health(
    state: ReconcileState, planned: set[str]
) -> tuple[list[StopRequest], list[float]]:
    """The tasks (not stopping, nor stopped by the plan) whose target stayed unhealthy past
    healthCheckGracePeriodSeconds, stopped with ECS's reason; and, for each task unhealthy
    within its grace period, the seconds until the period ends (it is looked at again then)."""
    unhealthy = load_balancing.tasks_with_unhealthy_targets(state.load_balancers.values())
    if not unhealthy:
        return [], []
    running = state.running_spec
    spec_of = _task_specs(
        running,
        service_revisions.load_balancers_by_deployment(
            state.service.status, state.service_revisions
        ),
    )
    grace = running.health_check_grace_period_seconds or 0
    stops, grace_ends = [], []
    for task in state.tasks:
        name, status = task.metadata.name, task.status
        if (
            name not in unhealthy
            or task.spec.desired_status == "STOPPED"
            or status is None
            or name in planned
        ):
            continue
        used = [
            state.load_balancers[names.load_balancer_of(e)]
            for e in spec_of(task.spec.started_by).load_balancers or ()
            if names.load_balancer_of(e) in state.load_balancers
        ]
        started, now = status.started_at, state.now
        reason = load_balancing.failed_elb_health(name, started, grace, used, now)
        if reason is not None:
            stops.append(
                StopRequest(name, "ServiceSchedulerInitiated", reason, failed_health_checks=True)
            )
        elif started and load_balancing.failed_elb_health(name, started, 0, used, now):
            grace_ends.append((started + timedelta(seconds=grace) - now).total_seconds())
    return stops, grace_ends


def stopped_to_delete(tasks: Iterable[Task]) -> list[Task]:
    """The stopped tasks beyond the newest ``MAX_STOPPED_TASKS_PER_SERVICE`` (by stoppedAt),
    oldest first."""
    stopped = sorted(
        (
            (t.status.stopped_at, t.metadata.name, t)
            for t in tasks
            if t.status and t.status.last_status == "STOPPED" and t.status.stopped_at
        ),
        key=lambda stop: stop[:2],
    )
    excess = max(0, len(stopped) - MAX_STOPPED_TASKS_PER_SERVICE)
    return [task for _, _, task in stopped[:excess]]


def stop_patch(request: StopRequest) -> dict[str, Any]:
    """The merge patch of a Task that stops it as ``request`` says."""
    annotations: dict[str, str] = {labels.STOP_CODE_ANNOTATION: request.stop_code}
    if request.failed_health_checks:
        annotations[labels.FAILED_HEALTH_CHECKS_ANNOTATION] = "true"
    return {
        "metadata": {"annotations": annotations},
        "spec": {
            "desiredStatus": "STOPPED",
            "stoppedReason": request.reason[:MAX_STOPPED_REASON_SPEC],
        },
    }


def hook_task_stops(status: ServiceStatus | None, tasks: Mapping[str, Task]) -> list[StopRequest]:
    """The Tasks (``tasks``: the Service's hook Tasks by name) of the hook runs in ``status``
    that timed out, not told to stop yet: stopped as the scheduler stops a task, saying which
    run timed out. Derived from the status and the Tasks alone, so repeating it changes
    nothing and a restart finds what is left to stop."""
    stops = []
    for hook in lifecycle_hooks.timed_out_tasks(status):
        task = tasks.get(lifecycle_hooks.hook_task_name(hook))
        if task is None or task.spec.desired_status == "STOPPED":
            continue
        if task.status is not None and task.status.last_status == "STOPPED":
            continue
        reason = events.hook_task_timed_out(hook)
        stops.append(StopRequest(task.metadata.name, "ServiceSchedulerInitiated", reason))
    return stops


# ---------------------------------------------------------------------------------------------
# Launches


def place_launch(
    service: Service,
    launch: LaunchRequest,
    revision: TaskDefinitionSpec,
    nodes: Sequence[ContainerInstance],
    taken: Callable[[str], bool],
    rng: random.Random,
) -> tuple[list[tuple[int, str, str]], PlacementFailure | None]:
    """The tasks of ``launch`` to create, as (ordinal, name, node): as many as could be placed
    with the service's strategies and constraints (spread over the tasks
    ``deployments.spread_nodes`` says), named ``launches.launch_names`` (skipping the names
    ``taken``); and the first placement failure."""
    spread_over, nodes = deployments.spread_nodes(launch, nodes)
    requirements = task_requirements(
        effective_spec(revision, None),
        group=deployments.service_group(service.metadata.name),
        constraints=[*(service.spec.placement_constraints or ()), *_pins(launch)],
        strategies=deployments.placement_strategies(service.spec),
        spread_over=spread_over,
    )
    results = placement.place_many([requirements] * launch.count, nodes, rng)
    placed = [r.instance for r in results if not isinstance(r, PlacementFailure)]
    metadata = service.metadata
    names = launches.launch_names(
        metadata.name, metadata.uid or "", launch.deployment_id, len(placed), taken
    )
    tasks = [(ordinal, name, node) for (ordinal, name), node in zip(names, placed, strict=True)]
    return tasks, next((r for r in results if isinstance(r, PlacementFailure)), None)


def _pins(launch: LaunchRequest) -> list[PlacementConstraint]:
    """A DAEMON launch goes to its node, an AZ-rebalancing launch to its zone."""
    pins = []
    if launch.node is not None:
        pins.append(_member_of(f"ec2InstanceId == {launch.node}"))
    if launch.zone is not None:
        pins.append(_member_of(f"attribute:ecs.availability-zone == {launch.zone}"))
    return pins


def _member_of(expression: str) -> PlacementConstraint:
    return PlacementConstraint(type="memberOf", expression=expression)


def task_manifest(
    service: Service, launch: LaunchRequest, node: str, ordinal: int, task: str
) -> dict[str, Any]:
    """Task ``task`` of ``launch`` (its ``ordinal``), placed on ``node`` and owned by
    ``service``; what ``launches.existing_verdict`` compares a name's holder with."""
    metadata, spec = service.metadata, service.spec
    manifest: dict[str, Any] = {
        "apiVersion": labels.OWNER_API_VERSION,
        "kind": "Task",
        "metadata": {
            "name": task,
            "namespace": metadata.namespace or "",
            "labels": {
                labels.SERVICE_LABEL: labels.label_value(metadata.name),
                labels.MANAGED_BY_LABEL: labels.MANAGED_BY,
            },
            "annotations": {
                labels.PLACED_NODE_ANNOTATION: node,
                launches.LAUNCH_ORDINAL_ANNOTATION: str(ordinal),
            },
            "ownerReferences": [
                {
                    "apiVersion": labels.OWNER_API_VERSION,
                    "kind": "Service",
                    "name": metadata.name,
                    "uid": metadata.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "taskDefinition": launch.task_definition,
            "group": deployments.service_group(metadata.name),
            "startedBy": launch.deployment_id,
        },
    }
    if spec.load_balancers:
        # The task's deletion (with its Service's, say) waits until its targets drained.
        manifest["metadata"]["finalizers"] = [labels.DRAIN_FINALIZER]
    if spec.propagate_tags == "SERVICE" and spec.tags:
        manifest["spec"]["tags"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in spec.tags
        ]
    return manifest


# ---------------------------------------------------------------------------------------------
# The Service object: the finalizer it no longer holds, and what a reconcile reads


def holds_former_drain_finalizer(body: Mapping[str, Any]) -> bool:
    """Whether the Service still carries the drain finalizer earlier versions set on a
    load-balanced Service (its deletion then waited for the drain). Its tasks carry it now,
    each its own, so the Service's is removed: its deletion returns at once."""
    return labels.DRAIN_FINALIZER in (body["metadata"].get("finalizers") or ())


def reads_changed(read: Mapping[str, Any], written: Mapping[str, Any]) -> bool:
    """Whether what a reconcile decides from, besides the status, differs between two versions
    of a Service."""
    return _what_reconcile_reads(read) != _what_reconcile_reads(written)


def _what_reconcile_reads(body: Mapping[str, Any]) -> tuple[Any, ...]:
    metadata = body["metadata"]
    return (metadata.get("generation"), metadata.get("deletionTimestamp"))


def new_deployment_revision(
    resolved: ResolvedRevision,
) -> tuple[str | None, str | None, TaskDefinitionSpec | None]:
    """``ReconcileState``'s ``resolved``, ``resolution_error`` and ``revision`` from the
    resolution of the Service's taskDefinition for a new deployment."""
    if resolved.revision is None:
        return None, resolved.reason, None
    return resolved.revision.record.reference, None, resolved.revision.spec


def health_checked(
    tasks: Iterable[Task], spec_of: Callable[[str], TaskDefinitionSpec | None]
) -> frozenset[str]:
    """The tasks whose revision health-checks an essential container: healthy only once
    HEALTHY, not merely RUNNING. `spec_of` reads a revision's spec; each is read once."""
    known: dict[str, bool] = {}

    def checks(reference: str) -> bool:
        if reference not in known:
            spec = spec_of(reference)
            known[reference] = spec is not None and any(
                c.essential and c.health_check for c in spec.container_definitions
            )
        return known[reference]

    return frozenset(
        task.metadata.name
        for task in tasks
        if checks(
            (task.status.task_definition_arn if task.status else None) or task.spec.task_definition
        )
    )
