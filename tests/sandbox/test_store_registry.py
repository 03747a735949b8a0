"""The Registry of served collections: built-in kinds as kube-apiserver names them."""

from __future__ import annotations

import pytest

from ecs_sandbox.errors import ApiError
from ecs_sandbox.registry import Registry, version_priority


def test_builtin_kinds_with_short_names_and_subresources() -> None:
    registry = Registry()
    pods = registry.get("", "v1", "pods")
    assert (pods.kind, pods.namespaced, pods.short_names, pods.categories) == (
        "Pod",
        True,
        ("po",),
        ("all",),
    )
    assert pods.subresources == frozenset({"status", "binding", "eviction"})
    assert registry.get("", "v1", "nodes").short_names == ("no",)
    assert not registry.get("", "v1", "namespaces").namespaced
    assert registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions").short_names == (
        "crd",
        "crds",
    )
    assert registry.by_kind("coordination.k8s.io", "v1", "Lease").plural == "leases"
    assert registry.groups()[""] == ["v1"]
    assert {"discovery.k8s.io", "apps", "events.k8s.io"} <= set(registry.groups())


def test_unknown_collection_is_404() -> None:
    with pytest.raises(ApiError) as caught:
        Registry().get("", "v1", "widgets")
    assert caught.value.code == 404
    with pytest.raises(ApiError):
        Registry().by_kind("", "v1", "Widget")


def test_version_priority_is_kube_order() -> None:
    versions = ["v1alpha1", "v2", "v1beta1", "v1", "foo", "v1beta2"]
    assert sorted(versions, key=version_priority) == [
        "v2",
        "v1",
        "v1beta2",
        "v1beta1",
        "v1alpha1",
        "foo",
    ]
