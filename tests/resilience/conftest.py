"""Resilience scenarios (targets R1, R2): the integration fixtures, on a cluster of their own.

The fixtures are the integration suite's and the shared ones (imported, not copied), declared
again here so that pytest gives this folder fresh instances: its own sandbox (same fast
timings), its own `ecs-operator run` process and CRDs. API faults and SIGKILLs therefore never
reach the cluster the integration suite uses, and two operators never share one sandbox.

`api_faults` injects API faults the same way on both targets: into the sandbox itself, or, on
the real control plane, into the `FaultProxy` the operator reaches the API server through
(`operator_server`); either way they are lifted after the test.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from support.api_faults import ApiFaults, FaultProxy, SandboxFaults
from support.helpers import ClusterTarget

TESTS = Path(__file__).resolve().parents[1]


def _conftest(relative: str) -> ModuleType:
    """A conftest module, under the name pytest's importlib mode gives it (imported once)."""
    name = "tests." + relative.removesuffix(".py").replace("/", ".")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / relative)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_shared = _conftest("conftest.py")
_integration = _conftest("integration/conftest.py")

sandbox_thread = _shared.sandbox_thread
sandbox = _shared.sandbox
kubeconfig = _shared.kubeconfig
sandbox_target = _shared.sandbox_target
target = _shared.target
namespace = _shared.namespace
kubectl = _shared.kubectl
crds = _integration.crds
operator = _integration.operator
default_operator = _integration.default_operator
ecs = _integration.ecs
pytest_runtest_makereport = _integration.pytest_runtest_makereport


def _resource_version(target: ClusterTarget) -> int | None:
    response = target.http.get("/api/v1/namespaces", params={"limit": "1"})
    return int(response.json()["metadata"]["resourceVersion"]) if response.ok else None


@pytest.fixture(scope="session")
def fault_proxy(target: ClusterTarget) -> Iterator[FaultProxy | None]:
    """On the real control plane: the proxy every operator of this folder talks through."""
    if target.is_sandbox:
        yield None
        return
    proxy = FaultProxy(
        target.configuration.host,
        target.configuration.ssl_ca_cert,
        lambda: _resource_version(target),
    ).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="session")
def operator_server(fault_proxy: FaultProxy | None) -> str | None:
    return None if fault_proxy is None else fault_proxy.url


@pytest.fixture
def api_faults(
    target: ClusterTarget, fault_proxy: FaultProxy | None, request: pytest.FixtureRequest
) -> Iterator[ApiFaults]:
    faults: ApiFaults = (
        fault_proxy
        if fault_proxy is not None
        else SandboxFaults(request.getfixturevalue("sandbox_thread"))
    )
    try:
        yield faults
    finally:
        faults.reset()
