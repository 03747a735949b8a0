"""A Task with RunTask's `count` at the Task controller's surface, against the in-memory API of
`support.fake_kube`: the first Task creates the others once, a restarted operator creates only
those missing, a name held by another object is reported and never adopted, and a recorded run
never creates a task again."""

from __future__ import annotations

from typing import Any

from ecs_operator.core import events, labels
from ecs_operator.kube.client import EVENTS, TASKS
from support.controllers import NAMESPACE, Operator, cluster, task

FIRST = (NAMESPACE, "batch")


def first_task(count: int) -> dict[str, Any]:
    body = task("batch")
    body["spec"] |= {"count": count, "startedBy": "nightly"}
    return body


def creates(operator: Operator, since: int = 0) -> list[str]:
    """The Tasks the operator created since request `since`."""
    return [
        str(r.name or r.body["metadata"]["name"])
        for r in operator.kube.written()[since:]
        if (r.verb, r.plural) == ("create", "tasks")
    ]


async def converged_run(count: int) -> Operator:
    kube = cluster()
    kube.seed(TASKS, first_task(count))
    operator = Operator(kube)
    await operator.converge()
    return operator


async def test_the_first_task_creates_the_others_once_and_records_the_run() -> None:
    operator = await converged_run(3)
    kube = operator.kube
    assert creates(operator) == ["batch-2", "batch-3"]
    first = kube.stored(TASKS, *FIRST)
    assert first["status"]["launchedCount"] == 3
    assert first["metadata"]["labels"][labels.RUN_LABEL] == "batch"
    assert "count" in first["spec"]  # the user's spec is never written
    for name in ("batch-2", "batch-3"):
        member = kube.stored(TASKS, NAMESPACE, name)
        assert member["spec"] == {"taskDefinition": "web:1", "startedBy": "nightly"}
        assert member["metadata"]["labels"][labels.RUN_LABEL] == "batch"
        [owner] = member["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "Task",
            "batch",
            first["metadata"]["uid"],
        )
        assert member["status"]["lastStatus"] == "RUNNING"  # each an ordinary task
        assert "launchedCount" not in member["status"]
    launched = [e for e in kube.all_stored(EVENTS) if e["reason"] == events.REASON_TASKS_LAUNCHED]
    assert [e["message"] for e in launched] == ["launched 3 of 3 tasks: batch, batch-2, batch-3"]


async def test_a_restart_after_a_partial_creation_creates_only_the_missing_task() -> None:
    """The operator stopped after creating batch-2 and before batch-3 (so before recording
    the run): restarted, it creates batch-3 only, then records the run."""
    operator = await converged_run(3)
    kube = operator.kube
    kube.remove(TASKS, NAMESPACE, "batch-3")
    first = kube.stored(TASKS, *FIRST)
    del first["status"]["launchedCount"]
    first["status"]["conditions"] = [
        c for c in first["status"]["conditions"] if c["type"] != "TasksLaunched"
    ]
    kube.put(TASKS, first)
    restarted = Operator(kube)
    before = len(kube.written())
    await restarted.converge()
    assert creates(restarted, before) == ["batch-3"]
    assert kube.stored(TASKS, *FIRST)["status"]["launchedCount"] == 3


async def test_a_create_answered_409_for_our_own_task_counts_it_as_created() -> None:
    """The cache does not show batch-2 yet (a lost response, a lagging watch): the create is
    refused as AlreadyExists and the Task found is ours, this very task of the run."""
    operator = await converged_run(2)
    kube = operator.kube
    first = kube.stored(TASKS, *FIRST)
    del first["status"]["launchedCount"]
    kube.put(TASKS, first)
    member = kube.stored(TASKS, NAMESPACE, "batch-2")
    kube.remove(TASKS, NAMESPACE, "batch-2")
    restarted = Operator(kube)
    del member["metadata"]["resourceVersion"]
    kube.seed(TASKS, member)  # created before the restart; the watch has not shown it
    before = len(kube.written())
    await restarted.tasks.reconcile(FIRST)
    await restarted.tasks.reconcile(FIRST)
    assert creates(restarted, before) == ["batch-2"]  # refused: it exists
    assert kube.stored(TASKS, *FIRST)["status"]["launchedCount"] == 2
    assert kube.stored(TASKS, NAMESPACE, "batch-2")["metadata"]["uid"] == member["metadata"]["uid"]


async def test_a_name_held_by_a_task_that_is_not_the_run_s_is_reported_never_adopted() -> None:
    kube = cluster()
    kube.seed(TASKS, first_task(3))
    mine = kube.seed(TASKS, task("batch-2"))  # a user's own Task of that name
    operator = Operator(kube)
    await operator.converge()
    assert creates(operator) == ["batch-3"]
    held = kube.stored(TASKS, NAMESPACE, "batch-2")
    assert held["metadata"]["uid"] == mine["metadata"]["uid"]
    assert "ownerReferences" not in held["metadata"] and "labels" not in held["metadata"]
    status = kube.stored(TASKS, *FIRST)["status"]
    assert status["launchedCount"] == 2
    [condition] = [c for c in status["conditions"] if c["type"] == "TasksLaunched"]
    taken = events.run_task_name_taken("batch-2", "it has no owner")
    assert (condition["status"], condition["reason"]) == ("False", "NameTaken")
    assert taken in condition["message"]
    warnings = [e for e in kube.all_stored(EVENTS) if e["reason"] == events.REASON_TASK_NAME_TAKEN]
    assert [e["message"] for e in warnings] == [taken]


async def test_a_task_of_a_recorded_run_deleted_by_a_user_is_not_created_again() -> None:
    operator = await converged_run(3)
    kube = operator.kube
    kube.remove(TASKS, NAMESPACE, "batch-2")
    operator.catch_up()
    before = len(kube.written())
    await operator.tasks.reconcile(FIRST)
    assert creates(operator, before) == []
    assert kube.written()[before:] == []


async def test_a_task_stopped_before_its_run_was_launched_launches_none() -> None:
    kube = cluster()
    stopped = first_task(3)
    stopped["spec"]["desiredStatus"] = "STOPPED"
    kube.seed(TASKS, stopped)
    operator = Operator(kube)
    await operator.converge()
    assert creates(operator) == []
    assert kube.stored(TASKS, *FIRST)["status"]["lastStatus"] == "STOPPED"
