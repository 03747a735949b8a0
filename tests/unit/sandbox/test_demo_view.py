"""The demo's live view at 80x24 (rich Console(width=80)): every count column has its digits,
the task table keeps its STOP text and zone, only failures are red, failures stay in view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ecs_sandbox.contract import ECS_API_VERSION, SERVICE_LABEL
from ecs_sandbox.demo import (
    COLUMNS,
    FAILED_HEALTH_CHECKS_ANNOTATION,
    SERVICE_COLUMNS,
    STOPPED_SHOWN_SECONDS,
    Snapshot,
    deployment_lines,
    service_table,
    service_views,
    shown_tasks,
    stage_text,
    stop_severity,
    task_table,
    zone_summary,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
ZONES = ("zone-a", "zone-b", "zone-c")


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(zone: str, number: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"node-{zone}-{number}",
            "labels": {"topology.kubernetes.io/zone": zone},
        },
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def task(
    name: str,
    last: str = "RUNNING",
    *,
    service: str | None = "web-service",
    zone: str = "zone-a",
    code: str | None = None,
    exits: tuple[int, ...] = (),
    reason: str | None = None,
    stopped_ago: float | None = None,
    created_ago: float = 60,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "lastStatus": last,
        "desiredStatus": "STOPPED" if code else "RUNNING",
        "taskDefinitionArn": f"{service or name}:1",
        "nodeName": f"node-{zone}-1",
        "availabilityZone": zone,
        "healthStatus": "UNKNOWN",
    }
    if code:
        status["stopCode"] = code
        status["containers"] = [{"name": "app", "exitCode": e} for e in exits]
        if reason:
            status["stoppedReason"] = reason
    if stopped_ago is not None:
        status["stoppedAt"] = stamp(stopped_ago)
    labels = {SERVICE_LABEL: service} if service else {}
    return {
        "apiVersion": ECS_API_VERSION,
        "kind": "Task",
        "metadata": {
            "name": name,
            "namespace": "default",
            "creationTimestamp": stamp(created_ago),
            "labels": labels,
            "annotations": annotations or {},
        },
        "spec": {"taskDefinition": f"{service or name}"},
        "status": status,
    }


def service(name: str, desired: int, running: int, pending: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"desiredCount": desired, "taskDefinition": name},
        "status": {
            "desiredCount": desired,
            "runningCount": running,
            "pendingCount": pending,
            "taskDefinition": f"{name}:1",
            "deployments": [
                {
                    "status": "PRIMARY",
                    "taskDefinition": f"{name}:1",
                    "runningCount": running,
                    "rolloutState": "IN_PROGRESS",
                }
            ],
        },
    }


SCALE_IN = "Scaling activity initiated by (deployment ecs-svc/1234567890123456789)"


def busy_cluster() -> Snapshot:
    """What the demo shows mid-story: services, live tasks, a scale-in, a crash, a task that
    failed to start, a task stopped for failed health checks and a finished batch job."""
    tasks = [task(f"web-service-{i:010x}", zone=ZONES[i % 3], created_ago=50 - i) for i in range(6)]
    tasks += [
        task("web-lb-app-43273ac581", service="web-lb-app", zone="zone-b"),
        task(
            "web-service-00000000aa", "STOPPED", code="ServiceSchedulerInitiated", exits=(143,),
            reason=SCALE_IN, stopped_ago=5, created_ago=90,
        ),
        task(
            "crash-1", "STOPPED", service=None, code="EssentialContainerExited", exits=(1,),
            reason="Essential container in task exited", stopped_ago=5, created_ago=70,
        ),
        task(
            "needs-secret-1", "STOPPED", service=None, code="TaskFailedToStart",
            reason="ResourceInitializationError: Secret db-credentials not found",
            stopped_ago=5, created_ago=70,
        ),
        task(
            "web-lb-app-00000000bb", "STOPPED", service="web-lb-app",
            code="ServiceSchedulerInitiated", exits=(143,),
            reason="Task failed ELB health checks in (target-group web-lb)", stopped_ago=5,
            annotations={FAILED_HEALTH_CHECKS_ANNOTATION: "true"}, created_ago=80,
        ),
        task(
            "batch-1", "STOPPED", service=None, code="EssentialContainerExited", exits=(0,),
            reason="Essential container in task exited", stopped_ago=5, created_ago=75,
        ),
    ]  # fmt: skip
    nodes = [node(zone, n) for zone in ZONES for n in (1, 2)]
    services = [service("web-service", 6, 6), service("web-lb-app", 2, 1, 1)]
    return Snapshot(tasks, nodes, services)


def render(snapshot: Snapshot, width: int = 80, height: int = 24) -> list[str]:
    console = Console(width=width, height=height, record=True, color_system=None)
    rows = snapshot.task_rows(height)
    console.print(snapshot.render(NOW, width=width, plain=False, max_task_rows=rows))
    return console.export_text().splitlines()


def cells(table: Table, column: str) -> list[Text]:
    found = next(c for c in table.columns if c.header == column)
    return [cell for cell in found._cells if isinstance(cell, Text)]


def test_at_80_by_24_everything_fits_and_the_counts_have_their_digits() -> None:
    lines = render(busy_cluster())
    assert max(map(len, lines)) <= 80
    assert len(lines) <= 24
    header = next(line for line in lines if "SERVICE" in line)
    for column in ("DESIRED", "RUNNING", "PENDING", "ROLLOUT"):
        assert column in header
    row = next(line for line in lines if "│ web-lb-app " in line)
    assert [cell.strip() for cell in row.split("│")[2:5]] == ["2", "1", "1"]
    tasks_header = next(line for line in lines if "│ NAME" in line)
    for column in ("NAME", "LAST STATUS", "STOP", "ZONE"):
        assert column in tasks_header, tasks_header
    crash = next(line for line in lines if "│ crash-1 " in line)
    assert "EssentialContainerExited" in crash and "zone-a" in crash
    assert any(line.startswith("zone-a: 2/2 up") for line in lines)


@pytest.mark.parametrize("width", [60, 80, 100, 120, 160, 200])
def test_no_column_is_ever_squeezed_to_nothing(width: int) -> None:
    snapshot = busy_cluster()
    views = service_views(snapshot.services, snapshot.tasks, snapshot.nodes)
    for table in (
        service_table(views, plain=False, width=width),
        task_table(snapshot.tasks, NOW, width=width, plain=False),
    ):
        console = Console(width=width, record=True, color_system=None)
        console.print(table)
        lines = console.export_text().splitlines()
        assert max(map(len, lines)) <= width
        header = lines[1]
        for column in table.columns:
            assert str(column.header) in header, (width, column.header, header)
    columns = [c.header for c in task_table(snapshot.tasks, NOW, width=width, plain=False).columns]
    assert {"NAME", "LAST STATUS", "STOP"} <= set(columns)
    services = [c.header for c in service_table(views, plain=False, width=width).columns]
    assert {"SERVICE", "DESIRED", "RUNNING", "PENDING", "ROLLOUT"} <= set(services)


def test_wide_terminals_show_every_column() -> None:
    snapshot = busy_cluster()
    views = service_views(snapshot.services, snapshot.tasks, snapshot.nodes)
    assert [c.header for c in service_table(views, plain=True, width=200).columns] == list(
        SERVICE_COLUMNS
    )
    assert [c.header for c in task_table(snapshot.tasks, NOW, width=200, plain=True).columns] == [
        *COLUMNS
    ]


def test_only_failures_are_red() -> None:
    snapshot = busy_cluster()
    table = task_table(snapshot.tasks, NOW, width=200, plain=False)
    names = [cell.plain for cell in cells(table, "NAME")]
    style = dict(zip(names, (cell.style for cell in cells(table, "STOP")), strict=True))
    assert style["crash-1"] == "red"
    assert style["needs-secret-1"] == "red"
    assert style["web-lb-app-00000000bb"] == "red"  # failed ELB health checks
    assert style["web-service-00000000aa"] == "dim"  # scale-in: routine
    assert style["batch-1"] == ""  # a job done
    severities = {t["metadata"]["name"]: stop_severity(t) for t in snapshot.tasks}
    assert severities["web-service-0000000000"] == ""
    lost = task("lost", "STOPPED", code="TerminationNotice", reason="its node was lost")
    user = task("user", "STOPPED", code="UserInitiated", reason="rolling back")
    assert (stop_severity(lost), stop_severity(user)) == ("warning", "routine")


def test_failures_stay_in_view_longer_and_leave_last() -> None:
    old_failure = task(
        "crashed-long-ago", "STOPPED", service=None, code="EssentialContainerExited",
        exits=(2,), stopped_ago=5 * 60, created_ago=400,
    )  # fmt: skip
    old_routine = task(
        "scaled-in", "STOPPED", code="ServiceSchedulerInitiated", exits=(143,),
        stopped_ago=STOPPED_SHOWN_SECONDS + 5, created_ago=400,
    )  # fmt: skip
    shown, note = shown_tasks([old_failure, old_routine], NOW, 10)
    assert [t["metadata"]["name"] for t in shown] == ["crashed-long-ago"]
    assert note.startswith("1 more task not shown (1 STOPPED)")

    snapshot = busy_cluster()
    shown, note = shown_tasks(snapshot.tasks, NOW, 9)
    names = {t["metadata"]["name"] for t in shown}
    # 12 tasks in 9 rows: the scale-in and the finished job leave first, then the oldest
    # failure; the newer failures and every live task stay.
    stopped = {t["metadata"]["name"] for t in shown if t["status"]["lastStatus"] == "STOPPED"}
    assert stopped == {"crash-1", "needs-secret-1"}
    live = {t["metadata"]["name"] for t in snapshot.tasks if t["status"]["lastStatus"] != "STOPPED"}
    assert live <= names
    assert note == "3 more tasks not shown (3 STOPPED); kubectl get ecstask lists them all"


def test_the_nodes_line_shortens_to_fit() -> None:
    nodes = [node(zone, n) for zone in ZONES for n in (1, 2)]
    tasks = [task(f"t{i}", zone=ZONES[i % 3]) for i in range(6)]
    wide = zone_summary(nodes, tasks)
    assert wide.startswith("nodes  zone-a: 2/2 nodes ready, 2 tasks running")
    assert zone_summary(nodes, tasks, 200) == wide
    short = zone_summary(nodes, tasks, 80)
    assert short == "zone-a: 2/2 up, 2 tasks │ zone-b: 2/2 up, 2 tasks │ zone-c: 2/2 up, 2 tasks"
    assert zone_summary(nodes, tasks, 40).splitlines()[0] == "zone-a: 2/2 up, 2 tasks"


def canary(stage: str | None, weight: float | None, rollout: str = "IN_PROGRESS") -> dict[str, Any]:
    """Service shop (2 tasks) in a CANARY deployment of shop:2 beside shop:1."""
    body = service("shop", 2, 4)
    primary: dict[str, Any] = {
        "id": "ecs-svc/1234567890123456789",
        "status": "PRIMARY",
        "taskDefinition": "shop:2",
        "runningCount": 2,
        "rolloutState": rollout,
        "strategy": "CANARY",
    }
    if stage is not None:
        primary["lifecycleStage"] = stage
    if weight is not None:
        primary["productionTrafficWeight"] = weight
    old = {"status": "ACTIVE", "taskDefinition": "shop:1", "runningCount": 2}
    body["status"].update(taskDefinition="shop:2", deployments=[primary, old])
    return body


def test_a_stage_line_says_the_stage_and_the_new_revisions_share() -> None:
    [shifting, old] = canary("PRODUCTION_TRAFFIC_SHIFT", 20.0)["status"]["deployments"]
    assert stage_text(shifting) == "PRODUCTION_TRAFFIC_SHIFT: 20 % of production on shop:2"
    [scaling, _] = canary("SCALE_UP", None)["status"]["deployments"]
    assert stage_text(scaling) == "SCALE_UP: 0 % of production on shop:2"
    [linear, _] = canary("PRODUCTION_TRAFFIC_SHIFT", 33.3)["status"]["deployments"]
    assert stage_text(linear) == "PRODUCTION_TRAFFIC_SHIFT: 33.3 % of production on shop:2"
    [completed, _] = canary(None, 100.0, "COMPLETED")["status"]["deployments"]
    assert stage_text(completed) == stage_text(old) == ""


def test_the_view_shows_a_staged_deployments_strategy_and_stage_at_80_by_24() -> None:
    snapshot = busy_cluster()
    snapshot.services.append(canary("PRODUCTION_TRAFFIC_SHIFT", 20.0))
    lines = render(snapshot)
    assert max(map(len, lines)) <= 80
    assert len(lines) <= 24
    assert "shop  CANARY  PRODUCTION_TRAFFIC_SHIFT: 20 % of production on shop:2" in lines
    # Only a deployment in a stage has a line; a narrow terminal cuts it.
    assert deployment_lines(busy_cluster().services) == []
    assert deployment_lines([canary(None, 100.0, "COMPLETED")]) == []
    [cut] = deployment_lines([canary("CLEAN_UP", 100.0)], width=30)
    assert cut == "shop  CANARY  CLEAN_UP: 100 %…"
    # The line takes a task row: the view keeps its height.
    assert snapshot.task_rows(24) == busy_cluster().task_rows(24) - 2


def test_the_plain_view_prints_again_when_a_deployment_moves_on() -> None:
    shifting = Snapshot([], [], [canary("PRODUCTION_TRAFFIC_SHIFT", 20.0)])
    shifted = Snapshot([], [], [canary("PRODUCTION_TRAFFIC_SHIFT", 100.0)])
    assert shifting.signature() != shifted.signature()
