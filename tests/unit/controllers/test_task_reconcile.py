"""The Task controller at its public surface: `await controller.reconcile(key)` on caches that
hold what the test chose, against the in-memory API of `support.fake_kube`, judged by the
requests it sends. A converged resync writes nothing; a stop is written to the Task before
its Pod is stopped (kept, with its logs); a Task whose namespace is gone is dropped without an
error or a retry."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ecs_operator.core import events
from ecs_operator.kube.client import PODS, SERVICE_ACCOUNTS, TASKS, KubeError
from support.controllers import NAMESPACE, Operator, cluster, task
from support.podfactory import terminated

KEY = (NAMESPACE, "web-1")


async def running_task() -> Operator:
    """An operator that launched Task web-1 and saw its Pod run."""
    kube = cluster()
    kube.seed(TASKS, task("web-1"))
    operator = Operator(kube)
    await operator.converge()
    assert kube.stored(TASKS, *KEY)["status"]["lastStatus"] == "RUNNING"
    return operator


async def test_a_running_task_is_resynced_without_a_write() -> None:
    """Converged (a pass wrote nothing), and a restarted operator (caches primed from the
    API, nothing remembered) agrees: no status, Pod or event write."""
    kube = (await running_task()).kube
    converged = len(kube.written())
    restarted = Operator(kube)
    await restarted.tasks.reconcile(KEY)
    assert kube.written()[converged:] == []


async def stop(operator: Operator) -> list[tuple[str, str, str, str]]:
    """StopTask on web-1, one reconcile: the requests it sent."""
    kube = operator.kube
    stopping = kube.stored(TASKS, *KEY)
    stopping["spec"]["desiredStatus"] = "STOPPED"
    kube.put(TASKS, stopping)
    operator.catch_up()
    before = len(kube.written())
    await operator.tasks.reconcile(KEY)
    return [(r.verb, r.plural, r.name, r.subresource) for r in kube.written()[before:]]


async def test_a_stop_is_written_to_the_task_before_its_pod_is_stopped_and_kept() -> None:
    """StopTask: the status saying so is written first, so an operator killed in between
    never takes the Pod's end for a failure of the task. The Pod is stopped by its active
    deadline, which its kubelet enforces, and kept (with its logs): never deleted."""
    operator = await running_task()
    kube = operator.kube
    before = len(kube.written())
    writes = await stop(operator)
    status_write = writes.index(("patch", "tasks", "web-1", "status"))
    assert kube.written()[before + status_write].body["status"]["desiredStatus"] == "STOPPED"
    pod_write = writes.index(("patch", "pods", "web-1", ""))
    assert pod_write > status_write
    uid = kube.stored(PODS, *KEY)["metadata"]["uid"]
    assert kube.written()[before + pod_write].body == {
        "metadata": {"uid": uid},
        "spec": {"activeDeadlineSeconds": 1},
    }
    assert ("delete", "pods", "web-1", "") not in writes
    # Asked again before the kubelet acted: the deadline is set, nothing more is sent.
    operator.catch_up()
    before = len(kube.written())
    await operator.tasks.reconcile(KEY)
    assert [r for r in kube.written()[before:] if r.plural == "pods"] == []


async def test_a_stopped_task_s_pod_stays_until_the_task_is_deleted() -> None:
    """The kubelet stopped the Pod (Failed, DeadlineExceeded): the task is STOPPED and the
    terminated Pod stays; a resync sends nothing."""
    operator = await running_task()
    kube = operator.kube
    await stop(operator)
    ended = kube.stored(PODS, *KEY)
    ended["status"] |= {
        "phase": "Failed",
        "reason": "DeadlineExceeded",
        "containerStatuses": [terminated("app", 143)],
    }
    kube.put(PODS, ended)
    operator.catch_up()
    before = len(kube.written())
    await operator.tasks.reconcile(KEY)
    assert kube.stored(TASKS, *KEY)["status"]["lastStatus"] == "STOPPED"
    assert [r for r in kube.written()[before:] if r.plural == "pods"] == []
    assert kube.stored(PODS, *KEY)["status"]["phase"] == "Failed"
    converged = len(kube.written())
    await operator.tasks.reconcile(KEY)
    assert kube.written()[converged:] == []


async def test_a_pod_stop_refused_as_a_conflict_is_planned_again() -> None:
    """The uid in the patch makes a Pod of the same name created meanwhile refuse it (409 or
    422): nothing is raised, and the task is planned again shortly from what the cache then
    holds."""
    operator = await running_task()
    operator.kube.fail("patch", "pods", 409, "Conflict", "Precondition failed: UID")
    writes = await stop(operator)
    assert ("patch", "pods", "web-1", "") in writes
    assert KEY in operator.tasks.queue._timers  # planned again


async def test_a_pod_never_bound_to_a_node_is_deleted_to_stop_it() -> None:
    """No kubelet would enforce a deadline (and there are no logs to keep): deleted."""
    kube = cluster()
    kube.seed(TASKS, task("web-1"))
    operator = Operator(kube)
    await operator.tasks.reconcile(KEY)
    operator.catch_up()
    assert "nodeName" not in kube.stored(PODS, *KEY)["spec"]
    writes = await stop(operator)
    assert ("delete", "pods", "web-1", "") in writes
    assert ("patch", "pods", "web-1", "") not in writes


async def test_a_status_write_answered_404_ends_the_reconcile_quietly() -> None:
    """The namespace was deleted with everything in it; the watch has shown the Pod go, not
    yet the Task: its status write is answered 404 and nothing else is tried."""
    operator = await running_task()
    kube = operator.kube
    kube.remove_namespace(NAMESPACE)
    pod = operator.context.pods.get(KEY)
    assert pod is not None
    operator.context.pods.record("DELETED", pod)
    before = len(kube.written())
    await operator.tasks.reconcile(KEY)
    assert [str(r) for r in kube.written()[before:]] == [f"patch tasks {NAMESPACE}/web-1/status"]


async def test_a_launch_into_a_removed_namespace_is_dropped_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A new Task whose namespace is removed before the watch says so: its Pod's create is
    answered 404 (namespace not found), and the work queue lets the key go: one reconcile,
    no error logged, no other write."""
    kube = cluster()
    kube.seed(TASKS, task("web-1"))
    operator = Operator(kube)
    kube.remove_namespace(NAMESPACE)
    with caplog.at_level(logging.ERROR):
        await operator.process(operator.tasks, KEY)
    assert operator.reconciles("tasks") == 1
    assert [str(r) for r in kube.written()] == [f"create pods {NAMESPACE}"]
    assert [r.body["metadata"]["name"] for r in kube.written()] == ["web-1"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_pod_refused_for_a_vanished_service_account_stops_the_task_naming_both() -> None:
    """The task role's ServiceAccount existed when the launch checked it and was deleted before
    the Pod was created: the API server's ServiceAccount admission refuses the Pod (403), and
    the task stops saying which role and which ServiceAccount, not in the API's words."""
    role = "arn:aws:iam::123456789012:role/reader"
    kube = cluster()
    account = {"apiVersion": "v1", "kind": "ServiceAccount"}
    kube.seed(SERVICE_ACCOUNTS, account | {"metadata": {"name": "reader", "namespace": NAMESPACE}})
    body = task("web-1")
    body["spec"]["overrides"] = {"taskRoleArn": role}
    kube.seed(TASKS, body)
    serve = kube.request

    async def account_deleted_meanwhile(method: str, path: str, **options: Any) -> Any:
        if method == "POST" and path.endswith("/pods"):
            kube.remove(SERVICE_ACCOUNTS, NAMESPACE, "reader")
            raise KubeError(
                403,
                "Forbidden",
                f'pods "web-1" is forbidden: error looking up service account {NAMESPACE}/reader: '
                'serviceaccount "reader" not found',
            )
        return await serve(method, path, **options)

    kube.request = account_deleted_meanwhile  # type: ignore[method-assign]
    operator = Operator(kube)
    await operator.converge()
    status = kube.stored(TASKS, *KEY)["status"]
    assert (status["lastStatus"], status["stopCode"]) == ("STOPPED", "TaskFailedToStart")
    assert status["stoppedReason"] == events.task_role_not_found(
        role, "reader", "spec.taskRoleArn", NAMESPACE
    )
    assert all(key[1] != "pods" for key in kube.objects)
