"""High availability: several replicas with --leader-elect; only the Lease holder acts, and a
standby takes over when the holder dies (on its own sandbox, so no other operator interferes)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from harness import OperatorProcess

from ecs_operator.sandbox.cluster import ClusterConfig
from ecs_operator.sandbox.runtime import SandboxThread
from helpers import run_kubectl, wait_for

REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 2.0
ECS = "/apis/ecs.operator.dev/v1alpha1/namespaces/default"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/default/leases/ecs-operator"


@pytest.fixture
def ha(tmp_path: Path) -> Iterator[tuple[str, list[OperatorProcess]]]:
    runner = SandboxThread(
        cluster=ClusterConfig(nodes_per_zone=1, heartbeat_interval=0.5, pod_start_delay=0.01)
    )
    sandbox = runner.start()
    operators: list[OperatorProcess] = []
    try:
        kubeconfig = Path(sandbox.kubeconfig_path)
        applied = run_kubectl(kubeconfig, tmp_path / "cache", "apply", "-f", str(REPO / "crds"))
        assert applied.returncode == 0, applied.stderr
        arguments = [
            "-m", "ecs_operator", "run", "--kubeconfig", str(kubeconfig), "--liveness", "",
            "--leader-elect", "--leader-election-namespace", "default",
            "--leader-election-lease-seconds", str(LEASE_SECONDS),
        ]  # fmt: skip
        for name in ("replica-a", "replica-b"):
            operator = OperatorProcess(name, arguments, tmp_path, kubeconfig)
            operator.start()
            operators.append(operator)
        yield sandbox.url, operators
    finally:
        for operator in operators:
            operator.stop()
        runner.stop()


def create_task(url: str, name: str) -> None:
    body = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task"}
    body |= {"metadata": {"name": name}, "spec": {"taskDefinition": "idle"}}
    assert requests.post(f"{url}{ECS}/tasks", json=body, timeout=10).status_code == 201


def last_status(url: str, name: str) -> Any:
    response = requests.get(f"{url}{ECS}/tasks/{name}", timeout=10)
    return (response.json().get("status") or {}).get("lastStatus")


def leader(url: str, operators: list[OperatorProcess]) -> OperatorProcess:
    """The replica whose log announces the identity that holds the Lease."""
    holder = requests.get(f"{url}{LEASE}", timeout=10).json()["spec"]["holderIdentity"]
    return next(o for o in operators if re.search(rf"\b{re.escape(holder)} now leads", o.tail()))


def test_only_the_leader_acts_and_a_standby_takes_over(
    ha: tuple[str, list[OperatorProcess]],
) -> None:
    url, operators = ha
    definition = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition"}
    definition |= {"metadata": {"name": "idle"}}
    definition["spec"] = {
        "containerDefinitions": [
            {"name": "app", "image": "busybox:1.36", "memory": 64, "command": ["sleep", "3600"]}
        ]
    }
    assert requests.post(f"{url}{ECS}/taskdefinitions", json=definition, timeout=10).ok
    create_task(url, "first")
    wait_for(lambda: last_status(url, "first") == "RUNNING", timeout=30)
    first_leader = wait_for(lambda: leader(url, operators), timeout=10)
    standby = next(o for o in operators if o is not first_leader)
    assert " now leads" not in standby.tail(200), "two replicas lead at once"

    assert first_leader.process is not None
    first_leader.process.send_signal(signal.SIGKILL)
    first_leader.process.wait(10)
    killed = time.monotonic()
    create_task(url, "second")
    wait_for(lambda: last_status(url, "second") == "RUNNING", timeout=LEASE_SECONDS * 10)
    failover = time.monotonic() - killed
    assert " now leads" in standby.tail(200)
    # The standby waited for the Lease to expire: it never acted while the leader was alive.
    assert failover >= LEASE_SECONDS * 0.5, failover
    print(f"failover with a {LEASE_SECONDS} s lease: {failover:.2f} s")  # shown with -s
