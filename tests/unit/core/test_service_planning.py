"""One Service reconcile's decisions (core.service_planning): ELB-health stops after the
scheduler's plan, stopped-task trimming, launch placement, the Task manifest, the outcome the
controller writes, and the drain finalizer: on each load-balanced task, no longer on the Service."""

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ecs_operator.core import events, labels, launches
from ecs_operator.core.deployments import LaunchRequest, ServicePlan, ServiceTask, StopRequest
from ecs_operator.core.placement import ContainerInstance, PlacementFailure
from ecs_operator.core.revisions import (
    ResolvedRevision,
    Revision,
    controller_revision_manifest,
    revision_record_from_object,
)
from ecs_operator.core.service_planning import (
    MAX_STOPPED_TASKS_PER_SERVICE,
    PLACEMENT_RETRY_SECONDS,
    ReconcileState,
    holds_former_drain_finalizer,
    new_deployment_revision,
    place_launch,
    plan_reconcile,
    reads_changed,
    record_outcome,
    stop_patch,
    stopped_to_delete,
    task_manifest,
)
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.service import Service, ServiceStatus
from ecs_operator.models.task import Task
from ecs_operator.models.taskdefinition import TaskDefinitionSpec

LB = "web-lb"
ENTRY = {"loadBalancerName": LB, "containerName": "web", "containerPort": 8080}
REVISION = TaskDefinitionSpec.model_validate(
    {"containerDefinitions": [{"name": "web", "image": "nginx", "memory": 128}]}
)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def node(name: str, zone: str = "zone-a", memory: int = 4096) -> ContainerInstance:
    return ContainerInstance(
        name=name,
        zone=zone,
        attributes={"ecs.availability-zone": zone},
        registered_cpu_millicores=4000,
        remaining_cpu_millicores=4000,
        registered_memory_mib=memory,
        remaining_memory_mib=memory,
    )


def service(status: ServiceStatus | None = None, **spec: Any) -> Service:
    raw: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "generation": 1},
        "spec": {"taskDefinition": "web", "desiredCount": 1} | spec,
    }
    if status is not None:
        raw["status"] = status.model_dump(mode="json", exclude_none=True)
    return Service.model_validate(raw)


def task(
    name: str,
    *,
    started_by: str | None = None,
    last_status: str = "RUNNING",
    stopped_at: int | None = None,
    desired: str = "RUNNING",
    annotations: dict[str, str] | None = None,
    **status_fields: str,
) -> Task:
    status: dict[str, Any] = {
        "lastStatus": last_status,
        "desiredStatus": desired,
        "nodeName": "n1",
        "availabilityZone": "zone-a",
        "startedAt": T0.isoformat(),
    } | status_fields
    if stopped_at is not None:
        status["stoppedAt"] = at(stopped_at).isoformat()
    return Task.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": f"uid-{name}",
                "annotations": annotations or {},
                "ownerReferences": [
                    {"kind": "Service", "name": "web", "uid": "svc-uid", "controller": True}
                ],
            },
            "spec": {"taskDefinition": "web:1", "startedBy": started_by, "desiredStatus": desired},
            "status": status,
        }
    )


def load_balancer(task_name: str, state: str) -> LoadBalancer:
    target = {
        "id": "0" * 32,
        "task": task_name,
        "service": "web",
        "ip": "10.0.0.1",
        "port": 8080,
        "state": state,
        "registeredAt": T0.isoformat(),
    }
    return LoadBalancer.model_validate(
        {
            "metadata": {"name": LB, "namespace": "ns", "uid": "lb-uid"},
            "spec": {"listeners": [{"port": 80}]},
            "status": {"targets": [target]},
        }
    )


def state(
    svc: Service, tasks: list[Task], lb: LoadBalancer | None, seconds: float
) -> ReconcileState:
    return ReconcileState(
        service=svc,
        tasks=tasks,
        load_balancers={LB: lb} if lb else {},
        nodes=[node("n1")],
        now=at(seconds),
        resolved="web:1",
        resolution_error=None,
        revision=None,
        health_checked=frozenset(),
    )


def running_primary(seconds: float, target_state: str) -> ReconcileState:
    """`web` (grace period 60 s) with its PRIMARY deployment's one task running since T0, its
    target in `target_state`."""
    balanced = {"loadBalancers": [ENTRY], "healthCheckGracePeriodSeconds": 60}
    first = plan_reconcile(state(service(**balanced), [], None, 0), random.Random(1)).scheduled
    primary = first.status.deployments[0].id  # type: ignore[index]
    tasks = [task("web-1", started_by=primary)]
    lb = load_balancer("web-1", target_state)
    return state(service(first.status, **balanced), tasks, lb, seconds)


# ---------------------------------------------------------------------------------------------
# ELB health


def test_a_task_unhealthy_in_its_target_group_past_the_grace_period_is_stopped_as_failed() -> None:
    plan = plan_reconcile(running_primary(60, "unhealthy"), random.Random(2)).scheduled
    assert plan.stop == (
        StopRequest(
            "web-1",
            "ServiceSchedulerInitiated",
            events.elb_health_checks_failed(LB),
            failed_health_checks=True,
        ),
    )


def test_within_the_grace_period_it_is_looked_at_again_when_the_period_ends() -> None:
    plan = plan_reconcile(running_primary(45, "unhealthy"), random.Random(2)).scheduled
    assert plan.stop == ()
    assert plan.requeue_after == 15


def test_a_healthy_target_stops_nothing() -> None:
    plan = plan_reconcile(running_primary(600, "healthy"), random.Random(2)).scheduled
    assert (plan.stop, plan.requeue_after) == ((), None)


def test_the_circuit_breaker_recognises_a_health_check_stop_by_its_field_not_its_text() -> None:
    """The stop's `failed_health_checks` travels on the Task as an annotation; its reason text
    is only for people."""
    request = StopRequest("web-1", "ServiceSchedulerInitiated", "x", failed_health_checks=True)
    elb = events.elb_health_checks_failed(LB)

    def stopped(patch: dict[str, Any], reason: str) -> ServiceTask:
        annotations = patch["metadata"]["annotations"]
        done = task(
            "web-1",
            last_status="STOPPED",
            stopped_at=5,
            desired="STOPPED",
            annotations=annotations,
            stopCode="ServiceSchedulerInitiated",
            stoppedReason=reason,
        )
        return ServiceTask.of(done, T0)

    assert stopped(stop_patch(request), "x").failed_health_checks
    assert not stopped(
        stop_patch(replace(request, failed_health_checks=False)), elb
    ).failed_health_checks


def test_a_stop_patch_clips_the_reason_to_the_spec_field_and_marks_only_health_stops() -> None:
    patch = stop_patch(StopRequest("web-1", "ServiceSchedulerInitiated", "x" * 300))
    assert patch["spec"] == {"desiredStatus": "STOPPED", "stoppedReason": "x" * 255}
    assert patch["metadata"]["annotations"] == {
        labels.STOP_CODE_ANNOTATION: "ServiceSchedulerInitiated"
    }


# ---------------------------------------------------------------------------------------------
# Stopped-task trimming


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.integers(0, 50)),
        min_size=0,
        max_size=2 * MAX_STOPPED_TASKS_PER_SERVICE + 5,
    )
)
def test_trimming_keeps_the_newest_stopped_tasks_and_never_a_live_one(
    stopped_seconds: list[int | None],
) -> None:
    tasks = [
        task(f"t{i}")
        if seconds is None
        else task(f"t{i}", last_status="STOPPED", stopped_at=seconds, desired="STOPPED")
        for i, seconds in enumerate(stopped_seconds)
    ]
    deleted = stopped_to_delete(tasks)
    stopped = [t for t in tasks if t.status and t.status.last_status == "STOPPED"]
    kept = [t for t in stopped if t not in deleted]
    assert len(kept) == min(len(stopped), MAX_STOPPED_TASKS_PER_SERVICE)
    assert all(t in stopped for t in deleted)

    def age(t: Task) -> tuple[Any, str]:
        return (t.status.stopped_at, t.metadata.name)  # type: ignore[union-attr]

    assert all(age(old) < age(new) for old in deleted for new in kept)
    assert [age(t) for t in deleted] == sorted(age(t) for t in deleted)  # oldest first


# ---------------------------------------------------------------------------------------------
# Launches


def test_a_rebalancing_launch_is_placed_only_in_its_zone_under_names_not_taken() -> None:
    nodes = [node("a1", "zone-a"), node("b1", "zone-b")]
    launch = LaunchRequest("ecs-svc/1", "web:1", 3, "rebalance", zone="zone-b")
    first = launches.service_task_name("web", "svc-uid", "ecs-svc/1", 0)
    placed, failure = place_launch(
        service(), launch, REVISION, nodes, lambda name: name == first, random.Random(3)
    )
    assert failure is None
    assert [(ordinal, node) for ordinal, _, node in placed] == [(1, "b1"), (2, "b1"), (3, "b1")]
    assert [name for _, name, _ in placed] == [
        launches.service_task_name("web", "svc-uid", "ecs-svc/1", ordinal) for ordinal in (1, 2, 3)
    ]


def test_a_staged_launch_is_spread_over_its_own_revision_s_tasks() -> None:
    # Blue (3 tasks) fills zone-a; green has 1 task there. Counted over the service's task
    # group green would go to zone-b only; counted alone it ends 2 and 2.
    nodes = [
        replace(node("a1", "zone-a"), group_counts={"service:web": 4}),
        node("b1", "zone-b"),
    ]
    green = LaunchRequest("ecs-svc/2", "web:2", 3, spread_counts=(("a1", 1),))
    placed, failure = place_launch(
        service(), green, REVISION, nodes, lambda _: False, random.Random(3)
    )
    assert failure is None
    assert Counter(where for _, _, where in placed) == Counter({"b1": 2, "a1": 1})
    rolling = replace(green, spread_counts=None)
    placed, _ = place_launch(service(), rolling, REVISION, nodes, lambda _: False, random.Random(3))
    assert [where for _, _, where in placed] == ["b1", "b1", "b1"]


def test_a_daemon_launch_is_placed_on_its_node_or_not_at_all() -> None:
    nodes = [node("a1"), node("a2", memory=64)]
    launch = LaunchRequest("ecs-svc/1", "web:1", 1, "daemon", node="a2")
    placed, failure = place_launch(
        service(), launch, REVISION, nodes, lambda _: False, random.Random(3)
    )
    assert placed == [] and isinstance(failure, PlacementFailure)


def test_the_task_manifest_is_what_a_retried_create_recognises_as_the_same_launch() -> None:
    tags = [{"key": "team", "value": "web"}]
    svc = service(propagateTags="SERVICE", tags=tags)
    launch = LaunchRequest("ecs-svc/1", "web:1", 1)
    manifest = task_manifest(svc, launch, "n1", 4, "web-0123456789")
    assert manifest["metadata"]["annotations"] == {
        labels.PLACED_NODE_ANNOTATION: "n1",
        launches.LAUNCH_ORDINAL_ANNOTATION: "4",
    }
    assert manifest["spec"] == {
        "taskDefinition": "web:1",
        "group": "service:web",
        "startedBy": "ecs-svc/1",
        "tags": tags,
    }
    assert launches.existing_verdict(manifest, manifest) is launches.Existing.SAME_LAUNCH
    other = task_manifest(svc, launch, "n1", 5, "web-0123456789")
    assert launches.existing_verdict(other, manifest) is launches.Existing.OTHER_LAUNCH


# ---------------------------------------------------------------------------------------------
# The outcome


def test_nothing_changed_nothing_launched_writes_nothing() -> None:
    current = state(service(), [], None, 0)
    unchanged = ServicePlan(status=ServiceStatus(), changed=False)
    outcome = record_outcome(current, unchanged, {}, [], random.Random(4))
    assert (outcome.status, outcome.events, outcome.requeue_after) == (None, (), None)


def test_launches_are_recorded_and_an_unplaced_one_is_tried_again() -> None:
    current = state(service(), [], None, 0)
    plan = ServicePlan(status=ServiceStatus(), changed=False, requeue_after=90.0)
    launch = LaunchRequest("ecs-svc/1", "web:1", 2)
    failure = PlacementFailure("RESOURCE:MEMORY", "n1", "has insufficient memory available")
    outcome = record_outcome(
        current, plan, {launch: ["a" * 32]}, [(launch, failure)], random.Random(4)
    )
    assert outcome.status is not None
    assert outcome.events[0] == events.service_tasks_started("web", ["a" * 32])
    assert outcome.events[1].startswith("(service web) was unable to place a task")
    assert outcome.requeue_after == PLACEMENT_RETRY_SECONDS


# ---------------------------------------------------------------------------------------------
# The Service object: finalizer, deletion, what a reconcile reads


def test_only_a_load_balanced_service_s_tasks_are_created_holding_the_drain_finalizer() -> None:
    """Deleting the Service returns at once: each task's own deletion waits for its drain."""
    launch = LaunchRequest("ecs-svc/1", "web:1", 1)
    balanced = task_manifest(service(loadBalancers=[ENTRY]), launch, "n1", 0, "web-0123456789")
    plain = task_manifest(service(), launch, "n1", 0, "web-0123456789")
    assert balanced["metadata"]["finalizers"] == [labels.DRAIN_FINALIZER]
    assert "finalizers" not in plain["metadata"]


def test_a_service_holding_the_former_drain_finalizer_is_recognised() -> None:
    assert holds_former_drain_finalizer({"metadata": {"finalizers": [labels.DRAIN_FINALIZER]}})
    assert not holds_former_drain_finalizer({"metadata": {"finalizers": ["other/x"]}})
    assert not holds_former_drain_finalizer({"metadata": {}})


def test_a_status_write_changes_what_a_reconcile_reads_only_with_generation_or_deletion() -> None:
    read = {"metadata": {"generation": 1, "resourceVersion": "1"}}
    assert not reads_changed(read, {"metadata": {"generation": 1, "resourceVersion": "2"}})
    assert reads_changed(read, {"metadata": {"generation": 2}})
    assert reads_changed(read, {"metadata": {"generation": 1, "deletionTimestamp": "now"}})


def test_a_new_deployment_runs_the_revision_resolved_or_says_why_there_is_none() -> None:
    data = {"containerDefinitions": [{"name": "app", "image": "busybox:1.36", "memory": 64}]}
    manifest = controller_revision_manifest("web", "default", "td-uid", 1, 3, data)
    spec = TaskDefinitionSpec.model_validate(data)
    found = ResolvedRevision(Revision(revision_record_from_object(manifest), spec))
    assert new_deployment_revision(found) == ("web:3", None, spec)
    missing = events.family_missing("web")
    assert new_deployment_revision(ResolvedRevision(error=missing)) == (None, missing, None)
