"""Store (no HTTP): CRDs served in-process, custom-object admission, scale, CRD deletion."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_sandbox.errors import ApiError
from ecs_sandbox.resources import ResourceType
from ecs_sandbox.store import Store

GROUP = "test.ecs.operator.dev"
CRDS = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
MERGE = "application/merge-patch+json"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "default": 1},
                "color": {"type": "string"},
            },
        },
        "status": {
            "type": "object",
            "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}},
        },
    },
}


def gadget_crd(*, versions: tuple[str, ...] = ("v1",), plural: str = "gadgets") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": plural,
                "singular": "gadget",
                "kind": "Gadget",
                "shortNames": ["gd"],
                "categories": ["all", "ecs"],
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": i == 0,
                    "schema": {"openAPIV3Schema": SCHEMA},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                }
                for i, version in enumerate(versions)
            ],
        },
    }


@pytest.fixture
def store() -> Store:
    return Store()


def crds(store: Store) -> ResourceType:
    return store.registry.get(*CRDS)


def gadgets(store: Store, version: str = "v1") -> ResourceType:
    return store.registry.get(GROUP, version, "gadgets")


def gadget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": spec}


def error_of(call: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_crd_is_served_at_once_with_conditions(store: Store) -> None:
    created = store.create(crds(store), None, gadget_crd())
    conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert created["status"]["acceptedNames"]["plural"] == "gadgets"
    assert created["status"]["storedVersions"] == ["v1"]
    rt = gadgets(store)
    assert (rt.kind, rt.namespaced, rt.short_names, rt.categories) == (
        "Gadget",
        True,
        ("gd",),
        ("all", "ecs"),
    )
    assert rt.subresources == frozenset({"status", "scale"})
    assert store.registry.groups()[GROUP] == ["v1"]


def test_crd_status_from_the_client_is_replaced(store: Store) -> None:
    body = gadget_crd()
    body["status"] = {"conditions": [{"type": "Established", "status": "False"}]}
    created = store.create(crds(store), None, body)
    assert {c["type"]: c["status"] for c in created["status"]["conditions"]}[
        "Established"
    ] == "True"


def test_bad_crd_is_422(store: Store) -> None:
    body = gadget_crd()
    body["metadata"]["name"] = "wrong"
    err = error_of(store.create, crds(store), None, body)
    assert err.code == 422
    assert err.causes[0].field == "metadata.name"
    body = gadget_crd()
    del body["spec"]["names"]["kind"]
    assert error_of(store.create, crds(store), None, body).causes[0].field == "spec.names.kind"
    with pytest.raises(ApiError):
        store.registry.get(GROUP, "v1", "gadgets")


def test_conflicting_names_are_not_accepted(store: Store) -> None:
    store.create(crds(store), None, gadget_crd())
    clash = gadget_crd(plural="gizmos")  # kind Gadget is taken in this group
    created = store.create(crds(store), None, clash)
    conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "False", "Established": "False"}
    with pytest.raises(ApiError):
        store.registry.get(GROUP, "v1", "gizmos")


def test_custom_objects_are_admitted_by_the_schema(store: Store) -> None:
    store.create(crds(store), None, gadget_crd())
    created = store.create(gadgets(store), "default", gadget("g", color="red", unknown="pruned"))
    assert created["spec"] == {"color": "red", "replicas": 1}
    err = error_of(store.create, gadgets(store), "default", gadget("h", replicas=-1))
    assert (err.code, err.reason) == (422, "Invalid")
    err = error_of(store.patch, gadgets(store), "default", "g", {"spec": {"replicas": "x"}}, MERGE)
    assert err.code == 422
    assert store.get(gadgets(store), "default", "g")["spec"]["replicas"] == 1


def test_strategic_merge_patch_on_custom_objects_is_415(store: Store) -> None:
    store.create(crds(store), None, gadget_crd())
    store.create(gadgets(store), "default", gadget("g"))
    err = error_of(
        store.patch,
        gadgets(store),
        "default",
        "g",
        {"spec": {}},
        "application/strategic-merge-patch+json",
    )
    assert err.code == 415


def test_custom_status_subresource_isolation_and_generation(store: Store) -> None:
    store.create(crds(store), None, gadget_crd())
    rt = gadgets(store)
    store.create(rt, "default", gadget("g"))
    ignored = store.patch(rt, "default", "g", {"status": {"replicas": 3}}, MERGE)
    assert "status" not in ignored
    status = store.patch(
        rt,
        "default",
        "g",
        {"status": {"replicas": 3}, "spec": {"color": "x"}},
        MERGE,
        subresource="status",
    )
    assert status["status"] == {"replicas": 3}
    assert "color" not in status["spec"]
    assert status["metadata"]["generation"] == 1
    spec = store.patch(rt, "default", "g", {"spec": {"color": "blue"}}, MERGE)
    assert spec["metadata"]["generation"] == 2
    assert spec["status"] == {"replicas": 3}


def test_scale_subresource(store: Store) -> None:
    store.create(crds(store), None, gadget_crd())
    rt = gadgets(store)
    store.create(rt, "default", gadget("g", replicas=2))
    store.patch(
        rt,
        "default",
        "g",
        {"status": {"replicas": 1, "selector": "app=g"}},
        MERGE,
        subresource="status",
    )
    scale = store.get_scale(rt, "default", "g")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 1, "selector": "app=g"}
    scale["spec"]["replicas"] = 5
    replaced = store.replace_scale(rt, "default", "g", scale)
    assert replaced["spec"]["replicas"] == 5
    obj = store.get(rt, "default", "g")
    assert obj["spec"]["replicas"] == 5
    assert obj["metadata"]["generation"] == 2
    err = error_of(store.replace_scale, rt, "default", "g", scale)  # stale resourceVersion
    assert err.code == 409
    patched = store.patch(rt, "default", "g", {"spec": {"replicas": 0}}, MERGE, subresource="scale")
    assert patched["spec"]["replicas"] == 0
    err = error_of(store.patch_scale, rt, "default", "g", {"spec": {"replicas": -1}}, MERGE)
    assert (err.code, err.causes[0].field) == (422, "spec.replicas")


def test_scale_of_kind_without_it_is_404(store: Store) -> None:
    pods = store.registry.get("", "v1", "pods")
    assert error_of(store.get_scale, pods, "default", "x").code == 404


def test_multiple_versions_share_storage(store: Store) -> None:
    store.create(crds(store), None, gadget_crd(versions=("v1", "v1beta1")))
    assert store.registry.groups()[GROUP] == ["v1", "v1beta1"]
    store.create(
        gadgets(store, "v1beta1"), "default", {**gadget("g"), "apiVersion": f"{GROUP}/v1beta1"}
    )
    seen = store.get(gadgets(store, "v1"), "default", "g")
    assert seen["apiVersion"] == f"{GROUP}/v1"


def test_crd_update_changes_what_is_served(store: Store) -> None:
    crd = store.create(crds(store), None, gadget_crd(versions=("v1", "v1beta1")))
    crd["spec"]["versions"][1]["served"] = False
    store.replace(crds(store), None, crd["metadata"]["name"], crd)
    assert store.registry.groups()[GROUP] == ["v1"]


def test_crd_deletion_removes_custom_objects_then_the_type(store: Store) -> None:
    store.create(crds(store), None, gadget_crd())
    rt = gadgets(store)
    store.create(rt, "default", gadget("plain"))
    held = gadget("held")
    held["metadata"]["finalizers"] = ["x.io/f"]
    store.create(rt, "default", held)
    deleting = store.delete(crds(store), None, f"gadgets.{GROUP}")
    assert deleting["metadata"]["deletionTimestamp"]
    assert [i["metadata"]["name"] for i in store.list(rt, None)["items"]] == ["held"]
    err = error_of(store.create, rt, "default", gadget("late"))
    assert err.code == 405
    store.patch(rt, "default", "held", {"metadata": {"finalizers": None}}, MERGE)
    with pytest.raises(ApiError):
        store.registry.get(GROUP, "v1", "gadgets")
    assert error_of(store.get, crds(store), None, f"gadgets.{GROUP}").code == 404


def test_crd_recreated_starts_empty(store: Store) -> None:
    store.create(crds(store), None, gadget_crd())
    store.create(gadgets(store), "default", gadget("g"))
    store.delete(crds(store), None, f"gadgets.{GROUP}")
    store.create(crds(store), None, gadget_crd())
    assert store.list(gadgets(store), None)["items"] == []


async def test_watch_on_removed_type_ends(store: Store) -> None:
    store.create(crds(store), None, gadget_crd())
    watch = store.watch(gadgets(store), None)
    store.delete(crds(store), None, f"gadgets.{GROUP}")
    assert [event async for event in watch] == []
