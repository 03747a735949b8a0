"""The ECS task lifecycle computed from Pod snapshots (core/lifecycle.py)."""

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecs_operator.core import events
from ecs_operator.core.lifecycle import (
    TASK_ORDER,
    Observation,
    StopPod,
    TaskView,
    aggregate_health,
    expires_at,
    is_expired,
    is_on_lost_node,
    observe,
)
from ecs_operator.models.task import Task, TaskStatus
from ecs_operator.models.taskdefinition import (
    ContainerDefinition,
    ContainerDependency,
    HealthCheck,
    PortMapping,
)
from support.podfactory import T0, at, node, pod, restarted, running, terminated, waiting

APP = ContainerDefinition(name="app", image="busybox:1.36")
LOG = ContainerDefinition(name="log", image="busybox:1.36", essential=False)
CHECK = HealthCheck(command=["CMD-SHELL", "true"], interval=10, retries=3, start_period=20)
CHECKED = ContainerDefinition(name="app", image="busybox:1.36", health_check=CHECK)


def view(*containers: ContainerDefinition, **fields: Any) -> TaskView:
    return TaskView(
        name="web-1",
        generation=1,
        created_at=T0,
        containers=containers or (APP,),
        **fields,
    )


def follow(
    task: TaskView, snapshots: Sequence[tuple[dict[str, Any] | None, datetime]]
) -> list[Observation]:
    """Observe each snapshot in turn, feeding every new status into the next observation."""
    seen = []
    for snapshot, now in snapshots:
        observation = observe(task, snapshot, now)
        seen.append(observation)
        task = dataclasses.replace(task, status=observation.status)
    return seen


def settle(task: TaskView, snapshot: dict[str, Any] | None, now: datetime) -> TaskView:
    """The task after observing ``snapshot`` (a shortcut to set up a previous status)."""
    return dataclasses.replace(task, status=observe(task, snapshot, now).status)


def reasons(observation: Observation) -> list[str]:
    return [event.reason for event in observation.events]


def condition(status: TaskStatus, kind: str) -> tuple[str, str]:
    found = next(c for c in status.conditions or () if c.type == kind)
    return found.status, found.reason


RUNNING_POD = pod(containers=[running("app")])


# ---------------------------------------------------------------------------------------------
# Starting


def test_a_new_task_is_provisioning_and_wants_its_pod() -> None:
    first = observe(view(), None, at(1))
    assert first.status.last_status == "PROVISIONING"
    assert first.status.desired_status == "RUNNING"
    assert first.wants_pod and first.changed and first.actions == ()
    assert first.status.version == 1
    assert first.status.created_at == T0
    assert first.status.observed_generation == 1
    assert first.status.containers is not None
    assert [(c.name, c.last_status, c.health_status) for c in first.status.containers] == [
        ("app", "PENDING", "UNKNOWN")
    ]
    assert condition(first.status, "Ready") == ("False", "Provisioning")
    assert condition(first.status, "Stopped") == ("False", "Provisioning")


def test_provisioning_to_pending_to_running_sets_timestamps_once() -> None:
    created = pod(containers=[waiting("app")], node=None, with_statuses=False)
    scheduled = pod(containers=[waiting("app")])
    steps = follow(
        view(), [(None, at(1)), (created, at(2)), (scheduled, at(3)), (RUNNING_POD, at(4))]
    )
    lasts = [o.status.last_status for o in steps]
    assert lasts == ["PROVISIONING", "PENDING", "PENDING", "RUNNING"]
    assert [o.status.version for o in steps] == [1, 2, 2, 3]
    assert steps[1].status.pull_started_at is None
    assert steps[2].status.pull_started_at == at(3)
    assert steps[2].status.pull_stopped_at is None
    final = steps[3].status
    assert (final.pull_started_at, final.pull_stopped_at, final.started_at) == (at(3), at(4), at(4))
    assert final.node_name == "node-a" and final.pod_name == "web-1"
    assert final.connectivity == "CONNECTED"
    assert reasons(steps[1]) == [events.REASON_PENDING]
    assert reasons(steps[3]) == [events.REASON_RUNNING]
    assert "node-a" in steps[3].events[0].message
    assert not steps[3].wants_pod
    assert condition(final, "Ready") == ("True", "Running")
    app = (final.containers or [])[0]
    assert app.last_status == "RUNNING" and app.exit_code is None
    assert app.image_digest == "sha256:" + "ab" * 32
    assert app.runtime_id == "app-0123456789abcdef"


def test_a_resync_of_a_converged_task_changes_nothing() -> None:
    task = settle(view(), RUNNING_POD, at(4))
    again = observe(task, RUNNING_POD, at(500))
    assert not again.changed
    assert again.events == () and again.actions == ()
    assert again.status == task.status


def test_pending_pod_keeps_wanting_nothing_and_provisioning_wants_a_pod_until_seen() -> None:
    task = settle(view(), None, at(1))
    assert observe(task, None, at(2)).wants_pod
    assert not observe(task, None, at(2)).changed
    pending = settle(task, pod(containers=[waiting("app")]), at(3))
    assert not observe(pending, pod(containers=[waiting("app")]), at(4)).wants_pod


def test_running_needs_every_regular_container_behind_init_and_sidecars() -> None:
    migrate = ContainerDefinition(name="migrate", image="busybox:1.36", essential=False)
    proxy = ContainerDefinition(name="proxy", image="envoy:1", essential=False)
    app = APP.model_copy(
        update={
            "depends_on": [
                ContainerDependency(container_name="migrate", condition="SUCCESS"),
                ContainerDependency(container_name="proxy", condition="START"),
            ]
        }
    )
    task = view(migrate, proxy, app)
    initialising = pod(
        init=[running("migrate")],
        sidecars=[waiting("proxy")],
        containers=[waiting("app", "PodInitializing")],
    )
    sidecar_up = pod(
        init=[terminated("migrate", 0)],
        sidecars=[running("proxy")],
        containers=[waiting("app", "PodInitializing")],
    )
    all_up = pod(
        init=[terminated("migrate", 0)], sidecars=[running("proxy")], containers=[running("app")]
    )
    steps = follow(task, [(initialising, at(1)), (sidecar_up, at(2)), (all_up, at(3))])
    assert [o.status.last_status for o in steps] == ["PENDING", "PENDING", "RUNNING"]
    containers = {c.name: c for c in steps[2].status.containers or ()}
    assert containers["migrate"].last_status == "STOPPED" and containers["migrate"].exit_code == 0
    assert containers["proxy"].last_status == "RUNNING"
    assert steps[2].status.started_at == at(3)
    # an init container's exit is a non-essential container exit like any other
    assert events.REASON_CONTAINER_EXITED in reasons(steps[1])


def test_a_pod_seen_first_when_everything_already_ran_reaches_running_with_all_timestamps() -> None:
    task = settle(view(), None, at(1))
    first = observe(task, RUNNING_POD, at(2)).status
    assert first.last_status == "RUNNING"
    assert first.pull_started_at == first.pull_stopped_at == first.started_at == at(2)


def test_activating_and_deactivating_follow_the_load_balancer_flags() -> None:
    task = view(activating=True)
    activating = observe(task, RUNNING_POD, at(1))
    assert activating.status.last_status == "ACTIVATING"
    assert reasons(activating) == [events.REASON_ACTIVATING]
    registered = dataclasses.replace(task, status=activating.status, activating=False)
    running_now = observe(registered, RUNNING_POD, at(2))
    assert running_now.status.last_status == "RUNNING"
    draining = dataclasses.replace(
        registered, status=running_now.status, desired_status="STOPPED", deactivating=True
    )
    held = observe(draining, RUNNING_POD, at(3))
    assert held.status.last_status == "DEACTIVATING"
    assert held.actions == ()
    drained = dataclasses.replace(draining, status=held.status, deactivating=False)
    stopping = observe(drained, RUNNING_POD, at(4))
    assert stopping.status.last_status == "STOPPING"
    assert stopping.actions == (StopPod(30, events.TASK_STOPPED_BY_USER),)


def test_a_running_task_never_goes_back_to_activating() -> None:
    """ACTIVATING comes once, before RUNNING: a running task whose target is deregistered (or
    whose LoadBalancer appears only now) is registering again, yet stays RUNNING."""
    running_task = settle(view(), RUNNING_POD, at(1))
    assert running_task.status is not None and running_task.status.last_status == "RUNNING"
    again = observe(dataclasses.replace(running_task, activating=True), RUNNING_POD, at(2))
    assert again.status.last_status == "RUNNING"
    assert events.REASON_ACTIVATING not in reasons(again)


# ---------------------------------------------------------------------------------------------
# Essential and non-essential exits


@pytest.mark.parametrize(("exit_code", "event_type"), [(0, "Normal"), (1, "Warning")])
def test_an_essential_exit_with_any_code_stops_the_task(exit_code: int, event_type: str) -> None:
    task = settle(
        view(APP, LOG.model_copy(update={"stop_timeout": 90})),
        pod(containers=[running("app"), running("log")]),
        at(1),
    )
    exited = observe(task, pod(containers=[terminated("app", exit_code), running("log")]), at(10))
    status = exited.status
    assert status.last_status == "STOPPING"
    assert status.desired_status == "STOPPED"
    assert status.stop_code == "EssentialContainerExited"
    assert status.stopped_reason == events.ESSENTIAL_CONTAINER_EXITED
    assert status.execution_stopped_at == status.stopping_at == at(10)
    assert exited.actions == (StopPod(90, events.ESSENTIAL_CONTAINER_EXITED),)
    assert [(e.type, e.reason) for e in exited.events] == [(event_type, "EssentialContainerExited")]
    containers = {c.name: c for c in status.containers or ()}
    assert containers["app"].exit_code == exit_code and containers["app"].last_status == "STOPPED"
    assert containers["log"].last_status == "RUNNING"


def test_an_essential_exit_then_the_graceful_stop_keeps_the_pod() -> None:
    """The other containers are stopped through the Pod's active deadline: the kubelet stops
    them and fails the Pod, which stays (its logs too) until the Task is deleted."""
    two = view(APP, LOG)
    start = pod(containers=[running("app"), running("log")])
    exited = pod(containers=[terminated("app", 1), running("log")])
    stopping = pod(containers=[terminated("app", 1), running("log")], active_deadline=1)
    ended = pod(
        containers=[terminated("app", 1), terminated("log", 143)],
        phase="Failed",
        reason="DeadlineExceeded",
        message="Pod was active on the node longer than the specified deadline",
        active_deadline=1,
    )
    steps = follow(
        two,
        [(start, at(1)), (exited, at(10)), (stopping, at(11)), (ended, at(12)), (ended, at(13))],
    )
    assert [o.status.last_status for o in steps] == [
        "RUNNING",
        "STOPPING",
        "STOPPING",
        "STOPPED",
        "STOPPED",
    ]
    assert [o.status.version for o in steps] == [1, 2, 2, 3, 3]
    assert steps[1].actions == (StopPod(30, events.ESSENTIAL_CONTAINER_EXITED),)
    assert not steps[1].actions[0].delete  # the Pod is kept
    assert steps[2].actions == ()  # its deadline is set: the kubelet is stopping it
    assert steps[3].actions == steps[4].actions == ()  # the terminated Pod stays
    final = steps[3].status
    containers = {c.name: c for c in final.containers or ()}
    assert (containers["app"].exit_code, containers["log"].exit_code) == (1, 143)
    assert final.stop_code == "EssentialContainerExited"
    assert final.stopped_reason == events.ESSENTIAL_CONTAINER_EXITED  # not the deadline's
    assert final.stopped_at == at(12)
    assert final.execution_stopped_at == at(10)
    assert condition(final, "Stopped") == ("True", "EssentialContainerExited")
    assert condition(final, "Ready") == ("False", "Stopped")
    assert reasons(steps[3]) == [events.REASON_STOPPED]
    assert not steps[3].wants_pod and not steps[4].changed
    # a stopped task stays put when its Pod goes (its Task deleted, or someone deleted it)
    assert not observe(dataclasses.replace(two, status=final), None, at(99)).changed


def test_a_task_whose_containers_all_exited_is_stopped_and_keeps_its_pod() -> None:
    task = settle(view(), RUNNING_POD, at(1))
    done = observe(task, pod(containers=[terminated("app", 3)], phase="Failed"), at(5))
    assert done.status.last_status == "STOPPED"
    assert done.status.stop_code == "EssentialContainerExited"
    assert done.status.stopped_at == at(5)
    assert done.actions == ()  # nothing to stop, and the Pod (its logs) stays
    assert reasons(done) == [events.REASON_ESSENTIAL_EXITED, events.REASON_STOPPED]


def test_an_out_of_memory_kill_says_so() -> None:
    task = settle(view(), RUNNING_POD, at(1))
    killed = observe(
        task, pod(containers=[terminated("app", 137, reason="OOMKilled")], phase="Failed"), at(5)
    )
    assert killed.status.stopped_reason == events.OUT_OF_MEMORY
    assert (killed.status.containers or [])[0].reason == events.OUT_OF_MEMORY
    assert killed.status.last_status == "STOPPED"
    assert killed.actions == ()


def test_a_non_essential_exit_changes_only_that_container() -> None:
    task = settle(view(APP, LOG), pod(containers=[running("app"), running("log")]), at(1))
    exited = observe(task, pod(containers=[running("app"), terminated("log", 2)]), at(5))
    status = exited.status
    assert status.last_status == "RUNNING" and status.desired_status == "RUNNING"
    assert status.stop_code is None and status.version == (
        task.status.version if task.status else 0
    )
    assert exited.actions == ()
    log = (status.containers or [])[1]
    assert (log.last_status, log.exit_code) == ("STOPPED", 2)
    assert reasons(exited) == [events.REASON_CONTAINER_EXITED]
    assert "code 2" in exited.events[0].message


def test_an_essential_sidecar_that_exited_and_restarted_stops_the_task() -> None:
    proxy = ContainerDefinition(name="proxy", image="envoy:1")
    app = APP.model_copy(
        update={"depends_on": [ContainerDependency(container_name="proxy", condition="START")]}
    )
    task = settle(
        view(proxy, app), pod(sidecars=[running("proxy")], containers=[running("app")]), at(1)
    )
    crashed = observe(
        task, pod(sidecars=[restarted("proxy", 2)], containers=[running("app")]), at(5)
    )
    assert crashed.status.stop_code == "EssentialContainerExited"
    assert crashed.status.last_status == "STOPPING"
    proxy_status = (crashed.status.containers or [])[0]
    assert (proxy_status.last_status, proxy_status.exit_code) == ("STOPPED", 2)


def test_a_non_essential_sidecar_restarted_by_the_kubelet_stays_stopped() -> None:
    proxy = ContainerDefinition(name="proxy", image="envoy:1", essential=False)
    app = APP.model_copy(
        update={"depends_on": [ContainerDependency(container_name="proxy", condition="START")]}
    )
    task = settle(
        view(proxy, app), pod(sidecars=[running("proxy")], containers=[running("app")]), at(1)
    )
    # Running again after the restart, it is still the container that exited, for good.
    for moment in (5, 9):
        seen = observe(
            task, pod(sidecars=[restarted("proxy", 3)], containers=[running("app")]), at(moment)
        )
        task = dataclasses.replace(task, status=seen.status)
        assert seen.status.last_status == "RUNNING"
        assert seen.status.stop_code is None and not seen.actions
        proxy_status = (seen.status.containers or [])[0]
        assert (proxy_status.last_status, proxy_status.exit_code) == ("STOPPED", 3)


def test_a_non_essential_regular_dependency_that_exits_stays_stopped_and_the_task_runs() -> None:
    """A START dependency rendered as a regular container listed first: under the Pod's
    restartPolicy Never it stays terminated, as the task reports it."""
    proxy = ContainerDefinition(name="proxy", image="envoy:1", essential=False)
    app = APP.model_copy(
        update={"depends_on": [ContainerDependency(container_name="proxy", condition="START")]}
    )
    task = settle(view(proxy, app), pod(containers=[running("proxy"), running("app")]), at(1))
    exited = pod(containers=[terminated("proxy", 3), running("app")])
    for moment in (5, 9):
        seen = observe(task, exited, at(moment))
        assert seen.status.last_status == "RUNNING" and seen.status.desired_status == "RUNNING"
        assert seen.status.stop_code is None and not seen.actions
        proxy_status = (seen.status.containers or [])[0]
        assert (proxy_status.last_status, proxy_status.exit_code) == ("STOPPED", 3)
        assert reasons(seen) == ([events.REASON_CONTAINER_EXITED] if moment == 5 else [])
        task = dataclasses.replace(task, status=seen.status)


def test_an_essential_regular_dependency_that_exits_stops_the_task() -> None:
    proxy = ContainerDefinition(name="proxy", image="envoy:1")
    app = APP.model_copy(
        update={"depends_on": [ContainerDependency(container_name="proxy", condition="HEALTHY")]}
    )
    task = settle(view(proxy, app), pod(containers=[running("proxy"), running("app")]), at(1))
    # Its postStart wait gave up: the kubelet killed it (SIGTERM) and started app anyway.
    crashed = observe(task, pod(containers=[terminated("proxy", 143), running("app")]), at(5))
    assert crashed.status.stop_code == "EssentialContainerExited"
    assert crashed.status.last_status == "STOPPING"
    assert crashed.actions == (StopPod(30, events.ESSENTIAL_CONTAINER_EXITED),)
    proxy_status = (crashed.status.containers or [])[0]
    assert (proxy_status.last_status, proxy_status.exit_code) == ("STOPPED", 143)


# ---------------------------------------------------------------------------------------------
# Stopping on request and losing the pod


@pytest.mark.parametrize(
    ("spec_reason", "expected"),
    [(None, events.TASK_STOPPED_BY_USER), ("nightly done", "nightly done")],
)
def test_stop_task_stops_gracefully(spec_reason: str | None, expected: str) -> None:
    slow = APP.model_copy(update={"stop_timeout": 120})
    task = settle(view(slow, LOG), pod(containers=[running("app"), running("log")]), at(1))
    asked = dataclasses.replace(task, desired_status="STOPPED", stopped_reason=spec_reason)
    stopping = observe(asked, pod(containers=[running("app"), running("log")]), at(7))
    status = stopping.status
    assert (status.last_status, status.desired_status) == ("STOPPING", "STOPPED")
    assert (status.stop_code, status.stopped_reason) == ("UserInitiated", expected)
    assert status.stopping_at == at(7) and status.execution_stopped_at is None
    assert stopping.actions == (StopPod(120, expected),)
    assert [(e.type, e.reason, e.message) for e in stopping.events] == [
        ("Normal", events.REASON_STOPPING, expected)
    ]
    assert condition(status, "Ready") == ("False", "Stopping")
    done = observe(dataclasses.replace(asked, status=status), None, at(40))
    assert done.status.last_status == "STOPPED"
    assert [c.exit_code for c in done.status.containers or ()] == [None, None]
    assert [c.last_status for c in done.status.containers or ()] == ["STOPPED", "STOPPED"]
    assert done.status.execution_stopped_at == done.status.stopped_at == at(40)


def test_a_service_stop_uses_the_scheduler_code_and_the_stop_is_never_redecided() -> None:
    task = settle(view(), RUNNING_POD, at(1))
    asked = dataclasses.replace(
        task,
        desired_status="STOPPED",
        stopped_reason="Scaling activity initiated by (deployment ecs-svc/1)",
        requested_stop_code="ServiceSchedulerInitiated",
    )
    stopping = observe(asked, RUNNING_POD, at(2))
    assert stopping.status.stop_code == "ServiceSchedulerInitiated"
    later = dataclasses.replace(asked, status=stopping.status, stopped_reason="something else")
    again = observe(
        later, pod(containers=[terminated("app", 143)], deleting=True, phase="Failed"), at(3)
    )
    assert again.status.stopped_reason == "Scaling activity initiated by (deployment ecs-svc/1)"
    assert again.status.stop_code == "ServiceSchedulerInitiated"
    assert again.status.last_status == "STOPPED"
    assert again.actions == () and reasons(again) == [events.REASON_STOPPED]


def test_deleting_the_task_object_stops_it_like_stop_task() -> None:
    task = settle(view(), RUNNING_POD, at(1))
    deleted = observe(dataclasses.replace(task, deletion_requested=True), RUNNING_POD, at(2))
    assert deleted.status.stop_code == "UserInitiated"
    assert deleted.actions == (StopPod(30, events.TASK_STOPPED_BY_USER),)


def test_stopping_before_the_pod_exists_goes_straight_to_stopped() -> None:
    task = settle(view(), None, at(1))
    stopped = observe(dataclasses.replace(task, desired_status="STOPPED"), None, at(2))
    assert stopped.status.last_status == "STOPPED"
    assert not stopped.wants_pod
    assert stopped.status.started_at is None and stopped.status.pull_started_at is None
    assert stopped.status.stopped_at == at(2)


def test_a_late_pod_of_a_stopped_task_is_removed_without_touching_the_status() -> None:
    task = settle(dataclasses.replace(view(), desired_status="STOPPED"), None, at(2))
    late = observe(task, pod(containers=[waiting("app")]), at(3))
    assert late.actions == (StopPod(30, events.TASK_STOPPED_BY_USER),)
    assert late.status.last_status == "STOPPED"


def test_a_pod_deleted_by_someone_while_running_stops_the_task() -> None:
    task = settle(view(), RUNNING_POD, at(1))
    gone = observe(task, None, at(9))
    assert gone.status.last_status == "STOPPED"
    assert gone.status.stop_code == "TerminationNotice"
    assert gone.status.stopped_reason == events.POD_DELETED
    assert gone.status.execution_stopped_at == gone.status.stopped_at == at(9)
    assert reasons(gone) == [events.REASON_INTERRUPTED, events.REASON_STOPPED]
    assert gone.actions == () and not gone.wants_pod


def test_a_pod_being_deleted_by_someone_is_reported_with_the_kubernetes_cause() -> None:
    task = settle(view(), RUNNING_POD, at(1))
    evicting = pod(
        containers=[running("app")],
        deleting=True,
        extra_conditions=[
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting",
            }
        ],
    )
    evicted = observe(task, evicting, at(5))
    assert evicted.status.stop_code == "TerminationNotice"
    assert (
        evicted.status.stopped_reason == "Task stopped: its pod was evicted: Eviction API: evicting"
    )
    assert evicted.status.last_status == "STOPPING"
    assert evicted.actions == ()


def test_a_running_pod_that_failed_on_its_own_names_the_kubernetes_reason() -> None:
    task = settle(view(), RUNNING_POD, at(1))
    ended = pod(
        containers=[running("app")], phase="Failed", reason="DeadlineExceeded", message="too long"
    )
    failed = observe(task, ended, at(5))
    assert failed.status.stop_code == "TerminationNotice"
    assert failed.status.stopped_reason == (
        "Task stopped: its pod failed: DeadlineExceeded: too long"
    )
    assert failed.status.last_status == "STOPPED"
    assert failed.actions == ()


def test_a_pod_deleted_before_the_task_started_is_a_failure_to_start() -> None:
    task = settle(view(), pod(containers=[waiting("app")]), at(1))
    gone = observe(task, None, at(2))
    assert gone.status.stop_code == "TaskFailedToStart"
    assert gone.status.stopped_reason == events.POD_DELETED_BEFORE_START
    assert gone.status.started_at is None


# ---------------------------------------------------------------------------------------------
# Failing to start


@pytest.mark.parametrize(
    ("reason", "message", "expected"),
    [
        (
            "ErrImagePull",
            "pull access denied for nope",
            "CannotPullContainerError: pull access denied for nope",
        ),
        (
            "ImagePullBackOff",
            "Back-off pulling image",
            "CannotPullContainerError: Back-off pulling image",
        ),
        ("InvalidImageName", "", "CannotPullContainerError: InvalidImageName"),
        (
            "CreateContainerConfigError",
            'secret "db" not found',
            'ResourceInitializationError: secret "db" not found',
        ),
        ("CreateContainerError", "no such file", "CannotStartContainerError: no such file"),
        ("RunContainerError", "exec failed", "CannotStartContainerError: exec failed"),
    ],
)
def test_a_container_that_cannot_start_fails_the_task(
    reason: str, message: str, expected: str
) -> None:
    task = settle(view(), pod(containers=[waiting("app")]), at(1))
    failed = observe(task, pod(containers=[waiting("app", reason, message)]), at(2))
    status = failed.status
    assert (status.stop_code, status.stopped_reason) == ("TaskFailedToStart", expected)
    assert status.last_status == "DEPROVISIONING"  # nothing runs; the pod is being removed
    assert status.started_at is None and status.execution_stopped_at == at(2)
    app = (status.containers or [])[0]
    assert (app.last_status, app.exit_code, app.reason) == ("STOPPED", None, expected)
    assert failed.actions == (StopPod(30, expected),)
    assert [(e.type, e.reason, e.message) for e in failed.events] == [
        ("Warning", events.REASON_FAILED_TO_START, expected)
    ]


def test_a_runtime_start_error_is_a_failure_to_start_without_an_exit_code() -> None:
    task = settle(view(), pod(containers=[waiting("app")]), at(1))
    failed = observe(
        task,
        pod(
            containers=[terminated("app", 128, reason="StartError", message="exec: not found")],
            phase="Failed",
        ),
        at(2),
    )
    assert failed.status.stopped_reason == "CannotStartContainerError: exec: not found"
    assert (failed.status.containers or [])[0].exit_code is None


def test_a_non_essential_container_that_cannot_pull_is_given_up_and_the_task_runs() -> None:
    task = view(APP, LOG)
    observed = observe(
        task, pod(containers=[running("app"), waiting("log", "ErrImagePull", "denied")]), at(1)
    )
    assert observed.status.last_status == "RUNNING"
    assert observed.status.stop_code is None
    log = (observed.status.containers or [])[1]
    assert (log.last_status, log.reason) == ("STOPPED", "CannotPullContainerError: denied")


def test_a_start_failure_decided_by_the_operator_stops_the_task() -> None:
    failed = observe(view(start_failure="TaskFailedToStart: RESOURCE:MEMORY"), None, at(1))
    assert failed.status.last_status == "STOPPED"
    assert failed.status.stop_code == "TaskFailedToStart"
    assert failed.status.stopped_reason == "TaskFailedToStart: RESOURCE:MEMORY"
    assert not failed.wants_pod
    assert condition(failed.status, "Stopped") == ("True", "TaskFailedToStart")


def test_an_unschedulable_pod_fails_after_the_grace() -> None:
    task = view(unschedulable_grace_seconds=30)
    stuck = pod(containers=[waiting("app")], node=None, unschedulable_since=at(0))
    waiting_for_room = observe(task, stuck, at(10))
    assert waiting_for_room.status.last_status == "PENDING"
    assert waiting_for_room.status.stop_code is None
    assert waiting_for_room.recheck_after_seconds == 20
    gave_up = observe(dataclasses.replace(task, status=waiting_for_room.status), stuck, at(30))
    assert gave_up.status.stop_code == "TaskFailedToStart"
    assert gave_up.status.stopped_reason == (
        "TaskFailedToStart: 0/3 nodes are available: 1 Insufficient cpu."
    )
    # Never bound to a node: no kubelet would enforce a deadline, and it has no logs.
    assert gave_up.actions == (StopPod(30, gave_up.status.stopped_reason, delete=True),)
    assert gave_up.recheck_after_seconds is None


def test_a_failed_success_dependency_never_starts_its_dependent() -> None:
    migrate = ContainerDefinition(name="migrate", image="busybox:1.36", essential=False)
    app = APP.model_copy(
        update={"depends_on": [ContainerDependency(container_name="migrate", condition="SUCCESS")]}
    )
    task = settle(
        view(migrate, app),
        pod(init=[running("migrate")], containers=[waiting("app", "PodInitializing")]),
        at(1),
    )
    failed = observe(
        task,
        pod(
            init=[terminated("migrate", 3)],
            containers=[waiting("app", "PodInitializing")],
            phase="Failed",
        ),
        at(2),
    )
    expected = (
        "dependency graph: failed to resolve container ordering dependency [migrate] for target "
        "[app] as dependency did not exit successfully."
    )
    status = failed.status
    assert (status.stop_code, status.stopped_reason) == ("TaskFailedToStart", expected)
    containers = {c.name: c for c in status.containers or ()}
    assert (containers["migrate"].last_status, containers["migrate"].exit_code) == ("STOPPED", 3)
    assert (containers["app"].last_status, containers["app"].exit_code) == ("STOPPED", None)
    assert containers["app"].reason == expected
    assert status.last_status == "STOPPED"  # the Pod failed: it stays, with its logs


def test_a_dependency_that_cannot_pull_never_starts_its_dependent() -> None:
    migrate = ContainerDefinition(name="migrate", image="nope", essential=False)
    app = APP.model_copy(
        update={"depends_on": [ContainerDependency(container_name="migrate", condition="COMPLETE")]}
    )
    failed = observe(
        view(migrate, app),
        pod(
            init=[waiting("migrate", "ErrImagePull", "denied")],
            containers=[waiting("app", "PodInitializing")],
        ),
        at(2),
    )
    assert failed.status.stopped_reason == "CannotPullContainerError: denied"
    app_status = (failed.status.containers or [])[1]
    assert app_status.reason == (
        "dependency graph: failed to resolve container ordering dependency [migrate] for target "
        "[app] because dependency will never start"
    )


def test_a_pod_that_failed_for_its_own_reasons_before_starting() -> None:
    task = settle(view(), pod(containers=[waiting("app")]), at(1))
    failed = observe(
        task,
        pod(
            containers=[waiting("app")],
            phase="Failed",
            reason="UnexpectedAdmissionError",
            message="bad",
        ),
        at(2),
    )
    assert failed.status.stopped_reason == "TaskFailedToStart: UnexpectedAdmissionError: bad"


def test_reasons_are_clipped_to_the_ecs_limit() -> None:
    failed = observe(view(), pod(containers=[waiting("app", "ErrImagePull", "x" * 5000)]), at(1))
    assert len(failed.status.stopped_reason or "") == events.MAX_REASON_LENGTH
    TaskStatus.model_validate(failed.status.model_dump(mode="json"))


# ---------------------------------------------------------------------------------------------
# Health


def test_health_follows_readiness_with_a_startup_window() -> None:
    task = view(CHECKED)
    unready = pod(containers=[running("app", ready=False, since=at(0))])
    ready = pod(containers=[running("app", ready=True, since=at(0))])
    early = observe(task, unready, at(10))
    assert early.status.health_status == "UNKNOWN"
    assert early.recheck_after_seconds == 40  # startPeriod 20 + 3 retries x 10 s
    assert condition(early.status, "Ready") == ("True", "Running")
    healthy = observe(dataclasses.replace(task, status=early.status), ready, at(15))
    assert healthy.status.health_status == "HEALTHY"
    assert (healthy.status.containers or [])[0].health_status == "HEALTHY"
    sick = observe(dataclasses.replace(task, status=healthy.status), unready, at(16))
    assert sick.status.health_status == "UNHEALTHY"
    assert condition(sick.status, "Ready") == ("False", "Unhealthy")
    assert reasons(sick) == [events.REASON_UNHEALTHY]
    assert sick.status.last_status == "RUNNING" and sick.actions == ()  # standalone: runs on
    recovered = observe(dataclasses.replace(task, status=sick.status), ready, at(17))
    assert recovered.status.health_status == "HEALTHY"
    assert reasons(recovered) == [events.REASON_HEALTHY]


def test_a_container_never_ready_after_its_window_is_unhealthy() -> None:
    late = observe(
        view(CHECKED), pod(containers=[running("app", ready=False, since=at(0))]), at(50)
    )
    assert late.status.health_status == "UNHEALTHY"
    assert late.recheck_after_seconds is None


def test_task_health_ignores_non_essential_and_unchecked_containers() -> None:
    sidekick = ContainerDefinition(
        name="log", image="busybox:1.36", essential=False, health_check=CHECK
    )
    plain = ContainerDefinition(name="other", image="busybox:1.36")
    observed = observe(
        view(CHECKED, sidekick, plain),
        pod(
            containers=[
                running("app"),
                running("log", ready=False, since=at(0)),
                running("other", ready=False),
            ]
        ),
        at(100),
    )
    health = {c.name: c.health_status for c in observed.status.containers or ()}
    assert health == {"app": "HEALTHY", "log": "UNHEALTHY", "other": "UNKNOWN"}
    assert observed.status.health_status == "HEALTHY"


def test_without_essential_health_checks_the_task_health_is_unknown() -> None:
    assert observe(view(), RUNNING_POD, at(1)).status.health_status == "UNKNOWN"


HEALTH = st.sampled_from(["HEALTHY", "UNHEALTHY", "UNKNOWN"])


@given(st.lists(st.tuples(st.booleans(), st.booleans(), HEALTH), max_size=10))
def test_health_aggregation_rule(containers: list[tuple[bool, bool, Any]]) -> None:
    result = aggregate_health(containers)
    considered = [h for essential, checked, h in containers if essential and checked]
    assert (result == "UNHEALTHY") == ("UNHEALTHY" in considered)
    assert (result == "HEALTHY") == (bool(considered) and set(considered) == {"HEALTHY"})
    ignored = [(e, c, "UNHEALTHY") if not (e and c) else (e, c, h) for e, c, h in containers]
    assert aggregate_health(ignored) == result


# ---------------------------------------------------------------------------------------------
# Network bindings, node loss, TTL, the Task model


def test_network_bindings_appear_once_running() -> None:
    web = APP.model_copy(update={"port_mappings": [PortMapping(container_port=8080)]})
    ports = {
        "app": [
            {"containerPort": 8080, "protocol": "TCP"},
            {"containerPort": 53, "hostPort": 5353, "protocol": "UDP"},
        ]
    }
    pending = observe(view(web), pod(containers=[waiting("app")], ports=ports), at(1))
    assert not (pending.status.containers or [])[0].network_bindings
    up = observe(view(web), pod(containers=[running("app")], ports=ports), at(2))
    bindings = [
        b.model_dump(by_alias=True) for b in (up.status.containers or [])[0].network_bindings or ()
    ]
    assert bindings == [
        {"bindIP": "10.1.2.3", "containerPort": 8080, "hostPort": 8080, "protocol": "tcp"},
        {"bindIP": "0.0.0.0", "containerPort": 53, "hostPort": 5353, "protocol": "udp"},
    ]


@pytest.mark.parametrize(
    ("the_pod", "the_node", "lost"),
    [
        (pod(containers=[running("app")]), node(), False),
        (pod(containers=[running("app")]), node(ready="False"), False),
        (pod(containers=[running("app")]), node(ready="Unknown"), True),
        (pod(containers=[running("app")]), node(unreachable=True), True),
        (pod(containers=[running("app")]), None, True),
        (pod(containers=[waiting("app")], node=None), None, False),
        (pod(containers=[running("app")], phase="Failed", reason="NodeLost"), node(), True),
    ],
)
def test_is_on_lost_node(
    the_pod: dict[str, Any], the_node: dict[str, Any] | None, lost: bool
) -> None:
    assert is_on_lost_node(the_pod, the_node) is lost


def test_a_lost_node_freezes_the_last_known_state_and_is_reported() -> None:
    task = settle(view(CHECKED), pod(containers=[running("app", ready=True)]), at(1))
    stale = pod(containers=[running("app", ready=False)])
    lost = observe(dataclasses.replace(task, node_lost=True), stale, at(2))
    assert lost.status.last_status == "RUNNING"
    assert lost.status.health_status == "HEALTHY"
    assert lost.status.connectivity == "DISCONNECTED" and lost.status.connectivity_at == at(2)
    assert condition(lost.status, "Ready") == ("False", "NodeLost")
    assert reasons(lost) == [events.REASON_NODE_LOST]
    assert lost.actions == ()
    marked = pod(containers=[running("app")], phase="Failed", reason="NodeLost")
    ended = observe(dataclasses.replace(task, status=lost.status, node_lost=True), marked, at(3))
    assert ended.status.stop_code == "TerminationNotice"
    assert ended.status.stopped_reason == "Task stopped: its node (node node-a) was lost"
    # Its logs are out of reach with the node: the Pod is force-deleted, as before the stop.
    assert ended.actions == (StopPod(0, ended.status.stopped_reason, delete=True),)


def test_stopping_a_task_on_a_lost_node_forces_the_deletion() -> None:
    task = settle(view(), RUNNING_POD, at(1))
    asked = dataclasses.replace(task, desired_status="STOPPED", node_lost=True)
    first = observe(asked, RUNNING_POD, at(2))
    assert first.status.last_status == "STOPPING"
    assert first.actions == (StopPod(0, events.TASK_STOPPED_BY_USER, delete=True),)
    graceful = pod(containers=[running("app")], deleting=True, grace_period=30)
    again = observe(dataclasses.replace(asked, status=first.status), graceful, at(3))
    assert again.actions == (StopPod(0, events.TASK_STOPPED_BY_USER, delete=True),)
    forced = pod(containers=[running("app")], deleting=True, grace_period=0)
    assert observe(dataclasses.replace(asked, status=first.status), forced, at(4)).actions == ()


def test_ttl_after_stopped() -> None:
    stopped = TaskStatus(last_status="STOPPED", stopped_at=at(100))
    assert expires_at(stopped, 3600) == at(3700)
    assert not is_expired(stopped, at(3699), 3600)
    assert is_expired(stopped, at(3700), 3600)
    assert expires_at(TaskStatus(last_status="RUNNING"), 3600) is None
    assert expires_at(None) is None


def test_a_task_view_from_the_task_object() -> None:
    task = Task.model_validate(
        {
            "metadata": {
                "name": "web-1",
                "generation": 3,
                "creationTimestamp": "2025-01-01T12:00:00Z",
                "deletionTimestamp": "2025-01-01T13:00:00Z",
            },
            "spec": {"taskDefinition": "web", "desiredStatus": "STOPPED", "stoppedReason": "done"},
        }
    )
    the_view = TaskView.of(task, [APP], now=at(99))
    assert (the_view.name, the_view.generation, the_view.created_at) == ("web-1", 3, T0)
    assert the_view.deletion_requested and the_view.desired_status == "STOPPED"
    assert the_view.stopped_reason == "done"


def test_conditions_keep_their_transition_time_while_the_status_holds() -> None:
    steps = follow(
        view(), [(None, at(1)), (pod(containers=[waiting("app")]), at(2)), (RUNNING_POD, at(3))]
    )
    ready = [next(c for c in o.status.conditions or () if c.type == "Ready") for o in steps]
    assert [r.last_transition_time for r in ready] == [at(1), at(1), at(3)]
    assert [r.reason for r in ready] == ["Provisioning", "Pending", "Running"]
    stopped = [next(c for c in o.status.conditions or () if c.type == "Stopped") for o in steps]
    assert {s.last_transition_time for s in stopped} == {at(1)}


# ---------------------------------------------------------------------------------------------
# Properties over arbitrary sequences of pod snapshots


def _container_state(name: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.just(waiting(name)),
        st.just(waiting(name, "PodInitializing")),
        st.just(waiting(name, "ErrImagePull", "denied")),
        st.builds(lambda ready: running(name, ready=ready), st.booleans()),
        st.builds(lambda code: terminated(name, code), st.sampled_from([0, 1, 137, 143])),
        st.just(terminated(name, 128, reason="StartError", message="boom")),
    )


SNAPSHOT = st.one_of(
    st.none(),
    st.builds(
        lambda migrate, proxy, app, log, phase, deleting, scheduled: pod(
            init=[migrate],
            sidecars=[proxy],
            containers=[app, log],
            phase=phase,
            deleting=deleting,
            node="node-a" if scheduled else None,
            unschedulable_since=None if scheduled else T0,
        ),
        _container_state("migrate"),
        st.one_of(_container_state("proxy"), st.just(restarted("proxy", 1))),
        _container_state("app"),
        _container_state("log"),
        st.sampled_from([None, "Running", "Pending", "Succeeded", "Failed"]),
        st.booleans(),
        st.booleans(),
    ),
)
FLAGS = st.tuples(st.booleans(), st.booleans(), st.booleans())
TIMESTAMPS = (
    "created_at",
    "pull_started_at",
    "pull_stopped_at",
    "started_at",
    "stopping_at",
    "execution_stopped_at",
    "stopped_at",
)
ORDERED = ("created_at", "pull_started_at", "pull_stopped_at", "started_at", "stopped_at")


def _full_task() -> TaskView:
    migrate = ContainerDefinition(name="migrate", image="busybox:1.36", essential=False)
    proxy = ContainerDefinition(name="proxy", image="envoy:1", health_check=CHECK)
    app = CHECKED.model_copy(
        update={
            "depends_on": [
                ContainerDependency(container_name="migrate", condition="SUCCESS"),
                ContainerDependency(container_name="proxy", condition="HEALTHY"),
            ]
        }
    )
    return view(migrate, proxy, app, LOG)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(SNAPSHOT, FLAGS), min_size=1, max_size=12))
def test_the_lifecycle_only_moves_forward(
    steps: list[tuple[dict[str, Any] | None, tuple[bool, bool, bool]]],
) -> None:
    task = _full_task()
    previous: TaskStatus | None = None
    stop_asked = False
    for index, (snapshot, (ask_stop, node_lost, deactivating)) in enumerate(steps):
        stop_asked = stop_asked or ask_stop  # the CRD forbids STOPPED -> RUNNING
        task = dataclasses.replace(
            task,
            desired_status="STOPPED" if stop_asked else "RUNNING",
            node_lost=node_lost,
            deactivating=deactivating,
        )
        observation = observe(task, snapshot, at(10 * (index + 1)))
        status = observation.status
        TaskStatus.model_validate(status.model_dump(mode="json"))  # within every schema bound
        assert status.last_status is not None
        if previous is not None and previous.last_status is not None:
            old, new = TASK_ORDER.index(previous.last_status), TASK_ORDER.index(status.last_status)
            assert new >= old
            assert status.version == (previous.version or 0) + (1 if new > old else 0)
            for name in TIMESTAMPS:
                if getattr(previous, name) is not None:
                    assert getattr(status, name) == getattr(previous, name), name
            if previous.stop_code is not None:
                assert (status.stop_code, status.stopped_reason) == (
                    previous.stop_code,
                    previous.stopped_reason,
                )
            for before, after in zip(
                previous.containers or (), status.containers or (), strict=True
            ):
                order = ("PENDING", "RUNNING", "STOPPED")
                assert order.index(after.last_status or "PENDING") >= order.index(
                    before.last_status or "PENDING"
                )
                if before.exit_code is not None:
                    assert after.exit_code == before.exit_code
            if not observation.changed:
                assert observation.events == ()
        present = [getattr(status, name) for name in ORDERED if getattr(status, name) is not None]
        assert present == sorted(present)
        if status.last_status == "STOPPED":
            assert status.stop_code is not None and status.stopped_at is not None
            assert not observation.wants_pod
        if status.started_at is None:
            assert status.stop_code != "EssentialContainerExited" or any(
                c.exit_code is not None for c in status.containers or ()
            )
        if observation.wants_pod:
            assert snapshot is None and status.last_status == "PROVISIONING"
        assert all(isinstance(a, StopPod) for a in observation.actions)
        if observation.actions:
            assert snapshot is not None and status.desired_status == "STOPPED"
        # observing the same world twice is idempotent: the second look writes nothing
        again = observe(dataclasses.replace(task, status=status), snapshot, at(10 * (index + 1)))
        assert not again.changed and again.events == ()
        previous = status
        task = dataclasses.replace(task, status=status)
