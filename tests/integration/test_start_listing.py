"""An operator start LISTs each watched kind once: the caches are filled from Kopf's own
listing, not from a second LIST of the operator's (issue #10, item 4)."""

from __future__ import annotations

from collections import Counter

from ecs_api import Ecs, OperatorProcess

from ecs_sandbox.runtime import SandboxThread

WATCHED = (
    "taskdefinitions",
    "controllerrevisions",
    "tasks",
    "pods",
    "loadbalancers",
    "endpointslices",
    "nodes",
    "namespaces",
)


def lists(sandbox_thread: SandboxThread) -> Counter[str]:
    """LIST requests served so far, per resource plural (the sandbox counts by plural alone)."""
    counts = sandbox_thread.call(lambda: dict(sandbox_thread.sandbox.counters.counts))
    return Counter({resource: n for (verb, resource), n in counts.items() if verb == "list"})


def test_an_operator_start_lists_each_watched_kind_once(
    ecs: Ecs, default_operator: OperatorProcess, sandbox_thread: SandboxThread
) -> None:
    ecs.create_task_definition("web")
    ecs.create_task("listed", "web")
    ecs.wait_last_status("listed", "RUNNING")
    default_operator.kill()
    before = lists(sandbox_thread)

    default_operator.start()  # returns once its controllers have handled a fresh probe
    # A Task that runs now was seen by the watches of Tasks and Pods: every stream has listed
    # (and whatever a listing sets off has had its moment).
    ecs.create_task("marker", "web")
    ecs.wait_last_status("marker", "RUNNING")
    made = lists(sandbox_thread) - before
    expected = Counter({plural: 1 for plural in WATCHED})
    # ECS Services and Kubernetes Services: two kinds that share the plural the sandbox counts.
    expected["services"] = 2
    expected["customresourcedefinitions"] = 1  # Kopf's discovery of CRDs, not a cache
    assert made == expected
