"""Integration fixtures: the real `ecs-operator run` process against the session's `target`
(the sandbox, or the real control plane in the real-cluster pass).

- `crds` (session): `kubectl apply -f crds/` with the real kubectl, once.
- `operator` (session): one `OperatorProcess` shared by every test (`--resolve-grace 2`). On
  the real control plane it runs as its own ServiceAccount bound by the shipped RBAC
  (`manifests/`) with a TokenRequest token, never as admin; a 403 in its log fails the
  session. Ready once it has registered a fresh probe TaskDefinition (never a fixed sleep).
  A test may `kill()` it (SIGKILL) and `start()` it again, or `restart()` it with other flags;
  the next test gets the default operator back (`default_operator`). A failed test's report
  carries its log tail.
- `ecs`: an `ecs_api.Ecs` client bound to a fresh namespace (bodies: `ecs_api.container()`,
  `task_definition()`, `task()`).
- `plugin`: the installed `kubectl ecs` plugin, run against `ecs`'s namespace.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from support.ecs_api import (
    GROUP,
    PROBE_NAMESPACE,
    VERSION,
    Ecs,
    OperatorProcess,
    Plugin,
    plugin_runner,
)
from support.helpers import ClusterTarget, run_kubectl, service_account_kubeconfig, wait_for

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
MANIFESTS = REPO / "manifests"
OPERATOR_NAMESPACE = "ecs-operator-system"
OPERATOR_ACCOUNT = "ecs-operator"


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def crds(target: ClusterTarget, tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = tmp_path_factory.mktemp("kubectl-cache")
    result = run_kubectl(target.kubeconfig, cache, "apply", "-f", str(CRDS))
    assert result.returncode == 0, result.stderr

    def served() -> bool:
        response = target.http.get(f"/apis/{GROUP}/{VERSION}")
        names = {r["name"] for r in response.json().get("resources", [])} if response.ok else set()
        return {"tasks", "taskdefinitions"} <= names

    wait_for(served, 10, message="the ECS CRDs are not served")


GATEWAY_API = REPO / ".tools" / "gateway-api-v1.6.3"  # tools/fetch_gateway_api.py


@pytest.fixture(scope="session")
def gateway_api(target: ClusterTarget, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The Gateway API's standard CRDs (`make gateway-api`), applied as a cluster admin would."""
    if not GATEWAY_API.is_dir():
        fetched = subprocess.run(
            [sys.executable, str(REPO / "tools" / "fetch_gateway_api.py")], check=False
        )
        assert fetched.returncode == 0, "run `make gateway-api`"
    cache = tmp_path_factory.mktemp("kubectl-cache")
    result = run_kubectl(target.kubeconfig, cache, "apply", "-f", str(GATEWAY_API))
    assert result.returncode == 0, result.stderr

    def served() -> bool:
        response = target.http.get("/apis/gateway.networking.k8s.io/v1")
        names = {r["name"] for r in response.json().get("resources", [])} if response.ok else set()
        return "httproutes" in names

    wait_for(served, 10, message="the Gateway API CRDs are not served")


@pytest.fixture(scope="session")
def operator_server() -> str | None:
    """Where the operator reaches the API on a real cluster: None, the API server itself (the
    resilience suite puts its fault proxy there)."""
    return None


@pytest.fixture(scope="session")
def operator(
    crds: None,
    target: ClusterTarget,
    operator_server: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROBE_NAMESPACE}}
    target.http.post("/api/v1/namespaces", json=namespace)
    workdir = tmp_path_factory.mktemp("operator")
    identity = None if target.is_sandbox else operator_identity(target, workdir, operator_server)
    process = OperatorProcess(
        target,
        workdir / "operator.log",
        kubeconfig=identity,
        pod_namespace=None if identity is None else OPERATOR_NAMESPACE,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
    if identity is not None:
        # RBAC's own refusal ("User … cannot <verb> resource …"), not other 403s such as a
        # write into a terminating namespace.
        forbidden = [
            line
            for line in process.log().splitlines()
            if "is forbidden: User" in line and " cannot " in line
        ]
        assert not forbidden, "the shipped RBAC denied the operator:\n" + "\n".join(forbidden)


def operator_identity(target: ClusterTarget, workdir: Path, server: str | None) -> Path:
    """The shipped namespace, ServiceAccount and RBAC applied, and a kubeconfig acting as that
    ServiceAccount (through `server` when given)."""
    cache = workdir / "kubectl-cache"
    for manifest in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
        result = run_kubectl(target.kubeconfig, cache, "apply", "-f", str(MANIFESTS / manifest))
        assert result.returncode == 0, result.stderr
    return service_account_kubeconfig(
        target,
        OPERATOR_NAMESPACE,
        OPERATOR_ACCOUNT,
        workdir / "operator.kubeconfig",
        cache,
        server=server,
    )


@pytest.fixture
def default_operator(operator: OperatorProcess) -> OperatorProcess:
    """The shared operator, running with the default flags (a previous test may have left it
    killed or restarted with other flags)."""
    if not operator.alive or operator.allow_privileged or operator.extra_args:
        operator.restart()
    return operator


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    funcargs = getattr(item, "funcargs", {})
    process = funcargs.get("operator") or funcargs.get("default_operator")
    if report.failed and isinstance(process, OperatorProcess):
        report.sections.append(("operator log (tail)", process.tail()))
    return report


@pytest.fixture
def ecs(default_operator: OperatorProcess, target: ClusterTarget, namespace: str) -> Ecs:
    return Ecs(target, namespace, lambda: default_operator.tail(30))


@pytest.fixture
def plugin(ecs: Ecs, target: ClusterTarget) -> Plugin:
    return plugin_runner(target, ecs.namespace)
