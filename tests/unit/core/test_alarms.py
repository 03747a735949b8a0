"""Deployment alarms (core.alarms and the scheduler's use of them): the alarms file, the ALARM
rule on Prometheus answers, baselines, failing and rolling back, the ROLLING bake time, and
alarms that cannot be read."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecs_operator.core import alarms
from ecs_operator.core.alarms import AlarmReadings, check, in_alarm, names_to_read, parse_alarms
from support.servicesim import Sim, node, spec

ZONES = [node("n1", "a"), node("n2", "b")]
BAKE = 120.0
INTERVAL = 5.0


def configuration(rollback: bool = True, names: tuple[str, ...] = ("errors",)) -> dict[str, Any]:
    return {"alarms": {"alarmNames": list(names), "enable": True, "rollback": rollback}}


def readings(**states: bool | str) -> AlarmReadings:
    """``name=True/False`` in ALARM or not, ``name="why"`` not readable."""
    return AlarmReadings(
        {k: v for k, v in states.items() if isinstance(v, bool)},
        {k: v for k, v in states.items() if isinstance(v, str)},
        INTERVAL,
        BAKE,
    )


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {}, "value": [1.0, value]} for value in values]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


# ---------------------------------------------------------------------------------------------
# The alarms file and the ALARM rule


def test_the_alarms_file_defines_named_queries() -> None:
    document = {"alarms": [{"name": "errors", "query": "rate(e[1m]) > 1", "description": "x"}]}
    assert parse_alarms(document) == [alarms.AlarmDefinition("errors", "rate(e[1m]) > 1")]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({}, "alarms:"),
        ({"alarms": [{"query": "up"}]}, "alarms[0].name"),
        ({"alarms": [{"name": "a"}]}, "alarms[0].query"),
        ({"alarms": [{"name": "a", "query": "up"}, {"name": "a", "query": "x"}]}, "alarms[1].name"),
        ({"alarms": ["up"]}, "alarms[0]:"),
    ],
)
def test_a_bad_alarms_file_names_the_field(document: Any, field: str) -> None:
    with pytest.raises(ValueError, match=r"f: " + field.replace("[", r"\[").replace("]", r"\]")):
        parse_alarms(document, "f")


def test_in_alarm_is_any_non_zero_sample() -> None:
    assert not in_alarm(vector())  # no sample: OK (a filtering query that matches nothing)
    assert not in_alarm(vector("0"))  # a boolean comparison that is false
    assert in_alarm(vector("0", "2.5"))
    assert in_alarm(vector("NaN"))
    assert in_alarm({"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}})
    with pytest.raises(ValueError, match="bad_data: parse error"):
        in_alarm({"status": "error", "errorType": "bad_data", "error": "parse error"})
    with pytest.raises(ValueError, match="string result"):
        in_alarm({"status": "success", "data": {"resultType": "string", "result": [1, "x"]}})
    with pytest.raises(ValueError, match="not a number"):
        in_alarm(vector("many"))


@given(st.lists(st.floats(allow_infinity=True, allow_nan=True), max_size=6))
def test_in_alarm_follows_the_rule_for_any_samples(values: list[float]) -> None:
    expected = any(math.isnan(v) or v != 0 for v in values)
    assert in_alarm(vector(*(repr(v) if not math.isnan(v) else "NaN" for v in values))) is expected


NAMES = st.lists(st.sampled_from(["a", "b", "c"]), unique=True, min_size=1)
READING = st.one_of(st.booleans(), st.just("unreachable"))


@given(NAMES, st.lists(st.dictionaries(st.sampled_from(["a", "b", "c"]), READING), max_size=6))
def test_an_alarm_fires_only_after_a_reading_not_in_alarm(
    names: list[str], rounds: list[dict[str, bool | str]]
) -> None:
    """Whatever the readings: the first reading sets the baseline (in ALARM: ignored for good),
    only an alarm once read OK can trigger, and an unreadable one is reported, never decided."""
    armed: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    seen_ok: set[str] = set()
    for states in rounds:
        found = check(names, armed, ignored, readings(**states))
        for name in found.triggered:
            assert name in seen_ok and states.get(name) is True and name not in ignored
        assert {n for n, _ in found.problems} == {
            n for n in names if n not in found.ignored and not isinstance(states.get(n), bool)
        }
        assert set(ignored) <= set(found.ignored) and set(armed) <= set(found.armed)
        assert not set(found.armed) & set(found.ignored)
        seen_ok |= {n for n in names if states.get(n) is False and n not in found.ignored}
        armed, ignored = found.armed, found.ignored


def test_a_settled_service_reads_no_alarm() -> None:
    sim = steady(configuration())
    status = sim.status
    assert names_to_read(sim.spec, status, sim.generation) == ()
    assert names_to_read(sim.spec, status, sim.generation + 1) == ("errors",)  # spec changed
    assert names_to_read(spec(desiredCount=2), None, 1) == ()  # no alarms


# ---------------------------------------------------------------------------------------------
# The scheduler


def steady(alarm_configuration: dict[str, Any], **states: bool | str) -> Sim:
    """web:1 running at 2 (its deployment watched by quiet alarms and baked)."""
    sim = Sim(spec(desiredCount=2, deploymentConfiguration=alarm_configuration), list(ZONES))
    sim.alarms = readings(**({"errors": False} | states))
    sim.run(3)
    sim.run(3, BAKE)  # the first deployment bakes too
    assert sim.steady() and sim.primary().rollout_state == "COMPLETED"
    return sim


def deploy_and_reach_steady(sim: Sim) -> str:
    sim.revision = "web:2"
    sim.generation += 1
    for _ in range(6):
        sim.plan()
        sim.tick(5)
    assert {t.task_definition for t in sim.live()} == {"web:2"} and sim.steady()
    return str(sim.primary().id)


def test_a_rolling_deployment_completes_only_after_the_bake_time() -> None:
    sim = steady(configuration())
    new = deploy_and_reach_steady(sim)
    primary = sim.primary()
    assert primary.rollout_state == "IN_PROGRESS"  # steady, still baking
    assert primary.alarms_armed == ["errors"]
    baked_from = primary.alarm_bake_started_at
    assert baked_from is not None
    plan = sim.plan()
    assert plan.requeue_after is not None and plan.requeue_after <= INTERVAL  # evaluated again
    sim.now = baked_from + timedelta(seconds=BAKE - 1)
    sim.plan()
    assert sim.primary().rollout_state == "IN_PROGRESS"
    sim.now = baked_from + timedelta(seconds=BAKE)
    sim.plan()
    assert (sim.primary().id, sim.primary().rollout_state) == (new, "COMPLETED")
    assert sim.plan().requeue_after is None  # no longer watched: nothing wakes it again


def test_an_alarm_in_alarm_fails_the_deployment_and_rolls_back() -> None:
    sim = steady(configuration(rollback=True))
    good = sim.primary().id
    bad = deploy_and_reach_steady(sim)
    sim.alarms = readings(errors=True)
    sim.plan()
    failed = next(d for d in sim.status.deployments or () if d.id == bad)  # type: ignore[union-attr]
    assert (failed.status, failed.rollout_state, failed.rollout_state_reason) == (
        "ACTIVE",
        "FAILED",
        "ECS deployment detected triggered alarm(s).",
    )
    assert failed.triggered_alarms == ["errors"]
    primary = sim.primary()
    assert (primary.id, primary.rollback, primary.rollout_state_reason) == (
        good,
        True,
        f"ECS deployment alarms: rolling back to deploymentId {good}.",
    )
    messages = sim.messages()
    assert (
        f"(service web) (deployment {bad}) deployment failed: alarm detected. In ALARM: errors."
        in messages
    )
    assert f"(service web) rolling back to deployment {good}." in messages
    sim.run(6, 5)  # the rollback is not watched: the alarm still firing does not fail it
    assert {t.task_definition for t in sim.live()} == {"web:1"}
    assert sim.primary().rollout_state == "COMPLETED"
    degraded = next(c for c in sim.status.conditions or () if c.type == "Degraded")  # type: ignore[union-attr]
    assert degraded.message.startswith("ECS deployment detected triggered alarm(s). Rolled back")


def test_without_rollback_a_failed_deployment_launches_nothing_more() -> None:
    sim = steady(configuration(rollback=False))
    bad = deploy_and_reach_steady(sim)
    sim.alarms = readings(errors=True)
    sim.run(3, 5)
    primary = sim.primary()
    assert (primary.id, primary.status, primary.rollout_state) == (bad, "PRIMARY", "FAILED")
    assert {t.task_definition for t in sim.live()} == {"web:2"}
    degraded = next(c for c in sim.status.conditions or () if c.type == "Degraded")  # type: ignore[union-attr]
    assert (degraded.status, degraded.reason) == ("True", "DeploymentFailed")
    assert "deployment failed: alarm detected" in degraded.message


def test_an_alarm_already_in_alarm_when_the_deployment_starts_is_ignored() -> None:
    sim = steady(configuration())
    sim.alarms = readings(errors=True)
    deploy_and_reach_steady(sim)
    assert sim.primary().alarms_ignored == ["errors"]
    sim.run(3, BAKE)
    assert sim.primary().task_definition == "web:2"
    assert sim.primary().rollout_state == "COMPLETED"


def test_an_alarm_that_cannot_be_read_is_reported_and_fails_nothing() -> None:
    sim = steady(configuration(names=("errors", "latency")), latency="no such alarm")
    deploy_and_reach_steady(sim)
    progressing = next(c for c in sim.status.conditions or () if c.type == "Progressing")  # type: ignore[union-attr]
    assert "unable to evaluate deployment alarms: latency: no such alarm" in progressing.message
    said = [m for m in sim.messages() if "unable to evaluate deployment alarms" in m]
    sim.run(3, BAKE)
    assert sim.primary().rollout_state == "COMPLETED"
    # A lasting problem is said again at most every 5 minutes, not on every evaluation.
    assert len([m for m in sim.messages() if "unable to evaluate" in m]) <= len(said) + 2


def test_a_blue_green_deployment_is_watched_through_bake_time_and_returns_to_blue() -> None:
    sim = steady(configuration(rollback=False) | {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5})
    blue = sim.primary().id
    sim.revision, sim.generation = "web:2", sim.generation + 1
    for _ in range(4):
        sim.plan()
        sim.tick(5)
    green = sim.primary()
    assert (green.lifecycle_stage, green.alarms_armed) == ("BAKE_TIME", ["errors"])
    sim.alarms = readings(errors=True)
    sim.plan()
    primary = sim.primary()
    # Blue still serves: production returns to it whole, whatever rollback says.
    assert (primary.id, primary.rollback, primary.production_traffic_weight) == (blue, True, 100.0)
    sim.run(4, 5)
    assert {t.task_definition for t in sim.live()} == {"web:1"}
    assert sim.primary().rollout_state == "COMPLETED"
