"""The real kubectl against the operator: examples, categories, printer columns, describe and
explain."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from support.ecs_api import Ecs, KubectlRunner, container, shell

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
SETTLED = ("RUNNING", "STOPPED")


def example_tasks() -> list[tuple[str, str]]:
    """(file name, task name) of every Task in the examples."""
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "Task":
                found.append((path.name, document["metadata"]["name"]))
    return found


def test_examples_apply_and_every_task_settles(ecs: Ecs, kubectl: KubectlRunner) -> None:
    tasks = example_tasks()
    if not tasks:
        pytest.skip(f"no example Task in {EXAMPLES}")
    applied = kubectl("apply", "-n", ecs.namespace, "-f", str(EXAMPLES))
    assert applied.returncode == 0, applied.stderr
    for file_name, name in tasks:
        status = ecs.wait_last_status(name, *SETTLED, timeout=30)
        if status["lastStatus"] == "STOPPED" and not file_name.startswith("failing"):
            assert status["stopCode"] != "TaskFailedToStart", (file_name, status)
        if file_name.startswith("failing"):
            status = ecs.wait_stopped(name)
            assert status["stoppedReason"], status


def test_get_describe_and_explain(ecs: Ecs, kubectl: KubectlRunner) -> None:
    ecs.create_task_definition("shown", container("app"))
    ecs.create_task_definition("ends", container("job", shell("exit 0")))
    ecs.wait_accepted("shown")
    ecs.wait_accepted("ends")
    ecs.create_task("visible", "shown")
    ecs.create_task("over", "ends")
    running = ecs.wait_last_status("visible", "RUNNING")
    ecs.wait_stopped("over")

    listed = kubectl("get", "ecs", "-n", ecs.namespace)
    assert listed.returncode == 0, listed.stderr
    assert "taskdefinition.ecs.operator.dev/shown" in listed.stdout
    assert "task.ecs.operator.dev/visible" in listed.stdout

    table = kubectl("get", "tasks", "-n", ecs.namespace)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    for column in ("TASK DEFINITION", "LAST STATUS", "DESIRED", "STOP CODE", "NODE", "ZONE"):
        assert column in header
    by_name = {row.split()[0]: row.split() for row in rows}
    assert by_name["visible"][1:4] == ["shown:1", "RUNNING", "RUNNING"]
    assert running["nodeName"] in by_name["visible"]
    assert running["availabilityZone"] in by_name["visible"]
    assert by_name["over"][1:5] == ["ends:1", "STOPPED", "STOPPED", "EssentialContainerExited"]

    short = kubectl("get", "ecstask", "visible", "-n", ecs.namespace, "-o", "name")
    assert short.stdout.strip() == "task.ecs.operator.dev/visible"

    described = kubectl("describe", "task", "over", "-n", ecs.namespace)
    assert described.returncode == 0, described.stderr
    assert "Events:" in described.stdout
    assert "EssentialContainerExited" in described.stdout.split("Events:")[1]

    explained = kubectl("explain", "task.spec.taskDefinition")
    assert explained.returncode == 0, explained.stderr
    assert "family:revision" in explained.stdout
    essential = kubectl("explain", "taskdefinition.spec.containerDefinitions.essential")
    assert essential.returncode == 0, essential.stderr
    assert "essential" in essential.stdout.lower()
    assert "task stops" in essential.stdout or "stop" in essential.stdout
