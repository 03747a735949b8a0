"""Services when nodes go: zone outage and recovery (AZ rebalancing), cordon, DAEMON services.

These tests change the shared sandbox's nodes; every change is undone on the way out (even on
failure), and each waits until the nodes are Ready and schedulable again."""

from __future__ import annotations

from collections import Counter
from typing import Any

from support.ecs_api import Ecs, KubectlRunner
from support.helpers import ClusterTarget
from support.services import (
    NODES,
    ZONES,
    Services,
    TaskWatch,
    bounds_check,
    cordoned,
    is_balanced,
    node_of,
    nodes_lost,
    task_status,
    zone_counts,
)

ZONE_A = ("node-zone-a-1", "node-zone-a-2")


def running_on(services: Services, name: str) -> Counter[str]:
    """Live RUNNING tasks of the service per node."""
    return Counter(
        node_of(t) for t in services.live(name) if task_status(t).get("lastStatus") == "RUNNING"
    )


def test_zone_outage_moves_tasks_and_recovery_rebalances(ecs: Ecs, target: ClusterTarget) -> None:
    services = Services(ecs)
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    services.create("web", "web", desiredCount=6)
    services.wait_steady("web", 6)
    assert zone_counts(services.tasks("web")) == Counter(dict.fromkeys(ZONES, 2))
    with nodes_lost(target, *ZONE_A):

        def moved() -> bool:
            where = running_on(services, "web")
            return sum(where.values()) == 6 and not set(where) & set(ZONE_A)

        services.wait(moved, "six tasks running outside zone-a", "web", timeout=15)
        counts = zone_counts(services.live("web"))
        assert (counts["zone-b"], counts["zone-c"]) == (3, 3), counts

        def lost() -> list[dict[str, Any]]:
            return [t for t in services.tasks("web") if node_of(t) in ZONE_A]

        # Two at least: on a real cluster the zone's nodes turn NotReady a moment apart, and a
        # task may first move to the zone's other node, to be lost again with it.
        assert len(lost()) >= 2
        # The Service stops a lost task and starts its replacement in one plan; the replacement
        # may be RUNNING before the Task controller has written the lost one STOPPED.
        services.wait(
            lambda: all(task_status(t).get("lastStatus") == "STOPPED" for t in lost()),
            "the zone-a tasks STOPPED",
            "web",
        )
        assert {task_status(t).get("stopCode") for t in lost()} <= {"TerminationNotice", None}
    # Back: AZ rebalancing restores the spread.
    balanced = (
        "(service web) is AZ balanced with 2 tasks in zone-a, 2 tasks in zone-b, 2 tasks in zone-c."
    )
    services.wait(
        lambda: balanced in services.messages("web") and services.steady("web", 6),
        "two tasks per zone again",
        "web",
    )
    assert zone_counts(services.live("web")) == Counter(dict.fromkeys(ZONES, 2))
    messages = services.messages("web")
    assert any(m.startswith("(service web) is not AZ balanced with 3 tasks in") for m in messages)
    assert messages.index(balanced) < messages.index(
        next(m for m in messages if "AZ Rebalancing in progress" in m)
    )


def test_a_same_named_service_of_another_cluster_does_not_skew_the_spread(
    ecs: Ecs, target: ClusterTarget
) -> None:
    """A namespace is an ECS cluster: `web` of another namespace, kept out of zone-a, shares the
    nodes' resources but not this cluster's task group. Counted as one group, both tasks here
    went to zone-a, and AZ rebalancing moved one once the other namespace's tasks were gone
    (on a real cluster, where a deleted namespace's Pods linger)."""
    other = Ecs(target, target.create_namespace(), ecs.log_tail)
    try:
        theirs = Services(other)
        other.create_task_definition("web")
        other.wait_accepted("web")
        outside_a = {"type": "memberOf", "expression": "attribute:ecs.availability-zone != zone-a"}
        theirs.create("web", "web", desiredCount=4, placementConstraints=[outside_a])
        theirs.wait_steady("web", 4)
        assert zone_counts(theirs.live("web")) == Counter({"zone-b": 2, "zone-c": 2})
        services = Services(ecs)
        ecs.create_task_definition("web")
        ecs.wait_accepted("web")
        services.create("web", "web", desiredCount=2)
        services.wait_steady("web", 2)
        counts = +zone_counts(services.live("web"))  # the zones holding a task
        assert sorted(counts.values()) == [1, 1], counts
        assert not [m for m in services.messages("web") if "is not AZ balanced" in m]
    finally:
        target.delete_namespace(other.namespace)


def test_cordon_moves_service_tasks_but_leaves_a_standalone_task(
    ecs: Ecs, kubectl: KubectlRunner, target: ClusterTarget
) -> None:
    services = Services(ecs)
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    services.create("web", "web", desiredCount=6)
    services.wait_steady("web", 6)
    node = "node-zone-b-1"
    pinned = {"type": "memberOf", "expression": f"ec2InstanceId == {node}"}
    ecs.create_task("standalone", "web", placementConstraints=[pinned])
    assert ecs.wait_last_status("standalone", "RUNNING")["nodeName"] == node
    assert running_on(services, "web")[node] >= 1
    check = bounds_check("web", lambda: 6, 100, 200)
    with TaskWatch(services, check) as watch, cordoned(kubectl, target, node):
        services.wait(
            lambda: not running_on(services, "web")[node] and services.steady("web", 6),
            f"no service task on {node}",
            "web",
        )
        standalone = ecs.task("standalone")
        assert standalone["spec"].get("desiredStatus", "RUNNING") == "RUNNING"
        assert task_status(standalone)["lastStatus"] == "RUNNING"
        # The replacement started before the drained task stopped, so in another zone; AZ
        # rebalancing follows once that task is STOPPED (its Pod stopped by its deadline: up
        # to a second for a Pod that young).
        services.wait(
            lambda: is_balanced(zone_counts(services.live("web"))) and services.steady("web", 6),
            "AZ balanced again",
            "web",
        )
    watch.assert_clean()
    moved = [t for t in services.tasks("web") if node_of(t) == node]
    assert moved
    assert {task_status(t).get("stoppedReason") for t in moved} == {
        f"Task stopped: its node (node {node}) is draining"
    }


def test_daemon_runs_one_task_per_eligible_node(
    ecs: Ecs, kubectl: KubectlRunner, target: ClusterTarget
) -> None:
    services = Services(ecs)
    ecs.create_task_definition("agent")
    ecs.wait_accepted("agent")
    services.create("agent", "agent", schedulingStrategy="DAEMON")

    def one_per_node(nodes: set[str]) -> bool:
        where = running_on(services, "agent")
        return (
            set(where) == nodes
            and set(where.values()) == {1}
            and bool(services.steady("agent", len(nodes)))
        )

    services.wait(lambda: one_per_node(set(NODES)), "a task on each node", "agent")
    lost, drained = "node-zone-c-1", "node-zone-a-2"
    with nodes_lost(target, lost):
        services.wait(lambda: one_per_node(set(NODES) - {lost}), f"none on {lost}", "agent")
    services.wait(lambda: one_per_node(set(NODES)), f"back on {lost}", "agent")
    with cordoned(kubectl, target, drained):
        services.wait(lambda: one_per_node(set(NODES) - {drained}), f"none on {drained}", "agent")
    services.wait(lambda: one_per_node(set(NODES)), f"back on {drained}", "agent")


def test_daemon_member_of_restricts_the_nodes(ecs: Ecs) -> None:
    services = Services(ecs)
    ecs.create_task_definition("agent")
    ecs.wait_accepted("agent")
    in_b = {"type": "memberOf", "expression": "attribute:ecs.availability-zone == zone-b"}
    services.create("agent", "agent", schedulingStrategy="DAEMON", placementConstraints=[in_b])
    status = services.wait(
        lambda: (
            set(running_on(services, "agent")) == {"node-zone-b-1", "node-zone-b-2"}
            and services.steady("agent", 2)
        ),
        "a task on each zone-b node",
        "agent",
    )
    assert status["desiredCount"] == 2
    assert sum(running_on(services, "agent").values()) == 2
