"""Core scenarios on a real cluster (kind), through the kubectl CLI only.

Tasks, services, zone spread, load-balancer endpoints and a clean uninstall, with the operator
image built from the repo and installed by its chart (see conftest.py). Image pulls make a real
cluster slow: deadlines are generous, and every wait polls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from support.helpers import wait_for
from support.kind_cluster import (
    GROUP,
    HELM,
    RELEASE,
    RELEASE_NAMESPACE,
    ROOT,
    KindCluster,
    KubectlRunner,
    run,
)

pytestmark = pytest.mark.e2e

DEADLINE = 300.0  # seconds: first image pulls on a fresh kind cluster

WEB_TASK_DEFINITION = """
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata:
  name: web
spec:
  containerDefinitions:
    - name: web
      image: busybox:1.36
      memory: 64
      portMappings:
        - containerPort: 8080
      command:
        - sh
        - -c
        - echo hello > /tmp/index.html; touch /tmp/healthy; exec httpd -f -p 8080 -h /tmp
      healthCheck:
        command: ["CMD-SHELL", "test -f /tmp/healthy"]
        interval: 5
        timeout: 2
        retries: 2
"""


def _service(name: str, desired: int, load_balancer: str | None = None) -> str:
    balancers = (
        f"""
  loadBalancers:
    - loadBalancerName: {load_balancer}
      containerName: web
      containerPort: 8080"""
        if load_balancer
        else ""
    )
    return f"""
apiVersion: ecs.operator.dev/v1alpha1
kind: Service
metadata:
  name: {name}
spec:
  taskDefinition: web
  desiredCount: {desired}{balancers}
"""


def _get(kubectl: KubectlRunner, namespace: str, *what: str) -> Any:
    return json.loads(kubectl("get", "-n", namespace, *what, "-o", "json"))


def _tasks(kubectl: KubectlRunner, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _get(kubectl, namespace, f"tasks.{GROUP}")["items"]
    return items


def _running_service_tasks(kubectl: KubectlRunner, namespace: str) -> list[dict[str, Any]]:
    return [
        t
        for t in _tasks(kubectl, namespace)
        if (t.get("status") or {}).get("lastStatus") == "RUNNING"
        and any(o["kind"] == "Service" for o in t["metadata"].get("ownerReferences", []))
    ]


def _service_running(kubectl: KubectlRunner, namespace: str, name: str, count: int) -> bool:
    status = _get(kubectl, namespace, f"services.{GROUP}", name).get("status") or {}
    return (
        status.get("runningCount") == count
        and len(_running_service_tasks(kubectl, namespace)) == count
    )


def _holds(predicate: Callable[[], bool], seconds: float) -> bool:
    """True if `predicate` stays true, polled, for `seconds` (proving that nothing happens)."""
    try:
        wait_for(lambda: not predicate(), timeout=seconds, interval=1.0)
    except AssertionError:
        return True
    return False


def test_task_runs_once_and_is_not_replaced(kubectl_e2e: KubectlRunner, e2e_namespace: str) -> None:
    kubectl_e2e(
        "apply", "-n", e2e_namespace, "-f", "-",
        input="""
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata:
  name: once
spec:
  containerDefinitions:
    - name: job
      image: busybox:1.36
      memory: 32
      command: ["sh", "-c", "sleep 2; exit 0"]
---
apiVersion: ecs.operator.dev/v1alpha1
kind: Task
metadata:
  name: once-1
spec:
  taskDefinition: once
""",
    )  # fmt: skip

    def stopped() -> dict[str, Any] | None:
        status = _get(kubectl_e2e, e2e_namespace, f"tasks.{GROUP}", "once-1").get("status") or {}
        return status if status.get("lastStatus") == "STOPPED" else None

    status = wait_for(stopped, timeout=DEADLINE, interval=1.0, message="task once-1 never STOPPED")
    assert status["stopCode"] == "EssentialContainerExited"
    assert [c.get("exitCode") for c in status["containers"]] == [0]
    version = status["version"]

    def still_stopped_without_a_pod() -> bool:
        current = stopped()
        pods = _get(kubectl_e2e, e2e_namespace, "pods")["items"]
        return current is not None and current["version"] == version and not pods

    assert _holds(still_stopped_without_a_pod, seconds=15), "the task was run again or replaced"
    assert [t["metadata"]["name"] for t in _tasks(kubectl_e2e, e2e_namespace)] == ["once-1"]


def test_service_replaces_a_killed_task(
    kubectl_e2e: KubectlRunner, e2e_namespace: str, require_kind: Callable[..., None]
) -> None:
    require_kind("Service")
    kubectl_e2e(
        "apply",
        "-n",
        e2e_namespace,
        "-f",
        "-",
        input=WEB_TASK_DEFINITION + "---" + _service("web", 2),
    )
    wait_for(
        lambda: _service_running(kubectl_e2e, e2e_namespace, "web", 2),
        timeout=DEADLINE,
        interval=1.0,
    )
    victim = _running_service_tasks(kubectl_e2e, e2e_namespace)[0]["metadata"]["name"]
    # The task's pod has the task's name: killing the pod kills the task.
    kubectl_e2e("delete", "pod", "-n", e2e_namespace, victim, "--wait=false")

    def replaced() -> bool:
        running = {
            t["metadata"]["name"] for t in _running_service_tasks(kubectl_e2e, e2e_namespace)
        }
        return len(running) == 2 and victim not in running

    wait_for(replaced, timeout=DEADLINE, interval=1.0, message=f"{victim} was not replaced")
    killed = _get(kubectl_e2e, e2e_namespace, f"tasks.{GROUP}", victim).get("status") or {}
    assert killed.get("lastStatus") == "STOPPED"


def test_service_spreads_tasks_across_zones(
    kubectl_e2e: KubectlRunner, e2e_namespace: str, require_kind: Callable[..., None]
) -> None:
    require_kind("Service")
    kubectl_e2e(
        "apply",
        "-n",
        e2e_namespace,
        "-f",
        "-",
        input=WEB_TASK_DEFINITION + "---" + _service("web", 3),
    )
    wait_for(
        lambda: _service_running(kubectl_e2e, e2e_namespace, "web", 3),
        timeout=DEADLINE,
        interval=1.0,
    )
    zones = sorted(
        t["status"]["availabilityZone"] for t in _running_service_tasks(kubectl_e2e, e2e_namespace)
    )
    assert zones == ["zone-a", "zone-b", "zone-c"]


def _ready_endpoint_ips(kubectl: KubectlRunner, namespace: str, service: str) -> set[str]:
    slices = _get(
        kubectl, namespace, "endpointslices", "-l", f"kubernetes.io/service-name={service}"
    )
    return {
        address
        for item in slices["items"]
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint["addresses"]
    }


def test_load_balancer_endpoints_list_only_ready_targets(
    kubectl_e2e: KubectlRunner, e2e_namespace: str, require_kind: Callable[..., None]
) -> None:
    require_kind("Service", "LoadBalancer")
    load_balancer = (ROOT / "manifests/argocd/sample-app/loadbalancer.yaml").read_text()
    manifests = "---".join(
        [WEB_TASK_DEFINITION, load_balancer, _service("web", 2, load_balancer="web")]
    )
    kubectl_e2e("apply", "-n", e2e_namespace, "-f", "-", input=manifests)
    wait_for(
        lambda: _service_running(kubectl_e2e, e2e_namespace, "web", 2),
        timeout=DEADLINE,
        interval=1.0,
    )
    pods = {
        p["metadata"]["name"]: p["status"].get("podIP")
        for p in _get(kubectl_e2e, e2e_namespace, "pods")["items"]
    }
    wait_for(
        lambda: _ready_endpoint_ips(kubectl_e2e, e2e_namespace, "web") == set(pods.values()),
        timeout=DEADLINE,
        interval=1.0,
        message="the EndpointSlice never listed both healthy targets",
    )
    # Traffic really flows: the API server proxies to the Service the operator keeps.
    body = kubectl_e2e("get", "--raw", f"/api/v1/namespaces/{e2e_namespace}/services/web/proxy/")
    assert "hello" in body

    sick, sick_ip = next(iter(pods.items()))
    kubectl_e2e("exec", "-n", e2e_namespace, sick, "-c", "web", "--", "rm", "/tmp/healthy")
    wait_for(
        lambda: sick_ip not in _ready_endpoint_ips(kubectl_e2e, e2e_namespace, "web"),
        timeout=DEADLINE,
        interval=1.0,
        message=f"unhealthy target {sick_ip} stayed in the EndpointSlice",
    )


def test_uninstall_leaves_nothing_behind(
    installed_operator: KindCluster, e2e_namespace: str
) -> None:
    """Last on purpose. The chart README's removal: `helm uninstall`, then delete the CRDs; the
    ECS objects go with their CRDs and their pods and revisions with them (ownerReferences)."""
    cluster = installed_operator
    cluster.kubectl("apply", "-n", e2e_namespace, "-f", str(ROOT / "manifests/examples/batch.yaml"))

    def task_status() -> str | None:
        task = cluster.get_json("-n", e2e_namespace, f"tasks.{GROUP}", "batch-1")
        return (task.get("status") or {}).get("lastStatus")

    wait_for(task_status, timeout=DEADLINE, interval=1.0, message="task batch-1 never launched")

    kubeconfig = ("--kubeconfig", str(cluster.kubeconfig))
    run(HELM, "uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", *kubeconfig)
    crds = str(ROOT / "charts/ecs-operator/crds/")
    cluster.kubectl("delete", "-f", crds, "--timeout=180s", timeout=240)

    def names(*what: str) -> list[str]:
        return [f"{i['kind']}/{i['metadata']['name']}" for i in cluster.get_json(*what)["items"]]

    def leftovers() -> list[str]:
        left = [c for c in names("crd") if c.endswith(f".{GROUP}")]
        left += names("-n", e2e_namespace, "pods,controllerrevisions")
        left += [
            n
            for n in names("-n", RELEASE_NAMESPACE, "deployments,pods,serviceaccounts,roles")
            if n != "ServiceAccount/default"
        ]
        selector = f"app.kubernetes.io/instance={RELEASE}"
        left += names("clusterroles,clusterrolebindings", "-l", selector)
        return left

    wait_for(
        lambda: not leftovers(), timeout=DEADLINE, interval=2.0,
        message=lambda: f"left behind: {leftovers()}",
    )  # fmt: skip
