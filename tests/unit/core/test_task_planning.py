"""The Task controller's decisions (core/task_planning.py): the resolve grace, the Pod name
conflict, the time to live, held-back progress writes, load-balancer activating and
deactivating, a deleted Pod's final state, and what a launch needs and becomes."""

import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecs_operator.core import events, labels, launches
from ecs_operator.core.labels import OWNER_API_VERSION
from ecs_operator.core.names import kubernetes_name
from ecs_operator.core.placement import ContainerInstance
from ecs_operator.core.render import RenderedPod, SecretReference, TaskRoleAccount
from ecs_operator.core.revisions import (
    ResolvedRevision,
    Revision,
    controller_revision_manifest,
    revision_record_from_object,
)
from ecs_operator.core.security import SecurityPolicy
from ecs_operator.core.task_planning import (
    NAMESPACE_WAIT_SECONDS,
    PREVIOUS_POD_WAIT_SECONDS,
    PROGRESS_WRITE_WINDOW_SECONDS,
    RESOLVE_RETRY_SECONDS,
    Launched,
    NamespaceReads,
    NotLaunched,
    PodLaunch,
    PodReads,
    PodStop,
    ServiceReads,
    TaskPlan,
    TaskState,
    Timing,
    drain_released_unreadable,
    looks_up_targets,
    namespace_reads,
    place_pod,
    plan_task,
    revision_reference,
    secret_failure,
    task_state,
)
from ecs_operator.models.common import UnsupportedField
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.service import ServiceSpec
from ecs_operator.models.task import Task, TaskStatus
from ecs_operator.models.taskdefinition import TaskDefinitionSpec
from support.podfactory import T0, at, node, pod, running, terminated, waiting

UID = "0a1b2c3d-0000-4000-8000-00000000abcd"
APP = {"name": "app", "image": "busybox:1.36", "memory": 64}


def revision(**spec: Any) -> Revision:
    data = {"containerDefinitions": [APP]} | spec
    manifest = controller_revision_manifest("web", "default", "td-uid", 1, 1, data)
    return Revision(revision_record_from_object(manifest), TaskDefinitionSpec.model_validate(data))


def task_body(
    *,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    service: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": "web-1",
        "namespace": "default",
        "uid": UID,
        "generation": 1,
        "creationTimestamp": T0.isoformat(),
        "annotations": annotations or {},
    }
    if service:
        metadata["ownerReferences"] = [{"kind": "Service", "name": service, "uid": "svc-uid"}]
    body: dict[str, Any] = {
        "metadata": metadata,
        "spec": {"taskDefinition": "web"} | spec,
    }
    if status is not None:
        body["status"] = status
    return body


def state(body: dict[str, Any] | None = None, **fields: Any) -> TaskState:
    body = body or task_body()
    defaults: dict[str, Any] = {
        "resolved": ResolvedRevision(revision()),
        "policy": SecurityPolicy(),
        "now": at(1),
        "operator_started_at": T0 - timedelta(hours=1),
        "resolve_grace_seconds": 10.0,
    }
    return TaskState(body=body, task=Task.model_validate(body), **(defaults | fields))


def own(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` as the Pod of the task (an ownerReference to it by uid)."""
    manifest["metadata"]["ownerReferences"] = [{"kind": "Task", "name": "web-1", "uid": UID}]
    return manifest


def written(plan: TaskPlan) -> TaskStatus:
    assert plan.status is not None, plan
    return plan.status


def after_write(current: TaskState, plan: TaskPlan) -> TaskState:
    """The state once the plan's status is stored."""
    status = written(plan).model_dump(mode="json", by_alias=True, exclude_none=True)
    return state(current.body | {"status": status}, **_fields(current))


def _fields(current: TaskState) -> dict[str, Any]:
    return {
        name: getattr(current, name)
        for name in TaskState.__dataclass_fields__
        if name not in ("body", "task")
    }


# ---------------------------------------------------------------------------------------------
# Resolution


def test_a_missing_revision_is_waited_for_within_the_grace_then_fails_the_task() -> None:
    missing = ResolvedRevision(error=events.family_missing("web"))
    plan = plan_task(state(resolved=missing, now=at(5)))
    assert written(plan).last_status == "PROVISIONING"
    assert (plan.launch, plan.requeue_after) == (None, RESOLVE_RETRY_SECONDS)
    failed = written(plan_task(state(resolved=missing, now=at(10))))
    assert (failed.last_status, failed.stop_code) == ("STOPPED", "TaskFailedToStart")
    assert failed.stopped_reason == 'ClientException: task definition "web" does not exist'


def test_the_grace_runs_from_the_operator_start_when_it_is_later() -> None:
    missing = ResolvedRevision(error=events.family_missing("web"))
    restarted = state(resolved=missing, now=at(105), operator_started_at=at(100))
    assert written(plan_task(restarted)).last_status == "PROVISIONING"
    assert written(plan_task(replace(restarted, now=at(110)))).last_status == "STOPPED"


def test_a_refused_task_definition_says_why_rather_than_that_it_has_no_revision() -> None:
    refused = ResolvedRevision(
        error=events.family_pending("web"),
        rejection=events.family_not_accepted("web", "spec.cpu: too small"),
    )
    failed = written(plan_task(state(resolved=refused, now=at(30))))
    assert failed.stopped_reason == (
        'ClientException: task definition "web" is not accepted: spec.cpu: too small'
    )


def test_the_revision_is_read_back_from_status_or_from_the_tasks_own_pod() -> None:
    body = task_body()
    task = Task.model_validate(body)
    annotated = own(pod(containers=[running("app")]))
    annotated["metadata"]["annotations"][labels.TASK_DEFINITION_ANNOTATION] = "web:3"
    assert revision_reference(body, task, None, None) == ("web", True)
    assert revision_reference(body, task, annotated, None) == ("web:3", False)
    foreign = pod(containers=[running("app")])
    foreign["metadata"]["annotations"][labels.TASK_DEFINITION_ANNOTATION] = "web:3"
    assert revision_reference(body, task, foreign, None) == ("web", True)
    assert revision_reference(body, task, None, "svc") == ("web", False)
    resolved = task_body(status={"taskDefinitionArn": "web:2"})
    assert revision_reference(resolved, Task.model_validate(resolved), annotated, None) == (
        "web:2",
        False,
    )


# ---------------------------------------------------------------------------------------------
# The Pod's name


def test_a_pod_of_the_tasks_name_that_is_not_its_own_fails_the_task_and_is_left_alone() -> None:
    plan = plan_task(state(pod=pod(containers=[running("app")]), node=node()))
    status = written(plan)
    assert (status.last_status, status.stop_code) == ("STOPPED", "TaskFailedToStart")
    assert status.stopped_reason == events.pod_name_taken("web-1")
    assert (plan.launch, plan.stop_pod) == (None, None)


def test_a_previous_tasks_pod_still_stopping_is_waited_for() -> None:
    stopping = pod(containers=[running("app")], deleting=True)
    assert plan_task(state(pod=stopping)) == TaskPlan(requeue_after=PREVIOUS_POD_WAIT_SECONDS)


def test_the_kept_pod_of_a_deleted_task_of_the_same_name_is_waited_for() -> None:
    """A stopped task keeps its terminated Pod until its Task is deleted; a Task created again
    under that name at once (`kubectl delete` then `apply`) finds it not yet collected: owned
    by a Task of its name that is gone (another uid), garbage collection is removing it."""
    kept = pod(containers=[terminated("app", 0)], phase="Succeeded")
    kept["metadata"]["ownerReferences"] = [
        {"apiVersion": OWNER_API_VERSION, "kind": "Task", "name": "web-1", "uid": "earlier-uid"}
    ]
    assert plan_task(state(pod=kept)) == TaskPlan(requeue_after=PREVIOUS_POD_WAIT_SECONDS)
    # Owned by anything else as well, or by a Task of another name: not ours to wait for.
    for other in (
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs"},
        {"apiVersion": OWNER_API_VERSION, "kind": "Task", "name": "web-2", "uid": "x"},
    ):
        kept["metadata"]["ownerReferences"] = [other]
        status = written(plan_task(state(pod=kept)))
        assert status.stopped_reason == events.pod_name_taken("web-1")


# ---------------------------------------------------------------------------------------------
# Time to live


def stopped_body(ttl: int) -> dict[str, Any]:
    status = {"lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stopCode": "UserInitiated"}
    status |= {"stoppedAt": T0.isoformat(), "createdAt": T0.isoformat()}
    return task_body(status=status, desiredStatus="STOPPED", ttlSecondsAfterStopped=ttl)


def test_a_stopped_task_is_looked_at_again_when_its_time_to_live_ends_then_deleted() -> None:
    waiting_plan = plan_task(state(stopped_body(60), now=at(20)))
    assert waiting_plan.requeue_after == 40
    assert not waiting_plan.delete_task
    assert plan_task(state(stopped_body(60), now=at(60))) == TaskPlan(delete_task=True)


# ---------------------------------------------------------------------------------------------
# Launching


def test_a_new_task_launches_a_pod_with_what_it_needs() -> None:
    secret = {"name": "TOKEN", "valueFrom": "db-creds:token"}
    definition = revision(
        taskRoleArn="arn:aws:iam::1:role/reader",
        containerDefinitions=[APP | {"secrets": [secret]}],
    )
    body = task_body(annotations={labels.PLACED_NODE_ANNOTATION: "node-b"})
    plan = plan_task(state(body, resolved=ResolvedRevision(definition)))
    launch = plan.launch
    assert launch is not None and plan.status is None
    assert (launch.group, launch.service_account, launch.placed_node) == (
        "family:web",
        TaskRoleAccount("arn:aws:iam::1:role/reader", "reader", "spec.taskRoleArn"),
        "node-b",
    )
    assert [reference.secret for reference in launch.secrets] == ["db-creds"]


def test_no_pod_is_launched_in_a_namespace_being_deleted() -> None:
    """The API would refuse the Pod (and the event): the task waits for the namespace's
    deletion to take it, rather than failing to start."""
    plan = plan_task(state(namespace_terminating=True))
    assert plan.launch is None
    assert plan_task(state()).launch is not None


def test_an_unseen_namespace_is_waited_for_within_the_grace() -> None:
    assert plan_task(state(namespace_seen=False)) == TaskPlan(requeue_after=NAMESPACE_WAIT_SECONDS)
    assert plan_task(state(namespace_seen=False, now=at(10))).launch is not None


def test_what_the_policy_refuses_fails_the_task_without_a_launch() -> None:
    privileged = revision(containerDefinitions=[APP | {"privileged": True}])
    plan = plan_task(state(resolved=ResolvedRevision(privileged)))
    status = written(plan)
    assert plan.launch is None
    assert (status.last_status, status.stop_code) == ("STOPPED", "TaskFailedToStart")
    assert (status.stopped_reason or "").startswith("ClientException: ")
    assert "privileged" in (status.stopped_reason or "")


def test_a_failed_launch_stops_the_task_with_its_reason() -> None:
    refused = events.pod_refused("pods is forbidden")
    status = written(plan_task(state(launched=NotLaunched(refused))))
    assert (status.last_status, status.stopped_reason) == ("STOPPED", refused)


def test_a_launched_pod_is_reported_pending_only_once_the_window_passes() -> None:
    pending = own(pod(containers=[waiting("app")]))
    launched = Launched(pending, node())
    assert plan_task(state(launched=launched)) == TaskPlan(
        requeue_after=PROGRESS_WRITE_WINDOW_SECONDS
    )
    soon = state(pod=pending, node=node(), since_launch=0.2)
    assert plan_task(soon) == TaskPlan(requeue_after=PROGRESS_WRITE_WINDOW_SECONDS)
    late = written(plan_task(replace(soon, since_launch=PROGRESS_WRITE_WINDOW_SECONDS + 0.1)))
    assert (late.last_status, late.availability_zone) == ("PENDING", "zone-a")


def test_running_is_never_held_back() -> None:
    serving = own(pod(containers=[running("app")]))
    plan = plan_task(state(pod=serving, node=node(), since_launch=0.1))
    assert written(plan).last_status == "RUNNING"


def test_what_the_pod_does_not_honour_is_said_at_launch() -> None:
    unsupported = [UnsupportedField(field="spec.ulimits", reason="not available")]
    launched = Launched(own(pod(containers=[waiting("app")])), node(), unsupported)
    plan = plan_task(state(launched=launched))
    assert written(plan).unsupported == unsupported
    assert [(e.type, e.reason) for e in plan.events][-1] == (
        "Warning",
        events.REASON_UNSUPPORTED_FIELDS,
    )


def test_a_service_task_posts_only_its_warnings() -> None:
    running_pod = own(pod(containers=[running("app")]))
    standalone = plan_task(state(pod=running_pod, node=node()))
    assert [e.reason for e in standalone.events] == [events.REASON_RUNNING]
    service_body = task_body(service="svc")
    service_task = plan_task(state(service_body, pod=running_pod, node=node(), service="svc"))
    assert written(service_task).last_status == "RUNNING"
    assert service_task.events == ()


def launch_of(**spec: Any) -> PodLaunch:
    plan = plan_task(state(resolved=ResolvedRevision(revision(**spec))))
    assert plan.launch is not None
    return plan.launch


def instance(name: str = "node-a") -> ContainerInstance:
    return ContainerInstance(
        name=name,
        zone="zone-a",
        attributes={},
        registered_cpu_millicores=4000,
        remaining_cpu_millicores=4000,
        registered_memory_mib=8192,
        remaining_memory_mib=8192,
    )


def test_a_missing_secret_or_key_names_the_field() -> None:
    value_from = "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf:password::"
    reference = SecretReference(
        secret="prod-db-1", key="password", field="spec.x.valueFrom", value_from=value_from
    )
    assert secret_failure("prod", reference, None) == NotLaunched(
        f'ResourceInitializationError: unable to retrieve secret "{value_from}" '
        '(spec.x.valueFrom): Secret "prod-db-1" not found in namespace prod'
    )
    assert secret_failure("prod", reference, {"data": {"user": "x"}}) == NotLaunched(
        f'ResourceInitializationError: unable to retrieve secret "{value_from}" '
        '(spec.x.valueFrom): Secret "prod-db-1" has no key "password"'
    )
    assert secret_failure("prod", reference, {"stringData": {"password": "x"}}) is None


def test_a_missing_task_role_account_fails_before_placement() -> None:
    role = "arn:aws:iam::1:role/ecsTaskRole"
    launch = launch_of(taskRoleArn=role)
    failed = place_pod(launch, None, [instance()], random.Random(1))
    account = kubernetes_name("ecsTaskRole")
    assert failed == NotLaunched(
        "ResourceInitializationError: unable to assume the task role "
        f'"{role}" (spec.taskRoleArn): ServiceAccount "{account}" not found in namespace default'
    )


def test_a_task_no_node_fits_is_not_placed() -> None:
    failed = place_pod(launch_of(), None, [], random.Random(1))
    assert isinstance(failed, NotLaunched)
    assert failed.reason.startswith("TaskFailedToStart: ")
    assert failed.placement_failure is not None


def test_a_placed_pod_runs_on_the_chosen_node() -> None:
    placed = place_pod(launch_of(), None, [instance("node-b")], random.Random(1))
    assert isinstance(placed, RenderedPod)
    assert placed.manifest["metadata"]["name"] == "web-1"
    assert "node-b" in str(placed.manifest["spec"]["affinity"])


# ---------------------------------------------------------------------------------------------
# A deleted Pod's final state


def test_a_pod_deleted_before_the_reconcile_still_reports_its_exit_codes() -> None:
    running_body = task_body(status={"lastStatus": "RUNNING", "desiredStatus": "RUNNING"})
    ended = own(pod(containers=[terminated("app", 3)], phase="Failed"))
    status = written(plan_task(state(running_body, pod_tombstone=ended)))
    assert (status.last_status, status.stop_code) == ("STOPPED", "EssentialContainerExited")
    assert [c.exit_code for c in status.containers or ()] == [3]


def test_a_withdrawn_create_is_no_sign_that_a_pod_ran() -> None:
    withdrawn = own(pod(containers=[]))
    del withdrawn["metadata"]["uid"]
    assert plan_task(state(pod_tombstone=withdrawn)).launch is not None


# ---------------------------------------------------------------------------------------------
# Load balancing


ENTRY = {"loadBalancerName": "web-lb", "containerName": "app", "containerPort": 8080}
SERVICE = ServiceSpec.model_validate(
    {"taskDefinition": "web", "desiredCount": 1, "loadBalancers": [ENTRY]}
)


def load_balancer(*targets: dict[str, Any]) -> LoadBalancer:
    raw: dict[str, Any] = {
        "metadata": {"name": "web-lb", "namespace": "default", "uid": "lb-uid"},
        "spec": {"listeners": [{"port": 80}]},
        "status": {"targets": list(targets)},
    }
    return LoadBalancer.model_validate(raw)


HEALTHY = {
    "id": "0a1b2c3d000040008000000000000abcd",
    "task": "web-1",
    "service": "svc",
    "ip": "10.1.2.3",
    "port": 8080,
    "state": "healthy",
    "registeredAt": T0.isoformat(),
}


def balanced(body: dict[str, Any], lb: LoadBalancer, **fields: Any) -> TaskState:
    serving = own(pod(containers=[running("app")]))
    facts: dict[str, Any] = {
        "pod": serving,
        "node": node(),
        "service": "svc",
        "service_spec": SERVICE,
        "load_balancers": {"web-lb": lb},
    }
    return state(body, **(facts | fields))


def test_a_load_balanced_task_is_activating_until_registered() -> None:
    plan = plan_task(balanced(task_body(service="svc"), load_balancer()))
    assert written(plan).last_status == "ACTIVATING"
    registered = plan_task(balanced(task_body(service="svc"), load_balancer(HEALTHY)))
    assert written(registered).last_status == "RUNNING"


def stopping_body(stop_code: str) -> dict[str, Any]:
    running_status = {"lastStatus": "RUNNING", "desiredStatus": "RUNNING"}
    annotations = {labels.STOP_CODE_ANNOTATION: stop_code}
    return task_body(
        status=running_status, annotations=annotations, service="svc", desiredStatus="STOPPED"
    )


def test_a_stopping_load_balanced_task_keeps_its_pod_while_its_targets_drain() -> None:
    plan = plan_task(balanced(stopping_body("ServiceSchedulerInitiated"), load_balancer(HEALTHY)))
    assert written(plan).last_status == "DEACTIVATING"
    assert plan.stop_pod is None
    drained = plan_task(balanced(stopping_body("ServiceSchedulerInitiated"), load_balancer()))
    assert written(drained).last_status == "STOPPING"
    assert drained.stop_pod == PodStop("0000-1111", 30)


def test_a_drained_task_stops_its_pod_and_holds_stopping_back_for_a_moment() -> None:
    """DEACTIVATING recorded the stop (desiredStatus, stopCode, stoppingAt): once its targets
    drained, its Pod is stopped at once and STOPPING waits the progress window for the Pod to
    end, STOPPED being then the one write; a Pod still running after the window shows
    STOPPING."""
    body = stopping_body("ServiceSchedulerInitiated")
    body["metadata"]["finalizers"] = [labels.DRAIN_FINALIZER]
    draining = balanced(body, load_balancer(HEALTHY))
    deactivating = after_write(draining, plan_task(draining))
    assert deactivating.task.status is not None
    assert deactivating.task.status.last_status == "DEACTIVATING"
    drained = replace(deactivating, load_balancers={"web-lb": load_balancer()})
    assert plan_task(drained) == TaskPlan(
        stop_pod=PodStop("0000-1111", 30), requeue_after=PROGRESS_WRITE_WINDOW_SECONDS
    )
    stopping = own(pod(containers=[running("app")], active_deadline=1))
    soon = replace(drained, pod=stopping, since_stop=0.2)
    assert plan_task(soon) == TaskPlan(requeue_after=PROGRESS_WRITE_WINDOW_SECONDS)
    late = plan_task(replace(soon, since_stop=PROGRESS_WRITE_WINDOW_SECONDS + 0.1))
    assert written(late).last_status == "STOPPING"
    assert late.stop_pod is None
    ended = own(pod(containers=[terminated("app", 143)], phase="Failed", active_deadline=1))
    stopped = plan_task(replace(soon, pod=ended))
    status = written(stopped)
    assert (status.last_status, status.stop_code) == ("STOPPED", "ServiceSchedulerInitiated")
    assert status.stopping_at == deactivating.task.status.stopping_at
    assert stopped.drain_finalizer is False


def test_a_stop_not_yet_recorded_is_written_before_its_pod_stops() -> None:
    """STOPPING that carries the stop decision itself is never held back: status first, so
    that a restart never mistakes the operator's own Pod stop for someone else's."""
    plan = plan_task(balanced(stopping_body("TerminationNotice"), load_balancer(HEALTHY)))
    assert (written(plan).last_status, written(plan).desired_status) == ("STOPPING", "STOPPED")
    assert plan.stop_pod is not None


def test_a_forced_stop_does_not_wait_for_draining() -> None:
    plan = plan_task(balanced(stopping_body("TerminationNotice"), load_balancer(HEALTHY)))
    assert written(plan).last_status == "STOPPING"
    assert plan.stop_pod is not None


def deleted(body: dict[str, Any], *, held: bool = True) -> dict[str, Any]:
    """`body` being deleted (garbage collection after its Service's deletion, say)."""
    metadata = body["metadata"] | {"deletionTimestamp": at(1).isoformat()}
    if held:
        metadata["finalizers"] = [labels.DRAIN_FINALIZER]
    return body | {"metadata": metadata}


RUNNING_STATUS = {"lastStatus": "RUNNING", "desiredStatus": "RUNNING"}
DRAINING = HEALTHY | {"state": "draining", "drainingSince": at(0).isoformat()}


def test_a_load_balanced_service_task_gets_the_drain_finalizer_until_it_stopped() -> None:
    """Added to one created without it (by an earlier version), removed once STOPPED; a task
    of a Service without load balancers never holds it."""
    running = task_body(status=RUNNING_STATUS, service="svc")
    assert plan_task(balanced(running, load_balancer(HEALTHY))).drain_finalizer is True
    held = running | {"metadata": running["metadata"] | {"finalizers": [labels.DRAIN_FINALIZER]}}
    assert plan_task(balanced(held, load_balancer(HEALTHY))).drain_finalizer is None
    stopped = {"lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stopCode": "UserInitiated"}
    ended = held | {"status": RUNNING_STATUS | stopped}
    assert plan_task(state(ended, service="svc", service_spec=SERVICE)).drain_finalizer is False
    plain = ServiceSpec.model_validate({"taskDefinition": "web", "desiredCount": 1})
    assert plan_task(state(running, service="svc", service_spec=plain)).drain_finalizer is None


def test_a_deleted_task_of_a_deleted_service_holds_its_pod_and_finalizer_while_it_drains() -> None:
    """Its Service gone (garbage collection deletes the task): DEACTIVATING, stopped by the
    scheduler with DeleteService's reason, Pod untouched while a target of it drains; then its
    Pod stops and the finalizer goes, and with it the Task."""
    body = deleted(task_body(status=RUNNING_STATUS, service="svc"))
    draining = balanced(body, load_balancer(DRAINING), service_spec=None, service_gone=True)
    plan = plan_task(draining)
    status = written(plan)
    assert (status.last_status, status.desired_status) == ("DEACTIVATING", "STOPPED")
    assert (status.stop_code, status.stopped_reason) == (
        "ServiceSchedulerInitiated",
        events.service_deleting("svc"),
    )
    assert plan.stop_pod is None
    assert plan.drain_finalizer is None
    drained = plan_task(replace(after_write(draining, plan), load_balancers={}))
    assert drained.stop_pod is not None
    assert drained.drain_finalizer is False
    assert drained.status is None  # STOPPING held back: the Task goes with its finalizer


def test_a_deactivating_task_looks_again_when_its_targets_will_have_drained() -> None:
    """Its Pod stops once the deregistration delay is over, whether or not the LoadBalancer's
    controller has removed the target by then; a target not yet draining sets no moment (its
    draining wakes the task)."""
    body = task_body(status=RUNNING_STATUS, service="svc", desiredStatus="STOPPED")
    lb = load_balancer(DRAINING)
    delay = lb.spec.deregistration_delay_seconds
    plan = plan_task(balanced(body, lb, now=at(1)))
    assert written(plan).last_status == "DEACTIVATING"
    assert plan.requeue_after == pytest.approx(delay - 1)
    later = after_write(balanced(body, lb, now=at(1)), plan)
    drained = plan_task(replace(later, now=at(delay)))
    assert drained.stop_pod is not None  # the target is still listed, draining: over all the same
    assert plan_task(balanced(body, load_balancer(HEALTHY))).requeue_after is None


def test_a_deleted_task_waits_for_a_target_not_yet_draining() -> None:
    """Deleted while its target is still healthy (the LoadBalancer has not seen the deletion
    yet): the finalizer holds until the target drained."""
    body = deleted(task_body(status=RUNNING_STATUS, service="svc"))
    plan = plan_task(balanced(body, load_balancer(HEALTHY)))
    assert written(plan).last_status == "DEACTIVATING"
    assert (plan.stop_pod, plan.drain_finalizer) == (None, None)


@pytest.mark.parametrize(
    "why",
    ["namespace terminating", "load balancer gone", "node lost", "never registered"],
)
def test_a_deleted_task_lets_go_at_once_when_nothing_can_drain(why: str) -> None:
    """Its namespace is being deleted (its LoadBalancers go too), its LoadBalancer is gone, its
    node was lost (a forced stop), or it never had a target: the finalizer goes at once."""
    annotations = {labels.STOP_CODE_ANNOTATION: "TerminationNotice"} if why == "node lost" else {}
    body = deleted(task_body(status=RUNNING_STATUS, service="svc", annotations=annotations))
    lb = load_balancer() if why == "never registered" else load_balancer(DRAINING)
    fields: dict[str, Any] = {
        "namespace terminating": {"namespace_terminating": True},
        "load balancer gone": {"load_balancers": {}},
    }.get(why, {})
    plan = plan_task(balanced(body, lb, **fields))
    assert plan.drain_finalizer is False
    assert written(plan).last_status == "STOPPING"


def test_a_deleted_stopped_task_is_not_deleted_again_but_let_go() -> None:
    """Its time to live over while it is already being deleted (held by the finalizer): the
    finalizer goes, no second delete."""
    stopped = {"lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stopCode": "UserInitiated"}
    ended = RUNNING_STATUS | stopped | {"stoppedAt": T0.isoformat()}
    body = deleted(task_body(status=ended, service="svc", ttlSecondsAfterStopped=0))
    plan = plan_task(state(body, now=at(3600), service="svc", service_spec=SERVICE))
    assert not plan.delete_task
    assert plan.drain_finalizer is False


# ---------------------------------------------------------------------------------------------
# A run (RunTask's count): the first Task launches the others


def first_of_run(count: int = 3, **spec: Any) -> dict[str, Any]:
    """Task web-1 with `count`, running its own Pod."""
    return task_body(count=count, **spec)


def run_state(
    body: dict[str, Any], members: dict[str, dict[str, Any] | None] | None = None, **fields: Any
) -> TaskState:
    """`body` running its Pod; `members`: the run's other Tasks as cached (default none)."""
    names = [name for _, name in launches.run_task_names("web-1", body["spec"]["count"])]
    cached = dict.fromkeys(names) | (members or {})
    serving = own(pod(containers=[running("app")]))
    return state(body, pod=serving, node=node(), run_members=cached, **fields)


def member(body: dict[str, Any], ordinal: int, **status: Any) -> dict[str, Any]:
    """The run's `ordinal`th Task as the operator created it, with `status`."""
    manifest = launches.run_task_manifest(body, ordinal, f"web-1-{ordinal}", "web:1")
    return manifest | {"status": status}


def test_the_first_task_of_a_run_launches_the_others_on_its_revision() -> None:
    body = first_of_run(3, startedBy="cron")
    plan = plan_task(run_state(body))
    assert plan.run is not None
    assert plan.run.label == "web-1"
    assert [m["metadata"]["name"] for m in plan.run.create] == ["web-1-2", "web-1-3"]
    for manifest in plan.run.create:
        assert manifest["spec"] == {"taskDefinition": "web:1", "startedBy": "cron"}
        assert manifest["metadata"]["ownerReferences"][0]["uid"] == UID
    # Not recorded yet: the creates are judged by the next plan.
    assert written(plan).launched_count is None


def test_the_tasks_of_a_run_are_launched_with_the_first_s_launch() -> None:
    """Right after the first Task's Pod is created (its status write held back a moment),
    the others are created in the same reconcile."""
    launched = Launched(own(pod(containers=[waiting("app")])), node())
    plan = plan_task(replace(run_state(first_of_run(2)), launched=launched, pod=None))
    assert plan.status is None and plan.requeue_after == PROGRESS_WRITE_WINDOW_SECONDS
    assert plan.run is not None and len(plan.run.create) == 1


def test_only_the_missing_tasks_of_a_run_are_created_then_the_run_is_recorded() -> None:
    body = first_of_run(3)
    body["metadata"]["labels"] = {labels.RUN_LABEL: "web-1"}
    partial = plan_task(run_state(body, {"web-1-2": member(body, 2)}))
    assert partial.run is not None and partial.run.label is None
    assert [m["metadata"]["name"] for m in partial.run.create] == ["web-1-3"]
    done = plan_task(run_state(body, {"web-1-2": member(body, 2), "web-1-3": member(body, 3)}))
    status = written(done)
    assert done.run is None and status.launched_count == 3
    [condition] = [c for c in status.conditions or () if c.type == "TasksLaunched"]
    assert (condition.status, condition.reason) == ("True", "AllLaunched")
    assert condition.message == "launched 3 of 3 tasks: web-1, web-1-2, web-1-3"
    assert (events.REASON_TASKS_LAUNCHED, condition.message) in [
        (e.reason, e.message) for e in done.events
    ]


def test_a_recorded_run_never_creates_a_task_again() -> None:
    """A user deleted a task of the run after it was recorded: it is not created again."""
    body = first_of_run(3, status={"launchedCount": 3, "taskDefinitionArn": "web:1"})
    assert plan_task(run_state(body)).run is None


def test_a_name_held_by_another_object_is_reported_never_adopted() -> None:
    body = first_of_run(3)
    foreign = member(body, 3)
    foreign["metadata"]["ownerReferences"] = []
    plan = plan_task(run_state(body, {"web-1-2": member(body, 2), "web-1-3": foreign}))
    status = written(plan)
    assert plan.run is None and status.launched_count == 2
    [condition] = [c for c in status.conditions or () if c.type == "TasksLaunched"]
    assert (condition.status, condition.reason) == ("False", "NameTaken")
    taken = events.run_task_name_taken("web-1-3", "it has no owner")
    assert taken in condition.message
    assert ("Warning", events.REASON_TASK_NAME_TAKEN, taken) in [
        (e.type, e.reason, e.message) for e in plan.events
    ]
    again = plan_task(
        after_write(run_state(body, {"web-1-2": member(body, 2), "web-1-3": foreign}), plan)
    )
    assert (again.status, again.events, again.run) == (None, (), None)


def test_a_name_still_held_by_an_earlier_run_s_task_is_waited_for() -> None:
    """`kubectl delete` then `apply` of the first Task: garbage collection is still removing
    the earlier run's tasks, owned by a Task of this name with another uid."""
    body = first_of_run(2)
    earlier = member(body, 2)
    earlier["metadata"]["ownerReferences"][0]["uid"] = "earlier-uid"
    plan = plan_task(run_state(body, {"web-1-2": earlier}))
    assert plan.run is not None and plan.run.create == ()
    assert plan.requeue_after == PREVIOUS_POD_WAIT_SECONDS
    assert written(plan).launched_count is None


@pytest.mark.parametrize(
    "why",
    ["stopped by the user", "deleted", "refused as RunTask would be", "not yet resolved"],
)
def test_a_run_whose_first_task_cannot_launch_it_creates_none(why: str) -> None:
    body = first_of_run(3)
    current = run_state(body)
    if why == "stopped by the user":
        current = run_state(first_of_run(3, desiredStatus="STOPPED"))
    elif why == "deleted":
        body["metadata"]["deletionTimestamp"] = at(1).isoformat()
        current = run_state(body)
    elif why == "refused as RunTask would be":
        privileged = revision(containerDefinitions=[APP | {"privileged": True}])
        current = replace(run_state(body), pod=None, resolved=ResolvedRevision(privileged))
    else:
        missing = ResolvedRevision(error=events.family_missing("web"))
        current = replace(run_state(body), pod=None, resolved=missing)
    assert plan_task(current).run is None


def test_a_run_goes_on_when_its_first_task_stopped_after_launching() -> None:
    """A restart after a partial creation: the first task (a short batch job) has already
    stopped; the rest of its run is still created."""
    exited = own(pod(containers=[terminated("app", 0)], phase="Succeeded"))
    body = first_of_run(2, status={"taskDefinitionArn": "web:1", "lastStatus": "RUNNING"})
    plan = plan_task(replace(run_state(body), pod=exited))
    assert written(plan).last_status == "STOPPED"
    assert plan.run is not None and len(plan.run.create) == 1


def test_the_first_task_outlives_its_time_to_live_while_its_run_runs() -> None:
    """Deleting it would delete its run's tasks: it waits until they stopped."""
    body = stopped_body(60) | {"spec": stopped_body(60)["spec"] | {"count": 2}}
    body["status"]["launchedCount"] = 2
    running_member = member(body, 2, lastStatus="RUNNING")
    assert plan_task(run_state(body, {"web-1-2": running_member}, now=at(60))) == TaskPlan()
    stopped_member = member(body, 2, lastStatus="STOPPED")
    expired = run_state(body, {"web-1-2": stopped_member}, now=at(60))
    assert plan_task(expired) == TaskPlan(delete_task=True)
    foreign = running_member | {"metadata": running_member["metadata"] | {"ownerReferences": []}}
    assert plan_task(replace(expired, run_members={"web-1-2": foreign})).delete_task


@given(present=st.sets(st.integers(2, 10)), count=st.integers(2, 10))
def test_a_run_creates_exactly_its_missing_tasks_then_records_them(
    present: set[int], count: int
) -> None:
    body = first_of_run(count)
    body["metadata"]["labels"] = {labels.RUN_LABEL: "web-1"}
    members = {f"web-1-{n}": member(body, n) for n in present if n <= count}
    plan = plan_task(run_state(body, members))
    missing = [f"web-1-{n}" for n in range(2, count + 1) if f"web-1-{n}" not in members]
    if missing:
        assert plan.run is not None
        assert [m["metadata"]["name"] for m in plan.run.create] == missing
        created = {m["metadata"]["name"]: m | {"status": {}} for m in plan.run.create}
        plan = plan_task(run_state(body, members | created))
    assert plan.run is None and written(plan).launched_count == count


# ---------------------------------------------------------------------------------------------
# Properties

POD_STATES = {
    "none": None,
    "pending": lambda: pod(containers=[waiting("app")]),
    "running": lambda: pod(containers=[running("app")]),
    "exited 0": lambda: pod(containers=[terminated("app", 0)], phase="Succeeded"),
    "exited 1": lambda: pod(containers=[terminated("app", 1)], phase="Failed"),
    "deleting": lambda: pod(containers=[running("app")], deleting=True),
}


@given(
    pod_state=st.sampled_from(sorted(POD_STATES)),
    owned=st.booleans(),
    stop=st.booleans(),
    service=st.booleans(),
    seconds=st.floats(min_value=0, max_value=30),
)
def test_a_written_status_is_stable_and_another_tasks_pod_is_never_deleted(
    pod_state: str, owned: bool, stop: bool, service: bool, seconds: float
) -> None:
    make = POD_STATES[pod_state]
    found = make() if make else None
    if found is not None and owned:
        own(found)
    body = task_body(
        service="svc" if service else None, **({"desiredStatus": "STOPPED"} if stop else {})
    )
    current = state(body, pod=found, node=node(), service="svc" if service else None)
    current = replace(current, now=at(seconds))
    plan = plan_task(current)
    if found is not None and not owned:
        assert plan.stop_pod is None
    if plan.status is None:
        return  # a launch, or a wait
    again = plan_task(after_write(current, plan))
    assert (again.status, again.events) == (None, ())


def test_targets_are_looked_up_while_the_service_names_a_load_balancer_or_the_task_drains() -> None:
    balanced = ServiceSpec.model_validate(
        {
            "taskDefinition": "web",
            "desiredCount": 1,
            "loadBalancers": [
                {"loadBalancerName": "web-lb", "containerName": "app", "containerPort": 80}
            ],
        }
    )
    plain = ServiceSpec.model_validate({"taskDefinition": "web", "desiredCount": 1})
    draining = task_body()
    draining["metadata"]["finalizers"] = [labels.DRAIN_FINALIZER]
    assert looks_up_targets(task_body(), balanced)
    assert not looks_up_targets(task_body(), plain)
    assert not looks_up_targets(task_body(), None)
    assert looks_up_targets(draining, None)


def test_an_unreadable_task_drops_its_drain_finalizer_only_once_deleted() -> None:
    held = task_body()
    held["metadata"]["finalizers"] = [labels.DRAIN_FINALIZER]
    deleted = task_body()
    deleted["metadata"]["deletionTimestamp"] = T0.isoformat()
    deleted_held = task_body()
    deleted_held["metadata"] |= {
        "deletionTimestamp": T0.isoformat(),
        "finalizers": ["other", labels.DRAIN_FINALIZER],
    }
    assert drain_released_unreadable(deleted_held)
    assert not drain_released_unreadable(held)
    assert not drain_released_unreadable(deleted)
    assert not drain_released_unreadable({})


def test_namespace_reads_say_whether_it_is_seen_and_terminating() -> None:
    policy = SecurityPolicy()
    assert namespace_reads(None, policy) == NamespaceReads(policy, seen=False)
    live = {"metadata": {"name": "default"}}
    assert namespace_reads(live, policy) == NamespaceReads(policy, seen=True, terminating=False)
    going = {"metadata": {"name": "default", "deletionTimestamp": T0.isoformat()}}
    assert namespace_reads(going, policy) == NamespaceReads(policy, terminating=True)


def test_task_state_carries_each_read_to_its_field() -> None:
    body, pod_body, lb = (
        task_body(service="web"),
        pod("web-1"),
        LoadBalancer.model_validate(
            {
                "metadata": {"name": "web-lb", "namespace": "default"},
                "spec": {"listeners": [{"port": 80}]},
            }
        ),
    )
    spec = ServiceSpec.model_validate({"taskDefinition": "web", "desiredCount": 1})
    policy, resolved = SecurityPolicy(), ResolvedRevision(revision())
    current = task_state(
        body,
        Task.model_validate(body),
        resolved,
        PodReads(pod_body, node("n1"), pod("web-1-before"), 3.0),
        ServiceReads("web", spec, False, {"web-lb": lb}),
        NamespaceReads(policy, seen=True, terminating=True),
        {"web-1-2": None},
        Timing(at(5), T0, 10.0),
    )
    assert current == state(
        body,
        resolved=resolved,
        policy=policy,
        now=at(5),
        operator_started_at=T0,
        resolve_grace_seconds=10.0,
        pod=pod_body,
        node=node("n1"),
        pod_tombstone=pod("web-1-before"),
        since_launch=3.0,
        service="web",
        service_spec=spec,
        load_balancers={"web-lb": lb},
        namespace_terminating=True,
        run_members={"web-1-2": None},
    )
