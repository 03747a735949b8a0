"""High availability: several replicas with --leader-elect; only the Lease holder acts, a
standby takes over when the holder dies, a holder paused past its Lease writes nothing when it
wakes, and a second operator without --leader-elect is refused. In the sandbox pass each test
has a sandbox of its own; on the real control plane the session's operator is stopped for the
test (so no other operator acts) and the Lease lives in a namespace of the test's own."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ecs_sandbox.cluster import ClusterConfig
from ecs_sandbox.runtime import SandboxThread
from support.ecs_api import Ecs
from support.harness import OperatorProcess
from support.helpers import ApiSession, ClusterTarget, run_kubectl, wait_for
from support.services import Services, TaskWatch, bounds_check, deployment_configuration

REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 2.0


@dataclass
class HaCluster:
    """Where the replicas run: the API (admin), their kubeconfig, the namespace of the test's
    ECS objects and the one of their Lease."""

    http: ApiSession
    kubeconfig: Path
    namespace: str
    lease_namespace: str

    def path(self, plural: str, name: str = "") -> str:
        suffix = f"/{name}" if name else ""
        return f"/apis/ecs.operator.dev/v1alpha1/namespaces/{self.namespace}/{plural}{suffix}"

    def lease(self) -> dict[str, Any]:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{self.lease_namespace}/leases/ecs-operator"
        lease: dict[str, Any] = self.http.get(path, timeout=10).json()
        return lease


@pytest.fixture
def cluster(
    target: ClusterTarget, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[HaCluster]:
    if not target.is_sandbox:
        request.getfixturevalue("operator").kill()  # the next test gets it back
        namespaces = [target.create_namespace(), target.create_namespace("lease")]
        try:
            yield HaCluster(target.http, target.kubeconfig, *namespaces)
        finally:
            for namespace in namespaces:
                target.delete_namespace(namespace)
        return
    runner = SandboxThread(
        cluster=ClusterConfig(nodes_per_zone=1, heartbeat_interval=0.5, pod_start_delay=0.01)
    )
    sandbox = runner.start()
    try:
        kubeconfig = Path(sandbox.kubeconfig_path)
        applied = run_kubectl(kubeconfig, tmp_path / "cache", "apply", "-f", str(REPO / "crds"))
        assert applied.returncode == 0, applied.stderr
        yield HaCluster(ClusterTarget("ha", kubeconfig).http, kubeconfig, "default", "default")
    finally:
        runner.stop()


def operator_arguments(cluster: HaCluster, *extra: str) -> list[str]:
    return [
        "-m", "ecs_operator", "run", "--kubeconfig", str(cluster.kubeconfig), "--liveness", "",
        "--leader-election-namespace", cluster.lease_namespace,
        "--leader-election-lease-seconds", str(LEASE_SECONDS), *extra,
    ]  # fmt: skip


@pytest.fixture
def ha(cluster: HaCluster, tmp_path: Path) -> Iterator[tuple[HaCluster, list[OperatorProcess]]]:
    operators: list[OperatorProcess] = []
    try:
        arguments = operator_arguments(cluster, "--leader-elect")
        for name in ("replica-a", "replica-b"):
            operator = OperatorProcess(name, arguments, tmp_path, cluster.kubeconfig)
            operator.start()
            operators.append(operator)
        yield cluster, operators
    finally:
        for operator in operators:
            if operator.process is not None and operator.alive:
                operator.process.send_signal(signal.SIGCONT)
            operator.stop()


def create_task(cluster: HaCluster, name: str) -> None:
    body = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task"}
    body |= {"metadata": {"name": name}, "spec": {"taskDefinition": "idle"}}
    assert cluster.http.post(cluster.path("tasks"), json=body, timeout=10).status_code == 201


def last_status(cluster: HaCluster, name: str) -> Any:
    response = cluster.http.get(cluster.path("tasks", name), timeout=10)
    return (response.json().get("status") or {}).get("lastStatus")


def leader(cluster: HaCluster, operators: list[OperatorProcess]) -> OperatorProcess:
    """The replica whose log announces the identity that holds the Lease."""
    holder = cluster.lease()["spec"]["holderIdentity"]
    return next(o for o in operators if re.search(rf"\b{re.escape(holder)} now leads", o.tail()))


def test_only_the_leader_acts_and_a_standby_takes_over(
    ha: tuple[HaCluster, list[OperatorProcess]],
) -> None:
    cluster, operators = ha
    create_idle_definition(cluster)
    create_task(cluster, "first")
    wait_for(lambda: last_status(cluster, "first") == "RUNNING", timeout=30)
    first_leader = wait_for(lambda: leader(cluster, operators), timeout=10)
    standby = next(o for o in operators if o is not first_leader)
    assert " now leads" not in standby.tail(200), "two replicas lead at once"

    assert first_leader.process is not None
    first_leader.process.send_signal(signal.SIGKILL)
    first_leader.process.wait(10)
    killed = time.monotonic()
    create_task(cluster, "second")
    wait_for(lambda: last_status(cluster, "second") == "RUNNING", timeout=LEASE_SECONDS * 10)
    failover = time.monotonic() - killed
    assert " now leads" in standby.tail(200)
    # The standby waited for the Lease to expire: it never acted while the leader was alive.
    assert failover >= LEASE_SECONDS * 0.5, failover
    print(f"failover with a {LEASE_SECONDS} s lease: {failover:.2f} s")  # shown with -s


def create_idle_definition(cluster: HaCluster) -> None:
    definition = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition"}
    definition |= {"metadata": {"name": "idle"}}
    definition["spec"] = {
        "containerDefinitions": [
            {"name": "app", "image": "busybox:1.36", "memory": 64, "command": ["sleep", "3600"]}
        ]
    }
    assert cluster.http.post(cluster.path("taskdefinitions"), json=definition, timeout=10).ok


def test_a_leader_paused_past_its_lease_writes_nothing_when_it_wakes(
    ha: tuple[HaCluster, list[OperatorProcess]],
) -> None:
    """SIGSTOP the leader; while it sleeps the Service grows and the standby, now leading,
    launches the tasks. Woken (SIGCONT) with a stale cache and stale work queued, the old
    leader must launch nothing: its first write finds the Lease taken and it exits. The
    service never runs more than maximumPercent (100 %) at any Task watch event."""
    cluster, operators = ha
    target = ClusterTarget("ha", cluster.kubeconfig)
    services = Services(Ecs(target, cluster.namespace, lambda: ""))
    create_idle_definition(cluster)
    desired = 4
    with TaskWatch(services, bounds_check("web", lambda: desired, 0, 100)) as watch:
        services.create(
            "web",
            "idle",
            desiredCount=desired,
            deploymentConfiguration=deployment_configuration(0, 100),
        )
        services.wait_steady("web", desired, timeout=30)
        paused = wait_for(lambda: leader(cluster, operators), timeout=10)
        standby = next(o for o in operators if o is not paused)
        assert paused.process is not None
        paused.process.send_signal(signal.SIGSTOP)
        desired = 8
        services.update("web", desiredCount=desired)
        services.wait_steady("web", desired, timeout=LEASE_SECONDS * 15)
        assert " now leads" in standby.tail(200)
        paused.process.send_signal(signal.SIGCONT)
        # The old leader finds out and exits (a write refused, or its renewal failing).
        paused.process.wait(LEASE_SECONDS * 10)
        assert "lost the lease" in paused.tail(200), paused.tail(60)
        services.wait_steady("web", desired, timeout=30)
    watch.assert_clean()
    assert len(services.tasks("web")) == desired, "the woken leader launched tasks"


def test_a_second_operator_without_leader_election_is_refused_at_start(
    cluster: HaCluster, tmp_path: Path
) -> None:
    arguments = operator_arguments(cluster)
    first = OperatorProcess("first", arguments, tmp_path, cluster.kubeconfig)
    second = OperatorProcess("second", arguments, tmp_path, cluster.kubeconfig)
    try:
        first.start()
        wait_for(lambda: " holds the lease " in first.tail(), timeout=30)
        second.start()
        assert second.process is not None
        assert second.process.wait(LEASE_SECONDS * 10) == 2
        assert "another operator" in second.tail() and "--leader-elect" in second.tail()
        assert first.alive

        # A clean stop gives the Lease up, so the next operator is not refused. (The deadline
        # covers its start-up, which a loaded machine paces, not a Lease to wait out.)
        first.stop()
        assert not cluster.lease()["spec"].get("holderIdentity"), cluster.lease()
        second.start()
        wait_for(lambda: " holds the lease " in second.tail() or not second.alive, timeout=60)
        assert second.alive, second.tail()
        create_idle_definition(cluster)
        create_task(cluster, "works")
        wait_for(lambda: last_status(cluster, "works") == "RUNNING", timeout=30)
    finally:
        first.stop()
        second.stop()
