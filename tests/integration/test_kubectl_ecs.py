"""The real kubectl against the operator: examples, categories, printer columns, describe and
explain, service events by reason."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.ecs_api import Ecs, KubectlRunner, condition, container, shell
from support.services import Services

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


def get(kubectl: KubectlRunner, *args: str) -> tuple[str, dict[str, str]]:
    result = kubectl("get", *args)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    return header, {row.split()[0]: row for row in rows}


def columns_of(header: str) -> list[str]:
    return [name.strip() for name in header.split("  ") if name.strip()]


def value(header: str, row: str, column: str) -> str:
    columns = columns_of(header)
    start = header.index(column)
    index = columns.index(column)
    following = columns[index + 1 :]
    end = header.index(following[0], start + len(column)) if following else None
    return row[start:end].strip()


def test_printer_columns_say_why_at_a_glance(ecs: Ecs, kubectl: KubectlRunner) -> None:
    """td: why a spec was refused, wide: revision, reason, message; ecssvc: Ready, Degraded,
    rollout and lifecycle stage (empty for a rolling update), wide: progress, rollout reason
    and what degrades it; ecstask -o wide: the stopped reason."""
    namespace = ecs.namespace
    ecs.create_task_definition("fine", container("app"))
    ecs.create_task_definition("sudo", container("app", privileged=True))
    ecs.create_task_definition("quits", container("job", shell("exit 3")))
    ecs.wait_accepted("fine")
    refused = ecs.wait_accepted("sudo", "False")
    ecs.wait_accepted("quits")
    refusal = condition(refused, "Accepted")["message"]
    assert "privileged" in refusal

    header, rows = get(kubectl, "td", "-n", namespace)
    assert columns_of(header) == [
        "NAME", "REVISION", "STATUS", "ACCEPTED", "AGE", "REFUSED BECAUSE",
    ]  # fmt: skip
    assert value(header, rows["sudo"], "ACCEPTED") == "False"
    assert value(header, rows["sudo"], "REFUSED BECAUSE") == refusal
    assert value(header, rows["fine"], "ACCEPTED") == "True"
    assert value(header, rows["fine"], "REFUSED BECAUSE") == ""
    header, rows = get(kubectl, "td", "-n", namespace, "-o", "wide")
    assert columns_of(header)[-3:] == ["TASK DEFINITION", "REASON", "MESSAGE"]
    assert value(header, rows["fine"], "TASK DEFINITION") == "fine:1"
    assert value(header, rows["fine"], "REASON") == "Registered"
    assert value(header, rows["fine"], "MESSAGE") == "registered as revision fine:1"
    assert value(header, rows["sudo"], "REASON") == "Invalid"

    services = Services(ecs)
    services.create("steady", "fine", desiredCount=2)
    services.create("stuck", "fine", desiredCount=1, placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone == nowhere"}
    ])  # fmt: skip
    services.wait_steady("steady", 2)
    services.wait(
        lambda: condition(services.status("stuck"), "Degraded").get("status") == "True",
        "Degraded",
        "stuck",
    )
    header, rows = get(kubectl, "ecssvc", "-n", namespace)
    assert columns_of(header) == [
        "NAME", "DESIRED", "RUNNING", "PENDING", "READY", "DEGRADED", "TASK DEFINITION",
        "ROLLOUT", "STAGE", "AGE",
    ]  # fmt: skip
    steady = {c: value(header, rows["steady"], c) for c in columns_of(header)}
    assert steady | {"AGE": ""} == {
        "NAME": "steady", "DESIRED": "2", "RUNNING": "2", "PENDING": "0", "READY": "True",
        "DEGRADED": "AsExpected", "TASK DEFINITION": "fine:1", "ROLLOUT": "COMPLETED",
        "STAGE": "", "AGE": "",
    }  # fmt: skip
    stuck = condition(services.status("stuck"), "Degraded")
    assert value(header, rows["stuck"], "READY") == "False"
    assert value(header, rows["stuck"], "DEGRADED") == stuck["reason"] != "AsExpected"
    header, rows = get(kubectl, "ecssvc", "-n", namespace, "-o", "wide")
    assert columns_of(header)[-3:] == ["PROGRESS", "ROLLOUT REASON", "DEGRADED MESSAGE"]
    assert value(header, rows["steady"], "PROGRESS") == "DeploymentCompleted"
    primary = services.primary("steady")
    assert value(header, rows["steady"], "ROLLOUT REASON") == primary["rolloutStateReason"]
    assert value(header, rows["steady"], "DEGRADED MESSAGE") == ""
    assert value(header, rows["stuck"], "DEGRADED MESSAGE") == stuck["message"]

    ecs.create_task("ended", "quits")
    stopped = ecs.wait_stopped("ended")
    header, rows = get(kubectl, "ecstask", "ended", "-n", namespace)
    assert "STOPPED REASON" not in columns_of(header)
    header, rows = get(kubectl, "ecstask", "ended", "-n", namespace, "-o", "wide")
    assert columns_of(header)[-3:] == ["HEALTH", "GROUP", "STOPPED REASON"]
    assert value(header, rows["ended"], "STOPPED REASON") == stopped["stoppedReason"]
    assert stopped["stoppedReason"]


def test_service_events_have_a_reason_per_kind_and_name_tasks_kubectl_finds(
    ecs: Ecs, kubectl: KubectlRunner
) -> None:
    """`kubectl get events --field-selector reason=…` picks one kind of service event, and a
    task an event names (`(task NAME)`) is the Task `kubectl get ecstask NAME` shows."""
    services = Services(ecs)
    ecs.create_task_definition("evented", container("app"))
    ecs.wait_accepted("evented")
    services.create("evented", "evented", desiredCount=2)
    services.wait_steady("evented", 2)

    def by_reason(reason: str) -> list[dict[str, Any]]:
        listed = kubectl(
            "get",
            "events",
            "-n",
            ecs.namespace,
            "--field-selector",
            f"reason={reason},involvedObject.kind=Service,involvedObject.name=evented",
            "-o",
            "json",
        )
        assert listed.returncode == 0, listed.stderr
        items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
        return items

    started = ecs.wait(
        lambda: by_reason("TasksStarted"),
        "a TasksStarted event on the Service",
        lambda: services.kube_events("evented"),
    )
    assert ecs.wait(
        lambda: by_reason("SteadyState"),
        "a SteadyState event on the Service",
        lambda: services.kube_events("evented"),
    )
    assert all(e["message"].startswith("(service evented) has started") for e in started)
    assert all(e["type"] == "Normal" for e in started)
    named = sorted({n for e in started for n in re.findall(r"\(task ([^)]+)\)", e["message"])})
    assert named == sorted(t["metadata"]["name"] for t in services.live("evented"))
    for name in named:
        found = kubectl("get", "ecstask", name, "-n", ecs.namespace, "-o", "name")
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip().endswith(f"/{name}")
    reasons = {e["reason"] for e in services.kube_events("evented")}
    assert "ServiceEvent" not in reasons
