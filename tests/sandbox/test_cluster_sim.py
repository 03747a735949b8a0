"""The simulated cluster (nodes, scheduler, kubelet, node lifecycle) against the real Store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ecs_sandbox.cluster import (
    EXIT_ANNOTATION,
    NODE_STATE_ANNOTATION,
    UNHEALTHY_ANNOTATION,
    ClusterConfig,
    ClusterSimulator,
)
from ecs_sandbox.errors import ApiError
from ecs_sandbox.registry import Registry
from ecs_sandbox.store import Store

MERGE = "application/merge-patch+json"
NS = "default"


class Sim:
    """A store with a running simulator and a few conveniences for the tests."""

    def __init__(self, store: Store, registry: Registry, simulator: ClusterSimulator) -> None:
        self.store = store
        self.registry = registry
        self.simulator = simulator
        self.pods = registry.get("", "v1", "pods")
        self.nodes = registry.get("", "v1", "nodes")
        self.events = registry.get("", "v1", "events")

    def run(self, name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
        body = {"metadata": {"name": name}, "spec": {"containers": list(containers), **spec}}
        return self.store.create(self.pods, NS, body)

    def pod(self, name: str) -> dict[str, Any] | None:
        try:
            return self.store.get(self.pods, NS, name)
        except ApiError:
            return None

    def node(self, name: str) -> dict[str, Any]:
        return self.store.get(self.nodes, None, name)

    def patch_pod(self, name: str, patch: dict[str, Any]) -> None:
        self.store.patch(self.pods, NS, name, patch, MERGE)

    def patch_node(self, name: str, patch: dict[str, Any]) -> None:
        self.store.patch(self.nodes, None, name, patch, MERGE)

    def events_of(self, name: str, reason: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.store.list(self.events, NS)["items"]
            if e["involvedObject"]["name"] == name and e["reason"] == reason
        ]

    async def until(
        self, name: str, check: Callable[[dict[str, Any]], bool], within: float = 10.0
    ) -> dict[str, Any]:
        """Poll pod `name` until `check(pod)` holds; fail with its last state otherwise."""
        last: dict[str, Any] | None = None

        def holds() -> bool:
            nonlocal last
            last = self.pod(name)
            return last is not None and check(last)

        await eventually(holds, within, lambda: f"pod {name}: {last}")
        assert last is not None
        return last


async def eventually(
    predicate: Callable[[], bool], within: float = 10.0, describe: Callable[[], str] = str
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"condition not reached within {within}s: {describe()}")
        await asyncio.sleep(0.02)


def container(name: str = "app", command: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "image": "busybox:1.36", **extra}
    if command is not None:
        spec["command"] = command
    return spec


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def phase(pod: dict[str, Any]) -> str:
    return str(pod.get("status", {}).get("phase"))


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for found in obj.get("status", {}).get("conditions") or []:
        if found["type"] == kind:
            return found  # type: ignore[no-any-return]
    return {}


def state(pod: dict[str, Any], name: str = "app", init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in pod.get("status", {}).get(key) or []:
        if status["name"] == name:
            return status  # type: ignore[no-any-return]
    return {}


def ready(pod: dict[str, Any]) -> bool:
    return condition(pod, "Ready").get("status") == "True"


def running(pod: dict[str, Any], name: str = "app") -> bool:
    return "running" in state(pod, name).get("state", {})


def exit_code(pod: dict[str, Any], name: str = "app", init: bool = False) -> int | None:
    terminated = state(pod, name, init).get("state", {}).get("terminated") or {}
    return terminated.get("exitCode")


FAST = ClusterConfig(
    heartbeat_interval=0.1,
    node_monitor_grace=0.5,
    pod_start_delay=0.01,
    restart_backoff=0.05,
    restart_backoff_max=0.2,
    unschedulable_backoff=0.05,
    unschedulable_backoff_max=0.2,
)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    registry = Registry()
    store = Store(registry)
    simulator = ClusterSimulator(store, registry, FAST)
    await simulator.start()
    try:
        yield Sim(store, registry, simulator)
    finally:
        await simulator.stop()


# -- nodes -----------------------------------------------------------------------------


async def test_nodes_are_registered_per_zone_ready_and_adopted_on_restart(sim: Sim) -> None:
    nodes = sim.store.list(sim.nodes, None)["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == [
        f"node-zone-{z}-{i}" for z in "abc" for i in (1, 2)
    ]
    node = sim.node("node-zone-b-2")
    labels = node["metadata"]["labels"]
    assert labels["topology.kubernetes.io/zone"] == "zone-b"
    assert labels["topology.kubernetes.io/region"] == "sandbox"
    assert labels["node.kubernetes.io/instance-type"] == "m5.xlarge"
    assert labels["kubernetes.io/hostname"] == "node-zone-b-2"
    assert node["status"]["allocatable"]["memory"] == "8Gi"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0-sandbox"
    assert node["status"]["addresses"][0]["type"] == "InternalIP"
    assert condition(node, "Ready")["status"] == "True"
    assert condition(node, "MemoryPressure")["status"] == "False"
    heartbeat = condition(node, "Ready")["lastHeartbeatTime"]
    await eventually(
        lambda: condition(sim.node("node-zone-b-2"), "Ready")["lastHeartbeatTime"] > heartbeat
    )

    await sim.simulator.stop()
    restarted = ClusterSimulator(sim.store, sim.registry, FAST)
    await restarted.start()
    try:
        assert len(sim.store.list(sim.nodes, None)["items"]) == 6
        sim.run("after-restart", container())
        await sim.until("after-restart", running)
    finally:
        await restarted.stop()


async def test_lost_node_turns_unknown_taints_and_unreadies_pods_then_recovers(sim: Sim) -> None:
    pod = sim.run("web", container(), nodeSelector={"kubernetes.io/hostname": "node-zone-a-1"})
    await sim.until(pod["metadata"]["name"], ready)

    sim.patch_node("node-zone-a-1", {"metadata": {"annotations": {NODE_STATE_ANNOTATION: "lost"}}})

    def unknown() -> bool:
        node = sim.node("node-zone-a-1")
        taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
        return condition(node, "Ready")["status"] == "Unknown" and taints == {
            ("node.kubernetes.io/unreachable", "NoSchedule"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
        }

    await eventually(unknown)
    assert condition(sim.node("node-zone-a-1"), "Ready")["reason"] == "NodeStatusUnknown"
    await sim.until("web", lambda p: condition(p, "Ready").get("status") == "False")
    # The default 300 s toleration keeps the pod bound; a new pod avoids the node.
    sim.run("elsewhere", container(), nodeSelector={"kubernetes.io/hostname": "node-zone-a-1"})
    stuck = await sim.until("elsewhere", lambda p: condition(p, "PodScheduled") != {})
    assert (
        "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
        in (condition(stuck, "PodScheduled")["message"])
    )

    sim.patch_node("node-zone-a-1", {"metadata": {"annotations": {NODE_STATE_ANNOTATION: "ready"}}})
    await eventually(
        lambda: (
            condition(sim.node("node-zone-a-1"), "Ready")["status"] == "True"
            and not sim.node("node-zone-a-1")["spec"].get("taints")
        )
    )
    await sim.until("web", ready)
    await sim.until("elsewhere", running)


async def test_taint_manager_evicts_pods_without_toleration_time(sim: Sim) -> None:
    toleration = {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 0,
    }
    sim.run(
        "short",
        container(),
        nodeSelector={"kubernetes.io/hostname": "node-zone-c-1"},
        tolerations=[toleration],
    )
    sim.run("patient", container(), nodeSelector={"kubernetes.io/hostname": "node-zone-c-1"})
    await sim.until("short", running)
    await sim.until("patient", running)

    sim.patch_node("node-zone-c-1", {"metadata": {"annotations": {NODE_STATE_ANNOTATION: "lost"}}})
    evicted = await sim.until("short", lambda p: "deletionTimestamp" in p["metadata"])
    assert condition(evicted, "DisruptionTarget")["reason"] == "DeletionByTaintManager"
    assert "deletionTimestamp" not in (sim.pod("patient") or {})["metadata"]

    # Its kubelet is gone, so the pod stays Terminating until the node comes back.
    sim.patch_node("node-zone-c-1", {"metadata": {"annotations": {NODE_STATE_ANNOTATION: None}}})
    await eventually(lambda: sim.pod("short") is None)


async def test_deleting_a_node_deletes_its_pods(sim: Sim) -> None:
    sim.run("doomed", container(), nodeName="node-zone-b-1")
    await sim.until("doomed", running)
    sim.store.delete(sim.nodes, None, "node-zone-b-1")
    await eventually(lambda: sim.pod("doomed") is None)


# -- scheduler -------------------------------------------------------------------------


def requesting(cpu: str = "100m", memory: str = "64Mi") -> dict[str, Any]:
    return container(resources={"requests": {"cpu": cpu, "memory": memory}})


async def test_capacity_is_respected_and_a_misfit_waits_with_a_reason(sim: Sim) -> None:
    for index in range(6):
        sim.run(f"big-{index}", requesting(cpu="3"))
    placed = [await sim.until(f"big-{i}", running) for i in range(6)]
    assert len({p["spec"]["nodeName"] for p in placed}) == 6  # one per node: 3 of 4 CPUs

    sim.run("one-too-many", requesting(cpu="3"))
    zone_a = {"topology.kubernetes.io/zone": "zone-a"}
    sim.run("huge", requesting(cpu="2", memory="100Gi"), nodeSelector=zone_a)
    pending = await sim.until("one-too-many", lambda p: condition(p, "PodScheduled") != {})
    scheduled = condition(pending, "PodScheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert scheduled["message"] == "0/6 nodes are available: 6 Insufficient cpu."
    huge = await sim.until("huge", lambda p: condition(p, "PodScheduled") != {})
    assert condition(huge, "PodScheduled")["message"] == (
        "0/6 nodes are available: 2 Insufficient cpu, 2 Insufficient memory, "
        "4 node(s) didn't match Pod's node affinity/selector."
    )
    (event,) = sim.events_of("one-too-many", "FailedScheduling")
    assert event["type"] == "Warning"
    assert event["message"] == scheduled["message"]

    # Freeing room re-tries the waiting pod; the failure events were aggregated, not repeated.
    sim.store.delete(sim.pods, NS, "big-3", {"gracePeriodSeconds": 0})
    retried = await sim.until("one-too-many", running)
    assert retried["spec"]["nodeName"] == placed[3]["spec"]["nodeName"]
    assert len(sim.events_of("one-too-many", "FailedScheduling")) == 1
    (assigned,) = sim.events_of("one-too-many", "Scheduled")
    assert assigned["message"] == (
        f"Successfully assigned default/one-too-many to {retried['spec']['nodeName']}"
    )


def gpus(count: str, *, in_limits: bool = False) -> dict[str, Any]:
    """A container asking for `count` GPUs (in its limits only: admission copies them)."""
    asked = {"nvidia.com/gpu": count}
    return container(resources={"limits": asked} if in_limits else {"requests": asked})


async def test_extended_resources_fit_the_nodes_allocatable(sim: Sim) -> None:
    # No node offers GPUs: kube-scheduler's NodeResourcesFit text.
    sim.run("no-gpu-node", gpus("1"))
    pending = await sim.until("no-gpu-node", lambda p: condition(p, "PodScheduled") != {})
    assert condition(pending, "PodScheduled")["message"] == (
        "0/6 nodes are available: 6 Insufficient nvidia.com/gpu."
    )

    # One node offers two: the waiting pod goes there, a limit counts as the request, and a
    # third GPU does not fit while the first two are held.
    allocatable = {"cpu": "4", "memory": "8Gi", "pods": "110", "nvidia.com/gpu": "2"}
    sim.store.patch(
        sim.nodes,
        None,
        "node-zone-c-2",
        {"status": {"allocatable": allocatable}},
        MERGE,
        subresource="status",
    )
    placed = await sim.until("no-gpu-node", running)
    assert placed["spec"]["nodeName"] == "node-zone-c-2"
    sim.run("by-limit", gpus("1", in_limits=True))
    assert (await sim.until("by-limit", running))["spec"]["nodeName"] == "node-zone-c-2"
    sim.run("third", gpus("1"))
    third = await sim.until("third", lambda p: condition(p, "PodScheduled") != {})
    assert condition(third, "PodScheduled")["message"] == (
        "0/6 nodes are available: 6 Insufficient nvidia.com/gpu."
    )
    sim.store.delete(sim.pods, NS, "by-limit", {"gracePeriodSeconds": 0})
    assert (await sim.until("third", running))["spec"]["nodeName"] == "node-zone-c-2"


async def test_pods_spread_to_the_least_allocated_nodes(sim: Sim) -> None:
    for index in range(6):
        sim.run(f"spread-{index}", container())
    nodes = {(await sim.until(f"spread-{i}", running))["spec"]["nodeName"] for i in range(6)}
    assert len(nodes) == 6


async def test_node_selector_and_required_affinity(sim: Sim) -> None:
    sim.run("in-b", container(), nodeSelector={"topology.kubernetes.io/zone": "zone-b"})
    not_ab = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "topology.kubernetes.io/zone",
                                "operator": "NotIn",
                                "values": ["zone-a", "zone-b"],
                            },
                            {"key": "kubernetes.io/arch", "operator": "Exists"},
                        ]
                    }
                ]
            }
        }
    }
    sim.run("not-a-or-b", container(), affinity=not_ab)
    by_name = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "no-such-label", "operator": "Exists"}]},
                    {
                        "matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": ["node-zone-a-2"]}
                        ]
                    },
                ]
            }
        }
    }
    sim.run("by-name", container(), affinity=by_name)
    assert (await sim.until("in-b", running))["spec"]["nodeName"].startswith("node-zone-b-")
    assert (await sim.until("not-a-or-b", running))["spec"]["nodeName"].startswith("node-zone-c-")
    assert (await sim.until("by-name", running))["spec"]["nodeName"] == "node-zone-a-2"


async def test_taints_need_tolerations(sim: Sim) -> None:
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    for node in sim.store.list(sim.nodes, None)["items"]:
        if node["metadata"]["name"] != "node-zone-c-2":
            sim.patch_node(node["metadata"]["name"], {"spec": {"taints": [taint]}})
    for index in range(3):
        sim.run(f"plain-{index}", container())
    tolerant = {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    sim.run("tolerant", container(), nodeSelector={"topology.kubernetes.io/zone": "zone-a"},
            tolerations=[tolerant])  # fmt: skip
    for index in range(3):
        assert (await sim.until(f"plain-{index}", running))["spec"]["nodeName"] == "node-zone-c-2"
    assert (await sim.until("tolerant", running))["spec"]["nodeName"].startswith("node-zone-a-")


async def test_cordon_stops_new_placements(sim: Sim) -> None:
    names = [n["metadata"]["name"] for n in sim.store.list(sim.nodes, None)["items"]]
    for name in names:
        sim.patch_node(name, {"spec": {"unschedulable": True}})
    sim.run("cordoned", container())
    pending = await sim.until("cordoned", lambda p: condition(p, "PodScheduled") != {})
    assert condition(pending, "PodScheduled")["message"] == (
        "0/6 nodes are available: 6 node(s) were unschedulable."
    )
    sim.patch_node("node-zone-b-1", {"spec": {"unschedulable": None}})
    assert (await sim.until("cordoned", running))["spec"]["nodeName"] == "node-zone-b-1"


async def test_host_ports_are_exclusive(sim: Sim) -> None:
    port = {"containerPort": 80, "hostPort": 8080}
    for index in range(7):
        sim.run(f"port-{index}", container(ports=[port]))
    placed = {(await sim.until(f"port-{i}", running))["spec"]["nodeName"] for i in range(6)}
    assert len(placed) == 6
    last = await sim.until("port-6", lambda p: condition(p, "PodScheduled") != {})
    assert "6 node(s) didn't have free ports" in condition(last, "PodScheduled")["message"]


# -- kubelet ---------------------------------------------------------------------------


async def test_running_pod_has_ips_statuses_and_conditions(sim: Sim) -> None:
    sim.run("web", container())
    pod = await sim.until("web", ready)
    status = pod["status"]
    assert phase(pod) == "Running"
    assert status["podIP"].startswith("10.244.")
    assert (
        status["hostIP"] == sim.node(pod["spec"]["nodeName"])["status"]["addresses"][0]["address"]
    )
    assert status["startTime"]
    app = state(pod)
    assert app["ready"] and app["started"] and app["restartCount"] == 0
    assert app["imageID"] == "sandbox://busybox:1.36"
    assert app["containerID"].startswith("sandbox://")
    for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert condition(pod, kind)["status"] == "True"
    (started,) = sim.events_of("web", "Started")
    assert started["source"] == {"component": "kubelet", "host": pod["spec"]["nodeName"]}


async def test_exit_code_fails_the_pod_under_restart_policy_never(sim: Sim) -> None:
    sim.run("crash", container(command=sh("exit 3")), restartPolicy="Never")
    sim.run("job", container(command=sh("sleep 0.2; exit 0")), restartPolicy="Never")
    crashed = await sim.until("crash", lambda p: phase(p) == "Failed")
    assert exit_code(crashed) == 3
    assert state(crashed)["state"]["terminated"]["reason"] == "Error"
    assert condition(crashed, "Ready")["reason"] == "PodCompleted"
    done = await sim.until("job", lambda p: phase(p) == "Succeeded")
    assert exit_code(done) == 0
    assert state(done)["state"]["terminated"]["reason"] == "Completed"


async def test_failed_containers_restart_under_always_and_on_failure(sim: Sim) -> None:
    sim.run("loop", container(command=sh("exit 1")))
    sim.run("once", container(command=sh("exit 0")), restartPolicy="OnFailure")
    looping = await sim.until("loop", lambda p: state(p).get("restartCount", 0) >= 2)
    assert phase(looping) == "Running"
    assert looping["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    assert sim.events_of("loop", "BackOff")
    done = await sim.until("once", lambda p: phase(p) == "Succeeded")
    assert state(done)["restartCount"] == 0


async def test_exit_annotation_ends_a_container_once(sim: Sim) -> None:
    sim.run("victim", container(), restartPolicy="OnFailure")
    await sim.until("victim", running)
    sim.patch_pod("victim", {"metadata": {"annotations": {EXIT_ANNOTATION: "app:7"}}})
    restarted = await sim.until(
        "victim", lambda p: state(p).get("restartCount") == 1 and running(p)
    )
    assert state(restarted)["lastState"]["terminated"]["exitCode"] == 7
    # Unrelated updates of the pod do not re-apply the same annotation value.
    sim.patch_pod("victim", {"metadata": {"labels": {"touched": "yes"}}})
    await sim.until("victim", lambda p: p["metadata"].get("labels", {}).get("touched") == "yes")
    sim.patch_pod("victim", {"metadata": {"annotations": {EXIT_ANNOTATION: "app:0"}}})
    final = await sim.until("victim", lambda p: phase(p) == "Succeeded")
    assert state(final)["restartCount"] == 1


async def test_bad_exit_annotation_is_reported(sim: Sim) -> None:
    sim.run("confused", container())
    await sim.until("confused", running)
    sim.patch_pod("confused", {"metadata": {"annotations": {EXIT_ANNOTATION: "app:boom"}}})
    await eventually(lambda: bool(sim.events_of("confused", "InvalidFault")))
    (event,) = sim.events_of("confused", "InvalidFault")
    assert "not an integer" in event["message"]
    assert running(sim.pod("confused") or {})


def probe(period: float = 0.05, **extra: Any) -> dict[str, Any]:
    return {"periodSeconds": period, "failureThreshold": 1, **extra}


async def test_readiness_probe_and_unhealthy_annotation(sim: Sim) -> None:
    sim.run("never-ready", container(readinessProbe=probe(exec={"command": sh("exit 1")})))
    sim.run("ready", container(readinessProbe=probe(httpGet={"path": "/", "port": 80})))
    await sim.until("ready", ready)
    pod = await sim.until("never-ready", lambda p: bool(sim.events_of("never-ready", "Unhealthy")))
    assert running(pod) and not state(pod)["ready"]
    assert condition(pod, "Ready")["reason"] == "ContainersNotReady"
    assert condition(pod, "Ready")["message"] == "containers with unready status: [app]"

    sim.patch_pod("ready", {"metadata": {"annotations": {UNHEALTHY_ANNOTATION: "app"}}})
    await sim.until("ready", lambda p: condition(p, "Ready").get("status") == "False")
    assert state(sim.pod("ready") or {})["restartCount"] == 0  # readiness never kills
    sim.patch_pod("ready", {"metadata": {"annotations": {UNHEALTHY_ANNOTATION: None}}})
    await sim.until("ready", ready)


async def test_liveness_failure_kills_and_restarts(sim: Sim) -> None:
    sim.run("sick", container(livenessProbe=probe(exec={"command": ["false"]})))
    sim.run("sick-never", container(livenessProbe=probe(tcpSocket={"port": 80})),
            restartPolicy="Never")  # fmt: skip
    restarted = await sim.until("sick", lambda p: state(p).get("restartCount", 0) >= 1)
    assert state(restarted)["lastState"]["terminated"]["exitCode"] == 137
    assert any("failed liveness probe" in e["message"] for e in sim.events_of("sick", "Killing"))
    await sim.until("sick-never", running)
    sim.patch_pod("sick-never", {"metadata": {"annotations": {UNHEALTHY_ANNOTATION: "app"}}})
    dead = await sim.until("sick-never", lambda p: phase(p) == "Failed")
    assert exit_code(dead) == 137


async def test_startup_probe_gates_readiness(sim: Sim) -> None:
    slow = container(
        startupProbe=probe(exec={"command": sh("exit 0")}, initialDelaySeconds=0.3),
        readinessProbe=probe(httpGet={"path": "/", "port": 80}),
    )
    sim.run("slow", slow)
    early = await sim.until("slow", running)
    assert not state(early)["started"] and not state(early)["ready"]
    became_ready = await sim.until("slow", ready)
    assert state(became_ready)["started"]

    failing = container(startupProbe=probe(exec={"command": sh("exit 1")}, failureThreshold=2))
    sim.run("never-starts", failing)
    killed = await sim.until("never-starts", lambda p: state(p).get("restartCount", 0) >= 1)
    assert state(killed)["lastState"]["terminated"]["exitCode"] == 137


async def test_init_containers_run_in_order(sim: Sim) -> None:
    inits = [
        container("first", sh("sleep 0.3")),
        container("second", sh("echo migrated")),
    ]
    sim.run("ordered", container(), initContainers=inits)
    early = await sim.until(
        "ordered", lambda p: "running" in state(p, "first", True).get("state", {})
    )
    assert phase(early) == "Pending"
    assert state(early, "second", True)["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert condition(early, "Initialized")["message"] == (
        "containers with incomplete status: [first second]"
    )
    assert not running(early)
    done = await sim.until("ordered", running)
    assert exit_code(done, "first", True) == 0
    assert exit_code(done, "second", True) == 0
    assert condition(done, "Initialized")["status"] == "True"

    sim.run("bad-init", container(), initContainers=[container("setup", sh("exit 2"))],
            restartPolicy="Never")  # fmt: skip
    failed = await sim.until("bad-init", lambda p: phase(p) == "Failed")
    assert exit_code(failed, "setup", True) == 2
    assert not running(failed)


async def test_native_sidecar_starts_first_and_keeps_running(sim: Sim) -> None:
    sidecar = container(
        "proxy",
        restartPolicy="Always",
        startupProbe=probe(exec={"command": ["true"]}, initialDelaySeconds=0.2),
    )
    sim.run("with-sidecar", container(command=sh("sleep 0.3")), initContainers=[sidecar],
            restartPolicy="Never")  # fmt: skip
    starting = await sim.until(
        "with-sidecar", lambda p: "running" in state(p, "proxy", True).get("state", {})
    )
    assert not running(starting)  # the main container waits for the sidecar's startup probe
    both = await sim.until("with-sidecar", running)
    assert "running" in state(both, "proxy", True)["state"]
    # Once the main container completes the pod succeeds and the sidecar is stopped.
    done = await sim.until("with-sidecar", lambda p: phase(p) == "Succeeded")
    assert "terminated" in state(done, "proxy", True)["state"]


def post_start(command: list[str]) -> dict[str, Any]:
    return {"postStart": {"exec": {"command": command}}}


async def test_regular_containers_start_in_order_each_after_its_post_start_hook(sim: Sim) -> None:
    """As the kubelet does: the next regular container starts only once the previous one's
    postStart hook is done (the hook runs right after its container starts)."""
    sim.run(
        "hooked",
        container("proxy", lifecycle=post_start(sh("sleep 0.4"))),
        container("app"),
        container("worker"),
        restartPolicy="Never",
    )
    hooking = await sim.until("hooked", lambda p: running(p, "proxy"))
    assert "waiting" in state(hooking, "app")["state"]
    assert "waiting" in state(hooking, "worker")["state"]
    assert phase(hooking) == "Running"
    done = await sim.until("hooked", lambda p: running(p, "app") and running(p, "worker"))
    proxy_started = state(done, "proxy")["state"]["running"]["startedAt"]
    assert proxy_started <= state(done, "app")["state"]["running"]["startedAt"]
    assert not sim.events_of("hooked", "FailedPostStartHook")


async def test_a_failing_post_start_hook_kills_its_container_and_the_next_ones_start(
    sim: Sim,
) -> None:
    sim.run(
        "bad-hook",
        container("proxy", lifecycle=post_start(sh("sleep 0.2; exit 1"))),
        container("app"),
        restartPolicy="Never",
    )
    killed = await sim.until("bad-hook", lambda p: running(p, "app"))
    assert exit_code(killed, "proxy") == 143
    assert state(killed, "proxy")["restartCount"] == 0  # restartPolicy Never: it stays down
    assert phase(killed) == "Running"
    [event] = sim.events_of("bad-hook", "FailedPostStartHook")
    assert event["type"] == "Warning"
    assert event["involvedObject"]["fieldPath"] == "spec.containers{proxy}"
    assert [e["message"] for e in sim.events_of("bad-hook", "Killing")] == ["FailedPostStartHook"]
    await asyncio.sleep(0.3)
    later = sim.pod("bad-hook") or {}
    assert exit_code(later, "proxy") == 143 and state(later, "proxy")["restartCount"] == 0

    # Under restartPolicy Always the killed container is restarted, hook and all.
    sim.run("bad-hook-always", container("proxy", lifecycle=post_start(["false"])), container())
    restarted = await sim.until(
        "bad-hook-always", lambda p: state(p, "proxy").get("restartCount", 0) >= 1
    )
    assert running(restarted)


async def test_a_post_start_hook_fails_while_its_container_is_marked_unhealthy(sim: Sim) -> None:
    """A hook that would pass (a loop the sandbox cannot read passes, as an exec probe does)
    fails while the unhealthy annotation names its container."""
    loop = sh("until /bin/ready; do sleep 1; done")
    sim.run(
        "gated",
        container("proxy", lifecycle=post_start(loop)),
        container(),
        restartPolicy="Never",
    )
    passed = await sim.until("gated", running)
    assert running(passed, "proxy")
    sim.store.create(
        sim.pods,
        NS,
        {
            "metadata": {
                "name": "gated-unhealthy",
                "annotations": {"sandbox.ecs.operator.dev/unhealthy": "proxy"},
            },
            "spec": {
                "containers": [container("proxy", lifecycle=post_start(loop)), container()],
                "restartPolicy": "Never",
            },
        },
    )
    failed = await sim.until("gated-unhealthy", running)
    assert exit_code(failed, "proxy") == 143
    assert sim.events_of("gated-unhealthy", "FailedPostStartHook")


async def test_deletion_terminates_with_143_then_removes_the_pod(sim: Sim) -> None:
    created = sim.run("goner", container())
    await sim.until("goner", running)
    watch = sim.store.watch(
        sim.pods, NS, resource_version=sim.store.resource_version,
        field_selector="metadata.name=goner",
    )  # fmt: skip
    sim.store.delete(sim.pods, NS, "goner")
    seen: list[tuple[str, int | None]] = []
    async with asyncio.timeout(10):
        async for event in watch:
            seen.append((event["type"], exit_code(event["object"])))
            if event["type"] == "DELETED":
                break
    watch.close()
    assert ("MODIFIED", 143) in seen
    assert seen[-1][0] == "DELETED"
    assert sim.pod("goner") is None
    killing = sim.events_of("goner", "Killing")
    assert killing and killing[0]["involvedObject"]["uid"] == created["metadata"]["uid"]


async def test_a_terminated_pod_stays_with_its_statuses_and_frees_its_node(sim: Sim) -> None:
    """As a real kubelet: a pod whose containers all ended stays (Failed, exit codes kept, so
    `kubectl logs` would work) until deleted; its resources and IP are free for other pods;
    deleting it is immediate (nothing is left to stop)."""
    sim.run("ended", container(command=sh("exit 3")), restartPolicy="Never")
    ended = await sim.until("ended", lambda p: phase(p) == "Failed")
    node_name = ended["spec"]["nodeName"]
    await asyncio.sleep(0.2)
    kept = sim.pod("ended")
    assert kept is not None and phase(kept) == "Failed" and exit_code(kept) == 3
    assert "deletionTimestamp" not in kept["metadata"]
    pod_ip = kept["status"]["podIP"]
    assert int(pod_ip.rsplit(".", 1)[1]) not in sim.simulator.nodes[node_name].ips_in_use
    sim.store.delete(sim.pods, NS, "ended")
    assert sim.pod("ended") is None


async def test_an_active_deadline_set_on_a_running_pod_stops_it_and_keeps_it(sim: Sim) -> None:
    """`spec.activeDeadlineSeconds` may be set on a running pod (the operator stops a task's
    containers that way and keeps its Pod): once it runs out, every container gets SIGTERM
    (143) and the pod fails with reason DeadlineExceeded, and stays."""
    sim.run(
        "stopped",
        container(),
        container("sidecar"),
        initContainers=[container("proxy", restartPolicy="Always")],
        restartPolicy="Never",
    )
    await sim.until("stopped", running)
    sim.patch_pod("stopped", {"spec": {"activeDeadlineSeconds": 1}})
    failed = await sim.until("stopped", lambda p: phase(p) == "Failed")
    assert failed["status"]["reason"] == "DeadlineExceeded"
    assert failed["status"]["message"] == (
        "Pod was active on the node longer than the specified deadline"
    )
    assert exit_code(failed) == exit_code(failed, "sidecar") == 143
    assert exit_code(failed, "proxy", init=True) == 143
    assert condition(failed, "Ready")["status"] == "False"
    assert sim.events_of("stopped", "DeadlineExceeded")
    await asyncio.sleep(0.2)
    assert "deletionTimestamp" not in (sim.pod("stopped") or {})["metadata"]


async def test_an_active_deadline_fails_a_pod_that_never_started(sim: Sim) -> None:
    sim.run("late", container(), activeDeadlineSeconds=1, restartPolicy="Never")
    failed = await sim.until("late", lambda p: phase(p) == "Failed", within=5)
    assert failed["status"]["reason"] == "DeadlineExceeded"
