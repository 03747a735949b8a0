"""Store (no HTTP): the ServiceAccount admission plugin's refusal of a Pod naming a
ServiceAccount its namespace does not have."""

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


def test_a_pod_without_a_service_account_is_not_looked_up() -> None:
    store = Store()
    pods = store.registry.get("", "v1", "pods")
    assert store.create(pods, "default", pod("p"))["metadata"]["name"] == "p"
