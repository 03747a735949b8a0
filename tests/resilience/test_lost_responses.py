"""Creates whose response is lost after the API committed them (`api_faults`: on the real
control plane, its fault proxy): half of the Task and Pod creates in the test's namespace are
answered 500 although the object exists, and so are half of the retries' 409s. A scale-out
and a rolling deployment with maximumPercent 150 still launch every task exactly once, and the
cap holds at every Task watch event."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from ecs_sandbox.runtime import SandboxThread
from support.api_faults import ApiFaults
from support.ecs_api import Ecs, container, task_definition
from support.services import (
    Services,
    TaskWatch,
    bounds_check,
    deployment_configuration,
    describe_tasks,
    is_live,
    task_status,
)

LOSS = 0.5
STUBBORN = 3  # the first tasks and pods created ...
STUBBORN_ATTEMPTS = 8  # ... lose every answer this many times (the client tries 6 times)


@pytest.fixture
def lost_create_responses(api_faults: ApiFaults, ecs: Ecs) -> Iterator[list[str]]:
    """Creates of tasks and pods in the test's namespace are carried out, then answered 500
    with probability LOSS (a 409 for a name already taken too). The first STUBBORN tasks lose
    every answer for their first STUBBORN_ATTEMPTS attempts, more than the client retries: the
    operator sees a create of unknown outcome. Yields the log of lost responses."""
    rng = random.Random(20261206)
    lost: list[str] = []
    attempts: Counter[str] = Counter()

    def lose(resource: str, namespace: str | None, status: int, name: str) -> bool:
        if namespace != ecs.namespace or resource not in ("tasks", "pods"):
            return False
        what = f"{resource}/{name}"
        attempts[what] += 1
        stubborn = what in list(attempts)[:STUBBORN] and attempts[what] <= STUBBORN_ATTEMPTS
        if stubborn or rng.random() < LOSS:
            lost.append(f"{status} {what}")
            return True
        return False

    with api_faults.lose_create_answers(lose):
        yield lost


def test_lost_create_responses_never_duplicate_a_task_nor_pass_maximum_percent(
    ecs: Ecs, lost_create_responses: list[str]
) -> None:
    services = Services(ecs)
    desired = 20
    services.create_body(task_definition("web"))
    ecs.wait_accepted("web")
    cap = bounds_check("web", lambda: desired, 100, 150, serving_floor=False)
    peak = 0

    def check(tasks: dict[str, Any]) -> str | None:
        nonlocal peak
        peak = max(peak, sum(is_live(t) for t in tasks.values()))
        return cap(tasks)

    with TaskWatch(services, check) as watch:
        services.create(
            "web",
            "web",
            desiredCount=desired,
            deploymentConfiguration=deployment_configuration(100, 150),
        )
        services.wait_steady("web", desired, "web:1", timeout=60)
        first = services.tasks("web")
        launched_first = len(first)  # read before the deployment adds 20 more
        services.update_task_definition(
            "web", {"family": "web", "containerDefinitions": [container(cpu=1)]}
        )
        services.wait_steady("web", desired, "web:2", timeout=90)
    watch.assert_clean()
    # Exactly `desired` launched: none twice, none failed (every Task RUNNING).
    assert launched_first == desired, describe_tasks(first)
    assert all(task_status(t).get("lastStatus") == "RUNNING" for t in first), describe_tasks(first)
    tasks = services.tasks("web")
    assert len(tasks) == 2 * desired, describe_tasks(tasks)
    # Each running task runs on its own Pod (a Pod create answered 500 was adopted, not lost).
    for task in services.live("web"):
        pod = ecs.pod(task["metadata"]["name"])
        assert pod is not None
        owners = [ref["uid"] for ref in pod["metadata"]["ownerReferences"]]
        assert owners == [task["metadata"]["uid"]]
    lost = Counter(r.split("/")[0] for r in lost_create_responses)
    print(f"lost responses {dict(lost)}; live tasks at most {peak} (cap 30)")  # shown with -s
    assert lost["201 tasks"] >= 5 and lost["409 tasks"] and lost["409 pods"], lost
    # Some creates lost the answer to every one of the client's 6 attempts: of unknown outcome
    # to the operator, they were settled by reading them back.
    assert max(Counter(r.split(" ")[1] for r in lost_create_responses).values()) >= 6, lost


@pytest.fixture
def pod_name_squatted(sandbox_thread: SandboxThread, ecs: Ecs) -> Iterator[None]:
    """Just before the operator's first Pod create in the test's namespace (Task `victim`'s)
    is carried out, someone else's Pod takes that name (a race no cache can see), so the
    create meets a 409."""
    sandbox = sandbox_thread.sandbox
    assert sandbox is not None
    api = sandbox.api
    original = api._dispatch
    squatted: list[str] = []

    async def dispatch(request: Any, target: Any, verb: str) -> Any:
        creates_pod = verb == "create" and target.resource == "pods"
        if creates_pod and target.namespace == ecs.namespace and not squatted:
            squatter = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "victim"}}
            squatter["spec"] = {"containers": [container("squatter")]}
            api.store.create(target.rt, target.namespace, squatter)
            squatted.append("victim")
        return await original(request, target, verb)

    sandbox_thread.call(setattr, api, "_dispatch", dispatch)
    try:
        yield
    finally:
        sandbox_thread.call(delattr, api, "_dispatch")


def test_a_pod_create_conflicting_with_someone_elses_pod_fails_the_task(
    ecs: Ecs, pod_name_squatted: None
) -> None:
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    ecs.create_task("victim", "web")
    status = ecs.wait_stopped("victim")
    assert status["stopCode"] == "TaskFailedToStart"
    assert status["stoppedReason"] == (
        "TaskFailedToStart: a Pod named victim exists and is not this task's"
    )
    # The other Pod is left alone: not adopted, not deleted.
    pod = ecs.pod("victim")
    assert pod is not None and not pod["metadata"].get("ownerReferences")
