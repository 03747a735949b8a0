"""Ownership before action (issue #13): the operator writes only the Kubernetes objects it
created and owns, and adopts no child by its name or labels alone.

A LoadBalancer named like someone else's Kubernetes Service (the CVE-2021-25740 hijack) is
refused with a condition and an event naming the clash and publishes nothing; EndpointSlices,
Tasks and Pods that merely copy the operator's labels are neither changed, counted nor adopted.
"""

from __future__ import annotations

import pytest

from support.ecs_api import GROUP, TASK_LABEL, Ecs, condition
from support.load_balancers import (
    LB_NAME,
    SERVICE_NAME_LABEL,
    SLICE_MANAGED_BY_LABEL,
    WEB_PORT,
    LoadBalancers,
    lb_entry,
    load_balancer,
    web_definition,
)
from support.services import SERVICE_LABEL, Services

FAMILY = "web"
SERVICE = "web"
CLASHING = "db"
CONVERGE = 45
MANAGED_BY = {"app.kubernetes.io/managed-by": "ecs-operator"}


@pytest.fixture
def services(ecs: Ecs) -> Services:
    return Services(ecs)


@pytest.fixture
def lbs(services: Services) -> LoadBalancers:
    return LoadBalancers(services)


def kubernetes_service(name: str, labels: dict[str, str]) -> dict[str, object]:
    """Someone else's Service (a database's), possibly with labels copied from the operator."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": {"app": name}, "ports": [{"name": "pg", "port": 5432}]},
    }


def serving(services: Services, lbs: LoadBalancers, count: int, name: str = LB_NAME) -> None:
    services.ecs.wait(
        lambda: lbs.serving_all_running(SERVICE, count, name),
        f"{count} RUNNING tasks of {SERVICE} listed and healthy in {name}",
        lambda: (lbs.status(name), lbs.listed_endpoints(name), lbs.running_pod_ips(SERVICE)),
        CONVERGE,
    )


@pytest.mark.parametrize("labels", [{}, MANAGED_BY], ids=["foreign", "forged-label"])
def test_a_load_balancer_named_like_another_service_is_refused_and_publishes_nothing(
    services: Services, lbs: LoadBalancers, labels: dict[str, str]
) -> None:
    foreign = services.json(
        "POST",
        services.ecs.path("services", group=""),
        (201,),
        json=kubernetes_service(CLASHING, labels),
    )
    lbs.create(load_balancer(CLASHING))
    services.create_body(web_definition(FAMILY))
    services.ecs.wait_accepted(FAMILY)
    services.create(SERVICE, FAMILY, desiredCount=1, loadBalancers=[lb_entry(CLASHING)])

    def refused() -> dict[str, object] | None:
        ready = condition(lbs.status(CLASHING), "Ready")
        return ready if ready.get("reason") == "NameConflict" else None

    ready = services.wait(refused, "the LoadBalancer refused", SERVICE, CONVERGE)
    assert ready["status"] == "False"
    assert f"the Service '{CLASHING}' in this namespace is not managed by it" in str(
        ready["message"]
    )
    assert condition(lbs.status(CLASHING), "Degraded")["status"] == "True"

    # The Service that names it says why it cannot use it, and nothing is registered or
    # published for the other Service.
    def service_reports() -> str | None:
        message = str(condition(services.status(SERVICE), "Degraded").get("message", ""))
        return message if "spec.loadBalancers[0].loadBalancerName" in message else None

    message = services.wait(service_reports, "the Service reports the clash", SERVICE, CONVERGE)
    assert f"the Service '{CLASHING}' in this namespace is not managed by it" in message
    assert not lbs.targets(CLASHING)
    # (A real cluster's EndpointSlice controller keeps slices of its own for the other Service.)
    published = [
        piece
        for piece in lbs.slices(CLASHING)
        if piece["metadata"]["labels"].get("endpointslice.kubernetes.io/managed-by")
        == "ecs-operator"
    ]
    assert published == []
    after = lbs.kubernetes_service(CLASHING)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"]
    assert "ownerReferences" not in after["metadata"]
    events = [e for e in services.ecs.events(CLASHING) if e["reason"] == "NameConflict"]
    assert events, "no NameConflict event"
    assert events[0]["involvedObject"]["kind"] == "LoadBalancer"
    assert f"Service '{CLASHING}'" in events[0]["message"]

    # Once the name is free, the LoadBalancer takes it and publishes its own Service.
    services.ecs.delete("services", CLASHING, group="")
    serving(services, lbs, 1, CLASHING)
    own = lbs.kubernetes_service(CLASHING)
    assert own is not None
    assert own["metadata"]["ownerReferences"][0]["kind"] == "LoadBalancer"
    assert condition(lbs.status(CLASHING), "Ready")["status"] == "True"


def test_forged_endpoint_slices_and_tasks_are_neither_changed_nor_counted(
    services: Services, lbs: LoadBalancers
) -> None:
    lbs.create(load_balancer())
    services.create_body(web_definition(FAMILY))
    services.ecs.wait_accepted(FAMILY)
    services.create(SERVICE, FAMILY, desiredCount=1, loadBalancers=[lb_entry()])
    serving(services, lbs, 1)
    # Copies of the operator's labels: a slice for the LoadBalancer's Service, and a Task that
    # claims to be one of the Service's.
    slice_labels = {
        SERVICE_NAME_LABEL: LB_NAME,
        SLICE_MANAGED_BY_LABEL: "ecs-operator",
        **MANAGED_BY,
    }
    forged_slice = services.json(
        "POST",
        services.ecs.path("endpointslices", group="discovery.k8s.io", version="v1"),
        (201,),
        json={
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": f"{LB_NAME}-forged", "labels": slice_labels},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.99.0.1"], "conditions": {"ready": True}}],
            "ports": [{"name": "port-80", "port": WEB_PORT, "protocol": "TCP"}],
        },
    )
    # A Task with the Service's label. (One that names the Service as its owner with another
    # object's uid is garbage: kube-controller-manager's collector deletes it, and so does the
    # sandbox's, test_conformance_delete; the operator's side is core.ownership's unit tests.)
    forged = ("web-forged",)
    for name in forged:
        body = {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "Task",
            "metadata": {"name": name, "labels": {SERVICE_LABEL: SERVICE}},
            "spec": {"taskDefinition": FAMILY},
        }
        services.json("POST", services.ecs.path("tasks"), (201,), json=body)
    for name in forged:
        # Not one of the Service's: no registration to wait for (ACTIVATING), it just runs.
        services.ecs.wait_last_status(name, "RUNNING")

    services.update(SERVICE, desiredCount=2)

    def own_endpoints() -> dict[str, str]:
        return {
            endpoint["targetRef"]["name"]: endpoint["addresses"][0]
            for piece in lbs.slices()
            if piece["metadata"]["name"] == f"{LB_NAME}-0"
            for endpoint in piece.get("endpoints") or ()
            if (endpoint.get("conditions") or {}).get("ready")
        }

    def service_pods() -> dict[str, str]:
        # The test's selector is a label, which the forged task copies; the operator's is not.
        return {k: v for k, v in lbs.running_pod_ips(SERVICE).items() if k not in forged}

    services.ecs.wait(
        lambda: len(service_pods()) == 2 and own_endpoints() == service_pods(),
        "the service's 2 RUNNING tasks listed in the LoadBalancer's own slice",
        lambda: (lbs.status(), own_endpoints(), service_pods()),
        CONVERGE,
    )
    status = services.status(SERVICE)
    assert status["runningCount"] == 2, status
    assert not set(forged) & {t["task"] for t in lbs.targets()}
    for name in forged:
        assert services.ecs.task(name)["spec"].get("desiredStatus", "RUNNING") == "RUNNING"
    kept = next((s for s in lbs.slices() if s["metadata"]["name"] == f"{LB_NAME}-forged"), None)
    assert kept is not None, "the operator deleted an EndpointSlice it does not own"
    assert kept["metadata"]["resourceVersion"] == forged_slice["metadata"]["resourceVersion"]


def test_a_pod_with_a_tasks_name_and_labels_is_not_adopted(ecs: Ecs) -> None:
    forged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "lonely", "labels": {TASK_LABEL: "lonely"}},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
    }
    response = ecs.http.post(ecs.path("pods", group=""), json=forged)
    assert response.status_code == 201, response.text
    ecs.create_task_definition("idle")
    ecs.create_task("lonely", "idle")
    status = ecs.wait_stopped("lonely")
    assert "a Pod named lonely exists and is not this task's" in status["stoppedReason"]
    pod = ecs.pod("lonely")
    assert pod is not None and pod["metadata"]["uid"] == response.json()["metadata"]["uid"]
