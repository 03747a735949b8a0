"""ECS task placement over Kubernetes nodes (ECS Developer Guide, "Amazon ECS task placement").

A Node is a container instance. ``place`` follows the ECS order:

1. **Agent filter**: only nodes that are Ready (``agentConnected``), schedulable (not cordoned,
   the analogue of an ECS DRAINING instance) and free of ``NoSchedule``/``NoExecute`` taints
   (tasks carry no tolerations yet).
2. **Attribute filter**: the node's ``ecs.os-type`` and ``ecs.cpu-architecture`` (its
   ``kubernetes.io/os`` and ``kubernetes.io/arch`` labels), and for a Windows family
   ``ecs.windows-build`` (its ``node.kubernetes.io/windows-build`` label), are the ones the task
   definition's ``runtimePlatform`` requires (ECS's ``requiresAttributes``; reason
   ``ATTRIBUTE``).
3. **Resource filter**: remaining CPU, then memory, then GPUs (allocatable ``nvidia.com/gpu``),
   then free TCP host ports, then UDP ports.
4. **Constraint filter**: every ``memberOf`` expression, then ``distinctInstance`` (no other task
   of the same group on the node, counting tasks already running and earlier ones of the batch).
5. **Strategies** in list order, each a sort key whose best value narrows the candidates (the
   first strategy is the primary key, later ones break its ties): ``spread(instanceId|host)``
   fewest tasks of the group on the node, ``spread(attribute:NAME)`` fewest tasks of the group
   among all nodes sharing the node's value (nodes lacking the attribute share one value),
   ``binpack(cpu|memory)`` least remaining. ``random`` ends the chain (later strategies would have
   nothing to rank). A tie that remains is broken with the caller's ``random.Random``. No
   strategy means ``random`` (ECS leaves the standalone default undocumented);
   ``SERVICE_DEFAULT_STRATEGIES`` is the Service default (AZ balance, then per node).
   The spread strategies count the tasks of the task's ``group``, unless the caller names
   another group in ``spread_over``, whose tasks it counted in the nodes' ``spread_counts`` (a
   BLUE_GREEN, LINEAR or CANARY revision spreads over its own tasks: ``core.deployments``);
   ``distinctInstance`` and ``memberOf`` always read the groups of the node's tasks.

When no node passes, the failure names the **closest** node: the one that passed the most of
the filters above, in that order (a node of the wrong OS or CPU architecture is the farthest
after an unavailable one, a node with too little memory is closer than one with too little CPU,
a node failing only ``distinctInstance`` is the closest of all). Among equals the
one nearest to passing wins (most CPU remaining for ``RESOURCE:CPU``, most memory for
``RESOURCE:MEMORY``, most GPUs for ``RESOURCE:GPU``, most ``memberOf`` expressions
satisfied), then the first by name. The ``reason`` is the ECS ``failures[].reason`` of the
closest node's first failed check.

Decisions for Kubernetes:

- A Windows ``operatingSystemFamily`` is matched by the host build, not ECS's ``ecs.os-family``:
  a node tells only its build (the kubelet's ``node.kubernetes.io/windows-build`` label, node
  attribute ``ecs.windows-build``), so the FULL and CORE families of one version run on the
  same nodes.
- GPUs are counted like CPU and memory: a node's allocatable ``nvidia.com/gpu`` (the NVIDIA
  device plugin's extended resource) minus what its Pods request.
- CPU is accounted in millicores, exactly as Pods request it (an ECS task's units are converted
  rounded up, 1024 units = 1000m); ECS units are derived for display. Memory is whole MiB
  (a node's allocatable bytes rounded down).
- Remaining = allocatable - the requests of every Pod bound to the node that has not terminated
  (phase not Succeeded/Failed), ECS task or not, computed the way the Kubernetes scheduler does
  (init containers' peak vs the containers' sum, sidecars included, plus Pod overhead; a missing
  request falls back to the limit, as the API server defaults it).
- No host ports are reserved up front: ECS's default reservations (22, 2375, 2376, 51678, 51679)
  belong to the EC2 host and its agent, which a node does not run. Ports used by any Pod's
  ``hostPort`` (or ``containerPort`` under ``hostNetwork``) are taken; SCTP ports are ignored.
- ``runningTasksCount`` and group counts include only Pods that are ECS tasks (``group_of_pod``
  returns a group); other Pods only consume resources and ports.
- A namespace is an ECS cluster, and the nodes serve every namespace: resources and ports are
  the node's, shared by all, but task groups and ``runningTasksCount`` are a cluster's
  (``ContainerInstance.in_cluster``). Service ``web`` of one namespace neither spreads away
  from, nor is kept ``distinctInstance`` from, the tasks of ``web`` in another.
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from ecs_operator.core.quantity import (
    bytes_to_mib,
    cpu_millicores,
    cpu_units_to_millicores,
    memory_bytes,
    millicores_to_cpu_units,
    whole_count,
)
from ecs_operator.core.query import Expression, QueryError, parse_expression
from ecs_operator.models.placement import PlacementConstraint, PlacementStrategy

ZONE_LABEL: Final = "topology.kubernetes.io/zone"
INSTANCE_TYPE_LABEL: Final = "node.kubernetes.io/instance-type"
ARCHITECTURE_LABEL: Final = "kubernetes.io/arch"
OS_LABEL: Final = "kubernetes.io/os"
WINDOWS_BUILD_LABEL: Final = "node.kubernetes.io/windows-build"
GPU_RESOURCE: Final = "nvidia.com/gpu"
OS_TYPE_ATTRIBUTE: Final = "ecs.os-type"
ARCHITECTURE_ATTRIBUTE: Final = "ecs.cpu-architecture"
WINDOWS_BUILD_ATTRIBUTE: Final = "ecs.windows-build"
CUSTOM_ATTRIBUTE_LABEL_PREFIX: Final = "attribute.ecs.operator.dev/"
ZONE_ATTRIBUTE: Final = "ecs.availability-zone"
_ARCHITECTURES: Final = {"amd64": "x86_64", "arm64": "arm64"}
_BLOCKING_TAINT_EFFECTS: Final = ("NoSchedule", "NoExecute")
TERMINATED_PHASES: Final = ("Succeeded", "Failed")
"""Pod phases of a Pod that holds nothing of its node any more."""

REASON_AGENT: Final = "AGENT"
REASON_ATTRIBUTE: Final = "ATTRIBUTE"
REASON_GPU: Final = "RESOURCE:GPU"
REASON_CPU: Final = "RESOURCE:CPU"
REASON_MEMORY: Final = "RESOURCE:MEMORY"
REASON_PORTS_TCP: Final = "RESOURCE:PORTS_TCP"
REASON_PORTS_UDP: Final = "RESOURCE:PORTS_UDP"
REASON_MEMBER_OF: Final = "MemberOf placement constraint unsatisfied."
REASON_DISTINCT_INSTANCE: Final = "DistinctInstance placement constraint unsatisfied."
REASON_NO_ACTIVE_INSTANCES: Final = "NO ACTIVE INSTANCES"

SERVICE_DEFAULT_STRATEGIES: Final = (
    PlacementStrategy(type="spread", field=f"attribute:{ZONE_ATTRIBUTE}"),
    PlacementStrategy(type="spread", field="instanceId"),
)
"""A Service without ``placementStrategy``: fewest of its tasks in the node's zone, then on the
node (ECS's AZ-balanced default). Pass it to ``place``/``place_many``/``choose_tasks_to_stop``."""

_LINUX_FAMILY: Final = "LINUX"
WINDOWS_FAMILY_BUILDS: Final = {
    "WINDOWS_SERVER_2016_FULL": "10.0.14393",
    "WINDOWS_SERVER_2019_FULL": "10.0.17763",
    "WINDOWS_SERVER_2019_CORE": "10.0.17763",
    "WINDOWS_SERVER_2004_CORE": "10.0.19041",
    "WINDOWS_SERVER_20H2_CORE": "10.0.19042",
    "WINDOWS_SERVER_2022_FULL": "10.0.20348",
    "WINDOWS_SERVER_2022_CORE": "10.0.20348",
    "WINDOWS_SERVER_2025_FULL": "10.0.26100",
    "WINDOWS_SERVER_2025_CORE": "10.0.26100",
}
"""Every Windows ``operatingSystemFamily`` ECS accepts, with the build of its host as the
kubelet labels it (``node.kubernetes.io/windows-build``, ``major.minor.build``). Process-isolated
Windows containers need a host of their own build; FULL and CORE differ only in the base image."""
_PLATFORM_ARCHITECTURES: Final = {"X86_64": "amd64", "ARM64": "arm64"}


def operating_system(family: str) -> str | None:
    """The ``kubernetes.io/os`` of an ECS ``operatingSystemFamily`` (``LINUX`` -> linux,
    ``WINDOWS_SERVER_2022_CORE`` and the other Windows families -> windows); None for a value
    ECS does not know."""
    if family == _LINUX_FAMILY:
        return "linux"
    if family in WINDOWS_FAMILY_BUILDS:
        return "windows"
    return None


def platform_node_labels(
    operating_system_family: str | None, cpu_architecture: str | None
) -> dict[str, str]:
    """The node labels a task definition's ``runtimePlatform`` requires: ``kubernetes.io/os``,
    for Windows also ``node.kubernetes.io/windows-build`` (``WINDOWS_FAMILY_BUILDS``), and
    ``kubernetes.io/arch`` (``X86_64`` -> amd64, ``ARM64`` -> arm64). An OS family ECS does not
    know requires nothing here: rendering refuses it, naming the field."""
    required: dict[str, str] = {}
    os_label = operating_system(operating_system_family) if operating_system_family else None
    if os_label is not None:
        required[OS_LABEL] = os_label
    if operating_system_family in WINDOWS_FAMILY_BUILDS:
        required[WINDOWS_BUILD_LABEL] = WINDOWS_FAMILY_BUILDS[operating_system_family]
    if cpu_architecture in _PLATFORM_ARCHITECTURES:
        required[ARCHITECTURE_LABEL] = _PLATFORM_ARCHITECTURES[cpu_architecture]
    return required


@dataclass(frozen=True, slots=True)
class ContainerInstance:
    """A node as an ECS container instance; build them with ``instances_from_cluster``."""

    name: str
    zone: str | None
    attributes: Mapping[str, str]
    registered_cpu_millicores: int
    remaining_cpu_millicores: int
    registered_memory_mib: int
    remaining_memory_mib: int
    remaining_gpus: int = 0
    used_ports_tcp: frozenset[int] = frozenset()
    used_ports_udp: frozenset[int] = frozenset()
    ready: bool = True
    schedulable: bool = True
    blocking_taints: tuple[str, ...] = ()
    """``key=value:Effect`` of each NoSchedule/NoExecute taint."""
    running_tasks_count: int = 0
    group_counts: Mapping[str, int] = field(default_factory=dict)
    """Tasks on the node per task group (``service:NAME``, ``family:NAME`` or a custom group),
    of one cluster after ``in_cluster``, else of every namespace."""
    clusters: Mapping[str, tuple[int, Mapping[str, int]]] = field(default_factory=dict)
    """Per namespace (ECS cluster): its tasks on the node and their counts per group."""
    spread_counts: Mapping[str, int] = field(default_factory=dict)
    """Tasks on the node of groups no Pod names, which only the spread strategies count
    (``TaskRequirements.spread_over``), put there by ``with_spread_counts``."""
    registered_at: datetime | None = None
    agent_version: str = ""
    """The kubelet version without its leading ``v``."""

    @property
    def agent_connected(self) -> bool:
        return self.ready

    def in_cluster(self, namespace: str) -> ContainerInstance:
        """The node as the ECS cluster `namespace` sees it: its resources and ports, and only
        that cluster's tasks and groups."""
        tasks, groups = self.clusters.get(namespace, (0, {}))
        return replace(self, running_tasks_count=tasks, group_counts=groups)

    @property
    def status(self) -> str:
        """ECS instance status: a cordoned node is ``DRAINING``, any other ``ACTIVE``."""
        return "ACTIVE" if self.schedulable else "DRAINING"

    @property
    def registered_cpu_units(self) -> int:
        return millicores_to_cpu_units(self.registered_cpu_millicores)

    @property
    def remaining_cpu_units(self) -> int:
        return millicores_to_cpu_units(self.remaining_cpu_millicores)


@dataclass(frozen=True, slots=True)
class TaskRequirements:
    """What one task needs of a node; build it once (``create`` parses the expressions)."""

    cpu_units: int
    memory_mib: int
    group: str
    host_ports_tcp: frozenset[int] = frozenset()
    host_ports_udp: frozenset[int] = frozenset()
    member_of: tuple[Expression, ...] = ()
    distinct_instance: bool = False
    strategies: tuple[PlacementStrategy, ...] = ()
    gpus: int = 0
    required_attributes: tuple[tuple[str, str], ...] = ()
    """(attribute, value) pairs a node must have, e.g. ``("ecs.cpu-architecture", "arm64")``."""
    spread_over: str | None = None
    """The group whose tasks the spread strategies count, when not ``group``: a group no Pod
    names, whose counts the caller puts on the nodes (``with_spread_counts``)."""

    @classmethod
    def create(
        cls,
        *,
        cpu_units: int,
        memory_mib: int,
        group: str,
        host_ports_tcp: Iterable[int] = (),
        host_ports_udp: Iterable[int] = (),
        constraints: Iterable[PlacementConstraint] = (),
        strategies: Iterable[PlacementStrategy] = (),
        gpus: int = 0,
        node_labels: Mapping[str, str] | None = None,
        spread_over: str | None = None,
    ) -> TaskRequirements:
        """``node_labels``: the labels a node must carry (``platform_node_labels``), checked as
        the ECS attributes they are; ``spread_over``: the group spread counts (default
        ``group``). Raises ``ValueError`` naming
        ``placementConstraints[i].expression`` if one is bad."""
        constraints = tuple(constraints)
        member_of = []
        for index, constraint in enumerate(constraints):
            if constraint.type == "memberOf" and constraint.expression is not None:
                try:
                    member_of.append(parse_expression(constraint.expression))
                except QueryError as error:
                    raise ValueError(
                        f"placementConstraints[{index}].expression: {error}"
                    ) from error
        return cls(
            cpu_units=cpu_units,
            memory_mib=memory_mib,
            group=group,
            host_ports_tcp=frozenset(host_ports_tcp),
            host_ports_udp=frozenset(host_ports_udp),
            member_of=tuple(member_of),
            distinct_instance=any(c.type == "distinctInstance" for c in constraints),
            strategies=tuple(strategies),
            gpus=gpus,
            required_attributes=tuple(sorted(_attributes(node_labels or {}).items())),
            spread_over=spread_over if spread_over != group else None,
        )

    @property
    def cpu_millicores(self) -> int:
        return cpu_units_to_millicores(self.cpu_units)


@dataclass(frozen=True, slots=True)
class Placement:
    """The task goes to node ``instance``."""

    instance: str


@dataclass(frozen=True, slots=True)
class PlacementFailure:
    """No node fits: ``reason`` as in RunTask ``failures[]``, the closest node and why it fails.

    ``detail`` completes "The closest matching container-instance NAME ...", e.g. "has
    insufficient memory available".
    """

    reason: str
    closest: str | None
    detail: str


PlacementResult = Placement | PlacementFailure


def place(
    task: TaskRequirements, instances: Sequence[ContainerInstance], rng: random.Random
) -> PlacementResult:
    """Choose a node for one task, or explain why none fits (see the module docstring)."""
    if not instances:
        return PlacementFailure(
            REASON_NO_ACTIVE_INSTANCES, None, "no container instances (nodes) in the cluster"
        )
    candidates = _candidates(task, instances)
    if not candidates:
        return _closest_failure(task, instances)
    for strategy in task.strategies:
        if len(candidates) == 1 or strategy.type == "random":
            break
        keys = _strategy_keys(strategy, task, candidates, instances)
        best = min(keys)
        candidates = [c for c, key in zip(candidates, keys, strict=True) if key == best]
    chosen = candidates[0] if len(candidates) == 1 else rng.choice(candidates)
    return Placement(chosen.name)


def place_many(
    tasks: Iterable[TaskRequirements], instances: Sequence[ContainerInstance], rng: random.Random
) -> list[PlacementResult]:
    """Place tasks one at a time, each seeing the resources, ports and groups of those before.

    A failed task reserves nothing; the tasks after it are still tried (ECS RunTask can place 2
    of 3).
    """
    current = list(instances)
    position = {instance.name: index for index, instance in enumerate(current)}
    results: list[PlacementResult] = []
    for task in tasks:
        result = place(task, current, rng)
        if isinstance(result, Placement):
            index = position[result.instance]
            current[index] = with_task(current[index], task)
        results.append(result)
    return results


def with_task(instance: ContainerInstance, task: TaskRequirements) -> ContainerInstance:
    """The node after it accepts ``task``: its resources, ports and group counts reserved."""
    groups = dict(instance.group_counts)
    groups[task.group] = groups.get(task.group, 0) + 1
    spread = instance.spread_counts
    if task.spread_over is not None:
        spread = {**spread, task.spread_over: spread.get(task.spread_over, 0) + 1}
    return replace(
        instance,
        remaining_cpu_millicores=instance.remaining_cpu_millicores - task.cpu_millicores,
        remaining_memory_mib=instance.remaining_memory_mib - task.memory_mib,
        remaining_gpus=instance.remaining_gpus - task.gpus,
        used_ports_tcp=instance.used_ports_tcp | task.host_ports_tcp,
        used_ports_udp=instance.used_ports_udp | task.host_ports_udp,
        running_tasks_count=instance.running_tasks_count + 1,
        group_counts=groups,
        spread_counts=spread,
    )


def with_spread_counts(
    instances: Iterable[ContainerInstance], group: str, counts: Mapping[str, int]
) -> list[ContainerInstance]:
    """``instances`` with ``counts`` (tasks per node name; a node not named has none) as their
    tasks of ``group``, a group no Pod names (``TaskRequirements.spread_over``), such as one
    deployment's tasks."""
    return [
        replace(
            instance,
            spread_counts={**instance.spread_counts, group: counts.get(instance.name, 0)},
        )
        for instance in instances
    ]


def choose_tasks_to_stop(
    tasks_by_instance: Mapping[str, Sequence[str]],
    instances: Sequence[ContainerInstance],
    count: int,
    strategies: Sequence[PlacementStrategy],
    rng: random.Random,
) -> list[str]:
    """Which of a service's tasks to stop on scale-in, in stop order (the placement mirror).

    ``tasks_by_instance`` maps a node name to the names of the service's tasks on it. Tasks on a
    node absent from ``instances`` (deleted, or not yet bound) go first. Then each strategy ranks
    the nodes that still hold tasks, in list order: ``spread`` stops where the most of the
    service's tasks share the node's value (zone, node), ``binpack`` where the most of the
    resource remains free (stopping only adds to it, so it keeps emptying one node), ``random``
    ends the chain. Remaining ties, and the task on the chosen node, are picked with ``rng``.
    With no strategy the choice is random; pass ``SERVICE_DEFAULT_STRATEGIES`` for the Service
    default (most tasks in the zone, then on the node).
    """
    known = {instance.name: instance for instance in instances}
    remaining = {name: list(tasks) for name, tasks in tasks_by_instance.items() if tasks}
    stopped: list[str] = []
    while remaining and len(stopped) < count:
        orphans = [name for name in remaining if name not in known]
        if orphans:
            candidates = orphans
        else:
            candidates = list(remaining)
            for strategy in strategies:
                if len(candidates) == 1 or strategy.type == "random":
                    break
                keys = _stop_keys(strategy, candidates, remaining, known)
                best = max(keys)
                candidates = [c for c, key in zip(candidates, keys, strict=True) if key == best]
        node = rng.choice(candidates)
        tasks = remaining[node]
        stopped.append(tasks.pop(rng.randrange(len(tasks))))
        if not tasks:
            del remaining[node]
    return stopped


class Footprints:
    """What each Pod takes of its node, remembered by Pod uid: a Pod's requests and ports never
    change once it exists, so placing task after task parses each Pod once, not every time."""

    def __init__(self, limit: int = 100_000) -> None:
        self._known: OrderedDict[str, Footprint] = OrderedDict()
        self._limit = limit

    def of(self, pod: Mapping[str, Any]) -> Footprint:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        known = self._known.get(uid) if uid else None
        if known is None:
            known = _footprint(pod)
            if uid:
                self._known[uid] = known
                if len(self._known) > self._limit:
                    self._known.popitem(last=False)
        return known


@dataclass(frozen=True, slots=True)
class Footprint:
    cpu_millicores: int
    memory_bytes: int
    ports_tcp: frozenset[int]
    ports_udp: frozenset[int]
    gpus: int = 0


def instances_from_cluster(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    group_of_pod: Callable[[Mapping[str, Any]], str | None],
    footprints: Footprints | None = None,
) -> list[ContainerInstance]:
    """Container instances from Kubernetes Node and Pod objects (dicts), in ``nodes`` order.

    ``group_of_pod`` returns the ECS task group of a Pod that is an ECS task, else None.
    ``footprints`` remembers Pods already seen (pass the same one to every call).
    Raises ``ValueError`` naming the object and field if a quantity or timestamp is malformed.
    """
    footprints = footprints or Footprints()
    usage: defaultdict[str, _Usage] = defaultdict(_Usage)
    for pod in pods:
        spec = pod.get("spec") or {}
        node_name = spec.get("nodeName")
        if not node_name or (pod.get("status") or {}).get("phase") in TERMINATED_PHASES:
            continue
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        usage[node_name].add(footprints.of(pod), namespace, group_of_pod(pod))
    return [_instance_from_node(node, usage.get(_name(node)) or _Usage()) for node in nodes]


# -- filters --------------------------------------------------------------------------------------


def _candidates(
    task: TaskRequirements, instances: Sequence[ContainerInstance]
) -> list[ContainerInstance]:
    cpu = task.cpu_millicores
    memory = task.memory_mib
    found = [
        i
        for i in instances
        if i.ready
        and i.schedulable
        and not i.blocking_taints
        and i.remaining_cpu_millicores >= cpu
        and i.remaining_memory_mib >= memory
    ]
    # Each optional filter runs only when the task asks for it: placement is on the hot path.
    if task.gpus:
        found = [i for i in found if i.remaining_gpus >= task.gpus]
    if task.required_attributes:
        found = [i for i in found if _has_attributes(task, i)]
    if task.host_ports_tcp:
        found = [i for i in found if task.host_ports_tcp.isdisjoint(i.used_ports_tcp)]
    if task.host_ports_udp:
        found = [i for i in found if task.host_ports_udp.isdisjoint(i.used_ports_udp)]
    for expression in task.member_of:
        found = [i for i in found if expression.predicate(i, i.group_counts)]
    if task.distinct_instance:
        found = [i for i in found if not i.group_counts.get(task.group)]
    return found


def _has_attributes(task: TaskRequirements, instance: ContainerInstance) -> bool:
    return all(instance.attributes.get(name) == value for name, value in task.required_attributes)


# The filters in order; a failure's stage indexes _STAGE_REASONS.
_STAGE_AGENT: Final = 0
_STAGE_ATTRIBUTE: Final = 1
_STAGE_CPU: Final = 2
_STAGE_MEMORY: Final = 3
_STAGE_GPU: Final = 4
_STAGE_TCP: Final = 5
_STAGE_UDP: Final = 6
_STAGE_MEMBER_OF: Final = 7
_STAGE_DISTINCT: Final = 8
_STAGE_REASONS: Final = (
    REASON_AGENT,
    REASON_ATTRIBUTE,
    REASON_CPU,
    REASON_MEMORY,
    REASON_GPU,
    REASON_PORTS_TCP,
    REASON_PORTS_UDP,
    REASON_MEMBER_OF,
    REASON_DISTINCT_INSTANCE,
)


def _failed_stage(task: TaskRequirements, instance: ContainerInstance) -> int:
    """The first filter ``instance`` fails (the ``_STAGE_*`` order); len(stages) if none."""
    if not (instance.ready and instance.schedulable) or instance.blocking_taints:
        return _STAGE_AGENT
    if not _has_attributes(task, instance):
        return _STAGE_ATTRIBUTE
    if instance.remaining_cpu_millicores < task.cpu_millicores:
        return _STAGE_CPU
    if instance.remaining_memory_mib < task.memory_mib:
        return _STAGE_MEMORY
    if instance.remaining_gpus < task.gpus:
        return _STAGE_GPU
    if not task.host_ports_tcp.isdisjoint(instance.used_ports_tcp):
        return _STAGE_TCP
    if not task.host_ports_udp.isdisjoint(instance.used_ports_udp):
        return _STAGE_UDP
    if not all(e.predicate(instance, instance.group_counts) for e in task.member_of):
        return _STAGE_MEMBER_OF
    if task.distinct_instance and instance.group_counts.get(task.group):
        return _STAGE_DISTINCT
    return len(_STAGE_REASONS)


def _closest_failure(
    task: TaskRequirements, instances: Sequence[ContainerInstance]
) -> PlacementFailure:
    def nearness(stage: int, instance: ContainerInstance) -> int:
        if stage == _STAGE_CPU:
            return instance.remaining_cpu_millicores
        if stage == _STAGE_MEMORY:
            return instance.remaining_memory_mib
        if stage == _STAGE_GPU:
            return instance.remaining_gpus
        if stage == _STAGE_MEMBER_OF:
            return sum(e.predicate(instance, instance.group_counts) for e in task.member_of)
        return 0

    stages = [_failed_stage(task, instance) for instance in instances]
    _, _, _, best = min(
        (-stage, -nearness(stage, instance), instance.name, index)
        for index, (stage, instance) in enumerate(zip(stages, instances, strict=True))
    )
    stage, closest = stages[best], instances[best]
    return PlacementFailure(_STAGE_REASONS[stage], closest.name, _detail(stage, task, closest))


def _detail(stage: int, task: TaskRequirements, instance: ContainerInstance) -> str:
    if stage == _STAGE_AGENT:
        if not instance.ready:
            return "is not ready (its kubelet is not reporting Ready)"
        if not instance.schedulable:
            return "is draining (the node is cordoned)"
        return "has taints the task does not tolerate: " + ", ".join(instance.blocking_taints)
    if stage == _STAGE_ATTRIBUTE:
        return "is missing an attribute required by your task"
    if stage == _STAGE_CPU:
        return "has insufficient CPU units available"
    if stage == _STAGE_MEMORY:
        return "has insufficient memory available"
    if stage == _STAGE_GPU:
        return "has insufficient GPU units available"
    if stage in (_STAGE_TCP, _STAGE_UDP):
        wanted, used, protocol = (
            (task.host_ports_tcp, instance.used_ports_tcp, "TCP")
            if stage == _STAGE_TCP
            else (task.host_ports_udp, instance.used_ports_udp, "UDP")
        )
        ports = ", ".join(str(port) for port in sorted(wanted & used))
        return f"is already using a {protocol} port required by your task ({ports})"
    if stage == _STAGE_MEMBER_OF:
        failed = next(e for e in task.member_of if not e.predicate(instance, instance.group_counts))
        return f"does not match the memberOf expression {failed.text!r}"
    return f"already runs a task of group {task.group!r}"


# -- strategies -----------------------------------------------------------------------------------


def _strategy_keys(
    strategy: PlacementStrategy,
    task: TaskRequirements,
    candidates: Sequence[ContainerInstance],
    instances: Sequence[ContainerInstance],
) -> list[int]:
    """Sort keys (smaller is better) of one strategy for each candidate."""
    if strategy.type == "binpack":
        if strategy.field == "cpu":
            return [c.remaining_cpu_millicores for c in candidates]
        return [c.remaining_memory_mib for c in candidates]
    in_task_group = task.spread_over is None  # else a group the caller counted
    group = task.group if task.spread_over is None else task.spread_over
    attribute = _spread_attribute(strategy)
    if attribute is None:
        return [
            (c.group_counts if in_task_group else c.spread_counts).get(group, 0) for c in candidates
        ]
    per_value: Counter[str | None] = Counter()
    for instance in instances:
        tasks = (instance.group_counts if in_task_group else instance.spread_counts).get(group)
        if tasks:
            per_value[instance.attributes.get(attribute)] += tasks
    return [per_value[c.attributes.get(attribute)] for c in candidates]


def _stop_keys(
    strategy: PlacementStrategy,
    candidates: Sequence[str],
    tasks_by_instance: Mapping[str, Sequence[str]],
    instances: Mapping[str, ContainerInstance],
) -> list[int]:
    """Sort keys (larger stops first) of one strategy for each candidate node name."""
    if strategy.type == "binpack":
        if strategy.field == "cpu":
            return [instances[c].remaining_cpu_millicores for c in candidates]
        return [instances[c].remaining_memory_mib for c in candidates]
    attribute = _spread_attribute(strategy)
    if attribute is None:
        return [len(tasks_by_instance[c]) for c in candidates]
    per_value: Counter[str | None] = Counter()
    for name, tasks in tasks_by_instance.items():
        if name in instances:
            per_value[instances[name].attributes.get(attribute)] += len(tasks)
    return [per_value[instances[c].attributes.get(attribute)] for c in candidates]


def _spread_attribute(strategy: PlacementStrategy) -> str | None:
    """The attribute a spread strategy balances over, None for instanceId/host."""
    if strategy.field is None or not strategy.field.startswith("attribute:"):
        return None
    return strategy.field.removeprefix("attribute:")


# -- Kubernetes objects ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Usage:
    """What the non-terminated Pods bound to one node take of it."""

    cpu_millicores: int = 0
    memory_bytes: int = 0
    gpus: int = 0
    ports_tcp: set[int] = field(default_factory=set)
    ports_udp: set[int] = field(default_factory=set)
    tasks: Counter[str] = field(default_factory=Counter)  # per namespace
    groups: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, footprint: Footprint, namespace: str, group: str | None) -> None:
        self.cpu_millicores += footprint.cpu_millicores
        self.memory_bytes += footprint.memory_bytes
        self.gpus += footprint.gpus
        self.ports_tcp |= footprint.ports_tcp
        self.ports_udp |= footprint.ports_udp
        if group is not None:
            self.tasks[namespace] += 1
            self.groups[namespace][group] += 1


def _footprint(pod: Mapping[str, Any]) -> Footprint:
    cpu, memory, gpus = _pod_requests(pod)
    spec = pod.get("spec") or {}
    host_network = bool(spec.get("hostNetwork"))
    tcp: set[int] = set()
    udp: set[int] = set()
    for container in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        for port in container.get("ports") or ():
            number = port.get("hostPort") or (port.get("containerPort") if host_network else 0)
            protocol = port.get("protocol") or "TCP"
            if number and protocol == "TCP":
                tcp.add(int(number))
            elif number and protocol == "UDP":
                udp.add(int(number))
    return Footprint(cpu, memory, frozenset(tcp), frozenset(udp), gpus)


_REQUESTED: Final = ("cpu", "memory", GPU_RESOURCE)


def _pod_requests(pod: Mapping[str, Any]) -> tuple[int, int, int]:
    """(CPU millicores, memory bytes, GPUs) the scheduler reserves for ``pod``.

    Per resource: max(containers + sidecars, the peak while init containers run) + overhead,
    where a regular init container runs beside the sidecars started before it.
    """
    spec = pod.get("spec") or {}
    where = f"pod {_object_name(pod)}"
    totals = [0, 0, 0]
    for container in spec.get("containers") or ():
        for index, amount in enumerate(_container_requests(container, where)):
            totals[index] += amount
    sidecars = [0, 0, 0]
    peaks = [0, 0, 0]
    for container in spec.get("initContainers") or ():
        amounts = _container_requests(container, where)
        sidecar = container.get("restartPolicy") == "Always"
        for index, amount in enumerate(amounts):
            if sidecar:
                sidecars[index] += amount
                running = sidecars[index]
            else:
                running = amount + sidecars[index]
            peaks[index] = max(peaks[index], running)
    overhead = spec.get("overhead") or {}
    cpu, memory, gpus = (
        max(totals[index] + sidecars[index], peaks[index])
        + _quantity(overhead, resource, f"{where} overhead")
        for index, resource in enumerate(_REQUESTED)
    )
    return cpu, memory, gpus


def _container_requests(container: Mapping[str, Any], where: str) -> tuple[int, ...]:
    """A container's requests of each ``_REQUESTED`` resource; a missing request is its limit
    (the API server defaults it so)."""
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    what = f"{where} container {container.get('name')!r}"
    return tuple(
        _quantity(requests, resource, f"{what} requests")
        if resource in requests
        else _quantity(limits, resource, f"{what} limits")
        for resource in _REQUESTED
    )


def _quantity(resources: Mapping[str, Any], resource: str, where: str) -> int:
    """CPU in millicores, memory in bytes, or a count (GPUs); 0 when absent."""
    value = resources.get(resource)
    if value is None:
        return 0
    try:
        if resource == "cpu":
            return cpu_millicores(value)
        return memory_bytes(value) if resource == "memory" else whole_count(value)
    except ValueError as error:
        raise ValueError(f"{where}.{resource}: {error}") from None


def _instance_from_node(node: Mapping[str, Any], usage: _Usage) -> ContainerInstance:
    name = _name(node)
    labels: Mapping[str, str] = (node.get("metadata") or {}).get("labels") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    allocatable = status.get("allocatable") or status.get("capacity") or {}
    where = f"node {name!r} status.allocatable"
    cpu = _quantity(allocatable, "cpu", where)
    memory = _quantity(allocatable, "memory", where)
    gpus = _quantity(allocatable, GPU_RESOURCE, where)
    return ContainerInstance(
        name=name,
        zone=labels.get(ZONE_LABEL),
        attributes=_attributes(labels),
        registered_cpu_millicores=cpu,
        remaining_cpu_millicores=cpu - usage.cpu_millicores,
        registered_memory_mib=bytes_to_mib(memory),
        remaining_memory_mib=bytes_to_mib(memory - usage.memory_bytes),
        remaining_gpus=gpus - usage.gpus,
        used_ports_tcp=frozenset(usage.ports_tcp),
        used_ports_udp=frozenset(usage.ports_udp),
        ready=any(
            condition.get("type") == "Ready" and condition.get("status") == "True"
            for condition in status.get("conditions") or ()
        ),
        schedulable=not spec.get("unschedulable"),
        blocking_taints=tuple(
            _taint_text(taint)
            for taint in spec.get("taints") or ()
            if taint.get("effect") in _BLOCKING_TAINT_EFFECTS
        ),
        running_tasks_count=usage.tasks.total(),
        group_counts=sum(usage.groups.values(), Counter()),
        clusters={
            namespace: (tasks, dict(usage.groups[namespace]))
            for namespace, tasks in usage.tasks.items()
        },
        registered_at=_timestamp(node, name),
        agent_version=_kubelet_version(status),
    )


def _kubelet_version(status: Mapping[str, Any]) -> str:
    version = str((status.get("nodeInfo") or {}).get("kubeletVersion") or "")
    return version.removeprefix("v")


def _attributes(labels: Mapping[str, str]) -> dict[str, str]:
    attributes = {
        name[len(CUSTOM_ATTRIBUTE_LABEL_PREFIX) :]: value
        for name, value in labels.items()
        if name.startswith(CUSTOM_ATTRIBUTE_LABEL_PREFIX)
    }
    builtin = {
        ZONE_ATTRIBUTE: labels.get(ZONE_LABEL),
        "ecs.instance-type": labels.get(INSTANCE_TYPE_LABEL),
        OS_TYPE_ATTRIBUTE: labels.get(OS_LABEL),
        WINDOWS_BUILD_ATTRIBUTE: labels.get(WINDOWS_BUILD_LABEL),
        ARCHITECTURE_ATTRIBUTE: _ARCHITECTURES.get(
            labels.get(ARCHITECTURE_LABEL, ""), labels.get(ARCHITECTURE_LABEL)
        ),
    }
    attributes.update({name: value for name, value in builtin.items() if value})
    return attributes


def _taint_text(taint: Mapping[str, Any]) -> str:
    value = taint.get("value")
    key = f"{taint.get('key')}={value}" if value else str(taint.get("key"))
    return f"{key}:{taint.get('effect')}"


def _timestamp(node: Mapping[str, Any], name: str) -> datetime | None:
    text = (node.get("metadata") or {}).get("creationTimestamp")
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(str(text))
    except ValueError:
        raise ValueError(
            f"node {name!r} metadata.creationTimestamp: {text!r} is not an RFC 3339 time"
        ) from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _object_name(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name"))
