"""Builders of realistic Pod dicts, as the API server returns them, for the lifecycle tests.

A container status is built with ``running``/``waiting``/``terminated``/``restarted``; ``pod``
assembles the spec (init containers, native sidecars, regular containers) from the statuses, so a
test names each container once.
"""

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ecs_operator.core import labels

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
IMAGE_ID = "docker.io/library/busybox@sha256:" + "ab" * 32


def at(seconds: float) -> datetime:
    """``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def stamp(moment: datetime) -> str:
    """A Kubernetes timestamp (RFC 3339, whole seconds, Z)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(name: str, state: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": "busybox:1.36",
        "imageID": fields.pop("image_id", ""),
        "containerID": fields.pop("container_id", ""),
        "ready": fields.pop("ready", False),
        "started": fields.pop("started", False),
        "restartCount": fields.pop("restart_count", 0),
        "state": state,
        "lastState": fields.pop("last_state", {}),
    }


def running(name: str, *, ready: bool = True, since: datetime = T0) -> dict[str, Any]:
    return _status(
        name,
        {"running": {"startedAt": stamp(since)}},
        ready=ready,
        started=True,
        image_id=IMAGE_ID,
        container_id=f"containerd://{name}-0123456789abcdef",
    )


def waiting(name: str, reason: str = "ContainerCreating", message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return _status(name, {"waiting": state})


def _termination(exit_code: int, reason: str | None, message: str) -> dict[str, Any]:
    state: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": stamp(T0),
        "finishedAt": stamp(at(5)),
        "containerID": "containerd://0123456789abcdef",
    }
    if message:
        state["message"] = message
    return state


def terminated(
    name: str, exit_code: int = 0, *, reason: str | None = None, message: str = ""
) -> dict[str, Any]:
    return _status(
        name,
        {"terminated": _termination(exit_code, reason, message)},
        image_id=IMAGE_ID,
        container_id=f"containerd://{name}-0123456789abcdef",
    )


def restarted(name: str, exit_code: int = 1, *, ready: bool = False) -> dict[str, Any]:
    """A native sidecar the kubelet restarted after it exited with ``exit_code``."""
    status = running(name, ready=ready, since=at(6))
    status["restartCount"] = 1
    status["lastState"] = {"terminated": _termination(exit_code, None, "")}
    return status


def pod(
    name: str = "web-1",
    *,
    containers: Sequence[dict[str, Any]] = (),
    init: Sequence[dict[str, Any]] = (),
    sidecars: Sequence[dict[str, Any]] = (),
    node: str | None = "node-a",
    phase: str | None = None,
    with_statuses: bool = True,
    ecs_names: Mapping[str, str] | None = None,
    ports: Mapping[str, list[dict[str, Any]]] | None = None,
    unschedulable_since: datetime | None = None,
    unschedulable_message: str = "0/3 nodes are available: 1 Insufficient cpu.",
    deleting: bool = False,
    grace_period: int = 30,
    reason: str | None = None,
    message: str | None = None,
    extra_conditions: Sequence[dict[str, Any]] = (),
    active_deadline: int | None = None,
) -> dict[str, Any]:
    """A Pod whose containers are the given statuses (init, then sidecars, then regular)."""
    ports = ports or {}

    def spec_of(status: dict[str, Any], sidecar: bool = False) -> dict[str, Any]:
        container: dict[str, Any] = {"name": status["name"], "image": "busybox:1.36"}
        if status["name"] in ports:
            container["ports"] = ports[status["name"]]
        if sidecar:
            container["restartPolicy"] = "Always"
        return container

    conditions: list[dict[str, Any]] = []
    if unschedulable_since is not None:
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable_message,
                "lastTransitionTime": stamp(unschedulable_since),
            }
        )
    elif node is not None:
        conditions.append(
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(T0)}
        )
    conditions.extend(extra_conditions)
    everything = [*init, *sidecars, *containers]
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": "0000-1111",
        "creationTimestamp": stamp(T0),
        "annotations": {
            labels.CONTAINERS_ANNOTATION: json.dumps(
                dict(ecs_names) if ecs_names else {s["name"]: s["name"] for s in everything}
            )
        },
    }
    if deleting:
        metadata["deletionTimestamp"] = stamp(at(100))
        metadata["deletionGracePeriodSeconds"] = grace_period
    status: dict[str, Any] = {
        "phase": phase or ("Running" if node and with_statuses else "Pending"),
        "conditions": conditions,
    }
    if node is not None:
        status["podIP"] = "10.1.2.3"
        status["hostIP"] = "192.168.0.10"
    if with_statuses:
        status["initContainerStatuses"] = [*init, *sidecars]
        status["containerStatuses"] = list(containers)
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 30,
        "initContainers": [spec_of(s) for s in init] + [spec_of(s, True) for s in sidecars],
        "containers": [spec_of(s) for s in containers],
    }
    if node is not None:
        spec["nodeName"] = node
    if active_deadline is not None:
        spec["activeDeadlineSeconds"] = active_deadline
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


def node(name: str = "node-a", *, ready: str = "True", unreachable: bool = False) -> dict[str, Any]:
    """A Node with a Ready condition of status ``ready`` (and the unreachable taint)."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "zone-a"}},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }
    if unreachable:
        body["spec"]["taints"] = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    return body


def started(manifest: dict[str, Any]) -> dict[str, Any]:
    """The Pod `manifest` (as the operator rendered it) as its kubelet reports it once every
    container runs and is ready (its ordered init containers completed): bound by the
    scheduler to the node its affinity pins it to."""
    spec = dict(manifest["spec"])
    spec.setdefault("nodeName", pinned_node(spec))
    return {
        **manifest,
        "spec": spec,
        "status": {
            "phase": "Running",
            "podIP": "10.1.2.3",
            "hostIP": "192.168.0.10",
            "conditions": [
                {"type": kind, "status": "True", "lastTransitionTime": stamp(T0)}
                for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "initContainerStatuses": [
                running(c["name"]) if c.get("restartPolicy") == "Always" else terminated(c["name"])
                for c in spec.get("initContainers") or ()
            ],
            "containerStatuses": [running(c["name"]) for c in spec["containers"]],
        },
    }


def pinned_node(spec: Mapping[str, Any]) -> str | None:
    """The node a rendered Pod's required node affinity names."""
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or ():
        for expression in term.get("matchExpressions") or ():
            if expression.get("key") == "kubernetes.io/hostname":
                return str(expression["values"][0])
    return None
