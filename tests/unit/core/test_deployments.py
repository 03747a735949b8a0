"""The service scheduler (core.deployments): deployments, rolling updates, circuit breaker,
throttling, health, node loss and draining, scale-in, AZ rebalancing, DAEMON, events."""

import random
import re
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from ecs_operator.core import events, labels
from ecs_operator.core.deployments import (
    LaunchRequest,
    ServiceState,
    ServiceTask,
    az_rebalancing_enabled,
    circuit_breaker_threshold,
    deployment_bounds,
    deployment_id,
    deployment_spec_hash,
    plan_service,
    record_events,
    record_launches,
    record_placement_failures,
    service_selector,
    throttle_delay_seconds,
)
from ecs_operator.core.placement import PlacementFailure
from ecs_operator.models.service import ServiceStatus
from ecs_operator.models.task import Task
from support.servicesim import T0, Sim, node, service_task, spec

ZONES3 = [node("n1", "a"), node("n2", "b"), node("n3", "c")]


def steady_sim(desired: int = 3, nodes: Any = None, **fields: Any) -> Sim:
    sim = Sim(spec(desiredCount=desired, **fields), list(nodes or ZONES3))
    sim.run(3)
    assert sim.steady()
    return sim


def condition(sim: Sim, kind: str) -> tuple[str, str]:
    assert sim.status is not None and sim.status.conditions
    found = next(c for c in sim.status.conditions if c.type == kind)
    return found.status, found.reason


def deploy(sim: Sim, revision: str = "web:2") -> None:
    sim.revision = revision
    sim.generation += 1


# ---------------------------------------------------------------------------------------------
# Arithmetic


@pytest.mark.parametrize(
    ("desired", "configuration", "strategy", "bounds"),
    [
        (4, {"minimumHealthyPercent": 50, "maximumPercent": 200}, "REPLICA", (8, 2)),
        (2, {"minimumHealthyPercent": 75}, "REPLICA", (4, 2)),  # ceil(1.5) = 2
        (3, {"maximumPercent": 125}, "REPLICA", (3, 3)),  # floor(3.75) = 3
        (3, {}, "REPLICA", (6, 3)),
        (5, {}, "DAEMON", (5, 0)),
        (0, {}, "REPLICA", (0, 0)),
    ],
)
def test_deployment_bounds(
    desired: int, configuration: dict[str, int], strategy: str, bounds: tuple[int, int]
) -> None:
    fields: dict[str, Any] = {"deploymentConfiguration": configuration}
    if strategy == "DAEMON":
        fields |= {"schedulingStrategy": "DAEMON", "desiredCount": None}
    assert deployment_bounds(spec(**fields), desired) == bounds


@pytest.mark.parametrize(("desired", "threshold"), [(0, 3), (1, 3), (6, 3), (7, 4), (25, 13)])
def test_circuit_breaker_threshold(desired: int, threshold: int) -> None:
    assert circuit_breaker_threshold(desired) == threshold
    assert circuit_breaker_threshold(400) == circuit_breaker_threshold(800) == 200


def test_throttle_curve_grows_then_caps_at_15_minutes() -> None:
    curve = [throttle_delay_seconds(k) for k in range(13)]
    assert curve == [0, 0, 5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900]
    assert throttle_delay_seconds(10_000) == 900


def test_deployment_ids_are_ecs_shaped_and_reproducible() -> None:
    first = deployment_id("uid", 1, "web:1", "h")
    assert re.fullmatch(r"ecs-svc/[1-9][0-9]{18}", first)
    assert first == deployment_id("uid", 1, "web:1", "h")
    assert len({first, deployment_id("uid", 2, "web:1", "h"), deployment_id("u", 1, "web:1", "h")})
    assert deployment_id("uid", 1, "web:2", "h") != first


def test_spec_hash_covers_the_fields_that_start_a_deployment() -> None:
    base = deployment_spec_hash(spec())
    assert deployment_spec_hash(spec(desiredCount=9, healthCheckGracePeriodSeconds=5)) == base
    assert deployment_spec_hash(spec(availabilityZoneRebalancing="DISABLED")) == base
    assert deployment_spec_hash(spec(forceNewDeployment="2025-01-01")) != base
    assert deployment_spec_hash(spec(placementStrategy=[{"type": "random"}])) != base
    assert deployment_spec_hash(spec(placementConstraints=[{"type": "distinctInstance"}])) != base


def test_az_rebalancing_default_depends_on_binpack() -> None:
    assert az_rebalancing_enabled(spec())
    assert not az_rebalancing_enabled(spec(placementStrategy=[{"type": "binpack", "field": "cpu"}]))
    binpack_enabled = spec(
        placementStrategy=[{"type": "binpack", "field": "cpu"}],
        availabilityZoneRebalancing="ENABLED",
    )
    assert az_rebalancing_enabled(binpack_enabled)
    assert not az_rebalancing_enabled(spec(availabilityZoneRebalancing="DISABLED"))
    assert not az_rebalancing_enabled(spec(schedulingStrategy="DAEMON", desiredCount=None))


# ---------------------------------------------------------------------------------------------
# Deployments


def test_first_deployment_launches_and_completes_with_ecs_events() -> None:
    sim = Sim(spec(desiredCount=3), ZONES3)
    first = sim.plan()
    assert [(r.count, r.purpose, r.task_definition) for r in first.launch] == [
        (3, "scale", "web:1")
    ]
    primary = sim.primary()
    assert primary.rollout_state == "IN_PROGRESS"
    assert primary.rollout_state_reason == f"ECS deployment {primary.id} in progress."
    assert condition(sim, "Progressing") == ("True", "DeploymentInProgress")
    assert condition(sim, "Ready") == ("False", "NotSteady")
    assert {t.zone for t in sim.live()} == {"a", "b", "c"}
    sim.tick()
    done = sim.plan()
    assert done.events == (
        f"(service web) (deployment {primary.id}) deployment completed.",
        "(service web) has reached a steady state.",
    )
    assert sim.primary().rollout_state_reason == f"ECS deployment {primary.id} completed."
    status = sim.status
    assert status is not None
    assert (status.desired_count, status.running_count, status.pending_count) == (3, 3, 0)
    assert status.task_definition == "web:1"
    assert status.selector == service_selector("web") == "ecs.operator.dev/service=web"
    assert [e.message for e in status.events or ()][:2] == list(reversed(done.events))
    assert condition(sim, "Ready") == ("True", "SteadyState")
    assert condition(sim, "Degraded") == ("False", "AsExpected")
    again = sim.plan()
    assert (again.launch, again.stop, again.events, again.changed) == ((), (), (), False)


@pytest.mark.parametrize(
    "change",
    [
        {"revision": "web:2"},  # a new revision, or `web` whose latest ACTIVE revision moved
        {"forceNewDeployment": "token-1"},
        {"placementStrategy": [{"type": "spread", "field": "instanceId"}]},
        {"placementConstraints": [{"type": "distinctInstance"}]},
    ],
)
def test_what_starts_a_new_deployment(change: dict[str, Any]) -> None:
    sim = steady_sim()
    before = sim.primary().id
    if "revision" in change:
        sim.revision = change["revision"]
    else:
        sim.spec = spec(desiredCount=3, **change)
    sim.generation += 1
    sim.plan()
    assert sim.primary().id != before
    assert [d.status for d in sim.status.deployments or ()] == ["PRIMARY", "ACTIVE"]


def test_desired_count_and_grace_period_changes_do_not_start_a_deployment() -> None:
    sim = steady_sim()
    before = sim.primary().id
    sim.spec = spec(desiredCount=5, healthCheckGracePeriodSeconds=60)
    sim.generation += 1
    plan = sim.plan()
    assert sim.primary().id == before and sim.primary().rollout_state == "COMPLETED"
    assert [(r.deployment_id, r.count) for r in plan.launch] == [(before, 2)]


def test_rolling_update_respects_bounds_and_retires_the_old_deployment() -> None:
    sim = steady_sim(4, deploymentConfiguration={"minimumHealthyPercent": 50})
    old = sim.primary().id
    deploy(sim)
    plan = sim.plan()
    new = sim.primary().id
    assert sum(r.count for r in plan.launch) == 4 and len(plan.stop) == 2  # 50/200, D=4
    assert {s.reason for s in plan.stop} == {f"Scaling activity initiated by (deployment {new})"}
    assert {s.stop_code for s in plan.stop} == {"ServiceSchedulerInitiated"}
    assert plan.events[0].startswith("(service web) has stopped 2 running tasks: (task ")
    old_deployment = next(d for d in sim.status.deployments or () if d.id == old)
    assert (old_deployment.status, old_deployment.desired_count) == ("ACTIVE", 2)
    sim.run(8)  # the rollout, then an AZ rebalance (new tasks were placed beside old ones)
    assert [d.id for d in sim.status.deployments or ()] == [new]
    assert sim.primary().rollout_state == "COMPLETED"
    assert {t.task_definition for t in sim.live()} == {"web:2"} and len(sim.live()) == 4


def test_min_100_max_100_blocks_the_deployment_with_the_ecs_message() -> None:
    sim = steady_sim(
        2, deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 100}
    )
    deploy(sim)
    plan = sim.plan()
    assert (plan.launch, plan.stop) == ((), ())
    assert plan.events == (events.deployment_blocked("web"),)
    assert plan.events[0].startswith("(service web) was unable to stop or start tasks during a")
    assert condition(sim, "Degraded") == ("True", "DeploymentBlocked")
    assert sim.plan().events == ()  # not repeated


def test_lost_status_adopts_running_tasks_instead_of_redeploying() -> None:
    sim = steady_sim()
    running_id = sim.primary().id
    sim.status = None
    plan = sim.plan()
    assert (plan.launch, plan.stop) == ((), ())
    assert sim.primary().id == running_id


# ---------------------------------------------------------------------------------------------
# Rolling deployments since 2025-11: each revision replaces its own failed tasks, a scale-out
# applies to both


def mid_deployment(desired: int, minimum: int, maximum: int = 200) -> tuple[Sim, str, str]:
    """A steady service one plan into a rolling deployment to web:2 (its tasks PENDING)."""
    sim = steady_sim(
        desired,
        deploymentConfiguration={"minimumHealthyPercent": minimum, "maximumPercent": maximum},
    )
    old = sim.primary().id
    sim.now += timedelta(minutes=1)  # the old tasks have run long enough not to fail at start
    deploy(sim)
    sim.plan()
    return sim, old, sim.primary().id


def old_tasks(sim: Sim, old: str) -> list[ServiceTask]:
    return sorted((t for t in sim.live() if t.deployment_id == old), key=lambda t: t.name)


def healthy_count(sim: Sim) -> int:
    return sum(t.running and t.health_status == "HEALTHY" for t in sim.live())


def test_an_old_task_failing_mid_deployment_is_replaced_from_its_own_revision() -> None:
    sim, old, new = mid_deployment(4, 100)
    assert len(old_tasks(sim, old)) == 4 and sim.deployment(old).desired_count == 4
    sim.exit(old_tasks(sim, old)[0].name)
    plan = sim.plan()
    assert plan.launch == (LaunchRequest(old, "web:1", 1),)  # not web:2: it has its 4 already
    assert plan.stop == ()
    assert sim.plan().launch == ()  # the replacement exists now: kept while it is needed
    held = sim.deployment(old)
    assert (held.status, held.desired_count, held.running_count, held.pending_count) == (
        "ACTIVE",
        4,
        3,
        1,
    )
    assert sim.primary().failed_tasks == 0  # the circuit breaker counts the new revision only
    sim.run(8)
    assert sim.steady() and sim.primary().id == new
    assert {t.task_definition for t in sim.live()} == {"web:2"} and len(sim.live()) == 4
    assert [d.id for d in sim.status.deployments or ()] == [new]


def test_an_old_task_failing_when_the_rollout_would_stop_it_anyway_is_not_replaced() -> None:
    sim, old, _ = mid_deployment(4, 50)
    assert sim.deployment(old).desired_count == 2  # min 50 %: two stopped at once
    sim.tick()  # the new tasks are healthy: the rollout stops the old ones now
    failed, other = old_tasks(sim, old)
    sim.exit(failed.name)
    plan = sim.plan()
    assert all(r.deployment_id != old for r in plan.launch)
    assert [s.task for s in plan.stop] == [other.name]
    assert healthy_count(sim) == 4
    assert (sim.deployment(old).desired_count, sim.deployment(old).running_count) == (0, 0)


def test_an_old_replacement_on_its_way_is_let_go_once_the_new_revision_is_healthy() -> None:
    sim, old, new = mid_deployment(4, 100)
    sim.exit(old_tasks(sim, old)[0].name)
    sim.plan()
    [replacement] = [t for t in sim.live() if t.deployment_id == old and t.pending]
    sim.tick()  # the new tasks and the replacement run, all healthy: the old go, within 100 %
    plan = sim.plan()
    assert replacement.name in {s.task for s in plan.stop}
    assert healthy_count(sim) >= 4
    sim.run(6)
    assert sim.steady() and sim.primary().id == new


def test_old_replacements_come_first_within_maximum_percent() -> None:
    sim, old, new = mid_deployment(4, 50, 100)
    assert (len(old_tasks(sim, old)), sum(t.deployment_id == new for t in sim.live())) == (2, 2)
    sim.exit(old_tasks(sim, old)[0].name)
    plan = sim.plan()
    # One slot of maxTasks (4) is free: the old revision's replacement takes it.
    assert plan.launch == (LaunchRequest(old, "web:1", 1),)
    assert len(sim.live()) == 4


def test_a_scale_out_mid_deployment_grows_both_revisions_within_the_bounds() -> None:
    configuration = {"minimumHealthyPercent": 50, "maximumPercent": 200}
    sim, old, new = mid_deployment(4, 50)
    sim.spec = spec(desiredCount=7, deploymentConfiguration=configuration)
    plan = sim.plan()
    # Both grow by 7/4: the old from 2 to floor(3.5) = 3, the rest to the new revision.
    assert (sim.deployment(old).desired_count, sim.primary().desired_count) == (3, 7)
    assert sorted((r.deployment_id == new, r.count) for r in plan.launch) == [(False, 1), (True, 3)]
    max_tasks, _ = deployment_bounds(sim.spec, 7)
    assert len(sim.live()) <= max_tasks
    sim.run(10)
    assert sim.steady() and sim.primary().id == new and len(sim.live()) == 7
    assert {t.task_definition for t in sim.live()} == {"web:2"}


def test_a_scale_out_is_bounded_by_maximum_percent_the_primary_getting_the_rest() -> None:
    sim, old, new = mid_deployment(4, 50, 100)
    sim.spec = spec(
        desiredCount=8, deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 100}
    )
    plan = sim.plan()
    # 2 old + 2 new; maxTasks 8; minHealthy 4, 2 healthy: the old revision grows 2 -> 4 first.
    assert [(r.deployment_id, r.count) for r in plan.launch] == [(old, 2), (new, 2)]
    assert len(sim.live()) == 8
    assert healthy_count(sim) == 2  # nothing healthy was stopped


def test_a_superseded_deployment_that_never_completed_does_not_take_the_old_share() -> None:
    sim, old, broken = mid_deployment(4, 100)
    sim.outcomes["web:2"] = "unhealthy"
    sim.tick()  # web:2 runs, never healthy: web:1 keeps all 4
    sim.exit(old_tasks(sim, old)[0].name)
    sim.plan()
    [replacement] = [t for t in sim.live() if t.deployment_id == old and t.pending]
    deploy(sim, "web:3")
    plan = sim.plan()
    # One task short of minHealthy: web:1's own replacement fills it, not a web:2 task.
    stopped = {s.task for s in plan.stop}
    assert replacement.name not in stopped
    assert {t.name for t in sim.tasks.values() if t.deployment_id == broken} <= stopped | {
        t.name for t in sim.tasks.values() if t.stopped
    }
    sim.run(10)
    assert sim.steady() and {t.task_definition for t in sim.live()} == {"web:3"}


def test_after_a_failed_deployment_nothing_is_launched_as_before() -> None:
    sim = steady_sim(2, deploymentConfiguration=breaker(False))
    old = sim.primary().id
    sim.outcomes["web:2"] = "fail"
    deploy(sim)
    for _ in range(10):
        sim.plan()
        sim.tick(60)
    assert sim.primary().rollout_state == "FAILED"
    sim.exit(old_tasks(sim, old)[0].name)
    plan = sim.plan()
    assert (plan.launch, plan.stop) == ((), ())  # ECS: a failed deployment launches nothing
    assert sim.deployment(old).desired_count == 1


def test_a_restarted_operator_holds_what_the_status_says() -> None:
    sim, old, _ = mid_deployment(4, 100)
    sim.exit(old_tasks(sim, old)[0].name)
    before = sim.state()
    first = sim.plan()
    assert first.launch == (LaunchRequest(old, "web:1", 1),)
    # A new process (another rng) with the same status and tasks decides the same...
    assert plan_service(before, random.Random(99)).launch == first.launch
    # ... and, once the replacement exists, launches nothing more: the status says 4 are held.
    again = plan_service(sim.state(), random.Random(99))
    assert (again.launch, again.stop) == ((), ())
    [held] = [d for d in again.status.deployments or () if d.id == old]
    assert (held.desired_count, held.running_count, held.pending_count) == (4, 3, 1)


def test_a_lost_status_mid_deployment_adopts_what_each_revision_holds() -> None:
    sim, old, new = mid_deployment(4, 100)
    sim.status = None
    sim.plan()
    assert sim.primary().id == new
    assert sim.deployment(old).desired_count == 4
    sim.exit(old_tasks(sim, old)[0].name)
    plan = sim.plan()
    assert plan.launch == (LaunchRequest(old, "web:1", 1),)


# ---------------------------------------------------------------------------------------------
# Circuit breaker and throttle


def breaker(rollback: bool) -> dict[str, Any]:
    return {"deploymentCircuitBreaker": {"enable": True, "rollback": rollback}}


def test_circuit_breaker_rolls_back_to_the_last_completed_deployment() -> None:
    sim = steady_sim(2, deploymentConfiguration=breaker(True))
    good = sim.primary().id
    sim.outcomes["web:2"] = "fail"
    deploy(sim)
    sim.plan()
    bad = sim.primary().id
    for _ in range(10):
        sim.tick(60)
        sim.plan()
        if sim.primary().id == good:
            break
    messages = sim.messages()
    assert f"(service web) (deployment {bad}) deployment failed: tasks failed to start." in messages
    assert f"(service web) rolling back to deployment {good}." in messages
    index = messages.index(f"(service web) rolling back to deployment {good}.")
    assert messages[index - 1].endswith("deployment failed: tasks failed to start.")
    assert sim.primary().task_definition == "web:1"
    assert condition(sim, "Degraded")[1] == "DeploymentFailed"
    sim.run(3, 60)
    assert {t.task_definition for t in sim.live()} == {"web:1"}  # the failed one is not retried
    assert condition(sim, "Degraded") == ("True", "DeploymentFailed")
    deploy(sim, "web:3")
    sim.outcomes["web:3"] = "ok"
    sim.run(4)
    assert sim.primary().task_definition == "web:3" and sim.steady()
    assert condition(sim, "Degraded") == ("False", "AsExpected")


def test_rollback_to_an_inactive_deployment_relaunches_its_revision() -> None:
    configuration = breaker(True) | {"minimumHealthyPercent": 0}
    sim = steady_sim(2, deploymentConfiguration=configuration)
    good = sim.primary().id
    sim.outcomes["web:2"] = "fail"
    deploy(sim)
    sim.plan()  # min 0%: the old tasks go at once
    assert [(d.id, d.status) for d in sim.status.deployments or ()][1] == (good, "ACTIVE")
    sim.tick()
    sim.plan()
    kept = next(d for d in sim.status.deployments or () if d.id == good)
    assert (kept.status, kept.rollout_state) == ("INACTIVE", "COMPLETED")  # the rollback target
    for _ in range(10):
        sim.tick(60)
        plan = sim.plan()
        if sim.primary().id == good:
            break
    primary = sim.primary()
    assert (primary.rollout_state, primary.rollout_state_reason) == (
        "IN_PROGRESS",
        f"ECS deployment circuit breaker: rolling back to deploymentId {good}.",
    )
    assert [(r.task_definition, r.count) for r in plan.launch] == [("web:1", 2)]
    assert condition(sim, "Progressing") == ("True", "RollingBack")
    assert [d.id for d in sim.status.deployments or ()] == [good]  # failed one had no tasks
    sim.run(3)
    assert sim.primary().rollout_state == "COMPLETED" and sim.steady()


def test_circuit_breaker_without_rollback_fails_and_stops_launching() -> None:
    sim = steady_sim(2, deploymentConfiguration=breaker(False))
    sim.outcomes["web:2"] = "fail"
    deploy(sim)
    for _ in range(10):
        sim.plan()
        sim.tick(60)
    primary = sim.primary()
    assert primary.rollout_state == "FAILED"
    assert primary.rollout_state_reason == "ECS deployment circuit breaker: tasks failed to start."
    assert primary.failed_tasks >= 3
    assert condition(sim, "Degraded") == ("True", "DeploymentFailed")
    plan = sim.plan()
    assert (plan.launch, plan.stop) == ((), ())
    assert {t.task_definition for t in sim.live()} == {"web:1"}  # old tasks keep running


def test_failed_tasks_reset_when_a_primary_task_is_healthy() -> None:
    sim = steady_sim(2)
    tasks = [
        service_task(
            "f1",
            sim.primary().id,
            last_status="STOPPED",
            stop_code="TaskFailedToStart",
            stopped_at=T0 + timedelta(seconds=40),
            desired_status="STOPPED",
        ),
    ]
    sim.tasks |= {t.name: t for t in tasks}
    sim.now += timedelta(seconds=50)
    sim.plan()
    assert sim.primary().failed_tasks == 0  # COMPLETED deployments are not evaluated


def test_throttle_delays_relaunches_and_warns_once_per_episode() -> None:
    sim = Sim(spec(desiredCount=1), ZONES3, outcomes={"web:1": "fail"})
    delays = []
    for _ in range(6):
        plan = sim.plan()
        while not plan.launch:
            assert plan.requeue_after is not None
            delays.append(plan.requeue_after)
            sim.now += timedelta(seconds=plan.requeue_after)
            plan = sim.plan()
        sim.tick(1)
    assert delays == [5, 10, 20, 40]  # counted from each failure's stoppedAt
    assert (
        sim.messages().count("(service web) is unable to consistently start tasks successfully.")
        == 1
    )
    assert condition(sim, "Degraded") == ("True", "TasksFailingToStart")
    deploy(sim)  # a new revision resets the throttle
    assert sum(r.count for r in sim.plan().launch) == 1
    assert sim.status is not None and sim.status.scheduler is not None
    assert sim.status.scheduler.consecutive_start_failures == 0


def test_a_task_reaching_running_ends_the_throttle_episode() -> None:
    sim = Sim(spec(desiredCount=1), ZONES3, outcomes={"web:1": "fail"})
    for _ in range(3):
        sim.plan()
        sim.tick(30)
    assert (
        sim.status and sim.status.scheduler and sim.status.scheduler.consecutive_start_failures >= 2
    )
    sim.outcomes["web:1"] = "ok"
    sim.run(3, 30)
    assert sim.status.scheduler and sim.status.scheduler.consecutive_start_failures == 0
    assert sim.steady()


# ---------------------------------------------------------------------------------------------
# Health, node loss, draining


def test_unhealthy_task_waits_for_the_grace_period_then_is_replaced_first() -> None:
    sim = steady_sim(2, healthCheckGracePeriodSeconds=60)
    victim = sim.live()[0]
    sim.tasks[victim.name] = replace(victim, health_status="UNHEALTHY", started_at=sim.now)
    inside = sim.plan()
    assert (inside.launch, inside.stop) == ((), ())
    assert inside.requeue_after == pytest.approx(60)
    sim.now += timedelta(seconds=61)
    first = sim.plan()
    assert [(r.count, r.purpose) for r in first.launch] == [(1, "replace_unhealthy")]
    assert first.stop == ()
    sim.tick()
    second = sim.plan()
    [stop] = second.stop
    assert (stop.task, stop.reason) == (victim.name, "Task failed container health checks")
    assert second.events[0] == f"(service web) (task {victim.name}) failed container health checks."
    assert events.service_event_kind(second.events[0]) == ("Warning", "TaskFailedHealthChecks")
    _, started = record_launches(
        ServiceStatus(), "web", {first.launch[0]: ["web-abc"]}, T0, random.Random(1)
    )
    assert started == [
        "(service web) has started 1 tasks: (task web-abc). "
        "Amazon ECS replaced 1 tasks due to an unhealthy status."
    ]
    assert events.service_event_kind(started[0]) == ("Normal", "TasksStarted")


def test_unhealthy_tasks_go_one_at_a_time_without_headroom() -> None:
    sim = steady_sim(3, deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 0})
    for task in sim.live()[:2]:
        sim.tasks[task.name] = replace(task, health_status="UNHEALTHY")
    plan = sim.plan()
    assert len(plan.stop) == 1 and plan.launch[0].count == 1


def test_tasks_on_a_lost_node_are_force_stopped_and_replaced_at_once() -> None:
    sim = steady_sim(3)
    lost = next(t for t in sim.live() if t.node == "n1")
    sim.nodes = [node("n1", "a", ready=False), *ZONES3[1:]]
    plan = sim.plan()
    [stop] = plan.stop
    assert (stop.task, stop.stop_code, stop.force) == (lost.name, "TerminationNotice", True)
    assert stop.reason == "Task stopped: its node (node n1) was lost"
    assert sum(r.count for r in plan.launch) == 1
    sim.nodes = ZONES3[1:]  # a deleted node counts as lost too
    sim.tasks[lost.name] = replace(lost)
    assert [s.task for s in sim.plan().stop] == [lost.name]


def test_draining_node_pending_stopped_running_replaced_within_bounds() -> None:
    nodes = [node("n1", "a"), node("n2", "a")]
    sim = Sim(
        spec(desiredCount=2, placementStrategy=[{"type": "spread", "field": "instanceId"}]), nodes
    )
    sim.run(3)
    running = next(t for t in sim.live() if t.node == "n1")
    pending = service_task("p", sim.primary().id, node_name="n1", zone="a", last_status="PENDING")
    sim.tasks["p"] = pending
    sim.nodes = [node("n1", "a", schedulable=False), node("n2", "a")]
    plan = sim.plan()
    assert [s.task for s in plan.stop] == ["p"]
    assert plan.stop[0].reason == "Task stopped: its node (node n1) is draining"
    assert "(service web) stopped 1 pending tasks." in plan.events
    assert sum(r.count for r in plan.launch) == 1  # the replacement first (min 100%)
    sim.tick()
    second = sim.plan()
    assert [s.task for s in second.stop] == [running.name]
    assert all(t.node == "n2" for t in sim.live())


def test_draining_blocked_by_min_max_100() -> None:
    nodes = [node("n1", "a"), node("n2", "b")]
    sim = steady_sim(2, nodes, deploymentConfiguration={"maximumPercent": 100})
    sim.nodes = [node("n1", "a", schedulable=False), node("n2", "b")]
    plan = sim.plan()
    assert (plan.launch, plan.stop) == ((), ())
    assert condition(sim, "Degraded") == ("True", "DeploymentBlocked")


# ---------------------------------------------------------------------------------------------
# Scale-in and AZ rebalancing


def test_scale_in_prefers_pending_tasks_then_balances_zones() -> None:
    sim = steady_sim(6)
    pending = service_task("p", sim.primary().id, node_name="n1", zone="a", last_status="PENDING")
    sim.tasks["p"] = pending
    sim.spec = spec(desiredCount=3)
    plan = sim.plan()
    stopped = [sim.tasks[s.task] for s in plan.stop]
    assert stopped[0].name == "p" and len(stopped) == 4
    zones = sorted(t.zone or "" for t in sim.live())
    assert zones == ["a", "b", "c"]


def test_az_rebalancing_launches_in_the_emptiest_zone_then_stops_in_the_fullest() -> None:
    sim = steady_sim(4, [node("n1", "a"), node("n2", "b")])
    sim.nodes = [node("n1", "a"), node("n2", "b"), node("n3", "c")]
    first = sim.plan()
    assert first.events == (
        "(service web) is not AZ balanced with 2 tasks in a, 2 tasks in b, 0 tasks in c. "
        "AZ Rebalancing in progress.",
    )
    assert [(r.purpose, r.zone, r.count) for r in first.launch] == [("rebalance", "c", 1)]
    assert condition(sim, "Ready")[0] == "True"
    sim.tick()
    second = sim.plan()
    assert len(second.stop) == 1
    assert re.fullmatch(
        r"\(service web\) has stopped 1 running tasks in [ab] due to AZ rebalancing: "
        r"\(task web-\d+\)\.",
        second.events[0],
    )
    sim.tick()
    third = sim.plan()
    assert third.events[0].startswith("(service web) is AZ balanced with 2 tasks in ")
    assert sorted(t.zone or "" for t in sim.live()) in (["a", "a", "b", "c"], ["a", "b", "b", "c"])
    assert (third.launch, third.stop) == ((), ())


def test_the_plan_that_completes_a_deployment_starts_the_rebalance_it_leaves_behind() -> None:
    """The controller does not reconcile the echo of its own status write, so a rebalance left
    for the plan after COMPLETED would wait for some unrelated event."""
    two_zones = [node("n1", "a"), node("n2", "b")]
    sim = steady_sim(4, two_zones)
    deploy(sim)
    for _ in range(20):
        sim.plan()
        sim.tick()
        if all(t.task_definition == "web:2" and t.running for t in sim.tasks.values() if t.live):
            break
    assert sim.primary().rollout_state == "IN_PROGRESS"
    sim.nodes = [*two_zones, node("n3", "c")]
    plan = sim.plan()
    assert sim.primary().rollout_state == "COMPLETED"
    assert events.deployment_completed("web", sim.primary().id) in plan.events
    assert [(r.purpose, r.zone) for r in plan.launch] == [("rebalance", "c")]


def test_a_running_task_without_its_zone_yet_counts_in_its_nodes_zone() -> None:
    """A task's status can say RUNNING before it names its zone (written before the Pod's node
    was seen); counted nowhere, a balanced service would look unbalanced and a healthy task
    would be launched and stopped for nothing."""
    sim = steady_sim(5)
    assert sorted(t.zone or "" for t in sim.live()) in (
        ["a", "a", "b", "b", "c"],
        ["a", "a", "b", "c", "c"],
        ["a", "b", "b", "c", "c"],
    )
    zone_counts = Counter(t.zone for t in sim.live())
    alone = next(t for t in sim.live() if zone_counts[t.zone] == 1)
    sim.tasks[alone.name] = replace(alone, zone=None)
    plan = sim.plan()
    assert (plan.launch, plan.stop, plan.events) == ((), (), ())


def test_az_rebalancing_with_max_100_stops_first() -> None:
    two_zones = [node("n1", "a"), node("n2", "b")]
    sim = steady_sim(
        4, two_zones, deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 75}
    )
    sim.nodes = [*two_zones, node("n3", "c")]
    plan = sim.plan()
    assert len(plan.stop) == 1 and [(r.zone, r.count) for r in plan.launch] == [("c", 1)]


def test_no_rebalancing_when_disabled_or_binpack() -> None:
    for fields in (
        {"availabilityZoneRebalancing": "DISABLED"},
        {"placementStrategy": [{"type": "binpack", "field": "memory"}]},
    ):
        sim = steady_sim(4, [node("n1", "a"), node("n2", "b")], **fields)
        sim.nodes = [node("n1", "a"), node("n2", "b"), node("n3", "c")]
        plan = sim.plan()
        assert (plan.launch, plan.stop, plan.events) == ((), (), ())


# ---------------------------------------------------------------------------------------------
# DAEMON


def daemon_spec(**fields: Any) -> Any:
    return spec(desiredCount=None, schedulingStrategy="DAEMON", **fields)


def test_daemon_runs_one_task_per_eligible_node() -> None:
    nodes = [node("n1", "a"), node("n2", "b"), node("n3", "c", attributes={"gpu": "yes"})]
    only_gpu = [{"type": "memberOf", "expression": "attribute:gpu == yes"}]
    sim = Sim(daemon_spec(placementConstraints=only_gpu), nodes)
    plan = sim.plan()
    assert [(r.node, r.count, r.purpose) for r in plan.launch] == [("n3", 1, "daemon")]
    sim.spec = daemon_spec()
    sim.run(3)
    assert sorted(t.node or "" for t in sim.live()) == ["n1", "n2", "n3"]
    assert sim.status is not None and sim.status.desired_count == 3 and sim.steady()
    sim.nodes = [*nodes, node("n4", "a")]  # a new node gets one
    assert [r.node for r in sim.plan().launch] == ["n4"]
    sim.tick()
    sim.nodes = [node("n1", "a", schedulable=False), *nodes[1:], node("n4", "a")]
    plan = sim.plan()  # a cordoned node loses its task and gets none
    assert [sim.tasks[s.task].node for s in plan.stop] == ["n1"] and plan.launch == ()
    assert sim.status.desired_count == 3


def test_daemon_deployment_replaces_node_by_node_within_min_healthy() -> None:
    nodes = [node("n1", "a"), node("n2", "b"), node("n3", "c"), node("n4", "a")]
    sim = Sim(daemon_spec(deploymentConfiguration={"minimumHealthyPercent": 50}), nodes)
    sim.run(3)
    deploy(sim)
    plan = sim.plan()
    assert len(plan.stop) == 2 and plan.launch == ()  # the node must be free first
    sim.tick()
    assert len(sim.plan().launch) == 2
    sim.run(6)
    assert sorted((t.node, t.task_definition) for t in sim.live()) == [
        (n.name, "web:2") for n in nodes
    ]


# ---------------------------------------------------------------------------------------------
# Events and inputs


def test_events_are_deduplicated_newest_first_and_capped() -> None:
    status = ServiceStatus()
    rng = random.Random(3)
    status, recorded = record_events(status, ["x", "x", "y"], T0, rng)
    assert recorded == ["x", "y"] and [e.message for e in status.events or ()] == ["y", "x"]
    status, recorded = record_events(status, ["x"], T0 + timedelta(hours=1), rng)
    assert recorded == []
    status, recorded = record_events(status, ["x"], T0 + timedelta(hours=7), rng)
    assert recorded == ["x"]
    steady = events.service_steady("web")
    status, _ = record_events(status, [steady], T0 + timedelta(hours=7), rng)
    status, recorded = record_events(status, [steady, "x"], T0 + timedelta(hours=8), rng)
    assert recorded == ["x"]  # steady repeats only after something else; x after a steady state
    status, recorded = record_events(status, [steady], T0 + timedelta(hours=8), rng)
    assert recorded == [steady]
    for index in range(150):
        status, _ = record_events(status, [f"m{index}"], T0, rng)
    assert len(status.events or ()) == 100 and (status.events or ())[0].message == "m149"
    assert re.fullmatch(r"[0-9a-f-]{36}", (status.events or ())[0].id)


def test_placement_failure_event_and_condition() -> None:
    request = LaunchRequest("ecs-svc/1000000000000000000", "web:1", 1)
    failure = PlacementFailure("RESOURCE:MEMORY", "node-1", "has insufficient memory available")
    status, recorded = record_placement_failures(
        ServiceStatus(), None, "web", [(request, failure)], 3, T0, random.Random(1)
    )
    assert recorded == [
        "(service web) was unable to place a task because no container instance met all of its "
        "requirements. The closest matching (container-instance node-1) has insufficient memory "
        "available."
    ]
    [degraded] = status.conditions or []
    assert (degraded.type, degraded.status, degraded.reason, degraded.observed_generation) == (
        "Degraded",
        "True",
        "TasksCannotBePlaced",
        3,
    )
    zoned = replace(request, purpose="rebalance", zone="c")
    assert events.service_unable_to_place("web", None, "", zoned.zone) == (
        "(service web) is unable to place a task in c because no container instance met all of "
        "its requirements."
    )


def test_the_same_placement_failure_again_changes_nothing() -> None:
    """A full cluster: every plan finds the service as it left it (Degraded AsExpected in the
    plan's own status), the launch fails the same way, and the final status is the previous
    one, so there is nothing to write and nothing to say."""
    sim = Sim(spec(desiredCount=4), [node("n1", "a", memory=1024)])
    request = LaunchRequest("ecs-svc/1000000000000000000", "web:1", 3)
    failure = PlacementFailure("RESOURCE:MEMORY", "n1", "has insufficient memory available")
    written: ServiceStatus | None = None
    said: list[str] = []
    for step in range(30):  # 30 plans over 5 minutes
        previous = sim.status
        plan = sim.plan()
        status, recorded = record_placement_failures(
            plan.status,
            previous,
            "web",
            [(request, failure)],
            1,
            sim.now,
            random.Random(step),
        )
        sim.status = status
        said += recorded
        if step > 3:
            assert status == written, step
        written = status
        sim.tick(10)
    assert [m for m in said if "unable to place" in m] == [
        events.service_unable_to_place("web", "n1", "has insufficient memory available")
    ]
    degraded = next(c for c in written.conditions or () if c.type == "Degraded")
    assert degraded.last_transition_time == T0  # the first failure


def test_unable_to_place_is_said_at_most_every_five_minutes_whatever_its_details() -> None:
    request = LaunchRequest("ecs-svc/1000000000000000000", "web:1", 1)

    def fail_on(
        node_name: str, at: timedelta, status: ServiceStatus
    ) -> tuple[ServiceStatus, list[str]]:
        failure = PlacementFailure(
            "RESOURCE:MEMORY", node_name, "has insufficient memory available"
        )
        return record_placement_failures(
            status, status, "web", [(request, failure)], 1, T0 + at, random.Random(1)
        )

    status, said = fail_on("n1", timedelta(0), ServiceStatus())
    assert len(said) == 1
    status, said = fail_on("n2", timedelta(minutes=4), status)  # another closest node
    assert said == []
    status, said = fail_on("n2", timedelta(minutes=5), status)
    assert len(said) == 1 and "n2" in said[0]
    status, said = fail_on("n2", timedelta(minutes=30), status)  # identical: waits 6 hours
    assert said == []


def test_repeating_event_interval() -> None:
    assert events.repeating_event_due(None, T0)
    assert not events.repeating_event_due(T0, T0 + timedelta(minutes=4, seconds=59))
    assert events.repeating_event_due(T0, T0 + events.REPEATING_EVENT_INTERVAL)
    assert events.repeating_event_due(T0, T0 - timedelta(seconds=1))  # the clock was set back


def test_start_and_stop_event_texts() -> None:
    assert events.service_tasks_started("web", ["a", "b"]) == (
        "(service web) has started 2 tasks: (task a) (task b)."
    )
    assert events.service_tasks_started("web", ["a"], "rebalance", "zone-c") == (
        "(service web) has started 1 tasks in zone-c to AZ Rebalance: (task a)."
    )
    assert [len(batch) for batch in events.task_batches([str(i) for i in range(25)])] == [10, 10, 5]
    assert events.service_tasks_stopped("web", ["a"]) == (
        "(service web) has stopped 1 running tasks: (task a)."
    )


DELETED = 'task definition "web" has no ACTIVE revision (the TaskDefinition was deleted)'


def test_a_deleted_family_keeps_the_service_scaling_on_its_inactive_revision() -> None:
    """ECS: a service keeps launching on the revision it runs after it is deregistered. The
    spec still names that revision, so no deployment is needed and nothing is refused."""
    sim = steady_sim()
    sim.revision, sim.resolution_error = None, DELETED
    plan = sim.plan()
    assert (plan.launch, plan.stop, plan.events, plan.changed) == ((), (), (), False)
    assert condition(sim, "Degraded") == ("False", "AsExpected")
    sim.spec = spec(desiredCount=5)
    sim.generation += 1
    sim.run(4)
    assert sim.steady() and len(sim.live()) == 5
    assert {t.task_definition for t in sim.live()} == {"web:1"}
    assert not [m for m in sim.messages() if "unable to start a deployment" in m]
    assert condition(sim, "Degraded") == ("False", "AsExpected")


def test_a_new_deployment_without_an_active_revision_is_refused_once() -> None:
    sim = steady_sim()
    sim.revision, sim.resolution_error = None, DELETED
    sim.spec = spec(desiredCount=4, forceNewDeployment="again")
    sim.generation += 1
    plan = sim.plan()
    assert plan.events == (f"(service web) was unable to start a deployment: {DELETED}.",)
    assert condition(sim, "Degraded") == ("True", "TaskDefinitionUnavailable")
    assert [launch.task_definition for launch in plan.launch] == ["web:1"]  # still scales
    said = list(plan.events)
    for _ in range(60):  # ten minutes of plans: steady on web:1, the refusal not repeated
        sim.tick(10)
        plan = sim.plan()
        said += plan.events
    assert len(sim.live()) == 4 and {t.task_definition for t in sim.live()} == {"web:1"}
    # (the controller says "has started" for the launch; no steady state while refused)
    assert said == [f"(service web) was unable to start a deployment: {DELETED}."]
    assert not plan.changed
    assert condition(sim, "Degraded") == ("True", "TaskDefinitionUnavailable")


def test_load_balancer_entries_that_do_not_fit_are_reported_while_running() -> None:
    sim = steady_sim()
    problem = "spec.loadBalancers[0].loadBalancerName: LoadBalancer 'front' is being deleted"
    plan = plan_service(
        replace(sim.state(), resolved_task_definition=None, load_balancer_error=problem),
        random.Random(1),
    )
    assert plan.events == (f"(service web) was unable to start a deployment: {problem}.",)
    degraded = next(c for c in plan.status.conditions or () if c.type == "Degraded")
    assert (degraded.status, degraded.reason, degraded.message) == (
        "True",
        "TaskDefinitionUnavailable",
        problem,
    )


def test_a_service_whose_reference_never_resolved_is_refused() -> None:
    sim = Sim(
        spec(), ZONES3, revision=None, resolution_error='task definition "web" does not exist'
    )
    plan = sim.plan()
    assert (plan.launch, plan.stop) == ((), ())
    assert plan.events == (
        '(service web) was unable to start a deployment: task definition "web" does not exist.',
    )
    assert condition(sim, "Degraded") == ("True", "TaskDefinitionUnavailable")
    sim.tick(10)
    assert sim.plan().changed is False


def test_invalid_constraint_expression_is_reported_not_raised() -> None:
    sim = Sim(
        spec(placementConstraints=[{"type": "memberOf", "expression": "attribute:x =="}]), ZONES3
    )
    plan = sim.plan()
    assert plan.launch == ()
    assert condition(sim, "Degraded")[1] == "InvalidPlacementConstraint"
    assert "placementConstraints[0].expression" in plan.events[0]


def test_service_task_from_a_task_object() -> None:
    task = Task.model_validate(
        {
            "metadata": {
                "name": "web-abc",
                "uid": "12345678-1234-1234-1234-123456789012",
                "annotations": {labels.PLACED_NODE_ANNOTATION: "n1"},
            },
            "spec": {"taskDefinition": "web:2", "startedBy": "ecs-svc/1234567890123456789"},
            "status": {
                "lastStatus": "RUNNING",
                "desiredStatus": "RUNNING",
                "healthStatus": "HEALTHY",
                "taskDefinitionArn": "web:2",
                "nodeName": "n1",
                "availabilityZone": "a",
                "createdAt": "2025-01-01T00:00:00Z",
                "startedAt": "2025-01-01T00:00:05Z",
            },
        }
    )
    view = ServiceTask.of(task, T0, health_checked=True)
    assert (view.task_id, view.deployment_id, view.node, view.zone, view.placed_node) == (
        "12345678123412341234123456789012",
        "ecs-svc/1234567890123456789",
        "n1",
        "a",
        "n1",
    )
    assert view.live and view.running and not view.failed_to_start
    stopping = task.model_copy(
        update={"spec": task.spec.model_copy(update={"desired_status": "STOPPED"})}
    )
    assert not ServiceTask.of(stopping, T0).live


def test_state_defaults() -> None:
    state = ServiceState(
        name="web",
        uid="u",
        generation=1,
        spec=spec(desiredCount=0),
        status=None,
        tasks=[],
        nodes=[],
        now=T0,
        resolved_task_definition="web:1",
    )
    plan = plan_service(state, random.Random(1))
    assert (
        plan.launch == ()
        and plan.status.deployments
        and plan.status.deployments[0].rollout_state == "COMPLETED"
    )
