"""Both install paths applied with the real kubectl to the sandbox cluster.

The sandbox stores Deployments and RBAC objects without running them (no controllers, no RBAC
enforcement): these tests prove the manifests are accepted by an API server and round-trip, not
that the operator runs in a pod (that needs an image and a real cluster: tests/e2e).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import yaml

from support.helpers import unique_name
from support.install import CHART, MANIFESTS, helm_binary, run_helm

KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]
NAMESPACE = "ecs-operator-system"


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_kubectl_apply_k_installs_the_operator(
    kubectl: KubectlRunner, delete_afterwards: list[tuple[str, str]]
) -> None:
    delete_afterwards.append(("namespace", NAMESPACE))
    for name in ("ecs-operator", "ecs-operator-admin", "ecs-operator-edit", "ecs-operator-view"):
        delete_afterwards.append(("clusterrole", name))
    delete_afterwards.append(("clusterrolebinding", "ecs-operator"))

    applied = ok(kubectl("apply", "-k", str(MANIFESTS)))
    assert "deployment.apps/ecs-operator created" in applied

    listing = ok(kubectl("get", "deploy", "-n", NAMESPACE))
    assert listing.splitlines()[1].split()[0] == "ecs-operator"
    deployment = json.loads(
        ok(kubectl("get", "deploy", "ecs-operator", "-n", NAMESPACE, "-o", "json"))
    )
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "ecs-operator"
    ok(kubectl("get", "serviceaccount", "ecs-operator", "-n", NAMESPACE))
    role = json.loads(ok(kubectl("get", "clusterrole", "ecs-operator", "-o", "json")))
    expected = next(
        doc
        for doc in yaml.safe_load_all((MANIFESTS / "rbac.yaml").read_text())
        if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == "ecs-operator"
    )
    assert role["rules"] == expected["rules"]

    again = ok(kubectl("apply", "-k", str(MANIFESTS)))
    assert "deployment.apps/ecs-operator unchanged" in again
    assert "clusterrole.rbac.authorization.k8s.io/ecs-operator unchanged" in again


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
