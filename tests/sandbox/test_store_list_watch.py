"""Store (no HTTP): list with selectors and pages, watch snapshot/resume/410/transitions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ecs_sandbox.errors import ApiError
from ecs_sandbox.resources import ResourceType
from ecs_sandbox.store import Store, Watch

MERGE = "application/merge-patch+json"


@pytest.fixture
def store() -> Store:
    return Store()


def rt(store: Store, plural: str) -> ResourceType:
    return store.registry.get("", "v1", plural)


def configmap(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def pod(name: str, node: str | None = None, **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}


def names(listing: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in listing["items"]]


async def next_events(watch: Watch, count: int) -> list[tuple[str, str]]:
    """The next `count` events as (type, name); fails after a generous deadline."""
    events = []
    for _ in range(count):
        event = await asyncio.wait_for(anext(watch), timeout=5)
        events.append((event["type"], event["object"]["metadata"]["name"]))
    return events


def assert_idle(watch: Watch) -> None:
    assert watch.pending == 0


@pytest.fixture
def labelled(store: Store) -> Store:
    cms = rt(store, "configmaps")
    store.create(cms, "default", configmap("a", app="web", tier="front"))
    store.create(cms, "default", configmap("b", app="web", tier="back"))
    store.create(cms, "default", configmap("c", app="db"))
    store.create(cms, "kube-system", configmap("d", app="web"))
    store.create(cms, "default", configmap("e"))
    return store


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", ["a", "b", "c", "e"]),
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "e"]),
        ("app in (web, db)", ["a", "b", "c"]),
        ("app notin (web)", ["c", "e"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "e"]),
        ("app=web,tier=back", ["b"]),
        ("app=web, !tier", []),
    ],
)
def test_label_selectors(labelled: Store, selector: str, expected: list[str]) -> None:
    listing = labelled.list(rt(labelled, "configmaps"), "default", label_selector=selector)
    assert names(listing) == expected


@pytest.mark.parametrize(
    "selector", ["app=", "app in web", "app in ()", "=x", "a b", "app=web,", "bad key!=x"]
)
def test_bad_label_selector_is_400(labelled: Store, selector: str) -> None:
    if selector == "app=":  # an empty value is legal: it matches app=""
        assert (
            names(labelled.list(rt(labelled, "configmaps"), "default", label_selector=selector))
            == []
        )
        return
    with pytest.raises(ApiError) as caught:
        labelled.list(rt(labelled, "configmaps"), "default", label_selector=selector)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")


def test_list_shape_and_all_namespaces(labelled: Store) -> None:
    listing = labelled.list(rt(labelled, "configmaps"), None, label_selector="app=web")
    assert listing["kind"] == "ConfigMapList"
    assert listing["apiVersion"] == "v1"
    assert listing["metadata"]["resourceVersion"] == labelled.resource_version
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listing["items"]] == [
        ("default", "a"),
        ("default", "b"),
        ("kube-system", "d"),
    ]


def test_field_selectors(store: Store) -> None:
    pods = rt(store, "pods")
    store.create(pods, "default", pod("p1", node="n1"))
    store.create(pods, "default", pod("p2"))
    store.create(pods, "kube-system", pod("p3", node="n1"))
    assert names(store.list(pods, None, field_selector="spec.nodeName=n1")) == ["p1", "p3"]
    assert names(store.list(pods, None, field_selector="spec.nodeName=")) == ["p2"]
    assert names(store.list(pods, None, field_selector="spec.nodeName!=n1")) == ["p2"]
    assert names(store.list(pods, None, field_selector="metadata.namespace==kube-system")) == ["p3"]
    assert names(
        store.list(pods, None, field_selector="metadata.name=p1,status.phase=Pending")
    ) == ["p1"]


def test_event_field_selectors(store: Store) -> None:
    events = rt(store, "events")
    involved = {"kind": "Pod", "name": "p1", "namespace": "default", "uid": "u1"}
    store.create(events, "default", {"metadata": {"name": "e1"}, "involvedObject": involved})
    other = {**involved, "name": "p2", "uid": "u2"}
    store.create(events, "default", {"metadata": {"name": "e2"}, "involvedObject": other})
    selector = "involvedObject.name=p1,involvedObject.namespace=default,involvedObject.uid=u1"
    assert names(store.list(events, "default", field_selector=selector)) == ["e1"]
    assert names(store.list(events, "default", field_selector="involvedObject.kind=Pod")) == [
        "e1",
        "e2",
    ]


def test_unsupported_field_is_400(store: Store) -> None:
    with pytest.raises(ApiError) as caught:
        store.list(rt(store, "configmaps"), None, field_selector="data.x=1")
    assert caught.value.code == 400
    assert caught.value.message == "field label not supported: data.x"


def test_limit_and_continue(labelled: Store) -> None:
    cms = rt(labelled, "configmaps")
    first = labelled.list(cms, None, limit=2)
    assert names(first) == ["a", "b"]
    assert first["metadata"]["remainingItemCount"] == 3
    labelled.create(cms, "default", configmap("bb"))  # lands after the page boundary
    second = labelled.list(cms, None, limit=2, continue_token=first["metadata"]["continue"])
    assert names(second) == ["bb", "c"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    third = labelled.list(cms, None, limit=2, continue_token=second["metadata"]["continue"])
    assert names(third) == ["e", "d"]
    assert "continue" not in third["metadata"]


def test_malformed_continue_is_400(labelled: Store) -> None:
    with pytest.raises(ApiError) as caught:
        labelled.list(rt(labelled, "configmaps"), None, continue_token="not-a-token")
    assert caught.value.code == 400


async def test_watch_from_scratch_lists_then_follows(labelled: Store) -> None:
    cms = rt(labelled, "configmaps")
    watch = labelled.watch(cms, "default", label_selector="app=web")
    assert await next_events(watch, 2) == [("ADDED", "a"), ("ADDED", "b")]
    labelled.create(cms, "default", configmap("f", app="web"))
    labelled.create(cms, "default", configmap("g", app="other"))
    labelled.create(cms, "kube-system", configmap("h", app="web"))
    labelled.delete(cms, "default", "a")
    assert await next_events(watch, 2) == [("ADDED", "f"), ("DELETED", "a")]
    assert_idle(watch)
    watch.close()


async def test_watch_event_objects_carry_their_resource_version(store: Store) -> None:
    cms = rt(store, "configmaps")
    watch = store.watch(cms, "default", resource_version=store.resource_version)
    created = store.create(cms, "default", configmap("a"))
    deleted = store.delete(cms, "default", "a")
    added = await asyncio.wait_for(anext(watch), 5)
    gone = await asyncio.wait_for(anext(watch), 5)
    assert added["object"] == created
    assert gone["type"] == "DELETED"
    assert gone["object"]["metadata"]["resourceVersion"] == deleted["metadata"]["resourceVersion"]
    assert int(deleted["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_watch_resume_replays_after_rv(store: Store) -> None:
    cms = rt(store, "configmaps")
    first = store.create(cms, "default", configmap("a"))
    store.create(cms, "default", configmap("b"))
    store.patch(cms, "default", "a", {"data": {"x": "1"}}, MERGE)
    watch = store.watch(cms, "default", resource_version=first["metadata"]["resourceVersion"])
    assert await next_events(watch, 2) == [("ADDED", "b"), ("MODIFIED", "a")]
    assert_idle(watch)


async def test_label_transitions_arrive_as_added_and_deleted(store: Store) -> None:
    cms = rt(store, "configmaps")
    store.create(cms, "default", configmap("a", app="web"))
    watch = store.watch(
        cms, "default", resource_version=store.resource_version, label_selector="app=web"
    )
    store.patch(cms, "default", "a", {"metadata": {"labels": {"app": "db"}}}, MERGE)
    store.patch(cms, "default", "a", {"metadata": {"labels": {"x": "y"}}}, MERGE)
    store.patch(cms, "default", "a", {"metadata": {"labels": {"app": "web"}}}, MERGE)
    store.patch(cms, "default", "a", {"data": {"k": "v"}}, MERGE)
    assert await next_events(watch, 3) == [("DELETED", "a"), ("ADDED", "a"), ("MODIFIED", "a")]
    assert_idle(watch)


async def test_field_selector_watch_for_unscheduled_pods(store: Store) -> None:
    pods = rt(store, "pods")
    watch = store.watch(pods, None, field_selector="spec.nodeName=")
    store.create(pods, "default", pod("p"))
    store.bind("default", "p", {"target": {"kind": "Node", "name": "n1"}})
    assert await next_events(watch, 2) == [("ADDED", "p"), ("DELETED", "p")]


async def test_too_old_resource_version_is_410(store: Store) -> None:
    small = Store(watch_window=3)
    cms = rt(small, "configmaps")
    start = small.resource_version
    for i in range(5):
        small.create(cms, "default", configmap(f"c{i}"))
    with pytest.raises(ApiError) as caught:
        small.watch(cms, None, resource_version=start)
    assert (caught.value.code, caught.value.reason) == (410, "Expired")
    assert caught.value.message.startswith(f"too old resource version: {start} (")
    recent = small.list(cms, None)["metadata"]["resourceVersion"]
    assert small.watch(cms, None, resource_version=recent).pending == 0


async def test_watch_window_is_per_resource_type(store: Store) -> None:
    small = Store(watch_window=3)
    start = small.resource_version
    for i in range(5):
        small.create(rt(small, "secrets"), "default", {"metadata": {"name": f"s{i}"}})
    small.create(rt(small, "configmaps"), "default", configmap("only"))
    watch = small.watch(rt(small, "configmaps"), None, resource_version=start)
    assert await next_events(watch, 1) == [("ADDED", "only")]


async def test_watch_from_future_rv_waits(store: Store) -> None:
    cms = rt(store, "configmaps")
    future = int(store.resource_version) + 2
    watch = store.watch(cms, None, resource_version=str(future))
    store.create(cms, "default", configmap("a"))  # rv future-1
    store.create(cms, "default", configmap("b"))  # rv future
    store.create(cms, "default", configmap("c"))  # rv future+1
    assert await next_events(watch, 1) == [("ADDED", "c")]


async def test_close_watches_ends_streams_and_expire_forces_relist(store: Store) -> None:
    cms = rt(store, "configmaps")
    watch = store.watch(cms, None)
    rv = store.resource_version
    store.create(cms, "default", configmap("a"))
    store.close_watches(expire=True)
    assert [event async for event in watch] == []
    with pytest.raises(ApiError) as caught:
        store.watch(cms, None, resource_version=rv)
    assert caught.value.code == 410
    assert store.watch(cms, None, resource_version=store.resource_version).pending == 0


async def test_closed_watch_gets_no_more_events(store: Store) -> None:
    cms = rt(store, "configmaps")
    watch = store.watch(cms, None, resource_version=store.resource_version)
    watch.close()
    store.create(cms, "default", configmap("a"))
    assert [event async for event in watch] == []


def test_bad_watch_resource_version_is_400(store: Store) -> None:
    with pytest.raises(ApiError) as caught:
        store.watch(rt(store, "configmaps"), None, resource_version="abc")
    assert caught.value.code == 400
