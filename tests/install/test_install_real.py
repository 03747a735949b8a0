"""Every install path on the real control plane (`make test` brings it up; the tests skip only
where no real cluster is named by ECS_OPERATOR_TEST_KUBECONFIG, e.g. a bare `pytest`).

A real kube-apiserver checks what the sandbox does not: CRD structural schemas and the CEL cost
budget, server-side apply (Helm 4's default), field managers, RBAC, Pod Security Admission, and
kube-controller-manager really rolls the Deployment out (its Pod runs on a kwok node).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.helpers import REAL_CLUSTER_ENV, ClusterTarget, run_kubectl, unique_name, wait_for
from support.install import CHART, CRDS, MANIFESTS, SERVER_SIDE_APPLY, helm_binary

pytestmark = pytest.mark.realcluster

NAMESPACE = "ecs-operator-system"
GROUP = "ecs.operator.dev"
CRD_NAMES = [
    f"{plural}.{GROUP}" for plural in ("taskdefinitions", "tasks", "services", "loadbalancers")
]
OUR_CLUSTER_ROLES = ("", "-admin", "-edit", "-view")

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def real() -> ClusterTarget:
    path = os.environ.get(REAL_CLUSTER_ENV)
    if not path:
        pytest.skip(f"no real cluster: `make test` starts one, or set {REAL_CLUSTER_ENV}")
    return ClusterTarget("real", Path(path))


@pytest.fixture
def kubectl(real: ClusterTarget, tmp_path: Path) -> Kubectl:
    def run(
        *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return run_kubectl(real.kubeconfig, tmp_path / "cache", *args, input=input, timeout=timeout)

    return run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def helm(real: ClusterTarget, *args: str) -> str:
    command = [str(helm_binary()), f"--kubeconfig={real.kubeconfig}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    return ok(result)


def leftovers(kubectl: Kubectl, prefix: str) -> list[str]:
    """Cluster-scoped objects whose name starts with `prefix`, and our CRDs."""
    found = []
    for kind in ("clusterrole", "clusterrolebinding"):
        names = ok(kubectl("get", kind, "-o", "name")).split()
        found += [n for n in names if n.split("/", 1)[1].startswith(prefix)]
    crds = ok(kubectl("get", "crd", "-o", "name")).split()
    found += [n for n in crds if n.split("/", 1)[1].split(".", 1)[1] == GROUP]
    return found


@pytest.fixture
def without_crds(kubectl: Kubectl) -> Iterator[None]:
    """The test installs and removes our CRDs itself; put them back afterwards for the suites
    that follow."""
    yield
    ok(kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS)))


def test_crds_apply_client_side_then_server_side_and_update_in_place(
    kubectl: Kubectl, without_crds: None
) -> None:
    ok(kubectl("delete", "-f", str(CRDS), "--ignore-not-found", "--wait=true"))
    applied = ok(kubectl("apply", "-f", str(CRDS)))
    for name in CRD_NAMES:
        assert f"customresourcedefinition.apiextensions.k8s.io/{name} created" in applied
    for name in CRD_NAMES:
        ok(kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s"))
    # Taking the objects over from client-side apply: the documented upgrade command.
    ok(kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS)))
    # An in-place update: the same CRDs with one more label, server-side again.
    crds = json.loads(ok(kubectl("get", "-f", str(CRDS), "-o", "json")))
    for item in crds["items"]:
        item["metadata"]["labels"] = {**item["metadata"].get("labels", {}), "updated": "yes"}
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
            item["metadata"].pop(key, None)
        item.pop("status", None)
    ok(kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(crds)))
    labels = ok(
        kubectl("get", "crd", *CRD_NAMES, "-o", "jsonpath={.items[*].metadata.labels.updated}")
    )
    assert labels.split() == ["yes"] * len(CRD_NAMES)
    ok(kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS)))


def test_kubectl_apply_k_rolls_the_operator_out(kubectl: Kubectl) -> None:
    try:
        ok(kubectl(*SERVER_SIDE_APPLY, "-k", str(MANIFESTS)))
        # kube-controller-manager creates the ReplicaSet and Pod; the scheduler binds it to a kwok
        # node, which runs it; Pod Security Admission (restricted, from namespace.yaml) admits it.
        ok(
            kubectl(
                "rollout", "status", "deployment/ecs-operator", "-n", NAMESPACE, "--timeout=120s"
            )
        )
        pods = json.loads(ok(kubectl("get", "pods", "-n", NAMESPACE, "-o", "json")))["items"]
        assert [p["status"]["phase"] for p in pods] == ["Running"]
    finally:
        ok(kubectl("delete", "deployment", "ecs-operator", "-n", NAMESPACE, "--ignore-not-found"))


def test_helm_install_upgrade_uninstall_with_server_side_apply(
    real: ClusterTarget, kubectl: Kubectl, without_crds: None
) -> None:
    release = unique_name("rel")
    namespace = unique_name("helm")
    fullname = f"{release}-ecs-operator"
    helm(real, "install", release, str(CHART), "--namespace", namespace, "--create-namespace",
         "--wait", "--timeout", "180s")  # fmt: skip
    deployment = json.loads(
        ok(
            kubectl(
                "get", "deploy", fullname, "-n", namespace, "-o", "json", "--show-managed-fields"
            )
        )
    )
    managers = {m["manager"] for m in deployment["metadata"]["managedFields"]}
    assert "helm" in managers, managers
    assert any(m["operation"] == "Apply" for m in deployment["metadata"]["managedFields"]), (
        "Helm 4 installs with server-side apply"
    )

    helm(real, "upgrade", release, str(CHART), "--namespace", namespace,
         "--set", "replicaCount=2", "--set", "leaderElection.enabled=true",
         "--wait", "--timeout", "180s")  # fmt: skip
    wait_for(
        lambda: (
            json.loads(ok(kubectl("get", "deploy", fullname, "-n", namespace, "-o", "json")))[
                "status"
            ].get("readyReplicas")
            == 2
        ),
        120,
        message="the upgraded Deployment never had 2 ready replicas",
    )

    helm(real, "uninstall", release, "--namespace", namespace, "--wait", "--timeout", "180s")
    ok(kubectl("delete", "-f", str(CRDS), "--wait=true", "--timeout=120s"))
    ok(kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=120s"))
    assert leftovers(kubectl, fullname) == []


def test_aggregated_roles_edit_creates_and_view_only_reads(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    ok(kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS)))
    ok(kubectl("apply", "--server-side", "-f", str(MANIFESTS / "rbac.yaml")))
    namespace = unique_name("roles")
    ok(kubectl("create", "namespace", namespace))
    try:
        ok(kubectl("create", "rolebinding", "editor", "--clusterrole=edit", "--user=erin",
                   "-n", namespace))  # fmt: skip
        ok(kubectl("create", "rolebinding", "viewer", "--clusterrole=view", "--user=victor",
                   "-n", namespace))  # fmt: skip
        task_definition = {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "TaskDefinition",
            "metadata": {"name": "web"},
            "spec": {
                "family": "web",
                "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 64}],
            },
        }
        service = {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"taskDefinition": "web", "desiredCount": 0},
        }
        task = {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "Task",
            "metadata": {"name": "once"},
            "spec": {"taskDefinition": "web"},
        }
        for body in (task_definition, service, task):
            ok(kubectl("create", "--as=erin", "-n", namespace, "-f", "-", input=json.dumps(body)))
        for plural in ("taskdefinitions", "tasks", "services", "loadbalancers"):
            ok(kubectl("get", "--as=victor", "-n", namespace, f"{plural}.{GROUP}"))
        refused = kubectl(
            "create", "--as=victor", "-n", namespace, "-f", "-",
            input=json.dumps({**task, "metadata": {"name": "not-allowed"}}),
        )  # fmt: skip
        assert refused.returncode != 0
        assert "forbidden" in refused.stderr.lower(), refused.stderr
        deleted = kubectl("delete", "--as=victor", "-n", namespace, f"services.{GROUP}", "web")
        assert deleted.returncode != 0 and "forbidden" in deleted.stderr.lower(), deleted.stderr
    finally:
        ok(kubectl("delete", "namespace", namespace, "--wait=false"))
