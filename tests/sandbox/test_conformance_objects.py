"""Object lifecycle rules: metadata, generation, conflicts, status split, validation, patches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.helpers import ClusterTarget, unique_name, wait_for
from support.widgets import Widgets

MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def pod(name: str, *containers: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {"name": c, "image": "busybox", "command": ["sh", "-c", "sleep 3600"]}
                for c in containers or ("main",)
            ],
            # Never scheduled on a real cluster: these tests are about the API, not kubelets.
            "nodeSelector": {"conformance.ecs.operator.dev/none": "true"},
        },
    }


def test_create_fills_metadata(widgets: Widgets, cluster_namespace: str) -> None:
    created = widgets.create(cluster_namespace, "w1")
    metadata = created["metadata"]
    assert metadata["namespace"] == cluster_namespace
    assert len(metadata["uid"]) == 36
    assert metadata["creationTimestamp"].endswith("Z")
    assert int(metadata["resourceVersion"]) > 0
    assert metadata["generation"] == 1
    assert created["kind"] == "Widget"
    assert created["apiVersion"] == widgets.api_version


def test_generate_name(cluster: ClusterTarget, cluster_namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    path = f"/api/v1/namespaces/{cluster_namespace}/configmaps"
    first = cluster.http.post(path, json=body).json()["metadata"]["name"]
    second = cluster.http.post(path, json=body).json()["metadata"]["name"]
    assert first.startswith("gen-")
    assert len(first) > len("gen-")
    assert first != second


def test_large_body_arrives_whole(cluster: ClusterTarget, cluster_namespace: str) -> None:
    """A body much larger than one network read (CRDs are ~100 KB) is read to its end."""
    data = {f"key{i}": "x" * 1000 for i in range(900)}  # ~0.9 MB
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": data}
    path = f"/api/v1/namespaces/{cluster_namespace}/configmaps"
    response = cluster.http.post(path, json=body)
    assert response.status_code == 201, response.text[:300]
    assert cluster.http.get(f"{path}/big").json()["data"] == data


def test_unknown_fields_with_strict_field_validation_are_400(
    widgets: Widgets, cluster_namespace: str
) -> None:
    body = widgets.body("strict")
    body["spec"]["unknownField"] = "refused"
    response = widgets.cluster.http.post(
        widgets.path(cluster_namespace), params={"fieldValidation": "Strict"}, json=body
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"
    assert 'unknown field "spec.unknownField"' in response.json()["message"]


def test_create_twice_is_409_already_exists(cluster: ClusterTarget, cluster_namespace: str) -> None:
    path = f"/api/v1/namespaces/{cluster_namespace}/configmaps"
    assert cluster.http.post(path, json=configmap("dup")).status_code == 201
    response = cluster.http.post(path, json=configmap("dup"))
    assert response.status_code == 409
    status = response.json()
    assert status["kind"] == "Status"
    assert status["reason"] == "AlreadyExists"
    assert status["details"]["name"] == "dup"


def test_get_missing_is_404_not_found(cluster: ClusterTarget, cluster_namespace: str) -> None:
    response = cluster.http.get(f"/api/v1/namespaces/{cluster_namespace}/configmaps/none")
    assert response.status_code == 404
    status = response.json()
    assert status["reason"] == "NotFound"
    assert status["details"]["name"] == "none"
    assert status["details"]["kind"] == "configmaps"
    assert status["details"].get("group", "") == ""


def test_put_with_stale_resource_version_is_409_conflict(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    path = f"/api/v1/namespaces/{cluster_namespace}/configmaps"
    created = cluster.http.post(path, json=configmap("cm", a="1")).json()
    fresh = dict(created, data={"a": "2"})
    updated = cluster.http.put(f"{path}/cm", json=fresh)
    assert updated.status_code == 200, updated.text
    assert int(updated.json()["metadata"]["resourceVersion"]) > int(
        created["metadata"]["resourceVersion"]
    )
    stale = dict(created, data={"a": "3"})
    response = cluster.http.put(f"{path}/cm", json=stale)
    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"
    assert cluster.http.get(f"{path}/cm").json()["data"] == {"a": "2"}


def test_generation_moves_with_spec_only(widgets: Widgets, cluster_namespace: str) -> None:
    widgets.create(cluster_namespace, "gen")
    path = widgets.path(cluster_namespace, "gen")
    http = widgets.cluster.http
    labelled = http.patch(path, json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE).json()
    assert labelled["metadata"]["generation"] == 1
    resized = http.patch(path, json={"spec": {"size": 4}}, headers=MERGE).json()
    assert resized["metadata"]["generation"] == 2
    status = http.patch(
        widgets.path(cluster_namespace, "gen", "status"),
        json={"status": {"phase": "Ready"}},
        headers=MERGE,
    ).json()
    assert status["metadata"]["generation"] == 2
    assert status["status"]["phase"] == "Ready"


def test_status_subresource_split(widgets: Widgets, cluster_namespace: str) -> None:
    http = widgets.cluster.http
    body = widgets.body("split")
    body["status"] = {"phase": "Ignored"}
    created = http.post(widgets.path(cluster_namespace), json=body).json()
    assert "phase" not in created.get("status", {})
    main = http.patch(
        widgets.path(cluster_namespace, "split"),
        json={"spec": {"size": 5}, "status": {"phase": "NotHere"}},
        headers=MERGE,
    ).json()
    assert main["spec"]["size"] == 5
    assert "phase" not in main.get("status", {})
    sub = http.patch(
        widgets.path(cluster_namespace, "split", "status"),
        json={"spec": {"size": 9}, "status": {"phase": "Here"}},
        headers=MERGE,
    ).json()
    assert sub["status"]["phase"] == "Here"
    assert sub["spec"]["size"] == 5
    read = http.get(widgets.path(cluster_namespace, "split", "status")).json()
    assert read["status"]["phase"] == "Here"


def test_defaults_applied_and_unknown_fields_pruned(
    widgets: Widgets, cluster_namespace: str
) -> None:
    body = widgets.body("pruned", extra={"kept": {"deep": 1}})
    body["spec"]["unknownField"] = "dropped"
    body["topLevelUnknown"] = True
    created = widgets.cluster.http.post(widgets.path(cluster_namespace), json=body).json()
    spec = created["spec"]
    assert spec["replicas"] == 1
    assert spec["minReplicas"] == 0
    assert spec["color"] == "red"
    assert "unknownField" not in spec
    assert "topLevelUnknown" not in created
    assert spec["extra"] == {"kept": {"deep": 1}}


def _causes(response: Any) -> dict[str, str]:
    status = response.json()
    assert status["kind"] == "Status"
    assert status["reason"] == "Invalid", status
    return {cause["field"]: cause["message"] for cause in status["details"]["causes"]}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"size": 0}, "spec.size"),
        ({"size": 11}, "spec.size"),
        ({"size": "big"}, "spec.size"),
        ({"size": 2, "color": "purple"}, "spec.color"),
        ({"size": 2, "tags": [1]}, "spec.tags[0]"),
        ({"size": 2, "replicas": -1}, "spec.replicas"),
        ({}, "spec.size"),
    ],
)
def test_schema_violations_are_422_naming_the_field(
    widgets: Widgets, cluster_namespace: str, spec: dict[str, Any], field: str
) -> None:
    body = {"apiVersion": widgets.api_version, "kind": "Widget", "metadata": {"name": "bad"}}
    body["spec"] = spec
    response = widgets.cluster.http.post(widgets.path(cluster_namespace), json=body)
    assert response.status_code == 422, response.text
    assert field in _causes(response)
    assert field in response.json()["message"]


def test_cel_rule_violation_is_422_with_its_message(
    widgets: Widgets, cluster_namespace: str
) -> None:
    body = widgets.body("cel", replicas=1, minReplicas=2)
    response = widgets.cluster.http.post(widgets.path(cluster_namespace), json=body)
    assert response.status_code == 422, response.text
    causes = _causes(response)
    assert causes.get("spec") and "minReplicas must not exceed replicas" in causes["spec"]


def test_update_is_validated_too(widgets: Widgets, cluster_namespace: str) -> None:
    widgets.create(cluster_namespace, "upd")
    response = widgets.cluster.http.patch(
        widgets.path(cluster_namespace, "upd"), json={"spec": {"size": 99}}, headers=MERGE
    )
    assert response.status_code == 422
    assert "spec.size" in _causes(response)


def test_json_patch_with_failed_test_is_422(widgets: Widgets, cluster_namespace: str) -> None:
    created = widgets.create(cluster_namespace, "jp")
    path = widgets.path(cluster_namespace, "jp")
    rv = created["metadata"]["resourceVersion"]
    ok = widgets.cluster.http.patch(
        path,
        json=[
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "replace", "path": "/spec/size", "value": 7},
            {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        ],
        headers=JSON_PATCH,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["spec"]["size"] == 7
    failed = widgets.cluster.http.patch(
        path,
        json=[
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "replace", "path": "/spec/size", "value": 8},
        ],
        headers=JSON_PATCH,
    )
    assert failed.status_code == 422
    assert failed.json()["kind"] == "Status"
    assert widgets.cluster.http.get(path).json()["spec"]["size"] == 7


def test_merge_patch_null_deletes(cluster: ClusterTarget, cluster_namespace: str) -> None:
    path = f"/api/v1/namespaces/{cluster_namespace}/configmaps"
    cluster.http.post(path, json=configmap("mp", a="1", b="2"))
    patched = cluster.http.patch(f"{path}/mp", json={"data": {"a": None, "c": "3"}}, headers=MERGE)
    assert patched.json()["data"] == {"b": "2", "c": "3"}


def test_strategic_merge_patch_merges_containers_by_name(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    path = f"/api/v1/namespaces/{cluster_namespace}/pods"
    assert cluster.http.post(path, json=pod("smp", "a", "b")).status_code == 201
    patch = {
        "metadata": {"labels": {"l": "v"}},
        "spec": {"containers": [{"name": "b", "image": "nginx"}]},
    }
    response = cluster.http.patch(f"{path}/smp", json=patch, headers=STRATEGIC)
    assert response.status_code == 200, response.text
    containers = {c["name"]: c["image"] for c in response.json()["spec"]["containers"]}
    assert containers == {"a": "busybox", "b": "nginx"}


def test_strategic_merge_patch_is_415_for_custom_resources(
    widgets: Widgets, cluster_namespace: str
) -> None:
    widgets.create(cluster_namespace, "smp")
    response = widgets.cluster.http.patch(
        widgets.path(cluster_namespace, "smp"), json={"spec": {"size": 2}}, headers=STRATEGIC
    )
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"


def test_patch_missing_object_is_404(cluster: ClusterTarget, cluster_namespace: str) -> None:
    response = cluster.http.patch(
        f"/api/v1/namespaces/{cluster_namespace}/configmaps/{unique_name()}",
        json={"data": {"a": "b"}},
        headers=MERGE,
    )
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"


def test_scale_subresource(widgets: Widgets, cluster_namespace: str) -> None:
    widgets.create(cluster_namespace, "sc", replicas=2)
    http = widgets.cluster.http
    http.patch(
        widgets.path(cluster_namespace, "sc", "status"),
        json={"status": {"replicas": 2, "selector": "app=sc"}},
        headers=MERGE,
    )
    scale = http.get(widgets.path(cluster_namespace, "sc", "scale")).json()
    assert scale["kind"] == "Scale"
    assert scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 2
    assert scale["status"] == {"replicas": 2, "selector": "app=sc"}
    patched = http.patch(
        widgets.path(cluster_namespace, "sc", "scale"),
        json={"spec": {"replicas": 5}},
        headers=MERGE,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["spec"]["replicas"] == 5
    scale = patched.json()
    scale["spec"]["replicas"] = 6
    put = http.put(widgets.path(cluster_namespace, "sc", "scale"), json=scale)
    assert put.status_code == 200, put.text
    assert http.get(widgets.path(cluster_namespace, "sc")).json()["spec"]["replicas"] == 6
    stale = http.put(widgets.path(cluster_namespace, "sc", "scale"), json=scale)
    assert stale.status_code == 409


def test_dry_run_create_persists_nothing(cluster: ClusterTarget, cluster_namespace: str) -> None:
    path = f"/api/v1/namespaces/{cluster_namespace}/configmaps"
    response = cluster.http.post(f"{path}?dryRun=All", json=configmap("dry", a="1"))
    assert response.status_code == 201
    assert response.json()["data"] == {"a": "1"}
    assert cluster.http.get(f"{path}/dry").status_code == 404


def test_unknown_query_parameters_are_ignored(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    path = f"/api/v1/namespaces/{cluster_namespace}/configmaps"
    response = cluster.http.post(
        f"{path}?fieldManager=kubectl-client-side-apply&fieldValidation=Ignore",
        json=configmap("fm"),
    )
    assert response.status_code == 201, response.text


def test_yaml_body_is_accepted(cluster: ClusterTarget, cluster_namespace: str) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fromyaml\ndata:\n  k: v\n"
    response = cluster.http.post(
        f"/api/v1/namespaces/{cluster_namespace}/configmaps",
        data=body,
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"] == {"k": "v"}


def test_events_with_generate_name(cluster: ClusterTarget, cluster_namespace: str) -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "widget-"},
        "involvedObject": {"kind": "Widget", "name": "w", "namespace": cluster_namespace},
        "reason": "Tested",
        "message": "hello",
        "type": "Normal",
        "source": {"component": "conformance"},
    }
    path = f"/api/v1/namespaces/{cluster_namespace}/events"
    response = cluster.http.post(path, json=event)
    assert response.status_code == 201, response.text
    listed = cluster.http.get(
        path,
        params={
            "fieldSelector": f"involvedObject.name=w,involvedObject.namespace={cluster_namespace}"
        },
    ).json()
    assert [e["reason"] for e in listed["items"]] == ["Tested"]


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep: {"a": {"a": … {}}}."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_a_body_nested_3000_deep_is_never_a_server_error(
    widgets: Widgets, cluster_namespace: str
) -> None:
    """Deep inside a preserve-unknown-fields subtree. kube-apiserver stores it (its decoder
    allows 10,000 levels); the sandbox, whose steps behind are recursive Python, refuses more
    than 300 levels with a 400 naming the depth. Never a 500 on either."""
    body = json.dumps(widgets.body(unique_name("deep"), extra="EXTRA"))
    # Spelled out: Python's own encoder cannot go that deep.
    raw = body.replace('"EXTRA"', '{"a":' * 2999 + "{}" + "}" * 2999).encode()
    response = widgets.cluster.http.post(
        widgets.path(cluster_namespace), data=raw, headers={"Content-Type": "application/json"}
    )
    expected = 400 if widgets.cluster.is_sandbox else 201
    assert response.status_code == expected, response.text[:300]
    if expected == 400:
        assert response.json()["kind"] == "Status"
        assert "300 levels deep" in response.json()["message"]
    assert widgets.cluster.http.get(widgets.path(cluster_namespace)).status_code == 200


def test_a_reasonably_nested_body_is_accepted(widgets: Widgets, cluster_namespace: str) -> None:
    created = widgets.create(cluster_namespace, unique_name("nested"), extra=nested(40))
    assert created["spec"]["extra"] == nested(40)


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**30])
def test_an_integer_beyond_int64_is_refused_as_bad_input(
    widgets: Widgets, cluster_namespace: str, number: int
) -> None:
    body = json.dumps(widgets.body(unique_name("big"), replicas=number))
    response = widgets.cluster.http.post(
        widgets.path(cluster_namespace), data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert response.json()["kind"] == "Status"


def test_a_pod_naming_a_missing_service_account_is_forbidden(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    """The ServiceAccount admission plugin refuses the Pod (403), naming the account."""
    path = f"/api/v1/namespaces/{cluster_namespace}/pods"
    body = pod("with-account")
    body["spec"]["serviceAccountName"] = "ghost"
    response = cluster.http.post(path, json=body)
    assert response.status_code == 403, response.text
    status = response.json()
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'pods "with-account" is forbidden: error looking up service account '
        f'{cluster_namespace}/ghost: serviceaccount "ghost" not found'
    )
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ghost"}}
    created = cluster.http.post(
        f"/api/v1/namespaces/{cluster_namespace}/serviceaccounts", json=account
    )
    assert created.status_code == 201, created.text
    response = cluster.http.post(path, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["spec"]["serviceAccountName"] == "ghost"


def test_a_namespace_has_a_default_service_account_that_pods_get(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    """kube-controller-manager gives a new namespace its `default` ServiceAccount, and puts it
    back when deleted; the admission plugin gives it to a Pod that names none (also in the
    deprecated `serviceAccount`), and a Pod naming it through that field alone keeps it."""
    accounts = f"/api/v1/namespaces/{cluster_namespace}/serviceaccounts"

    def default_uid() -> str | None:
        response = cluster.http.get(f"{accounts}/default")
        return str(response.json()["metadata"]["uid"]) if response.ok else None

    wait_for(default_uid, 30, message="the namespace has no default ServiceAccount")
    path = f"/api/v1/namespaces/{cluster_namespace}/pods"
    response = cluster.http.post(path, json=pod("no-account"))
    assert response.status_code == 201, response.text
    spec = response.json()["spec"]
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("default", "default")

    created = cluster.http.post(
        accounts, json={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "old"}}
    )
    assert created.status_code == 201, created.text
    body = pod("old-field")
    body["spec"]["serviceAccount"] = "old"
    response = cluster.http.post(path, json=body)
    assert response.status_code == 201, response.text
    spec = response.json()["spec"]
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("old", "old")

    first = default_uid()
    assert cluster.http.delete(f"{accounts}/default").ok
    wait_for(
        lambda: default_uid() not in (None, first),
        30,
        message="the deleted default ServiceAccount was not created again",
    )
