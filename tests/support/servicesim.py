"""A tiny simulated cluster for the service planner: plan -> apply -> time passes -> plan.

Tasks are placed with the real ``core.placement`` (the controller's job), start after one tick,
stop after one tick, and behave per revision as ``outcomes`` says: ``ok`` (runs, HEALTHY),
``fail`` (stops before RUNNING) or ``unhealthy`` (runs, then UNHEALTHY); ``exit`` makes one
task's essential container exit.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ecs_operator.core import lifecycle_hooks
from ecs_operator.core.alarms import AlarmReadings
from ecs_operator.core.deployments import (
    LaunchRequest,
    ServicePlan,
    ServiceState,
    ServiceTask,
    placement_strategies,
    plan_service,
    record_placement_failures,
    service_group,
    spread_nodes,
)
from ecs_operator.core.lifecycle_hooks import HookCall, HookReply, HookTaskRun
from ecs_operator.core.placement import (
    ContainerInstance,
    Placement,
    PlacementFailure,
    TaskRequirements,
    place_many,
)
from ecs_operator.models.service import ServiceSpec, ServiceStatus

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NAMESPACE = "shop"
TASK_MEMORY_MIB = 512
Outcome = Literal["ok", "fail", "unhealthy"]


def node(
    name: str,
    zone: str | None = "zone-a",
    *,
    ready: bool = True,
    schedulable: bool = True,
    memory: int = 64 * 1024,
    attributes: dict[str, str] | None = None,
) -> ContainerInstance:
    attrs = {"ecs.availability-zone": zone} if zone else {}
    return ContainerInstance(
        name=name,
        zone=zone,
        attributes=attrs | (attributes or {}),
        registered_cpu_millicores=64_000,
        remaining_cpu_millicores=64_000,
        registered_memory_mib=memory,
        remaining_memory_mib=memory,
        ready=ready,
        schedulable=schedulable,
    )


def spec(**fields: Any) -> ServiceSpec:
    return ServiceSpec.model_validate({"taskDefinition": "web", "desiredCount": 3} | fields)


def service_task(
    name: str,
    deployment: str | None,
    *,
    node_name: str | None = "n1",
    zone: str | None = "zone-a",
    last_status: Any = "RUNNING",
    health: Any = "HEALTHY",
    created: datetime = T0,
    started: datetime | None = None,
    **extra: Any,
) -> ServiceTask:
    return ServiceTask(
        name=name,
        task_id=name.replace("-", "").ljust(32, "0")[:32],
        deployment_id=deployment,
        task_definition=extra.pop("task_definition", "web:1"),
        last_status=last_status,
        desired_status=extra.pop("desired_status", "RUNNING"),
        health_status=health,
        node=node_name,
        zone=zone,
        created_at=created,
        started_at=started or (created if last_status == "RUNNING" else None),
        **extra,
    )


@dataclass
class Sim:
    spec: ServiceSpec
    nodes: list[ContainerInstance]
    revision: str | None = "web:1"
    """What spec.taskDefinition resolves to for a new deployment (None: it does not)."""
    resolution_error: str | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    now: datetime = T0
    name: str = "web"
    uid: str = "0b7c6a52-1111-2222-3333-444455556666"
    generation: int = 1
    seed: int = 7
    tasks: dict[str, ServiceTask] = field(default_factory=dict)
    status: ServiceStatus | None = None
    plans: list[ServicePlan] = field(default_factory=list)
    unplaced: int = 0
    placement_events: list[str] = field(default_factory=list)
    writes: int = 0
    alarms: AlarmReadings = field(default_factory=AlarmReadings)
    """The deployment alarms' readings every plan sees."""
    test_traffic_shifted: Callable[[Sequence[str]], bool] | None = None
    """The test LoadBalancers' answer (``ServiceState.test_traffic_shifted``)."""
    test_traffic_withdrawn: Callable[[Sequence[str]], bool] | None = None
    """Whether the test LoadBalancers no longer register these tasks
    (``ServiceState.test_traffic_withdrawn``; None: always)."""
    traffic_applied_at: Callable[[str, float], datetime | None] | None = None
    """Since when the load balancers carry a deployment's production share
    (``ServiceState.traffic_applied_at``; None: always, long ago)."""
    hook_target: Callable[[HookCall], HookReply] | None = None
    """Answers the AWS_LAMBDA hook calls due before each plan, as the controller's HookCaller
    does (None: no call is made)."""
    calls: list[HookCall] = field(default_factory=list)
    """Every hook call made, in order."""
    hook_tasks: Callable[[HookTaskRun], HookReply | None] | None = None
    """Starts or reads the task target runs in progress before each plan, as the controller's
    HookTasks does (None: they are left alone)."""
    _replies: dict[str, HookReply] = field(default_factory=dict)
    _names: itertools.count[int] = field(default_factory=itertools.count)

    def state(self) -> ServiceState:
        return ServiceState(
            name=self.name,
            uid=self.uid,
            generation=self.generation,
            spec=self.spec,
            status=self.status,
            tasks=list(self.tasks.values()),
            nodes=self.nodes,
            now=self.now,
            resolved_task_definition=self.revision,
            resolution_error=self.resolution_error,
            alarms=self.alarms,
            test_traffic_shifted=self.test_traffic_shifted,
            hook_replies=self._replies,
            **({"traffic_applied_at": self.traffic_applied_at} if self.traffic_applied_at else {}),
            **(
                {"test_traffic_withdrawn": self.test_traffic_withdrawn}
                if self.test_traffic_withdrawn
                else {}
            ),
        )

    def plan(self) -> ServicePlan:
        """One reconcile, as the controller does it: plan, stop, launch, then record what
        could not be placed; `writes` counts the reconciles whose final status changed."""
        previous = self.status
        rng = random.Random(self.seed + len(self.plans))
        if self.hook_target is not None:
            due = lifecycle_hooks.calls_due(NAMESPACE, self.name, self.spec, self.status, self.now)
            self.calls += due
            self._replies = {call.hook_id: self.hook_target(call) for call in due}
        if self.hook_tasks is not None:
            runs = lifecycle_hooks.task_runs_due(
                NAMESPACE, self.name, self.spec, self.status, self.now
            )
            replies = {run.hook_id: self.hook_tasks(run) for run in runs}
            self._replies |= {hook: reply for hook, reply in replies.items() if reply}
        plan = plan_service(self.state(), rng)
        self._replies = {}  # the calls' replies are in the plan's status now
        self.plans.append(plan)
        self.status = plan.status
        for stop in plan.stop:
            task = self.tasks[stop.task]
            immediate = stop.force or task.last_status != "RUNNING"
            self.tasks[stop.task] = replace(
                task,
                desired_status="STOPPED",
                last_status="STOPPED" if immediate else "DEACTIVATING",
                stop_code=stop.stop_code,
                stopped_for_health_checks=stop.failed_health_checks,
                stopped_at=self.now if immediate else None,
            )
        failures = []
        for request in plan.launch:
            failure = self.launch(request)
            if failure is not None:
                failures.append((request, failure))
        if failures:
            self.status, recorded = record_placement_failures(
                self.status, previous, self.name, failures, self.generation, self.now, rng
            )
            self.placement_events += recorded
        if self.status != previous:
            self.writes += 1
        self._check_status_echo_is_final(plan)
        return plan

    def _check_status_echo_is_final(self, plan: ServicePlan) -> None:
        """A plan that only wrote status is not followed by another: the controller does not
        reconcile the echo of its own status write, so whatever that status makes possible (an
        AZ rebalance once COMPLETED, say) must already be in the plan that wrote it."""
        if plan.launch or plan.stop:
            return  # their Task events wake the service again
        again = plan_service(self.state(), random.Random(self.seed))
        assert (again.launch, again.stop) == ((), ()), "the status echo would be needed"

    def instances(self) -> list[ContainerInstance]:
        counts = Counter(t.node for t in self.tasks.values() if not t.stopped and t.node)
        group = service_group(self.name)
        return [
            replace(
                n,
                group_counts={group: counts[n.name]},
                remaining_memory_mib=n.remaining_memory_mib - TASK_MEMORY_MIB * counts[n.name],
            )
            for n in self.nodes
        ]

    def launch(self, request: LaunchRequest) -> PlacementFailure | None:
        """Place and start the request's tasks; the first placement failure, if any."""
        failure: PlacementFailure | None = None
        candidates = [
            n
            for n in self.instances()
            if (request.node is None or n.name == request.node)
            and (request.zone is None or n.zone == request.zone)
        ]
        spread_over, candidates = spread_nodes(request, candidates)
        requirements = TaskRequirements.create(
            cpu_units=256,
            memory_mib=TASK_MEMORY_MIB,
            group=service_group(self.name),
            strategies=placement_strategies(self.spec),
            spread_over=spread_over,
        )
        rng = random.Random(next(self._names))
        for result in place_many([requirements] * request.count, candidates, rng):
            if not isinstance(result, Placement):
                self.unplaced += 1
                failure = failure or result
                continue
            where = next(n for n in self.nodes if n.name == result.instance)
            name = f"{self.name}-{next(self._names)}"
            self.tasks[name] = service_task(
                name,
                request.deployment_id,
                node_name=where.name,
                zone=where.zone,
                last_status="PENDING",
                health="UNKNOWN",
                created=self.now,
                task_definition=request.task_definition,
                health_checked=True,
            )
        return failure

    def tick(self, seconds: float = 10) -> None:
        """Time passes: pending tasks start (or fail), stopping tasks stop."""
        self.now += timedelta(seconds=seconds)
        for name, task in list(self.tasks.items()):
            outcome = self.outcomes.get(task.task_definition, "ok")
            if task.desired_status == "STOPPED" and not task.stopped:
                self.tasks[name] = replace(task, last_status="STOPPED", stopped_at=self.now)
            elif task.pending and outcome == "fail":
                self.tasks[name] = replace(
                    task,
                    desired_status="STOPPED",
                    last_status="STOPPED",
                    stop_code="TaskFailedToStart",
                    stopped_at=self.now,
                )
            elif task.pending:
                self.tasks[name] = replace(
                    task,
                    last_status="RUNNING",
                    started_at=self.now,
                    health_status="HEALTHY" if outcome == "ok" else "UNKNOWN",
                )
            elif task.running and outcome == "unhealthy":
                self.tasks[name] = replace(task, health_status="UNHEALTHY")

    def exit(self, name: str) -> None:
        """The task's essential container exits: it stops on its own, not by the scheduler."""
        self.tasks[name] = replace(
            self.tasks[name],
            desired_status="STOPPED",
            last_status="STOPPED",
            stop_code="EssentialContainerExited",
            stopped_at=self.now,
        )

    def live(self) -> list[ServiceTask]:
        return [t for t in self.tasks.values() if t.live]

    def deployment(self, deployment_id: str) -> Any:
        """The deployment's entry in status.deployments[] (None once it is dropped)."""
        assert self.status is not None
        return next((d for d in self.status.deployments or () if d.id == deployment_id), None)

    def primary(self) -> Any:
        assert self.status is not None and self.status.deployments
        return next(d for d in self.status.deployments if d.status == "PRIMARY")

    def messages(self) -> list[str]:
        return [m for plan in self.plans for m in plan.events]

    def run(self, steps: int = 50, seconds: float = 10) -> None:
        for _ in range(steps):
            self.plan()
            self.tick(seconds)

    def steady(self) -> bool:
        return bool(
            self.status
            and self.status.conditions
            and any(c.type == "Ready" and c.status == "True" for c in self.status.conditions)
        )
