"""Merge, JSON and strategic merge patches: the functions and their use through the Store."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_sandbox.errors import ApiError
from ecs_sandbox.patching import json_patch, merge_patch, strategic_merge_patch
from ecs_sandbox.store import Store

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
SMP = "application/strategic-merge-patch+json"


def test_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3], "n": {"x": 1}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3], "n": {"x": 1}}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}


def test_json_patch_ops_and_failed_test_is_422() -> None:
    doc = {"metadata": {"resourceVersion": "5"}, "spec": {"items": [1]}}
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
        {"op": "add", "path": "/spec/items/-", "value": 2},
        {"op": "add", "path": "/spec/x", "value": 1},
    ]
    assert json_patch(doc, ops) == {
        "metadata": {"resourceVersion": "5"},
        "spec": {"items": [1, 2], "x": 1},
    }
    with pytest.raises(ApiError) as caught:
        json_patch(doc, [{"op": "test", "path": "/metadata/resourceVersion", "value": "4"}])
    assert (caught.value.code, caught.value.reason) == (422, "Invalid")


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"op": "add"}, 400),
        ([{"op": "frobnicate", "path": "/a"}], 400),
        ([{"op": "remove", "path": "/missing"}], 422),
        ([{"op": "replace", "path": "/missing/deeper", "value": 1}], 422),
    ],
)
def test_bad_json_patches(patch: Any, code: int) -> None:
    with pytest.raises(ApiError) as caught:
        json_patch({"a": 1}, patch)
    assert caught.value.code == code


def container(name: str, image: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **extra}


def test_smp_merges_containers_and_env_by_name() -> None:
    target = {
        "spec": {
            "containers": [
                container("a", "x", env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
                container("b", "y"),
            ]
        }
    }
    patch = {
        "spec": {
            "containers": [
                {"name": "a", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]},
                {"name": "c", "image": "z"},
            ]
        }
    }
    result = strategic_merge_patch(target, patch)
    assert result["spec"]["containers"] == [
        container(
            "a",
            "x",
            env=[
                {"name": "A", "value": "1"},
                {"name": "B", "value": "3"},
                {"name": "C", "value": "4"},
            ],
        ),
        container("b", "y"),
        container("c", "z"),
    ]


def test_smp_ports_volume_mounts_and_conditions_by_their_keys() -> None:
    target = {
        "spec": {
            "containers": [
                container(
                    "a",
                    "x",
                    ports=[{"containerPort": 80, "name": "http"}],
                    volumeMounts=[{"mountPath": "/d", "name": "v"}],
                )
            ]
        },
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "PodScheduled", "status": "True"},
            ]
        },
    }
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "volumeMounts": [{"mountPath": "/e", "name": "w"}],
                }
            ]
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    result = strategic_merge_patch(target, patch)
    c = result["spec"]["containers"][0]
    assert c["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert [m["mountPath"] for m in c["volumeMounts"]] == ["/d", "/e"]
    assert result["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "PodScheduled", "status": "True"},
    ]


def test_smp_finalizers_are_a_set_and_tolerations_replace() -> None:
    target = {
        "metadata": {"finalizers": ["a", "b"]},
        "spec": {"tolerations": [{"key": "x"}], "imagePullSecrets": [{"name": "s"}]},
    }
    patch = {
        "metadata": {"finalizers": ["b", "c"]},
        "spec": {"tolerations": [{"key": "y"}], "imagePullSecrets": [{"name": "t"}]},
    }
    result = strategic_merge_patch(target, patch)
    assert result["metadata"]["finalizers"] == ["a", "b", "c"]
    assert result["spec"] == {"tolerations": [{"key": "y"}], "imagePullSecrets": [{"name": "t"}]}
    removed = strategic_merge_patch(
        result, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}
    )
    assert removed["metadata"]["finalizers"] == ["b", "c"]


def test_smp_owner_references_by_uid() -> None:
    target = {
        "metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}
    }
    patch = {
        "metadata": {
            "ownerReferences": [{"uid": "2", "$patch": "delete"}, {"uid": "3", "name": "c"}]
        }
    }
    refs = strategic_merge_patch(target, patch)["metadata"]["ownerReferences"]
    assert refs == [{"uid": "1", "name": "a"}, {"uid": "3", "name": "c"}]


def test_smp_directives() -> None:
    target = {
        "spec": {
            "containers": [container("a", "x"), container("b", "y")],
            "selector": {"k": "v", "old": "1"},
        }
    }
    replaced = strategic_merge_patch(
        target, {"spec": {"selector": {"$patch": "replace", "n": "2"}}}
    )
    assert replaced["spec"]["selector"] == {"n": "2"}
    deleted = strategic_merge_patch(
        target, {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}
    )
    assert [c["name"] for c in deleted["spec"]["containers"]] == ["b"]
    whole = strategic_merge_patch(
        target, {"spec": {"containers": [{"$patch": "replace"}, container("z", "q")]}}
    )
    assert whole["spec"]["containers"] == [container("z", "q")]
    gone = strategic_merge_patch(target, {"spec": {"selector": {"$patch": "delete"}}})
    assert "selector" not in gone["spec"]
    retained = strategic_merge_patch(
        target, {"spec": {"$retainKeys": ["containers"], "selector": None}}
    )
    assert list(retained["spec"]) == ["containers"]


def test_smp_set_element_order_is_applied_not_stored() -> None:
    target = {"spec": {"containers": [container("a", "x"), container("b", "y")]}}
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "x2"}],
        }
    }
    result = strategic_merge_patch(target, patch)
    assert result == {"spec": {"containers": [container("b", "y"), container("a", "x2")]}}


def test_smp_list_item_without_merge_key_is_400() -> None:
    with pytest.raises(ApiError) as caught:
        strategic_merge_patch(
            {"spec": {"containers": []}}, {"spec": {"containers": [{"image": "x"}]}}
        )
    assert caught.value.code == 400
    assert "name" in caught.value.message


# ------------------------------------------------------------------ through the store


@pytest.fixture
def store() -> Store:
    s = Store()
    pods = s.registry.get("", "v1", "pods")
    s.create(
        pods,
        "default",
        {
            "metadata": {"name": "p", "finalizers": ["x.io/keep"]},
            "spec": {"containers": [container("main", "busybox")]},
        },
    )
    return s


def test_store_json_patch_with_stale_rv_test_is_422(store: Store) -> None:
    pods = store.registry.get("", "v1", "pods")
    rv = store.get(pods, "default", "p")["metadata"]["resourceVersion"]
    store.patch(pods, "default", "p", {"metadata": {"labels": {"a": "b"}}}, MERGE)
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}},
    ]
    with pytest.raises(ApiError) as caught:
        store.patch(pods, "default", "p", ops, JSON)
    assert caught.value.code == 422
    assert "annotations" not in store.get(pods, "default", "p")["metadata"]


def test_store_merge_patch_with_stale_rv_is_409(store: Store) -> None:
    pods = store.registry.get("", "v1", "pods")
    with pytest.raises(ApiError) as caught:
        store.patch(
            pods,
            "default",
            "p",
            {"metadata": {"resourceVersion": "1", "labels": {"a": "b"}}},
            MERGE,
        )
    assert caught.value.code == 409


def test_store_strategic_patch_status_conditions(store: Store) -> None:
    pods = store.registry.get("", "v1", "pods")
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    store.patch(pods, "default", "p", patch, SMP, subresource="status")
    patch = {"status": {"conditions": [{"type": "Initialized", "status": "True"}]}}
    result = store.patch(pods, "default", "p", patch, SMP, subresource="status")
    assert [c["type"] for c in result["status"]["conditions"]] == ["Ready", "Initialized"]


def test_store_strategic_patch_accepts_raw_json(store: Store) -> None:
    pods = store.registry.get("", "v1", "pods")
    result = store.patch(pods, "default", "p", b'{"metadata": {"finalizers": ["y.io/also"]}}', SMP)
    assert result["metadata"]["finalizers"] == ["x.io/keep", "y.io/also"]
    with pytest.raises(ApiError) as caught:
        store.patch(pods, "default", "p", b"{not json", SMP)
    assert caught.value.code == 400


def test_store_unknown_media_type_is_415(store: Store) -> None:
    pods = store.registry.get("", "v1", "pods")
    for media in ("application/apply-patch+yaml", "text/plain"):
        with pytest.raises(ApiError) as caught:
            store.patch(pods, "default", "p", {}, media)
        assert (caught.value.code, caught.value.reason) == (415, "UnsupportedMediaType")


def test_store_json_patch_replacing_root_with_non_object_is_422(store: Store) -> None:
    pods = store.registry.get("", "v1", "pods")
    with pytest.raises(ApiError) as caught:
        store.patch(pods, "default", "p", [{"op": "replace", "path": "", "value": [1]}], JSON)
    assert caught.value.code == 422
