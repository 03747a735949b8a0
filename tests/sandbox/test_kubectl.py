"""The real kubectl 1.32 against the sandbox: the commands users type in the README."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.helpers import KUBECTL, ClusterTarget, wait_for
from support.widgets import GROUP, crd_manifest, ensure_crd

pytestmark = pytest.mark.sandbox_only

WIDGET = """
apiVersion: conformance.ecs.operator.dev/v1
kind: Widget
metadata:
  name: {name}
  labels:
    app: "{app}"
spec:
  size: {size}
  color: blue
"""


@pytest.fixture(scope="module")
def sandbox_widgets(sandbox_target: ClusterTarget) -> None:
    ensure_crd(sandbox_target, crd_manifest())


@pytest.fixture
def ns(namespace: str, sandbox_widgets: None) -> str:
    return namespace


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"kubectl failed: {result.stderr or result.stdout}"
    return result.stdout


def widget(sandbox_target: ClusterTarget, ns: str, name: str) -> dict[str, Any]:
    response = sandbox_target.http.get(f"/apis/{GROUP}/v1/namespaces/{ns}/widgets/{name}")
    result: dict[str, Any] = response.json()
    return result


def test_apply_create_then_update(kubectl: Any, sandbox_target: ClusterTarget, ns: str) -> None:
    output = ok(
        kubectl("apply", "-n", ns, "-f", "-", input=WIDGET.format(name="w", app="a", size=2))
    )
    assert "widget.conformance.ecs.operator.dev/w created" in output
    created = widget(sandbox_target, ns, "w")
    assert created["spec"] == {"size": 2, "color": "blue", "replicas": 1, "minReplicas": 0}
    annotations = created["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in annotations

    output = ok(
        kubectl("apply", "-n", ns, "-f", "-", input=WIDGET.format(name="w", app="a", size=5))
    )
    assert "configured" in output
    assert widget(sandbox_target, ns, "w")["spec"]["size"] == 5
    output = ok(
        kubectl("apply", "-n", ns, "-f", "-", input=WIDGET.format(name="w", app="a", size=5))
    )
    assert "unchanged" in output


def test_apply_rejects_invalid_spec_naming_the_field(kubectl: Any, ns: str) -> None:
    result = kubectl("apply", "-n", ns, "-f", "-", input=WIDGET.format(name="bad", app="a", size=0))
    assert result.returncode != 0
    assert "spec.size" in result.stderr


def test_get_with_selectors_and_output_formats(kubectl: Any, ns: str) -> None:
    for name, app in (("one", "x"), ("two", "x"), ("three", "y")):
        ok(kubectl("apply", "-n", ns, "-f", "-", input=WIDGET.format(name=name, app=app, size=3)))
    table = ok(kubectl("get", "widgets", "-n", ns, "-l", "app=x"))
    lines = table.strip().splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "REPLICAS", "PHASE", "AGE"]
    assert sorted(line.split()[0] for line in lines[1:]) == ["one", "two"]
    assert lines[1].split()[1:3] == ["3", "1"]
    assert len(lines[1].split()) == 4  # no status.phase yet: an empty cell

    wide = ok(kubectl("get", "wdg", "-n", ns, "-l", "app=y", "-o", "wide")).splitlines()
    assert "COLOR" in wide[0]
    assert "blue" in wide[1]

    as_json = json.loads(ok(kubectl("get", "widgets", "-n", ns, "-l", "app in (x)", "-o", "json")))
    assert as_json["kind"] == "List"
    assert sorted(item["metadata"]["name"] for item in as_json["items"]) == ["one", "two"]

    as_yaml = yaml.safe_load(ok(kubectl("get", "widget", "three", "-n", ns, "-o", "yaml")))
    assert as_yaml["spec"]["size"] == 3

    by_category = ok(kubectl("get", "conformance", "-n", ns)).splitlines()
    assert sorted(line.split()[0] for line in by_category[1:]) == ["one", "three", "two"]


def test_get_watch_prints_new_objects(
    kubectl: Any, kubeconfig: Path, tmp_path: Path, ns: str
) -> None:
    ok(kubectl("get", "widgets", "-n", ns))  # warms the discovery cache
    process = subprocess.Popen(
        [
            KUBECTL,
            f"--kubeconfig={kubeconfig}",
            f"--cache-dir={tmp_path / 'kubectl-cache'}",
            "get",
            "widgets",
            "-n",
            ns,
            "-w",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True
    )  # type: ignore[union-attr]
    reader.start()
    try:
        ok(
            kubectl(
                "apply", "-n", ns, "-f", "-", input=WIDGET.format(name="watched", app="w", size=4)
            )
        )
        wait_for(
            lambda: any(line.startswith("watched") for line in lines),
            15,
            message=lambda: f"kubectl get -w printed {lines}",
        )
        ok(
            kubectl(
                "patch",
                "widget",
                "watched",
                "-n",
                ns,
                "--type",
                "merge",
                "-p",
                '{"spec":{"size":6}}',
            )
        )
        wait_for(
            lambda: any(line.split()[:2] == ["watched", "6"] for line in lines),
            15,
            message=lambda: f"kubectl get -w printed {lines}",
        )
    finally:
        process.terminate()
        process.wait(10)


def test_describe_shows_events(kubectl: Any, sandbox_target: ClusterTarget, ns: str) -> None:
    ok(
        kubectl(
            "apply", "-n", ns, "-f", "-", input=WIDGET.format(name="described", app="d", size=1)
        )
    )
    uid = widget(sandbox_target, ns, "described")["metadata"]["uid"]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "described-"},
        "involvedObject": {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "name": "described",
            "namespace": ns,
            "uid": uid,
        },
        "reason": "Polished",
        "message": "the widget shines",
        "type": "Normal",
        "source": {"component": "test"},
        "count": 1,
    }
    response = sandbox_target.http.post(f"/api/v1/namespaces/{ns}/events", json=event)
    assert response.status_code == 201, response.text
    output = ok(kubectl("describe", "widget", "described", "-n", ns))
    assert "Name:         described" in output
    assert "Size:" in output
    assert "Polished" in output
    assert "the widget shines" in output


def test_patch_merge_and_json(kubectl: Any, sandbox_target: ClusterTarget, ns: str) -> None:
    ok(kubectl("apply", "-n", ns, "-f", "-", input=WIDGET.format(name="p", app="p", size=1)))
    ok(kubectl("patch", "widget", "p", "-n", ns, "--type", "merge", "-p", '{"spec":{"size":2}}'))
    assert widget(sandbox_target, ns, "p")["spec"]["size"] == 2
    ok(
        kubectl(
            "patch",
            "widget",
            "p",
            "-n",
            ns,
            "--type",
            "json",
            "-p",
            '[{"op":"replace","path":"/spec/color","value":"green"}]',
        )
    )
    assert widget(sandbox_target, ns, "p")["spec"]["color"] == "green"
    failed = kubectl(
        "patch", "widget", "p", "-n", ns, "--type", "merge", "-p", '{"spec":{"color":"purple"}}'
    )
    assert failed.returncode != 0
    assert "spec.color" in failed.stderr


def test_scale_custom_resource(kubectl: Any, sandbox_target: ClusterTarget, ns: str) -> None:
    ok(kubectl("apply", "-n", ns, "-f", "-", input=WIDGET.format(name="s", app="s", size=1)))
    output = ok(kubectl("scale", "widget/s", "-n", ns, "--replicas=4"))
    assert "scaled" in output
    assert widget(sandbox_target, ns, "s")["spec"]["replicas"] == 4


def test_delete_waits_until_gone(kubectl: Any, sandbox_target: ClusterTarget, ns: str) -> None:
    ok(kubectl("apply", "-n", ns, "-f", "-", input=WIDGET.format(name="d", app="d", size=1)))
    output = ok(kubectl("delete", "widget", "d", "-n", ns, "--wait=true", "--timeout=30s"))
    assert 'widget.conformance.ecs.operator.dev "d" deleted' in output
    assert widget(sandbox_target, ns, "d")["reason"] == "NotFound"


def test_explain_crd_field(kubectl: Any, sandbox_widgets: None) -> None:
    output = ok(kubectl("explain", "widgets.spec.size"))
    assert "KIND:       Widget" in output
    assert "size" in output
    assert "<integer>" in output


def test_nodes_show_zones_and_cordon(kubectl: Any, sandbox_target: ClusterTarget) -> None:
    output = ok(kubectl("get", "nodes", "-L", "topology.kubernetes.io/zone"))
    lines = output.strip().splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "ZONE"]
    zones = {line.split()[-1] for line in lines[1:]}
    assert {"zone-a", "zone-b", "zone-c"} <= zones
    node = lines[1].split()[0]
    try:
        assert "cordoned" in ok(kubectl("cordon", node))
        node_obj = sandbox_target.http.get(f"/api/v1/nodes/{node}").json()
        assert node_obj["spec"]["unschedulable"] is True
        row = next(
            line for line in ok(kubectl("get", "nodes")).splitlines() if line.startswith(node)
        )
        assert "SchedulingDisabled" in row
    finally:
        assert "uncordoned" in ok(kubectl("uncordon", node))
    assert not sandbox_target.http.get(f"/api/v1/nodes/{node}").json()["spec"].get("unschedulable")


def test_server_side_apply_creates_updates_and_reports_conflicts(
    kubectl: Any, sandbox_target: ClusterTarget, ns: str
) -> None:
    def apply(*flags: str, size: int, manager: str = "kubectl") -> Any:
        return kubectl(
            "apply", "--server-side", f"--field-manager={manager}", *flags, "-n", ns, "-f", "-",
            input=WIDGET.format(name="ssa", app="s", size=size),
        )  # fmt: skip

    assert "widget.conformance.ecs.operator.dev/ssa serverside-applied" in ok(apply(size=1))
    assert widget(sandbox_target, ns, "ssa")["spec"]["size"] == 1
    assert "serverside-applied" in ok(apply(size=4))
    assert widget(sandbox_target, ns, "ssa")["spec"]["size"] == 4

    refused = apply(size=6, manager="someone-else")
    assert refused.returncode != 0
    assert 'conflict with "kubectl"' in refused.stderr and ".spec.size" in refused.stderr
    assert "--force-conflicts" in refused.stderr  # kubectl's own advice
    ok(apply("--force-conflicts", size=6, manager="someone-else"))
    assert widget(sandbox_target, ns, "ssa")["spec"]["size"] == 6
