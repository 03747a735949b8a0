"""ControllerRevisions as the operator writes them: `data` is immutable, and the bytes the
operator's client sends must survive the server re-encoding them when a patch touches the
object (a real API server compares `data` byte for byte; the operator once failed every
INACTIVE mark there with "field is immutable")."""

from __future__ import annotations

import asyncio
from typing import Any

from ecs_operator.kube.client import KubeClient, Resource, go_json
from support.helpers import ClusterTarget

REVISIONS = Resource("apps", "v1", "controllerrevisions")
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
DATA: dict[str, Any] = {
    "family": "web",
    "containerDefinitions": [
        {"name": "app", "image": "nginx", "command": ["sh", "-c", "echo '<&>' \u2028 é"]}
    ],
    "cpu": "256",
}


def test_go_json_is_sorted_compact_and_html_escaped() -> None:
    assert go_json({"b": 1, "a": ["<", "&", ">", "\u2028", "é"]}) == (
        b'{"a":["\\u003c","\\u0026","\\u003e","\\u2028","\xc3\xa9"],"b":1}'
    )


def test_a_revision_written_by_the_operator_client_takes_a_label_patch(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    async def write() -> dict[str, Any]:
        kube = KubeClient.from_kubeconfig(str(cluster.kubeconfig))
        try:
            body = {
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": {"name": "web-1"},
                "revision": 1,
                "data": DATA,
            }
            await kube.create(REVISIONS, cluster_namespace, body)
            patch = {"metadata": {"labels": {"ecs.operator.dev/revision-status": "INACTIVE"}}}
            return await kube.patch(REVISIONS, cluster_namespace, "web-1", patch)
        finally:
            kube.close()

    patched = asyncio.run(write())
    assert patched["metadata"]["labels"]["ecs.operator.dev/revision-status"] == "INACTIVE"
    assert patched["data"] == DATA


def test_revision_data_is_immutable(cluster: ClusterTarget, cluster_namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{cluster_namespace}/controllerrevisions"
    body = {"metadata": {"name": "r"}, "revision": 1, "data": {"a": 1}}
    assert cluster.http.post(path, json=body).status_code == 201
    response = cluster.http.patch(f"{path}/r", json={"data": {"a": 2}}, headers=MERGE_PATCH)
    assert response.status_code == 422, response.text
    assert "field is immutable" in response.json()["message"]


def test_revision_data_is_mandatory(cluster: ClusterTarget, cluster_namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{cluster_namespace}/controllerrevisions"
    response = cluster.http.post(path, json={"metadata": {"name": "r"}, "revision": 1})
    assert response.status_code == 422, response.text
    assert response.json()["message"] == (
        'ControllerRevision.apps "r" is invalid: data: Required value: data is mandatory'
    )
