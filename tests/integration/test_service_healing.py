"""A Service replaces the tasks that stop: essential container exits, failed health checks."""

from __future__ import annotations

from datetime import datetime, timedelta

from support.ecs_api import Ecs, container
from support.services import (
    EXIT_ANNOTATION,
    SERVICE_LABEL,
    UNHEALTHY_ANNOTATION,
    Services,
    TaskWatch,
    is_serving,
    task_status,
)


def test_exited_task_is_replaced_by_a_new_task(ecs: Ecs) -> None:
    services = Services(ecs)
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    services.create("web", "web", desiredCount=3)
    services.wait_steady("web", 3)
    before = {t["metadata"]["name"] for t in services.live("web")}
    victim = sorted(before)[0]

    def fewest_serving(tasks: dict[str, dict]) -> str | None:
        mine = [t for t in tasks.values() if t["metadata"]["labels"].get(SERVICE_LABEL) == "web"]
        serving = sum(1 for t in mine if is_serving(t))
        return None if serving >= 2 else f"only {serving} serving tasks"

    with TaskWatch(services, fewest_serving) as watch:
        services.patch(
            "pods", victim, {"metadata": {"annotations": {EXIT_ANNOTATION: "app:3"}}}, group=""
        )
        stopped = ecs.wait_stopped(victim)
        services.wait(
            lambda: len({t["metadata"]["name"] for t in services.live("web")} - before) == 1,
            "a replacement task",
            "web",
        )
        services.wait_steady("web", 3)
    watch.assert_clean()
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["containers"][0]["exitCode"] == 3
    after = {t["metadata"]["name"] for t in services.live("web")}
    assert before - after == {victim}
    # The stopped task stays visible, STOPPED, next to its replacement, and so does its Pod,
    # terminated, for `kubectl logs`: the replacement is a new Task with a Pod of its own name.
    assert task_status(ecs.task(victim))["lastStatus"] == "STOPPED"
    [kept] = ecs.pods_of(victim)
    assert kept["status"]["phase"] == "Failed" and "deletionTimestamp" not in kept["metadata"]
    [replacement] = after - before
    [pod] = ecs.pods_of(replacement)
    assert pod["metadata"]["name"] == replacement != victim
    messages = services.messages("web")
    started = f"(service web) has started 1 tasks: (task {replacement})."
    assert sum(m.startswith("(service web) has started 1 tasks:") for m in messages) == 1
    assert started in messages
    # The same as a Kubernetes Event with a reason of its own; the task it names is a Task.
    services.wait(
        lambda: any(
            e["message"] == started and e["reason"] == "TasksStarted"
            for e in services.kube_events("web")
        ),
        "the TasksStarted event",
        "web",
    )
    assert ecs.task(replacement)["metadata"]["name"] == replacement


GRACE_SECONDS = 6
HEALTH_CHECK = {"command": ["CMD-SHELL", "true"], "interval": 5, "retries": 1}


def test_unhealthy_task_is_stopped_after_the_grace_period_and_replaced(ecs: Ecs) -> None:
    services = Services(ecs)
    ecs.create_task_definition("checked", container("app", healthCheck=HEALTH_CHECK))
    ecs.wait_accepted("checked")
    services.create(
        "checked", "checked", desiredCount=2, healthCheckGracePeriodSeconds=GRACE_SECONDS
    )
    services.wait(
        lambda: (
            sum(task_status(t).get("lastStatus") == "RUNNING" for t in services.live("checked"))
            == 2
        ),
        "two RUNNING tasks",
        "checked",
    )
    before = {t["metadata"]["name"] for t in services.live("checked")}
    victim = sorted(before)[0]
    services.patch(
        "pods", victim, {"metadata": {"annotations": {UNHEALTHY_ANNOTATION: "app"}}}, group=""
    )
    stopped = ecs.wait_stopped(victim, timeout=GRACE_SECONDS + 15)
    assert stopped["stopCode"] == "ServiceSchedulerInitiated", stopped
    assert stopped["stoppedReason"] == "Task failed container health checks"
    services.wait(
        lambda: (
            sum(task_status(t).get("healthStatus") == "HEALTHY" for t in services.live("checked"))
            == 2
            and victim not in {t["metadata"]["name"] for t in services.live("checked")}
        ),
        "two HEALTHY tasks again",
        "checked",
    )
    # The grace period held the stop back: counted from when the task started.
    started = datetime.fromisoformat(stopped["startedAt"])
    assert datetime.fromisoformat(stopped["stoppingAt"]) - started >= timedelta(
        seconds=GRACE_SECONDS
    )
    messages = services.messages("checked")
    unhealthy = f"(service checked) (task {victim}) failed container health checks."
    assert unhealthy in messages
    services.wait(
        lambda: any(
            (e["message"], e["reason"], e["type"])
            == (unhealthy, "TaskFailedHealthChecks", "Warning")
            for e in services.kube_events("checked")
        ),
        "the TaskFailedHealthChecks event",
        "checked",
    )
    replaced = [m for m in messages if m.endswith("replaced 1 tasks due to an unhealthy status.")]
    assert len(replaced) == 1
