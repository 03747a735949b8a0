"""Degrade, don't die (issue #13, item 6): a watch error for one kind stops that kind only and
is reported; the kind resumes when its API comes back, and the operator serves the others
throughout. Both through a CRD deleted and re-applied (404), and a kind the API refuses to
list and watch (403). A priming LIST that fails is retried within seconds: the operator is
ready soon after the API serves it again, not a minute later. The 403 and the failing priming
LISTs come from `api_faults` (on the real control plane, its fault proxy)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support.api_faults import ApiFaults
from support.ecs_api import GROUP, VERSION, Ecs, OperatorProcess
from support.helpers import ClusterTarget, wait_for
from support.load_balancers import LoadBalancers, load_balancer
from support.services import Services

REPO = Path(__file__).resolve().parents[2]
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
LB_CRD = f"loadbalancers.{GROUP}"


def lb_kind_served(target: ClusterTarget) -> bool:
    response = target.http.get(f"/apis/{GROUP}/{VERSION}")
    return response.ok and "loadbalancers" in {r["name"] for r in response.json()["resources"]}


def serves_tasks(ecs: Ecs, operator: OperatorProcess, name: str) -> None:
    """The operator is alive and runs a new Task."""
    ecs.create_task(name, "web")
    ecs.wait_last_status(name, "RUNNING", timeout=30)
    assert operator.alive


def serves_load_balancers(
    ecs: Ecs, operator: OperatorProcess, name: str, timeout: float = 30
) -> None:
    load_balancers = LoadBalancers(Services(ecs))
    load_balancers.create(load_balancer(name))
    ecs.wait(
        lambda: load_balancers.kubernetes_service(name),
        f"the Kubernetes Service of LoadBalancer {name}",
        lambda: str(load_balancers.status(name)),
        timeout=timeout,
    )
    assert operator.alive


def apply_lb_crd(target: ClusterTarget) -> None:
    manifest = yaml.safe_load((REPO / "crds" / f"{LB_CRD}.yaml").read_text())
    created = target.http.post(CRDS, json=manifest)
    assert created.status_code == 201, created.text
    wait_for(lambda: lb_kind_served(target), 30)


@pytest.fixture
def lb_crd_restored(target: ClusterTarget) -> Iterator[None]:
    """The LoadBalancer CRD is served again after the test, whatever happens."""
    try:
        yield
    finally:
        http = target.http
        wait_for(lambda: http.get(f"{CRDS}/{LB_CRD}").status_code in (200, 404), 60)
        if http.get(f"{CRDS}/{LB_CRD}").status_code == 404:
            apply_lb_crd(target)


def test_a_deleted_crd_stops_only_its_kind_which_resumes_when_it_returns(
    ecs: Ecs, operator: OperatorProcess, target: ClusterTarget, lb_crd_restored: None
) -> None:
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    serves_load_balancers(ecs, operator, "before")
    ecs.delete("loadbalancers", "before")
    wait_for(lambda: ecs.get("loadbalancers", "before") is None, 30)
    deleted = target.http.delete(f"{CRDS}/{LB_CRD}")
    assert deleted.status_code in (200, 202), deleted.text
    wait_for(lambda: target.http.get(f"{CRDS}/{LB_CRD}").status_code == 404, 60)
    serves_tasks(ecs, operator, "while-gone")
    apply_lb_crd(target)
    # A real API server serves the kind a moment after its CRD says Established, with no CRD
    # event after that: the operator looks again until it does.
    wait_for(
        lambda: f"loadbalancers.{VERSION}.{GROUP} is served" in operator.log(),
        30,
        message=lambda: f"the operator never said the kind is served again:\n{operator.tail()}",
    )
    serves_load_balancers(ecs, operator, "after")
    serves_tasks(ecs, operator, "after")


def test_a_kind_the_api_refuses_to_watch_is_reported_and_resumes_when_allowed(
    ecs: Ecs, operator: OperatorProcess, api_faults: ApiFaults
) -> None:
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    forbidden = {"error_rate": 1.0, "codes": [403], "verbs": ["list", "watch"]}
    api_faults.update({**forbidden, "resources": ["loadbalancers"]})
    api_faults.close_watches()  # every watch reconnects: one refused
    wait_for(
        lambda: f"the watch of {LB_CRD} failed" in operator.log(),
        30,
        message=lambda: f"no report of the refused watch:\n{operator.tail()}",
    )
    serves_tasks(ecs, operator, "while-forbidden")
    api_faults.reset()
    serves_load_balancers(ecs, operator, "after", timeout=60)


def test_failed_priming_lists_delay_the_start_by_seconds_not_a_minute(
    ecs: Ecs, operator: OperatorProcess, api_faults: ApiFaults
) -> None:
    operator.kill()
    failing = {"error_rate": 1.0, "codes": [503, 403], "verbs": ["list"], "resources": ["pods"]}
    api_faults.update(failing)

    def lift_after_a_failed_priming_list() -> None:
        wait_for(lambda: "listing pods failed" in operator.log(), 60)
        api_faults.reset()

    lifter = threading.Thread(target=lift_after_a_failed_priming_list, daemon=True)
    lifter.start()
    try:
        # Ready within `start`'s 30 s deadline; a failed start-up handler would wait 60 s.
        operator.start()
    finally:
        lifter.join(60)
    assert "listing pods failed" in operator.log()
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    serves_tasks(ecs, operator, "after-start")
