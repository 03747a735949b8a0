"""Properties of placement that must hold for any cluster (hypothesis)."""

import random
from collections import Counter, defaultdict
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from ecs_operator.core.placement import (
    SERVICE_DEFAULT_STRATEGIES,
    ContainerInstance,
    Placement,
    PlacementFailure,
    TaskRequirements,
    place,
    place_many,
    platform_node_labels,
)
from ecs_operator.core.quantity import cpu_units_to_millicores
from ecs_operator.models.placement import PlacementConstraint, PlacementStrategy

ZONES = ("zone-a", "zone-b", "zone-c")
GROUPS = ("service:web", "service:db", "family:batch")
PORTS = (53, 80, 443)
EXPRESSIONS = (
    "attribute:ecs.availability-zone in [zone-a, zone-b]",
    "attribute:ecs.availability-zone != zone-c and runningTasksCount < 3",
    "not(task:group == service:db)",
    "attribute:ecs.instance-type =~ m5\\..*",
    "task:group == service:web or attribute:ecs.instance-type == c6g.large",
)
STRATEGIES = (
    PlacementStrategy(type="random"),
    PlacementStrategy(type="spread", field="instanceId"),
    PlacementStrategy(type="spread", field="attribute:ecs.availability-zone"),
    PlacementStrategy(type="spread", field="attribute:ecs.instance-type"),
    PlacementStrategy(type="binpack", field="cpu"),
    PlacementStrategy(type="binpack", field="memory"),
)
PLATFORMS = (
    {"ecs.os-type": "linux", "ecs.cpu-architecture": "x86_64"},
    {"ecs.os-type": "linux", "ecs.cpu-architecture": "arm64"},
    {"ecs.os-type": "windows", "ecs.cpu-architecture": "x86_64", "ecs.windows-build": "10.0.20348"},
    {"ecs.os-type": "windows", "ecs.cpu-architecture": "x86_64", "ecs.windows-build": "10.0.17763"},
)
SETTINGS = settings(max_examples=100, deadline=None)

ports = st.frozensets(st.sampled_from(PORTS), max_size=2)


@st.composite
def instances(draw: st.DrawFn, *, healthy: bool = False) -> list[ContainerInstance]:
    count = draw(st.integers(min_value=1, max_value=10))
    result = []
    for index in range(count):
        zone = draw(st.sampled_from(ZONES))
        groups = draw(st.dictionaries(st.sampled_from(GROUPS), st.integers(1, 3), max_size=2))
        result.append(
            ContainerInstance(
                name=f"node-{index}",
                zone=zone,
                attributes={
                    "ecs.availability-zone": zone,
                    "ecs.instance-type": draw(st.sampled_from(("m5.large", "c6g.large"))),
                    **draw(st.sampled_from(PLATFORMS)),
                },
                registered_cpu_millicores=4000,
                remaining_cpu_millicores=draw(st.integers(0, 4000)),
                registered_memory_mib=8192,
                remaining_memory_mib=draw(st.integers(0, 8192)),
                remaining_gpus=draw(st.integers(0, 2)),
                used_ports_tcp=draw(ports),
                used_ports_udp=draw(ports),
                ready=healthy or draw(st.booleans()),
                schedulable=healthy or draw(st.booleans()),
                blocking_taints=() if healthy or draw(st.booleans()) else ("x:NoSchedule",),
                running_tasks_count=sum(groups.values()),
                group_counts=groups,
            )
        )
    return result


@st.composite
def tasks(draw: st.DrawFn) -> TaskRequirements:
    constraints = [
        PlacementConstraint(type="memberOf", expression=expression)
        for expression in draw(st.lists(st.sampled_from(EXPRESSIONS), max_size=2))
    ]
    if draw(st.booleans()):
        constraints.append(PlacementConstraint(type="distinctInstance"))
    return TaskRequirements.create(
        cpu_units=draw(st.integers(0, 2048)),
        memory_mib=draw(st.integers(0, 4096)),
        group=draw(st.sampled_from(GROUPS)),
        host_ports_tcp=draw(ports),
        host_ports_udp=draw(ports),
        constraints=constraints,
        strategies=draw(st.lists(st.sampled_from(STRATEGIES), max_size=3)),
        gpus=draw(st.sampled_from((0, 0, 1, 2))),
        node_labels=platform_node_labels(
            draw(st.sampled_from((None, "LINUX", "WINDOWS_SERVER_2022_CORE"))),
            draw(st.sampled_from((None, "X86_64", "ARM64"))),
        ),
    )


def fits(task: TaskRequirements, instance: ContainerInstance) -> bool:
    """Every binding rule, written out independently of the implementation."""
    return (
        instance.ready
        and instance.schedulable
        and not instance.blocking_taints
        and cpu_units_to_millicores(task.cpu_units) <= instance.remaining_cpu_millicores
        and task.memory_mib <= instance.remaining_memory_mib
        and task.gpus <= instance.remaining_gpus
        and all(instance.attributes.get(name) == value for name, value in task.required_attributes)
        and not task.host_ports_tcp & instance.used_ports_tcp
        and not task.host_ports_udp & instance.used_ports_udp
        and all(e.matches(instance, instance.group_counts) for e in task.member_of)
        and not (task.distinct_instance and instance.group_counts.get(task.group, 0) > 0)
    )


@SETTINGS
@given(instances(), tasks(), st.integers())
def test_place_picks_a_fitting_node_exactly_when_one_exists(
    cluster: list[ContainerInstance], task: TaskRequirements, seed: int
) -> None:
    result = place(task, cluster, random.Random(seed))
    by_name = {instance.name: instance for instance in cluster}
    if isinstance(result, Placement):
        assert fits(task, by_name[result.instance])
    else:
        assert not any(fits(task, instance) for instance in cluster)
        assert result.closest in by_name


@SETTINGS
@given(instances(), st.lists(tasks(), min_size=1, max_size=8), st.integers())
def test_place_many_never_exceeds_capacity_or_reuses_ports(
    cluster: list[ContainerInstance], batch: list[TaskRequirements], seed: int
) -> None:
    results = place_many(batch, cluster, random.Random(seed))
    by_name = {instance.name: instance for instance in cluster}
    cpu: Counter[str] = Counter()
    memory: Counter[str] = Counter()
    gpus: Counter[str] = Counter()
    tcp: defaultdict[str, set[int]] = defaultdict(set)
    udp: defaultdict[str, set[int]] = defaultdict(set)
    groups: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for task, result in zip(batch, results, strict=True):
        if not isinstance(result, Placement):
            continue
        name = result.instance
        instance = by_name[name]
        assert instance.ready and instance.schedulable and not instance.blocking_taints
        cpu[name] += cpu_units_to_millicores(task.cpu_units)
        memory[name] += task.memory_mib
        gpus[name] += task.gpus
        assert all(instance.attributes.get(k) == v for k, v in task.required_attributes)
        assert not task.host_ports_tcp & (instance.used_ports_tcp | tcp[name])
        assert not task.host_ports_udp & (instance.used_ports_udp | udp[name])
        tcp[name] |= task.host_ports_tcp
        udp[name] |= task.host_ports_udp
        # The node as this task saw it: with the tasks placed on it earlier in the batch.
        counts = Counter(instance.group_counts) + groups[name]
        seen = replace(
            instance,
            running_tasks_count=instance.running_tasks_count + groups[name].total(),
            group_counts=counts,
        )
        assert all(e.matches(seen, seen.group_counts) for e in task.member_of)
        assert not (task.distinct_instance and counts[task.group])
        groups[name][task.group] += 1
    for name, used in cpu.items():
        assert used <= by_name[name].remaining_cpu_millicores
    for name, used in memory.items():
        assert used <= by_name[name].remaining_memory_mib
    for name, used in gpus.items():
        assert used <= by_name[name].remaining_gpus


@SETTINGS
@given(instances(healthy=True), st.integers(1, 30), st.integers())
def test_spread_over_zones_stays_balanced(
    cluster: list[ContainerInstance], count: int, seed: int
) -> None:
    roomy = [
        replace(i, remaining_cpu_millicores=10**6, remaining_memory_mib=10**6, group_counts={})
        for i in cluster
    ]
    for strategies in ((STRATEGIES[2],), SERVICE_DEFAULT_STRATEGIES):
        task = TaskRequirements.create(
            cpu_units=256, memory_mib=256, group="service:web", strategies=strategies
        )
        results = place_many([task] * count, roomy, random.Random(seed))
        zone_of = {i.name: i.zone for i in roomy}
        per_zone = Counter({zone: 0 for zone in zone_of.values()})
        per_node = Counter({name: 0 for name in zone_of})
        for result in results:
            assert isinstance(result, Placement)
            per_zone[zone_of[result.instance]] += 1
            per_node[result.instance] += 1
        assert max(per_zone.values()) - min(per_zone.values()) <= 1
        if strategies == SERVICE_DEFAULT_STRATEGIES:
            for zone in per_zone:
                in_zone = [n for name, n in per_node.items() if zone_of[name] == zone]
                assert max(in_zone) - min(in_zone) <= 1


@SETTINGS
@given(instances(), tasks(), st.sampled_from(("cpu", "memory")), st.integers())
def test_binpack_chooses_the_least_remaining_among_fits(
    cluster: list[ContainerInstance], task: TaskRequirements, field: str, seed: int
) -> None:
    binpack = replace(task, strategies=(PlacementStrategy(type="binpack", field=field),))
    result = place(binpack, cluster, random.Random(seed))

    def remaining(instance: ContainerInstance) -> int:
        if field == "cpu":
            return instance.remaining_cpu_millicores
        return instance.remaining_memory_mib

    candidates = [instance for instance in cluster if fits(binpack, instance)]
    if not candidates:
        assert isinstance(result, PlacementFailure)
        return
    assert isinstance(result, Placement)
    chosen = next(i for i in cluster if i.name == result.instance)
    assert remaining(chosen) == min(remaining(i) for i in candidates)


@SETTINGS
@given(instances(), st.lists(tasks(), min_size=1, max_size=6), st.integers())
def test_same_seed_same_placements(
    cluster: list[ContainerInstance], batch: list[TaskRequirements], seed: int
) -> None:
    first = place_many(batch, cluster, random.Random(seed))
    assert place_many(batch, cluster, random.Random(seed)) == first
