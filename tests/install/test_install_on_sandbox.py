"""Both install paths applied with the real kubectl and the real helm to the sandbox cluster.

The sandbox stores Deployments and RBAC objects without running them (no Deployment controller,
no containers, no RBAC enforcement): these tests prove the manifests are accepted by an API server
through the documented commands (`kubectl apply --server-side --force-conflicts -k manifests/`,
and `helm install|upgrade|uninstall`, which Helm 4 does with server-side apply) and round-trip,
not that the operator runs in a pod (that needs an image and a real cluster:
test_install_real.py, tests/e2e).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import yaml

from support.helpers import ClusterTarget, unique_name
from support.install import CHART, MANIFESTS, SERVER_SIDE_APPLY, helm_binary, run_helm

KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]
NAMESPACE = "ecs-operator-system"


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_kubectl_apply_server_side_k_installs_the_operator(
    kubectl: KubectlRunner, delete_afterwards: list[tuple[str, str]]
) -> None:
    delete_afterwards.append(("namespace", NAMESPACE))
    for name in ("ecs-operator", "ecs-operator-admin", "ecs-operator-edit", "ecs-operator-view"):
        delete_afterwards.append(("clusterrole", name))
    delete_afterwards.append(("clusterrolebinding", "ecs-operator"))

    applied = ok(kubectl(*SERVER_SIDE_APPLY, "-k", str(MANIFESTS)))
    assert "deployment.apps/ecs-operator serverside-applied" in applied
    assert "customresourcedefinition.apiextensions.k8s.io/tasks.ecs.operator.dev" in applied

    listing = ok(kubectl("get", "deploy", "-n", NAMESPACE))
    assert listing.splitlines()[1].split()[0] == "ecs-operator"
    deployment = json.loads(
        ok(
            kubectl(
                "get", "deploy", "ecs-operator", "-n", NAMESPACE, "-o", "json",
                "--show-managed-fields",
            )
        )
    )  # fmt: skip
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "ecs-operator"
    assert {(m["manager"], m["operation"]) for m in deployment["metadata"]["managedFields"]} == {
        ("kubectl", "Apply")
    }
    ok(kubectl("get", "serviceaccount", "ecs-operator", "-n", NAMESPACE))
    role = json.loads(ok(kubectl("get", "clusterrole", "ecs-operator", "-o", "json")))
    expected = next(
        doc
        for doc in yaml.safe_load_all((MANIFESTS / "rbac.yaml").read_text())
        if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == "ecs-operator"
    )
    assert role["rules"] == expected["rules"]

    # The upgrade is the same command: nothing changed, nothing written.
    ok(kubectl(*SERVER_SIDE_APPLY, "-k", str(MANIFESTS)))
    again = json.loads(ok(kubectl("get", "deploy", "ecs-operator", "-n", NAMESPACE, "-o", "json")))
    assert again["metadata"]["resourceVersion"] == deployment["metadata"]["resourceVersion"]


def test_helm_install_upgrade_uninstall_with_server_side_apply(
    target: ClusterTarget, kubectl: KubectlRunner
) -> None:
    """Helm 4 installs, upgrades and uninstalls with server-side apply (its default): the
    sandbox serves it, so the documented `helm install` works there."""
    release = unique_name("rel")
    namespace = unique_name("helm")
    fullname = f"{release}-ecs-operator"

    def helm(*args: str) -> str:
        return ok(run_helm(f"--kubeconfig={target.kubeconfig}", *args, "--namespace", namespace))

    def operator_deployment() -> dict[str, Any]:
        got = kubectl(
            "get", "deploy", fullname, "-n", namespace, "-o", "json", "--show-managed-fields"
        )
        return json.loads(ok(got)) if got.returncode == 0 else {}

    try:
        installed = helm("install", release, str(CHART), "--create-namespace")
        assert "STATUS: deployed" in installed
        assert "kubectl apply --server-side --force-conflicts -f" in installed  # NOTES.txt
        deployment = operator_deployment()
        assert deployment["spec"]["replicas"] == 1
        managed = deployment["metadata"]["managedFields"]
        assert {(m["manager"], m["operation"]) for m in managed} == {("helm", "Apply")}

        helm("upgrade", release, str(CHART), "--set", "replicaCount=2")
        upgraded = operator_deployment()
        assert upgraded["spec"]["replicas"] == 2
        assert "--leader-elect" in upgraded["spec"]["template"]["spec"]["containers"][0]["args"]

        # Back to the chart's defaults: what Helm stops applying is removed.
        helm("upgrade", release, str(CHART), "--reset-values")
        reset = operator_deployment()
        assert reset["spec"]["replicas"] == 1
        assert "--leader-elect" not in reset["spec"]["template"]["spec"]["containers"][0]["args"]

        helm("uninstall", release)
        assert operator_deployment() == {}
        names = ok(kubectl("get", "clusterrole,clusterrolebinding", "-o", "name")).split()
        assert [name for name in names if fullname in name] == []
        secrets = ok(kubectl("get", "secrets", "-n", namespace, "-o", "name")).split()
        assert [name for name in secrets if "sh.helm.release" in name] == []
    finally:
        run_helm(f"--kubeconfig={target.kubeconfig}", "uninstall", release, "-n", namespace)
        kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def test_helm_template_applies(
    kubectl: KubectlRunner, namespace: str, delete_afterwards: list[tuple[str, str]]
) -> None:
    helm_binary()
    release = unique_name("rel")
    fullname = f"{release}-ecs-operator"
    for suffix in ("", "-admin", "-edit", "-view"):
        delete_afterwards.append(("clusterrole", fullname + suffix))
    delete_afterwards.append(("clusterrolebinding", fullname))
    rendered = ok(
        run_helm(
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--include-crds",
            "--values",
            str(CHART / "ci" / "ha-values.yaml"),
        )
    )

    applied = ok(kubectl("apply", "-f", "-", input=rendered))
    assert f"deployment.apps/{fullname} created" in applied
    assert f"role.rbac.authorization.k8s.io/{fullname}-leader-election created" in applied

    deployment = json.loads(ok(kubectl("get", "deploy", fullname, "-n", namespace, "-o", "json")))
    assert deployment["spec"]["replicas"] == 2
    ok(kubectl("get", "service", f"{fullname}-metrics", "-n", namespace))
    ok(kubectl("get", "rolebinding", f"{fullname}-leader-election", "-n", namespace))
