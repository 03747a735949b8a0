"""Server-side apply (`application/apply-patch+yaml`), as kubectl --server-side and Helm 4 send it.

Run on both targets: what the sandbox serves of it (create or merge, field managers, removal of
what a manager stops applying, conflicts and force, the status subresource, no-op applies) must
be what kube-apiserver does.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from support.helpers import ClusterTarget
from support.widgets import Widgets

APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}


def apply(
    cluster: ClusterTarget,
    path: str,
    body: dict[str, Any],
    manager: str | None,
    *,
    force: bool = False,
) -> requests.Response:
    params = {"force": "true"} if force else {}
    if manager is not None:
        params["fieldManager"] = manager
    response: requests.Response = cluster.http.patch(
        path, data=json.dumps(body), headers=APPLY, params=params
    )
    return response


def configmap(name: str, labels: dict[str, str], **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }


def owned(obj: dict[str, Any], manager: str) -> dict[str, Any]:
    """The FieldsV1 of `manager`'s Apply entry (empty when it has none)."""
    for entry in obj["metadata"].get("managedFields") or ():
        if entry["manager"] == manager and entry["operation"] == "Apply":
            fields: dict[str, Any] = entry["fieldsV1"]
            return fields
    return {}


def test_apply_creates_then_merges_and_a_no_op_writes_nothing(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    path = f"/api/v1/namespaces/{cluster_namespace}/configmaps/ssa"
    created = apply(cluster, path, configmap("ssa", {"app": "a"}, one="1"), "alice")
    assert created.status_code == 201, created.text
    obj = created.json()
    assert obj["data"] == {"one": "1"}
    assert "f:one" in owned(obj, "alice")["f:data"]
    assert "f:app" in owned(obj, "alice")["f:metadata"]["f:labels"]

    again = apply(cluster, path, configmap("ssa", {"app": "a"}, one="1"), "alice")
    assert again.status_code == 200, again.text
    assert again.json()["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]

    # Another writer's merge patch adds a key; alice stops applying `one` and adds `two`.
    cluster.http.patch(path, json={"data": {"patched": "yes"}}, headers=MERGE)
    merged = apply(cluster, path, configmap("ssa", {"app": "a"}, two="2"), "alice")
    assert merged.status_code == 200, merged.text
    assert merged.json()["data"] == {"patched": "yes", "two": "2"}


def test_apply_conflicts_name_the_manager_and_force_takes_the_field_over(
    widgets: Widgets, cluster_namespace: str
) -> None:
    cluster = widgets.cluster
    path = widgets.path(cluster_namespace, "contested")
    body = {
        "apiVersion": widgets.api_version,
        "kind": "Widget",
        "metadata": {"name": "contested"},
        "spec": {"size": 2, "color": "blue"},
    }
    assert apply(cluster, path, body, "alice").status_code == 201
    # Bob applying the same value shares the field: no conflict.
    same = {**body, "spec": {"size": 2}}
    assert apply(cluster, path, same, "bob").status_code == 200

    other = {**body, "spec": {"size": 3}}
    refused = apply(cluster, path, other, "carol")
    assert refused.status_code == 409, refused.text
    status = refused.json()
    assert status["reason"] == "Conflict"
    causes = status["details"]["causes"]
    assert {cause["reason"] for cause in causes} == {"FieldManagerConflict"}
    assert {cause["field"] for cause in causes} == {".spec.size"}
    assert any('"alice"' in cause["message"] for cause in causes)
    assert cluster.http.get(path).json()["spec"]["size"] == 2

    forced = apply(cluster, path, other, "carol", force=True)
    assert forced.status_code == 200, forced.text
    obj = forced.json()
    assert obj["spec"]["size"] == 3
    assert "f:size" not in owned(obj, "alice")["f:spec"]
    assert "f:color" in owned(obj, "alice")["f:spec"]
    assert "f:size" in owned(obj, "carol")["f:spec"]


def test_apply_to_status_leaves_the_spec_alone(widgets: Widgets, cluster_namespace: str) -> None:
    cluster = widgets.cluster
    widgets.create(cluster_namespace, "applied-status")
    path = widgets.path(cluster_namespace, "applied-status", "status")
    body = {
        "apiVersion": widgets.api_version,
        "kind": "Widget",
        "metadata": {"name": "applied-status"},
        "spec": {"size": 9},
        "status": {"phase": "Ready"},
    }
    response = apply(cluster, path, body, "status-writer")
    assert response.status_code == 200, response.text
    assert response.json()["status"]["phase"] == "Ready"
    assert response.json()["spec"]["size"] != 9


def test_apply_needs_a_field_manager(cluster: ClusterTarget, cluster_namespace: str) -> None:
    path = f"/api/v1/namespaces/{cluster_namespace}/configmaps/no-manager"
    response = apply(cluster, path, configmap("no-manager", {}, a="1"), None)
    assert response.status_code == 422, response.text
    assert "fieldManager" in response.json()["message"]
