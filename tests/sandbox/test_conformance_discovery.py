"""Discovery, version, health and CRD registration, as kopf and kubectl read them."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from support.helpers import ClusterTarget, unique_name, wait_for, watch_lines
from support.widgets import CRDS_PATH, crd_manifest, is_established


def test_version_and_health(cluster: ClusterTarget) -> None:
    version = cluster.http.get("/version").json()
    assert version["major"] == "1"
    assert version["gitVersion"].startswith("v1.")
    assert cluster.http.get("/healthz").status_code == 200
    assert cluster.http.get("/readyz").status_code == 200
    assert cluster.http.get("/livez").status_code == 200


def test_core_discovery(cluster: ClusterTarget) -> None:
    assert "v1" in cluster.http.get("/api").json()["versions"]
    resources = cluster.http.get("/api/v1").json()
    assert resources["kind"] == "APIResourceList"
    assert resources["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in resources["resources"]}
    pods = by_name["pods"]
    assert pods["namespaced"] is True
    assert pods["kind"] == "Pod"
    assert {"create", "get", "list", "watch", "patch", "update", "delete"} <= set(pods["verbs"])
    assert "po" in pods["shortNames"]
    assert by_name["namespaces"]["namespaced"] is False
    for sub in ("pods/status", "pods/binding", "pods/eviction"):
        assert sub in by_name, sub
    assert by_name["pods/eviction"]["kind"] == "Eviction"


def test_group_list_has_preferred_versions(cluster: ClusterTarget) -> None:
    groups = cluster.http.get("/apis").json()
    assert groups["kind"] == "APIGroupList"
    by_name = {g["name"]: g for g in groups["groups"]}
    extensions = by_name["apiextensions.k8s.io"]
    assert extensions["preferredVersion"]["groupVersion"] == "apiextensions.k8s.io/v1"
    assert {"groupVersion": "apiextensions.k8s.io/v1", "version": "v1"} in extensions["versions"]
    assert "coordination.k8s.io" in by_name


def test_unknown_group_is_a_plain_404(cluster: ClusterTarget) -> None:
    """A group nothing serves never reaches an API handler: the server's mux answers in plain
    text (what kube-apiserver does; the sandbox once answered with a Status)."""
    for path in ("/apis/nothing.example.com/v1", "/apis/nothing.example.com"):
        response = cluster.http.get(path)
        assert response.status_code == 404, path
        assert response.text == "404 page not found\n"


def test_unknown_version_resource_are_404_status(cluster: ClusterTarget) -> None:
    for path in (
        "/apis/apps/v9",
        "/api/v1/widgetsnope",
        "/apis/coordination.k8s.io/v1/namespaces/default/nopes",
    ):
        response = cluster.http.get(path)
        assert response.status_code == 404, path
        body = response.json()
        assert body["kind"] == "Status"
        assert body["reason"] == "NotFound"


def _watch_crds(
    cluster: ClusterTarget, rv: str, seen: list[dict[str, Any]], stop: threading.Event
) -> None:
    with cluster.http.get(
        f"{CRDS_PATH}?watch=true&resourceVersion={rv}&timeoutSeconds=20", stream=True
    ) as response:
        for event in watch_lines(response):
            seen.append(event)
            if stop.is_set():
                return


def test_crd_is_established_served_discovered_and_watched(cluster: ClusterTarget) -> None:
    group = f"{unique_name('g')}.conformance.ecs.operator.dev"
    manifest = crd_manifest(group=group, plural="gadgets", kind="Gadget")
    rv = cluster.http.get(CRDS_PATH).json()["metadata"]["resourceVersion"]
    seen: list[dict[str, Any]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_crds, args=(cluster, rv, seen, stop), daemon=True)
    watcher.start()

    created = cluster.http.post(CRDS_PATH, json=manifest)
    assert created.status_code == 201, created.text
    name = manifest["metadata"]["name"]
    try:
        crd = wait_for(
            lambda: (
                (c := cluster.http.get(f"{CRDS_PATH}/{name}").json()) and is_established(c) and c
            ),
            timeout=10,
        )
        assert crd["status"]["acceptedNames"]["kind"] == "Gadget"
        wait_for(lambda: cluster.http.get(f"/apis/{group}/v1/gadgets").status_code == 200, 10)
        listed = cluster.http.get(f"/apis/{group}/v1/gadgets").json()
        assert listed["kind"] == "GadgetList"
        assert listed["apiVersion"] == f"{group}/v1"

        resources = {
            r["name"]: r for r in cluster.http.get(f"/apis/{group}/v1").json()["resources"]
        }
        assert resources["gadgets"]["kind"] == "Gadget"
        assert resources["gadgets"]["singularName"] == "gadget"
        assert resources["gadgets"]["categories"] == ["conformance"]
        assert "gadgets/status" in resources
        assert resources["gadgets/scale"]["kind"] == "Scale"
        groups = {g["name"] for g in cluster.http.get("/apis").json()["groups"]}
        assert group in groups

        wait_for(
            lambda: any(
                e["type"] == "ADDED" and e["object"]["metadata"]["name"] == name for e in seen
            ),
            timeout=10,
            message="the CRD watch did not see the new CRD",
        )
    finally:
        stop.set()
        cluster.http.delete(f"{CRDS_PATH}/{name}")
    wait_for(lambda: cluster.http.get(f"/apis/{group}/v1/gadgets").status_code == 404, 30)
    groups = {g["name"] for g in cluster.http.get("/apis").json()["groups"]}
    assert group not in groups


def test_openapi_v3_describes_crd_groups(cluster: ClusterTarget, widget_crd: None) -> None:
    # A real server publishes a new CRD's document a moment after the CRD is established.
    paths = wait_for(
        lambda: (
            cluster.http.get("/openapi/v3")
            .json()["paths"]
            .get("apis/conformance.ecs.operator.dev/v1")
        ),
        30,
        message="the Widget group never appeared in /openapi/v3",
    )
    entry = paths
    url = entry["serverRelativeURL"]
    document = cluster.http.get(url)
    assert document.status_code == 200
    schemas = document.json()["components"]["schemas"]
    widget = next(
        schema
        for key, schema in schemas.items()
        if key.endswith(".Widget") and "properties" in schema
    )
    assert "spec" in widget["properties"]


def test_requests_without_token_are_served(cluster: ClusterTarget) -> None:
    if not cluster.is_sandbox:
        pytest.skip("sandbox-only: a real cluster rightly refuses anonymous requests")
    response = requests.get(f"{cluster.http.base_url}/api/v1/namespaces", timeout=10)
    assert response.status_code == 200
    assert response.json()["kind"] == "NamespaceList"
