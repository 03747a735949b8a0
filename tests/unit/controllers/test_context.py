"""`OperatorContext`: a Service's tasks (owned by uid); `container_instances`: the nodes as
container instances, counting pods that have not terminated and the placed tasks whose Pod is
not there yet, a node's instance rebuilt only when it changed, task groups a namespace's own;
and `security_policy`: what a namespace allows, from its labels."""

from typing import Any, cast

from ecs_operator.controllers.context import NODE_INDEX, OperatorContext, OperatorOptions
from ecs_operator.core import labels
from ecs_operator.core.security import ENFORCE_LABEL, InstallPolicy, SecurityPolicy
from ecs_operator.kube.client import KubeClient


def node(name: str, rv: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": name, "resourceVersion": str(rv), "labels": {}},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def pod(name: str, node_name: str, rv: int, namespace: str = "ns") -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": f"pod-{name}",
            "resourceVersion": str(rv),
            "annotations": {labels.GROUP_ANNOTATION: "service:web"},
        },
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "app", "resources": {"requests": {"cpu": "1"}}}],
        },
        "status": {"phase": "Running"},
    }


def task(name: str, placed: str, rv: int, desired: str = "RUNNING") -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "uid": f"task-{name}",
            "resourceVersion": str(rv),
            "annotations": {labels.PLACED_NODE_ANNOTATION: placed},
        },
        "spec": {"group": "service:web", "desiredStatus": desired},
    }


def context() -> OperatorContext:
    found = OperatorContext(OperatorOptions(), cast(KubeClient, None))
    for name in ("n1", "n2"):
        found.nodes.record("ADDED", node(name))
    return found


def by_name(found: OperatorContext) -> dict[str, Any]:
    return {instance.name: instance for instance in found.container_instances("ns")}


def test_pods_and_podless_placed_tasks_are_counted_on_their_nodes() -> None:
    found = context()
    found.tasks.record("ADDED", task("a", "n1", 1))
    found.pods.record("ADDED", pod("a", "n1", 2))
    found.tasks.record("ADDED", task("b", "n2", 3))  # its Pod not created yet
    found.tasks.record("ADDED", task("c", "n2", 4, desired="STOPPED"))  # on its way out
    instances = by_name(found)
    assert instances["n1"].remaining_cpu_millicores == 3000
    assert instances["n1"].group_counts == {"service:web": 1}
    assert instances["n2"].group_counts == {"service:web": 1}
    assert instances["n2"].remaining_cpu_millicores == 4000


def test_a_task_stopping_on_its_own_is_not_counted_once_its_pod_is_gone() -> None:
    """Its essential container exited: status.desiredStatus is STOPPED while spec still says
    RUNNING, and its Pod, once gone, never comes back (its replacement must not avoid its
    zone)."""
    found = context()
    exited = task("a", "n1", 1)
    exited["status"] = {"desiredStatus": "STOPPED", "lastStatus": "DEPROVISIONING"}
    found.tasks.record("ADDED", exited)
    assert by_name(found)["n1"].group_counts == {}


def test_a_terminated_pod_stays_but_holds_nothing_of_its_node() -> None:
    """A stopped task keeps its Pod (for its logs) until the Task is deleted: once the Pod has
    terminated it is not counted (CPU, task groups), the node's instance is rebuilt at once,
    and the node index that placement reads no longer lists it."""
    found = context()
    found.tasks.record("ADDED", task("a", "n1", 1))
    found.pods.record("ADDED", pod("a", "n1", 2))
    assert by_name(found)["n1"].remaining_cpu_millicores == 3000
    for phase, rv in (("Failed", 3), ("Succeeded", 4)):
        ended = pod("a", "n1", rv)
        ended["status"] = {"phase": phase}
        found.pods.record("MODIFIED", ended)
        instance = by_name(found)["n1"]
        assert instance.remaining_cpu_millicores == 4000
        assert instance.group_counts == {} and instance.running_tasks_count == 0
        assert list(found.pods.indexed(NODE_INDEX, "n1")) == []
        assert found.pods.get(("ns", "a")) is not None  # still cached: the Pod is there


def test_only_a_changed_node_is_rebuilt() -> None:
    found = context()
    first = by_name(found)
    assert by_name(found) == first
    assert all(by_name(found)[name] is first[name] for name in first)
    found.pods.record("ADDED", pod("a", "n1", 5))
    second = by_name(found)
    assert second["n2"] is first["n2"]
    assert second["n1"].group_counts == {"service:web": 1}
    found.nodes.record("MODIFIED", {**node("n2", 6), "spec": {"unschedulable": True}})
    assert not by_name(found)["n2"].schedulable


def test_each_cluster_sees_its_own_groups_on_shared_nodes() -> None:
    found = context()
    found.pods.record("ADDED", pod("a", "n1", 2))
    found.pods.record("ADDED", pod("b", "n1", 3, namespace="other"))
    mine, theirs = found.container_instances("ns"), found.container_instances("other")
    assert [dict(i.group_counts) for i in mine] == [{"service:web": 1}, {}]
    assert [dict(i.group_counts) for i in theirs] == [{"service:web": 1}, {}]
    assert mine[0].remaining_cpu_millicores == theirs[0].remaining_cpu_millicores == 2000
    assert found.container_instances("ns")[0] is mine[0]  # views reused while unchanged


def test_a_task_whose_pod_appears_is_counted_once() -> None:
    found = context()
    found.tasks.record("ADDED", task("a", "n1", 1))
    assert by_name(found)["n1"].group_counts == {"service:web": 1}
    found.pods.record("ADDED", pod("a", "n1", 2))
    assert by_name(found)["n1"].group_counts == {"service:web": 1}
    assert by_name(found)["n1"].remaining_cpu_millicores == 3000


def test_the_security_policy_of_a_namespace_follows_its_labels() -> None:
    install = InstallPolicy(
        privileged_label=("ecs.operator.dev/allow-privileged", "true"),
        operator_service_account=("ops", "ecs-operator"),
    )
    found = OperatorContext(OperatorOptions(security=install), cast(KubeClient, None))
    assert found.security_policy("web") == SecurityPolicy()  # not seen yet: no labels
    namespace = {"metadata": {"name": "web", "resourceVersion": "1", "labels": {}}}
    found.namespaces.record("ADDED", namespace)
    assert found.security_policy("web") == SecurityPolicy()
    labelled = {
        "metadata": {
            "name": "web",
            "resourceVersion": "2",
            "labels": {ENFORCE_LABEL: "restricted", "ecs.operator.dev/allow-privileged": "true"},
        }
    }
    found.namespaces.record("MODIFIED", labelled)
    policy = found.security_policy("web")
    assert policy.pod_security == "restricted" and policy.allow_privileged
    assert policy.operator_service_account is None
    assert found.security_policy("ops").operator_service_account == "ecs-operator"


def test_a_service_counts_only_the_tasks_it_owns_by_uid() -> None:
    found = context()
    service = {"metadata": {"namespace": "ns", "name": "web", "uid": "uid-web"}}
    for name, uid in (("web-1", "uid-web"), ("web-forged", "uid-of-another"), ("web-2", "uid-web")):
        body = task(name, "n1", 1)
        body["metadata"]["ownerReferences"] = [{"kind": "Service", "name": "web", "uid": uid}]
        body["metadata"]["labels"] = {labels.SERVICE_LABEL: "web"}
        found.tasks.record("ADDED", body)
    labelled_only = task("web-labelled", "n1", 1)
    labelled_only["metadata"]["labels"] = {labels.SERVICE_LABEL: "web"}
    found.tasks.record("ADDED", labelled_only)
    assert sorted(t["metadata"]["name"] for t in found.service_tasks(service)) == [
        "web-1",
        "web-2",
    ]


def test_a_namespace_being_deleted_is_terminating() -> None:
    found = context()
    assert not found.namespace_terminating("web")  # not seen yet
    found.namespaces.record("ADDED", {"metadata": {"name": "web", "resourceVersion": "1"}})
    assert not found.namespace_terminating("web")
    deleting = {"metadata": {"name": "web", "resourceVersion": "2", "deletionTimestamp": "now"}}
    found.namespaces.record("MODIFIED", deleting)
    assert found.namespace_terminating("web")
