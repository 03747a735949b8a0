"""Deletion: preconditions, finalizers, propagation policies, GC, namespace cascade."""

from __future__ import annotations

from typing import Any

from support.helpers import ClusterTarget, unique_name, wait_for

MERGE = {"Content-Type": "application/merge-patch+json"}


def cm_path(namespace: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    return f"{path}/{name}" if name else path


def make(
    cluster: ClusterTarget,
    namespace: str,
    name: str,
    *,
    owner: dict[str, Any] | None = None,
    block: bool = False,
    finalizers: list[str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": labels or {}}
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "blockOwnerDeletion": block,
            }
        ]
    if finalizers:
        metadata["finalizers"] = finalizers
    response = cluster.http.post(
        cm_path(namespace), json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def gone(cluster: ClusterTarget, namespace: str, name: str) -> bool:
    return cluster.http.get(cm_path(namespace, name)).status_code == 404


def test_delete_returns_object_then_404(cluster: ClusterTarget, cluster_namespace: str) -> None:
    make(cluster, cluster_namespace, "x")
    response = cluster.http.delete(cm_path(cluster_namespace, "x"))
    assert response.status_code == 200
    assert response.json()["kind"] in ("ConfigMap", "Status")
    assert gone(cluster, cluster_namespace, "x")
    again = cluster.http.delete(cm_path(cluster_namespace, "x"))
    assert again.status_code == 404
    assert again.json()["reason"] == "NotFound"


def test_delete_preconditions(cluster: ClusterTarget, cluster_namespace: str) -> None:
    created = make(cluster, cluster_namespace, "pre")
    wrong_uid = {"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}}
    response = cluster.http.delete(cm_path(cluster_namespace, "pre"), json=wrong_uid)
    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"
    wrong_rv = {"preconditions": {"resourceVersion": "1"}}
    assert cluster.http.delete(cm_path(cluster_namespace, "pre"), json=wrong_rv).status_code == 409
    right = {"preconditions": {"uid": created["metadata"]["uid"]}}
    assert cluster.http.delete(cm_path(cluster_namespace, "pre"), json=right).status_code == 200
    assert gone(cluster, cluster_namespace, "pre")


def test_finalizers_hold_deletion(cluster: ClusterTarget, cluster_namespace: str) -> None:
    make(cluster, cluster_namespace, "fin", finalizers=["conformance.ecs.operator.dev/hold"])
    response = cluster.http.delete(cm_path(cluster_namespace, "fin"))
    assert response.status_code in (200, 202)
    held = cluster.http.get(cm_path(cluster_namespace, "fin")).json()
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == ["conformance.ecs.operator.dev/hold"]
    # New finalizers may not be added once deletion started; removing them completes it.
    cluster.http.patch(
        cm_path(cluster_namespace, "fin"), json={"metadata": {"finalizers": None}}, headers=MERGE
    )
    wait_for(lambda: gone(cluster, cluster_namespace, "fin"), 10)


def test_background_propagation_deletes_dependents(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    owner = make(cluster, cluster_namespace, "owner")
    make(cluster, cluster_namespace, "child1", owner=owner)
    make(cluster, cluster_namespace, "child2", owner=owner)
    cluster.http.delete(
        cm_path(cluster_namespace, "owner"), json={"propagationPolicy": "Background"}
    )
    assert gone(cluster, cluster_namespace, "owner")
    wait_for(
        lambda: (
            gone(cluster, cluster_namespace, "child1")
            and gone(cluster, cluster_namespace, "child2")
        ),
        15,
        message="dependents of a deleted owner were not collected",
    )


def test_orphan_propagation_keeps_dependents_without_owner(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    owner = make(cluster, cluster_namespace, "owner")
    make(cluster, cluster_namespace, "kept", owner=owner)
    cluster.http.delete(cm_path(cluster_namespace, "owner"), params={"propagationPolicy": "Orphan"})
    wait_for(lambda: gone(cluster, cluster_namespace, "owner"), 10)
    wait_for(
        lambda: (
            not cluster.http.get(cm_path(cluster_namespace, "kept"))
            .json()["metadata"]
            .get("ownerReferences")
        ),
        10,
        message="the orphaned dependent kept its ownerReference",
    )


def test_foreground_propagation_waits_for_blocking_dependents(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    owner = make(cluster, cluster_namespace, "owner")
    make(
        cluster,
        cluster_namespace,
        "blocker",
        owner=owner,
        block=True,
        finalizers=["conformance.ecs.operator.dev/hold"],
    )
    response = cluster.http.delete(
        cm_path(cluster_namespace, "owner"), json={"propagationPolicy": "Foreground"}
    )
    assert response.status_code in (200, 202)
    owner_now = cluster.http.get(cm_path(cluster_namespace, "owner")).json()
    assert owner_now["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in owner_now["metadata"]["finalizers"]
    wait_for(
        lambda: (
            cluster.http.get(cm_path(cluster_namespace, "blocker"))
            .json()["metadata"]
            .get("deletionTimestamp")
        ),
        10,
        message="the blocking dependent was not deleted",
    )
    assert not gone(cluster, cluster_namespace, "owner")
    cluster.http.patch(
        cm_path(cluster_namespace, "blocker"),
        json={"metadata": {"finalizers": None}},
        headers=MERGE,
    )
    wait_for(lambda: gone(cluster, cluster_namespace, "owner"), 15)


def test_deletecollection_with_label_selector(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    make(cluster, cluster_namespace, "a", labels={"batch": "1"})
    make(cluster, cluster_namespace, "b", labels={"batch": "1"})
    make(cluster, cluster_namespace, "c", labels={"batch": "2"})
    response = cluster.http.delete(cm_path(cluster_namespace), params={"labelSelector": "batch=1"})
    assert response.status_code == 200, response.text
    wait_for(
        lambda: gone(cluster, cluster_namespace, "a") and gone(cluster, cluster_namespace, "b"), 10
    )
    assert not gone(cluster, cluster_namespace, "c")


def test_bad_propagation_policy_is_rejected(cluster: ClusterTarget, cluster_namespace: str) -> None:
    make(cluster, cluster_namespace, "p")
    response = cluster.http.delete(
        cm_path(cluster_namespace, "p"), json={"propagationPolicy": "Sideways"}
    )
    assert response.status_code in (400, 422)
    assert response.json()["kind"] == "Status"
    assert not gone(cluster, cluster_namespace, "p")


def test_namespace_deletion_cascades(cluster: ClusterTarget) -> None:
    namespace = cluster.create_namespace("cascade")
    make(cluster, namespace, "inside")
    cluster.http.delete(f"/api/v1/namespaces/{namespace}")
    wait_for(
        lambda: cluster.http.get(f"/api/v1/namespaces/{namespace}").status_code == 404,
        60,
        message="the namespace was not removed",
    )
    assert gone(cluster, namespace, "inside")


def test_create_in_missing_namespace_is_404(cluster: ClusterTarget) -> None:
    response = cluster.http.post(
        cm_path(unique_name("missing")),
        json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
    )
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"


def test_a_reference_whose_uid_is_another_objects_is_dangling_and_collected(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    """The collector looks the owner up by the reference's kind and name and compares uids:
    naming `real` with the uid of `other` (a forged owner) makes the dependent garbage."""
    make(cluster, cluster_namespace, "real")
    other = make(cluster, cluster_namespace, "other")
    forged = {"metadata": {"name": "real", "uid": other["metadata"]["uid"]}}
    make(cluster, cluster_namespace, "forged", owner=forged)
    make(cluster, cluster_namespace, "honest", owner=other)
    wait_for(
        lambda: gone(cluster, cluster_namespace, "forged"),
        30,
        message="a dependent of a forged owner reference was not collected",
    )
    assert not gone(cluster, cluster_namespace, "honest")
