"""An operator start LISTs each watched kind once (once per watched namespace for namespaced
kinds): the caches are filled from Kopf's own listing, not from LISTs of the operator's
(issue #10, item 4)."""

from __future__ import annotations

from collections import Counter

from ecs_sandbox.runtime import SandboxThread
from support.ecs_api import PROBE_NAMESPACE, Ecs, OperatorProcess

# Services are counted apart: ECS Services and Kubernetes Services share the plural, which is
# all the sandbox counts by.
NAMESPACED = ("taskdefinitions", "controllerrevisions", "tasks", "pods", "loadbalancers")
NAMESPACED_CORE = ("endpointslices",)
CLUSTER_SCOPED = ("nodes", "namespaces")


def lists(sandbox_thread: SandboxThread) -> Counter[str]:
    """LIST requests served so far, per resource plural."""
    counts = sandbox_thread.call(lambda: dict(sandbox_thread.sandbox.counters.counts))
    return Counter({resource: n for (verb, resource), n in counts.items() if verb == "list"})


def lists_of_a_start(
    ecs: Ecs, operator: OperatorProcess, sandbox_thread: SandboxThread, *flags: str
) -> Counter[str]:
    ecs.create_task_definition("web")
    ecs.create_task("listed", "web")
    ecs.wait_last_status("listed", "RUNNING")
    operator.kill()
    before = lists(sandbox_thread)
    operator.start(extra_args=flags)  # returns once its controllers have handled a probe
    # A Task that runs now was seen by the watches of Tasks and Pods: every stream has listed
    # (and whatever a listing sets off has had its moment).
    ecs.create_task("marker", "web")
    ecs.wait_last_status("marker", "RUNNING")
    return lists(sandbox_thread) - before


def test_an_operator_start_lists_each_watched_kind_once(
    ecs: Ecs, default_operator: OperatorProcess, sandbox_thread: SandboxThread
) -> None:
    made = lists_of_a_start(ecs, default_operator, sandbox_thread)
    expected = Counter(dict.fromkeys(NAMESPACED + NAMESPACED_CORE + CLUSTER_SCOPED, 1))
    expected["services"] = 2  # one per kind
    expected["customresourcedefinitions"] = 1  # Kopf's discovery of CRDs, not a cache
    assert made == expected


def test_a_namespaced_operator_lists_namespaced_kinds_once_per_namespace(
    ecs: Ecs, default_operator: OperatorProcess, sandbox_thread: SandboxThread
) -> None:
    flags = ("--namespace", ecs.namespace, "--namespace", PROBE_NAMESPACE)
    made = lists_of_a_start(ecs, default_operator, sandbox_thread, *flags)
    expected = Counter(dict.fromkeys(NAMESPACED + NAMESPACED_CORE, 2))
    expected["services"] = 4
    expected["nodes"] = 1
    # Kopf's namespace observer lists them twice more: once on its own, once for its stream.
    expected["namespaces"] = 3
    expected["customresourcedefinitions"] = 1
    assert made == expected
