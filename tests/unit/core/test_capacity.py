"""Capacity (core.capacity): a live service task placed on a node whose Pod does not exist yet
counts against that node, once, in its task group; a terminated Pod (a stopped task keeps it
for its logs) counts for nothing."""

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ecs_operator.core import labels, placement
from ecs_operator.core.capacity import (
    cluster_instances,
    occupied_node,
    placed_node,
    stand_in_pods,
    task_requirements,
)
from ecs_operator.models.placement import PlacementConstraint, PlacementStrategy
from ecs_operator.models.taskdefinition import TaskDefinitionSpec

NODES = ("n1", "n2")


def node(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": name, "labels": {}},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def task(
    name: str, placed: str | None, desired: str = "RUNNING", last_status: str | None = None
) -> dict[str, Any]:
    annotations = {labels.PLACED_NODE_ANNOTATION: placed} if placed else {}
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": name, "annotations": annotations},
        "spec": {"group": "service:web", "desiredStatus": "RUNNING"},
        "status": {"desiredStatus": desired, "lastStatus": last_status},
    }


tasks_strategy = st.lists(
    st.tuples(
        st.sampled_from((None, *NODES)),
        st.sampled_from(("RUNNING", "STOPPED")),
        st.sampled_from((None, "PENDING", "RUNNING", "STOPPED")),
        st.booleans(),  # its Pod exists
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(tasks_strategy)
def test_exactly_the_live_placed_podless_tasks_stand_in_on_their_node(
    drawn: list[tuple[str | None, str, str | None, bool]],
) -> None:
    tasks = [
        task(f"t{i}", placed, desired, last) for i, (placed, desired, last, _) in enumerate(drawn)
    ]
    with_pod = {f"t{i}" for i, (*_, has_pod) in enumerate(drawn) if has_pod}
    stand_ins = list(stand_in_pods(tasks, lambda t: t["metadata"]["name"] in with_pod))
    expected = [
        t
        for t, (placed, desired, last, has_pod) in zip(tasks, drawn, strict=True)
        if placed and not has_pod and "STOPPED" not in (desired, last)
    ]
    assert [p["metadata"]["name"] for p in stand_ins] == [t["metadata"]["name"] for t in expected]
    for pod, original in zip(stand_ins, expected, strict=True):
        assert pod["spec"]["nodeName"] == placed_node(original)
        assert pod["metadata"]["annotations"] == {labels.GROUP_ANNOTATION: "service:web"}
    counted = cluster_instances([node(n) for n in NODES], stand_ins)
    for instance in counted:
        on_node = sum(p["spec"]["nodeName"] == instance.name for p in stand_ins)
        assert instance.group_counts.get("service:web", 0) == on_node


def test_a_task_asked_to_stop_in_its_spec_stands_in_for_nothing() -> None:
    stopping = task("t1", "n1")
    stopping["spec"]["desiredStatus"] = "STOPPED"
    assert list(stand_in_pods([stopping], lambda _: False)) == []


# A stopped task keeps its terminated Pod (for its logs) until the Task is deleted: such a Pod
# holds nothing of its node, for every check placement makes.

PHASES = ("Pending", "Running", "Succeeded", "Failed")
TERMINATED = ("Succeeded", "Failed")


def task_pod(
    name: str, node_name: str, phase: str, group: str, cpu: str, memory: str, port: int | None
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "app",
        "resources": {"requests": {"cpu": cpu, "memory": memory}},
    }
    if port is not None:
        container["ports"] = [{"containerPort": port, "hostPort": port, "protocol": "TCP"}]
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "uid": f"uid-{name}",
            "annotations": {labels.GROUP_ANNOTATION: group},
        },
        "spec": {"nodeName": node_name, "containers": [container]},
        "status": {"phase": phase},
    }


pods_strategy = st.lists(
    st.tuples(
        st.sampled_from(NODES),
        st.sampled_from(PHASES),
        st.sampled_from(("service:web", "service:api", "family:job")),
        st.sampled_from(("250m", "1", "2")),
        st.sampled_from(("128Mi", "1Gi", "3Gi")),
        st.sampled_from((None, 80, 8080)),
    ),
    max_size=10,
)


def placement_view(instance: Any) -> tuple[Any, ...]:
    return (
        instance.name,
        instance.remaining_cpu_millicores,
        instance.remaining_memory_mib,
        instance.used_ports_tcp,
        instance.running_tasks_count,
        dict(instance.group_counts),
    )


@settings(max_examples=100, deadline=None)
@given(pods_strategy, st.integers(0, 2**32 - 1))
def test_terminated_pods_hold_no_capacity_and_change_no_placement(
    drawn: list[tuple[str, str, str, str, str, int | None]], seed: int
) -> None:
    """CPU, memory, host ports, running tasks and task groups (spread, distinctInstance) are
    those of the Pods that have not terminated, exactly; and a placement over a cluster with
    terminated Pods is the placement without them."""
    pods = [task_pod(f"p{i}", *fields) for i, fields in enumerate(drawn)]
    live = [p for p in pods if p["status"]["phase"] not in TERMINATED]
    nodes = [node(n) for n in NODES]
    with_terminated = cluster_instances(nodes, pods)
    without = cluster_instances(nodes, live)
    assert [placement_view(i) for i in with_terminated] == [placement_view(i) for i in without]
    for instance in with_terminated:
        on_node = [p for p in live if p["spec"]["nodeName"] == instance.name]
        assert instance.running_tasks_count == len(on_node)
        ports = {p["spec"]["containers"][0].get("ports", [{}])[0].get("hostPort") for p in on_node}
        assert instance.used_ports_tcp == frozenset(ports - {None})
    requirements = task_requirements(
        TaskDefinitionSpec.model_validate(
            {
                "containerDefinitions": [
                    {
                        "name": "app",
                        "image": "nginx",
                        "memory": 1024,
                        "cpu": 512,
                        "portMappings": [{"containerPort": 80, "hostPort": 80}],
                    }
                ]
            }
        ),
        group="service:web",
        constraints=[PlacementConstraint(type="distinctInstance")],
        strategies=[PlacementStrategy(type="spread", field="instanceId")],
    )
    first = placement.place(requirements, with_terminated, random.Random(seed))
    second = placement.place(requirements, without, random.Random(seed))
    assert first == second


def test_occupied_node_is_none_once_the_pod_terminated() -> None:
    for phase in PHASES:
        pod = task_pod("p", "n1", phase, "service:web", "1", "1Gi", None)
        assert occupied_node(pod) == (None if phase in TERMINATED else "n1")


def test_a_stopping_pod_holds_its_resources_but_is_no_task_of_its_group() -> None:
    """Its deadline set (the operator stopping it) or its deletion under way: its CPU and
    ports count until it has terminated, its task group no longer (its replacement must not
    avoid the node and zone it leaves)."""
    live = task_pod("p", "n1", "Running", "service:web", "1", "1Gi", 80)
    stopping = task_pod("p", "n1", "Running", "service:web", "1", "1Gi", 80)
    stopping["spec"]["activeDeadlineSeconds"] = 1
    deleting = task_pod("p", "n1", "Running", "service:web", "1", "1Gi", 80)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    [counted] = cluster_instances([node("n1")], [live])
    assert (counted.running_tasks_count, dict(counted.group_counts)) == (1, {"service:web": 1})
    for pod in (stopping, deleting):
        [instance] = cluster_instances([node("n1")], [pod])
        assert (instance.running_tasks_count, dict(instance.group_counts)) == (0, {})
        assert instance.remaining_cpu_millicores == counted.remaining_cpu_millicores == 3000
        assert instance.used_ports_tcp == frozenset({80})
