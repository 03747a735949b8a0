"""A tiny real Kopf operator (`kopf run` subprocess) against the sandbox, end to end.

It exercises what kopf does on the wire: namespace watch, list + watch of a custom resource,
its own merge and JSON patches, its finalizer, status-subresource writes and Event posting.
No workaround is allowed: the operator's log must show no "Patching failed" inconsistency.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.helpers import ClusterTarget, wait_for
from support.widgets import GROUP, crd_manifest, ensure_crd

pytestmark = pytest.mark.sandbox_only

OPERATOR = """
import kopf

PREFIX = "conformance.ecs.operator.dev"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.persistence.finalizer = f"{PREFIX}/kopf-finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.watching.server_timeout = 5
    settings.watching.client_timeout = 10
    settings.batching.idle_timeout = 0.1
    settings.batching.batch_window = 0.05


@kopf.on.create(PREFIX, "v1", "widgets")
def created(spec, patch, body, **_):
    patch.status["phase"] = "Created"
    patch.status["replicas"] = spec["replicas"]
    kopf.info(body, reason="Seen", message=f"widget of size {spec['size']}")


@kopf.on.update(PREFIX, "v1", "widgets", field="spec.size")
def resized(new, patch, **_):
    patch.status["phase"] = f"Resized-{new}"


@kopf.on.delete(PREFIX, "v1", "widgets")
def deleted(body, **_):
    kopf.info(body, reason="Goodbye", message="widget deleted")
"""


@pytest.fixture
def operator(
    tmp_path: Path, kubeconfig: Path, namespace: str, sandbox_target: ClusterTarget
) -> Iterator[Any]:
    ensure_crd(sandbox_target, crd_manifest())
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    log_path = tmp_path / "kopf.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kopf",
                "run",
                "--standalone",
                "--verbose",
                "--namespace",
                namespace,
                str(script),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        )
        try:
            yield process, log_path
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def test_kopf_operator_end_to_end(
    operator: Any, sandbox_target: ClusterTarget, namespace: str
) -> None:
    process, log_path = operator
    http = sandbox_target.http
    path = f"/apis/{GROUP}/v1/namespaces/{namespace}/widgets"
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "k"},
        "spec": {"size": 2, "replicas": 3},
    }
    assert http.post(path, json=body).status_code == 201

    def log() -> str:
        return log_path.read_text()

    def current() -> dict[str, Any]:
        result: dict[str, Any] = http.get(f"{path}/k").json()
        return result

    wait_for(
        lambda: current().get("status", {}).get("phase") == "Created",
        60,
        message=lambda: f"kopf did not handle the creation; log:\n{log()}",
    )
    widget = current()
    assert widget["status"]["replicas"] == 3
    assert "conformance.ecs.operator.dev/kopf-finalizer" in widget["metadata"]["finalizers"]

    def reasons() -> list[str]:
        events = http.get(f"/api/v1/namespaces/{namespace}/events").json()["items"]
        return [event["reason"] for event in events if event["involvedObject"]["name"] == "k"]

    wait_for(lambda: "Seen" in reasons(), 30, message=lambda: f"no Seen event; log:\n{log()}")

    http.patch(
        f"{path}/k",
        json={"spec": {"size": 7}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    wait_for(
        lambda: current().get("status", {}).get("phase") == "Resized-7",
        60,
        message=lambda: f"kopf did not handle the update; log:\n{log()}",
    )

    assert http.delete(f"{path}/k").status_code in (200, 202)
    wait_for(
        lambda: http.get(f"{path}/k").status_code == 404,
        60,
        message=lambda: f"kopf did not release its finalizer; log:\n{log()}",
    )
    wait_for(lambda: "Goodbye" in reasons(), 30)

    assert process.poll() is None, f"kopf exited early; log:\n{log()}"
    text = log()
    assert "Patching failed" not in text, text
    assert "Traceback" not in text, text
    assert "[ERROR" not in text, text
    assert "[WARNING" not in text, text
