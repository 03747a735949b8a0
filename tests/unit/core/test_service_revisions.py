"""Service revisions and service deployments (core.service_revisions), driven by the service
simulator: plan -> record -> time passes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecs_operator.core import alarms, events, service_revisions
from ecs_operator.core.alarms import AlarmReadings
from ecs_operator.core.deployments import circuit_breaker_threshold
from ecs_operator.core.lifecycle_hooks import HookCall, HookReply
from ecs_operator.core.service_revisions import (
    COMPLETED,
    STATUS_RANK,
    RecordInputs,
    StoredRevision,
    load_balancers_by_deployment,
    plan_revisions,
    read_revision,
    record_status,
    revision_manifest,
    running_spec,
    service_revision_arn,
    task_spec,
)
from ecs_operator.models.service import (
    MAX_SERVICE_DEPLOYMENTS,
    Service,
    ServiceDeployment,
)
from support.servicesim import Sim, node, spec

NAMESPACE = "ns"
BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
LB_ONE = [{"loadBalancerName": "one", "containerName": "web", "containerPort": 80}]
LB_TWO = [{"loadBalancerName": "two", "containerName": "web", "containerPort": 80}]


def service_of(sim: Sim) -> Service:
    return Service(
        metadata={"name": sim.name, "namespace": NAMESPACE, "uid": sim.uid, "generation": 1},
        spec=sim.spec,
        status=sim.status,
    )


@dataclass
class Recorder:
    """What the Service controller does after each plan: record the service deployments in
    the status, store the new service revisions and collect the old ones."""

    sim: Sim
    keep: int = service_revisions.KEPT_SERVICE_REVISIONS
    stored: dict[str, StoredRevision] = field(default_factory=dict)
    history: list[list[ServiceDeployment]] = field(default_factory=list)

    def plan(self) -> None:
        sim = self.sim
        previous = sim.status
        sim.plan()
        assert sim.status is not None
        breaker = sim.spec.deployment_configuration
        inputs = RecordInputs(
            namespace=NAMESPACE,
            service=sim.name,
            deployments=sim.status.deployments or (),
            breaker_enabled=bool(breaker and breaker.deployment_circuit_breaker),
            threshold=circuit_breaker_threshold(sim.status.desired_count or 0),
            now=sim.now,
            alarm_names=alarms.watched_names(sim.spec),
        )
        sim.status = record_status(sim.status, previous, inputs)
        wanted = {
            d.id: d.task_definition
            for d in sim.status.deployments or ()
            if d.status == "PRIMARY" and not d.rollback and d.task_definition == sim.revision
        }
        revisions = plan_revisions(
            service_of(sim), wanted, sim.status, list(self.stored.values()), sim.now, self.keep
        )
        for manifest in revisions.create:
            stored = read_revision(manifest)
            self.stored[stored.name] = stored
        for name in revisions.delete:
            del self.stored[name]
        self.history.append(list(sim.status.service_deployments or ()))

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.plan()
            self.sim.tick()

    def deploy(self, revision: int, outcome: str = "ok", **fields: Any) -> None:
        sim = self.sim
        sim.revision = f"web:{revision}"
        sim.outcomes[sim.revision] = outcome  # type: ignore[assignment]
        if fields:
            sim.spec = spec(**(sim.spec.model_dump(by_alias=True, exclude_none=True) | fields))
        sim.generation += 1

    def records(self) -> list[ServiceDeployment]:
        return list((self.sim.status.service_deployments if self.sim.status else None) or ())


def recorder(**fields: Any) -> Recorder:
    sim = Sim(
        spec(desiredCount=2, deploymentConfiguration=BREAKER, **fields),
        [node("a1", "a"), node("b1", "b")],
    )
    return Recorder(sim)


def deployment_of(record: ServiceDeployment) -> str:
    return "ecs-svc/" + record.service_deployment_arn.rpartition("/")[2]


def test_a_first_deployment_is_in_progress_then_successful() -> None:
    rec = recorder()
    rec.plan()
    [record] = rec.records()
    primary = rec.sim.primary()
    assert record.status == "IN_PROGRESS"
    assert record.service_deployment_arn == (
        f"arn:aws:ecs:::service-deployment/{NAMESPACE}/web/{primary.id.removeprefix('ecs-svc/')}"
    )
    assert record.target_service_revision.arn == service_revision_arn(NAMESPACE, "web", primary.id)
    assert record.deployment_circuit_breaker is not None
    assert record.deployment_circuit_breaker.status == "MONITORING"
    rec.sim.tick()
    rec.run(3)
    [record] = rec.records()
    assert record.status == "SUCCESSFUL"
    assert record.finished_at is not None and record.status_reason == events.rollout_completed(
        primary.id
    )
    assert record.deployment_circuit_breaker is not None
    assert record.deployment_circuit_breaker.status == "MONITORING_COMPLETE"
    status = rec.sim.status
    assert status is not None and status.current_service_deployment == (
        record.service_deployment_arn
    )
    assert [r.arn for r in status.current_service_revisions or ()] == [
        record.target_service_revision.arn
    ]
    [stored] = rec.stored.values()
    assert stored.deployment_id == primary.id and stored.data.task_definition == "web:1"


def test_a_failed_deployment_rolls_back_to_the_last_successful_revision() -> None:
    rec = recorder(loadBalancers=LB_ONE, healthCheckGracePeriodSeconds=30)
    rec.run(4)
    first = rec.sim.primary().id
    rec.deploy(2, "fail", loadBalancers=LB_TWO, healthCheckGracePeriodSeconds=5)
    rec.run(12)
    failed, succeeded = rec.records()
    assert succeeded.status == "SUCCESSFUL"
    assert failed.status == "ROLLBACK_SUCCESSFUL"
    assert failed.status_reason == events.SERVICE_DEPLOYMENT_ROLLED_BACK
    assert failed.rollback is not None
    assert failed.rollback.reason == events.ROLLOUT_CIRCUIT_BREAKER_FAILED
    assert failed.rollback.service_revision_arn == succeeded.target_service_revision.arn
    assert failed.deployment_circuit_breaker is not None
    assert failed.deployment_circuit_breaker.status == "TRIGGERED"
    assert failed.deployment_circuit_breaker.failure_count >= 3
    assert [r.arn for r in failed.source_service_revisions or ()] == [
        succeeded.target_service_revision.arn
    ]
    # No new service revision for the rollback; the one rolled back to runs with its settings.
    assert {s.deployment_id for s in rec.stored.values()} == {first, deployment_of(failed)}
    primary = rec.sim.primary()
    assert primary.id == first and primary.rollback
    running = running_spec(rec.sim.spec, rec.sim.status, rec.stored.values())
    assert [e.load_balancer_name for e in running.load_balancers or ()] == ["one"]
    assert running.health_check_grace_period_seconds == 30
    assert running.task_definition == rec.sim.spec.task_definition


def test_a_failure_without_rollback_stops_the_deployment() -> None:
    rec = recorder()
    rec.sim.spec = spec(
        desiredCount=2,
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": False}},
    )
    rec.run(4)
    rec.deploy(2, "fail")
    rec.run(12)
    failed, _ = rec.records()
    assert failed.status == "STOPPED"
    assert failed.stopped_at is not None and failed.rollback is None
    assert failed.status_reason == events.ROLLOUT_CIRCUIT_BREAKER_FAILED


def test_a_deployment_replaced_before_it_finished_is_stopped() -> None:
    rec = recorder()
    rec.run(4)
    rec.deploy(2, "unhealthy")
    rec.run(2)
    rec.deploy(3)
    rec.run(10)
    newest, replaced, first = rec.records()
    assert (newest.status, replaced.status, first.status) == ("SUCCESSFUL", "STOPPED", "SUCCESSFUL")
    assert replaced.status_reason == events.service_deployment_superseded(deployment_of(newest))


def test_a_rollback_that_fails_too_is_rollback_failed() -> None:
    rec = recorder()
    rec.run(4)
    rec.deploy(2, "fail")
    rec.sim.outcomes["web:1"] = "fail"  # the revision rolled back to no longer starts either
    for task in list(rec.sim.tasks.values()):
        rec.sim.tasks[task.name] = replace(task, health_status="UNHEALTHY")
    rec.run(40)
    failed, _ = rec.records()
    assert failed.status == "ROLLBACK_FAILED", failed
    assert failed.status_reason == events.service_deployment_rollback_failed(rec.sim.primary().id)


def test_running_spec_is_the_spec_unless_the_service_rolled_back() -> None:
    rec = recorder(loadBalancers=LB_ONE)
    rec.run(4)
    assert running_spec(rec.sim.spec, rec.sim.status, rec.stored.values()) is rec.sim.spec


def test_a_task_keeps_the_load_balancers_of_its_own_service_revision() -> None:
    rec = recorder(loadBalancers=LB_ONE)
    rec.run(4)
    first = rec.sim.primary().id
    rec.deploy(2, "unhealthy", loadBalancers=LB_TWO)
    rec.run(2)
    second = rec.sim.primary().id
    running = running_spec(rec.sim.spec, rec.sim.status, rec.stored.values())
    by_deployment = load_balancers_by_deployment(rec.sim.status, rec.stored.values())

    def names(deployment: str | None) -> list[str]:
        spec_of = task_spec(running, by_deployment, deployment)
        return [e.load_balancer_name for e in spec_of.load_balancers or ()]

    assert (names(first), names(second), names(None)) == (["one"], ["two"], ["two"])
    assert task_spec(running, by_deployment, second) is running


def test_a_stored_revision_reads_back_and_a_broken_one_names_its_field() -> None:
    rec = recorder(loadBalancers=LB_ONE, placementConstraints=[{"type": "distinctInstance"}])
    rec.plan()
    manifest = revision_manifest(
        service_of(rec.sim), "ecs-svc/1234567890123456789", "web:1", rec.sim.now
    )
    stored = read_revision(manifest)
    assert stored.name == "web-svcrev-1234567890123456789"
    assert stored.data.load_balancers == rec.sim.spec.load_balancers
    assert stored.data.placement_constraints == rec.sim.spec.placement_constraints
    assert manifest["metadata"]["ownerReferences"][0]["kind"] == "Service"
    manifest["data"]["healthCheckGracePeriodSeconds"] = -1
    with pytest.raises(ValueError, match=r"data\.healthCheckGracePeriodSeconds"):
        read_revision(manifest)
    manifest["metadata"]["annotations"] = {}
    with pytest.raises(ValueError, match="deployment-id"):
        read_revision(manifest)


def test_deployment_configuration_is_not_part_of_a_service_revision() -> None:
    rec = recorder()
    rec.plan()
    manifest = revision_manifest(
        service_of(rec.sim), "ecs-svc/1234567890123456789", "web:1", rec.sim.now
    )
    assert "deploymentConfiguration" not in manifest["data"]
    assert "desiredCount" not in manifest["data"]


# ---------------------------------------------------------------------------------------------
# Properties

Step = tuple[str, bool]  # the new revision's outcome, and whether it also moves the LB


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["ok", "fail", "unhealthy"]), st.booleans()),
        min_size=1,
        max_size=7,
    ),
    keep=st.integers(1, 4),
    waits=st.lists(st.integers(1, 14), min_size=7, max_size=7),
)
def test_records_only_move_forward_history_is_bounded_and_rollbacks_go_to_the_last_success(
    steps: list[Step], keep: int, waits: list[int]
) -> None:
    rec = recorder(loadBalancers=LB_ONE)
    rec.keep = keep
    rec.run(4)
    for number, ((outcome, move), wait) in enumerate(zip(steps, waits, strict=False), start=2):
        rec.deploy(number, outcome, **({"loadBalancers": LB_TWO} if move else {}))
        for _ in range(wait):
            before = {r.service_deployment_arn: r for r in rec.records()}
            successful = [r for r in before.values() if r.status == "SUCCESSFUL"]
            rec.plan()
            rec.sim.tick()
            check(rec, before, successful, keep)


def check(
    rec: Recorder,
    before: dict[str, ServiceDeployment],
    successful: list[ServiceDeployment],
    keep: int,
) -> None:
    records = rec.records()
    assert len(records) <= MAX_SERVICE_DEPLOYMENTS
    assert [r.created_at for r in records] == sorted((r.created_at for r in records), reverse=True)
    status = rec.sim.status
    assert status is not None
    listed = {d.id for d in status.deployments or ()}
    # plan_revisions keeps the newest `keep`, the listed ones and the last successful one.
    assert len(rec.stored) <= keep + len(listed) + 1
    stored = {s.deployment_id for s in rec.stored.values()}
    # The revision running and the last successful one are never collected.
    primary = rec.sim.primary()
    if not primary.rollback:
        assert primary.id in stored
    last_success = service_revisions.last_successful(records)
    if last_success is not None:
        assert last_success in stored
    newest_success = max(successful, key=lambda r: r.created_at, default=None)
    for record in records:
        old = before.get(record.service_deployment_arn)
        if old is None:
            continue
        assert STATUS_RANK[record.status] >= STATUS_RANK[old.status]
        if old.status in COMPLETED:
            assert record == old
        if old.rollback is None and record.rollback is not None:
            # A rollback goes to the last SUCCESSFUL service revision, with its settings.
            assert newest_success is not None
            assert record.rollback.service_revision_arn == (
                newest_success.target_service_revision.arn
            )
            running = running_spec(rec.sim.spec, status, rec.stored.values())
            restored = rec.stored[
                service_revisions.controller_revision_name("web", deployment_of(newest_success))
            ].data
            assert running.load_balancers == restored.load_balancers


def test_history_keeps_the_last_ten_service_deployments_newest_first() -> None:
    rec = recorder()
    rec.run(4)
    for number in range(2, 14):
        rec.deploy(number)
        rec.run(6)
    records = rec.records()
    assert len(records) == MAX_SERVICE_DEPLOYMENTS
    assert [r.status for r in records] == ["SUCCESSFUL"] * MAX_SERVICE_DEPLOYMENTS
    assert deployment_of(records[0]) == rec.sim.primary().id
    assert len(rec.stored) == service_revisions.KEPT_SERVICE_REVISIONS


@settings(max_examples=100, deadline=None)
@given(
    generations=st.lists(st.integers(1, 30), min_size=0, max_size=25),
    listed=st.sets(st.integers(0, 24), max_size=4),
    successful=st.integers(0, 30),
    keep=st.integers(0, 12),
)
def test_collection_keeps_the_newest_the_listed_and_the_last_successful(
    generations: list[int], listed: set[int], successful: int, keep: int
) -> None:
    rec = recorder()
    rec.plan()
    service = service_of(rec.sim)
    ids = [f"ecs-svc/{1000000000000000000 + i}" for i in range(len(generations))]
    stored = [
        StoredRevision(
            service_revisions.controller_revision_name("web", deployment_id),
            deployment_id,
            generation,
            read_revision(revision_manifest(service, deployment_id, "web:1", rec.sim.now)).data,
        )
        for deployment_id, generation in zip(ids, generations, strict=True)
    ]
    status = rec.sim.status
    assert status is not None
    template = rec.sim.primary()
    running = [template.model_copy(update={"id": ids[i]}) for i in listed if i < len(ids)]
    record = rec.records()[0].model_copy(
        update={
            "status": "SUCCESSFUL",
            "service_deployment_arn": service_revisions.service_deployment_arn(
                NAMESPACE, "web", ids[successful] if successful < len(ids) else "ecs-svc/1"
            ),
        }
    )
    status = status.model_copy(
        update={
            "deployments": running or status.deployments,
            "service_deployments": [record],
        }
    )
    plan = plan_revisions(service, {}, status, stored, rec.sim.now, keep)
    deleted = {s.deployment_id for s in stored if s.name in plan.delete}
    protected = {d.id for d in status.deployments or ()} | {deployment_of(record)}
    assert not deleted & protected
    left = [s for s in stored if s.name not in plan.delete]
    assert len(left) <= max(keep, 1) + len(protected)
    newest = sorted(stored, key=lambda s: (s.revision, s.name), reverse=True)[: max(keep, 1)]
    assert all(s.name not in plan.delete for s in newest)


def test_a_pause_hook_is_in_the_service_deployment_and_its_rollback_says_why() -> None:
    rec = recorder()
    rec.run(4)
    first = rec.sim.primary().id
    hook = {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}
    rec.deploy(
        2,
        deploymentConfiguration={
            "strategy": "BLUE_GREEN",
            "bakeTimeInMinutes": 0,
            "lifecycleHooks": [hook],
        },
    )
    rec.run(4)
    paused, _ = rec.records()
    [run] = paused.lifecycle_hook_details or ()
    assert (paused.status, paused.lifecycle_stage) == ("IN_PROGRESS", "POST_SCALE_UP")
    assert (run.status, run.timeout_action) == ("AWAITING_ACTION", "ROLLBACK")
    assert run.expires_at == run.started_at + timedelta(minutes=1440)  # ECS's default
    rec.sim.spec = spec(
        **rec.sim.spec.model_dump(by_alias=True, exclude_none=True)
        | {"continueServiceDeployment": {"hookId": run.hook_id, "action": "ROLLBACK"}}
    )
    rec.sim.generation += 1
    rec.run(8)
    failed, succeeded = rec.records()
    reason = events.hook_rollback_reason(run.hook_id, "FAILED")
    assert failed.status == "ROLLBACK_SUCCESSFUL"
    assert failed.rollback is not None and failed.rollback.reason == reason
    assert failed.status_reason == events.service_deployment_rolled_back(reason)
    assert [d.status for d in failed.lifecycle_hook_details or ()] == ["FAILED"]
    assert rec.sim.primary().id == first == deployment_of(succeeded)


def test_a_rollback_hook_run_outlasting_the_rollback_is_followed_by_its_record() -> None:
    """A PAUSE answered ROLLBACK after production moved: the production hook's rollback run
    answers IN_PROGRESS until it times out; the record is ROLLBACK_SUCCESSFUL before that, and
    still takes how the run ended (the deployment stays listed until then)."""
    rec = recorder()
    rec.run(4)
    first = rec.sim.primary().id
    url = "http://hooks:8080/verify"
    timeout = {"timeoutInMinutes": 1, "action": "ROLLBACK"}
    hooks = [
        {"targetType": "PAUSE", "lifecycleStages": ["POST_PRODUCTION_TRAFFIC_SHIFT"]},
        {"lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"], "hookTargetArn": url}
        | {"timeoutConfiguration": timeout},
    ]

    def target(call: HookCall) -> HookReply:
        details = call.payload["executionDetails"]
        back = details["productionTrafficWeights"].get(details["targetServiceRevisionArn"]) == 0.0
        status = "IN_PROGRESS" if back else "SUCCEEDED"
        return HookReply(answer={"hookStatus": status, "callBackDelay": 10})

    rec.sim.hook_target = target
    rec.deploy(
        2,
        deploymentConfiguration={
            "strategy": "BLUE_GREEN",
            "bakeTimeInMinutes": 0,
            "lifecycleHooks": hooks,
        },
    )
    rec.run(6)
    paused, _ = rec.records()
    pause = next(d for d in paused.lifecycle_hook_details or () if d.target_type == "PAUSE")
    assert pause.status == "AWAITING_ACTION"
    rec.sim.spec = spec(
        **rec.sim.spec.model_dump(by_alias=True, exclude_none=True)
        | {"continueServiceDeployment": {"hookId": pause.hook_id, "action": "ROLLBACK"}}
    )
    rec.sim.generation += 1
    rec.run(3)
    failed, _ = rec.records()
    green = deployment_of(failed)
    assert failed.status == "ROLLBACK_SUCCESSFUL" and rec.sim.primary().id == first
    again = (failed.lifecycle_hook_details or [])[-1]
    assert (again.rollback, again.status) == (True, "IN_PROGRESS")
    # Called with blue at 100, green at 0, on every callBackDelay (the sim's namespace).
    prefix = "arn:aws:ecs:::service-revision/shop/web/"
    rolled = [c for c in rec.sim.calls if c.hook_id == again.hook_id]
    assert rolled and all(
        c.payload["executionDetails"]["productionTrafficWeights"]
        == {
            prefix + green.removeprefix("ecs-svc/"): 0.0,
            prefix + first.removeprefix("ecs-svc/"): 100.0,
        }
        for c in rolled
    )
    assert rec.sim.deployment(green) is not None
    rec.run(8)  # past its minute
    failed, _ = rec.records()
    assert [d.status for d in failed.lifecycle_hook_details or ()] == [
        "SUCCEEDED",
        "FAILED",
        "TIMED_OUT",
    ]
    assert failed.status == "ROLLBACK_SUCCESSFUL" and rec.sim.deployment(green) is None
    assert any("timed out in the rollback, which goes on" in m for m in rec.sim.messages())


def test_an_alarm_rollback_is_recorded_with_its_alarms_and_the_breaker_not_triggered() -> None:
    watched = {"alarms": {"alarmNames": ["errors"], "enable": True, "rollback": True}}
    rec = recorder()
    rec.sim.alarms = AlarmReadings({"errors": False}, {}, 5.0, 60.0)
    rec.run(4)
    rec.sim.tick(60)
    rec.run(2)
    [first] = rec.records()
    assert first.status == "SUCCESSFUL"
    assert first.alarms is not None and first.alarms.status == "DISABLED"
    rec.deploy(2, deploymentConfiguration=BREAKER | watched)
    rec.run(4)
    ongoing = rec.records()[0]
    assert ongoing.status == "IN_PROGRESS"
    assert ongoing.alarms is not None
    assert (ongoing.alarms.alarm_names, ongoing.alarms.status) == (["errors"], "MONITORING")
    rec.sim.alarms = AlarmReadings({"errors": True}, {}, 5.0, 60.0)
    rec.run(6)
    failed = rec.records()[0]
    assert failed.status == "ROLLBACK_SUCCESSFUL"
    assert failed.status_reason == events.SERVICE_DEPLOYMENT_ROLLED_BACK_BY_ALARMS
    assert failed.alarms is not None
    assert (failed.alarms.status, failed.alarms.triggered_alarm_names) == ("TRIGGERED", ["errors"])
    assert failed.deployment_circuit_breaker is not None
    assert failed.deployment_circuit_breaker.status == "MONITORING_COMPLETE"
    assert failed.rollback is not None
    assert failed.rollback.reason == events.ROLLOUT_ALARM_FAILED
    assert failed.rollback.service_revision_arn == first.target_service_revision.arn
