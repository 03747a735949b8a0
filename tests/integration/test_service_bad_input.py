"""Bad Service specs (target R6): each is refused at admission with the field named in kubectl's
stderr, or admitted and then reported by the operator (Degraded condition naming the problem,
an event, no task). Afterwards the operator is alive and its log has no traceback storm."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from support.ecs_api import Body, Ecs, KubectlRunner, OperatorProcess
from support.services import Services, degraded, service

MAX_TRACEBACKS = 5
LB = {"loadBalancerName": "front", "containerName": "app", "containerPort": 80}


@dataclass(frozen=True)
class Case:
    """`rejected`: kubectl apply fails and every text is in its stderr. `refused`: admitted,
    then the Degraded condition has this reason and every text is in its message."""

    spec: Body
    texts: tuple[str, ...]
    refused: str | None = None


def svc(**spec: Any) -> Body:
    return {"taskDefinition": "good", "desiredCount": 1, **spec}


def daemon(**spec: Any) -> Body:
    return {"taskDefinition": "good", "schedulingStrategy": "DAEMON", **spec}


def dc(**fields: Any) -> Body:
    return {"deploymentConfiguration": fields}


PAUSE = {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}
LAMBDA = {"targetType": "AWS_LAMBDA", "lifecycleStages": ["POST_SCALE_UP"]}

CASES: dict[str, Case] = {
    "DAEMON with desiredCount": Case(daemon(desiredCount=2), ("desiredCount",)),
    "DAEMON with placementStrategy": Case(
        daemon(placementStrategy=[{"type": "random"}]), ("placementStrategy",)
    ),
    "DAEMON with maximumPercent 200": Case(daemon(**dc(maximumPercent=200)), ("maximumPercent",)),
    "REPLICA without desiredCount": Case({"taskDefinition": "good"}, ("desiredCount",)),
    "no taskDefinition": Case({"desiredCount": 1}, ("taskDefinition",)),
    "malformed taskDefinition": Case(svc(taskDefinition="web:latest"), ("taskDefinition",)),
    "maximumPercent below 100": Case(svc(**dc(maximumPercent=99)), ("maximumPercent",)),
    "minimumHealthyPercent above 100": Case(
        svc(**dc(minimumHealthyPercent=150, maximumPercent=120)), ("minimumHealthyPercent",)
    ),
    "negative minimumHealthyPercent": Case(
        svc(**dc(minimumHealthyPercent=-1)), ("minimumHealthyPercent",)
    ),
    "circuit breaker without rollback": Case(
        svc(**dc(deploymentCircuitBreaker={"enable": True})), ("rollback",)
    ),
    "negative desiredCount": Case(svc(desiredCount=-1), ("desiredCount",)),
    "desiredCount above 5000": Case(svc(desiredCount=5001), ("desiredCount",)),
    "unknown schedulingStrategy": Case(svc(schedulingStrategy="BATCH"), ("schedulingStrategy",)),
    "unknown placementStrategy type": Case(
        svc(placementStrategy=[{"type": "fill", "field": "memory"}]), ("placementStrategy",)
    ),
    "binpack on a bad field": Case(
        svc(placementStrategy=[{"type": "binpack", "field": "disk"}]),
        ("placementStrategy", "binpack"),
    ),
    "spread without a field": Case(
        svc(placementStrategy=[{"type": "spread"}]), ("placementStrategy", "spread")
    ),
    "random with a field": Case(
        svc(placementStrategy=[{"type": "random", "field": "cpu"}]), ("placementStrategy",)
    ),
    "six placement strategies": Case(
        svc(placementStrategy=[{"type": "random"}] * 6), ("placementStrategy",)
    ),
    "memberOf without expression": Case(
        svc(placementConstraints=[{"type": "memberOf"}]), ("placementConstraints", "expression")
    ),
    "distinctInstance with expression": Case(
        svc(placementConstraints=[{"type": "distinctInstance", "expression": "a == b"}]),
        ("placementConstraints", "expression"),
    ),
    "loadBalancer without containerName": Case(
        svc(loadBalancers=[{"loadBalancerName": "front", "containerPort": 80}]),
        ("containerName",),
    ),
    "duplicate loadBalancers": Case(svc(loadBalancers=[LB, LB]), ("loadBalancers",)),
    "loadBalancer port out of range": Case(
        svc(loadBalancers=[{**LB, "containerPort": 70000}]), ("containerPort",)
    ),
    "negative healthCheckGracePeriodSeconds": Case(
        svc(healthCheckGracePeriodSeconds=-5), ("healthCheckGracePeriodSeconds",)
    ),
    "unknown availabilityZoneRebalancing": Case(
        svc(availabilityZoneRebalancing="SOMETIMES"), ("availabilityZoneRebalancing",)
    ),
    "unknown field": Case(svc(desiredCont=3), ("desiredCont",)),
    "PAUSE hook at PRODUCTION_TRAFFIC_SHIFT": Case(
        svc(**dc(lifecycleHooks=[PAUSE | {"lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"]}])),
        ("lifecycleHooks[0].lifecycleStages", "not allowed at TEST_TRAFFIC_SHIFT"),
    ),
    "eleven PAUSE hooks": Case(
        svc(**dc(lifecycleHooks=[PAUSE] * 11)), ("lifecycleHooks", "at most 10 PAUSE hooks")
    ),
    "PAUSE timeout beyond 14 days": Case(
        svc(**dc(lifecycleHooks=[PAUSE | {"timeoutConfiguration": {"timeoutInMinutes": 20161}}])),
        ("timeoutInMinutes",),
    ),
    "AWS_LAMBDA hook naming a Lambda function": Case(
        svc(
            **dc(
                lifecycleHooks=[LAMBDA | {"hookTargetArn": "arn:aws:lambda:us-east-1:1:function:f"}]
            )
        ),
        ("lifecycleHooks[].hookTargetArn", "there is no Lambda on Kubernetes"),
    ),
    "AWS_LAMBDA hook URL with a space": Case(
        svc(**dc(lifecycleHooks=[LAMBDA | {"hookTargetArn": "http://hooks /verify"}])),
        ("lifecycleHooks[].hookTargetArn",),
    ),
    "continueServiceDeployment naming no hook id": Case(
        svc(continueServiceDeployment={"hookId": "deployment-1", "action": "CONTINUE"}),
        ("continueServiceDeployment.hookId",),
    ),
    "malformed memberOf expression": Case(
        svc(placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.zone ~~ a"}]),
        ("placementConstraints[0].expression", "attribute:ecs.zone ~~ a"),
        refused="InvalidPlacementConstraint",
    ),
    "unknown task definition": Case(
        svc(taskDefinition="nosuch"), ("nosuch",), refused="TaskDefinitionUnavailable"
    ),
    "missing revision": Case(
        svc(taskDefinition="good:99"), ("good:99",), refused="TaskDefinitionUnavailable"
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_service_is_refused_clearly(ecs: Ecs, kubectl: KubectlRunner, case: Case) -> None:
    services = Services(ecs)
    ecs.create_task_definition("good")
    ecs.wait_accepted("good")
    body = service("bad", "good")
    body["spec"] = case.spec
    applied = kubectl("apply", "-n", ecs.namespace, "-f", "-", input=json.dumps(body))
    if case.refused is None:
        assert applied.returncode != 0, f"admitted: {applied.stdout}"
        for text in case.texts:
            assert text in applied.stderr, applied.stderr
        return
    assert applied.returncode == 0, applied.stderr
    status = services.wait(
        lambda: (s := services.status("bad")) and degraded(s).get("status") == "True" and s,
        "Degraded",
        "bad",
    )
    assert degraded(status)["reason"] == case.refused
    for text in case.texts:
        assert text in degraded(status)["message"], degraded(status)
    services.wait(
        lambda: any(
            all(text in e.get("message", "") for text in case.texts)
            for e in services.kube_events("bad")
        ),
        "an event naming the problem",
        "bad",
    )
    assert not services.tasks("bad")


def test_operator_survives_the_service_corpus(default_operator: OperatorProcess) -> None:
    """Runs after the corpus (file order): alive, and no traceback loop in its log."""
    assert default_operator.alive
    tracebacks = default_operator.log().count("Traceback")
    assert tracebacks <= MAX_TRACEBACKS, default_operator.tail()
