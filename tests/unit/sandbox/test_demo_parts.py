"""The demo's ties to the operator without importing it: the CRDs from `ecs-operator crds` (a
subprocess) and its own small API client (retries like the operator's)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from rich.console import Console

from ecs_sandbox import demo
from ecs_sandbox.client import ApiClient, RequestError, Resource

CRD_DIR = Path(__file__).resolve().parents[3] / "crds"


async def test_the_crds_come_from_the_installed_operator() -> None:
    crds = await demo.operator_crds()
    expected = [yaml.safe_load(path.read_text()) for path in sorted(CRD_DIR.glob("*.yaml"))]
    assert crds == expected


async def test_a_failing_crds_command_is_a_demo_error(monkeypatch: pytest.MonkeyPatch) -> None:
    failing = "import sys; print('no operator here', file=sys.stderr); sys.exit(3)"
    monkeypatch.setattr(demo, "operator_command", lambda *args: [sys.executable, "-c", failing])
    with pytest.raises(demo.DemoError, match="exited with 3") as error:
        await demo.operator_crds()
    assert "no operator here" in str(error.value)


async def test_a_crds_command_printing_no_crd_is_a_demo_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quiet = "print('kind: ConfigMap')"
    monkeypatch.setattr(demo, "operator_command", lambda *args: [sys.executable, "-c", quiet])
    with pytest.raises(demo.DemoError, match="no CustomResourceDefinition"):
        await demo.operator_crds()


THINGS = Resource("example.com", "v1", "things")


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def test_the_client_retries_transient_failures_and_reports_others() -> None:
    calls: list[str] = []

    async def thing(request: web.Request) -> web.Response:
        calls.append(request.method)
        if request.match_info["name"] == "missing":
            return web.json_response({"reason": "NotFound", "message": "gone"}, status=404)
        if request.match_info["name"] == "bad":
            return web.json_response({"reason": "Invalid", "message": "no"}, status=422)
        if len(calls) < 3:
            return web.json_response({"reason": "ServiceUnavailable"}, status=503)
        return web.json_response({"metadata": {"name": "ok"}, "got": await request.json()})

    app = web.Application()
    app.router.add_route("*", "/apis/example.com/v1/namespaces/ns/things/{name}", thing)
    runner, url = await _serve(app)
    client = ApiClient(url)
    try:
        patched = await client.patch(THINGS, "ns", "ok", {"spec": {"a": 1}})
        assert patched["got"] == {"spec": {"a": 1}}
        assert calls == ["PATCH"] * 3
        assert await client.get(THINGS, "ns", "missing") is None
        with pytest.raises(RequestError) as error:
            await client.patch(THINGS, "ns", "bad", {})
        assert (error.value.code, error.value.reason, error.value.message) == (422, "Invalid", "no")
    finally:
        await client.close()
        await runner.cleanup()


def test_an_object_defined_twice_in_the_examples_is_a_demo_error(tmp_path: Path) -> None:
    definition = "apiVersion: ecs.operator.dev/v1alpha1\nkind: Service\nmetadata:\n  name: shop\n"
    (tmp_path / "a.yaml").write_text(definition)
    (tmp_path / "b.yaml").write_text(definition.replace("Service", "TaskDefinition"))
    assert [m.kind for m in demo.load_manifests(tmp_path)] == ["TaskDefinition", "Service"]
    (tmp_path / "c.yaml").write_text(definition)
    with pytest.raises(demo.DemoError) as error:
        demo.load_manifests(tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'c.yaml'}: document 1: Service/shop is already defined in a.yaml"
    )
    # The same name in another namespace is another object.
    (tmp_path / "c.yaml").write_text(definition + "  namespace: shop-team\n")
    assert len(demo.load_manifests(tmp_path)) == 3


async def test_the_scenes_find_their_services_in_the_repository_examples() -> None:
    examples = demo.load_manifests(demo.DEFAULT_EXAMPLES)
    stage = demo.Stage(ApiClient("http://127.0.0.1:1"), Console(), examples, demo.DEFAULT_EXAMPLES)
    try:
        assert stage.service_key() == ("default", "web-service")
        assert stage.service_key(demo.CANARY) == ("default", "shop")
        with pytest.raises(demo.DemoError, match="no DAEMON Service"):
            stage.service_key("DAEMON")
    finally:
        await stage.kube.close()


def test_an_environment_change_always_makes_a_new_revision() -> None:
    environment = [{"name": "A", "value": "a"}, {"name": "HELLO", "value": "v1"}]
    web = {"name": "web", "environment": environment}
    definition = {"spec": {"containerDefinitions": [web, {"name": "sidecar"}]}}
    containers, value = demo.changed_environment(definition, "HELLO", ("v2", "v1"))
    assert value == "v2"
    assert containers[0]["environment"] == [
        {"name": "A", "value": "a"},
        {"name": "HELLO", "value": "v2"},
    ]
    assert containers[1] == {"name": "sidecar"}
    assert definition["spec"]["containerDefinitions"][0]["environment"][1]["value"] == "v1"
    changed = {"spec": {"containerDefinitions": containers}}
    assert demo.changed_environment(changed, "HELLO", ("v2", "v1"))[1] == "v1"
    # A variable the container lacks is added.
    assert demo.changed_environment(definition, "NEW", ("x", "y"))[0][0]["environment"][-1] == {
        "name": "NEW",
        "value": "x",
    }
