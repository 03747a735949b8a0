"""PAUSE lifecycle hooks (issue #11 item 4): the scheduler simulated through BLUE_GREEN, LINEAR
and CANARY deployments that a PAUSE hook holds at its stage until spec.continueServiceDeployment
answers it, or its timeout applies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ecs_operator.core import lifecycle_hooks
from ecs_operator.core.deployments import deployment_spec_hash
from ecs_operator.models.service import ServiceStatus
from support.servicesim import Sim, node, spec

GREEN, BLUE = "web:2", "web:1"
ZONES = [node(f"{z}{i}", z) for z in "abc" for i in range(4)]


def counts(sim: Sim) -> tuple[int, int]:
    """Live (green, blue) tasks."""
    live = sim.live()
    return (
        sum(t.task_definition == GREEN for t in live),
        sum(t.task_definition == BLUE for t in live),
    )


def pause(*stages: str, minutes: int = 30, action: str = "ROLLBACK") -> dict[str, Any]:
    return {
        "targetType": "PAUSE",
        "lifecycleStages": list(stages),
        "timeoutConfiguration": {"timeoutInMinutes": minutes, "action": action},
    }


def paused_sim(desired: int, hooks: list[dict[str, Any]], **deployment: Any) -> Sim:
    fields = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0} | deployment
    sim = Sim(spec(desiredCount=desired, deploymentConfiguration=fields), list(ZONES))
    sim.run(4)
    assert sim.steady()
    sim.spec = spec(
        desiredCount=desired, deploymentConfiguration=fields | {"lifecycleHooks": hooks}
    )
    sim.revision, sim.generation = GREEN, 2
    return sim


def answer(sim: Sim, hook_id: str, action: str = "CONTINUE") -> None:
    """The user's patch: spec.continueServiceDeployment (a new generation)."""
    fields = sim.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    fields["continueServiceDeployment"] = {"hookId": hook_id, "action": action}
    sim.spec = spec(**fields)
    sim.generation += 1


def awaiting(sim: Sim) -> list[Any]:
    details = sim.primary().lifecycle_hook_details or ()
    return [d for d in details if d.status == "AWAITING_ACTION"]


def progressing_reason(sim: Sim) -> str:
    assert sim.status is not None and sim.status.conditions
    return next(c.reason for c in sim.status.conditions if c.type == "Progressing")


def test_a_pause_after_scale_up_holds_green_up_and_blue_serving_until_continued() -> None:
    sim = paused_sim(4, [pause("POST_SCALE_UP")])
    sim.run(3)
    primary = sim.primary()
    digits = primary.id.removeprefix("ecs-svc/")
    [run] = awaiting(sim)
    assert run.hook_id == f"ecs-pause-{digits}-1" and run.lifecycle_stage == "POST_SCALE_UP"
    assert run.expires_at == run.started_at + timedelta(minutes=30)
    assert run.timeout_action == "ROLLBACK" and run.target_type == "PAUSE"
    assert (primary.lifecycle_stage, primary.production_traffic_weight) == ("POST_SCALE_UP", 0.0)
    assert counts(sim) == (4, 4)
    assert progressing_reason(sim) == "AwaitingAction"
    said = [m for m in sim.messages() if "HOOK_AWAITING_ACTION" in m]
    assert said == [
        f"(service web) (deployment {primary.id}) lifecycle hook {run.hook_id} is awaiting "
        f"action at POST_SCALE_UP until {run.expires_at:%Y-%m-%dT%H:%M:%SZ} "
        "(HOOK_AWAITING_ACTION)."
    ]
    # Waiting: nothing moves, and the plan asks to be woken when the hook expires.
    waited = sim.plan()
    assert not waited.launch and not waited.stop
    assert waited.requeue_after == (run.expires_at - sim.now).total_seconds()
    answer(sim, run.hook_id)
    sim.run(6)
    assert sim.steady() and counts(sim) == (4, 0)
    done = next(d for d in sim.status.deployments or () if d.task_definition == GREEN)  # type: ignore[union-attr]
    assert done.rollout_state == "COMPLETED" and done.id == primary.id  # no new deployment
    assert [d.status for d in done.lifecycle_hook_details or ()] == ["SUCCEEDED"]
    assert any("was continued (HOOK_SUCCEEDED)" in m for m in sim.messages())


def test_rollback_returns_to_blue_which_never_stopped() -> None:
    sim = paused_sim(3, [pause("POST_SCALE_UP")])
    sim.run(3)
    blue = next(d for d in sim.status.deployments or () if d.task_definition == BLUE)  # type: ignore[union-attr]
    [run] = awaiting(sim)
    answer(sim, run.hook_id, "ROLLBACK")
    sim.plan()
    primary = sim.primary()
    assert primary.id == blue.id and primary.rollback and primary.production_traffic_weight == 100
    assert primary.rollout_state_reason == (
        f"ECS deployment lifecycle hook: rolling back to deploymentId {blue.id}."
    )
    failed = next(d for d in sim.status.deployments or () if d.task_definition == GREEN)  # type: ignore[union-attr]
    assert failed.rollout_state == "FAILED"
    assert [d.status for d in failed.lifecycle_hook_details or ()] == ["FAILED"]
    sim.run(6)
    assert sim.steady() and counts(sim) == (0, 3)
    assert sim.status is not None and sim.status.conditions
    degraded = next(c for c in sim.status.conditions if c.type == "Degraded")
    assert degraded.message.startswith(f"ECS deployment lifecycle hook {run.hook_id} FAILED")


def test_the_timeout_action_applies_at_expiry() -> None:
    for action, outcome in (("ROLLBACK", (0, 2)), ("CONTINUE", (2, 0))):
        sim = paused_sim(2, [pause("POST_SCALE_UP", minutes=1, action=action)])
        sim.run(3)
        [run] = awaiting(sim)
        sim.now = run.expires_at - timedelta(seconds=1)
        sim.plan()
        assert awaiting(sim) == [run]
        sim.now = run.expires_at
        sim.run(6)
        assert sim.steady() and counts(sim) == outcome, action
        assert any(f"timed out: its timeout action {action} applies" in m for m in sim.messages())


def test_a_pause_before_scale_up_starts_no_green_task() -> None:
    sim = paused_sim(2, [pause("PRE_SCALE_UP")])
    sim.run(3)
    assert sim.primary().lifecycle_stage == "PRE_SCALE_UP" and counts(sim) == (0, 2)
    answer(sim, awaiting(sim)[0].hook_id)
    sim.run(6)
    assert sim.steady() and counts(sim) == (2, 0)


def test_linear_pauses_before_every_step_with_a_fresh_hook_id() -> None:
    sim = paused_sim(
        4,
        [pause("PRE_PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT")],
        strategy="LINEAR",
        linearConfiguration={"stepPercent": 50, "stepBakeTimeInMinutes": 0},
    )
    answered: list[tuple[str, str, float]] = []
    for _ in range(40):
        sim.plan()
        primary = sim.primary()
        if primary.rollout_state == "COMPLETED":
            break
        for run in awaiting(sim):
            weight = primary.production_traffic_weight
            answered.append((run.hook_id, run.lifecycle_stage, weight))
            answer(sim, run.hook_id)
        sim.tick(10)
    assert [(stage, weight) for _, stage, weight in answered] == [
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", 0.0),
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", 50.0),
        ("POST_PRODUCTION_TRAFFIC_SHIFT", 100.0),
    ]
    assert [hook.rpartition("-")[2] for hook, _, _ in answered] == ["1", "2", "3"]


def test_an_answer_naming_no_hook_is_said_once_and_changes_nothing() -> None:
    sim = paused_sim(2, [pause("POST_SCALE_UP")])
    sim.run(3)
    [run] = awaiting(sim)
    answer(sim, run.hook_id[:-1] + "9")
    sim.run(3)
    assert awaiting(sim) == [run]
    unknown = [m for m in sim.messages() if "which no deployment of the service has" in m]
    assert len(unknown) == 1


def test_only_the_answer_changing_starts_no_deployment() -> None:
    base = spec(desiredCount=1)
    answered = spec(
        desiredCount=1, continueServiceDeployment={"hookId": "ecs-pause-1234567890123456789-1"}
    )
    assert deployment_spec_hash(base) == deployment_spec_hash(answered)


def test_the_pause_survives_a_restart() -> None:
    sim = paused_sim(2, [pause("POST_SCALE_UP")])
    sim.run(3)
    [run] = awaiting(sim)
    # A restart: the status is all that is left, read back from its JSON.
    assert sim.status is not None
    sim.status = ServiceStatus.model_validate(sim.status.model_dump(mode="json", by_alias=True))
    sim.run(3)
    assert [d.hook_id for d in sim.primary().lifecycle_hook_details] == [run.hook_id]
    assert not [p for p in sim.plans[-3:] if p.launch or p.stop]


@settings(max_examples=30, deadline=None)
@given(
    strategy=st.sampled_from(["BLUE_GREEN", "LINEAR", "CANARY"]),
    stages=st.sets(
        st.sampled_from(
            [
                "RECONCILE_SERVICE",
                "PRE_SCALE_UP",
                "POST_SCALE_UP",
                "POST_TEST_TRAFFIC_SHIFT",
                "PRE_PRODUCTION_TRAFFIC_SHIFT",
                "POST_PRODUCTION_TRAFFIC_SHIFT",
            ]
        ),
        min_size=1,
    ),
    answers=st.lists(st.sampled_from(["wait", "CONTINUE", "ROLLBACK", "expire"]), max_size=12),
    desired=st.integers(1, 5),
)
def test_a_paused_deployment_never_moves_traffic_nor_stops_blue(
    strategy: str, stages: set[str], answers: list[str], desired: int
) -> None:
    extra: dict[str, Any] = {}
    if strategy == "LINEAR":
        extra["linearConfiguration"] = {"stepPercent": 40, "stepBakeTimeInMinutes": 0}
    if strategy == "CANARY":
        extra["canaryConfiguration"] = {"canaryPercent": 20, "canaryBakeTimeInMinutes": 0}
    sim = paused_sim(desired, [pause(*sorted(stages), minutes=5)], strategy=strategy, **extra)
    moves = iter(answers)
    for _ in range(60):
        before = sim.primary()
        held = {d.hook_id for d in awaiting(sim)}
        plan = sim.plan()
        still = {d.hook_id for d in awaiting(sim)} & held if sim.primary().id == before.id else ()
        if still:
            # Held all along: production's share is where it was and blue keeps every task.
            assert sim.primary().production_traffic_weight == before.production_traffic_weight
            assert not [s for s in plan.stop if sim.tasks[s.task].task_definition == BLUE]
            assert counts(sim)[1] == desired
        if sim.primary().rollout_state == "COMPLETED":
            break
        waiting = awaiting(sim)
        move = next(moves, "CONTINUE")
        if waiting and move in ("CONTINUE", "ROLLBACK"):
            answer(sim, waiting[0].hook_id, move)
        elif waiting and move == "expire":
            sim.now = max(d.expires_at for d in waiting)
        sim.tick(10)
    assert lifecycle_hooks.next_wakeup(sim.primary().lifecycle_hook_details or (), sim.now) is None
