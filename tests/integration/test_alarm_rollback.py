"""Alarm rollback through the real operator and a real Prometheus server (Debian's package,
`make prometheus`) scraping a metric the test controls: an alarm that goes into ALARM during a
rolling deployment fails it and rolls back to the last successful service revision; an alarm
that stays quiet lets it complete once the alarm bake time has passed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ecs_api import Body, Ecs, OperatorProcess, container
from support.prometheus import ControlledMetric, PrometheusServer
from support.services import Services, revision_of, task_status

SERVICE = "web"
FAMILY = "web"
DESIRED = 2
METRIC = "app_errors"
ALARM = "app-errors"
CONVERGE = 60
ALARMS = {"alarms": {"alarmNames": [ALARM], "enable": True, "rollback": True}}


@pytest.fixture
def metric() -> Iterator[ControlledMetric]:
    served = ControlledMetric(METRIC)
    served.set(0)
    yield served
    served.close()


@pytest.fixture
def prometheus(tmp_path: Path, metric: ControlledMetric) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path, metric.port)
    try:
        server.wait_ready(METRIC)
        yield server
    finally:
        server.stop()


def start_operator(
    operator: OperatorProcess, prometheus: PrometheusServer, tmp_path: Path, bake: int
) -> None:
    alarms_file = tmp_path / "alarms.yaml"
    alarms_file.write_text(f"alarms:\n  - name: {ALARM}\n    query: {METRIC}\n")
    operator.restart(
        extra_args=(
            "--prometheus-url",
            prometheus.url,
            "--alarms-file",
            str(alarms_file),
            "--alarm-interval",
            "1",
            "--alarm-bake",
            str(bake),
        )
    )


def newest_record(services: Services) -> Body:
    records: list[Body] = services.status(SERVICE).get("serviceDeployments") or [{}]
    return records[0]


def deploy_second_revision_with_alarms(services: Services) -> Body:
    """web:1 running (its deployment SUCCESSFUL), then web:2 with the alarm; the first record."""
    services.ecs.create_task_definition(FAMILY)
    services.ecs.wait_accepted(FAMILY)
    services.create(SERVICE, f"{FAMILY}:1", desiredCount=DESIRED)
    services.wait_steady(SERVICE, DESIRED, f"{FAMILY}:1", CONVERGE)
    first = services.wait(
        lambda: (r := newest_record(services)).get("status") == "SUCCESSFUL" and r,
        "the first deployment SUCCESSFUL",
        SERVICE,
    )
    second = container("app", environment=[{"name": "V", "value": "2"}])
    services.update_task_definition(FAMILY, {"containerDefinitions": [second]})
    services.update(SERVICE, taskDefinition=f"{FAMILY}:2", deploymentConfiguration=ALARMS)
    result: Body = first
    return result


def all_running(services: Services, revision: str) -> bool:
    live = services.live(SERVICE)
    return len(live) == DESIRED and all(
        revision_of(t) == revision and task_status(t).get("lastStatus") == "RUNNING" for t in live
    )


def test_an_alarm_in_alarm_fails_the_deployment_and_rolls_back(
    ecs: Ecs,
    default_operator: OperatorProcess,
    prometheus: PrometheusServer,
    metric: ControlledMetric,
    tmp_path: Path,
) -> None:
    # A long bake: the deployment stays IN_PROGRESS (watched) after web:2 is fully up.
    start_operator(default_operator, prometheus, tmp_path, bake=600)
    services = Services(ecs)
    first = deploy_second_revision_with_alarms(services)
    services.wait(
        lambda: (
            all_running(services, f"{FAMILY}:2")
            and newest_record(services).get("alarms", {}).get("status") == "MONITORING"
        ),
        "web:2 fully up, its deployment watched by the alarm",
        SERVICE,
        CONVERGE,
    )
    failed_id = services.primary(SERVICE)["id"]
    assert services.primary(SERVICE)["rolloutState"] == "IN_PROGRESS"  # baking

    metric.set(1)  # the new revision "misbehaves"
    record = services.wait(
        lambda: (r := newest_record(services)).get("status") == "ROLLBACK_SUCCESSFUL" and r,
        "the deployment failed by the alarm and rolled back",
        SERVICE,
        CONVERGE,
    )
    assert record["alarms"] == {
        "alarmNames": [ALARM],
        "status": "TRIGGERED",
        "triggeredAlarmNames": [ALARM],
    }
    assert record["rollback"]["reason"] == "ECS deployment detected triggered alarm(s)."
    assert record["rollback"]["serviceRevisionArn"] == first["targetServiceRevision"]["arn"]
    assert record["statusReason"] == (
        "Service deployment rolled back because one or more alarms went into the ALARM state."
    )
    # The previous revision's tasks serve again; nothing of web:2 is left.
    services.wait(
        lambda: all_running(services, f"{FAMILY}:1"), "web:1 running again", SERVICE, CONVERGE
    )
    messages = services.messages(SERVICE)
    assert (
        f"(service {SERVICE}) (deployment {failed_id}) deployment failed: alarm detected. "
        f"In ALARM: {ALARM}." in messages
    )
    status = services.status(SERVICE)
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"
    assert degraded["message"].startswith("ECS deployment detected triggered alarm(s).")


def test_a_quiet_alarm_lets_the_deployment_complete_after_the_bake_time(
    ecs: Ecs,
    default_operator: OperatorProcess,
    prometheus: PrometheusServer,
    tmp_path: Path,
) -> None:
    start_operator(default_operator, prometheus, tmp_path, bake=3)
    services = Services(ecs)
    deploy_second_revision_with_alarms(services)
    record = services.wait(
        lambda: (
            (r := newest_record(services)).get("status") == "SUCCESSFUL"
            and r.get("alarms", {}).get("alarmNames")
            and r
        ),
        "the watched deployment SUCCESSFUL",
        SERVICE,
        CONVERGE,
    )
    assert record["alarms"] == {"alarmNames": [ALARM], "status": "MONITORING_COMPLETE"}
    assert all_running(services, f"{FAMILY}:2")
    primary = services.primary(SERVICE)
    assert primary["rolloutState"] == "COMPLETED"
    assert primary["alarmsArmed"] == [ALARM]
    # Completed no sooner than the bake time after the steady state it baked from.
    assert record["finishedAt"] >= primary["alarmBakeStartedAt"]
