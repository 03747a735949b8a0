"""The `kubectl ecs` plugin end to end: the installed `kubectl-ecs` script (and once through
kubectl's own plugin lookup) against the operator on the session's target, the sandbox or the
real control plane. Every step polls with a deadline (`kubectl ecs wait …`), never sleeps."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from support.ecs_api import Ecs, Plugin, container, shell
from support.helpers import ClusterTarget


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def as_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ok(result).stdout)
    return loaded


def wait_seconds(target: ClusterTarget) -> str:
    return str(int(30 * target.slowness))


def test_register_run_wait_describe_stop_and_logs(
    ecs: Ecs, plugin: Plugin, target: ClusterTarget, tmp_path: Path
) -> None:
    patience = wait_seconds(target)
    request = tmp_path / "web.json"
    request.write_text(json.dumps({"family": "web", "containerDefinitions": [container("app")]}))
    registered = as_json(
        plugin("register-task-definition", "--cli-input-json", f"file://{request}", "-o", "json")
    )["taskDefinition"]
    assert (registered["taskDefinitionArn"], registered["revision"]) == ("web:1", 1)
    assert registered["status"] == "ACTIVE"

    arguments = "run-task --task-definition web --count 2 --started-by plugin-test -o json"
    run = as_json(plugin(*arguments.split()))
    assert run["failures"] == []
    names = [task["name"] for task in run["tasks"]]
    assert len(set(names)) == 2 and all(name.startswith("web-") for name in names)
    for name in names:
        spec = ecs.task(name)["spec"]
        assert (spec["taskDefinition"], spec["startedBy"]) == ("web", "plugin-test")

    ok(
        plugin(
            "wait", "tasks-running", "--tasks", *names, "--timeout", patience, "--interval", "0.2"
        )
    )
    described = as_json(plugin("describe-tasks", "--tasks", *names, "-o", "json"))
    assert described["failures"] == []
    assert [t["name"] for t in described["tasks"]] == names
    for task in described["tasks"]:
        assert (task["lastStatus"], task["desiredStatus"]) == ("RUNNING", "RUNNING")
        assert task["taskDefinitionArn"] == "web:1" and task["startedBy"] == "plugin-test"
        assert [(c["name"], c["lastStatus"]) for c in task["containers"]] == [("app", "RUNNING")]
        assert task["clusterArn"] == ecs.namespace and len(task["taskArn"]) == 32
    # The same through kubectl's plugin lookup, as a table.
    table = ok(plugin("describe-tasks", "--tasks", *names, via_kubectl=True)).stdout
    header, *rows = table.split("\n\n")[0].splitlines()
    assert header.split()[:3] == ["NAME", "TASK", "DEFINITION"]
    assert sorted(row.split()[0] for row in rows) == sorted(names)

    # A running task's log: its text, or (where the cluster serves no container logs, as the
    # sandbox and kwok's simulated nodes) a clear error; never a traceback.
    running_log = plugin("logs", names[1])
    assert running_log.returncode == 0 or "did not return the log" in running_log.stderr

    stopped, still_running = names
    stop = as_json(plugin("stop-task", "--task", stopped, "--reason", "plugin test", "-o", "json"))
    assert stop["task"]["desiredStatus"] == "STOPPED"
    ok(
        plugin(
            "wait", "tasks-stopped", "--tasks", stopped, "--timeout", patience, "--interval", "0.2"
        )
    )
    [task] = as_json(plugin("describe-tasks", "--tasks", stopped, "-o", "json"))["tasks"]
    assert (task["lastStatus"], task["stopCode"], task["stoppedReason"]) == (
        "STOPPED",
        "UserInitiated",
        "plugin test",
    )
    assert [(c["name"], c["lastStatus"]) for c in task["containers"]] == [("app", "STOPPED")]
    assert (
        as_json(plugin("describe-tasks", "--tasks", still_running, "-o", "json"))["tasks"][0][
            "lastStatus"
        ]
        == "RUNNING"
    )

    # A STOPPED task keeps its Pod (terminated) until the Task is deleted, so its logs are
    # read as a running task's (or, where the cluster serves none, the API server says so).
    kept = ecs.pod(stopped)
    assert kept is not None and kept["status"]["phase"] == "Failed"
    stopped_log = plugin("logs", stopped)
    assert stopped_log.returncode == 0 or "did not return the log" in stopped_log.stderr
    # Once the Pod is gone (here deleted by hand), the plugin says why the logs are too.
    ecs.delete("pods", stopped, group="")
    ecs.wait(
        lambda: ecs.pod(stopped) is None,
        "the stopped task's Pod is deleted",
        lambda: ecs.pod(stopped),
    )
    logs = plugin("logs", stopped)
    assert logs.returncode == 1
    assert f"task {stopped} is STOPPED and its Pod {stopped} is gone" in logs.stderr

    # A waiter that cannot succeed fails at once; one that does not get there times out.
    failed = plugin("wait", "tasks-running", "--tasks", stopped, "--timeout", patience)
    assert failed.returncode == 1 and "waiter tasks-running failed" in failed.stderr
    late = plugin("wait", "tasks-stopped", "--tasks", still_running, "--timeout", "1")
    assert late.returncode == 1
    assert f"timed out after 1 s waiting for tasks-stopped: {still_running}: RUNNING" in late.stderr


def test_exit_codes_and_stop_codes_of_a_task_that_ends(
    ecs: Ecs, plugin: Plugin, target: ClusterTarget
) -> None:
    job = {"family": "job", "containerDefinitions": [container("job", shell("exit 3"))]}
    ok(plugin("register-task-definition", "--cli-input-json", json.dumps(job)))
    [task] = as_json(plugin("run-task", "--task-definition", "job:1", "-o", "json"))["tasks"]
    name = task["name"]
    ok(plugin("wait", "tasks-stopped", "--tasks", name, "--timeout", wait_seconds(target)))
    [stopped] = as_json(plugin("describe-tasks", "--tasks", name, "-o", "json"))["tasks"]
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert [(c["name"], c.get("exitCode")) for c in stopped["containers"]] == [("job", 3)]
    table = ok(plugin("describe-tasks", "--tasks", name)).stdout
    assert "EssentialContainerExited" in table
    containers = table.split("\n\n")[1].splitlines()
    assert containers[1].split()[:4] == [name, "job", "STOPPED", "3"]


def test_bad_input_is_refused_naming_the_field(ecs: Ecs, plugin: Plugin) -> None:
    # Checked by the plugin, before anything is sent.
    local = plugin(
        "register-task-definition",
        "--cli-input-json",
        json.dumps({"family": "bad", "containerDefinitions": [{"name": "a", "memory": 64}]}),
    )
    assert local.returncode == 2
    assert "containerDefinitions[0].image: required" in local.stderr
    # Checked at admission (a CEL rule of the CRD): the API server's words, exit code 2 too.
    twice = container("a")
    admission = plugin(
        "register-task-definition",
        "--cli-input-json",
        json.dumps({"family": "bad", "containerDefinitions": [twice, twice]}),
    )
    assert admission.returncode == 2
    assert "container names must be unique" in admission.stderr
    assert ecs.task_definition("bad") is None
    missing = plugin("run-task", "--task-definition", "nothing")
    assert missing.returncode == 1
    assert f"task definition nothing not found in cluster {ecs.namespace}" in missing.stderr


def test_create_wait_update_and_describe_a_service(
    ecs: Ecs, plugin: Plugin, target: ClusterTarget, tmp_path: Path
) -> None:
    patience = wait_seconds(target)
    ok(
        plugin(
            "register-task-definition",
            "--cli-input-json",
            json.dumps({"family": "api", "containerDefinitions": [container("app")]}),
        )
    )
    request = tmp_path / "service.json"
    request.write_text(
        json.dumps(
            {
                "serviceName": "api",
                "taskDefinition": "api",
                "desiredCount": 2,
                "clientToken": "plugin-test",
                "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 50},
            }
        )
    )
    created = as_json(plugin("create-service", "--cli-input-json", str(request), "-o", "json"))
    assert created["service"]["serviceName"] == "api"
    assert created["service"]["desiredCount"] == 2
    ok(plugin("wait", "services-stable", "--services", "api", "--timeout", patience))

    updated = as_json(
        plugin("update-service", "--service", "api", "--desired-count", "3", "-o", "json")
    )
    assert updated["service"]["desiredCount"] == 3
    ok(plugin("wait", "services-stable", "--services", "api", "--timeout", patience))
    [service] = as_json(plugin("describe-services", "--services", "api", "-o", "json"))["services"]
    assert (service["desiredCount"], service["runningCount"], service["pendingCount"]) == (3, 3, 0)
    assert service["status"] == "ACTIVE" and service["taskDefinition"] == "api:1"
    [deployment] = service["deployments"]
    assert (deployment["status"], deployment["runningCount"]) == ("PRIMARY", 3)
    messages = [event["message"] for event in service["events"]]
    assert "(service api) has reached a steady state." in messages
    assert any(m.startswith("(service api) has started ") for m in messages), messages

    # --force-new-deployment starts a deployment of the same revision.
    ok(plugin("update-service", "--service", "api", "--force-new-deployment"))
    ok(plugin("wait", "services-stable", "--services", "api", "--timeout", patience))
    [forced] = as_json(plugin("describe-services", "--services", "api", "-o", "json"))["services"]
    [new] = forced["deployments"]
    assert new["id"] != deployment["id"] and new["taskDefinition"] == "api:1"
    assert forced["runningCount"] == 3

    table = ok(plugin("describe-services", "--services", "api", "missing")).stdout
    assert table.splitlines()[1].split()[:6] == ["api", "ACTIVE", "api:1", "3", "3", "0"]
    assert "MISSING: missing" in table
