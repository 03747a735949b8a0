"""A corpus of bad requests: each gets the right 4xx Status, and nothing breaks afterwards."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_sandbox.server import MAX_BODY_BYTES
from support.helpers import ClusterTarget
from support.widgets import GROUP, crd_manifest, ensure_crd

pytestmark = pytest.mark.sandbox_only

CM = "/api/v1/namespaces/{ns}/configmaps"
WIDGETS = f"/apis/{GROUP}/v1/namespaces/{{ns}}/widgets"
JSON = "application/json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"

# (id, method, path, content type, body, expected code, expected reason, text in message)
CORPUS: list[tuple[str, str, str, str | None, Any, int, str, str]] = [
    ("malformed-json", "POST", CM, JSON, b'{"metadata": {', 400, "BadRequest", ""),
    (
        "malformed-yaml",
        "POST",
        CM,
        "application/yaml",
        b"metadata: [unclosed",
        400,
        "BadRequest",
        "",
    ),
    ("body-not-object", "POST", CM, JSON, b"[1, 2]", 400, "BadRequest", ""),
    ("empty-body", "POST", CM, JSON, b"", 400, "BadRequest", ""),
    (
        "form-content-type",
        "POST",
        CM,
        "application/x-www-form-urlencoded",
        b"a=b",
        415,
        "UnsupportedMediaType",
        "",
    ),
    (
        "protobuf-malformed",
        "POST",
        CM,
        "application/vnd.kubernetes.protobuf",
        b"\x00",
        400,
        "BadRequest",
        "",
    ),
    (
        "protobuf-unsupported-kind",
        "POST",
        CM,
        "application/vnd.kubernetes.protobuf",
        b"k8s\x00\x0a\x0e\x0a\x07apps/v1\x12\x03Pod",
        415,
        "UnsupportedMediaType",
        "",
    ),
    ("patch-wrong-type", "PATCH", CM + "/keep", JSON, b"{}", 415, "UnsupportedMediaType", ""),
    (
        "server-side-apply-cbor",
        "PATCH",
        CM + "/keep",
        "application/apply-patch+cbor",
        b"\xa0",
        415,
        "UnsupportedMediaType",
        "application/apply-patch+yaml",
    ),
    (
        "server-side-apply-without-manager",
        "PATCH",
        CM + "/keep",
        "application/apply-patch+yaml",
        b"{}",
        422,
        "Invalid",
        "fieldManager",
    ),
    (
        "server-side-apply-not-an-object",
        "PATCH",
        CM + "/keep?fieldManager=t",
        "application/apply-patch+yaml",
        b"- a\n- b\n",
        400,
        "BadRequest",
        "must be an object",
    ),
    (
        "smp-on-custom",
        "PATCH",
        WIDGETS + "/keep",
        "application/strategic-merge-patch+json",
        b"{}",
        415,
        "UnsupportedMediaType",
        "",
    ),
    ("unknown-resource", "GET", "/api/v1/namespaces/{ns}/gizmos", None, None, 404, "NotFound", ""),
    ("unknown-version", "GET", f"/apis/{GROUP}/v9/widgets", None, None, 404, "NotFound", ""),
    ("unknown-subresource", "GET", CM + "/keep/status", None, None, 404, "NotFound", ""),
    (
        "wrong-kind",
        "POST",
        CM,
        JSON,
        b'{"kind":"Secret","apiVersion":"v1","metadata":{"name":"x"}}',
        400,
        "BadRequest",
        "kind",
    ),
    (
        "wrong-namespace",
        "POST",
        CM,
        JSON,
        b'{"metadata":{"name":"x","namespace":"elsewhere"}}',
        400,
        "BadRequest",
        "namespace",
    ),
    (
        "invalid-name",
        "POST",
        CM,
        JSON,
        b'{"metadata":{"name":"Not_Valid"}}',
        422,
        "Invalid",
        "metadata.name",
    ),
    ("missing-name", "POST", CM, JSON, b'{"metadata":{}}', 422, "Invalid", "metadata.name"),
    (
        "bad-label",
        "POST",
        CM,
        JSON,
        b'{"metadata":{"name":"x","labels":{"a":"b c"}}}',
        422,
        "Invalid",
        "metadata.labels",
    ),
    (
        "schema-violation",
        "POST",
        WIDGETS,
        JSON,
        b'{"metadata":{"name":"x"},"spec":{"size":"big"}}',
        422,
        "Invalid",
        "spec.size",
    ),
    (
        "missing-required",
        "POST",
        WIDGETS,
        JSON,
        b'{"metadata":{"name":"x"},"spec":{}}',
        422,
        "Invalid",
        "spec.size",
    ),
    (
        "cel-violation",
        "POST",
        WIDGETS,
        JSON,
        b'{"metadata":{"name":"x"},"spec":{"size":1,"replicas":1,"minReplicas":5}}',
        422,
        "Invalid",
        "minReplicas must not exceed replicas",
    ),
    (
        "patch-missing-object",
        "PATCH",
        CM + "/absent",
        MERGE,
        b'{"data":{"a":"b"}}',
        404,
        "NotFound",
        "absent",
    ),
    (
        "json-patch-not-list",
        "PATCH",
        CM + "/keep",
        JSON_PATCH,
        b'{"op":"add"}',
        400,
        "BadRequest",
        "",
    ),
    (
        "json-patch-bad-path",
        "PATCH",
        CM + "/keep",
        JSON_PATCH,
        b'[{"op":"remove","path":"/data/nothere"}]',
        422,
        "Invalid",
        "",
    ),
    (
        "bad-label-selector",
        "GET",
        CM + "?labelSelector=a%20in%20b",
        None,
        None,
        400,
        "BadRequest",
        "",
    ),
    (
        "bad-field-selector",
        "GET",
        CM + "?fieldSelector=spec.nope%3D1",
        None,
        None,
        400,
        "BadRequest",
        "",
    ),
    ("bad-continue", "GET", CM + "?limit=1&continue=%%%", None, None, 400, "BadRequest", ""),
    ("bad-limit", "GET", CM + "?limit=many", None, None, 400, "BadRequest", "limit"),
    ("bad-delete-options", "DELETE", CM + "/keep", JSON, b"[1]", 400, "BadRequest", ""),
    (
        "bad-propagation",
        "DELETE",
        CM + "/keep",
        JSON,
        b'{"propagationPolicy":"Sideways"}',
        422,
        "Invalid",
        "propagationPolicy",
    ),
    (
        "bad-grace",
        "DELETE",
        CM + "/keep",
        JSON,
        b'{"gracePeriodSeconds":"soon"}',
        422,
        "Invalid",
        "gracePeriodSeconds",
    ),
    ("post-to-object", "POST", CM + "/keep", JSON, b"{}", 405, "MethodNotAllowed", ""),
    ("put-to-collection", "PUT", CM, JSON, b"{}", 405, "MethodNotAllowed", ""),
    (
        "put-name-mismatch",
        "PUT",
        CM + "/keep",
        JSON,
        b'{"metadata":{"name":"other"}}',
        400,
        "BadRequest",
        "name",
    ),
    (
        "bad-include-object",
        "GET",
        CM + "?includeObject=All",
        None,
        None,
        400,
        "BadRequest",
        "includeObject",
    ),
    ("not-acceptable", "GET", CM, None, None, 406, "NotAcceptable", ""),
]


@pytest.fixture(scope="module")
def victims(sandbox_target: ClusterTarget) -> str:
    """A namespace holding objects the corpus aims at; they must survive it unchanged."""
    ensure_crd(sandbox_target, crd_manifest())
    ns = sandbox_target.create_namespace("bad")
    http = sandbox_target.http
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}, "data": {"a": "1"}}
    assert http.post(CM.format(ns=ns), json=cm).status_code == 201
    widget = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "keep"},
        "spec": {"size": 1},
    }
    assert http.post(WIDGETS.format(ns=ns), json=widget).status_code == 201
    return ns


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body", "code", "reason", "text"),
    [pytest.param(*case[1:], id=case[0]) for case in CORPUS],
)
def test_bad_request_gets_status(
    sandbox_target: ClusterTarget,
    victims: str,
    method: str,
    path: str,
    content_type: str | None,
    body: Any,
    code: int,
    reason: str,
    text: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if reason == "NotAcceptable":
        headers["Accept"] = "application/vnd.kubernetes.protobuf"
    if "includeObject" in path:  # only read when a Table is asked for, as kube-apiserver does
        headers["Accept"] = TABLE
    response = sandbox_target.http.request(
        method, path.format(ns=victims), data=body, headers=headers
    )
    assert response.status_code == code, response.text
    status = response.json()
    assert status["kind"] == "Status"
    assert status["status"] == "Failure"
    assert status["reason"] == reason
    assert status["code"] == code
    assert text in status["message"]


def test_oversize_body_is_413(sandbox_target: ClusterTarget, victims: str) -> None:
    body = b'{"metadata":{"name":"huge"},"data":{"a":"' + b"x" * MAX_BODY_BYTES + b'"}}'
    response = sandbox_target.http.post(
        CM.format(ns=victims), data=body, headers={"Content-Type": JSON}
    )
    assert response.status_code == 413
    assert response.json()["reason"] == "RequestEntityTooLarge"


def test_server_survives_the_corpus(sandbox_target: ClusterTarget, victims: str) -> None:
    http = sandbox_target.http
    for case in CORPUS:
        _, method, path, content_type, body, *_ = case
        headers = {"Content-Type": content_type} if content_type else {}
        http.request(method, path.format(ns=victims), data=body, headers=headers)
    cm = http.get(CM.format(ns=victims) + "/keep").json()
    assert cm["data"] == {"a": "1"}
    assert not cm["metadata"].get("deletionTimestamp")
    widget = http.get(WIDGETS.format(ns=victims) + "/keep").json()
    assert widget["spec"]["size"] == 1
    assert http.get("/healthz").status_code == 200
    assert http.get("/api/v1/namespaces").status_code == 200
