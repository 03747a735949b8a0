"""Revisions whose tasks cannot start: the circuit breaker and the launch back-off."""

from __future__ import annotations

from ecs_api import Ecs, container, shell
from service_support import Services, task_status, revision_of

CRASHING = container("app", command=shell("exit 1"))


def test_circuit_breaker_rolls_back(ecs: Ecs) -> None:
    services = Services(ecs)
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    breaker = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    services.create("web", "web", desiredCount=2, deploymentConfiguration=breaker)
    services.wait_steady("web", 2, "web:1")
    first = services.primary("web")["id"]
    services.update_task_definition("web", {"containerDefinitions": [CRASHING]})
    services.wait(lambda: any(d.get("rolloutState") == "FAILED" for d in services.status("web")["deployments"]), "FAILED", "web", timeout=30)
    print(services.status("web")["deployments"])
    for t in services.tasks("web"):
        print(t["metadata"]["name"], revision_of(t), task_status(t).get("lastStatus"), task_status(t).get("startedAt"), task_status(t).get("stopCode"))
    print(services.messages("web"))
