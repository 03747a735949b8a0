"""RunTask's `count`, end to end with the real kubectl: a Task applied with `count: 3` runs
three tasks (itself and `NAME-2`, `NAME-3`), listed by the run label; `count` is refused
outside 1-10 and cannot change; deleting the first Task deletes the run (garbage collection)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from support.ecs_api import Ecs, KubectlRunner, condition, task
from support.helpers import wait_for

RUN_LABEL = "ecs.operator.dev/run"


def apply(
    kubectl: KubectlRunner, ecs: Ecs, body: dict[str, Any], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    manifest = tmp_path / "task.yaml"
    manifest.write_text(yaml.safe_dump(body))
    return kubectl("apply", "-n", ecs.namespace, "-f", str(manifest))


def test_a_task_with_count_3_runs_three_tasks_and_deleting_the_first_removes_them(
    ecs: Ecs, kubectl: KubectlRunner, tmp_path: Path
) -> None:
    ecs.create_task_definition("batch")
    ecs.wait_accepted("batch")
    applied = apply(kubectl, ecs, task("nightly", "batch", count=3, startedBy="cron"), tmp_path)
    assert applied.returncode == 0, applied.stderr
    names = ("nightly", "nightly-2", "nightly-3")
    for name in names:
        assert ecs.wait_last_status(name, "RUNNING")["taskDefinitionArn"] == "batch:1"
    status = ecs.wait_task("nightly", lambda s: s.get("launchedCount"), "the run recorded")
    assert status["launchedCount"] == 3
    assert condition(status, "TasksLaunched")["reason"] == "AllLaunched"
    listed = kubectl(
        "get", "ecstask", "-n", ecs.namespace, "-l", f"{RUN_LABEL}=nightly", "-o", "name"
    )
    assert listed.returncode == 0, listed.stderr
    assert sorted(listed.stdout.split()) == [f"task.ecs.operator.dev/{name}" for name in names]
    assert {ecs.task(n)["spec"]["startedBy"] for n in names} == {"cron"}

    # count is immutable, and bounded as RunTask's.
    changed = kubectl(
        "patch", "ecstask", "nightly", "-n", ecs.namespace, "--type", "merge",
        "-p", json.dumps({"spec": {"count": 2}}),
    )  # fmt: skip
    assert changed.returncode != 0 and "spec.count" in changed.stderr
    too_many = apply(kubectl, ecs, task("huge", "batch", count=11), tmp_path)
    assert too_many.returncode != 0 and "spec.count" in too_many.stderr

    # Deleting the first Task deletes its run, its Pods with it.
    deleted = kubectl("delete", "ecstask", "nightly", "-n", ecs.namespace, "--wait=true")
    assert deleted.returncode == 0, deleted.stderr
    wait_for(
        lambda: all(ecs.get("tasks", n) is None and ecs.pod(n) is None for n in names),
        60,
        interval=0.1,
        message=lambda: f"the run is not gone: {[n for n in names if ecs.get('tasks', n)]}",
    )
