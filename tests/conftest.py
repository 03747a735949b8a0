"""Shared fixtures: one sandbox cluster per test session, and ways to talk to it.

Fixtures (all suites may use them):

- `sandbox_thread` (session): the running `SandboxThread` (fast simulator timings, 0.2 s
  bookmarks). Use `sandbox_thread.call(fn, *args)` to touch the store from a test, and
  `sandbox_thread.sandbox.faults` / `.counters` for fault injection and request counts.
- `sandbox` (session): the `Sandbox` object itself (url, port, kubeconfig_path, store, …).
- `kubeconfig` (session): Path of the sandbox kubeconfig.
- `sandbox_target` (session): a `helpers.ClusterTarget` for the sandbox (raw HTTP session,
  `kubernetes` client, kubectl runner).
- `cluster` (session, parametrized): the sandbox, and a real cluster when the environment
  variable ECS_OPERATOR_TEST_KUBECONFIG names its kubeconfig (otherwise that variant is
  skipped). Conformance tests use it so the same assertions pin the sandbox to real behaviour.
- `target` (session): the one cluster the integration and resilience suites run on — the
  sandbox, or the real control plane when ECS_OPERATOR_TEST_TARGET=real (its kubeconfig from
  ECS_OPERATOR_TEST_KUBECONFIG; `make test` runs both passes). On the real target the
  sandbox-only fixtures skip, naming what they need of the sandbox.
- `namespace`: a fresh namespace on the session's `target`, deleted after the test;
  `cluster_namespace`: the same on the `cluster` target.
- `kubectl`: `kubectl(*args, input=None)` runs /usr/bin/kubectl against the `target` with a
  private cache dir and returns the CompletedProcess.
- `k8s_api`: a `kubernetes.client.ApiClient` configured from the sandbox kubeconfig.

Polling helper: `from helpers import wait_for`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s_client

from ecs_sandbox.cluster import ClusterConfig
from ecs_sandbox.runtime import Sandbox, SandboxThread
from support.helpers import REAL_CLUSTER_ENV, ClusterTarget, real_target_selected, run_kubectl

# Fast but not frantic: tests poll with deadlines, and 2 shared cores must keep up.
FAST_CLUSTER = ClusterConfig(
    zones=["zone-a", "zone-b", "zone-c"],
    nodes_per_zone=2,
    heartbeat_interval=0.5,
    node_monitor_grace=2.0,
    pod_start_delay=0.01,
    restart_backoff=0.05,
    restart_backoff_max=0.5,
)
BOOKMARK_INTERVAL = 0.2
# Events kept per kind for watch resume; small so a test can overrun it to provoke 410.
WATCH_WINDOW = 1000

KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox_only: relies on sandbox-only behaviour")
    config.addinivalue_line(
        "markers", "own_sandbox: starts a sandbox of its own (runs in the sandbox pass only)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The `cluster` fixture's real variant is marked `realcluster` like every other test of a
    # real cluster: `make test` runs them all after the real pass (tools/test_passes.py).
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("cluster") == "real":
            item.add_marker(pytest.mark.realcluster)
    if not real_target_selected():
        return
    skip = pytest.mark.skip(
        reason="runs on a sandbox of its own, not on the session's target: the sandbox pass ran it"
    )
    for item in items:
        if item.get_closest_marker("own_sandbox"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sandbox_thread() -> Iterator[SandboxThread]:
    if real_target_selected():
        pytest.skip(
            "reads or drives the sandbox's in-process store (its request counters, its watch "
            "window, writes injected into a request), which a real API server does not expose"
        )
    runner = SandboxThread(
        cluster=FAST_CLUSTER, bookmark_interval=BOOKMARK_INTERVAL, watch_window=WATCH_WINDOW
    )
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture(scope="session")
def sandbox(sandbox_thread: SandboxThread) -> Sandbox:
    assert sandbox_thread.sandbox is not None
    return sandbox_thread.sandbox


@pytest.fixture(scope="session")
def kubeconfig(sandbox: Sandbox) -> Path:
    return sandbox.kubeconfig_path


@pytest.fixture(scope="session")
def sandbox_target(sandbox_thread: SandboxThread, kubeconfig: Path) -> ClusterTarget:
    return ClusterTarget("sandbox", kubeconfig, sandbox=sandbox_thread)


@pytest.fixture(scope="session", params=["sandbox", "real"])
def cluster(request: pytest.FixtureRequest) -> ClusterTarget:
    if request.param == "real":
        path = os.environ.get(REAL_CLUSTER_ENV)
        if not path:
            pytest.skip(f"no real cluster: set {REAL_CLUSTER_ENV} to a kubeconfig to run this")
        return ClusterTarget("real", Path(path))
    return request.getfixturevalue("sandbox_target")


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> ClusterTarget:
    if real_target_selected():
        path = os.environ.get(REAL_CLUSTER_ENV)
        assert path, f"ECS_OPERATOR_TEST_TARGET=real needs {REAL_CLUSTER_ENV} (a kubeconfig)"
        return ClusterTarget("real", Path(path))
    target: ClusterTarget = request.getfixturevalue("sandbox_target")
    return target


@pytest.fixture
def namespace(target: ClusterTarget) -> Iterator[str]:
    name = target.create_namespace()
    yield name
    target.delete_namespace(name)


@pytest.fixture
def cluster_namespace(cluster: ClusterTarget) -> Iterator[str]:
    name = cluster.create_namespace()
    yield name
    cluster.delete_namespace(name)


@pytest.fixture
def kubectl(target: ClusterTarget, tmp_path: Path) -> KubectlRunner:
    cache_dir = tmp_path / "kubectl-cache"

    def run(
        *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return run_kubectl(target.kubeconfig, cache_dir, *args, input=input, timeout=timeout)

    return run


@pytest.fixture
def k8s_api(sandbox_target: ClusterTarget) -> Iterator[k8s_client.ApiClient]:
    api = sandbox_target.api_client()
    yield api
    api.close()
