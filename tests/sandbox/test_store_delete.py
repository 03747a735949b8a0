"""Store (no HTTP): deletion, finalizers, graceful pods, GC policies, namespaces, bind/evict."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ecs_sandbox.errors import ApiError
from ecs_sandbox.resources import ResourceType
from ecs_sandbox.store import Store

MERGE = "application/merge-patch+json"


@pytest.fixture
def store() -> Store:
    return Store()


def rt(store: Store, plural: str) -> ResourceType:
    return store.registry.get("", "v1", plural)


def pod(name: str, node: str | None = None, **meta: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, **meta}, "spec": spec}


def owned_by(owner: dict[str, Any], *, block: bool = False) -> list[dict[str, Any]]:
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    if block:
        ref["blockOwnerDeletion"] = True
    return [ref]


def exists(store: Store, plural: str, namespace: str | None, name: str) -> bool:
    try:
        store.get(rt(store, plural), namespace, name)
    except ApiError as exc:
        assert exc.code == 404
        return False
    return True


def error_of(call: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_delete_returns_the_removed_object(store: Store) -> None:
    created = store.create(rt(store, "configmaps"), "default", {"metadata": {"name": "a"}})
    deleted = store.delete(rt(store, "configmaps"), "default", "a")
    assert deleted["metadata"]["uid"] == created["metadata"]["uid"]
    assert not exists(store, "configmaps", "default", "a")
    assert error_of(store.delete, rt(store, "configmaps"), "default", "a").code == 404


def test_delete_preconditions(store: Store) -> None:
    created = store.create(rt(store, "configmaps"), "default", {"metadata": {"name": "a"}})
    cms = rt(store, "configmaps")
    err = error_of(store.delete, cms, "default", "a", {"preconditions": {"uid": "other"}})
    assert (err.code, err.reason) == (409, "Conflict")
    err = error_of(store.delete, cms, "default", "a", {"preconditions": {"resourceVersion": "1"}})
    assert err.code == 409
    rv = created["metadata"]["resourceVersion"]
    store.delete(
        cms,
        "default",
        "a",
        {"preconditions": {"uid": created["metadata"]["uid"], "resourceVersion": rv}},
    )
    assert not exists(store, "configmaps", "default", "a")


def test_bad_delete_options(store: Store) -> None:
    store.create(rt(store, "configmaps"), "default", {"metadata": {"name": "a"}})
    err = error_of(
        store.delete, rt(store, "configmaps"), "default", "a", {"propagationPolicy": "Sideways"}
    )
    assert err.code == 422
    assert err.causes[0].field == "propagationPolicy"
    err = error_of(
        store.delete, rt(store, "configmaps"), "default", "a", {"gracePeriodSeconds": "soon"}
    )
    assert err.causes[0].field == "gracePeriodSeconds"
    assert exists(store, "configmaps", "default", "a")


async def test_finalizers_hold_the_object_until_emptied(store: Store) -> None:
    cms = rt(store, "configmaps")
    created = store.create(cms, "default", {"metadata": {"name": "a", "finalizers": ["x.io/f"]}})
    watch = store.watch(cms, "default", resource_version=created["metadata"]["resourceVersion"])
    deleting = store.delete(cms, "default", "a")
    assert deleting["metadata"]["deletionTimestamp"]
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 0
    assert deleting["metadata"]["generation"] == 2
    assert store.delete(cms, "default", "a")["metadata"] == deleting["metadata"]  # idempotent
    err = error_of(
        store.patch,
        cms,
        "default",
        "a",
        {"metadata": {"finalizers": ["x.io/f", "y.io/new"]}},
        MERGE,
    )
    assert err.code == 422
    store.patch(cms, "default", "a", {"metadata": {"finalizers": None}}, MERGE)
    assert not exists(store, "configmaps", "default", "a")
    events = [(await asyncio.wait_for(anext(watch), 5))["type"] for _ in range(2)]
    assert events == ["MODIFIED", "DELETED"]


def test_bound_pod_deletion_is_graceful(store: Store) -> None:
    pods = rt(store, "pods")
    store.create(pods, "default", pod("p", node="n1"))
    deleting = store.delete(pods, "default", "p")
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 30
    assert exists(store, "pods", "default", "p")
    store.patch(pods, "default", "p", {"metadata": {"labels": {"a": "b"}}}, MERGE)
    assert exists(store, "pods", "default", "p")
    shorter = store.delete(pods, "default", "p", {"gracePeriodSeconds": 5})
    assert shorter["metadata"]["deletionGracePeriodSeconds"] == 5
    store.delete(pods, "default", "p", {"gracePeriodSeconds": 0})
    assert not exists(store, "pods", "default", "p")


def test_unbound_pod_goes_at_once(store: Store) -> None:
    store.create(rt(store, "pods"), "default", pod("p"))
    store.delete(rt(store, "pods"), "default", "p")
    assert not exists(store, "pods", "default", "p")


def test_bound_pod_with_finalizer_needs_both(store: Store) -> None:
    pods = rt(store, "pods")
    store.create(pods, "default", pod("p", node="n1", finalizers=["x.io/f"]))
    store.delete(pods, "default", "p", {"gracePeriodSeconds": 0})
    assert exists(store, "pods", "default", "p")
    store.patch(pods, "default", "p", {"metadata": {"finalizers": []}}, MERGE)
    assert not exists(store, "pods", "default", "p")


def make_family(store: Store, *, block: bool = False) -> tuple[dict[str, Any], list[str]]:
    owner = store.create(rt(store, "configmaps"), "default", {"metadata": {"name": "owner"}})
    children = []
    for i in range(2):
        child = store.create(
            rt(store, "secrets"),
            "default",
            {"metadata": {"name": f"child{i}", "ownerReferences": owned_by(owner, block=block)}},
        )
        children.append(child["metadata"]["name"])
    return owner, children


def test_background_deletion_collects_dependents(store: Store) -> None:
    _, children = make_family(store)
    store.delete(rt(store, "configmaps"), "default", "owner")
    assert not exists(store, "configmaps", "default", "owner")
    assert [c for c in children if exists(store, "secrets", "default", c)] == []


def test_dependent_with_another_live_owner_survives(store: Store) -> None:
    owner, _ = make_family(store)
    other = store.create(rt(store, "configmaps"), "default", {"metadata": {"name": "other"}})
    refs = [*owned_by(owner), {**owned_by(other)[0], "controller": False}]
    store.create(
        rt(store, "secrets"), "default", {"metadata": {"name": "shared", "ownerReferences": refs}}
    )
    store.delete(rt(store, "configmaps"), "default", "owner")
    shared = store.get(rt(store, "secrets"), "default", "shared")
    assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["other"]


def test_orphan_deletion_keeps_dependents_without_the_reference(store: Store) -> None:
    _, children = make_family(store)
    store.delete(rt(store, "configmaps"), "default", "owner", {"propagationPolicy": "Orphan"})
    assert not exists(store, "configmaps", "default", "owner")
    for name in children:
        assert "ownerReferences" not in store.get(rt(store, "secrets"), "default", name)["metadata"]


def test_foreground_deletion_waits_for_blocking_dependents(store: Store) -> None:
    owner = store.create(rt(store, "configmaps"), "default", {"metadata": {"name": "owner"}})
    store.create(
        rt(store, "pods"),
        "default",
        pod("bound", node="n1", ownerReferences=owned_by(owner, block=True)),
    )
    store.create(
        rt(store, "secrets"),
        "default",
        {"metadata": {"name": "plain", "ownerReferences": owned_by(owner)}},
    )
    deleting = store.delete(
        rt(store, "configmaps"), "default", "owner", {"propagationPolicy": "Foreground"}
    )
    assert "foregroundDeletion" in deleting["metadata"]["finalizers"]
    assert not exists(store, "secrets", "default", "plain")
    assert store.get(rt(store, "pods"), "default", "bound")["metadata"]["deletionTimestamp"]
    assert exists(store, "configmaps", "default", "owner")
    store.delete(rt(store, "pods"), "default", "bound", {"gracePeriodSeconds": 0})  # the kubelet
    assert not exists(store, "configmaps", "default", "owner")


def test_foreground_without_blocking_dependents_finishes_at_once(store: Store) -> None:
    make_family(store)
    store.delete(rt(store, "configmaps"), "default", "owner", {"propagationPolicy": "Foreground"})
    assert not exists(store, "configmaps", "default", "owner")
    assert not exists(store, "secrets", "default", "child0")


def test_dependent_of_missing_owner_is_collected(store: Store) -> None:
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "no-such-uid"}
    store.create(
        rt(store, "secrets"), "default", {"metadata": {"name": "s", "ownerReferences": [ghost]}}
    )
    assert not exists(store, "secrets", "default", "s")


def test_cross_namespace_owner_does_not_count(store: Store) -> None:
    owner = store.create(rt(store, "configmaps"), "kube-system", {"metadata": {"name": "owner"}})
    store.create(
        rt(store, "secrets"),
        "default",
        {"metadata": {"name": "s", "ownerReferences": owned_by(owner)}},
    )
    assert not exists(store, "secrets", "default", "s")


def test_cluster_scoped_owner_of_namespaced_dependent(store: Store) -> None:
    node = store.create(rt(store, "nodes"), None, {"metadata": {"name": "n1"}})
    store.create(
        rt(store, "configmaps"),
        "default",
        {"metadata": {"name": "c", "ownerReferences": owned_by(node)}},
    )
    assert exists(store, "configmaps", "default", "c")
    store.delete(rt(store, "nodes"), None, "n1")
    assert not exists(store, "configmaps", "default", "c")


def test_dependent_with_finalizer_only_gets_deletion_timestamp(store: Store) -> None:
    owner = store.create(rt(store, "configmaps"), "default", {"metadata": {"name": "owner"}})
    store.create(
        rt(store, "secrets"),
        "default",
        {"metadata": {"name": "s", "finalizers": ["x.io/f"], "ownerReferences": owned_by(owner)}},
    )
    store.delete(rt(store, "configmaps"), "default", "owner")
    assert store.get(rt(store, "secrets"), "default", "s")["metadata"]["deletionTimestamp"]


def test_namespace_deletion_cascades(store: Store) -> None:
    namespaces = rt(store, "namespaces")
    store.create(namespaces, None, {"metadata": {"name": "team"}})
    store.create(rt(store, "configmaps"), "team", {"metadata": {"name": "c"}})
    store.create(rt(store, "pods"), "team", pod("p", node="n1"))
    terminating = store.delete(namespaces, None, "team")
    assert terminating["status"]["phase"] == "Terminating"
    assert not exists(store, "configmaps", "team", "c")
    assert store.get(rt(store, "pods"), "team", "p")["metadata"]["deletionTimestamp"]
    err = error_of(store.create, rt(store, "configmaps"), "team", {"metadata": {"name": "late"}})
    assert (err.code, err.reason) == (403, "Forbidden")
    assert store.get(namespaces, None, "team")["metadata"]["deletionTimestamp"]
    store.delete(rt(store, "pods"), "team", "p", {"gracePeriodSeconds": 0})
    assert not exists(store, "namespaces", None, "team")


def test_default_namespace_cannot_be_deleted(store: Store) -> None:
    err = error_of(store.delete, rt(store, "namespaces"), None, "default")
    assert (err.code, err.reason) == (403, "Forbidden")


def test_delete_collection_with_selector(store: Store) -> None:
    cms = rt(store, "configmaps")
    for name, app in (("a", "web"), ("b", "web"), ("c", "db")):
        store.create(cms, "default", {"metadata": {"name": name, "labels": {"app": app}}})
    deleted = store.delete_collection(cms, "default", label_selector="app=web")
    assert deleted["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in deleted["items"]] == ["a", "b"]
    assert [i["metadata"]["name"] for i in store.list(cms, None)["items"]] == ["c"]


def test_bind_sets_node_and_condition(store: Store) -> None:
    store.create(rt(store, "pods"), "default", pod("p"))
    bound = store.bind(
        "default",
        "p",
        {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": "p"},
            "target": {"kind": "Node", "name": "n1"},
        },
    )
    assert bound["spec"]["nodeName"] == "n1"
    assert {"type": "PodScheduled", "status": "True"}.items() <= bound["status"]["conditions"][
        0
    ].items()
    err = error_of(store.bind, "default", "p", {"target": {"name": "n2"}})
    assert (err.code, err.reason) == (409, "Conflict")
    assert 'already assigned to node "n1"' in err.message
    assert error_of(store.bind, "default", "p", {"target": {}}).code == 422
    assert error_of(store.bind, "default", "missing", {"target": {"name": "n1"}}).code == 404


def test_evict_honours_delete_options(store: Store) -> None:
    store.create(rt(store, "pods"), "default", pod("p", node="n1"))
    evicted = store.evict("default", "p", {"deleteOptions": {"gracePeriodSeconds": 7}})
    assert evicted["metadata"]["deletionGracePeriodSeconds"] == 7
    store.evict("default", "p", {"deleteOptions": {"gracePeriodSeconds": 0}})
    assert not exists(store, "pods", "default", "p")
