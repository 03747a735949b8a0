"""Finalizers that always clear (issue #13): the LoadBalancer `in-use` and the service Tasks'
`drain-targets` finalizers go once their reason is gone, so deleting a namespace or the CRDs
never needs a hand edit, even when the operator was down meanwhile."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecs_sandbox.cluster import ClusterConfig
from ecs_sandbox.runtime import SandboxThread
from support.ecs_api import (
    GROUP,
    PROBE_NAMESPACE,
    VERSION,
    Body,
    Ecs,
    OperatorProcess,
    task,
    task_definition,
)
from support.helpers import (
    REAL_CLUSTER_ENV,
    ClusterTarget,
    real_target_selected,
    run_kubectl,
)
from support.load_balancers import LB_NAME, LoadBalancers, lb_entry, load_balancer, web_definition
from support.services import Services

REPO = Path(__file__).resolve().parents[2]
FAMILY = "web"
SERVICE = "web"
GONE_WITHIN = 60  # seconds; a deletion that needs a hand edit never completes
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
# The kinds the operator's finalizers live on (on a real cluster, other tests' CRDs share the
# group's suffix: widgets.conformance.ecs.operator.dev).
OPERATOR_KINDS = ("loadbalancers", "services", "tasks")


def load_balanced_service(services: Services, lbs: LoadBalancers, desired: int) -> None:
    """A LoadBalancer in use (its `in-use` finalizer set) by a Service whose tasks are
    registered (each task's `drain-targets` finalizer set)."""
    lbs.create(load_balancer())
    services.create_body(web_definition(FAMILY))
    services.ecs.wait_accepted(FAMILY)
    services.create(SERVICE, FAMILY, desiredCount=desired, loadBalancers=[lb_entry()])
    services.ecs.wait(
        lambda: (
            len(lbs.targets()) == desired
            and lbs.get()["metadata"].get("finalizers")
            and all(t["metadata"].get("finalizers") for t in services.tasks(SERVICE))
        ),
        f"{desired} targets registered, the LoadBalancer marked in use, the tasks held",
        lambda: lbs.get(),
        30,
    )


def test_namespace_deleted_while_the_operator_is_down_goes_once_it_returns(
    ecs: Ecs, default_operator: OperatorProcess, target: ClusterTarget
) -> None:
    services = Services(ecs)
    lbs = LoadBalancers(services)
    load_balanced_service(services, lbs, 2)
    default_operator.kill()
    target.delete_namespace(ecs.namespace)
    default_operator.start()
    path = f"/api/v1/namespaces/{ecs.namespace}"
    ecs.wait(
        lambda: target.http.get(path).status_code == 404,
        "the namespace gone",
        lambda: (lbs.get(), target.http.get(path).json()),
        GONE_WITHIN,
    )


def test_what_was_deleted_in_a_watch_gap_still_goes(
    ecs: Ecs, default_operator: OperatorProcess, sandbox_target: ClusterTarget
) -> None:
    """The Service, its LoadBalancer and its tasks are deleted while the operator is paused
    with its watches closed, and it resumes with a fresh LIST (410), which reports no
    deletion: the tasks' drain finalizers go once their LoadBalancer is gone, and its in-use
    finalizer once no Service names it."""
    services = Services(ecs)
    lbs = LoadBalancers(services)
    load_balanced_service(services, lbs, 2)
    process = default_operator.process
    assert process is not None
    store = sandbox_target.sandbox.sandbox.store
    process.send_signal(signal.SIGSTOP)
    try:
        sandbox_target.sandbox.call(store.close_watches)  # no event reaches the operator
        tasks = [t["metadata"]["name"] for t in services.tasks(SERVICE)]
        ecs.delete("services", SERVICE)
        ecs.delete("loadbalancers", LB_NAME)  # held by its in-use finalizer
        for task in tasks:
            ecs.delete("tasks", task)  # held by their drain finalizers
        sandbox_target.sandbox.call(lambda: store.close_watches(expire=True))  # resume: 410
    finally:
        process.send_signal(signal.SIGCONT)

    def remaining() -> list[str]:
        found = [ecs.get("services", SERVICE), ecs.get("loadbalancers", LB_NAME)]
        found += [ecs.get("tasks", task) for task in tasks]
        return [f"{o['kind']}/{o['metadata']['name']}" for o in found if o is not None]

    ecs.wait(
        lambda: not remaining(),
        "the Service, the LoadBalancer and the tasks gone",
        remaining,
        GONE_WITHIN,
    )


@pytest.fixture(params=["sandbox", pytest.param("real", marks=pytest.mark.realcluster)])
def crd_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClusterTarget]:
    """A cluster whose ECS CRDs the test may delete, with them applied: a sandbox of its own,
    or the real control plane (`realcluster`: `make test` runs it after the real pass, when no
    other test needs the CRDs; they are applied again afterwards)."""
    if request.param == "real":
        path = os.environ.get(REAL_CLUSTER_ENV)
        if not path:
            pytest.skip(f"no real cluster: set {REAL_CLUSTER_ENV} to a kubeconfig to run this")
        target = ClusterTarget("real", Path(path))
        apply_crds(target, tmp_path)
        probe = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROBE_NAMESPACE}}
        assert target.http.post("/api/v1/namespaces", json=probe).status_code in (201, 409)
        try:
            yield target
        finally:
            apply_crds(target, tmp_path)
        return
    if real_target_selected():
        pytest.skip("runs on a sandbox of its own, not on the session's target")
    runner = SandboxThread(
        cluster=ClusterConfig(nodes_per_zone=1, heartbeat_interval=0.5, pod_start_delay=0.01)
    )
    sandbox = runner.start()
    try:
        target = ClusterTarget("sandbox", Path(sandbox.kubeconfig_path), sandbox=runner)
        apply_crds(target, tmp_path)
        probe = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROBE_NAMESPACE}}
        assert target.http.post("/api/v1/namespaces", json=probe).status_code == 201
        yield target
    finally:
        runner.stop()


def apply_crds(target: ClusterTarget, tmp_path: Path) -> None:
    applied = run_kubectl(target.kubeconfig, tmp_path / "cache", "apply", "-f", str(REPO / "crds"))
    assert applied.returncode == 0, applied.stderr
    established = run_kubectl(
        target.kubeconfig, tmp_path / "cache", "wait", "--for=condition=Established",
        "--timeout=60s", "-f", str(REPO / "crds"),
    )  # fmt: skip
    assert established.returncode == 0, established.stderr


def test_deleting_the_crds_with_load_balancers_in_use_completes(
    crd_cluster: ClusterTarget, tmp_path: Path
) -> None:
    """`kubectl delete -f crds/` while a LoadBalancer is in use: the operator clears its
    finalizers on objects whose CRD is terminating (creates refused, Tasks gone at once).

    One object of each kind carries the test's own finalizer until the operator's objects are
    gone, so that no CRD vanishes before: the operator surviving a CRD that vanishes under its
    watch is issue #13 item 6, not what this test proves."""
    operator = OperatorProcess(crd_cluster, tmp_path / "operator.log")
    namespace = crd_cluster.create_namespace()
    operator.start()
    try:
        ecs = Ecs(crd_cluster, namespace, operator.tail)
        services = Services(ecs)
        lbs = LoadBalancers(services)
        load_balanced_service(services, lbs, 2)
        holds = hold_every_kind(services)
        deleted = run_kubectl(
            crd_cluster.kubeconfig, tmp_path / "cache", "delete", "--wait=false", "-f",
            str(REPO / "crds"),
        )  # fmt: skip
        assert deleted.returncode == 0, deleted.stderr

        def operators_objects() -> list[str]:
            return [
                f"{plural}/{item['metadata']['name']}"
                for plural in OPERATOR_KINDS
                for item in listed(services, plural)
                if item["metadata"]["name"] != HOLD
            ]

        ecs.wait(
            lambda: not operators_objects(),
            "the LoadBalancer, the Service and its tasks gone",
            operators_objects,
            GONE_WITHIN,
        )
        assert operator.alive
        release(services, holds)

        def remaining() -> list[str]:
            items = crd_cluster.http.get(CRD_PATH).json()["items"]
            ours = {f"{plural}.{GROUP}" for plural in (*OPERATOR_KINDS, "taskdefinitions")}
            return [c["metadata"]["name"] for c in items if c["metadata"]["name"] in ours]

        ecs.wait(lambda: not remaining(), "every ECS CRD gone", remaining, GONE_WITHIN)
    finally:
        operator.stop()
        if not crd_cluster.is_sandbox:
            crd_cluster.delete_namespace(namespace)


HOLD = "hold"
HOLD_FINALIZER = "test.ecs.operator.dev/hold"


def listed(services: Services, plural: str) -> list[Body]:
    response = services.request("GET", services.ecs.path(plural))
    if response.status_code == 404:  # the kind is gone
        return []
    assert response.ok, response.text
    items: list[Body] = response.json()["items"]
    return items


def hold_every_kind(services: Services) -> list[str]:
    """An object of each ECS kind holding the test's finalizer; their plurals."""
    bodies = {
        "taskdefinitions": task_definition(HOLD),
        "tasks": task(HOLD, HOLD, desiredStatus="STOPPED"),
        "services": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Service",
            "metadata": {"name": HOLD},
            "spec": {"taskDefinition": HOLD, "desiredCount": 0},
        },
        "loadbalancers": load_balancer(HOLD),
    }
    for plural, body in bodies.items():
        body["metadata"]["finalizers"] = [HOLD_FINALIZER]
        services.json("POST", services.ecs.path(plural), (201,), json=body)
    return list(bodies)


def release(services: Services, plurals: list[str]) -> None:
    for plural in plurals:
        services.patch(plural, HOLD, {"metadata": {"finalizers": None}})
