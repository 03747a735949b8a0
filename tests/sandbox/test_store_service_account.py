"""Store (no HTTP): the ServiceAccount admission plugin (a Pod naming none gets `default`, a
Pod naming one its namespace does not have is refused) and the `default` ServiceAccount of every
namespace."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_sandbox.errors import ApiError
from ecs_sandbox.store import Store


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "m", "image": "b"}], **spec},
    }


def test_a_pod_naming_a_missing_service_account_is_refused_before_it_is_stored() -> None:
    store = Store()
    pods = store.registry.get("", "v1", "pods")
    accounts = store.registry.get("", "v1", "serviceaccounts")
    with pytest.raises(ApiError) as refused:
        store.create(pods, "default", pod("p", serviceAccountName="reader"))
    assert (refused.value.code, refused.value.reason) == (403, "Forbidden")
    assert refused.value.message == (
        'pods "p" is forbidden: error looking up service account default/reader: '
        'serviceaccount "reader" not found'
    )
    assert store.list(pods, "default")["items"] == []
    with pytest.raises(ApiError):  # a dry run is admitted the same way
        store.create(pods, "default", pod("p", serviceAccountName="reader"), dry_run=True)

    store.create(accounts, "default", {"metadata": {"name": "reader"}})
    assert store.create(pods, "default", pod("p", serviceAccountName="reader"))["metadata"]["uid"]
    # another namespace's ServiceAccount of that name does not count
    store.create(store.registry.get("", "v1", "namespaces"), None, {"metadata": {"name": "o"}})
    with pytest.raises(ApiError, match="error looking up service account o/reader"):
        store.create(pods, "o", pod("p", serviceAccountName="reader"))


def test_a_new_namespace_has_a_default_service_account_that_pods_get() -> None:
    store = Store()
    pods = store.registry.get("", "v1", "pods")
    accounts = store.registry.get("", "v1", "serviceaccounts")
    store.create(store.registry.get("", "v1", "namespaces"), None, {"metadata": {"name": "n"}})
    # a Pod created right after its namespace is admitted: `default` came with the namespace
    spec = store.create(pods, "n", pod("p"))["spec"]
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("default", "default")
    for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert store.get(accounts, namespace, "default")

    # the deprecated field alone names the account, and is looked up as well
    with pytest.raises(ApiError, match="error looking up service account n/old"):
        store.create(pods, "n", pod("q", serviceAccount="old"))
    store.create(accounts, "n", {"metadata": {"name": "old"}})
    spec = store.create(pods, "n", pod("q", serviceAccount="old"))["spec"]
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("old", "old")


def test_a_deleted_default_service_account_is_created_again() -> None:
    store = Store()
    accounts = store.registry.get("", "v1", "serviceaccounts")
    first = store.get(accounts, "default", "default")["metadata"]["uid"]
    store.delete(accounts, "default", "default")
    assert store.get(accounts, "default", "default")["metadata"]["uid"] != first
    # other ServiceAccounts are not
    store.create(accounts, "default", {"metadata": {"name": "reader"}})
    store.delete(accounts, "default", "reader")
    with pytest.raises(ApiError):
        store.get(accounts, "default", "reader")
