"""OpenAPI documents for kubectl: unit checks, and the real kubectl against a tiny server.

The tiny aiohttp server below serves only what kubectl 1.32 reads for `apply` and `explain`
(discovery, /version, /openapi/v3, one custom kind's GET/POST); it admits objects with the real
`SchemaValidator`. It is test scaffolding, not the sandbox's HTTP layer.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ecs_sandbox.errors import ApiError
from ecs_sandbox.openapi import openapi_v3_document, openapi_v3_index
from ecs_sandbox.resources import ResourceType
from ecs_sandbox.schema import SchemaValidator

KUBECTL = "/usr/bin/kubectl"
GROUP, VERSION = "example.dev", "v1"

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "listKind": "WidgetList",
        },
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "description": "A Widget is a test kind.",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "description": "What the widget should be.",
                                "properties": {
                                    "cpu": {
                                        "type": "integer",
                                        "minimum": 1,
                                        "description": "CPU units reserved for the widget.",
                                    },
                                    "image": {"type": "string", "description": "The image."},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}
WIDGET = ResourceType(
    GROUP, VERSION, "widgets", "widget", "Widget", True, crd_version=CRD["spec"]["versions"][0]
)
POD = ResourceType("", "v1", "pods", "pod", "Pod", True)


def test_crd_document_publishes_schema_with_gvk_and_object_meta() -> None:
    document = openapi_v3_document(f"{GROUP}/{VERSION}", [WIDGET, POD], [CRD])
    schemas = document["components"]["schemas"]
    widget = schemas["dev.example.v1.Widget"]
    assert widget["x-kubernetes-group-version-kind"] == [
        {"group": GROUP, "version": VERSION, "kind": "Widget"}
    ]
    assert widget["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert (
        widget["properties"]["spec"]["properties"]["cpu"]["description"]
        == "CPU units reserved for the widget."
    )
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert "dev.example.v1.WidgetList" in schemas
    assert "io.k8s.api.core.v1.Pod" not in schemas  # another group-version
    patch = document["paths"]["/apis/example.dev/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert {p["name"] for p in patch["parameters"]} >= {"fieldValidation"}
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]


def test_builtin_document_has_every_referenced_schema() -> None:
    node = ResourceType("", "v1", "nodes", "node", "Node", False)
    document = openapi_v3_document("v1", [POD, node], [])
    schemas = document["components"]["schemas"]
    assert schemas["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"][0]["kind"] == "Pod"
    refs = {ref.rsplit("/", 1)[-1] for ref in _find_refs(schemas)}
    assert refs <= set(schemas), refs - set(schemas)
    patch = document["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    assert "/api/v1/nodes/{name}" in document["paths"]


def test_index_hash_follows_content() -> None:
    first = openapi_v3_document(f"{GROUP}/{VERSION}", [WIDGET], [CRD])
    changed_crd = json.loads(json.dumps(CRD))
    changed_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = "changed"
    second = openapi_v3_document(f"{GROUP}/{VERSION}", [WIDGET], [changed_crd])
    index_one = openapi_v3_index({"v1": {}, f"{GROUP}/{VERSION}": first})
    index_two = openapi_v3_index({"v1": {}, f"{GROUP}/{VERSION}": second})
    url_one = index_one["paths"]["apis/example.dev/v1"]["serverRelativeURL"]
    url_two = index_two["paths"]["apis/example.dev/v1"]["serverRelativeURL"]
    assert url_one.startswith("/openapi/v3/apis/example.dev/v1?hash=")
    assert url_one != url_two
    assert index_one["paths"]["api/v1"] == index_two["paths"]["api/v1"]


def _find_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for k, v in node.items() if k != "$ref" for r in _find_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _find_refs(v)]
    return []


# -- the real kubectl ---------------------------------------------------------------------


class TinyApiServer:
    """Discovery, /openapi/v3 and GET/POST of widgets: all kubectl apply/explain need."""

    def __init__(self) -> None:
        self.validator = SchemaValidator.from_crd_version(CRD, CRD["spec"]["versions"][0])
        self.requests: list[str] = []
        self.created: list[dict[str, Any]] = []
        self.documents = {
            "v1": openapi_v3_document("v1", [POD], []),
            f"{GROUP}/{VERSION}": openapi_v3_document(f"{GROUP}/{VERSION}", [WIDGET], [CRD]),
        }

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.log])
        app.router.add_get(
            "/version", self.json({"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
        )
        app.router.add_get("/api", self.json({"kind": "APIVersions", "versions": ["v1"]}))
        app.router.add_get("/api/v1", self.json(_resource_list("v1", [("pods", "Pod")])))
        app.router.add_get("/apis", self.json(_group_list()))
        app.router.add_get(
            f"/apis/{GROUP}/{VERSION}",
            self.json(_resource_list(f"{GROUP}/{VERSION}", [("widgets", "Widget")])),
        )
        app.router.add_get("/openapi/v3", self.json(openapi_v3_index(self.documents)))
        app.router.add_get("/openapi/v3/{prefix:api|apis}/{gv:.+}", self.openapi)
        widgets = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/widgets"
        app.router.add_get(widgets + "/{name}", self.not_found)
        app.router.add_post(widgets, self.create)
        return app

    @web.middleware
    async def log(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path_qs}")
        return await handler(request)

    @staticmethod
    def json(body: dict[str, Any]) -> Any:
        async def handler(_request: web.Request) -> web.Response:
            return web.json_response(body)

        return handler

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self.documents[request.match_info["gv"]])

    async def not_found(self, request: web.Request) -> web.Response:
        error = ApiError(
            404, "NotFound", f'widgets.{GROUP} "{request.match_info["name"]}" not found'
        )
        return web.json_response(error.status(), status=404)

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        strict = request.query.get("fieldValidation") == "Strict"
        try:
            admitted = self.validator.admit(body, None, strict=strict)
        except ApiError as error:
            return web.json_response(error.status(), status=error.code)
        admitted["metadata"].update(
            namespace=request.match_info["ns"], uid="u1", resourceVersion="1"
        )
        self.created.append(admitted)
        return web.json_response(admitted, status=201)


def _resource_list(group_version: str, resources: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {
                "name": plural,
                "singularName": "",
                "namespaced": True,
                "kind": kind,
                "verbs": ["create", "get", "list", "patch"],
            }
            for plural, kind in resources
        ],
    }


def _group_list() -> dict[str, Any]:
    version = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [{"name": GROUP, "versions": [version], "preferredVersion": version}],
    }


@pytest.fixture
async def tiny_server(tmp_path: Path) -> Any:
    if shutil.which(KUBECTL) is None:
        pytest.skip(f"{KUBECTL} is not installed")
    server = TinyApiServer()
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "tiny", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "tiny", "user": {"token": "dummy"}}],
                "contexts": [
                    {
                        "name": "tiny",
                        "context": {"cluster": "tiny", "user": "tiny", "namespace": "default"},
                    }
                ],
                "current-context": "tiny",
            }
        )
    )
    server.kubeconfig = kubeconfig  # type: ignore[attr-defined]
    server.cache_dir = tmp_path / "cache"  # type: ignore[attr-defined]
    yield server
    await runner.cleanup()


async def _kubectl(server: Any, *args: str, stdin: str = "") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        KUBECTL,
        f"--kubeconfig={server.kubeconfig}",
        f"--cache-dir={server.cache_dir}",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


def _widget(spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": spec,
        }
    )


async def test_kubectl_apply_valid_widget_passes(tiny_server: Any) -> None:
    code, output = await _kubectl(
        tiny_server, "apply", "-f", "-", stdin=_widget({"cpu": 2, "image": "nginx"})
    )
    assert code == 0, output
    assert "widget.example.dev/w1 created" in output
    assert tiny_server.created[0]["spec"] == {"cpu": 2, "image": "nginx"}
    posts = [r for r in tiny_server.requests if r.startswith("POST")]
    assert posts and "fieldValidation=Strict" in posts[0]
    assert not any("/openapi/v2" in r for r in tiny_server.requests)


async def test_kubectl_apply_rejects_bad_type_with_field_named(tiny_server: Any) -> None:
    code, output = await _kubectl(tiny_server, "apply", "-f", "-", stdin=_widget({"cpu": "lots"}))
    assert code != 0
    assert (
        'spec.cpu: Invalid value: "string": spec.cpu in body must be of type integer: "string"'
        in output
    )
    assert not tiny_server.created


async def test_kubectl_apply_rejects_unknown_field(tiny_server: Any) -> None:
    code, output = await _kubectl(
        tiny_server, "apply", "-f", "-", stdin=_widget({"cpu": 1, "colour": "red"})
    )
    assert code != 0
    assert 'unknown field "spec.colour"' in output


async def test_kubectl_explain_prints_crd_descriptions(tiny_server: Any) -> None:
    code, output = await _kubectl(tiny_server, "explain", "widgets.spec.cpu")
    assert code == 0, output
    assert "CPU units reserved for the widget." in output
    assert "<integer>" in output
    code, output = await _kubectl(tiny_server, "explain", "widgets.metadata.labels")
    assert code == 0, output
    assert "Map of string keys and values" in output


async def test_kubectl_explain_builtin_kind(tiny_server: Any) -> None:
    code, output = await _kubectl(tiny_server, "explain", "pods.spec.containers.image")
    assert code == 0, output
    assert "Container image name" in output
