"""BLUE_GREEN, LINEAR and CANARY deployments (issue #11): the stage machine's arithmetic, the
endpoint mix that carries a traffic weight, and the scheduler simulated through whole
deployments: green at full count beside blue, production moving only forward, blue never
stopped before the bake ends, a failure leaving blue serving."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ecs_operator.core import strategies
from ecs_operator.core.deployments import ServiceTask
from ecs_operator.models.service import DeploymentConfiguration
from support.servicesim import T0, Sim, node, spec

ZONES = [node(f"{z}{i}", z) for z in "abc" for i in range(4)]


def configuration(**fields: Any) -> DeploymentConfiguration:
    return DeploymentConfiguration.model_validate(fields)


def test_traffic_steps_of_each_strategy() -> None:
    assert strategies.traffic_steps("BLUE_GREEN", configuration(bakeTimeInMinutes=5)) == [
        (100.0, 0)
    ]
    assert strategies.traffic_steps("CANARY", None) == [(5.0, 10), (100.0, 0)]
    canary = configuration(
        strategy="CANARY", canaryConfiguration={"canaryPercent": 20, "canaryBakeTimeInMinutes": 3}
    )
    assert strategies.traffic_steps("CANARY", canary) == [(20.0, 3), (100.0, 0)]
    linear = configuration(strategy="LINEAR", linearConfiguration={"stepPercent": 30})
    assert strategies.traffic_steps("LINEAR", linear) == [
        (30.0, 6),
        (60.0, 6),
        (90.0, 6),
        (100.0, 0),
    ]
    assert len(strategies.traffic_steps("LINEAR", None)) == 10  # 10 % steps


@given(green=st.integers(0, 60), blue=st.integers(0, 60), weight=st.floats(0, 100))
def test_the_endpoint_mix_follows_the_weight_as_closely_as_the_targets_allow(
    green: int, blue: int, weight: float
) -> None:
    listed_green, listed_blue = strategies.endpoint_mix(green, blue, weight)
    assert 0 <= listed_green <= green and 0 <= listed_blue <= blue
    if weight <= 0:
        assert listed_green == 0
    if weight >= 100 and green:
        assert listed_blue == 0
    if not green:
        assert listed_blue == blue  # no healthy green target: production stays on blue
    if 0 < weight < 100 and green and blue:
        assert listed_green >= 1 and listed_blue >= 1
        share = 100 * listed_green / (listed_green + listed_blue)
        # One endpoint either way is the finest step the counts allow.
        step = 100 / (listed_green + listed_blue - 1) if listed_green + listed_blue > 1 else 100
        assert abs(share - weight) <= step + 1e-9 or listed_green == 1 or listed_blue == 1
    if (green and weight > 0) or (blue and weight < 100):
        assert listed_green + listed_blue >= 1  # the side given traffic lists what it has


def staged_sim(desired: int, **deployment: Any) -> Sim:
    sim = Sim(spec(desiredCount=desired, deploymentConfiguration=deployment), list(ZONES))
    sim.run(4)
    assert sim.steady()
    sim.revision, sim.generation = "web:2", 2
    return sim


def counts(sim: Sim) -> tuple[int, int]:
    live = sim.live()
    return (
        sum(t.task_definition == "web:2" for t in live),
        sum(t.task_definition == "web:1" for t in live),
    )


def test_blue_green_scales_green_fully_beside_blue_then_shifts_bakes_and_cleans_up() -> None:
    sim = staged_sim(4, strategy="BLUE_GREEN", bakeTimeInMinutes=2, maximumPercent=100)
    first = sim.plan()
    assert sum(r.count for r in first.launch) == 4 and not first.stop  # maximumPercent aside
    assert sim.primary().lifecycle_stage == "SCALE_UP"
    assert sim.primary().production_traffic_weight == 0.0
    sim.tick()
    sim.plan()  # green healthy: production moves at once, the bake starts
    assert (sim.primary().lifecycle_stage, sim.primary().production_traffic_weight) == (
        "BAKE_TIME",
        100.0,
    )
    baking_since = sim.now
    while sim.now < baking_since + timedelta(minutes=2) - timedelta(seconds=10):
        sim.tick(10)
        plan = sim.plan()
        assert not plan.stop and counts(sim) == (4, 4)  # blue untouched while baking
    sim.tick(10)
    cleanup = sim.plan()
    assert sim.primary().lifecycle_stage == "CLEAN_UP" and len(cleanup.stop) == 4
    sim.run(3)
    assert sim.steady() and counts(sim) == (4, 0)
    assert sim.primary().rollout_state == "COMPLETED" and sim.primary().lifecycle_stage is None
    assert any("(BAKE_TIME)" in m for m in sim.messages())


def weights_over_time(sim: Sim, steps: int = 200) -> list[float]:
    seen: list[float] = []
    for _ in range(steps):
        sim.plan()
        primary = sim.primary()
        if primary.rollout_state == "COMPLETED":
            break
        weight = primary.production_traffic_weight or 0.0
        if not seen or seen[-1] != weight:
            seen.append(weight)
        sim.tick(30)
    return seen


def test_canary_then_the_rest() -> None:
    sim = staged_sim(
        10,
        strategy="CANARY",
        canaryConfiguration={"canaryPercent": 10, "canaryBakeTimeInMinutes": 5},
    )
    assert weights_over_time(sim) == [0.0, 10.0, 100.0]
    sim.run(6)  # any AZ rebalancing after it
    assert sim.steady() and counts(sim) == (10, 0)


def test_linear_steps() -> None:
    sim = staged_sim(
        4,
        strategy="LINEAR",
        linearConfiguration={"stepPercent": 25, "stepBakeTimeInMinutes": 1},
    )
    assert weights_over_time(sim) == [0.0, 25.0, 50.0, 75.0, 100.0]


def test_a_failing_green_rolls_back_with_blue_serving_throughout() -> None:
    sim = staged_sim(
        4,
        strategy="BLUE_GREEN",
        bakeTimeInMinutes=0,
        deploymentCircuitBreaker={"enable": True, "rollback": False},
    )
    blue = sim.primary().id
    sim.outcomes["web:2"] = "fail"
    for _ in range(40):
        sim.plan()
        assert counts(sim)[1] == 4  # blue keeps every task
        sim.tick(30)
    primary = sim.primary()
    assert primary.id == blue and primary.production_traffic_weight == 100.0
    assert sim.steady() and counts(sim) == (0, 4)
    assert any("rolling back" in m for m in sim.messages())


@settings(max_examples=40, deadline=None)
@given(
    desired=st.integers(1, 8),
    strategy=st.sampled_from(["BLUE_GREEN", "LINEAR", "CANARY"]),
    bake=st.integers(0, 3),
    share=st.floats(3, 100).map(lambda x: round(x, 1)),
    step_bake=st.integers(0, 2),
    new_desired=st.one_of(st.none(), st.integers(1, 8)),
)
def test_staged_deployments_never_stop_blue_early_and_only_move_forward(
    desired: int,
    strategy: str,
    bake: int,
    share: float,
    step_bake: int,
    new_desired: int | None,
) -> None:
    fields: dict[str, Any] = {"strategy": strategy, "bakeTimeInMinutes": bake}
    if strategy == "LINEAR":
        fields["linearConfiguration"] = {"stepPercent": share, "stepBakeTimeInMinutes": step_bake}
    if strategy == "CANARY":
        fields["canaryConfiguration"] = {
            "canaryPercent": share,
            "canaryBakeTimeInMinutes": step_bake,
        }
    sim = staged_sim(desired, **fields)
    order = ["SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"]
    last_stage, last_weight, full_at = 0, 0.0, None
    for step in range(400):
        if step == 3 and new_desired is not None:  # a scale during the deployment: both sides
            sim.spec = spec(desiredCount=new_desired, deploymentConfiguration=fields)
            desired = new_desired
        sim.plan()
        primary = sim.primary()
        if primary.rollout_state == "COMPLETED":
            break
        stage = order.index(primary.lifecycle_stage)
        weight = primary.production_traffic_weight or 0.0
        assert stage >= last_stage and weight >= last_weight
        if weight >= 100 and full_at is None:
            full_at = sim.now
        if stage < order.index("CLEAN_UP"):
            assert counts(sim)[1] >= desired  # blue is never scaled down before CLEAN_UP
        else:
            assert full_at is not None and sim.now - full_at >= timedelta(minutes=bake)
        last_stage, last_weight = stage, weight
        sim.tick(20)
    assert sim.primary().rollout_state == "COMPLETED"
    sim.run(2 * desired + 4)  # any AZ rebalancing after it
    assert sim.steady() and counts(sim) == (desired, 0)


def test_a_traffic_step_waits_until_the_load_balancers_carry_it() -> None:
    canary = configuration(
        strategy="CANARY", canaryConfiguration={"canaryPercent": 10, "canaryBakeTimeInMinutes": 1}
    )
    start = strategies.Stage("PRODUCTION_TRAFFIC_SHIFT", 10.0, T0)
    later = T0 + timedelta(minutes=5)
    waiting = strategies.advance(start, "CANARY", canary, True, lambda _w: None, later)
    assert (waiting.stage, waiting.passed, waiting.wait_seconds) == (start, (), None)
    # Carried since a moment after the step began: its minute counts from then.
    applied = T0 + timedelta(minutes=4, seconds=30)
    baking = strategies.advance(start, "CANARY", canary, True, lambda _w: applied, later)
    assert baking.stage == start and baking.wait_seconds == 30
    moved = strategies.advance(
        start, "CANARY", canary, True, lambda _w: applied, later + timedelta(seconds=30)
    )
    assert [s.name for s in moved.passed] == [
        "PRE_PRODUCTION_TRAFFIC_SHIFT",
        "PRODUCTION_TRAFFIC_SHIFT",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
        "BAKE_TIME",
        "CLEAN_UP",
    ]
    assert [s.weight for s in moved.passed[:2]] == [10.0, 100.0]


# ---------------------------------------------------------------------------------------------
# Placement: a staged deployment's revision spreads over its own tasks


def uneven_blue(sim: Sim, layout: list[str]) -> None:
    """Blue's live tasks moved onto the nodes ``layout`` names, one task each: as if zones had
    been lost and regained while blue ran, with no rebalancing since."""
    blue = sorted(t.name for t in sim.live())
    assert len(blue) == len(layout)
    where = {n.name: n for n in sim.nodes}
    for name, moved_to in zip(blue, layout, strict=True):
        sim.tasks[name] = replace(sim.tasks[name], node=moved_to, zone=where[moved_to].zone)


def zone_spread(tasks: list[ServiceTask]) -> int:
    """max - min tasks per zone, over every zone of ``ZONES``."""
    per_zone = Counter({n.zone: 0 for n in ZONES})
    per_zone.update(t.zone for t in tasks)
    return max(per_zone.values()) - min(per_zone.values())


def test_green_and_blue_replacements_count_their_own_revision_and_a_rolling_launch_the_group() -> (
    None
):
    sim = staged_sim(6, strategy="BLUE_GREEN", bakeTimeInMinutes=5)
    first = sim.plan()
    (green_launch,) = first.launch
    assert green_launch.spread_counts == ()  # green has no task yet: blue's are not counted
    sim.tick()
    green = sim.primary().id
    blue_id = next(d.id for d in sim.status.deployments or () if d.id != green)
    sim.exit(next(t.name for t in sim.live() if t.deployment_id == green))
    sim.exit(next(t.name for t in sim.live() if t.deployment_id == blue_id))
    launched = {r.deployment_id: r for r in sim.plan().launch}
    for deployment in (green, blue_id):
        own = Counter(t.node for t in sim.live() if t.deployment_id == deployment)
        own -= Counter(  # not the replacement just launched
            t.node for t in sim.live() if t.deployment_id == deployment and t.created_at == sim.now
        )
        assert dict(launched[deployment].spread_counts or ()) == own
    rolling = staged_sim(3)
    assert all(r.spread_counts is None for r in rolling.plan().launch)


def test_a_green_task_placed_but_not_yet_observed_counts_on_its_placed_node() -> None:
    sim = staged_sim(3, strategy="BLUE_GREEN", bakeTimeInMinutes=5)
    sim.plan()
    green = [t for t in sim.live() if t.task_definition == "web:2"]
    for task in green:  # the Task's status is not written yet: only its placed-node annotation
        sim.tasks[task.name] = replace(task, node=None, zone=None, placed_node=task.node)
    sim.exit(green[0].name)
    (launch,) = sim.plan().launch
    assert dict(launch.spread_counts or ()) == dict(Counter(t.node for t in green[1:]))


@settings(max_examples=60, deadline=None)
@given(
    strategy=st.sampled_from(["BLUE_GREEN", "LINEAR", "CANARY"]),
    layout=st.lists(st.sampled_from([n.name for n in ZONES]), min_size=1, max_size=14),
)
def test_green_is_az_balanced_over_itself_whatever_blue_s_spread_and_nothing_rebalances(
    strategy: str, layout: list[str]
) -> None:
    """However uneven blue is, green alone is AZ balanced when placed (room in every zone), so
    once blue stops the service is AZ balanced: no AZ rebalancing, no task beyond
    desiredCount, after COMPLETED."""
    desired = len(layout)
    sim = staged_sim(desired, strategy=strategy, bakeTimeInMinutes=0)
    uneven_blue(sim, layout)
    sim.plan()
    green = [t for t in sim.live() if t.task_definition == "web:2"]
    assert len(green) == desired and zone_spread(green) <= 1
    said = len(sim.messages())
    for _ in range(200):
        sim.tick(30)
        sim.plan()
        if sim.primary().rollout_state == "COMPLETED":
            break
    assert sim.primary().rollout_state == "COMPLETED"
    for _ in range(6):
        sim.tick()
        plan = sim.plan()
        assert len(sim.live()) == desired and not plan.launch
    assert counts(sim) == (desired, 0) and zone_spread(sim.live()) <= 1
    assert not [m for m in sim.messages()[said:] if "AZ Rebalancing" in m]
