"""Renders that follow ECS: runtimePlatform constrains placement, and a task's cpu/memory are
split so that the Pod's limits add up to the task's (ECS caps the task as a whole)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from support.ecs_api import Ecs, container
from support.helpers import ClusterTarget, wait_for

ARCH_LABEL = "kubernetes.io/arch"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def node_names(target: ClusterTarget) -> list[str]:
    nodes = target.http.get("/api/v1/nodes").json()["items"]
    return sorted(node["metadata"]["name"] for node in nodes)


def set_arch(target: ClusterTarget, node: str, arch: str) -> None:
    body = {"metadata": {"labels": {ARCH_LABEL: arch}}}
    response = target.http.patch(f"/api/v1/nodes/{node}", json=body, headers=MERGE_PATCH)
    assert response.ok, response.text


@contextmanager
def arm64_node(target: ClusterTarget, node: str) -> Iterator[None]:
    """``node`` is labelled arm64 inside the block, and amd64 again after it."""
    set_arch(target, node, "arm64")
    try:
        yield
    finally:
        set_arch(target, node, "amd64")


def test_an_arm64_task_fails_without_an_arm64_node(ecs: Ecs, target: ClusterTarget) -> None:
    labels = [
        target.http.get(f"/api/v1/nodes/{name}").json()["metadata"]["labels"]
        for name in node_names(target)
    ]
    assert all(label.get(ARCH_LABEL) == "amd64" for label in labels)
    assert all(label.get("kubernetes.io/os") == "linux" for label in labels)
    ecs.create_task_definition(
        "graviton",
        container("app", memory=128),
        runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"},
    )
    ecs.wait_accepted("graviton")
    ecs.create_task("nowhere", "graviton")
    stopped = ecs.wait_stopped("nowhere")
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert "ATTRIBUTE" in stopped["stoppedReason"]
    assert "is missing an attribute required by your task" in stopped["stoppedReason"]
    assert not ecs.pods_of("nowhere")


def test_an_arm64_task_runs_on_the_arm64_node(ecs: Ecs, target: ClusterTarget) -> None:
    ecs.create_task_definition(
        "graviton",
        container("app", memory=128),
        runtimePlatform={"cpuArchitecture": "ARM64"},
    )
    ecs.wait_accepted("graviton")
    arm = node_names(target)[-1]
    with arm64_node(target, arm):
        ecs.create_task("on-arm", "graviton")
        status = ecs.wait_last_status("on-arm", "RUNNING")
        assert status["nodeName"] == arm
        [pod] = ecs.pods_of("on-arm")
        assert pod["spec"]["nodeSelector"] == {ARCH_LABEL: "arm64"}


def test_the_pods_limits_add_up_to_the_task_cpu_and_memory(ecs: Ecs) -> None:
    ecs.create_task_definition(
        "fargate-three",
        *(
            {key: value for key, value in container(name).items() if key != "memory"}
            for name in ("app", "proxy", "log")
        ),
        cpu="1 vCPU",
        memory="2GB",
    )
    ecs.wait_accepted("fargate-three")
    ecs.create_task("three", "fargate-three")
    ecs.wait_last_status("three", "RUNNING")

    def limits() -> list[dict[str, str]]:
        [pod] = ecs.pods_of("three")
        return [c["resources"]["limits"] for c in pod["spec"]["containers"]]

    wait_for(lambda: len(limits()) == 3, 10, message="the pod has not three containers")
    assert sum(int(limit["cpu"].removesuffix("m")) for limit in limits()) == 1000
    assert sum(int(limit["memory"].removesuffix("Mi")) for limit in limits()) == 2048
