"""Revisions whose tasks cannot start: the deployment circuit breaker and the launch back-off
(ECS service throttle logic), targets R3."""

from __future__ import annotations

import itertools
import time

from support.ecs_api import Body, Ecs, container, shell
from support.services import Services, TaskWatch, degraded, is_live, revision_of

# The essential container waits for a setup container that exits 1 at once: the task fails
# before it ever reaches RUNNING (TaskFailedToStart), as a bad image or a failing init would.
FAILS_BEFORE_RUNNING = [
    container("setup", command=shell("exit 1"), essential=False),
    container("app", dependsOn=[{"containerName": "setup", "condition": "SUCCESS"}]),
]
CRASHES_AT_ONCE = [container("app", command=shell("exit 1"))]
BREAKER_THRESHOLD = 3  # min(200, max(3, ceil(2 / 2))) for two tasks


def breaker(rollback: bool) -> Body:
    return {"deploymentCircuitBreaker": {"enable": True, "rollback": rollback}}


def start_good_service(services: Services, ecs: Ecs, rollback: bool) -> str:
    """`web` running two tasks of web:1 with the circuit breaker on; its deployment id."""
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    services.create("web", "web", desiredCount=2, deploymentConfiguration=breaker(rollback))
    services.wait_steady("web", 2, "web:1")
    deployment: str = services.primary("web")["id"]
    return deployment


def failed_deployment(services: Services) -> Body | None:
    deployments = services.status("web").get("deployments") or []
    return next((d for d in deployments if d.get("rolloutState") == "FAILED"), None)


def test_circuit_breaker_fails_the_deployment_and_rolls_back(ecs: Ecs) -> None:
    services = Services(ecs)
    first = start_good_service(services, ecs, rollback=True)
    originals = {t["metadata"]["name"] for t in services.live("web")}
    services.update_task_definition("web", {"containerDefinitions": FAILS_BEFORE_RUNNING})
    rolling_back = f"(service web) rolling back to deployment {first}."
    services.wait(lambda: rolling_back in services.messages("web"), "the rollback", "web")
    status = services.wait_steady("web", 2, "web:1")
    primary = status["deployments"][0]
    assert (primary["id"], primary["taskDefinition"]) == (first, "web:1")
    assert status["taskDefinition"] == "web:1"
    assert degraded(status)["reason"] == "DeploymentFailed"
    messages = services.messages("web")
    failures = [m for m in messages if m.endswith(") deployment failed: tasks failed to start.")]
    assert len(failures) == 1, messages
    assert first not in failures[0]
    assert messages.index(rolling_back) < messages.index(failures[0])  # newest first
    # Tasks of web:2 were launched until the threshold, and are not retried.
    attempts = [t for t in services.tasks("web") if revision_of(t) == "web:2"]
    assert len(attempts) >= BREAKER_THRESHOLD
    assert not [t for t in attempts if is_live(t)]
    # minimumHealthyPercent 100: the old tasks were never stopped for tasks that never ran.
    assert {t["metadata"]["name"] for t in services.live("web")} == originals


def test_circuit_breaker_without_rollback_fails_and_stays_failed(ecs: Ecs) -> None:
    services = Services(ecs)
    start_good_service(services, ecs, rollback=False)
    originals = {t["metadata"]["name"] for t in services.live("web")}
    services.update_task_definition("web", {"containerDefinitions": FAILS_BEFORE_RUNNING})
    failed = services.wait(lambda: failed_deployment(services), "a FAILED deployment", "web")
    attempts = sum(revision_of(t) == "web:2" for t in services.tasks("web"))
    # A spec change that starts no deployment makes the scheduler plan again: still FAILED.
    generation = services.update("web", healthCheckGracePeriodSeconds=1)["metadata"]["generation"]
    status = services.wait(
        lambda: (s := services.status("web")).get("observedGeneration") == generation and s,
        "the new generation observed",
        "web",
    )
    deployments = status["deployments"]
    assert [(d["status"], d["taskDefinition"]) for d in deployments] == [
        ("PRIMARY", "web:2"),
        ("ACTIVE", "web:1"),
    ]
    assert deployments[0]["id"] == failed["id"]
    assert deployments[0]["rolloutState"] == "FAILED"
    assert degraded(status)["status"] == "True"
    assert degraded(status)["reason"] == "DeploymentFailed"
    assert sum(revision_of(t) == "web:2" for t in services.tasks("web")) == attempts
    assert {t["metadata"]["name"] for t in services.live("web")} == originals
    assert status["runningCount"] == 2


def test_failing_tasks_back_off_and_a_new_revision_resets(ecs: Ecs) -> None:
    """Launch gaps grow (0, 5, 10 s …, never giving up), the throttle event is said once, and
    a new revision launches at once although the next back-off would be 20 s."""
    services = Services(ecs)
    ecs.create_task_definition("web", *FAILS_BEFORE_RUNNING)
    ecs.wait_accepted("web")
    first_seen: dict[str, float] = {}

    def record_launches(tasks: dict[str, Body]) -> None:
        for name in tasks:
            first_seen.setdefault(name, time.monotonic())

    with TaskWatch(services, record_launches) as watch:
        services.create("web", "web", desiredCount=1)
        services.wait(lambda: len(first_seen) >= 4, "four launches", "web", timeout=30)
    watch.assert_clean()
    launched = sorted(first_seen.values())
    gaps = [later - earlier for earlier, later in itertools.pairwise(launched)]
    # The planner replaces a failed task as soon as it is stopping, but counts the failure once
    # it is STOPPED, so the first back-off step (5 s) may be skipped; later gaps still grow.
    assert gaps[2] > max(gaps[:2]), gaps
    throttled = "(service web) is unable to consistently start tasks successfully."
    assert services.messages("web").count(throttled) == 1
    status = services.status("web")
    assert degraded(status)["reason"] == "TasksFailingToStart", degraded(status)
    services.update_task_definition("web", {"containerDefinitions": [container("app")]})
    services.wait_steady("web", 1, "web:2", timeout=12)


def test_circuit_breaker_trips_on_a_container_that_exits_at_once(ecs: Ecs) -> None:
    """The issue's bad revision: its essential container exits 1 as soon as it starts. Each
    task stops on its own within moments of starting, which counts as failing to start."""
    services = Services(ecs)
    first = start_good_service(services, ecs, rollback=True)
    services.update_task_definition("web", {"containerDefinitions": CRASHES_AT_ONCE})
    rolling_back = f"(service web) rolling back to deployment {first}."
    services.wait(lambda: rolling_back in services.messages("web"), "the rollback", "web")
    status = services.wait_steady("web", 2, "web:1")
    assert degraded(status)["reason"] == "DeploymentFailed"
    failures = [
        m
        for m in services.messages("web")
        if m.endswith(") deployment failed: tasks failed to start.")
    ]
    assert len(failures) == 1
    crashed = [t for t in services.tasks("web") if revision_of(t) == "web:2"]
    assert len(crashed) >= BREAKER_THRESHOLD
    assert not [t for t in crashed if is_live(t)]
