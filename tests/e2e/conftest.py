"""The kind end-to-end suite: the operator image, installed by its Helm chart, on a real cluster.

Tests marked `e2e` are skipped, with the reason, where Docker (a client and a daemon that answers
`docker info`), kind or helm is missing; the check runs once and only when such a test is
collected, so `make test` pays one failed `docker info` at most.

Environment:
- ECS_E2E_CLUSTER: reuse this existing kind cluster (it is then left in place); otherwise a
  cluster is created from kind-config.yaml (1 control plane, 3 workers in zone-a/b/c) and
  deleted at the end, unless ECS_E2E_KEEP=1.
- ECS_E2E_HELM: helm binary (default .tools/helm, fetched by `make helm`).

Fixtures: `e2e_cluster` (session: kind name and kubeconfig), `installed_operator` (session: the
image built from the repo Dockerfile, loaded into kind, installed with helm), `kubectl_e2e`
(run kubectl against the cluster), `e2e_namespace` (a fresh namespace per test) and
`require_kind` (xfail a test at run time when discovery does not list a kind).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from support.kind_cluster import (
    HELM,
    IMAGE_REPOSITORY,
    IMAGE_TAG,
    KIND_CONFIG,
    RELEASE,
    RELEASE_NAMESPACE,
    ROOT,
    KindCluster,
    KubectlRunner,
    missing_prerequisite,
    run,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    e2e_items = [item for item in items if item.get_closest_marker("e2e")]
    reason = missing_prerequisite() if e2e_items else None
    if reason:
        for item in e2e_items:
            item.add_marker(pytest.mark.skip(reason=f"e2e needs Docker and kind: {reason}"))


@pytest.fixture(scope="session")
def e2e_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindCluster]:
    reused = os.environ.get("ECS_E2E_CLUSTER")
    name = reused or f"ecs-e2e-{uuid.uuid4().hex[:6]}"
    if not reused:
        run("kind", "create", "cluster", "--name", name, "--config", KIND_CONFIG, "--wait", "5m")
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    kubeconfig.write_text(run("kind", "get", "kubeconfig", "--name", name))
    try:
        yield KindCluster(name, kubeconfig)
    finally:
        if not reused and os.environ.get("ECS_E2E_KEEP") != "1":
            run("kind", "delete", "cluster", "--name", name)


@pytest.fixture(scope="session")
def installed_operator(e2e_cluster: KindCluster) -> Iterator[KindCluster]:
    """The operator image from the repo Dockerfile, installed by the chart; removed at the end
    unless a test (the uninstall scenario) removed it already."""
    image = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
    if not (ROOT / "Dockerfile").is_file():
        pytest.fail("no Dockerfile at the repository root: the e2e suite builds the image from it")
    run("docker", "build", "-t", image, ROOT, timeout=1800)
    run("kind", "load", "docker-image", image, "--name", e2e_cluster.name)
    run(
        HELM, "upgrade", "--install", RELEASE, ROOT / "charts" / "ecs-operator",
        "--kubeconfig", e2e_cluster.kubeconfig, "--namespace", RELEASE_NAMESPACE,
        "--create-namespace", "--set", f"image.repository={IMAGE_REPOSITORY}",
        "--set", f"image.tag={IMAGE_TAG}", "--set", "image.pullPolicy=Never",
        "--wait", "--timeout", "5m",
    )  # fmt: skip
    yield e2e_cluster
    releases = run(
        HELM, "list", "-q", "-n", RELEASE_NAMESPACE, "--kubeconfig", e2e_cluster.kubeconfig
    )
    if RELEASE in releases.split():
        run(
            HELM,
            "uninstall",
            RELEASE,
            "-n",
            RELEASE_NAMESPACE,
            "--kubeconfig",
            e2e_cluster.kubeconfig,
        )


@pytest.fixture
def kubectl_e2e(installed_operator: KindCluster) -> KubectlRunner:
    return installed_operator.kubectl


@pytest.fixture
def e2e_namespace(installed_operator: KindCluster) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    installed_operator.kubectl("create", "namespace", name)
    yield name
    installed_operator.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
def require_kind(installed_operator: KindCluster) -> Callable[..., None]:
    """`require_kind("Service", "LoadBalancer")`: xfail now unless discovery lists them all."""

    def require(*kinds: str) -> None:
        missing = [kind for kind in kinds if not installed_operator.serves(kind)]
        if missing:
            pytest.xfail(
                f"{', '.join(missing)} not served by the cluster: Service/LoadBalancer "
                "controllers not implemented yet"
            )

    return require
