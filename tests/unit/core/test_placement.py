"""ECS task placement over nodes (core.placement) and its spec models (models.placement)."""

import random
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from celpy.adapter import json_to_cel
from pydantic import ValidationError

from ecs_operator.core.placement import (
    REASON_AGENT,
    REASON_ATTRIBUTE,
    REASON_CPU,
    REASON_DISTINCT_INSTANCE,
    REASON_GPU,
    REASON_MEMBER_OF,
    REASON_MEMORY,
    REASON_NO_ACTIVE_INSTANCES,
    REASON_PORTS_TCP,
    REASON_PORTS_UDP,
    SERVICE_DEFAULT_STRATEGIES,
    ContainerInstance,
    Placement,
    PlacementFailure,
    TaskRequirements,
    choose_tasks_to_stop,
    instances_from_cluster,
    operating_system,
    place,
    place_many,
    platform_node_labels,
    with_spread_counts,
    with_task,
)
from ecs_operator.models.placement import (
    CONSTRAINT_RULES,
    STRATEGY_RULES,
    PlacementConstraint,
    PlacementStrategy,
)
from ecs_sandbox.schema import CelProgram

GROUP = "service:web"
SPREAD_ZONE = PlacementStrategy(type="spread", field="attribute:ecs.availability-zone")
SPREAD_INSTANCE = PlacementStrategy(type="spread", field="instanceId")
BINPACK_MEMORY = PlacementStrategy(type="binpack", field="memory")
BINPACK_CPU = PlacementStrategy(type="binpack", field="cpu")
RANDOM = PlacementStrategy(type="random")


def node(
    name: str,
    zone: str = "zone-a",
    *,
    cpu: int = 4000,
    memory: int = 8192,
    tasks: int = 0,
    attributes: Mapping[str, str] | None = None,
    groups: Mapping[str, int] | None = None,
    **fields: Any,
) -> ContainerInstance:
    return ContainerInstance(
        name=name,
        zone=zone,
        attributes={"ecs.availability-zone": zone, **(attributes or {})},
        registered_cpu_millicores=4000,
        remaining_cpu_millicores=cpu,
        registered_memory_mib=8192,
        remaining_memory_mib=memory,
        running_tasks_count=tasks,
        group_counts={**({GROUP: tasks} if tasks else {}), **(groups or {})},
        **fields,
    )


def task(cpu: int = 256, memory: int = 512, **fields: Any) -> TaskRequirements:
    return TaskRequirements.create(cpu_units=cpu, memory_mib=memory, group=GROUP, **fields)


def chosen(result: object) -> str:
    assert isinstance(result, Placement), result
    return result.instance


def failure(result: object) -> PlacementFailure:
    assert isinstance(result, PlacementFailure), result
    return result


def choices(requirements: TaskRequirements, instances: list[ContainerInstance]) -> set[str]:
    """Every node ``place`` picks over many seeds (ties are broken at random)."""
    return {chosen(place(requirements, instances, random.Random(seed))) for seed in range(200)}


# -- filters and failures -------------------------------------------------------------------------


def test_no_instances_at_all() -> None:
    result = failure(place(task(), [], random.Random(0)))
    assert result.reason == REASON_NO_ACTIVE_INSTANCES
    assert result.closest is None


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"ready": False}, "is not ready"),
        ({"schedulable": False}, "is draining (the node is cordoned)"),
        ({"blocking_taints": ("dedicated=db:NoSchedule",)}, "dedicated=db:NoSchedule"),
    ],
)
def test_agent_filter(fields: dict[str, Any], detail: str) -> None:
    result = failure(place(task(), [node("n1", **fields)], random.Random(0)))
    assert result.reason == REASON_AGENT
    assert result.closest == "n1"
    assert detail in result.detail


def test_only_ready_schedulable_untainted_nodes_are_candidates() -> None:
    instances = [
        node("lost", ready=False),
        node("cordoned", schedulable=False),
        node("tainted", blocking_taints=("gpu:NoExecute",)),
        node("good"),
    ]
    assert choices(task(), instances) == {"good"}


def test_cpu_filter_and_closest_has_the_most_cpu() -> None:
    instances = [node("small", cpu=100), node("larger", cpu=900), node("lost", ready=False)]
    result = failure(place(task(cpu=1024), instances, random.Random(0)))
    assert (result.reason, result.closest) == (REASON_CPU, "larger")
    assert result.detail == "has insufficient CPU units available"


def test_cpu_units_are_compared_as_the_millicores_a_pod_requests() -> None:
    assert chosen(place(task(cpu=1024), [node("n", cpu=1000)], random.Random(0))) == "n"
    assert failure(place(task(cpu=1025), [node("n", cpu=1000)], random.Random(0)))


def test_memory_failure_is_closer_than_cpu_failure() -> None:
    instances = [node("no-cpu", cpu=0), node("no-memory", memory=100), node("less", memory=50)]
    result = failure(place(task(memory=512), instances, random.Random(0)))
    assert (result.reason, result.closest) == (REASON_MEMORY, "no-memory")
    assert result.detail == "has insufficient memory available"


def test_tcp_and_udp_ports_are_separate() -> None:
    busy_tcp = node("busy-tcp", used_ports_tcp=frozenset({80}))
    busy_udp = node("busy-udp", used_ports_udp=frozenset({53}))
    assert chosen(place(task(host_ports_tcp=[53]), [busy_udp], random.Random(0))) == "busy-udp"
    assert chosen(place(task(host_ports_udp=[80]), [busy_tcp], random.Random(0))) == "busy-tcp"
    tcp = failure(place(task(host_ports_tcp=[80, 81]), [busy_tcp], random.Random(0)))
    assert (tcp.reason, tcp.closest) == (REASON_PORTS_TCP, "busy-tcp")
    assert tcp.detail == "is already using a TCP port required by your task (80)"
    udp = failure(place(task(host_ports_udp=[53]), [busy_udp], random.Random(0)))
    assert (udp.reason, udp.detail) == (
        REASON_PORTS_UDP,
        "is already using a UDP port required by your task (53)",
    )


def test_member_of_constraint() -> None:
    instances = [node("a", "zone-a"), node("b", "zone-b"), node("c", "zone-c")]
    constraint = PlacementConstraint(
        type="memberOf", expression="attribute:ecs.availability-zone in [zone-b, zone-c]"
    )
    assert choices(task(constraints=[constraint]), instances) == {"b", "c"}
    never = PlacementConstraint(type="memberOf", expression="attribute:ecs.os-type == windows")
    result = failure(place(task(constraints=[constraint, never]), instances, random.Random(0)))
    assert result.reason == REASON_MEMBER_OF
    assert result.closest == "b"  # satisfies one of the two expressions; first by name of b, c
    assert (
        result.detail == "does not match the memberOf expression 'attribute:ecs.os-type == windows'"
    )


def test_member_of_closest_is_a_node_that_passed_the_resources() -> None:
    instances = [node("a", cpu=0), node("b")]
    constraint = PlacementConstraint(type="memberOf", expression="ec2InstanceId == a")
    result = failure(place(task(constraints=[constraint]), instances, random.Random(0)))
    assert (result.reason, result.closest) == (REASON_MEMBER_OF, "b")


def test_member_of_task_group_anti_affinity() -> None:
    instances = [node("with-db", groups={"service:db": 1}), node("free")]
    anti = PlacementConstraint(type="memberOf", expression="not(task:group == service:db)")
    assert choices(task(constraints=[anti]), instances) == {"free"}
    affinity = PlacementConstraint(type="memberOf", expression="task:group == service:db")
    assert choices(task(constraints=[affinity]), instances) == {"with-db"}


def test_distinct_instance_constraint() -> None:
    distinct = PlacementConstraint(type="distinctInstance")
    instances = [node("busy", tasks=1), node("other-group", groups={"family:x": 3})]
    assert choices(task(constraints=[distinct]), instances) == {"other-group"}
    result = failure(place(task(constraints=[distinct]), [node("busy", tasks=1)], random.Random(0)))
    assert (result.reason, result.closest) == (REASON_DISTINCT_INSTANCE, "busy")
    assert result.detail == "already runs a task of group 'service:web'"


def test_closest_is_the_node_that_passed_the_most_filters() -> None:
    distinct = PlacementConstraint(type="distinctInstance")
    instances = [
        node("lost", ready=False),
        node("no-cpu", cpu=0),
        node("no-memory", memory=0),
        node("port", used_ports_tcp=frozenset({80})),
        node("has-task", tasks=1),
    ]
    requirements = task(host_ports_tcp=[80], constraints=[distinct])
    result = failure(place(requirements, instances, random.Random(0)))
    assert (result.reason, result.closest) == (REASON_DISTINCT_INSTANCE, "has-task")
    result = failure(place(requirements, instances[:4], random.Random(0)))
    assert (result.reason, result.closest) == (REASON_PORTS_TCP, "port")


def test_bad_member_of_expression_names_the_constraint() -> None:
    constraints = [
        PlacementConstraint(type="distinctInstance"),
        PlacementConstraint(type="memberOf", expression="attribute:x likes y"),
    ]
    with pytest.raises(ValueError, match=r"placementConstraints\[1\]\.expression: expected an"):
        task(constraints=constraints)


# -- strategies -----------------------------------------------------------------------------------


def test_binpack_picks_the_least_remaining_that_fits() -> None:
    instances = [node("big", memory=8000), node("tight", memory=600), node("too-small", memory=500)]
    assert choices(task(memory=512, strategies=[BINPACK_MEMORY]), instances) == {"tight"}
    instances = [node("big", cpu=4000), node("tight", cpu=300), node("too-small", cpu=200)]
    assert choices(task(cpu=256, strategies=[BINPACK_CPU]), instances) == {"tight"}


def test_spread_instance_id_and_host_pick_the_fewest_group_tasks() -> None:
    instances = [node("two", tasks=2), node("one", tasks=1), node("none-of-ours", tasks=0)]
    for field in ("instanceId", "host"):
        strategy = PlacementStrategy(type="spread", field=field)
        assert choices(task(strategies=[strategy]), instances) == {"none-of-ours"}


def test_spread_attribute_counts_the_groups_tasks_per_value() -> None:
    instances = [
        node("a1", "zone-a", tasks=1),
        node("a2", "zone-a"),
        node("b1", "zone-b", tasks=2),
        node("c1", "zone-c", tasks=1, groups={"family:other": 5}),
        node("c2", "zone-c", tasks=1),
    ]
    # zone-a has 1 task of the group, zone-b 2, zone-c 2 (other groups do not count).
    assert choices(task(strategies=[SPREAD_ZONE]), instances) == {"a1", "a2"}


def test_spread_counts_tasks_on_nodes_that_are_not_candidates() -> None:
    instances = [node("a-lost", "zone-a", tasks=3, ready=False), node("a"), node("b", "zone-b")]
    assert choices(task(strategies=[SPREAD_ZONE]), instances) == {"b"}


def test_strategy_chain_spread_zone_then_binpack_memory() -> None:
    instances = [
        node("a-tight", "zone-a", memory=1000, tasks=1),
        node("b-roomy", "zone-b", memory=8000),
        node("b-tight", "zone-b", memory=1000),
        node("b-tighter", "zone-b", memory=600),
    ]
    strategies = [SPREAD_ZONE, BINPACK_MEMORY]
    assert choices(task(memory=512, strategies=strategies), instances) == {"b-tighter"}


def test_binpack_then_spread_breaks_binpack_ties_by_spread() -> None:
    instances = [node("a", memory=600, tasks=1), node("b", memory=600), node("c", memory=900)]
    assert choices(task(strategies=[BINPACK_MEMORY, SPREAD_INSTANCE]), instances) == {"b"}


def test_no_strategy_is_random_among_candidates() -> None:
    instances = [node("a", tasks=5), node("b", memory=600), node("c"), node("full", memory=0)]
    assert choices(task(), instances) == {"a", "b", "c"}


def test_random_ends_the_strategy_chain() -> None:
    instances = [node("a", memory=600), node("b", memory=8000)]
    assert choices(task(strategies=[RANDOM, BINPACK_MEMORY]), instances) == {"a", "b"}
    assert choices(task(strategies=[BINPACK_MEMORY, RANDOM]), instances) == {"a"}


def test_remaining_ties_are_broken_by_the_given_rng_deterministically() -> None:
    instances = [node(f"n{i}") for i in range(20)]
    first = [chosen(place(task(), instances, random.Random(seed))) for seed in range(30)]
    again = [chosen(place(task(), instances, random.Random(seed))) for seed in range(30)]
    assert first == again
    assert len(set(first)) > 1


def test_service_default_balances_zones_then_nodes() -> None:
    assert SERVICE_DEFAULT_STRATEGIES == (SPREAD_ZONE, SPREAD_INSTANCE)
    instances = [node("a1", "zone-a"), node("a2", "zone-a"), node("b1", "zone-b")]
    requirements = task(strategies=SERVICE_DEFAULT_STRATEGIES)
    results = place_many([requirements] * 4, instances, random.Random(3))
    placed = [chosen(result) for result in results]
    assert Counter(placed[:2]) in (Counter({"a1": 1, "b1": 1}), Counter({"a2": 1, "b1": 1}))
    assert Counter(placed) == Counter({"a1": 1, "a2": 1, "b1": 2})


def test_spread_over_another_group_counts_only_its_tasks() -> None:
    # The service's tasks crowd zone-b; the group spread is asked to count does not.
    instances = with_spread_counts(
        [node("a1", "zone-a", tasks=1), node("a2", "zone-a"), node("b1", "zone-b", tasks=4)],
        "deployment:green",
        {"a1": 1, "a2": 1},
    )
    assert [i.group_counts.get(GROUP, 0) for i in instances] == [1, 0, 4]
    own = task(strategies=SERVICE_DEFAULT_STRATEGIES, spread_over="deployment:green")
    assert choices(own, instances) == {"b1"}
    assert choices(task(strategies=SERVICE_DEFAULT_STRATEGIES), instances) == {"a2"}
    placed = Counter(chosen(r) for r in place_many([own] * 4, instances, random.Random(1)))
    assert placed["b1"] == 3 and placed["a1"] + placed["a2"] == 1  # 3 of the 6 in each zone


def test_spread_over_another_group_leaves_distinct_instance_and_member_of_to_the_task_group() -> (
    None
):
    instances = with_spread_counts([node("a1", tasks=1), node("a2")], "deployment:green", {})
    distinct = task(
        constraints=[PlacementConstraint(type="distinctInstance")], spread_over="deployment:green"
    )
    assert choices(distinct, instances) == {"a2"}
    away = PlacementConstraint(type="memberOf", expression="not(task:group == deployment:green)")
    placed = place_many(
        [task(constraints=[away], spread_over="deployment:green")] * 2,
        instances,
        random.Random(0),
    )
    assert len([chosen(r) for r in placed]) == 2  # the spread group is no task:group
    after = with_task(instances[1], distinct)
    assert after.spread_counts == {"deployment:green": 1}
    assert after.group_counts == {GROUP: 1}
    assert task(spread_over=GROUP).spread_over is None  # its own group: nothing apart


# -- place_many -----------------------------------------------------------------------------------


def test_place_many_reserves_resources_between_placements() -> None:
    instances = [node("n", cpu=1000, memory=1200)]
    results = place_many([task(cpu=512, memory=512)] * 3, instances, random.Random(0))
    assert [type(r) for r in results] == [Placement, Placement, PlacementFailure]
    assert failure(results[2]).reason == REASON_CPU  # 2 x 500m of 1000m, then 0m left


def test_place_many_reserves_ports_and_counts_the_batch_for_distinct_instance() -> None:
    instances = [node("a"), node("b")]
    port = place_many([task(host_ports_udp=[53])] * 3, instances, random.Random(0))
    assert sorted(chosen(r) for r in port[:2]) == ["a", "b"]
    assert failure(port[2]).reason == REASON_PORTS_UDP
    distinct = task(constraints=[PlacementConstraint(type="distinctInstance")])
    results = place_many([distinct] * 3, instances, random.Random(0))
    assert sorted(chosen(r) for r in results[:2]) == ["a", "b"]
    assert failure(results[2]).reason == REASON_DISTINCT_INSTANCE


def test_place_many_goes_on_after_a_failure() -> None:
    results = place_many([task(memory=9000), task()], [node("n")], random.Random(0))
    assert failure(results[0]).reason == REASON_MEMORY
    assert chosen(results[1]) == "n"


def test_with_task_reserves_everything_and_leaves_the_input_alone() -> None:
    before = node("n", tasks=1, used_ports_tcp=frozenset({22}))
    after = with_task(before, task(cpu=1024, memory=512, host_ports_tcp=[80], host_ports_udp=[53]))
    assert after.remaining_cpu_millicores == 3000
    assert after.remaining_memory_mib == 7680
    assert after.used_ports_tcp == {22, 80}
    assert after.used_ports_udp == {53}
    assert after.running_tasks_count == 2
    assert after.group_counts == {GROUP: 2}
    assert before.group_counts == {GROUP: 1}
    assert after.remaining_cpu_units == 3072
    assert after.registered_cpu_units == 4096


# -- scale-in -------------------------------------------------------------------------------------


def test_scale_in_default_takes_from_the_fullest_zone_then_the_fullest_node() -> None:
    instances = [node("a1", "zone-a"), node("a2", "zone-a"), node("b1", "zone-b")]
    tasks = {"a1": ["t1", "t2"], "a2": ["t3"], "b1": ["t4", "t5"]}
    stopped = choose_tasks_to_stop(
        tasks, instances, 2, SERVICE_DEFAULT_STRATEGIES, random.Random(0)
    )
    # zone-a holds 3: stop on a1 (2 tasks); then zone-a 2 = zone-b 2, nodes a1, a2 hold 1, b1 2.
    assert stopped[0] in ("t1", "t2")
    assert stopped[1] in ("t4", "t5")


def test_scale_in_binpack_empties_the_node_with_the_most_free() -> None:
    instances = [node("roomy", memory=6000), node("tight", memory=100)]
    tasks = {"roomy": ["r1", "r2"], "tight": ["t1", "t2", "t3"]}
    stopped = choose_tasks_to_stop(tasks, instances, 3, [BINPACK_MEMORY], random.Random(0))
    assert sorted(stopped[:2]) == ["r1", "r2"]
    assert stopped[2].startswith("t")


def test_scale_in_stops_tasks_on_unknown_nodes_first() -> None:
    tasks = {"a": ["a1", "a2", "a3"], "gone": ["g1"], "": ["pending"]}
    stopped = choose_tasks_to_stop(tasks, [node("a")], 2, [SPREAD_ZONE], random.Random(0))
    assert sorted(stopped) == ["g1", "pending"]


def test_scale_in_random_and_more_than_there_is() -> None:
    tasks = {"a": ["a1", "a2"], "b": ["b1"]}
    instances = [node("a"), node("b")]
    stopped = choose_tasks_to_stop(tasks, instances, 10, [], random.Random(0))
    assert sorted(stopped) == ["a1", "a2", "b1"]
    firsts = {choose_tasks_to_stop(tasks, instances, 1, [RANDOM], random.Random(s))[0] for s in
              range(50)}  # fmt: skip
    assert firsts == {"a1", "a2", "b1"}
    assert tasks == {"a": ["a1", "a2"], "b": ["b1"]}  # the input is not consumed


def test_scale_in_of_zero() -> None:
    assert choose_tasks_to_stop({"a": ["a1"]}, [node("a")], 0, [], random.Random(0)) == []


# -- Kubernetes objects ---------------------------------------------------------------------------


def k8s_node(name: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {
            "name": name,
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {
                "topology.kubernetes.io/zone": "zone-a",
                "node.kubernetes.io/instance-type": "m5.large",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "attribute.ecs.operator.dev/team": "payments",
                "unrelated.example.com/label": "x",
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "capacity": {"cpu": "4", "memory": "8Gi"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
            "nodeInfo": {"kubeletVersion": "v1.30.2"},
        },
    }
    body.update(overrides)
    return body


def pod(name: str, node_name: str | None, *, phase: str = "Running", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node_name, **spec} if node_name else spec,
        "status": {"phase": phase},
    }


def container(
    name: str = "c",
    requests: Mapping[str, str] | None = None,
    limits: Mapping[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = dict(requests)
    if limits:
        resources["limits"] = dict(limits)
    return {"name": name, "image": "busybox", "resources": resources, **fields}


def group_label(body: Mapping[str, Any]) -> str | None:
    group: str | None = body["metadata"].get("annotations", {}).get("group")
    return group


def test_node_becomes_a_container_instance() -> None:
    [instance] = instances_from_cluster([k8s_node("n1")], [], group_label)
    assert instance.name == "n1"
    assert instance.zone == "zone-a"
    assert instance.attributes == {
        "ecs.availability-zone": "zone-a",
        "ecs.instance-type": "m5.large",
        "ecs.cpu-architecture": "x86_64",
        "ecs.os-type": "linux",
        "team": "payments",
    }
    assert (instance.registered_cpu_millicores, instance.remaining_cpu_millicores) == (2000, 2000)
    assert (instance.registered_memory_mib, instance.remaining_memory_mib) == (4096, 4096)
    assert instance.registered_cpu_units == 2048
    assert instance.ready and instance.agent_connected and instance.schedulable
    assert instance.status == "ACTIVE"
    assert instance.blocking_taints == ()
    assert instance.registered_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert instance.agent_version == "1.30.2"
    assert (instance.running_tasks_count, dict(instance.group_counts)) == (0, {})


def test_node_status_cordon_taints_and_architecture() -> None:
    labels = {"kubernetes.io/arch": "arm64"}
    body = k8s_node(
        "n1",
        spec={
            "unschedulable": True,
            "taints": [
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "dedicated", "value": "db", "effect": "NoExecute"},
                {"key": "soft", "effect": "PreferNoSchedule"},
            ],
        },
        status={"capacity": {"cpu": "1", "memory": "1Gi"}, "conditions": []},
    )
    body["metadata"]["labels"] = labels
    [instance] = instances_from_cluster([body], [], group_label)
    assert instance.attributes == {"ecs.cpu-architecture": "arm64"}
    assert instance.zone is None
    assert not instance.ready
    assert instance.status == "DRAINING"
    assert instance.blocking_taints == (
        "node.kubernetes.io/unschedulable:NoSchedule",
        "dedicated=db:NoExecute",
    )
    assert instance.registered_cpu_millicores == 1000  # capacity when allocatable is missing
    assert instance.agent_version == ""


def test_pods_consume_resources_ports_and_count_as_tasks() -> None:
    task_pod = pod(
        "web-1",
        "n1",
        containers=[
            container("app", {"cpu": "250m", "memory": "256Mi"}, ports=[{"containerPort": 80,
                      "hostPort": 8080}, {"containerPort": 53, "hostPort": 53, "protocol": "UDP"},
                      {"containerPort": 9, "hostPort": 9, "protocol": "SCTP"},
                      {"containerPort": 81}]),
            container("log", limits={"cpu": "100m", "memory": "64Mi"}),
        ],
    )  # fmt: skip
    task_pod["metadata"]["annotations"] = {"group": GROUP}
    other = pod("daemon", "n1", containers=[container("d", {"cpu": "50m"})])
    done = pod("done", "n1", phase="Succeeded", containers=[container("x", {"cpu": "1"})])
    failed = pod("failed", "n1", phase="Failed", containers=[container("x", {"cpu": "1"})])
    elsewhere = pod("elsewhere", "n9", containers=[container("x", {"cpu": "1"})])
    unbound = pod("pending", None, containers=[container("x", {"cpu": "1"})])
    host_net = pod(
        "hostnet", "n1", hostNetwork=True, containers=[container(ports=[{"containerPort": 9100}])]
    )
    pods = [task_pod, other, done, failed, elsewhere, unbound, host_net]
    [instance] = instances_from_cluster([k8s_node("n1")], pods, group_label)
    assert instance.remaining_cpu_millicores == 2000 - 250 - 100 - 50
    assert instance.remaining_memory_mib == 4096 - 256 - 64
    assert instance.used_ports_tcp == {8080, 9100}
    assert instance.used_ports_udp == {53}
    assert instance.running_tasks_count == 1
    assert dict(instance.group_counts) == {GROUP: 1}


def test_task_groups_are_a_clusters_own_and_resources_the_nodes() -> None:
    """A namespace is an ECS cluster: `web` of another namespace takes the node's CPU and ports
    but is not in this cluster's group, so it neither repels a spread nor a distinctInstance."""
    nodes = [k8s_node("n1"), k8s_node("n2")]
    nodes[1]["metadata"]["labels"]["topology.kubernetes.io/zone"] = "zone-b"
    others = []
    for index in range(3):  # three tasks of `web` in namespace `other`, all in zone-b
        other = pod(f"web-{index}", "n2", containers=[container("app", {"cpu": "100m"})])
        other["metadata"].update(namespace="other", annotations={"group": GROUP})
        others.append(other)
    instances = instances_from_cluster(nodes, others, group_label)
    n2 = instances[1]
    assert (n2.running_tasks_count, dict(n2.group_counts)) == (3, {GROUP: 3})  # every namespace
    mine = [instance.in_cluster("mine") for instance in instances]
    assert (mine[1].running_tasks_count, dict(mine[1].group_counts)) == (0, {})
    assert mine[1].remaining_cpu_millicores == 2000 - 300  # the node's CPU is shared
    assert dict(instances[1].in_cluster("other").group_counts) == {GROUP: 3}
    # Two tasks of `web` in `mine` spread over both zones; counted cluster-wide, both would
    # have gone to zone-a, and AZ rebalancing would move one once `other` is gone.
    results = place_many([task(strategies=SERVICE_DEFAULT_STRATEGIES)] * 2, mine, random.Random(1))
    assert sorted(r.instance for r in results if isinstance(r, Placement)) == ["n1", "n2"]
    distinct = task(constraints=[PlacementConstraint(type="distinctInstance")])
    assert isinstance(place(distinct, mine[1:], random.Random(1)), Placement)


def test_pod_requests_follow_the_kubernetes_scheduler() -> None:
    def cpu_of(**spec: Any) -> int:
        [instance] = instances_from_cluster([k8s_node("n1")], [pod("p", "n1", **spec)], group_label)
        return 2000 - instance.remaining_cpu_millicores

    app = [container("app", {"cpu": "300m"}), container("side", {"cpu": "200m"})]
    assert cpu_of(containers=app) == 500
    # A big init container runs alone: the peak wins.
    assert cpu_of(containers=app, initContainers=[container("init", {"cpu": "800m"})]) == 800
    assert cpu_of(containers=app, initContainers=[container("init", {"cpu": "100m"})]) == 500
    # A sidecar (restartPolicy Always) runs beside later init containers and the app.
    sidecar = container("proxy", {"cpu": "100m"}, restartPolicy="Always")
    late_init = container("migrate", {"cpu": "700m"})
    assert cpu_of(containers=app, initContainers=[sidecar, late_init]) == 800
    assert cpu_of(containers=app, initContainers=[late_init, sidecar]) == 700
    assert cpu_of(containers=app, initContainers=[sidecar]) == 600
    assert cpu_of(containers=app, overhead={"cpu": "10m"}) == 510


def test_malformed_quantities_and_timestamps_name_the_object_and_field() -> None:
    bad_pod = pod("p", "n1", containers=[container("app", {"cpu": "lots"})])
    with pytest.raises(ValueError, match=r"pod default/p container 'app' requests\.cpu: invalid"):
        instances_from_cluster([k8s_node("n1")], [bad_pod], group_label)
    bad_node = k8s_node("n1", status={"allocatable": {"memory": "big"}})
    with pytest.raises(ValueError, match=r"node 'n1' status\.allocatable\.memory: invalid"):
        instances_from_cluster([bad_node], [], group_label)
    bad_time = k8s_node("n1")
    bad_time["metadata"]["creationTimestamp"] = "yesterday"
    with pytest.raises(ValueError, match=r"node 'n1' metadata\.creationTimestamp: 'yesterday'"):
        instances_from_cluster([bad_time], [], group_label)


def test_cluster_instances_feed_placement() -> None:
    nodes = [k8s_node("n1"), k8s_node("n2")]
    nodes[1]["metadata"]["labels"]["topology.kubernetes.io/zone"] = "zone-b"
    running = pod("t", "n1", containers=[container("app", {"cpu": "1", "memory": "1Gi"})])
    running["metadata"]["annotations"] = {"group": GROUP}
    instances = instances_from_cluster(nodes, [running], group_label)
    requirements = task(strategies=SERVICE_DEFAULT_STRATEGIES)
    assert choices(requirements, instances) == {"n2"}


# -- models ---------------------------------------------------------------------------------------


def test_models_accept_ecs_json() -> None:
    constraint = PlacementConstraint.model_validate(
        {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t2.*"}
    )
    assert constraint.expression == "attribute:ecs.instance-type =~ t2.*"
    strategy = PlacementStrategy.model_validate({"type": "spread", "field": "host"})
    assert strategy.model_dump(by_alias=True, exclude_none=True) == {
        "type": "spread",
        "field": "host",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "memberOf"}, "a memberOf constraint requires an expression"),
        ({"type": "distinctInstance", "expression": "x"}, "takes no expression"),
        ({"type": "memberOf", "expression": "x" * 2001}, "at most 2000 characters"),
        ({"type": "sameZone"}, "'distinctInstance' or 'memberOf'"),
        ({"type": "distinctInstance", "extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_constraint_model_rejects(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PlacementConstraint.model_validate(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "random", "field": "cpu"}, "a random strategy takes no field"),
        ({"type": "binpack"}, "a binpack strategy requires field cpu or memory"),
        ({"type": "binpack", "field": "disk"}, "a binpack strategy requires field cpu or memory"),
        ({"type": "spread"}, "a spread strategy requires field instanceId, host or attribute"),
        ({"type": "spread", "field": "zone"}, "a spread strategy requires field"),
        ({"type": "spread", "field": "attribute:"}, "a spread strategy requires field"),
        ({"type": "pack"}, "'random', 'spread' or 'binpack'"),
    ],
)
def test_strategy_model_rejects(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PlacementStrategy.model_validate(body)


STRATEGY_BODIES = [
    {"type": "random"},
    {"type": "random", "field": "memory"},
    {"type": "binpack", "field": "cpu"},
    {"type": "binpack", "field": "memory"},
    {"type": "binpack", "field": "instanceId"},
    {"type": "binpack"},
    {"type": "spread", "field": "instanceId"},
    {"type": "spread", "field": "host"},
    {"type": "spread", "field": "attribute:ecs.availability-zone"},
    {"type": "spread", "field": "attribute:"},
    {"type": "spread", "field": "cpu"},
    {"type": "spread"},
]
CONSTRAINT_BODIES = [
    {"type": "distinctInstance"},
    {"type": "distinctInstance", "expression": "x"},
    {"type": "memberOf", "expression": "x"},
    {"type": "memberOf"},
    {"type": "memberOf", "expression": "(" * 32 + "agentConnected == true" + ")" * 32},
    {"type": "memberOf", "expression": "(" * 33 + "agentConnected == true" + ")" * 33},
    {"type": "memberOf", "expression": "a =~ (x|y) or (b == (c)) " + "(" * 30},
]


@pytest.mark.parametrize(
    ("model", "rules", "body"),
    [(PlacementStrategy, STRATEGY_RULES, body) for body in STRATEGY_BODIES]
    + [(PlacementConstraint, CONSTRAINT_RULES, body) for body in CONSTRAINT_BODIES],
)
def test_cel_rules_and_the_pydantic_validator_agree(
    model: type[PlacementStrategy | PlacementConstraint],
    rules: tuple[dict[str, str], ...],
    body: dict[str, Any],
) -> None:
    failed = [
        rule["message"]
        for rule in rules
        if not CelProgram(rule["rule"]).evaluate({"self": json_to_cel(body)})
    ]
    schema_rules = model.model_json_schema()["x-kubernetes-validations"]
    assert schema_rules == [dict(rule) for rule in rules]
    try:
        model.model_validate(body)
    except ValidationError as error:
        assert len(failed) == 1
        assert failed[0] in str(error)
    else:
        assert failed == []


# -- runtimePlatform and GPUs ---------------------------------------------------------------------

ARM64_LINUX = {"ecs.os-type": "linux", "ecs.cpu-architecture": "arm64"}
AMD64_LINUX = {"ecs.os-type": "linux", "ecs.cpu-architecture": "x86_64"}


def test_runtime_platform_maps_to_node_labels() -> None:
    assert platform_node_labels("LINUX", "ARM64") == {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "arm64",
    }
    assert platform_node_labels("WINDOWS_SERVER_2022_CORE", "X86_64") == {
        "kubernetes.io/os": "windows",
        "node.kubernetes.io/windows-build": "10.0.20348",
        "kubernetes.io/arch": "amd64",
    }
    assert platform_node_labels(None, None) == {}
    assert operating_system("WINDOWS_SERVER_") is None
    assert operating_system("MACOS") is None
    # ECS accepts no CORE edition of 2016 and no version it does not list.
    assert operating_system("WINDOWS_SERVER_2016_CORE") is None
    assert operating_system("WINDOWS_SERVER_2030_CORE") is None


@pytest.mark.parametrize(
    ("family", "build"),
    [
        ("WINDOWS_SERVER_2016_FULL", "10.0.14393"),
        ("WINDOWS_SERVER_2019_FULL", "10.0.17763"),
        ("WINDOWS_SERVER_2019_CORE", "10.0.17763"),
        ("WINDOWS_SERVER_2004_CORE", "10.0.19041"),
        ("WINDOWS_SERVER_20H2_CORE", "10.0.19042"),
        ("WINDOWS_SERVER_2022_FULL", "10.0.20348"),
        ("WINDOWS_SERVER_2022_CORE", "10.0.20348"),
        ("WINDOWS_SERVER_2025_FULL", "10.0.26100"),
        ("WINDOWS_SERVER_2025_CORE", "10.0.26100"),
    ],
)
def test_each_ecs_windows_family_requires_windows_of_its_build(family: str, build: str) -> None:
    assert platform_node_labels(family, None) == {
        "kubernetes.io/os": "windows",
        "node.kubernetes.io/windows-build": build,
    }


WINDOWS_2019 = {"ecs.os-type": "windows", "ecs.windows-build": "10.0.17763"}
WINDOWS_2022 = {"ecs.os-type": "windows", "ecs.windows-build": "10.0.20348"}


def test_a_windows_task_goes_only_to_a_windows_node_of_its_build() -> None:
    server_2022 = task(node_labels=platform_node_labels("WINDOWS_SERVER_2022_FULL", None))
    instances = [
        node("linux", attributes=AMD64_LINUX),
        node("ltsc2019", attributes=WINDOWS_2019),
        node("ltsc2022", attributes=WINDOWS_2022),
    ]
    assert choices(server_2022, instances) == {"ltsc2022"}

    result = failure(place(server_2022, instances[:2], random.Random(0)))
    assert (result.reason, result.closest) == (REASON_ATTRIBUTE, "linux")
    assert result.detail == "is missing an attribute required by your task"


def test_a_task_needing_arm64_goes_only_to_an_arm64_node() -> None:
    arm = task(node_labels=platform_node_labels("LINUX", "ARM64"))
    instances = [node("amd", attributes=AMD64_LINUX), node("arm", attributes=ARM64_LINUX)]
    assert choices(arm, instances) == {"arm"}


def test_no_node_of_the_task_platform_fails_with_attribute() -> None:
    arm = task(node_labels=platform_node_labels(None, "ARM64"))
    instances = [
        node("amd-full", cpu=0, attributes=AMD64_LINUX),
        node("amd", attributes=AMD64_LINUX),
        node("down", ready=False, attributes=ARM64_LINUX),
    ]
    result = failure(place(arm, instances, random.Random(0)))
    assert result.reason == REASON_ATTRIBUTE
    assert result.closest == "amd"  # both lack the attribute: the first by name
    assert result.detail == "is missing an attribute required by your task"


def test_an_arm64_node_short_of_memory_is_closer_than_an_amd64_one() -> None:
    arm = task(node_labels=platform_node_labels("LINUX", "ARM64"))
    instances = [node("amd", attributes=AMD64_LINUX), node("arm", memory=1, attributes=ARM64_LINUX)]
    result = failure(place(arm, instances, random.Random(0)))
    assert (result.reason, result.closest) == (REASON_MEMORY, "arm")


def test_gpus_are_a_resource_and_fail_with_resource_gpu() -> None:
    two = task(gpus=2)
    instances = [node("none"), node("one", remaining_gpus=1), node("two", remaining_gpus=2)]
    assert choices(two, instances) == {"two"}
    result = failure(place(two, instances[:2], random.Random(0)))
    assert (result.reason, result.closest) == (REASON_GPU, "one")
    assert result.detail == "has insufficient GPU units available"
    [first, second] = place_many([task(gpus=1), task(gpus=1)], [instances[1]], random.Random(0))
    assert chosen(first) == "one"
    assert failure(second).reason == REASON_GPU


def test_node_gpus_are_allocatable_minus_what_pods_request() -> None:
    gpu_node = k8s_node("g1")
    gpu_node["status"]["allocatable"]["nvidia.com/gpu"] = "4"
    training = pod(
        "train",
        "g1",
        containers=[container("a", limits={"nvidia.com/gpu": "1"})],
        initContainers=[
            {**container("s", {"nvidia.com/gpu": "1"}), "restartPolicy": "Always"},
        ],
    )
    [instance] = instances_from_cluster([gpu_node], [training], group_label)
    assert instance.remaining_gpus == 2
    [plain] = instances_from_cluster([k8s_node("n1")], [], group_label)
    assert plain.remaining_gpus == 0
