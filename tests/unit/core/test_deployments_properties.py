"""Properties of the service scheduler, checked by simulating plan -> apply -> time passes."""

from collections import Counter
from datetime import timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ecs_operator.core import events
from ecs_operator.core.deployments import (
    circuit_breaker_threshold,
    deployment_bounds,
    throttle_delay_seconds,
)
from support.servicesim import Sim, node, service_task, spec

ZONE_NAMES = ("a", "b", "c")
SETTINGS = settings(max_examples=60, deadline=None)


def cluster(zones: int, per_zone: int = 2) -> list:
    return [node(f"{z}{i}", z) for z in ZONE_NAMES[:zones] for i in range(per_zone)]


def check_bounds(sim: Sim, max_tasks: int, min_healthy: int, healthy_before: int) -> None:
    """After a plan: never above maxTasks counted tasks, never below minHealthy healthy tasks
    (unless it already was below)."""
    live = sim.live()
    assert len(live) <= max_tasks
    healthy = sum(t.running and t.health_status == "HEALTHY" for t in live)
    assert healthy >= min(min_healthy, healthy_before)


@SETTINGS
@given(
    desired=st.integers(0, 9),
    minimum=st.integers(0, 100),
    maximum=st.integers(100, 220),
    zones=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_rolling_update_stays_in_bounds_and_converges_when_ecs_can(
    desired: int, minimum: int, maximum: int, zones: int, seed: int
) -> None:
    configuration = {"minimumHealthyPercent": minimum, "maximumPercent": maximum}
    sim = Sim(
        spec(desiredCount=desired, deploymentConfiguration=configuration),
        cluster(zones, per_zone=4),
        seed=seed,
    )
    sim.run(4)
    assert sim.steady()
    sim.revision, sim.generation = "web:2", 2
    max_tasks, min_healthy = deployment_bounds(sim.spec, desired)
    can_progress = max_tasks > desired or min_healthy < desired or desired == 0
    for _ in range(6 * desired + 12):
        healthy_before = sum(t.running and t.health_status == "HEALTHY" for t in sim.live())
        sim.plan()
        check_bounds(sim, max_tasks, min_healthy, healthy_before)
        sim.tick()
        if sim.steady() and sim.primary().task_definition == "web:2":
            break
    blocked = events.deployment_blocked("web") in sim.messages()
    if can_progress:
        assert not blocked
        assert sim.steady() and sim.primary().task_definition == "web:2"
        # The plan that completes the deployment may already launch an AZ rebalancing task.
        rebalancing = sum(r.purpose == "rebalance" for r in sim.plans[-1].launch)
        assert {t.task_definition for t in sim.live()} <= {"web:2"}
        assert desired <= len(sim.live()) <= desired + rebalancing
        sim.run(2 * desired + 2)  # then AZ rebalancing, in steady state
        assert sim.steady() and len(sim.live()) == desired
        per_zone = Counter(t.zone for t in sim.live())
        assert (
            desired == 0
            or max(per_zone.values()) - min(per_zone.get(z, 0) for z in ZONE_NAMES[:zones]) <= 1
        )
    else:
        assert blocked and {t.task_definition for t in sim.live()} == {"web:1"}


@SETTINGS
@given(
    desired=st.integers(1, 9),
    new_desired=st.integers(0, 9),
    zones=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_scale_in_and_out_reach_desired_count_balanced(
    desired: int, new_desired: int, zones: int, seed: int
) -> None:
    sim = Sim(spec(desiredCount=desired), cluster(zones, per_zone=3), seed=seed)
    sim.run(4)
    sim.spec = spec(desiredCount=new_desired)
    sim.generation = 2
    first = sim.plan()
    if new_desired < desired:
        assert len(first.stop) == desired - new_desired and first.launch == ()
    sim.run(6)
    assert sim.steady() and len(sim.live()) == new_desired
    assert len({d.id for d in sim.status.deployments or ()}) == 1  # no new deployment
    per_zone = Counter(t.zone for t in sim.live())
    counts = [per_zone.get(z, 0) for z in ZONE_NAMES[:zones]]
    assert max(counts) - min(counts) <= 1


@SETTINGS
@given(desired=st.integers(1, 500), rollback=st.booleans())
def test_circuit_breaker_trips_exactly_at_the_threshold(desired: int, rollback: bool) -> None:
    threshold = circuit_breaker_threshold(desired)
    assert 3 <= threshold <= 200
    assert threshold == min(200, max(3, -(-desired // 2)))
    configuration = {"deploymentCircuitBreaker": {"enable": True, "rollback": rollback}}
    sim = Sim(spec(desiredCount=desired, deploymentConfiguration=configuration), cluster(1, 1))
    sim.plan()
    primary = sim.primary().id
    failures = [
        service_task(
            f"f{i}",
            primary,
            last_status="STOPPED",
            desired_status="STOPPED",
            stop_code="TaskFailedToStart",
            stopped_at=sim.now + timedelta(seconds=i + 1),
        )
        for i in range(threshold)
    ]
    sim.tasks = {t.name: t for t in failures[:-1]}
    sim.now += timedelta(seconds=threshold + 1)
    sim.plan()
    assert sim.primary().failed_tasks == threshold - 1
    assert sim.primary().rollout_state == "IN_PROGRESS"
    sim.tasks[failures[-1].name] = failures[-1]
    sim.plan()
    failed = next(d for d in sim.status.deployments or () if d.id == primary)
    assert (failed.failed_tasks, failed.rollout_state) == (threshold, "FAILED")


@given(st.integers(0, 60))
def test_throttle_delay_is_monotonic_and_capped(failures: int) -> None:
    delay = throttle_delay_seconds(failures)
    assert 0 <= delay <= 900
    assert throttle_delay_seconds(failures + 1) >= delay
    assert (delay > 0) == (failures >= 2)


@SETTINGS
@given(nodes=st.integers(1, 6), lose=st.integers(0, 5), seed=st.integers(0, 1000))
def test_daemon_keeps_one_task_per_eligible_node(nodes: int, lose: int, seed: int) -> None:
    cluster_nodes = [node(f"n{i}", ZONE_NAMES[i % 3]) for i in range(nodes)]
    sim = Sim(spec(desiredCount=None, schedulingStrategy="DAEMON"), cluster_nodes, seed=seed)
    sim.run(3)
    assert sorted(t.node or "" for t in sim.live()) == sorted(n.name for n in cluster_nodes)
    lost = min(lose, nodes)
    sim.nodes = [
        node(n.name, n.zone, ready=False) if i < lost else n for i, n in enumerate(cluster_nodes)
    ]
    sim.run(3)
    assert sorted(t.node or "" for t in sim.live()) == sorted(n.name for n in cluster_nodes[lost:])
    assert sim.status is not None and sim.status.desired_count == nodes - lost


@SETTINGS
@given(desired=st.integers(2, 9), zones=st.integers(2, 3), seed=st.integers(0, 1000))
def test_node_loss_is_replaced_elsewhere_immediately(desired: int, zones: int, seed: int) -> None:
    sim = Sim(spec(desiredCount=desired), cluster(zones, per_zone=2), seed=seed)
    sim.run(4)
    victim = sim.nodes[0]
    on_victim = sum(t.node == victim.name for t in sim.live())
    sim.nodes = [node(victim.name, victim.zone, ready=False), *sim.nodes[1:]]
    plan = sim.plan()
    assert len(plan.stop) == on_victim and all(s.force for s in plan.stop)
    assert sum(r.count for r in plan.launch) == on_victim
    sim.run(8)
    assert sim.steady() and len(sim.live()) == desired
    assert all(t.node != victim.name for t in sim.live())


@SETTINGS
@given(
    desired=st.integers(0, 9),
    zones=st.integers(1, 3),
    seed=st.integers(0, 1000),
    gaps=st.lists(st.integers(1, 600), min_size=5, max_size=30),
)
def test_a_converged_service_writes_and_says_nothing(
    desired: int, zones: int, seed: int, gaps: list[int]
) -> None:
    """Issue #13: once steady, plans (woken by anything, at any pace) change nothing."""
    sim = Sim(spec(desiredCount=desired), cluster(zones, per_zone=4), seed=seed)
    sim.run(2 * desired + 6)
    assert sim.steady()
    writes, said = sim.writes, len(sim.messages())
    for gap in gaps:
        sim.tick(gap)
        plan = sim.plan()
        assert (plan.launch, plan.stop, plan.changed) == ((), (), False)
    assert (sim.writes, len(sim.messages())) == (writes, said)


@SETTINGS
@given(
    extra=st.integers(1, 6),
    zones=st.integers(1, 3),
    seed=st.integers(0, 1000),
    gaps=st.lists(st.integers(1, 60), min_size=5, max_size=40),
)
def test_a_full_cluster_converges_to_no_writes(
    extra: int, zones: int, seed: int, gaps: list[int]
) -> None:
    """Issue #13: one task fits per node and the service wants more: after the tasks that fit
    run, each reconcile retries the launch, fails the same way and writes nothing; the
    placement failure was said once."""
    nodes = [node(f"{z}{i}", z, memory=768) for z in ZONE_NAMES[:zones] for i in range(2)]
    sim = Sim(spec(desiredCount=len(nodes) + extra), nodes, seed=seed)
    sim.run(4)
    assert len(sim.live()) == len(nodes) and sim.unplaced > 0
    writes = sim.writes
    for gap in gaps:
        sim.tick(gap)
        plan = sim.plan()
        assert plan.launch  # the retry
    assert sim.writes == writes
    assert len(sim.placement_events) == 1, sim.placement_events
    assert sim.status is not None
    degraded = next(c for c in sim.status.conditions or () if c.type == "Degraded")
    assert (degraded.status, degraded.reason) == ("True", "TasksCannotBePlaced")


@SETTINGS
@given(
    desired=st.integers(1, 8),
    minimum=st.integers(0, 100),
    maximum=st.integers(100, 220),
    extra=st.integers(0, 4),
    scale_at=st.integers(0, 6),
    exits=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 99)), max_size=5),
    seed=st.integers(0, 1000),
)
def test_rolling_update_with_failures_and_a_scale_out_stays_in_bounds_and_converges(
    desired: int,
    minimum: int,
    maximum: int,
    extra: int,
    scale_at: int,
    exits: list[tuple[int, int]],
    seed: int,
) -> None:
    """ECS since 2025-11: tasks of either revision exit mid-deployment and the service scales
    out; each revision replaces its own, an old one only while healthy tasks are short of
    minHealthy, always within maxTasks; then only the new revision is left."""
    configuration = {"minimumHealthyPercent": minimum, "maximumPercent": maximum}
    sim = Sim(
        spec(desiredCount=desired, deploymentConfiguration=configuration),
        cluster(3, per_zone=4),
        seed=seed,
    )
    sim.run(4)
    sim.now += timedelta(minutes=1)  # exits below are failures of running tasks, not starts
    sim.revision, sim.generation = "web:2", 2
    count = desired
    for wanted in (desired, desired + extra):  # else ECS cannot progress (another test)
        max_tasks, min_healthy = deployment_bounds(sim.spec, wanted)
        assume(max_tasks > wanted or min_healthy < wanted)
    for step in range(6 * (desired + extra) + 20):
        if step == scale_at:
            count = desired + extra
            sim.spec = spec(desiredCount=count, deploymentConfiguration=configuration)
        running = sorted(
            (t for t in sim.live() if t.running and t.started_at is not None),
            key=lambda t: t.name,
        )
        for at, index in exits:
            long_running = [
                t for t in running if (sim.now - (t.started_at or sim.now)).total_seconds() >= 30
            ]
            if at == step and long_running:
                sim.exit(long_running[index % len(long_running)].name)
                running.remove(long_running[index % len(long_running)])
        max_tasks, min_healthy = deployment_bounds(sim.spec, count)
        healthy_before = sum(t.running and t.health_status == "HEALTHY" for t in sim.live())
        primary_before = sim.primary().id
        plan = sim.plan()
        check_bounds(sim, max_tasks, min_healthy, healthy_before)
        for launch in plan.launch:
            deployment = sim.deployment(launch.deployment_id)
            assert deployment is not None and deployment.rollout_state != "FAILED"
            if launch.deployment_id not in (primary_before, sim.primary().id):
                assert healthy_before < min_healthy  # an old revision only fills a shortfall
        sim.tick()
        if step > max(scale_at, *(at for at, _ in exits), 0) and sim.steady():
            break
    assert sim.steady() and sim.primary().task_definition == "web:2"
    assert {t.task_definition for t in sim.live()} == {"web:2"}
    assert [d.id for d in sim.status.deployments or ()] == [sim.primary().id]
    assert len(sim.live()) >= desired + extra  # an AZ rebalance may have started one more


def stuck_mid_deployment(
    desired: int, minimum: int, maximum: int, plans: int, seed: int
) -> tuple[Sim, str]:
    """A steady service of web:1 deploying web:2, whose tasks run but never become healthy:
    the deployment stays IN_PROGRESS with web:1 down to minHealthy. Returns web:1's id."""
    configuration = {"minimumHealthyPercent": minimum, "maximumPercent": maximum}
    sim = Sim(
        spec(desiredCount=desired, deploymentConfiguration=configuration),
        cluster(3, per_zone=4),
        seed=seed,
        outcomes={"web:2": "unhealthy"},
    )
    sim.run(4)
    old = sim.primary().id
    sim.now += timedelta(minutes=1)  # an exit below is a running task's failure, not a start's
    sim.revision, sim.generation = "web:2", 2
    max_tasks, min_healthy = deployment_bounds(sim.spec, desired)
    assume(max_tasks > desired or min_healthy < desired)  # else ECS cannot progress at all
    for _ in range(plans + 1):
        healthy_before = healthy_count(sim)
        sim.plan()
        check_bounds(sim, max_tasks, min_healthy, healthy_before)
        sim.tick()
    assert sim.primary().task_definition == "web:2"
    assert sim.primary().rollout_state == "IN_PROGRESS"
    return sim, old


def healthy_count(sim: Sim) -> int:
    return sum(t.running and t.health_status == "HEALTHY" for t in sim.live())


@SETTINGS
@given(
    desired=st.integers(1, 6),
    minimum=st.integers(1, 100),
    maximum=st.integers(100, 200),
    plans=st.integers(0, 6),
    victim=st.integers(0, 99),
    seed=st.integers(0, 1000),
)
def test_a_failed_old_task_is_replaced_from_its_own_revision_while_the_new_one_is_unhealthy(
    desired: int, minimum: int, maximum: int, plans: int, victim: int, seed: int
) -> None:
    """ECS since 2025-11: the old revision keeps its minHealthy share while the new revision
    cannot take over; a task of it that exits is replaced by web:1, not web:2, within
    maxTasks; a web:3 that works then replaces both."""
    sim, old = stuck_mid_deployment(desired, minimum, maximum, plans, seed)
    max_tasks, min_healthy = deployment_bounds(sim.spec, desired)
    held = sim.deployment(old).desired_count
    assert held == min_healthy == healthy_count(sim)
    serving = sorted(t.name for t in sim.live() if t.deployment_id == old and t.running)
    sim.exit(serving[victim % len(serving)])
    plan = sim.plan()
    assert len(sim.live()) <= max_tasks
    assert [(r.deployment_id, r.task_definition, r.count) for r in plan.launch][:1] == [
        (old, "web:1", 1)
    ]
    assert sim.deployment(old).desired_count == held
    sim.tick()
    sim.plan()
    assert healthy_count(sim) == min_healthy
    sim.revision, sim.generation = "web:3", 3
    for _ in range(8 * desired + 12):
        healthy_before = healthy_count(sim)
        sim.plan()
        check_bounds(sim, max_tasks, min_healthy, healthy_before)
        sim.tick()
        if sim.steady():
            break
    assert sim.steady() and {t.task_definition for t in sim.live()} == {"web:3"}


@SETTINGS
@given(
    desired=st.integers(1, 6),
    extra=st.integers(1, 6),
    minimum=st.integers(1, 100),
    maximum=st.integers(100, 200),
    plans=st.integers(0, 4),
    seed=st.integers(0, 1000),
)
def test_a_scale_out_mid_deployment_raises_both_revisions_within_the_bounds(
    desired: int, extra: int, minimum: int, maximum: int, plans: int, seed: int
) -> None:
    """ECS since 2025-11: a scale-out during a rolling deployment applies to both revisions.
    The old one grows by the same factor (rounded down), as far as minHealthy needs it (the
    rollout would stop more at once), to its healthy tasks; the new one gets the rest."""
    sim, old = stuck_mid_deployment(desired, minimum, maximum, plans, seed)
    held = sim.deployment(old).desired_count
    count = desired + extra
    sim.spec = spec(
        desiredCount=count,
        deploymentConfiguration={"minimumHealthyPercent": minimum, "maximumPercent": maximum},
    )
    max_tasks, min_healthy = deployment_bounds(sim.spec, count)
    grown = min(held * count // desired, max(held, min_healthy))
    for _ in range(3 * count + 10):
        healthy_before = healthy_count(sim)
        sim.plan()
        check_bounds(sim, max_tasks, min_healthy, healthy_before)
        assert sim.primary().desired_count == count
        assert held <= sim.deployment(old).desired_count == grown
        sim.tick()
    assert sum(t.deployment_id == old for t in sim.live()) == healthy_count(sim) == grown
