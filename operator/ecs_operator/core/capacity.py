"""What a task asks of a container instance (§4.2: CPU, memory, GPUs, host ports, and the OS
and CPU architecture of its ``runtimePlatform``), and what the cluster's nodes offer."""

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ecs_operator.core import labels
from ecs_operator.core.placement import (
    TERMINATED_PHASES,
    ContainerInstance,
    Footprints,
    TaskRequirements,
    instances_from_cluster,
    platform_node_labels,
)
from ecs_operator.core.render import HOSTNAME_LABEL, gpu_count
from ecs_operator.models.placement import PlacementConstraint, PlacementStrategy
from ecs_operator.models.taskdefinition import TaskDefinitionSpec


def reservation(spec: TaskDefinitionSpec) -> tuple[int, int]:
    """ECS's reservation in (CPU units, MiB): the task-level values, else the containers' sums
    (``memoryReservation``, else ``memory``). The Pod ``render_pod`` makes requests as much
    (its CPU split so that the millicores add up to this reservation's), except what init
    containers with their own values set aside and memory no container can take within its
    hard limit (reported as ``memory (task level)``)."""
    cpu = spec.cpu_units
    if cpu is None:
        cpu = sum(c.cpu or 0 for c in spec.container_definitions)
    memory = spec.memory_mib
    if memory is None:
        memory = sum(c.memory_reservation or c.memory or 0 for c in spec.container_definitions)
    return cpu, memory


def host_ports(spec: TaskDefinitionSpec) -> tuple[list[int], list[int]]:
    """The static host ports (TCP, UDP) the task binds; in host network mode every container
    port is a host port."""
    tcp: list[int] = []
    udp: list[int] = []
    host_network = spec.network_mode == "host"
    for container in spec.container_definitions:
        for mapping in container.port_mappings or ():
            port = mapping.host_port or (mapping.container_port if host_network else 0)
            if port:
                (udp if mapping.protocol == "udp" else tcp).append(port)
    return tcp, udp


def task_requirements(
    spec: TaskDefinitionSpec,
    *,
    group: str,
    constraints: Iterable[PlacementConstraint] = (),
    strategies: Iterable[PlacementStrategy] = (),
    spread_over: str | None = None,
) -> TaskRequirements:
    """Placement requirements of one task of ``spec`` (overrides already applied); the task
    definition's own ``placementConstraints`` are added to ``constraints``; ``spread_over``:
    the group spread counts, when not ``group`` (``TaskRequirements.spread_over``). Raises
    ``ValueError`` naming a malformed constraint expression."""
    cpu, memory = reservation(spec)
    tcp, udp = host_ports(spec)
    platform = spec.runtime_platform
    return TaskRequirements.create(
        cpu_units=cpu,
        memory_mib=memory,
        group=group,
        host_ports_tcp=tcp,
        host_ports_udp=udp,
        constraints=[*(spec.placement_constraints or ()), *constraints],
        strategies=strategies,
        gpus=sum(gpu_count(container) for container in spec.container_definitions),
        node_labels=platform_node_labels(
            platform.operating_system_family, platform.cpu_architecture
        )
        if platform
        else None,
        spread_over=spread_over,
    )


def cluster_instances(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    footprints: Footprints | None = None,
) -> list[ContainerInstance]:
    """The nodes as container instances, with every pod counted where it runs or will run."""
    return instances_from_cluster(nodes, _on_planned_nodes(pods), task_group_of_pod, footprints)


def task_group_of_pod(pod: Mapping[str, Any]) -> str | None:
    """The ECS task group of a task's pod (None for other pods, and for the pod of a task
    being stopped). A pod that is stopping — its ``activeDeadlineSeconds`` set, which only the
    operator does to a task's pod, or its deletion under way — still holds its resources and
    ports until it has terminated, but is no longer a task of its group for spread,
    ``distinctInstance`` or ``runningTasksCount``: counted, it would steer its replacement
    away from the node and zone it leaves (as ``stand_in_pods`` leaves stopping tasks out)."""
    metadata = pod.get("metadata") or {}
    if (
        metadata.get("deletionTimestamp")
        or (pod.get("spec") or {}).get("activeDeadlineSeconds") is not None
    ):
        return None
    group = (metadata.get("annotations") or {}).get(labels.GROUP_ANNOTATION)
    return str(group) if group else None


def planned_node(pod: Mapping[str, Any]) -> str | None:
    """The node a pod runs or will run on: its ``nodeName``, else (a task's pod the scheduler
    has not bound yet) the node its required node affinity pins it to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    pinned = [
        expression["values"][0]
        for term in required.get("nodeSelectorTerms") or ()
        for expression in term.get("matchExpressions") or ()
        if expression.get("key") == HOSTNAME_LABEL and len(expression.get("values") or ()) == 1
    ]
    return str(pinned[0]) if pinned else None


def occupied_node(pod: Mapping[str, Any]) -> str | None:
    """The node whose capacity ``pod`` holds (see ``planned_node``); None once the Pod has
    terminated (phase Succeeded or Failed): a stopped task keeps its Pod for its logs, but
    like the Kubernetes scheduler and kubelet, placement counts only Pods that have not
    terminated (CPU, memory, ports, tasks and task groups alike)."""
    if (pod.get("status") or {}).get("phase") in TERMINATED_PHASES:
        return None
    return planned_node(pod)


def placed_node(task: Mapping[str, Any]) -> str | None:
    """The node a service's Task was placed on (``labels.PLACED_NODE_ANNOTATION``)."""
    annotations = (task.get("metadata") or {}).get("annotations") or {}
    node = annotations.get(labels.PLACED_NODE_ANNOTATION)
    return str(node) if node else None


def stand_in_pods(
    tasks: Iterable[Mapping[str, Any]], has_pod: Callable[[Mapping[str, Any]], bool]
) -> Iterator[dict[str, Any]]:
    """A stand-in pod on its placed node for each live task of ``tasks`` whose Pod does not
    exist yet (just created, or the operator restarted in between): counted there, or the next
    launches would pile up where the task seems absent."""
    for task in tasks:
        node = placed_node(task)
        if node is None or _stopping(task) or has_pod(task):
            continue
        group = {labels.GROUP_ANNOTATION: task["spec"].get("group") or ""}
        yield {"metadata": {**task["metadata"], "annotations": group}, "spec": {"nodeName": node}}


def _stopping(task: Mapping[str, Any]) -> bool:
    """A task that stops on its own (its essential container exited) says so in
    status.desiredStatus: its Pod, stopped, never comes back to life; counted, it would steer
    its replacement away from the zone it leaves."""
    status = task.get("status") or {}
    return "STOPPED" in (
        task["spec"].get("desiredStatus"),
        status.get("desiredStatus"),
        status.get("lastStatus"),
    )


def _on_planned_nodes(pods: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Pods as placement must count them: on their planned node (see ``planned_node``)."""
    for pod in pods:
        spec = pod.get("spec") or {}
        node = planned_node(pod)
        if node is None or spec.get("nodeName"):
            yield pod
        else:
            yield {**pod, "spec": {**spec, "nodeName": node}}


def placement_facts(node: Mapping[str, Any]) -> tuple[Any, ...]:
    """What placement reads of a node: readiness, cordon, taints, labels, allocatable. A
    heartbeat changes none of it."""
    conditions = (node.get("status") or {}).get("conditions") or ()
    ready = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
    spec = node.get("spec") or {}
    return (
        ready,
        spec.get("unschedulable", False),
        json.dumps(spec.get("taints") or [], sort_keys=True),
        json.dumps((node.get("metadata") or {}).get("labels") or {}, sort_keys=True),
        json.dumps((node.get("status") or {}).get("allocatable") or {}, sort_keys=True),
    )
