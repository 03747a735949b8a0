"""AWS_LAMBDA hooks at TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT (issue #11): the
scheduler simulated through BLUE_GREEN, LINEAR and CANARY deployments whose hook at a traffic
stage is called once its traffic is in place (at every production step), with the weights that
stage set, and holds the deployment there until it SUCCEEDED; FAILED rolls back to blue, and a
rollback calls the hooks of the traffic stages reached once more, green at 0, never waiting for
them. A task target's run that times out stops its Task."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ecs_operator.core import lifecycle_hooks, service_planning
from ecs_operator.core.lifecycle_hooks import HookCall, HookReply
from ecs_operator.models.service import ServiceStatus
from ecs_operator.models.task import Task
from support.servicesim import Sim, node, spec

GREEN, BLUE = "web:2", "web:1"
URL = "http://hooks.shop.svc:8080/verify"
ZONES = [node(f"{z}{i}", z) for z in "abc" for i in range(2)]
TRAFFIC = ("TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")


def hook(*stages: str, url: str = URL, **fields: Any) -> dict[str, Any]:
    return {"lifecycleStages": list(stages), "hookTargetArn": url} | fields


def steps(strategy: str) -> dict[str, Any]:
    if strategy == "LINEAR":
        return {"linearConfiguration": {"stepPercent": 40, "stepBakeTimeInMinutes": 0}}
    if strategy == "CANARY":
        return {"canaryConfiguration": {"canaryPercent": 20, "canaryBakeTimeInMinutes": 0}}
    return {}


def deploying(
    strategy: str,
    hooks: list[dict[str, Any]],
    target: Callable[[HookCall], HookReply] | None,
    desired: int = 2,
    **configuration: Any,
) -> Sim:
    fields = {"strategy": strategy, "bakeTimeInMinutes": 0} | steps(strategy) | configuration
    sim = Sim(spec(desiredCount=desired, deploymentConfiguration=fields), list(ZONES))
    sim.run(4)
    assert sim.steady()
    sim.spec = spec(
        desiredCount=desired, deploymentConfiguration=fields | {"lifecycleHooks": hooks}
    )
    sim.revision, sim.generation = GREEN, 2
    sim.hook_target = target
    return sim


def answering(status: str) -> Callable[[HookCall], HookReply]:
    return lambda _call: HookReply(answer={"hookStatus": status})


def arns(sim: Sim, blue_id: str) -> tuple[str, str]:
    """The service revision ARNs of (green, blue)."""
    prefix = "arn:aws:ecs:::service-revision/shop/web/"
    green_id: str = green_record(sim).id
    return prefix + green_id.removeprefix("ecs-svc/"), prefix + blue_id.removeprefix("ecs-svc/")


def green_record(sim: Sim) -> Any:
    assert sim.status is not None
    return next(d for d in sim.status.deployments or () if d.task_definition == GREEN)


def test_linear_calls_its_production_hook_at_every_step_with_the_weights_of_the_step() -> None:
    sim = deploying("LINEAR", [hook("PRODUCTION_TRAFFIC_SHIFT")], answering("SUCCEEDED"))
    blue_id = sim.primary().id
    sim.run(12)
    assert sim.steady() and green_record(sim).rollout_state == "COMPLETED"
    green, blue = arns(sim, blue_id)
    assert [
        (c.payload["lifecycleStage"], c.payload["executionDetails"]["productionTrafficWeights"])
        for c in sim.calls
    ] == [
        ("PRODUCTION_TRAFFIC_SHIFT", {green: 40.0, blue: 60.0}),
        ("PRODUCTION_TRAFFIC_SHIFT", {green: 80.0, blue: 20.0}),
        ("PRODUCTION_TRAFFIC_SHIFT", {green: 100.0, blue: 0.0}),
    ]
    assert all(c.payload["executionDetails"]["testTrafficWeights"] == {} for c in sim.calls)
    # A fresh run per step, each its own hookId (its executionId).
    runs = green_record(sim).lifecycle_hook_details
    assert [r.status for r in runs] == ["SUCCEEDED"] * 3
    assert [c.payload["executionId"] for c in sim.calls] == [r.hook_id for r in runs]


def test_pre_production_hooks_see_the_weights_before_the_step_production_ones_after() -> None:
    both = hook("PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")
    sim = deploying("CANARY", [both], answering("SUCCEEDED"))
    sim.run(12)
    assert green_record(sim).rollout_state == "COMPLETED"
    green = arns(sim, "")[0]
    assert [
        (
            c.payload["lifecycleStage"],
            c.payload["executionDetails"]["productionTrafficWeights"][green],
        )
        for c in sim.calls
    ] == [
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", 0.0),
        ("PRODUCTION_TRAFFIC_SHIFT", 20.0),
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", 20.0),
        ("PRODUCTION_TRAFFIC_SHIFT", 100.0),
    ]


def test_the_production_hook_is_called_only_once_the_step_is_applied_and_holds_it() -> None:
    applied: dict[float, datetime] = {}
    answers = iter(["IN_PROGRESS", "IN_PROGRESS"])

    def target(_call: HookCall) -> HookReply:
        status = next(answers, "SUCCEEDED")
        return HookReply(answer={"hookStatus": status, "callBackDelay": 20})

    sim = deploying("BLUE_GREEN", [hook("PRODUCTION_TRAFFIC_SHIFT")], target)
    sim.traffic_applied_at = lambda _deployment, weight: applied.get(weight)
    for _ in range(6):
        sim.run(1)
        if sim.primary().lifecycle_stage == "PRODUCTION_TRAFFIC_SHIFT":
            break
    assert sim.primary().production_traffic_weight == 100.0
    sim.run(3)
    assert sim.calls == [] and not sim.primary().lifecycle_hook_details  # not in place yet
    applied[100.0] = sim.now
    sim.run(1)
    [run] = sim.primary().lifecycle_hook_details
    assert run.started_at < sim.now - timedelta(seconds=5)  # the stage's visit
    assert run.expires_at == applied[100.0] + timedelta(minutes=1440)  # counted from then
    assert run.next_invocation_at == applied[100.0]
    sim.run(1)  # the reconcile the run's start asked for at once calls it
    assert len(sim.calls) == 1
    sim.run(4)  # IN_PROGRESS twice: held at the stage, blue kept whole
    assert len(sim.calls) == 3
    sim.run(6)
    assert sim.steady() and green_record(sim).rollout_state == "COMPLETED"


def test_the_test_traffic_hook_gets_the_test_weights_and_holds_the_stage() -> None:
    answers = iter(["IN_PROGRESS"])

    def target(_call: HookCall) -> HookReply:
        return HookReply(answer={"hookStatus": next(answers, "SUCCEEDED"), "callBackDelay": 30})

    sim = deploying("BLUE_GREEN", [hook("TEST_TRAFFIC_SHIFT")], target)
    blue_id = sim.primary().id
    listed: list[bool] = [False]
    sim.test_traffic_shifted = lambda _green: listed[0]
    for _ in range(6):
        sim.run(1)
        if sim.primary().lifecycle_stage == "TEST_TRAFFIC_SHIFT":
            break
    sim.run(2)
    assert sim.calls == []  # the test LoadBalancers do not list green yet
    listed[0] = True
    sim.run(2)
    assert sim.primary().lifecycle_stage == "TEST_TRAFFIC_SHIFT"  # IN_PROGRESS holds it
    [call] = sim.calls
    green, blue = arns(sim, blue_id)
    assert call.payload["lifecycleStage"] == "TEST_TRAFFIC_SHIFT"
    assert call.payload["executionDetails"]["testTrafficWeights"] == {green: 100.0, blue: 0.0}
    assert call.payload["executionDetails"]["productionTrafficWeights"] == {}
    sim.run(12)
    assert sim.steady() and green_record(sim).rollout_state == "COMPLETED"


def test_a_failed_production_hook_rolls_back_and_is_called_again_with_green_at_0() -> None:
    sim = deploying("LINEAR", [hook("PRODUCTION_TRAFFIC_SHIFT")], answering("FAILED"))
    blue_id = sim.primary().id
    for _ in range(8):
        sim.run(1)
        if sim.primary().task_definition == BLUE:
            break
    blue = sim.primary()
    assert (blue.task_definition, blue.rollback, blue.production_traffic_weight) == (
        BLUE,
        True,
        100.0,
    )
    failed = green_record(sim)
    green, blue_arn = arns(sim, blue_id)
    assert failed.rollout_state == "FAILED"
    forward, again = failed.lifecycle_hook_details
    assert (forward.lifecycle_stage, forward.status, forward.rollback) == (
        "PRODUCTION_TRAFFIC_SHIFT",
        "FAILED",
        None,
    )
    # A fresh run of the same hook, due at once (production is back on blue), not yet called.
    assert (again.lifecycle_stage, again.status, again.rollback, again.invocations) == (
        "PRODUCTION_TRAFFIC_SHIFT",
        "IN_PROGRESS",
        True,
        0,
    )
    assert again.hook_id != forward.hook_id and again.next_invocation_at == sim.now - timedelta(
        seconds=10
    )
    assert len(sim.calls) == 1
    sim.plan()
    _, second = sim.calls
    assert second.payload["executionId"] == again.hook_id
    assert second.payload["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT"
    assert second.payload["executionDetails"] == {
        "serviceArn": "arn:aws:ecs:::service/shop/web",
        "targetServiceRevisionArn": green,  # still green: green 0, blue 100 tells the rollback
        "productionTrafficWeights": {green: 0.0, blue_arn: 100.0},
        "testTrafficWeights": {},
    }
    # Its FAILED answer ends the run and changes nothing else: the rollback goes on.
    ended = green_record(sim).lifecycle_hook_details[1]
    assert (ended.status, ended.invocations) == ("FAILED", 1)
    assert any(
        f"lifecycle hook {again.hook_id} failed: {URL}: answered FAILED; the rollback goes on" in m
        for m in sim.messages()
    )
    sim.run(6)
    assert len(sim.calls) == 2
    assert sim.steady() and {t.task_definition for t in sim.live()} == {BLUE}
    assert sim.primary().rollout_state == "COMPLETED"
    assert sim.deployment(failed.id) is None  # dropped once its runs ended and nothing ran


def test_a_rollback_calls_the_test_hook_with_both_weights_back_on_blue() -> None:
    """BLUE_GREEN failing at PRODUCTION_TRAFFIC_SHIFT (its hook FAILED) had reached both traffic
    stages: each hook is called once more; the test hook also sees test traffic back."""
    hooks = [hook("TEST_TRAFFIC_SHIFT", url=URL + "/test"), hook("PRODUCTION_TRAFFIC_SHIFT")]

    def target(call: HookCall) -> HookReply:
        failing = call.payload["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT"
        return HookReply(answer={"hookStatus": "FAILED" if failing else "SUCCEEDED"})

    sim = deploying("BLUE_GREEN", hooks, target)
    sim.test_traffic_shifted = lambda _green: True
    blue_id = sim.primary().id
    sim.run(10)
    assert sim.primary().task_definition == BLUE and sim.primary().rollout_state == "COMPLETED"
    prefix = "arn:aws:ecs:::service-revision/shop/web/"
    green = prefix + sim.calls[0].payload["resourceArn"].rpartition("/")[2]
    blue = prefix + blue_id.removeprefix("ecs-svc/")
    back = {green: 0.0, blue: 100.0}
    rolled = [
        c for c in sim.calls if c.payload["executionDetails"]["productionTrafficWeights"] == back
    ]
    assert sorted((c.url, c.payload["executionDetails"]["testTrafficWeights"]) for c in rolled) == [
        (URL, {}),
        (URL + "/test", back),
    ]
    assert len(sim.calls) == 4  # each stage's run, then each once in the rollback


def test_rollback_calls_wait_until_production_is_back_on_blue() -> None:
    back = [False]
    sim = deploying("BLUE_GREEN", [hook("PRODUCTION_TRAFFIC_SHIFT")], answering("FAILED"))
    blue_id = sim.primary().id
    sim.traffic_applied_at = lambda deployment, _w: (
        sim.now if deployment != blue_id or back[0] else None
    )
    for _ in range(8):
        sim.run(1)
        if sim.primary().id == blue_id:
            break
    failed_at = sim.now - timedelta(seconds=10)
    green_id = green_record(sim).id
    sim.run(8)
    # The rollback does not wait for its hooks: blue completes, green's run waits for traffic.
    assert sim.primary().rollout_state == "COMPLETED" and len(sim.calls) == 1
    again = sim.deployment(green_id).lifecycle_hook_details[-1]
    assert (again.rollback, again.status, again.next_invocation_at) == (True, "IN_PROGRESS", None)
    assert again.expires_at == failed_at + timedelta(minutes=1440)  # from the rollback's start
    back[0] = True
    sim.run(3)
    assert len(sim.calls) == 2
    assert (
        sim.calls[1].payload["executionDetails"]["productionTrafficWeights"][
            "arn:aws:ecs:::service-revision/shop/web/" + green_id.removeprefix("ecs-svc/")
        ]
        == 0.0
    )
    assert sim.deployment(green_id) is None


def test_the_test_hook_s_rollback_run_waits_until_green_left_the_test_load_balancers() -> None:
    """The TEST_TRAFFIC_SHIFT run of a rollback is first called once the test LoadBalancers
    no longer register green's tasks; the PRODUCTION_TRAFFIC_SHIFT one once production is back
    (here at once). Neither holds the rollback."""
    hooks = [hook("TEST_TRAFFIC_SHIFT", url=URL + "/test"), hook("PRODUCTION_TRAFFIC_SHIFT")]

    def target(call: HookCall) -> HookReply:
        details = call.payload["executionDetails"]
        rollback = details["productionTrafficWeights"].get(details["targetServiceRevisionArn"]) == 0
        failing = call.payload["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT" and not rollback
        return HookReply(answer={"hookStatus": "FAILED" if failing else "SUCCEEDED"})

    sim = deploying("BLUE_GREEN", hooks, target)
    sim.test_traffic_shifted = lambda _green: True
    asked: list[set[str]] = []
    withdrawn = [False]

    def test_traffic_withdrawn(tasks: Sequence[str]) -> bool:
        asked.append(set(tasks))
        return withdrawn[0]

    sim.test_traffic_withdrawn = test_traffic_withdrawn
    blue_id = sim.primary().id
    for _ in range(10):
        sim.run(1)
        if sim.primary().id == blue_id:
            break
    green_id = green_record(sim).id
    sim.run(8)
    # The rollback completed; the production run was called, the test one waits, uncalled.
    assert sim.primary().rollout_state == "COMPLETED"
    assert [c.url for c in sim.calls] == [URL + "/test", URL, URL]
    waiting = sim.deployment(green_id).lifecycle_hook_details[-2:]
    [test_run] = [d for d in waiting if d.lifecycle_stage == "TEST_TRAFFIC_SHIFT"]
    assert (test_run.rollback, test_run.status, test_run.invocations) == (True, "IN_PROGRESS", 0)
    assert test_run.next_invocation_at is None
    green_tasks = {t.name for t in sim.tasks.values() if t.deployment_id == green_id}
    assert asked and all(tasks == green_tasks for tasks in asked)  # only green's tasks
    withdrawn[0] = True
    sim.run(3)
    last = sim.calls[-1]
    assert (last.url, last.payload["executionId"]) == (URL + "/test", test_run.hook_id)
    weights = last.payload["executionDetails"]
    assert weights["testTrafficWeights"] == weights["productionTrafficWeights"]
    assert sorted(weights["testTrafficWeights"].values()) == [0.0, 100.0]
    assert sim.deployment(green_id) is None  # its runs ended


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(["BLUE_GREEN", "LINEAR", "CANARY"]),
    failing=st.sampled_from(["POST_TEST_TRAFFIC_SHIFT", *TRAFFIC, "POST_PRODUCTION_TRAFFIC_SHIFT"]),
    production_after=st.none() | st.integers(0, 16),
    test_after=st.none() | st.integers(0, 16),
    in_rollback=st.sampled_from(["SUCCEEDED", "FAILED", "IN_PROGRESS"]),
)
def test_each_rollback_run_waits_for_its_own_stage_s_traffic_and_never_holds_the_rollback(
    strategy: str,
    failing: str,
    production_after: int | None,
    test_after: int | None,
    in_rollback: str,
) -> None:
    """Production back on blue ``production_after`` plans after the rollback, green out of the
    test LoadBalancers ``test_after`` plans after it (None: never): a rollback run is first
    called only after its own stage's traffic moved back (PRODUCTION_TRAFFIC_SHIFT: production
    on blue; TEST_TRAFFIC_SHIFT: green withdrawn from test traffic), and then before its
    timeout; one whose traffic is not back by then times out uncalled. The rollback completes
    whatever the gates and the answers."""
    timeout = {"timeoutConfiguration": {"timeoutInMinutes": 2, "action": "ROLLBACK"}}
    hooks = [
        hook(failing, url=URL + "/failing", **timeout),
        hook("TEST_TRAFFIC_SHIFT", url=URL + "/test", **timeout),
        hook("PRODUCTION_TRAFFIC_SHIFT", url=URL + "/production", **timeout),
    ]
    called_at: list[tuple[datetime, HookCall]] = []

    def target(call: HookCall) -> HookReply:
        called_at.append((sim.now, call))
        details = call.payload["executionDetails"]
        if details["productionTrafficWeights"].get(details["targetServiceRevisionArn"]) == 0.0:
            return HookReply(answer={"hookStatus": in_rollback, "callBackDelay": 10})
        forward = "FAILED" if call.url == URL + "/failing" else "SUCCEEDED"
        return HookReply(answer={"hookStatus": forward})

    sim = deploying(strategy, hooks, target)
    sim.test_traffic_shifted = lambda _green: True
    blue_id = sim.primary().id
    rolled_back_at: list[datetime] = []
    opened: dict[str, datetime] = {}

    def gate(stage: str, after: int | None) -> bool:
        if not rolled_back_at or after is None:
            return False
        if sim.now >= rolled_back_at[0] + timedelta(seconds=10 * after):
            opened.setdefault(stage, sim.now)
            return True
        return False

    sim.traffic_applied_at = lambda deployment, _w: (
        sim.now
        if deployment != blue_id or gate("PRODUCTION_TRAFFIC_SHIFT", production_after)
        else None
    )
    sim.test_traffic_withdrawn = lambda _tasks: gate("TEST_TRAFFIC_SHIFT", test_after)
    green_id = ""
    for _ in range(40):
        if sim.primary().id == blue_id and green_id:
            break
        green_id = sim.primary().id if sim.primary().id != blue_id else green_id
        sim.run(1)
    assert green_id and sim.primary().id == blue_id, "the failing hook rolls back"
    rolled_back_at.append(sim.now)
    seen: list[Any] = []
    completed = None
    for _ in range(20):  # past the runs' 2 minutes
        sim.run(1)
        if completed is None and sim.primary().rollout_state == "COMPLETED":
            completed = sim.now
        if (green := sim.deployment(green_id)) is not None:
            seen = [d for d in green.lifecycle_hook_details or () if d.rollback]
    # The rollback never waits for its runs: blue completes as soon as green's tasks stopped.
    assert completed is not None and completed <= rolled_back_at[0] + timedelta(seconds=40)
    assert sim.deployment(green_id) is None and {t.task_definition for t in sim.live()} == {BLUE}
    assert seen and all(d.status not in ("IN_PROGRESS", "AWAITING_ACTION") for d in seen)
    for run in seen:
        calls = [at for at, call in called_at if call.payload["executionId"] == run.hook_id]
        back = opened.get(run.lifecycle_stage)
        if calls:
            # Called only after its own stage's traffic moved back (a plan later at least).
            assert back is not None and min(calls) > back
        elif back is None or back + timedelta(seconds=10) < run.expires_at:
            # Uncalled only when its traffic was not back (in time): it timed out.
            assert back is None and (run.status, run.invocations) == ("TIMED_OUT", 0)
        else:
            assert (run.status, run.invocations) == ("TIMED_OUT", 0)


ANSWERS = st.lists(st.sampled_from(["SUCCEEDED", "IN_PROGRESS", "FAILED"]), max_size=10)


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(["BLUE_GREEN", "LINEAR", "CANARY"]),
    stages=st.sets(st.sampled_from(TRAFFIC), min_size=1),
    answers=ANSWERS,
    desired=st.integers(1, 4),
)
def test_a_traffic_stage_is_left_only_once_each_hook_there_succeeded(
    strategy: str, stages: set[str], answers: list[str], desired: int
) -> None:
    given_answers = iter(answers)

    def target(_call: HookCall) -> HookReply:
        status = next(given_answers, "SUCCEEDED")
        return HookReply(answer={"hookStatus": status, "callBackDelay": 10})

    hooks = [hook(*sorted(stages)), hook("PRODUCTION_TRAFFIC_SHIFT", url=URL + "/2")]
    sim = deploying(strategy, hooks, target, desired)
    sim.test_traffic_shifted = lambda _green: True
    green_id = ""
    failed = False
    for _ in range(80):
        before = sim.primary()
        sim.plan()
        if not green_id and before.task_definition == GREEN:
            green_id = before.id
        if (record := sim.deployment(green_id)) is not None:
            failed = any(d.status == "FAILED" for d in record.lifecycle_hook_details or ())
        if before.id == green_id and before.lifecycle_stage in TRAFFIC:
            green = sim.deployment(green_id)
            left = (green.lifecycle_stage, green.stage_started_at) != (
                before.lifecycle_stage,
                before.stage_started_at,
            )
            if left and green.rollout_state != "FAILED":
                visit = [
                    d
                    for d in green.lifecycle_hook_details or ()
                    if d.lifecycle_stage == before.lifecycle_stage
                    and d.started_at == before.stage_started_at
                ]
                wanted = sum(before.lifecycle_stage in h["lifecycleStages"] for h in hooks)
                assert len(visit) == wanted and all(d.status == "SUCCEEDED" for d in visit)
        if sim.primary().rollout_state == "COMPLETED":
            break
        sim.tick(10)
    primary = sim.primary()
    assert primary.rollout_state == "COMPLETED"
    if failed:
        # Rolled back: blue takes every production request and is all that runs.
        assert (primary.task_definition, primary.production_traffic_weight) == (BLUE, 100.0)
        assert primary.rollback
    else:
        assert (primary.task_definition, primary.production_traffic_weight) == (GREEN, 100.0)
    sim.run(6)
    assert {t.task_definition for t in sim.live()} == {primary.task_definition}


def test_a_rollback_run_is_called_with_the_revision_its_record_rolled_back_to() -> None:
    """After a restart with a newer deployment PRIMARY: the rollback run of green is still
    called (released runs only), blue being what green's service deployment rolled back to."""
    green_id, blue_id, newer_id = (f"ecs-svc/{d * 19}" for d in "123")
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)

    def run(number: int, **fields: Any) -> dict[str, Any]:
        return {
            "hookId": f"ecs-hook-{'1' * 19}-{number}",
            "targetType": "AWS_LAMBDA",
            "targetArn": URL,
            "status": "IN_PROGRESS",
            "invocations": 0,
            "expiresAt": "2026-01-01T13:00:00Z",
            "timeoutAction": "ROLLBACK",
            "lifecycleStage": "TEST_TRAFFIC_SHIFT",
            "startedAt": "2026-01-01T11:00:00Z",
            "rollback": True,
        } | fields

    def deployment(deployment_id: str, status: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": deployment_id,
            "status": status,
            "taskDefinition": GREEN,
            "createdAt": "2026-01-01T10:00:00Z",
            "updatedAt": "2026-01-01T10:00:00Z",
        } | fields

    revision = "arn:aws:ecs:::service-revision/shop/web/"
    status = ServiceStatus.model_validate(
        {
            "deployments": [
                deployment(newer_id, "PRIMARY", rolloutState="IN_PROGRESS"),
                deployment(
                    green_id,
                    "INACTIVE",
                    rolloutState="FAILED",
                    lifecycleHookDetails=[
                        run(1, nextInvocationAt="2026-01-01T11:59:00Z"),
                        run(2),  # not released: production was not back on blue yet
                    ],
                ),
            ],
            "serviceDeployments": [
                {
                    "serviceDeploymentArn": "arn:aws:ecs:::service-deployment/shop/web/" + "1" * 19,
                    "targetServiceRevision": {"arn": revision + "1" * 19},
                    "status": "ROLLBACK_SUCCESSFUL",
                    "createdAt": "2026-01-01T10:00:00Z",
                    "rollback": {
                        "serviceRevisionArn": revision + "2" * 19,
                        "reason": "x",
                        "startedAt": "2026-01-01T11:00:00Z",
                    },
                }
            ],
        }
    )
    sim = deploying("BLUE_GREEN", [hook("TEST_TRAFFIC_SHIFT")], None)
    [call] = lifecycle_hooks.calls_due("shop", "web", sim.spec, status, now)
    back = {revision + green_id[8:]: 0.0, revision + blue_id[8:]: 100.0}
    assert call.hook_id.endswith("-1")
    assert call.payload["executionDetails"]["productionTrafficWeights"] == back
    assert call.payload["executionDetails"]["testTrafficWeights"] == back
    assert call.payload["executionDetails"]["targetServiceRevisionArn"] == revision + green_id[8:]


STAGE_ORDER = (
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
)


def reached(stage: str, weight: float) -> set[str]:
    """The traffic stages a deployment failing at ``stage`` with green at ``weight`` had
    moved traffic at (this service has test traffic)."""
    at = STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)
    found = {s for s in TRAFFIC if STAGE_ORDER.index(s) <= at}
    return found | ({"PRODUCTION_TRAFFIC_SHIFT"} if weight > 0 else set())


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(["BLUE_GREEN", "LINEAR", "CANARY"]),
    failing_stages=st.sets(st.sampled_from(STAGE_ORDER), min_size=1),
    in_progress=st.integers(0, 14),
    in_rollback=st.sampled_from(["SUCCEEDED", "FAILED", "IN_PROGRESS", "unreachable"]),
)
def test_a_rollback_calls_the_hooks_of_the_traffic_stages_reached_once_more_never_waiting(
    strategy: str, failing_stages: set[str], in_progress: int, in_rollback: str
) -> None:
    """Whatever fails the deployment at whichever stage (a hook FAILED after ``in_progress``
    answers IN_PROGRESS, or timed out: beyond 12 of them) and whatever the rollback's calls
    answer: each AWS_LAMBDA hook at a traffic stage green had reached gets one fresh run in the
    rollback, called with green at 0 and blue at 100; the rollback completes with blue serving
    and does not wait for them; the runs end within their timeout."""
    forward = iter(["IN_PROGRESS"] * in_progress)
    timeout = {"timeoutConfiguration": {"timeoutInMinutes": 2, "action": "ROLLBACK"}}
    hooks = [
        hook(*sorted(failing_stages), **timeout),
        hook("PRODUCTION_TRAFFIC_SHIFT", url=URL + "/production", **timeout),
        hook("TEST_TRAFFIC_SHIFT", url=URL + "/test", **timeout),
    ]

    def target(call: HookCall) -> HookReply:
        details = call.payload["executionDetails"]
        green = details["targetServiceRevisionArn"]
        if details["productionTrafficWeights"].get(green) == 0.0 and (
            call.payload["lifecycleStage"] in TRAFFIC
        ):
            if in_rollback == "unreachable":
                return HookReply(error="it cannot be reached")
            return HookReply(answer={"hookStatus": in_rollback, "callBackDelay": 10})
        status = next(forward, "FAILED") if call.url == URL else "SUCCEEDED"
        return HookReply(answer={"hookStatus": status, "callBackDelay": 10})

    sim = deploying(strategy, hooks, target)
    sim.test_traffic_shifted = lambda _green: True
    blue_id = sim.primary().id
    seen = (sim.primary().lifecycle_stage, 0.0)
    green_id = ""
    for _ in range(60):
        sim.run(1)
        primary = sim.primary()
        if primary.id == blue_id:
            break
        green_id = primary.id
        seen = (primary.lifecycle_stage, primary.production_traffic_weight or 0.0)
    assert sim.primary().id == blue_id, "the forward hook always ends up FAILED or timed out"
    forward_ids = {c.payload["executionId"] for c in sim.calls}
    # The rollback never waits for its hooks: blue completes while green's tasks stop.
    for _ in range(10):
        sim.run(1)
        if sim.primary().rollout_state == "COMPLETED":
            break
    assert sim.primary().rollout_state == "COMPLETED" and sim.primary().id == blue_id
    sim.run(15)  # past their 2-minute timeout
    assert sim.deployment(green_id) is None  # its runs ended: it is dropped
    assert {t.task_definition for t in sim.live()} == {BLUE}
    runs: dict[tuple[str, str], set[str]] = {}
    for call in sim.calls:
        if call.payload["executionId"] not in forward_ids:
            details = call.payload["executionDetails"]
            green = details["targetServiceRevisionArn"]
            assert green.endswith(green_id.removeprefix("ecs-svc/"))
            assert details["productionTrafficWeights"] == {
                green: 0.0,
                green.replace(
                    green_id.removeprefix("ecs-svc/"), blue_id.removeprefix("ecs-svc/")
                ): 100.0,
            }
            key = (call.url, call.payload["lifecycleStage"])
            runs.setdefault(key, set()).add(call.payload["executionId"])
    stages = reached(*seen)  # type: ignore[arg-type]
    expected = {
        (h["hookTargetArn"], stage)
        for h in hooks
        for stage in h["lifecycleStages"]
        if stage in stages
    }
    assert set(runs) == expected
    assert all(len(ids) == 1 for ids in runs.values())  # one fresh run each


# -- a task target that times out -------------------------------------------------------------


def hook_task(name: str, desired: str = "RUNNING", last: str = "RUNNING") -> Task:
    return Task.model_validate(
        {
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"taskDefinition": "check:1", "desiredStatus": desired},
            "status": {"lastStatus": last},
        }
    )


def timed_out(target: str, action: str) -> ServiceStatus:
    """A status as a POST_SCALE_UP run of ``target`` leaves it once it timed out with
    ``action`` (a task target's Task started, never stopping; a URL never called)."""
    timeout = {"timeoutInMinutes": 1, "action": action}
    sim = deploying(
        "BLUE_GREEN", [hook("POST_SCALE_UP", url=target, timeoutConfiguration=timeout)], None
    )
    sim.hook_tasks = lambda run: None if run.started else lifecycle_hooks.task_started(run)
    for _ in range(12):
        sim.run(1)
        assert sim.status is not None
        if any(d.status == "TIMED_OUT" for d in runs_of(sim.status)):
            break
    assert sim.status is not None
    return sim.status


def runs_of(status: ServiceStatus) -> Sequence[Any]:
    return [d for dep in status.deployments or () for d in dep.lifecycle_hook_details or ()]


def test_a_timed_out_task_run_stops_its_task_whatever_its_action() -> None:
    for action in ("ROLLBACK", "CONTINUE"):
        status = timed_out("task-definition/check", action)
        [run] = runs_of(status)
        assert run.status == "TIMED_OUT"
        [stop] = service_planning.hook_task_stops(status, {run.hook_id: hook_task(run.hook_id)})
        assert (stop.task, stop.stop_code, stop.reason) == (
            run.hook_id,
            "ServiceSchedulerInitiated",
            f"Task stopped: lifecycle hook {run.hook_id} timed out (HOOK_TIMED_OUT)",
        )
        # Told to stop already, stopped, or gone: nothing to do (repeating it changes nothing).
        for task in (
            hook_task(run.hook_id, desired="STOPPED"),
            hook_task(run.hook_id, last="STOPPED"),
        ):
            assert service_planning.hook_task_stops(status, {run.hook_id: task}) == []
        assert service_planning.hook_task_stops(status, {}) == []


def test_only_timed_out_task_runs_stop_a_task() -> None:
    status = timed_out(URL, "ROLLBACK")  # a URL run has no Task
    assert [r.status for r in runs_of(status)] == ["TIMED_OUT"]
    assert lifecycle_hooks.timed_out_tasks(status) == []
    assert lifecycle_hooks.timed_out_tasks(None) == []


def test_the_task_of_a_timed_out_run_is_stopped_once_its_deployment_is_gone_too() -> None:
    """A restart after the failed deployment left status.deployments: its service deployment
    record still names the run."""
    status = timed_out("task-definition/check", "ROLLBACK")
    [run] = runs_of(status)
    record = {
        "serviceDeploymentArn": "arn:aws:ecs:::service-deployment/shop/web/1",
        "targetServiceRevision": {"arn": "arn:aws:ecs:::service-revision/shop/web/1"},
        "status": "ROLLBACK_SUCCESSFUL",
        "createdAt": "2026-01-01T00:00:00Z",
        "lifecycleHookDetails": [run.model_dump(mode="json", by_alias=True)],
    }
    gone = ServiceStatus.model_validate({"serviceDeployments": [record]})
    assert lifecycle_hooks.timed_out_tasks(gone) == [run.hook_id]
    [stop] = service_planning.hook_task_stops(gone, {run.hook_id: hook_task(run.hook_id)})
    assert stop.task == run.hook_id
