"""Integration fixtures: the real `ecs-operator run` process against the session sandbox.

- `crds` (session): `kubectl apply -f crds/` with the real kubectl, once.
- `operator` (session): one `OperatorProcess` shared by every test (`--resolve-grace 2`), ready
  once it has registered a fresh probe TaskDefinition (never a fixed sleep). A test may `kill()`
  it (SIGKILL) and `start()` it again, or `restart()` it with other flags; the next test gets
  the default operator back (`default_operator`). A failed test's report carries its log tail.
- `ecs`: an `ecs_api.Ecs` client bound to a fresh namespace (bodies: `ecs_api.container()`,
  `task_definition()`, `task()`).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from ecs_api import GROUP, PROBE_NAMESPACE, VERSION, Ecs, OperatorProcess

from helpers import ClusterTarget, run_kubectl, wait_for

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def crds(sandbox_target: ClusterTarget, tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = tmp_path_factory.mktemp("kubectl-cache")
    result = run_kubectl(sandbox_target.kubeconfig, cache, "apply", "-f", str(CRDS))
    assert result.returncode == 0, result.stderr

    def served() -> bool:
        response = sandbox_target.http.get(f"/apis/{GROUP}/{VERSION}")
        names = {r["name"] for r in response.json().get("resources", [])} if response.ok else set()
        return {"tasks", "taskdefinitions"} <= names

    wait_for(served, 10, message="the ECS CRDs are not served")


@pytest.fixture(scope="session")
def operator(
    crds: None, sandbox_target: ClusterTarget, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROBE_NAMESPACE}}
    sandbox_target.http.post("/api/v1/namespaces", json=namespace)
    process = OperatorProcess(sandbox_target, tmp_path_factory.mktemp("operator") / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


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
def ecs(default_operator: OperatorProcess, sandbox_target: ClusterTarget, namespace: str) -> Ecs:
    return Ecs(sandbox_target, namespace, lambda: default_operator.tail(30))
