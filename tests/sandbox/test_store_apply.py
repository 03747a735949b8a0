"""Server-side apply in the Store and its pure parts (`ecs_sandbox.apply`), without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_sandbox.apply import from_fields_v1, leaves, merge, to_fields_v1
from ecs_sandbox.errors import ApiError
from ecs_sandbox.resources import ResourceType
from ecs_sandbox.store import Store

MERGE = "application/merge-patch+json"


@pytest.fixture
def store() -> Store:
    return Store()


def rt(store: Store, plural: str, group: str = "", version: str = "v1") -> ResourceType:
    return store.registry.get(group, version, plural)


def deployment(replicas: int, labels: dict[str, str], args: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "op", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "op"}},
            "template": {
                "metadata": {"labels": {"app": "op"}},
                "spec": {"containers": [{"name": "op", "image": "op:1", "args": args}]},
            },
        },
    }


def managers(obj: dict[str, Any]) -> dict[str, set[tuple[str, ...]]]:
    return {
        entry["manager"]: from_fields_v1(entry["fieldsV1"])
        for entry in obj["metadata"].get("managedFields") or ()
    }


def test_field_sets_round_trip_through_fields_v1() -> None:
    config = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1], "empty": {}, "n": 0}}
    paths = leaves(config)
    assert paths == {
        ("metadata", "labels", "a"),
        ("spec", "list"),
        ("spec", "empty"),
        ("spec", "n"),
    }
    fields = to_fields_v1(paths)
    assert fields["f:spec"]["f:list"] == {}
    assert from_fields_v1(fields) == paths
    # A real API server's entries: "." marks the map itself, k:/v: list items own the list.
    real = {"f:data": {".": {}, "f:x": {}}, "f:spec": {"f:ports": {'k:{"port":80}': {}}}}
    assert from_fields_v1(real) == {("data", "x"), ("spec", "ports")}


def test_merge_keeps_maps_and_replaces_lists() -> None:
    live = {"spec": {"a": 1, "list": [1, 2], "m": {"x": 1}}}
    assert merge(live, {"spec": {"list": [3], "m": {"y": 2}}}) == {
        "spec": {"a": 1, "list": [3], "m": {"x": 1, "y": 2}}
    }
    assert live == {"spec": {"a": 1, "list": [1, 2], "m": {"x": 1}}}


def test_apply_creates_the_object_with_one_apply_entry(store: Store) -> None:
    deployments = rt(store, "deployments", "apps")
    obj, created = store.apply(
        deployments, "default", "op", deployment(1, {"a": "1"}, ["--x"]), manager="helm"
    )
    assert created
    assert obj["metadata"]["uid"] and obj["metadata"]["generation"] == 1
    [entry] = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == (
        "helm",
        "Apply",
        "apps/v1",
    )
    assert ("spec", "replicas") in from_fields_v1(entry["fieldsV1"])
    assert ("metadata", "name") not in from_fields_v1(entry["fieldsV1"])


def test_reapplying_updates_removes_what_the_manager_dropped_and_keeps_others(
    store: Store,
) -> None:
    deployments = rt(store, "deployments", "apps")
    store.apply(deployments, "default", "op", deployment(1, {"a": "1", "b": "2"}, []), manager="h")
    store.patch(deployments, "default", "op", {"metadata": {"labels": {"c": "3"}}}, MERGE)
    obj, created = store.apply(
        deployments, "default", "op", deployment(2, {"a": "1"}, ["--y"]), manager="h"
    )
    assert not created
    assert obj["metadata"]["labels"] == {"a": "1", "c": "3"}
    assert obj["spec"]["replicas"] == 2
    assert obj["spec"]["template"]["spec"]["containers"][0]["args"] == ["--y"]
    assert obj["metadata"]["generation"] == 2


def test_a_no_op_apply_writes_nothing(store: Store) -> None:
    deployments = rt(store, "deployments", "apps")
    first, _ = store.apply(deployments, "default", "op", deployment(1, {}, []), manager="h")
    again, _ = store.apply(deployments, "default", "op", deployment(1, {}, []), manager="h")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert again["metadata"]["managedFields"] == first["metadata"]["managedFields"]


def test_conflicts_are_409_unless_forced(store: Store) -> None:
    deployments = rt(store, "deployments", "apps")
    store.apply(deployments, "default", "op", deployment(1, {"a": "1"}, []), manager="helm")
    with pytest.raises(ApiError) as caught:
        store.apply(deployments, "default", "op", deployment(3, {"a": "1"}, []), manager="kubectl")
    error = caught.value
    assert (error.code, error.reason) == (409, "Conflict")
    assert {(c.reason, c.field) for c in error.causes} == {
        ("FieldManagerConflict", ".spec.replicas")
    }
    assert 'conflict with "helm": .spec.replicas' in error.message

    obj, _ = store.apply(
        deployments, "default", "op", deployment(3, {"a": "1"}, []), manager="kubectl", force=True
    )
    assert obj["spec"]["replicas"] == 3
    owners = managers(obj)
    assert ("spec", "replicas") not in owners["helm"]
    assert ("spec", "replicas") in owners["kubectl"]
    # Both apply the same label value: shared, no conflict, and helm still owns it.
    assert ("metadata", "labels", "a") in owners["helm"]


def test_apply_checks_its_input(store: Store) -> None:
    configmaps = rt(store, "configmaps")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
    with pytest.raises(ApiError) as caught:
        store.apply(configmaps, "default", "c", body, manager="")
    assert caught.value.code == 422 and "fieldManager" in caught.value.message
    with pytest.raises(ApiError) as caught:
        store.apply(configmaps, "default", "other", body, manager="m")
    assert caught.value.code == 400 and "does not match the name on the URL" in caught.value.message
    with pytest.raises(ApiError) as caught:
        store.apply(
            configmaps,
            "default",
            "c",
            {**body, "metadata": {"name": "c", "managedFields": [{}]}},
            manager="m",
        )
    assert caught.value.code == 400
    with pytest.raises(ApiError) as caught:
        store.apply(configmaps, "default", "c", {**body, "kind": "Secret"}, manager="m")
    assert caught.value.code == 400
    with pytest.raises(ApiError) as caught:
        store.apply(rt(store, "pods"), "default", "nope", {"status": {}}, manager="m",
                    subresource="status")  # fmt: skip
    assert caught.value.code == 404


def test_other_writes_keep_managed_fields_unless_they_send_them(store: Store) -> None:
    configmaps = rt(store, "configmaps")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    applied, _ = store.apply(configmaps, "default", "c", body, manager="m")
    entries = applied["metadata"]["managedFields"]
    replaced = store.replace(
        configmaps, "default", "c", {**body, "data": {"a": "2"}, "metadata": {"name": "c"}}
    )
    assert replaced["metadata"]["managedFields"] == entries
    cleared = store.patch(configmaps, "default", "c", {"metadata": {"managedFields": [{}]}}, MERGE)
    assert "managedFields" not in cleared["metadata"]


def test_status_apply_changes_the_status_only(store: Store) -> None:
    pods = rt(store, "pods")
    store.create(
        pods,
        "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    )
    config = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "changed"}]},
        "status": {"phase": "Running"},
    }
    obj, created = store.apply(
        pods, "default", "p", config, manager="kubelet", subresource="status"
    )
    assert not created
    assert obj["status"]["phase"] == "Running"
    assert obj["spec"]["containers"][0]["image"] == "i"
    [entry] = obj["metadata"]["managedFields"]
    assert entry["subresource"] == "status"
