"""The caches are filled from the watch streams' listings: a listing replaces what a cache
holds of its kind, what it no longer has is handled as deleted, and the controllers wait until
every kind has been listed in every watched namespace. A failed stream is reported, saying
whether its listing or its watch failed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from prometheus_client import generate_latest

from ecs_operator import API_GROUP
from ecs_operator.controllers import watches
from ecs_operator.controllers.context import OperatorOptions
from ecs_operator.controllers.feeds import FEEDS, WatchedKind
from ecs_operator.controllers.watches import Controllers, Listings
from support.controllers import Recorder, recording_controllers

PODS = WatchedKind("", "pods")


def pod(name: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": name, "resourceVersion": str(rv)}}


def task_pod(name: str, rv: int) -> dict[str, Any]:
    body = pod(name, rv)
    body["metadata"]["ownerReferences"] = [{"kind": "Task", "name": name, "uid": "t"}]
    return body


def controllers(options: OperatorOptions | None = None) -> Controllers:
    return recording_controllers(options)[0]


def test_a_listing_replaces_the_cache_and_what_it_no_longer_has_is_handled_as_deleted() -> None:
    fed = controllers()
    for name in ("gone", "created-after-the-list", "listed"):
        fed.context.pods.record("ADDED", task_pod(name, 12 if name.startswith("created") else 5))
    Listings(fed).listed(PODS, None, [task_pod("listed", 9), task_pod("new", 8)], "10")
    pods = fed.context.pods
    assert pods.get(("ns", "gone")) is None
    assert pods.tombstone(("ns", "gone")) == task_pod("gone", 5)
    assert pods.get(("ns", "created-after-the-list")) is not None
    assert pods.get(("ns", "listed")) == task_pod("listed", 9)
    assert pods.get(("ns", "new")) == task_pod("new", 8)
    assert cast(Recorder, fed.tasks).keys == [("ns", "gone")]  # its Task learns its Pod is gone
    scraped = generate_latest(fed.metrics.registry).decode()
    assert 'ecs_operator_relist_deletions_total{resource="pods"} 1.0' in scraped


def test_a_failed_stream_is_counted_and_says_whether_listing_or_watching_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fed = controllers()
    listings = Listings(fed)
    with caplog.at_level(logging.ERROR, logger=watches.__name__):
        listings.failed(PODS, None, RuntimeError("503"), 0.5, listing=True)
        listings.failed(
            WatchedKind(API_GROUP, "tasks"), "ns", RuntimeError("403"), 1, listing=False
        )
    assert [record.getMessage() for record in caplog.records] == [
        "listing pods failed: 503; the other kinds carry on, and pods is listed and watched "
        "again in 0.5s",
        f"the watch of tasks.{API_GROUP} in ns failed: 403; the other kinds carry on, and "
        f"tasks.{API_GROUP} is listed and watched again in 1.0s",
    ]
    scraped = generate_latest(fed.metrics.registry).decode()
    assert 'ecs_operator_watch_failures_total{resource="pods"} 1.0' in scraped
    assert f'ecs_operator_watch_failures_total{{resource="tasks.{API_GROUP}"}} 1.0' in scraped


def test_a_namespaced_operator_waits_for_each_namespace_and_cluster_kinds_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(watches, "LISTING_REPORT_SECONDS", 0.01)
    listings = Listings(controllers(OperatorOptions(namespaces=("a", "b"))))
    awaited = [
        (kind, namespace)
        for kind, feed in FEEDS.items()
        for namespace in (("a", "b") if feed.resource.namespaced else (None,))
    ]

    async def run() -> None:
        waiting = asyncio.create_task(listings.all_listed())
        for kind, namespace in awaited[:-1]:
            listings.listed(kind, namespace, [], "1")
            listings.listed(kind, namespace, [], "2")  # a relist changes nothing
        await asyncio.sleep(0.05)
        assert not waiting.done()
        kind, namespace = awaited[-1]
        listings.listed(kind, namespace, [], "1")
        await asyncio.wait_for(waiting, 1)

    with caplog.at_level(logging.WARNING, logger=watches.__name__):
        asyncio.run(run())
    assert f"the controllers wait for the listing of {awaited[-1][0].plural}" in caplog.text
