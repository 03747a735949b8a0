"""A deletion missed during a watch gap is noticed after the relist (issue #13, items 3, 6).

The operator is stopped (SIGSTOP), its watches are dropped, a service task's Pod is deleted,
and the API forgets its event history (`api_faults.close_watches(expire=True)`: on the real
control plane, its fault proxy answers every resume 410), or more pod events than the sandbox's
watch window keeps (WATCH_WINDOW) happen: resumed, the watches get 410 Expired and
Kopf relists. The list no longer has the Pod and no DELETED event will ever come, so only the
cache's relist reconciliation can tell the Task its Pod is gone: the Task must end STOPPED
and the Service replace it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ecs_sandbox.runtime import SandboxThread
from support.api_faults import ApiFaults
from support.ecs_api import Ecs, OperatorProcess
from support.helpers import ClusterTarget, wait_for
from support.services import Services, is_live, is_stopped, task_status

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def stopped(operator: OperatorProcess) -> Iterator[None]:
    assert operator.process is not None
    operator.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        operator.process.send_signal(signal.SIGCONT)


@pytest.mark.parametrize("gap", ["history-lost", "window-overrun"])
def test_a_pod_deleted_during_a_watch_gap_stops_its_task_and_is_replaced(
    ecs: Ecs, operator: OperatorProcess, api_faults: ApiFaults, gap: str, request: Any
) -> None:
    """The resume gets 410 either because the server forgot its history (on the real control
    plane, as its fault proxy answers), or because more than WATCH_WINDOW pod events happened
    during the gap (the sandbox's own window)."""
    churn = None if gap == "history-lost" else window_overrun(request, ecs)
    services = Services(ecs)
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    services.create("web", "web", desiredCount=3)
    services.wait_steady("web", 3)
    victim = services.live("web")[0]["metadata"]["name"]

    with stopped(operator):
        api_faults.close_watches()  # nothing more reaches the stopped operator
        deleted = services.request(
            "DELETE", ecs.path("pods", victim, group=""), params={"gracePeriodSeconds": "0"}
        )
        assert deleted.status_code == 200, deleted.text
        if churn is None:
            api_faults.close_watches(expire=True)
        else:
            churn()

    try:
        assert_replaced(services, victim, 3)
    except AssertionError as failure:  # what the fault proxy did with the watches, if any
        journal = "\n".join(getattr(api_faults, "journal", ()))
        raise AssertionError(f"{failure}\nwatches through the proxy:\n{journal}") from None
    assert operator.alive


def window_overrun(request: Any, ecs: Ecs) -> Callable[[], None]:
    """More pod events than the sandbox's watch window keeps, on a Pod of the test's own."""
    sandbox_thread: SandboxThread = request.getfixturevalue("sandbox_thread")
    sandbox = sandbox_thread.sandbox
    assert sandbox is not None
    store, pods = sandbox.store, sandbox.registry.get("", "v1", "pods")
    noise = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "noise"}}
    noise["spec"] = {"containers": [{"name": "c", "image": "busybox"}]}
    Services(ecs).json("POST", ecs.path("pods", group=""), (201,), json=noise)

    def patches() -> None:
        for n in range(store.watch_window + 1):
            patch = {"metadata": {"annotations": {"churn": str(n)}}}
            store.patch(pods, ecs.namespace, "noise", patch, "application/merge-patch+json")

    return lambda: sandbox_thread.call(patches, timeout=120)


def test_the_operator_survives_an_api_server_restart_and_notices_what_changed(
    ecs: Ecs, operator: OperatorProcess, sandbox_thread: SandboxThread
) -> None:
    """The API server stops (every connection refused), a Pod goes while it is down, and it
    comes back with no watch history (resumes get 410), as a restarted kube-apiserver."""
    sandbox = sandbox_thread.sandbox
    assert sandbox is not None
    services = Services(ecs)
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    services.create("web", "web", desiredCount=2)
    services.wait_steady("web", 2)
    victim = services.live("web")[0]["metadata"]["name"]
    pods = sandbox.registry.get("", "v1", "pods")

    async def restart() -> None:
        await sandbox.stop_api(restarting=True)
        sandbox.store.delete(pods, ecs.namespace, victim, {"gracePeriodSeconds": 0})
        await sandbox.start_api()

    sandbox_thread.run(restart())
    assert_replaced(services, victim, 2)
    assert operator.alive


def test_the_operator_survives_a_real_api_server_restart_and_notices_what_changed(
    ecs: Ecs, operator: OperatorProcess, target: ClusterTarget
) -> None:
    """The real control plane's kube-apiserver is restarted (tools/cluster.py
    restart-apiserver) while the operator is stopped and a Pod is deleted: the restarted server
    has a fresh watch cache, so the operator's resumes are answered 410 and it must relist."""
    if target.is_sandbox:
        pytest.skip("the sandbox's restart is the test above; this one restarts kube-apiserver")
    services = Services(ecs)
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    services.create("web", "web", desiredCount=2)
    services.wait_steady("web", 2)
    victim = services.live("web")[0]["metadata"]["name"]
    state = target.kubeconfig.parent  # tools/cluster.py keeps its kubeconfig in its state dir
    with stopped(operator):
        deleted = services.request(
            "DELETE", ecs.path("pods", victim, group=""), params={"gracePeriodSeconds": "0"}
        )
        assert deleted.status_code == 200, deleted.text
        restarted = subprocess.run(
            [sys.executable, str(REPO / "tools" / "cluster.py"), "restart-apiserver"],
            env={**os.environ, "ECS_OPERATOR_CLUSTER_DIR": str(state)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert restarted.returncode == 0, restarted.stderr
        # A restarted kube-apiserver denies a while longer, until its RBAC caches hold every
        # binding: wake the operator once its own are honoured (a 403 fails the session).
        wait_for(
            lambda: operator_allowed(target),
            60,
            message="the operator's RBAC bindings are not honoured after the restart",
        )
    assert_replaced(services, victim, 2)
    assert operator.alive


def operator_allowed(target: ClusterTarget) -> bool:
    """Whether RBAC allows the operator's ServiceAccount to watch pods and renew its Lease."""
    checks = (
        {"verb": "watch", "resource": "pods"},
        {"verb": "get", "group": "coordination.k8s.io", "resource": "leases",
         "namespace": "ecs-operator-system", "name": "ecs-operator"},
    )  # fmt: skip
    for attributes in checks:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": "system:serviceaccount:ecs-operator-system:ecs-operator",
                "groups": [
                    "system:serviceaccounts",
                    "system:serviceaccounts:ecs-operator-system",
                    "system:authenticated",
                ],
                "resourceAttributes": attributes,
            },
        }
        answer = target.http.post(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review
        ).json()
        if not answer.get("status", {}).get("allowed"):
            return False
    return True


def assert_replaced(services: Services, victim: str, desired: int) -> None:
    """The Task `victim` ends STOPPED, with a reason, and the Service runs `desired` others."""

    def healed() -> bool:
        tasks = {t["metadata"]["name"]: t for t in services.tasks("web")}
        live = [name for name, t in tasks.items() if is_live(t)]
        return is_stopped(tasks[victim]) and len(live) == desired and victim not in live

    services.wait(healed, "the task without a Pod STOPPED and replaced", "web", timeout=30)
    services.wait_steady("web", desired)
    stopped_task = services.ecs.get("tasks", victim)
    assert stopped_task is not None
    assert task_status(stopped_task).get("stoppedReason"), task_status(stopped_task)
