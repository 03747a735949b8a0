"""Placement on the sandbox's six nodes (three zones, 4 CPUs and 8 GiB each)."""

from __future__ import annotations

from support.ecs_api import Ecs, container

NODE_MEMORY_MIB = 8192


def test_task_larger_than_any_node_fails_with_resource_memory(ecs: Ecs) -> None:
    ecs.create_task_definition("huge", container("app", memory=NODE_MEMORY_MIB * 2))
    ecs.wait_accepted("huge")
    ecs.create_task("big", "huge")
    stopped = ecs.wait_stopped("big")
    assert stopped["stopCode"] == "TaskFailedToStart"
    reason = stopped["stoppedReason"]
    assert "RESOURCE:MEMORY" in reason
    assert "node-zone-" in reason  # the closest container instance is named
    assert not ecs.pods_of("big")
    ecs.wait_warning("big", "TaskFailedToStart")


def test_member_of_that_no_node_satisfies(ecs: Ecs) -> None:
    ecs.create_task_definition("picky", container("app"))
    ecs.wait_accepted("picky")
    constraint = {"type": "memberOf", "expression": "attribute:ecs.availability-zone == mars-1"}
    ecs.create_task("nowhere", "picky", placementConstraints=[constraint])
    stopped = ecs.wait_stopped("nowhere")
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert "MemberOf placement constraint unsatisfied." in stopped["stoppedReason"]


def test_member_of_pins_the_zone(ecs: Ecs) -> None:
    ecs.create_task_definition("zoned", container("app"))
    ecs.wait_accepted("zoned")
    constraint = {"type": "memberOf", "expression": "attribute:ecs.availability-zone == zone-b"}
    ecs.create_task("in-b", "zoned", placementConstraints=[constraint])
    status = ecs.wait_last_status("in-b", "RUNNING")
    assert status["availabilityZone"] == "zone-b"
    assert status["nodeName"].startswith("node-zone-b-")


def test_distinct_instance_puts_a_group_on_different_nodes(ecs: Ecs) -> None:
    ecs.create_task_definition("solo", container("app"))
    ecs.wait_accepted("solo")
    distinct = [{"type": "distinctInstance"}]
    # Created together, as `kubectl apply` of two manifests would.
    for name in ("one", "two"):
        ecs.create_task(name, "solo", group="singletons", placementConstraints=distinct)
    first = ecs.wait_last_status("one", "RUNNING")
    second = ecs.wait_last_status("two", "RUNNING")
    assert first["group"] == second["group"] == "singletons"
    assert first["nodeName"] != second["nodeName"]


def test_spread_across_zones(ecs: Ecs) -> None:
    ecs.create_task_definition("wide", container("app"))
    ecs.wait_accepted("wide")
    spread = [{"type": "spread", "field": "attribute:ecs.availability-zone"}]
    names = [f"wide-{n}" for n in range(3)]
    for name in names:
        ecs.create_task(name, "wide", group="spread-me", placementStrategy=spread)
    zones = [ecs.wait_last_status(name, "RUNNING")["availabilityZone"] for name in names]
    assert sorted(zones) == ["zone-a", "zone-b", "zone-c"]
