"""Priming the caches: a failed LIST is retried after seconds of back-off until served (never
Kopf's minute for a failed start-up handler), and what a LIST no longer has is dropped; after
a Kopf relist, what the cache's own LIST no longer has is handled as deleted."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf
from prometheus_client import generate_latest

from ecs_operator import API_GROUP
from ecs_operator.controllers.context import OperatorContext, OperatorOptions
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.watches import PRIME_MAX_BACKOFF, Relists, prime
from ecs_operator.controllers.watchstreams import WatchedKind
from ecs_operator.kube.client import KubeClient, KubeError, Resource


def pod(name: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": name, "resourceVersion": str(rv)}}


class FlakyLists:
    """Fails the first `failures` LISTs of pods with each code in turn, then serves them."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = codes
        self.pod_lists = 0

    async def list_with_version(
        self, resource: Resource, namespace: str | None, *, label_selector: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        if resource.plural != "pods":
            return [], "10"
        self.pod_lists += 1
        if self.codes:
            code = self.codes.pop(0)
            raise KubeError(code, "Injected", f"injected {code}")
        return [pod("listed", 9)], "10"


def test_a_failed_priming_list_is_retried_within_seconds() -> None:
    lists = FlakyLists([409, 500, 403, 404, 500, 500])
    context = OperatorContext(OperatorOptions(), cast(KubeClient, lists))
    context.pods.record("ADDED", pod("deleted-meanwhile", 3))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    asyncio.run(prime(context, sleep=sleep))
    assert lists.pod_lists == 7
    assert slept == [0.5, 1.0, 2.0, 4.0, PRIME_MAX_BACKOFF, PRIME_MAX_BACKOFF]
    assert [body["metadata"]["name"] for body in context.pods.values()] == ["listed"]


class Recorder:
    """A controller's queue, as the event handlers see it."""

    def __init__(self) -> None:
        self.keys: list[Any] = []

    def enqueue(self, key: Any) -> None:
        self.keys.append(key)

    def enqueue_namespace(self, namespace: str) -> None:
        self.keys.append(namespace)


class Lists:
    def __init__(self, served: dict[str, list[dict[str, Any]]]) -> None:
        self.served = served

    async def list_with_version(
        self, resource: Resource, namespace: str | None, *, label_selector: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        if resource.plural not in self.served:
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        return self.served[resource.plural], "10"


def task_pod(name: str, rv: int) -> dict[str, Any]:
    body = pod(name, rv)
    body["metadata"]["ownerReferences"] = [{"kind": "Task", "name": name, "uid": "t"}]
    return body


def test_a_relist_handles_what_it_no_longer_has_as_deleted() -> None:
    context = OperatorContext(OperatorOptions(), cast(KubeClient, Lists({"pods": []})))
    for name in ("gone", "created-after-the-list"):
        context.pods.record("ADDED", task_pod(name, 12 if name.startswith("created") else 5))
    tasks = Recorder()
    memo = kopf.Memo(context=context, tasks=tasks, load_balancers=Recorder())
    metrics = OperatorMetrics(context)
    relists = Relists(memo, metrics)
    asyncio.run(relists._resync((WatchedKind("", "pods"), None)))
    assert context.pods.get(("ns", "gone")) is None
    assert context.pods.tombstone(("ns", "gone")) == task_pod("gone", 5)
    assert context.pods.get(("ns", "created-after-the-list")) is not None
    assert tasks.keys == [("ns", "gone")]  # its Task learns its Pod is gone
    scraped = generate_latest(metrics.registry).decode()
    assert 'ecs_operator_relist_deletions_total{resource="pods"} 1.0' in scraped
    relists.failed(WatchedKind(API_GROUP, "tasks"), None, RuntimeError("403"), 0.5)
    scraped = generate_latest(metrics.registry).decode()
    assert f'ecs_operator_watch_failures_total{{resource="tasks.{API_GROUP}"}} 1.0' in scraped
    # A kind no longer served (its CRD deleted since) is left to its next listing.
    asyncio.run(relists._resync((WatchedKind(API_GROUP, "loadbalancers"), None)))


def test_a_namespaced_operator_primes_each_namespace_and_cluster_kinds_once() -> None:
    listed: list[tuple[str, str | None]] = []

    class Recording:
        async def list_with_version(
            self, resource: Resource, namespace: str | None, *, label_selector: str = ""
        ) -> tuple[list[dict[str, Any]], str]:
            listed.append((resource.plural, namespace))
            return [], "1"

    options = OperatorOptions(namespaces=("a", "b"))
    asyncio.run(prime(OperatorContext(options, cast(KubeClient, Recording()))))
    assert ("pods", "a") in listed and ("pods", "b") in listed
    cluster_scoped = ("nodes", "namespaces")
    for plural in cluster_scoped:
        assert [entry for entry in listed if entry[0] == plural] == [(plural, None)]
    assert all(ns in ("a", "b") for plural, ns in listed if plural not in cluster_scoped)
