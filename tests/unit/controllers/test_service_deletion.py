"""Deleting a load-balanced Service, at the controllers' surface (`support.fake_kube`): the
Service holds no finalizer (one an earlier version left is removed), and each of its tasks,
deleted with it by garbage collection, holds its drain finalizer and its running Pod while a
target of it drains, then stops its Pod and lets go."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ecs_operator.core import events, labels
from ecs_operator.kube.client import LOAD_BALANCERS, PODS, SERVICES, TASKS
from support.controllers import ECS, NAMESPACE, Operator, cluster, service, task

KEY = (NAMESPACE, "web-1")


def former_drain_finalizer(body: dict[str, Any]) -> dict[str, Any]:
    body["metadata"]["finalizers"] = [labels.DRAIN_FINALIZER]
    return body


async def test_a_service_holding_the_former_drain_finalizer_is_let_go() -> None:
    """Upgraded from a version whose load-balanced Services held the drain finalizer: a live
    Service loses it (and is reconciled as usual), a deleted one goes at once."""
    kube = cluster()
    kube.seed(SERVICES, former_drain_finalizer(service("api", 1)))
    kube.seed(SERVICES, former_drain_finalizer(service("old", 1)))
    operator = Operator(kube)
    await kube.delete(SERVICES, NAMESPACE, "old")
    operator.catch_up()
    await operator.services.reconcile((NAMESPACE, "old"))
    assert not [body for body in kube.all_stored(SERVICES) if body["metadata"]["name"] == "old"]
    await operator.services.reconcile((NAMESPACE, "api"))
    assert kube.stored(SERVICES, NAMESPACE, "api")["metadata"]["finalizers"] == []
    assert len(kube.all_stored(TASKS)) == 1


def load_balancer(*targets: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": ECS,
        "kind": "LoadBalancer",
        "metadata": {"name": "web-lb", "namespace": NAMESPACE},
        "spec": {"listeners": [{"port": 80}], "deregistrationDelaySeconds": 300},
        "status": {"targets": list(targets)},
    }


def draining_target() -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "id": "0" * 32,
        "task": "web-1",
        "service": "api",
        "ip": "10.0.0.1",
        "port": 8080,
        "state": "draining",
        "registeredAt": now,
        "drainingSince": now,
    }


async def running_task_of_a_deleted_service() -> Operator:
    """Task web-1 of Service `api`, which is gone: RUNNING, holding the drain finalizer."""
    kube = cluster()
    body = former_drain_finalizer(task("web-1"))
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": ECS, "kind": "Service", "name": "api", "uid": "gone-uid"}
    ]
    kube.seed(TASKS, body)
    operator = Operator(kube)
    await operator.converge()
    assert kube.stored(TASKS, *KEY)["status"]["lastStatus"] == "RUNNING"
    return operator


async def test_a_deleted_task_keeps_its_pod_and_finalizer_until_its_target_drained() -> None:
    operator = await running_task_of_a_deleted_service()
    kube = operator.kube
    kube.seed(LOAD_BALANCERS, load_balancer(draining_target()))
    await kube.delete(TASKS, *KEY)  # garbage collection, its Service gone
    operator.catch_up()
    before = len(kube.written())
    await operator.tasks.reconcile(KEY)
    stored = kube.stored(TASKS, *KEY)
    assert stored["status"]["lastStatus"] == "DEACTIVATING"
    assert stored["status"]["stoppedReason"] == events.service_deleting("api")
    assert stored["metadata"]["finalizers"] == [labels.DRAIN_FINALIZER]
    assert [r for r in kube.written()[before:] if r.plural == "pods"] == []

    drained = kube.stored(LOAD_BALANCERS, NAMESPACE, "web-lb")
    drained["status"]["targets"] = []
    kube.put(LOAD_BALANCERS, drained)
    operator.catch_up()
    before = len(kube.written())
    await operator.tasks.reconcile(KEY)
    writes = [(r.verb, r.plural, r.subresource) for r in kube.written()[before:]]
    assert writes == [
        # STOPPING is held back a moment (DEACTIVATING recorded the stop): the Task goes first
        ("patch", "pods", ""),  # its deadline: the kubelet stops it
        ("patch", "tasks", ""),  # the finalizer removed: the Task goes
    ]
    assert not kube.all_stored(TASKS)
    assert kube.all_stored(PODS)  # garbage collection's to delete, with the Task gone


async def test_a_deleted_task_in_a_namespace_being_deleted_lets_go_at_once() -> None:
    operator = await running_task_of_a_deleted_service()
    kube = operator.kube
    kube.seed(LOAD_BALANCERS, load_balancer(draining_target()))
    kube.terminate_namespace(NAMESPACE)
    await kube.delete(TASKS, *KEY)
    operator.catch_up()
    await operator.tasks.reconcile(KEY)
    assert not kube.all_stored(TASKS)


async def test_a_deleted_task_the_operator_cannot_read_lets_go() -> None:
    """Nothing about its targets can be read: its deletion is not held (after its refusal is
    written, the reconcile that write wakes lets go)."""
    kube = cluster()
    body = former_drain_finalizer(task("web-1"))
    body["spec"]["cpu"] = "not a number"
    kube.seed(TASKS, body)
    operator = Operator(kube)
    await kube.delete(TASKS, *KEY)
    for _ in range(2):
        operator.catch_up()
        await operator.tasks.reconcile(KEY)
    [refusal] = [r for r in kube.written() if r.subresource == "status"]
    assert refusal.body["status"]["stopCode"] == "TaskFailedToStart"
    assert not kube.all_stored(TASKS)
