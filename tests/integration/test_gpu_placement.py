"""GPU tasks (`resourceRequirements` GPU) are placed on nodes with allocatable `nvidia.com/gpu`,
and fail with ECS's `RESOURCE:GPU` when none is free. The GPU node is created by the test: on the
sandbox every Node is simulated, on the real control plane kwok runs the Nodes carrying its
label (as tools/cluster.py creates the others)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from support.ecs_api import Ecs, container
from support.helpers import ClusterTarget, wait_for
from support.services import KWOK_NODE_LABEL

GPU = "nvidia.com/gpu"
GPU_NODE = "node-zone-a-gpu"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
GPU_CONTAINER = container("cuda", memory=128, resourceRequirements=[{"type": "GPU", "value": "1"}])


def node_schedulable(target: ClusterTarget, name: str) -> bool:
    """Ready, untainted (kube-controller-manager lifts its not-ready taint) and offering a GPU."""
    node = target.http.get(f"/api/v1/nodes/{name}").json()
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    offers = node.get("status", {}).get("allocatable", {}).get(GPU) == "1"
    return ready and offers and not node.get("spec", {}).get("taints")


@contextmanager
def gpu_node(target: ClusterTarget) -> Iterator[str]:
    """A node of zone-a with one allocatable GPU inside the block, deleted after it."""
    labels = {
        KWOK_NODE_LABEL: "fake",
        "type": "kwok",
        "kubernetes.io/hostname": GPU_NODE,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "g4dn.xlarge",
        "topology.kubernetes.io/zone": "zone-a",
        "topology.kubernetes.io/region": "sandbox",
    }
    offered = {"cpu": "4", "memory": "8Gi", "pods": "110", GPU: "1"}
    status = {"capacity": offered, "allocatable": offered}
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": GPU_NODE,
            "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "status": status,
    }
    created = target.http.post("/api/v1/nodes", json=body)
    assert created.status_code == 201, created.text
    try:
        # A real API server drops the status of a created Node: set what the kubelet reports.
        patched = target.http.patch(
            f"/api/v1/nodes/{GPU_NODE}/status", json={"status": status}, headers=MERGE_PATCH
        )
        assert patched.ok, patched.text
        wait_for(
            lambda: node_schedulable(target, GPU_NODE),
            15 * target.slowness,
            message=f"{GPU_NODE} is not Ready with a GPU",
        )
        yield GPU_NODE
    finally:
        target.http.delete(f"/api/v1/nodes/{GPU_NODE}")
        wait_for(
            lambda: target.http.get(f"/api/v1/nodes/{GPU_NODE}").status_code == 404,
            15,
            message=f"{GPU_NODE} is not deleted",
        )


def test_a_gpu_task_fails_without_a_gpu_node(ecs: Ecs) -> None:
    ecs.create_task_definition("cuda", GPU_CONTAINER)
    ecs.wait_accepted("cuda")
    ecs.create_task("no-gpu", "cuda")
    stopped = ecs.wait_stopped("no-gpu")
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert "RESOURCE:GPU" in stopped["stoppedReason"]
    assert not ecs.pods_of("no-gpu")


def test_a_gpu_task_runs_on_the_gpu_node_until_its_gpu_is_taken(
    ecs: Ecs, target: ClusterTarget
) -> None:
    with gpu_node(target) as node:
        ecs.create_task_definition("cuda", GPU_CONTAINER)
        ecs.wait_accepted("cuda")
        ecs.create_task("on-gpu", "cuda")
        running = ecs.wait_last_status("on-gpu", "RUNNING", timeout=20 * target.slowness)
        assert running["nodeName"] == node
        [pod] = ecs.pods_of("on-gpu")
        [cuda] = pod["spec"]["containers"]
        assert cuda["resources"]["limits"][GPU] == cuda["resources"]["requests"][GPU] == "1"

        ecs.create_task("no-gpu-left", "cuda")
        stopped = ecs.wait_stopped("no-gpu-left")
        assert stopped["stopCode"] == "TaskFailedToStart"
        assert "RESOURCE:GPU" in stopped["stoppedReason"]
        assert "has insufficient GPU units available" in stopped["stoppedReason"]
        assert not ecs.pods_of("no-gpu-left")

        # The node goes only after its task's Pod (no Pod is left bound to a missing node).
        ecs.stop_task("on-gpu")
        ecs.wait_stopped("on-gpu", timeout=20 * target.slowness)
        ecs.delete("tasks", "on-gpu")
        wait_for(lambda: not ecs.pods_of("on-gpu"), 20 * target.slowness, message="pod left")
