"""The kinds of the operator's own install (Deployment, ServiceAccount, RBAC) are served.

The sandbox only stores them (no Deployment controller, no RBAC enforcement), so that
`kubectl apply -k manifests/` and the Helm chart apply to it as to a real cluster.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.helpers import ClusterTarget, unique_name

RBAC = "/apis/rbac.authorization.k8s.io/v1"
ROLE_RULES = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
MERGE = {"Content-Type": "application/merge-patch+json"}

# (group version path, plural, kind, namespaced)
KINDS = [
    ("/apis/apps/v1", "deployments", "Deployment", True),
    ("/api/v1", "serviceaccounts", "ServiceAccount", True),
    (RBAC, "clusterroles", "ClusterRole", False),
    (RBAC, "clusterrolebindings", "ClusterRoleBinding", False),
    (RBAC, "roles", "Role", True),
    (RBAC, "rolebindings", "RoleBinding", True),
]


def body(kind: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": kind, "metadata": {"name": name, "labels": {"suite": "c"}}}
    if kind == "Deployment":
        labels = {"app": name}
        obj["apiVersion"] = "apps/v1"
        obj["spec"] = {
            "replicas": 0,  # never runs a pod on a real cluster either
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            },
        }
    elif kind == "ServiceAccount":
        obj["apiVersion"] = "v1"
    else:
        obj["apiVersion"] = "rbac.authorization.k8s.io/v1"
        if kind.endswith("Binding"):
            role_kind = kind.removesuffix("Binding")
            obj["roleRef"] = {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": role_kind,
                "name": name,
            }
            obj["subjects"] = [
                {"kind": "ServiceAccount", "name": "default", "namespace": "default"}
            ]
        else:
            obj["rules"] = ROLE_RULES
    return obj


@pytest.mark.parametrize(
    ("group_version", "plural", "kind", "namespaced"), KINDS, ids=[k[1] for k in KINDS]
)
def test_install_kind_is_discovered_and_round_trips(
    cluster: ClusterTarget,
    cluster_namespace: str,
    group_version: str,
    plural: str,
    kind: str,
    namespaced: bool,
) -> None:
    resources = {r["name"]: r for r in cluster.http.get(group_version).json()["resources"]}
    assert resources[plural]["kind"] == kind
    assert resources[plural]["namespaced"] is namespaced
    assert {"create", "get", "list", "watch", "patch", "update", "delete"} <= set(
        resources[plural]["verbs"]
    )
    scope = f"/namespaces/{cluster_namespace}" if namespaced else ""
    collection = f"{group_version}{scope}/{plural}"
    name = unique_name("inst")
    try:
        created = cluster.http.post(collection, json=body(kind, name))
        assert created.status_code == 201, created.text
        fetched = cluster.http.get(f"{collection}/{name}").json()
        assert fetched["kind"] == kind
        assert fetched["metadata"]["uid"] == created.json()["metadata"]["uid"]
        listed = cluster.http.get(collection, params={"labelSelector": "suite=c"}).json()
        assert name in [item["metadata"]["name"] for item in listed["items"]]
        assert cluster.http.delete(f"{collection}/{name}").status_code == 200
        assert cluster.http.get(f"{collection}/{name}").status_code == 404
    finally:
        cluster.http.delete(f"{collection}/{name}")  # after a failure above


def test_deployment_has_status_and_generation(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    resources = {r["name"] for r in cluster.http.get("/apis/apps/v1").json()["resources"]}
    assert "deployments/status" in resources
    name = unique_name("dep")
    path = f"/apis/apps/v1/namespaces/{cluster_namespace}/deployments"
    created = cluster.http.post(path, json=body("Deployment", name)).json()
    assert created["metadata"]["generation"] == 1
    patched = cluster.http.patch(
        f"{path}/{name}", json={"spec": {"minReadySeconds": 5}}, headers=MERGE
    ).json()
    assert patched["metadata"]["generation"] == 2
    labelled = cluster.http.patch(
        f"{path}/{name}", json={"metadata": {"labels": {"more": "x"}}}, headers=MERGE
    ).json()
    assert labelled["metadata"]["generation"] == 2
