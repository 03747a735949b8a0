"""Task lifecycle end to end: batch tasks, exit codes, essential vs non-essential containers,
dependsOn ordering, StopTask, a stopped task's Pod kept for its logs, deletion and TTL."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from support.ecs_api import Ecs, container, container_status, shell

EXIT_ANNOTATION = "sandbox.ecs.operator.dev/exit"
CONTAINERS_ANNOTATION = "ecs.operator.dev/containers"


def timestamp(status: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(status[field])


def test_batch_task_runs_once_and_stops_with_its_exit_code(ecs: Ecs) -> None:
    ecs.create_task_definition("batch", container("job", shell("sleep 1; exit 0")))
    ecs.wait_accepted("batch")
    ecs.create_task("once", "batch")
    seen_states: list[str] = []
    pod_uids: set[str] = set()

    def progress() -> dict[str, Any] | None:
        status = ecs.status("once")
        state = status.get("lastStatus")
        if state and (not seen_states or seen_states[-1] != state):
            seen_states.append(state)
        pod_uids.update(p["metadata"]["uid"] for p in ecs.pods_of("once"))
        return status if state == "STOPPED" else None

    stopped = ecs.wait(progress, "the batch task stops", lambda: seen_states)
    assert seen_states[-1] == "STOPPED"
    assert "RUNNING" in seen_states
    order = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING"]
    ranks = [order.index(s) if s in order else len(order) for s in seen_states]
    assert ranks == sorted(ranks), seen_states
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["desiredStatus"] == "STOPPED"
    assert container_status(stopped, "job")["exitCode"] == 0
    assert container_status(stopped, "job")["lastStatus"] == "STOPPED"
    times = [
        timestamp(stopped, f) for f in ("createdAt", "pullStartedAt", "startedAt", "stoppedAt")
    ]
    assert times == sorted(times), times
    assert len(pod_uids) == 1

    # Never replaced: the STOPPED task stays and no second pod ever appears.
    ecs.create_task_definition("marker", container("m"))
    ecs.wait_accepted("marker")
    ecs.create_task("after", "marker")
    ecs.wait_last_status("after", "RUNNING")
    assert ecs.status("once")["lastStatus"] == "STOPPED"
    assert {p["metadata"]["uid"] for p in ecs.pods_of("once")} <= pod_uids


def test_exit_code_of_the_essential_container_is_reported(ecs: Ecs) -> None:
    ecs.create_task_definition("fail", container("job", shell("exit 3")))
    ecs.wait_accepted("fail")
    ecs.create_task("three", "fail")
    stopped = ecs.wait_stopped("three")
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert container_status(stopped, "job")["exitCode"] == 3
    # Events are posted after the status write (the Pod ended at once: one reconcile).
    ecs.wait(
        lambda: "EssentialContainerExited" in {e["reason"] for e in ecs.events("three")},
        "the EssentialContainerExited event",
        lambda: ecs.events("three"),
        timeout=5,
    )


def test_non_essential_exit_keeps_the_task_running(ecs: Ecs) -> None:
    ecs.create_task_definition(
        "mixed",
        container("server"),
        container("helper", shell("exit 1"), essential=False),
    )
    ecs.wait_accepted("mixed")
    ecs.create_task("m", "mixed")
    status = ecs.wait_task(
        "m",
        lambda s: container_status(s, "helper").get("lastStatus") == "STOPPED",
        "the helper container stops",
    )
    assert container_status(status, "helper")["exitCode"] == 1
    assert status["lastStatus"] == "RUNNING"
    assert container_status(status, "server")["lastStatus"] == "RUNNING"
    assert "stopCode" not in status


def test_essential_container_killed_by_fault_stops_the_task(ecs: Ecs) -> None:
    ecs.create_task_definition("pair", container("main"), container("logger", essential=False))
    ecs.wait_accepted("pair")
    ecs.create_task("p", "pair")
    ecs.wait_last_status("p", "RUNNING")
    pod = ecs.pod("p")
    assert pod is not None
    names = json.loads(pod["metadata"]["annotations"][CONTAINERS_ANNOTATION])
    kube_name = names["main"]
    assert kube_name in {c["name"] for c in pod["spec"]["containers"]}
    ecs.patch("pods", "p", {"metadata": {"annotations": {EXIT_ANNOTATION: f"{kube_name}:2"}}}, "")
    stopped = ecs.wait_stopped("p")
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert container_status(stopped, "main")["exitCode"] == 2
    # The other container is stopped with SIGTERM; its exit code may land just after STOPPED.
    stopped = ecs.wait_task(
        "p",
        lambda s: "exitCode" in container_status(s, "logger"),
        "the logger's exit code is reported",
        timeout=5,
    )
    assert container_status(stopped, "logger")["exitCode"] == 143
    assert container_status(stopped, "logger")["lastStatus"] == "STOPPED"


def test_depends_on_success_runs_an_init_container_first(ecs: Ecs) -> None:
    ecs.create_task_definition(
        "migrate",
        container("setup", shell("exit 0"), essential=False),
        container("app", dependsOn=[{"containerName": "setup", "condition": "SUCCESS"}]),
    )
    ecs.wait_accepted("migrate")
    ecs.create_task("mig", "migrate")
    status = ecs.wait_last_status("mig", "RUNNING")
    pod = ecs.pod("mig")
    assert pod is not None
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["setup"]
    assert "restartPolicy" not in pod["spec"]["initContainers"][0]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app"]
    status = ecs.wait_task(
        "mig",
        lambda s: container_status(s, "setup").get("exitCode") == 0,
        "setup reported as exited 0",
    )
    assert container_status(status, "app")["lastStatus"] == "RUNNING"


def test_depends_on_healthy_starts_the_dependency_first_and_waits_for_its_health(
    ecs: Ecs,
) -> None:
    """A CMD-SHELL health check is waited for in a postStart hook of a regular container listed
    first; a CMD one (the image may have no shell) in a native sidecar's startup probe."""
    ecs.create_task_definition(
        "gated",
        container(
            "db",
            healthCheck={"command": ["CMD-SHELL", "true"], "interval": 5, "startPeriod": 10},
        ),
        container("cache", healthCheck={"command": ["CMD", "true"], "interval": 5}),
        container(
            "app",
            dependsOn=[
                {"containerName": "db", "condition": "HEALTHY"},
                {"containerName": "cache", "condition": "HEALTHY"},
            ],
        ),
    )
    ecs.wait_accepted("gated")
    ecs.create_task("g", "gated")
    status = ecs.wait_last_status("g", "RUNNING")
    pod = ecs.pod("g")
    assert pod is not None
    [sidecar] = pod["spec"]["initContainers"]
    assert sidecar["name"] == "cache"
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["exec"]["command"] == ["true"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["db", "app"]
    db = pod["spec"]["containers"][0]
    assert "restartPolicy" not in db and "startupProbe" not in db
    hook = db["lifecycle"]["postStart"]["exec"]["command"]
    assert hook[:2] == ["/bin/sh", "-c"] and hook[-1] == "true"
    # 10 s / 5 s: 2 checks in startPeriod, then the 3 default retries, 5 s apart.
    assert '[ "$checks" -lt 5 ] || exit 1; checks=$((checks + 1)); sleep 5;' in hook[2]
    for name in ("db", "cache", "app"):
        assert container_status(status, name)["lastStatus"] == "RUNNING"


def test_a_non_essential_start_dependency_that_exits_is_not_restarted(ecs: Ecs) -> None:
    """ECS never restarts a container: the dependency is a regular container of the Pod
    (restartPolicy Never), so the Pod keeps it terminated as the task reports it."""
    ecs.create_task_definition(
        "fetcher",
        container("app", dependsOn=[{"containerName": "fetch", "condition": "START"}]),
        container("fetch", shell("sleep 1; exit 3"), essential=False),
    )
    ecs.wait_accepted("fetcher")
    ecs.create_task("f", "fetcher")
    status = ecs.wait_task(
        "f",
        lambda s: container_status(s, "fetch").get("lastStatus") == "STOPPED",
        "the fetch container stops",
    )
    assert container_status(status, "fetch")["exitCode"] == 3
    assert status["lastStatus"] == "RUNNING" and "stopCode" not in status
    assert container_status(status, "app")["lastStatus"] == "RUNNING"
    # The ContainerExited event is posted after the status write.
    ecs.wait(
        lambda: "ContainerExited" in {e["reason"] for e in ecs.events("f")},
        "the ContainerExited event",
        lambda: ecs.events("f"),
        timeout=5,
    )
    pod = ecs.pod("f")
    assert pod is not None
    assert "initContainers" not in pod["spec"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["fetch", "app"]
    [fetch] = [c for c in pod["status"]["containerStatuses"] if c["name"] == "fetch"]
    assert fetch["restartCount"] == 0
    assert fetch["state"]["terminated"]["exitCode"] == 3
    status = ecs.status("f")
    assert status["lastStatus"] == "RUNNING"
    assert container_status(status, "fetch")["exitCode"] == 3


def test_stop_task_with_and_without_a_reason(ecs: Ecs) -> None:
    ecs.create_task_definition("svc", container("app", stopTimeout=2))
    ecs.wait_accepted("svc")
    ecs.create_task("quiet", "svc")
    ecs.create_task("explained", "svc")
    ecs.wait_last_status("quiet", "RUNNING")
    ecs.wait_last_status("explained", "RUNNING")

    ecs.stop_task("quiet")
    ecs.stop_task("explained", "scaling down for the night")
    for name, reason in (
        ("quiet", "Task stopped by user"),
        ("explained", "scaling down for the night"),
    ):
        stopped = ecs.wait_stopped(name)
        assert stopped["stopCode"] == "UserInitiated"
        assert stopped["stoppedReason"] == reason
        assert stopped["desiredStatus"] == "STOPPED"
        assert timestamp(stopped, "stoppingAt") <= timestamp(stopped, "stoppedAt")
        assert container_status(stopped, "app")["exitCode"] == 143  # SIGTERM
        # The containers were stopped and the Pod kept (its logs too), as a Job's: its kubelet
        # enforced the active deadline the operator set. It goes with the Task.
        [pod] = ecs.pods_of(name)
        assert pod["status"]["phase"] == "Failed"
        assert pod["status"]["reason"] == "DeadlineExceeded"
        assert pod["spec"]["activeDeadlineSeconds"] == 1
        assert "deletionTimestamp" not in pod["metadata"]


def test_a_crashed_task_keeps_its_terminated_pod_until_the_task_is_deleted(ecs: Ecs) -> None:
    """`kubectl logs` must work for a crashed task: its Pod stays, terminated, until the Task
    is deleted (its TTL, here by hand); garbage collection then removes it, and a new Task of
    the same name starts once it has."""
    ecs.create_task_definition(
        "crashy", container("app", shell("sleep 1; exit 4")), container("log", essential=False)
    )
    ecs.wait_accepted("crashy")
    ecs.create_task("crash", "crashy")
    stopped = ecs.wait_stopped("crash")
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert container_status(stopped, "app")["exitCode"] == 4
    # The non-essential container was stopped through the Pod's deadline; the Pod stays.
    stopped = ecs.wait_task(
        "crash",
        lambda s: "exitCode" in container_status(s, "log"),
        "the log container's exit code is reported",
        timeout=5,
    )
    assert container_status(stopped, "log")["exitCode"] == 143
    [pod] = ecs.pods_of("crash")
    first_uid = pod["metadata"]["uid"]
    assert pod["status"]["phase"] == "Failed"
    assert "deletionTimestamp" not in pod["metadata"]
    names = json.loads(pod["metadata"]["annotations"][CONTAINERS_ANNOTATION])
    terminated = {
        names.get(c["name"], c["name"]): c["state"].get("terminated", {}).get("exitCode")
        for c in pod["status"]["containerStatuses"]
    }
    assert terminated == {"app": 4, "log": 143}

    ecs.delete("tasks", "crash")
    ecs.create_task("crash", "crashy")  # at once: the previous Pod may not be collected yet
    ecs.wait_last_status("crash", "RUNNING")
    [pod] = ecs.pods_of("crash")
    assert pod["metadata"]["uid"] != first_uid
    assert "stopCode" not in ecs.status("crash")


def test_stop_goes_through_stopping(ecs: Ecs) -> None:
    ecs.create_task_definition("slow", container("app", stopTimeout=30))
    ecs.wait_accepted("slow")
    ecs.create_task("s", "slow")
    ecs.wait_last_status("s", "RUNNING")
    ecs.stop_task("s")
    seen: list[str] = []

    def track() -> bool:
        state = ecs.status("s").get("lastStatus", "")
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "STOPPED"

    ecs.wait(track, "the task stops", lambda: seen)
    assert seen[-1] == "STOPPED"
    assert set(seen) <= {"RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"}


def test_deleting_a_task_removes_its_pod(ecs: Ecs) -> None:
    ecs.create_task_definition("gc", container("app"))
    ecs.wait_accepted("gc")
    ecs.create_task("doomed", "gc")
    ecs.wait_last_status("doomed", "RUNNING")
    assert ecs.pods_of("doomed")
    ecs.delete("tasks", "doomed")
    ecs.wait(
        lambda: ecs.get("tasks", "doomed") is None and not ecs.pods_of("doomed"),
        "the task and its pod are gone",
        lambda: (ecs.get("tasks", "doomed"), ecs.pods_of("doomed")),
    )


def test_ttl_deletes_the_stopped_task_and_its_pod(ecs: Ecs) -> None:
    ecs.create_task_definition("short", container("job", shell("exit 0")))
    ecs.wait_accepted("short")
    ecs.create_task("ephemeral", "short", ttlSecondsAfterStopped=1)
    ecs.wait(
        lambda: (
            ecs.get("tasks", "ephemeral") is not None
            and ecs.status("ephemeral").get("lastStatus") == "STOPPED"
        ),
        "the task stops",
        lambda: ecs.get("tasks", "ephemeral"),
    )
    ecs.wait(
        lambda: ecs.get("tasks", "ephemeral") is None and not ecs.pods_of("ephemeral"),
        "the expired task is deleted with its pod",
        lambda: ecs.get("tasks", "ephemeral"),
        timeout=10,
    )
