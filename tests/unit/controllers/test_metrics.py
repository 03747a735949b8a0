"""Metrics are read from the watch caches at scrape time."""

from typing import Any

from prometheus_client import generate_latest

from ecs_operator.controllers.context import OperatorContext, OperatorOptions
from ecs_operator.controllers.metrics import OperatorMetrics


def body(name: str, status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": name}, "status": status}


def test_scrape_reports_tasks_services_deployments_and_targets() -> None:
    context = OperatorContext(OperatorOptions(), kube=None)  # type: ignore[arg-type]
    context.tasks.record("ADDED", body("t1", {"lastStatus": "RUNNING"}))
    context.tasks.record("ADDED", body("t2", {"lastStatus": "RUNNING"}))
    context.services.record(
        "ADDED",
        body(
            "web",
            {
                "desiredCount": 3,
                "runningCount": 2,
                "pendingCount": 1,
                "deployments": [{"rolloutState": "IN_PROGRESS"}, {"rolloutState": "COMPLETED"}],
                "serviceDeployments": [
                    {"status": "IN_PROGRESS", "deploymentConfiguration": {"strategy": "CANARY"}},
                    {
                        "status": "ROLLBACK_SUCCESSFUL",
                        "deploymentConfiguration": {"strategy": "CANARY"},
                    },
                    {"status": "SUCCESSFUL", "deploymentConfiguration": {"strategy": "ROLLING"}},
                    {"status": "SUCCESSFUL", "deploymentConfiguration": {"strategy": "ROLLING"}},
                ],
            },
        ),
    )
    context.load_balancers.record(
        "ADDED", body("lb", {"targets": [{"state": "healthy"}, {"state": "draining"}]})
    )
    metrics = OperatorMetrics(context)
    metrics.observe_reconcile("tasks", 0.01, True)
    text = generate_latest(metrics.registry).decode()
    assert 'ecs_operator_tasks{last_status="RUNNING",namespace="ns"} 2.0' in text
    assert 'ecs_operator_service_tasks{count="pending",namespace="ns",service="web"} 1.0' in text
    assert 'ecs_operator_deployments{rollout_state="IN_PROGRESS"} 1.0' in text
    for labels, count in (
        ('status="SUCCESSFUL",strategy="ROLLING"', 2),
        ('status="ROLLBACK_SUCCESSFUL",strategy="CANARY"', 1),
        ('status="IN_PROGRESS",strategy="CANARY"', 1),
    ):
        assert f"ecs_operator_service_deployments{{{labels}}} {count}.0" in text
    assert (
        'ecs_operator_load_balancer_targets{load_balancer="lb",namespace="ns",state="draining"} 1.0'
        in text
    )
    assert 'ecs_operator_reconcile_total{kind="tasks",result="ok"} 1.0' in text
