"""AWS_LAMBDA lifecycle hooks (issue #11 item 4): the scheduler simulated through BLUE_GREEN
deployments whose hook runs call a URL (``Sim.hook_target`` answers as the URL would) until it
answers SUCCEEDED or FAILED, or time out; or run a task definition once as a Task
(``Sim.hook_tasks``) whose exit decides."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecs_operator.core import labels, lifecycle_hooks
from ecs_operator.core.lifecycle_hooks import HookCall, HookReply, HookTaskRun
from ecs_operator.models.service import LifecycleHookDetail
from ecs_operator.models.task import Task
from support.servicesim import T0, Sim, node, spec

GREEN, BLUE = "web:2", "web:1"
URL = "http://hooks.shop.svc:8080/verify"
ZONES = [node(f"{z}{i}", z) for z in "abc" for i in range(2)]


def hook(url: str = URL, *stages: str, **fields: Any) -> dict[str, Any]:
    return {"lifecycleStages": list(stages or ["POST_SCALE_UP"]), "hookTargetArn": url} | fields


def answering(*answers: Any) -> Any:
    """A target that gives ``answers`` in order (a str: the call fails with it), then the
    last one again."""
    given_answers: Iterator[Any] = iter(answers)
    last: list[Any] = []

    def target(_call: HookCall) -> HookReply:
        answer = next(given_answers, None) if not last or len(last) < len(answers) else None
        if answer is None:
            answer = last[-1]
        last.append(answer)
        if isinstance(answer, str):
            return HookReply(error=answer)
        return HookReply(answer=answer)

    return target


def deploying(desired: int, hooks: list[dict[str, Any]], target: Any) -> Sim:
    fields = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0}
    sim = Sim(spec(desiredCount=desired, deploymentConfiguration=fields), list(ZONES))
    sim.run(4)
    assert sim.steady()
    sim.spec = spec(
        desiredCount=desired, deploymentConfiguration=fields | {"lifecycleHooks": hooks}
    )
    sim.revision, sim.generation = GREEN, 2
    sim.hook_target = target
    return sim


def runs(sim: Sim) -> list[LifecycleHookDetail]:
    return list(sim.primary().lifecycle_hook_details or ())


def green_record(sim: Sim) -> Any:
    assert sim.status is not None
    return next(d for d in sim.status.deployments or () if d.task_definition == GREEN)


def test_in_progress_calls_again_after_its_delay_with_the_merged_details_then_succeeds() -> None:
    target = answering(
        {"hookStatus": "IN_PROGRESS", "callBackDelay": 45, "hookDetails": {"checked": 1}},
        {"hookStatus": "IN_PROGRESS", "hookDetails": {"checked": 2, "step": "b"}},
        {"hookStatus": "SUCCEEDED"},
    )
    sim = deploying(2, [hook(hookDetails={"suite": "smoke"})], target)
    sim.run(3)  # green up, the hook's run starts and is called at once
    primary = sim.primary()
    digits = primary.id.removeprefix("ecs-svc/")
    [run] = runs(sim)
    assert (run.hook_id, run.target_type, run.target_arn) == (
        f"ecs-hook-{digits}-1",
        "AWS_LAMBDA",
        URL,
    )
    assert (run.status, run.invocations, run.hook_details) == ("IN_PROGRESS", 1, {"checked": 1})
    first = sim.calls[0]
    assert first.url == URL and first.payload == {
        "executionId": run.hook_id,
        "lifecycleStage": "POST_SCALE_UP",
        "resourceArn": f"arn:aws:ecs:::service-deployment/shop/web/{digits}",
        "executionDetails": {
            "serviceArn": "arn:aws:ecs:::service/shop/web",
            "targetServiceRevisionArn": f"arn:aws:ecs:::service-revision/shop/web/{digits}",
            "testTrafficWeights": {},
            "productionTrafficWeights": {},
        },
        "hookDetails": {"suite": "smoke"},
    }
    json.dumps(first.payload)  # what the controller POSTs
    called_at = run.next_invocation_at - timedelta(seconds=45)
    # Held: no traffic moves, blue keeps its tasks, and the plan wakes for the next call.
    waited = sim.plan()
    assert sim.primary().production_traffic_weight == 0.0 and not waited.stop
    assert waited.requeue_after == (run.next_invocation_at - sim.now).total_seconds()
    assert len(sim.calls) == 1  # not due yet: no call
    sim.now = run.next_invocation_at
    sim.plan()
    [run] = runs(sim)
    assert sim.calls[1].payload["hookDetails"] == {"suite": "smoke", "checked": 1}
    assert (run.invocations, run.hook_details) == (2, {"checked": 2, "step": "b"})
    assert run.next_invocation_at == sim.now + timedelta(seconds=30)  # the default delay
    assert called_at < run.next_invocation_at
    sim.now = run.next_invocation_at
    sim.run(8)
    assert sim.steady() and green_record(sim).rollout_state == "COMPLETED"
    assert [(d.status, d.invocations) for d in green_record(sim).lifecycle_hook_details] == [
        ("SUCCEEDED", 3)
    ]
    assert len(sim.calls) == 3
    said = [m for m in sim.messages() if "lifecycle hook" in m]
    assert said == [
        f"(service web) (deployment {primary.id}) lifecycle hook {run.hook_id} is in progress "
        f"at POST_SCALE_UP: calling {URL} (HOOK_IN_PROGRESS).",
        f"(service web) (deployment {primary.id}) lifecycle hook {run.hook_id} succeeded: "
        f"{URL}: answered SUCCEEDED (HOOK_SUCCEEDED).",
    ]


def test_failed_rolls_back_to_blue_which_never_stopped() -> None:
    sim = deploying(2, [hook()], answering({"hookStatus": "FAILED"}))
    sim.run(3)
    blue = sim.primary()
    assert blue.task_definition == BLUE and blue.rollback
    failed = green_record(sim)
    assert failed.rollout_state == "FAILED"
    [run] = failed.lifecycle_hook_details
    assert (run.status, run.status_reason, run.next_invocation_at) == (
        "FAILED",
        "answered FAILED",
        None,
    )
    assert failed.rollout_state_reason == (
        f"ECS deployment lifecycle hook {run.hook_id} FAILED: {URL}: answered FAILED"
    )
    assert (
        f"(service web) (deployment {failed.id}) lifecycle hook {run.hook_id} failed: {URL}: "
        "answered FAILED (HOOK_FAILED)."
    ) in sim.messages()
    sim.run(6)
    assert sim.steady()
    assert {t.task_definition for t in sim.live()} == {BLUE}
    assert len(sim.calls) == 1


def test_a_function_error_or_a_bad_answer_fails_the_hook_naming_why() -> None:
    for reply, why in [
        ("it cannot be reached: connection refused", "it cannot be reached: connection refused"),
        ({"status": "SUCCEEDED"}, "the answer's hookStatus None is not SUCCEEDED"),
        (["SUCCEEDED"], "the answer is not a JSON object"),
    ]:
        sim = deploying(1, [hook()], answering(reply))
        sim.run(3)
        [run] = green_record(sim).lifecycle_hook_details
        assert run.status == "FAILED" and run.status_reason.startswith(why)
        assert sim.primary().task_definition == BLUE
        assert any(f"failed: {URL}: {why}" in m for m in sim.messages())
        assert green_record(sim).rollout_state_reason.startswith(
            f"ECS deployment lifecycle hook {run.hook_id} FAILED: {URL}: {why}"
        )


def test_a_run_never_answering_times_out_into_its_action() -> None:
    for action, ends in [("CONTINUE", GREEN), ("ROLLBACK", BLUE)]:
        timeout = {"timeoutInMinutes": 1, "action": action}
        sim = deploying(
            1,
            [hook(timeoutConfiguration=timeout)],
            answering({"hookStatus": "IN_PROGRESS", "callBackDelay": 20}),
        )
        sim.run(3)
        [run] = runs(sim)
        assert run.expires_at == run.started_at + timedelta(minutes=1)
        while run.status == "IN_PROGRESS":  # called every 20 s until it expires
            sim.plan()
            [run] = green_record(sim).lifecycle_hook_details
            sim.tick(10)
        assert run.status == "TIMED_OUT" and run.next_invocation_at is None
        assert sim.now - run.expires_at <= timedelta(seconds=10)
        sim.run(8)
        assert sim.steady() and {t.task_definition for t in sim.live()} == {ends}
        assert len(sim.calls) == 3  # at 0, 20 and 40 s
        assert any(f"timed out: its timeout action {action} applies" in m for m in sim.messages())


def test_the_stage_passes_only_when_every_hook_of_it_succeeded() -> None:
    other = "http://other.shop.svc/check"

    def target(call: HookCall) -> HookReply:
        done = call.url == URL or len([c for c in sim.calls if c.url == other]) >= 3
        return HookReply(answer={"hookStatus": "SUCCEEDED" if done else "IN_PROGRESS"})

    sim = deploying(1, [hook(), hook(other)], target)
    sim.run(3)
    assert [r.status for r in runs(sim)] == ["SUCCEEDED", "IN_PROGRESS"]
    assert sim.primary().production_traffic_weight == 0.0  # held by the other
    assert {c.url for c in sim.calls[:2]} == {URL, other}  # called together
    sim.run(8, seconds=30)
    assert sim.steady() and green_record(sim).rollout_state == "COMPLETED"
    assert [r.status for r in green_record(sim).lifecycle_hook_details] == ["SUCCEEDED"] * 2


def test_a_restarted_operator_calls_on_from_the_status_alone() -> None:
    sim = deploying(1, [hook()], answering({"hookStatus": "IN_PROGRESS", "hookDetails": {"n": 1}}))
    sim.run(3)
    [run] = runs(sim)
    # Nothing but the written status: the next call, its count and merged details.
    later = run.next_invocation_at
    assert sim.status is not None
    calls = lifecycle_hooks.calls_due("shop", "web", sim.spec, sim.status, later)
    assert [(c.hook_id, c.payload["hookDetails"]) for c in calls] == [(run.hook_id, {"n": 1})]
    assert lifecycle_hooks.calls_due("shop", "web", sim.spec, sim.status, T0) == []


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
ANSWERS = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"hookStatus": st.sampled_from(["SUCCEEDED", "FAILED", "IN_PROGRESS", "DONE", 1])},
        optional={"callBackDelay": JSON, "hookDetails": JSON},
    ),
)


@given(answer=ANSWERS, kept=JSON)
def test_any_answer_moves_a_run_as_ecs_reads_it(answer: Any, kept: Any) -> None:
    run = LifecycleHookDetail(
        hook_id="ecs-hook-1-1",
        target_type="AWS_LAMBDA",
        target_arn=URL,
        status="IN_PROGRESS",
        expires_at=T0 + timedelta(days=1),
        timeout_action="ROLLBACK",
        lifecycle_stage="POST_SCALE_UP",
        started_at=T0,
        invocations=4,
        next_invocation_at=T0,
        hook_details=kept,
    )
    after = lifecycle_hooks.after_reply(run, HookReply(answer=answer), T0)
    status = answer.get("hookStatus") if isinstance(answer, dict) else None
    valid = status in ("SUCCEEDED", "FAILED", "IN_PROGRESS")
    assert after.invocations == 5
    assert after.status == (status if valid else "FAILED")
    if after.status == "IN_PROGRESS":
        assert after.next_invocation_at is not None
        delay = (after.next_invocation_at - T0).total_seconds()
        assert 0 <= delay <= lifecycle_hooks.MAX_CALL_BACK_SECONDS
    else:
        assert after.next_invocation_at is None
    if not valid:
        assert after.hook_details == kept and after.status_reason
    # What is stored survives the status write.
    assert LifecycleHookDetail.model_validate(after.model_dump(mode="json")) == after


# -- task definition targets ---------------------------------------------------------------

TARGET = "arn:aws:ecs:us-east-1:123456789012:task-definition/check:3"


def stopped_task(name: str, codes: dict[str, int | None], reason: str) -> Task:
    return Task.model_validate(
        {
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"taskDefinition": "check:3"},
            "status": {
                "lastStatus": "STOPPED",
                "stopCode": "EssentialContainerExited",
                "stoppedReason": reason,
                "containers": [{"name": c, "exitCode": code} for c, code in codes.items()],
            },
        }
    )


class TaskTarget:
    """Plays the controller and the Task: started once, then running until ``stop`` says
    how it ended."""

    def __init__(self) -> None:
        self.started: list[HookTaskRun] = []
        self.stop: dict[str, int | None] | None = None

    def __call__(self, run: HookTaskRun) -> HookReply | None:
        if not run.started:
            self.started.append(run)
            return lifecycle_hooks.task_started(run)
        if self.stop is None:
            return None
        task = stopped_task(run.task_name, self.stop, "Essential container in task exited")
        return lifecycle_hooks.task_reply(run, task, ["app"])


@pytest.mark.parametrize(("codes", "ends"), [({"app": 0, "log": 137}, GREEN), ({"app": 1}, BLUE)])
def test_a_task_target_runs_once_and_its_exit_decides(
    codes: dict[str, int | None], ends: str
) -> None:
    target = TaskTarget()
    sim = deploying(2, [hook(TARGET)], None)
    sim.hook_tasks = target
    sim.run(3)
    [run] = runs(sim)
    assert (run.status, run.invocations, run.next_invocation_at) == ("IN_PROGRESS", 1, None)
    assert run.status_reason == f"its task {run.hook_id} was started"
    [started] = target.started
    assert (started.task_name, started.task_definition) == (run.hook_id, "check:3")
    assert started.payload["executionId"] == run.hook_id
    # Running: held, not polled (the Task's changes wake the Service), started only once.
    held = sim.plan()
    assert held.requeue_after == (run.expires_at - sim.now).total_seconds()
    sim.run(3)
    assert len(target.started) == 1 and runs(sim)[0].status == "IN_PROGRESS"
    target.stop = codes
    sim.run(8)
    assert sim.steady() and {t.task_definition for t in sim.live()} == {ends}
    said = [m for m in sim.messages() if "lifecycle hook" in m]
    assert f"running {TARGET} as task {run.hook_id} (HOOK_IN_PROGRESS)" in said[0]
    if ends == GREEN:
        assert said[1].endswith(
            f"succeeded: {TARGET}: its task {run.hook_id} exited 0 (HOOK_SUCCEEDED)."
        )
    else:
        assert said[1].endswith(
            f"failed: {TARGET}: its task {run.hook_id} stopped: Essential container in task "
            "exited (app exit code 1) (HOOK_FAILED)."
        )


def test_the_task_of_a_run_is_named_after_it_owned_by_the_service_with_the_payload() -> None:
    sim = deploying(1, [hook("task-definition/check")], None)
    sim.hook_tasks = TaskTarget()
    sim.run(3)
    assert sim.status is not None
    [run] = lifecycle_hooks.task_runs_due("shop", "web", sim.spec, sim.status, sim.now)
    assert run.started and run.task_definition == "check"
    manifest = lifecycle_hooks.hook_task_manifest(run, "shop", "web", "uid-1", ["app", "log"])
    metadata = manifest["metadata"]
    assert (metadata["name"], metadata["labels"][labels.HOOK_LABEL]) == (run.hook_id, run.hook_id)
    assert labels.is_hook_task(manifest)
    assert metadata["ownerReferences"] == [
        {"apiVersion": labels.OWNER_API_VERSION, "kind": "Service", "name": "web", "uid": "uid-1"}
    ]
    overrides = manifest["spec"]["overrides"]["containerOverrides"]
    assert [o["name"] for o in overrides] == ["app", "log"]
    [variable] = overrides[0]["environment"]
    assert variable["name"] == "ECS_LIFECYCLE_HOOK_PAYLOAD"
    assert json.loads(variable["value"]) == run.payload
    Task.model_validate(manifest)  # a valid Task
    # URL runs are not task runs and the other way round.
    assert lifecycle_hooks.calls_due("shop", "web", sim.spec, sim.status, sim.now) == []


def test_a_task_that_never_ran_its_essential_container_fails() -> None:
    run = HookTaskRun("ecs-hook-1-1", "ecs-hook-1-1", "check", {}, started=True)
    never = stopped_task("ecs-hook-1-1", {"app": None}, "CannotPullContainerError: nope")
    reply = lifecycle_hooks.task_reply(run, never, ["app"])
    assert reply is not None and not reply.counted
    assert reply.error == (
        "its task ecs-hook-1-1 stopped: CannotPullContainerError: nope (app exit code None)"
    )
    gone = lifecycle_hooks.task_gone(run)
    assert gone.error == "its task ecs-hook-1-1 was deleted"
