"""R2: with the sandbox's realistic fault mix (5 % of API requests failing with 500, 503 or 429,
every watch dropped every few seconds, one resume in five answered 410 Expired so the operator
relists), a Service of 10 converges, scales in to 4, rolls out a new revision, never runs a
duplicate (checked at every Task
event, and at every relist of the test's own watch after a 410), and its status ends right.
The faults are switched off afterwards whatever happens. On the real control plane they are
injected by the fault proxy the operator reaches the API server through."""

from __future__ import annotations

import re

from ecs_sandbox.server import Faults
from support.api_faults import ApiFaults
from support.ecs_api import Ecs, condition, container, task_definition
from support.services import (
    Services,
    TaskWatch,
    bounds_check,
    deployment_configuration,
    describe_tasks,
    is_stopped,
    revision_of,
    task_status,
)

FAULTS = Faults.realistic(error_rate=0.05, seed=7).to_dict()
# core/events.py's service_tasks_stopped with a zone.
REBALANCING_STOP = re.compile(r"has stopped (\d+) running tasks in \S+ due to AZ rebalancing")


def test_service_converges_through_api_faults(ecs: Ecs, api_faults: ApiFaults) -> None:
    api_faults.update(FAULTS)
    services = Services(ecs)
    desired = 10
    services.create_body(task_definition("web"))
    configuration = deployment_configuration(50, 100)
    check = bounds_check("web", lambda: desired, 50, 100, serving_floor=False)
    with TaskWatch(services, check, relist_on_expiry=True) as watch:
        services.create("web", "web", desiredCount=desired, deploymentConfiguration=configuration)
        services.wait_steady("web", desired, "web:1", timeout=40)
        services.update("web", desiredCount=4)
        services.wait_steady("web", 4, "web:1", timeout=40)
        desired = 4
        second = [container("app", environment=[{"name": "V", "value": "2"}])]
        services.update_task_definition("web", {"containerDefinitions": second})
        status = services.wait_steady("web", 4, "web:2", timeout=60)
    watch.assert_clean()
    tasks = services.tasks("web")
    # A loaded machine can miss a kwok node's heartbeat past the node grace period: the node goes
    # NotReady and its tasks are replaced, as ECS replaces the tasks of a lost instance. Each such
    # stop (TerminationNotice) allows one task more; any other extra task was launched twice.
    lost = [t for t in tasks if task_status(t).get("stopCode") == "TerminationNotice"]
    # The new tasks are spread counting the old ones still running (as ECS's spread counts
    # every task of the service), so the deployment may end 2/2/0; AZ rebalancing then starts
    # a task in the empty zone and stops one in a full zone, and says so in an event.
    messages = services.messages("web")
    moved = rebalanced(messages)
    extra = len(lost) + moved
    told = describe_tasks(tasks) + "\nservice events, newest first:\n" + "\n".join(messages)
    assert len(tasks) == 14 + extra, "a task was launched twice:\n" + told
    second_extra = sum(revision_of(t) == "web:2" for t in lost) + moved
    assert sum(revision_of(t) == "web:2" for t in tasks) == 4 + second_extra, told
    assert (status["runningCount"], status["pendingCount"], status["desiredCount"]) == (4, 0, 4)
    # The status catches up with the end of the deployment (a lost write is written again), and
    # the six tasks scaled in and the four replaced (and any lost with their node) end STOPPED.
    services.wait(
        lambda: (
            condition(services.status("web"), "Ready").get("status") == "True"
            and services.messages("web")[0] == "(service web) has reached a steady state."
            and sum(is_stopped(t) for t in services.tasks("web")) == 10 + extra
        ),
        "Ready and steady",
        "web",
    )


def rebalanced(messages: list[str]) -> int:
    """How many tasks AZ rebalancing stopped (each after a launch in the emptiest zone)."""
    stops = (REBALANCING_STOP.search(message) for message in messages)
    return sum(int(stop.group(1)) for stop in stops if stop)
