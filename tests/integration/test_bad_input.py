"""The bad-input corpus: every case is refused at admission naming the field, or ends in a clear
condition (Accepted=False, or STOPPED TaskFailedToStart) with a Warning event. Afterwards the
operator is still alive and its log shows no traceback loop."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from support.ecs_api import (
    RESOLVE_GRACE,
    Ecs,
    KubectlRunner,
    OperatorProcess,
    condition,
    container,
    task,
    task_definition,
)

Body = dict[str, Any]
MAX_TRACEBACKS = 5


@dataclass(frozen=True)
class Case:
    """`body` is applied with kubectl; `setup` objects are created first (must be valid).
    `rejected`: kubectl must fail and stderr contain it. `refused`: the TaskDefinition ends
    Accepted=False, or the Task STOPPED TaskFailedToStart, with this text in the message."""

    body: Body
    rejected: str | None = None
    refused: str | None = None
    setup: list[Body] = field(default_factory=list)


def td(*containers: Body, **spec: Any) -> Body:
    return task_definition("bad", *containers, **spec)


def c(**fields: Any) -> Body:
    return container(**fields)


def good() -> Body:
    return task_definition("good", container())


def tk(definition: str = "good", **spec: Any) -> Body:
    return task("bad-task", definition, **spec)


CDEF = "spec.containerDefinitions[0]"
CASES: dict[str, Case] = {
    "missing image": Case(td({"name": "app", "memory": 64}), rejected="image"),
    "no essential container": Case(td(c(essential=False)), rejected="essential"),
    "duplicate container names": Case(td(c(), c()), rejected="unique"),
    "more than 10 containers": Case(
        td(*(c(name=f"c{n}") for n in range(11))), rejected="spec.containerDefinitions"
    ),
    "dependsOn unknown container": Case(
        td(c(dependsOn=[{"containerName": "ghost", "condition": "START"}])),
        rejected="dependsOn[].containerName must name a container",
    ),
    "dependsOn cycle": Case(
        td(
            c(name="a", dependsOn=[{"containerName": "b", "condition": "START"}]),
            c(name="b", dependsOn=[{"containerName": "a", "condition": "START"}]),
        ),
        refused="cycle",
    ),
    "COMPLETE on an essential container": Case(
        td(c(name="a"), c(name="b", dependsOn=[{"containerName": "a", "condition": "COMPLETE"}])),
        rejected="cannot target an essential container",
    ),
    "HEALTHY without healthCheck": Case(
        td(c(name="a"), c(name="b", dependsOn=[{"containerName": "a", "condition": "HEALTHY"}])),
        rejected="must target a container with a healthCheck",
    ),
    "port 0": Case(td(c(portMappings=[{"containerPort": 0}])), rejected="containerPort"),
    "port 70000": Case(td(c(portMappings=[{"containerPort": 70000}])), rejected="containerPort"),
    "port as a word": Case(
        td(c(portMappings=[{"containerPort": "http"}])), rejected="containerPort"
    ),
    "duplicate containerPort": Case(
        td(c(portMappings=[{"containerPort": 80}, {"containerPort": 80}])),
        rejected="spec.containerDefinitions[0].portMappings",
    ),
    "hostPort differs in awsvpc": Case(
        td(c(portMappings=[{"containerPort": 80, "hostPort": 8080}]), networkMode="awsvpc"),
        rejected="portMappings[].hostPort",
    ),
    "privileged": Case(td(c(privileged=True)), refused=f"{CDEF}.privileged"),
    "hostPath volume": Case(
        td(c(), volumes=[{"name": "root", "host": {"sourcePath": "/"}}]),
        refused="spec.volumes[0].host.sourcePath",
    ),
    "added capabilities": Case(
        td(c(linuxParameters={"capabilities": {"add": ["SYS_ADMIN"]}})),
        refused=f"{CDEF}.linuxParameters.capabilities.add",
    ),
    "pidMode host": Case(td(c(), pidMode="host"), refused="spec.pidMode"),
    "negative cpu": Case(td(c(cpu=-1)), rejected="cpu"),
    "absurd memory": Case(td(c(memory=10**12)), rejected="memory"),
    "memoryReservation not below memory": Case(
        td(c(memory=64, memoryReservation=64)), rejected="memoryReservation"
    ),
    "mountPoint to unknown volume": Case(
        td(c(mountPoints=[{"sourceVolume": "nope", "containerPath": "/data"}])),
        rejected="mountPoints[].sourceVolume",
    ),
    "healthCheck interval out of range": Case(
        td(c(healthCheck={"command": ["CMD-SHELL", "true"], "interval": 1})),
        rejected="interval",
    ),
    "family differs from name": Case(
        {**td(c()), "spec": {**td(c())["spec"], "family": "other"}}, rejected="spec.family"
    ),
    "unknown task definition": Case(tk("nothing-here"), refused='"nothing-here" does not exist'),
    "revision that does not exist": Case(
        tk("good:99"), refused='"good:99" does not exist', setup=[good()]
    ),
    "malformed taskDefinition": Case(tk("web:latest"), rejected="taskDefinition"),
    "task with loadBalancers": Case(
        tk(loadBalancers=[{"containerName": "app", "containerPort": 80}]),
        rejected="loadBalancers",
    ),
    "invalid desiredStatus": Case(tk(desiredStatus="PAUSED"), rejected="desiredStatus"),
    "tag with aws: prefix": Case(tk(tags=[{"key": "aws:owner", "value": "me"}]), rejected="aws:"),
    "stoppedReason without STOPPED": Case(tk(stoppedReason="why"), rejected="stoppedReason"),
    "override of an unknown container": Case(
        tk(overrides={"containerOverrides": [{"name": "ghost", "command": ["true"]}]}),
        refused="ghost",
        setup=[good()],
    ),
    "secret reference that is not one": Case(
        td(c(secrets=[{"name": "TOKEN", "valueFrom": "a/b/c"}])), refused="valueFrom"
    ),
}


def refusal(ecs: Ecs, body: Body) -> Callable[[], str | None]:
    """The refusal message once the operator gave it, else None."""
    name = body["metadata"]["name"]
    if body["kind"] == "TaskDefinition":

        def check() -> str | None:
            status = (ecs.task_definition(name) or {}).get("status") or {}
            accepted = condition(status, "Accepted")
            return accepted.get("message") if accepted.get("status") == "False" else None

        return check

    def stopped() -> str | None:
        status = ecs.status(name)
        if status.get("lastStatus") != "STOPPED":
            return None
        assert status["stopCode"] == "TaskFailedToStart", status
        assert not ecs.pods_of(name)
        return str(status["stoppedReason"])

    return stopped


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_refused_clearly(ecs: Ecs, kubectl: KubectlRunner, case: Case) -> None:
    for body in case.setup:
        ecs.create(body)
        if body["kind"] == "TaskDefinition":
            ecs.wait_accepted(body["metadata"]["name"])
    applied = kubectl("apply", "-n", ecs.namespace, "-f", "-", input=json.dumps(case.body))
    if case.rejected is not None:
        assert applied.returncode != 0, f"admitted: {applied.stdout}"
        assert case.rejected in applied.stderr, applied.stderr
        return
    assert applied.returncode == 0, applied.stderr
    assert case.refused is not None
    timeout = RESOLVE_GRACE + 10
    name = case.body["metadata"]["name"]
    plural = "tasks" if case.body["kind"] == "Task" else "taskdefinitions"
    message = ecs.wait(
        refusal(ecs, case.body),
        "refused",
        lambda: (ecs.get(plural, name) or {}).get("status"),
        timeout,
    )
    assert case.refused in message, message
    ecs.wait(
        lambda: ecs.warning_reasons(name),
        "a Warning event",
        lambda: [e["reason"] for e in ecs.events(name)],
    )


def test_operator_survives_the_corpus(default_operator: OperatorProcess) -> None:
    """Runs after the corpus (file order): alive, and no traceback loop in its log."""
    assert default_operator.alive
    tracebacks = default_operator.log().count("Traceback")
    assert tracebacks <= MAX_TRACEBACKS, default_operator.tail()
