"""The Service controller at its public surface: `await controller.reconcile(key)` on caches
that hold what the test chose, against the in-memory API of `support.fake_kube`, judged by the
requests it sends. A steady service's resync writes nothing; a launch is never made twice,
neither while the watch lags behind the creates nor after a restart (a create answered 409 for
the task launched before is that task); a service whose namespace is being deleted is dropped
without an error or a retry."""

from __future__ import annotations

import copy
import logging
import re

import pytest

from ecs_operator.core import events, labels, service_planning
from ecs_operator.kube.client import CONTROLLER_REVISIONS, SERVICES, TASKS, KubeError
from support.controllers import NAMESPACE, Operator, cluster, service
from support.fake_kube import FakeKube

KEY = (NAMESPACE, "api")


def tasks_in_api(kube: FakeKube) -> set[str]:
    return {body["metadata"]["name"] for body in kube.all_stored(TASKS)}


def creates(kube: FakeKube, since: int = 0) -> list[str]:
    """The names of the Tasks asked to be created, from the `since`th write on."""
    return [
        r.body["metadata"]["name"]
        for r in kube.written()[since:]
        if (r.verb, r.plural) == ("create", "tasks")
    ]


async def steady_service(desired_count: int) -> Operator:
    """An operator that brought Service api to `desired_count` tasks RUNNING."""
    kube = cluster()
    kube.seed(SERVICES, service("api", desired_count))
    operator = Operator(kube)
    await operator.converge()
    assert kube.stored(SERVICES, *KEY)["status"]["runningCount"] == desired_count
    return operator


async def test_a_steady_service_is_resynced_without_a_write() -> None:
    """Converged (a pass wrote nothing), and a restarted operator (caches primed from the
    API, nothing remembered) agrees on the Service and each of its tasks."""
    kube = (await steady_service(2)).kube
    converged = len(kube.written())
    restarted = Operator(kube)
    await restarted.services.reconcile(KEY)
    for body in kube.all_stored(TASKS):
        await restarted.tasks.reconcile((NAMESPACE, body["metadata"]["name"]))
    assert kube.written()[converged:] == []


async def test_service_events_carry_their_own_reasons_and_name_tasks_by_name() -> None:
    """Each Event posted on the Service has the reason of its kind (never the generic
    ServiceEvent), and the tasks it names are the Tasks' names."""
    kube = (await steady_service(3)).kube
    posted = [
        r.body
        for r in kube.written()
        if (r.verb, r.plural) == ("create", "events")
        and r.body["involvedObject"]["kind"] == "Service"
    ]
    by_reason = {body["reason"]: body for body in posted}
    assert set(by_reason) <= set(events.SERVICE_EVENT_REASONS.values())
    assert {"TasksStarted", "DeploymentCompleted", "SteadyState"} <= set(by_reason)
    named = re.findall(r"\(task ([^)]+)\)", by_reason["TasksStarted"]["message"])
    assert sorted(named) == sorted(tasks_in_api(kube))


async def test_a_task_launched_before_a_restart_is_adopted_when_its_create_conflicts() -> None:
    """Scaled from 2 to 3: the operator creates the third task and is replaced; its successor
    listed the Tasks before that create was committed, so it launches the same task again. The
    API answers 409 AlreadyExists; the task holding the name is this very launch: adopted, no
    error, no other create, no warning."""
    previous = await steady_service(2)
    kube = previous.kube
    scaled = kube.stored(SERVICES, *KEY)
    scaled["spec"]["desiredCount"] = 3
    kube.put(SERVICES, scaled)
    restarted = Operator(kube)  # its LIST: the Service at 3, two tasks
    previous.catch_up()
    await previous.services.reconcile(KEY)  # its last act: the third task, committed
    launched_before = tasks_in_api(kube)
    assert len(launched_before) == 3

    before = len(kube.written())
    await restarted.services.reconcile(KEY)
    (again,) = creates(kube, before)
    assert again in launched_before  # refused: 409 AlreadyExists
    assert tasks_in_api(kube) == launched_before
    events = [r.body for r in kube.written()[before:] if r.plural == "events"]
    assert [e["reason"] for e in events if e["type"] == "Warning"] == []

    adopted = len(kube.written())
    await restarted.services.reconcile(KEY)
    assert creates(kube, adopted) == []


@pytest.mark.parametrize("response", ["answered", "lost"])
async def test_a_lagging_watch_never_launches_twice(response: str) -> None:
    """The creates went through but the watch has not shown the Tasks yet: the next
    reconcile counts them (from the answers, or by reading back a create whose answer was
    lost) and creates nothing."""
    kube = cluster()
    kube.seed(SERVICES, service("api", 2))
    operator = Operator(kube)
    if response == "lost":
        kube.fail("create", "tasks", 504, "Timeout", "request timed out", after_commit=True)
        with pytest.raises(KubeError):
            await operator.services.reconcile(KEY)
    else:
        await operator.services.reconcile(KEY)
    launched = tasks_in_api(kube)
    assert len(launched) == 2
    before = len(kube.written())
    await operator.services.reconcile(KEY)
    assert creates(kube, before) == []
    assert tasks_in_api(kube) == launched


async def test_a_service_in_a_namespace_being_deleted_is_dropped_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before the watch shows the namespace's deletion, its creates are refused (403: the
    namespace is being terminated) and the work queue lets the key go: one reconcile, no
    error logged, no retry. Once the cache knows, nothing is even tried."""
    kube = cluster()
    kube.seed(SERVICES, service("api", 2))
    operator = Operator(kube)
    kube.terminate_namespace(NAMESPACE)
    with caplog.at_level(logging.ERROR):
        await operator.process(operator.services, KEY)
    assert operator.reconciles("services") == 1
    assert len(creates(kube)) == 2
    assert tasks_in_api(kube) == set()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    operator.catch_up()
    before = len(kube.written())
    await operator.services.reconcile(KEY)
    assert creates(kube, before) == []


async def test_a_deployment_records_its_service_revision_once_even_after_a_restart() -> None:
    """The first deployment stores one ControllerRevision owned by the Service (its service
    revision) and a SUCCESSFUL service deployment naming it; a restarted operator, whose
    caches hold what the API holds, neither stores it again nor rewrites the record."""
    kube = (await steady_service(2)).kube
    [stored] = [
        body
        for body in kube.all_stored(CONTROLLER_REVISIONS)
        if labels.SERVICE_LABEL in body["metadata"]["labels"]
    ]
    status = kube.stored(SERVICES, *KEY)["status"]
    [record] = status["serviceDeployments"]
    assert record["status"] == "SUCCESSFUL"
    assert stored["data"]["serviceRevisionArn"] == record["targetServiceRevision"]["arn"]
    assert stored["metadata"]["ownerReferences"][0]["name"] == "api"
    assert status["currentServiceDeployment"] == record["serviceDeploymentArn"]
    converged = len(kube.written())
    await Operator(kube).services.reconcile(KEY)
    assert kube.written()[converged:] == []


def deletes(kube: FakeKube, since: int = 0) -> list[str]:
    """The names of the Tasks asked to be deleted, from the `since`th write on."""
    return [
        r.name or "" for r in kube.written()[since:] if (r.verb, r.plural) == ("delete", "tasks")
    ]


async def test_stopped_tasks_beyond_the_newest_are_deleted_once_while_the_watch_lags() -> None:
    """The stopped tasks beyond the newest MAX_STOPPED_TASKS_PER_SERVICE are deleted; until the
    watch shows their deletion, the reconciles that follow (every task change wakes the
    Service) do not delete them again. A deletion refused is tried again."""
    operator = await steady_service(1)
    kube = operator.kube
    [running] = kube.all_stored(TASKS)
    kept = service_planning.MAX_STOPPED_TASKS_PER_SERVICE
    for index in range(kept + 3):
        stopped = copy.deepcopy(running)
        stopped["metadata"] = {
            key: value
            for key, value in running["metadata"].items()
            if key in ("namespace", "labels", "annotations", "ownerReferences", "finalizers")
        } | {"name": f"old-{index:02d}"}
        stopped["status"] = running["status"] | {
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stopCode": "ServiceSchedulerInitiated",
            "stoppedAt": f"2026-01-01T00:00:{index:02d}Z",
        }
        kube.seed(TASKS, stopped)
    operator.catch_up()
    kube.fail("delete", "tasks", 500, "InternalError", "etcd timed out")
    before = len(kube.written())
    with pytest.raises(KubeError):
        await operator.services.reconcile(KEY)
    assert sorted(deletes(kube, before)) == ["old-00", "old-01", "old-02"]
    assert {"old-00", "old-01", "old-02"} & tasks_in_api(kube) != set()  # one was refused

    before = len(kube.written())
    await operator.services.reconcile(KEY)  # the watch has shown nothing yet
    assert len(deletes(kube, before)) == 1  # only the refused one, again
    assert not {"old-00", "old-01", "old-02"} & tasks_in_api(kube)

    before = len(kube.written())
    await operator.services.reconcile(KEY)
    operator.catch_up()
    await operator.services.reconcile(KEY)
    assert deletes(kube, before) == []
