"""LoadBalancers end to end: the real operator on the sandbox registers service tasks as targets
and keeps a Kubernetes Service and its EndpointSlices in step (reference/targets.md R5).

The traffic scenarios watch Tasks, Pods, EndpointSlices and LoadBalancers and check the R5
invariants after every committed change (`support.load_balancers.EndpointInvariants`): nothing
is listed that is not RUNNING and healthy or whose Pod is going, and a Pod is deleted only
after its target drained for the whole deregistration delay.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.ecs_api import GROUP, VERSION, Ecs, KubectlRunner, Plugin, condition, task
from support.helpers import ClusterTarget
from support.load_balancers import (
    DEREGISTRATION_DELAY,
    LB_NAME,
    LISTENER_PORT,
    WEB_CONTAINER,
    WEB_PORT,
    ClusterWatch,
    EndpointInvariants,
    LoadBalancers,
    assert_clean,
    counted,
    lb_entry,
    load_balancer,
    namespace_paths,
    parse_time,
    web_definition,
)
from support.services import (
    UNHEALTHY_ANNOTATION,
    Services,
    deployment_configuration,
    is_live,
    is_stopped,
    revision_of,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "web-load-balancer.yaml"
FAMILY = "web"
SERVICE = "web"
# Registration needs two passing checks 5 s apart; draining lasts DEREGISTRATION_DELAY.
CONVERGE = 30


@pytest.fixture
def services(ecs: Ecs) -> Services:
    return Services(ecs)


@pytest.fixture
def lbs(services: Services) -> LoadBalancers:
    return LoadBalancers(services)


def launch(services: Services, lbs: LoadBalancers, desired: int, **spec: object) -> None:
    lbs.create(load_balancer())
    services.create_body(web_definition(FAMILY))
    services.ecs.wait_accepted(FAMILY)
    services.create(SERVICE, FAMILY, desiredCount=desired, loadBalancers=[lb_entry()], **spec)


def wait_serving(services: Services, lbs: LoadBalancers, count: int) -> None:
    services.ecs.wait(
        lambda: lbs.serving_all_running(SERVICE, count),
        f"{count} RUNNING tasks of {SERVICE} listed and healthy in {LB_NAME}",
        lambda: (lbs.status().get("targets"), lbs.listed_endpoints(), lbs.running_pod_ips(SERVICE)),
        CONVERGE,
    )


def mark_unhealthy(services: Services, pod: str) -> None:
    annotations = {UNHEALTHY_ANNOTATION: WEB_CONTAINER}
    services.patch("pods", pod, {"metadata": {"annotations": annotations}}, group="")


def test_targets_follow_healthy_tasks_and_drain_on_scale_in(
    services: Services, lbs: LoadBalancers
) -> None:
    check = EndpointInvariants(LB_NAME, SERVICE, DEREGISTRATION_DELAY)
    with ClusterWatch(services, namespace_paths(services)) as watch:
        launch(services, lbs, 3)
        wait_serving(services, lbs, 3)

        kube_service = lbs.kubernetes_service()
        assert kube_service is not None
        assert "selector" not in kube_service["spec"]
        assert [(p["port"], p["targetPort"]) for p in kube_service["spec"]["ports"]] == [
            (LISTENER_PORT, f"port-{LISTENER_PORT}")
        ]
        assert kube_service["metadata"]["ownerReferences"][0]["kind"] == "LoadBalancer"
        (piece,) = lbs.slices()
        assert piece["metadata"]["name"] == f"{LB_NAME}-0"
        assert piece["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == (
            "ecs-operator"
        )
        assert {p["port"] for p in piece["ports"]} == {WEB_PORT}
        status = lbs.status()
        assert status["services"] == [SERVICE]
        assert condition(status, "Ready")["status"] == "True"
        assert {t["state"] for t in status["targets"]} == {"healthy"}

        services.update(SERVICE, desiredCount=1)
        services.wait(
            lambda: (
                sum(map(is_live, services.tasks(SERVICE))) == 1
                and sum(map(is_stopped, services.tasks(SERVICE))) == 2
            ),
            "scaled in to 1 (2 tasks STOPPED)",
            SERVICE,
            CONVERGE,
        )
        wait_serving(services, lbs, 1)
    assert_clean(watch, check)
    assert len(check.listed) == 3
    assert len(check.stopped_pods) == 2
    assert set(check.draining_since) == check.stopped_pods

    def recorded() -> bool:
        counts = lbs.event_counts(SERVICE)
        group = f" targets in (target-group {LB_NAME})"
        prefix = f"(service {SERVICE})"
        return (
            counted(counts, f"{prefix} registered", group) == 3
            and counted(counts, f"{prefix} deregistered", group) == 2
            and counted(counts, f"{prefix} has begun draining connections on", " tasks.") == 2
        )

    services.ecs.wait(recorded, "ECS events", lambda: lbs.event_counts(SERVICE), 10)


DELETE_DRAIN_DELAY = 8  # seconds: long enough to see the drain, and a hanging delete


def described_services(plugin: Plugin) -> dict[str, Any]:
    """`kubectl ecs describe-services --services web -o json`."""
    result = plugin("describe-services", "--services", SERVICE, "-o", "json")
    assert result.returncode == 0, result.stderr
    described: dict[str, Any] = json.loads(result.stdout)
    return described


def test_kubectl_delete_of_a_load_balanced_service_returns_at_once_and_its_tasks_drain(
    services: Services,
    lbs: LoadBalancers,
    kubectl: KubectlRunner,
    plugin: Plugin,
    target: ClusterTarget,
) -> None:
    """ECS's DeleteService: `kubectl delete ecssvc` (default --wait) returns at once, not after
    the deregistration delay; the tasks, deleted with it, stay DEACTIVATING while their
    targets drain (no longer listed ready, their Pods still running), `kubectl ecs
    describe-services` shows the Service DRAINING, and then the tasks are gone."""
    check = EndpointInvariants(LB_NAME, SERVICE, DELETE_DRAIN_DELAY)
    with ClusterWatch(services, namespace_paths(services)) as watch:
        lbs.create(load_balancer(deregistrationDelaySeconds=DELETE_DRAIN_DELAY))
        services.create_body(web_definition(FAMILY))
        services.ecs.wait_accepted(FAMILY)
        services.create(SERVICE, FAMILY, desiredCount=2, loadBalancers=[lb_entry()])
        wait_serving(services, lbs, 2)
        tasks = {t["metadata"]["name"] for t in services.tasks(SERVICE)}

        started = time.monotonic()
        deleted = kubectl("delete", "-n", services.namespace, "ecssvc", SERVICE)
        took = time.monotonic() - started
        assert deleted.returncode == 0, deleted.stderr
        assert took < DELETE_DRAIN_DELAY / 2, f"kubectl delete took {took:.1f} s"
        assert services.ecs.get("services", SERVICE) is None

        def draining() -> bool:
            targets = {t["task"]: t["state"] for t in lbs.targets()}
            going = services.tasks(SERVICE)
            return (
                {t["metadata"]["name"] for t in going} == tasks
                and all(t["metadata"].get("deletionTimestamp") for t in going)
                and {(t.get("status") or {}).get("lastStatus") for t in going} == {"DEACTIVATING"}
                and targets == dict.fromkeys(tasks, "draining")
                and not lbs.listed_endpoints()
            )

        services.ecs.wait(
            draining,
            "the deleted Service's tasks DEACTIVATING, their targets draining, none listed",
            lambda: (lbs.targets(), [t.get("status") for t in services.tasks(SERVICE)]),
            DELETE_DRAIN_DELAY / 2,
        )
        (entry,) = described_services(plugin)["services"]
        assert (entry["serviceName"], entry["status"]) == (SERVICE, "DRAINING")
        assert lbs.status()["drainingCount"] == 2

        services.ecs.wait(
            lambda: not services.tasks(SERVICE) and not lbs.targets() and not lbs.slices(),
            "the tasks and their targets gone once drained",
            lambda: (lbs.targets(), [t.get("status") for t in services.tasks(SERVICE)]),
            DELETE_DRAIN_DELAY + CONVERGE * target.slowness,
        )
    assert_clean(watch, check)
    assert set(check.draining_since) == check.listed == check.stopped_pods == tasks
    assert described_services(plugin)["failures"] == [{"arn": SERVICE, "reason": "MISSING"}]

    def recorded() -> bool:
        counts = lbs.event_counts(SERVICE)
        prefix = f"(service {SERVICE})"
        return counted(counts, f"{prefix} has begun draining connections on", " tasks.") == 2

    services.ecs.wait(recorded, "the drain's ECS events", lambda: lbs.event_counts(SERVICE), 10)


def test_rolling_deployment_drains_old_tasks_before_stopping_them(
    services: Services, lbs: LoadBalancers
) -> None:
    check = EndpointInvariants(LB_NAME, SERVICE, DEREGISTRATION_DELAY)
    with ClusterWatch(services, namespace_paths(services)) as watch:
        launch(
            services,
            lbs,
            2,
            deploymentConfiguration=deployment_configuration(100, 200),
        )
        wait_serving(services, lbs, 2)
        first = {t["metadata"]["name"] for t in services.tasks(SERVICE)}

        services.update_task_definition(
            FAMILY, web_definition(FAMILY, environment=[{"name": "V", "value": "2"}])["spec"]
        )
        services.wait(
            lambda: services.steady(SERVICE, 2, f"{FAMILY}:2"),
            "rolled out to web:2",
            SERVICE,
            CONVERGE * 2,
        )
        wait_serving(services, lbs, 2)
        assert not set(lbs.listed_endpoints()) & first
        assert {revision_of(t) for t in services.live(SERVICE)} == {f"{FAMILY}:2"}
    assert_clean(watch, check)
    assert first <= check.stopped_pods
    assert first <= set(check.draining_since)


def test_unhealthy_target_leaves_the_endpoints_and_its_task_is_replaced(
    services: Services, lbs: LoadBalancers
) -> None:
    check = EndpointInvariants(LB_NAME, SERVICE, DEREGISTRATION_DELAY)
    with ClusterWatch(services, namespace_paths(services)) as watch:
        launch(services, lbs, 2)
        wait_serving(services, lbs, 2)
        victim = sorted(lbs.listed_endpoints())[0]
        mark_unhealthy(services, victim)
        stopped = services.ecs.wait_stopped(victim, timeout=CONVERGE)
        wait_serving(services, lbs, 2)
    assert_clean(watch, check)
    assert stopped["stoppedReason"] == f"Task failed ELB health checks in (target-group {LB_NAME})"
    assert stopped["stopCode"] == "ServiceSchedulerInitiated"
    assert victim in check.draining_since
    assert victim not in lbs.running_pod_ips(SERVICE)
    messages = lbs.event_counts(SERVICE)
    assert any(
        m.startswith(f"(service {SERVICE}) (task ")
        and m.endswith(
            f"(port {WEB_PORT}) is unhealthy in (target-group {LB_NAME}) due to "
            "(reason Health checks failed)."
        )
        for m in messages
    ), messages


def test_grace_period_holds_the_stop_of_an_unhealthy_task(
    services: Services, lbs: LoadBalancers
) -> None:
    """The health check turns the target unhealthy about 15 s after the task starts; the grace
    ends later, so the target is unlisted at once but deregistered only once it ended."""
    grace = 18
    launch(services, lbs, 1, healthCheckGracePeriodSeconds=grace)
    wait_serving(services, lbs, 1)
    (victim,) = lbs.listed_endpoints()
    mark_unhealthy(services, victim)

    def unlisted_and_unhealthy() -> bool:
        states = {t["task"]: t["state"] for t in lbs.targets()}
        return victim not in lbs.listed_endpoints() and states.get(victim) == "unhealthy"

    services.wait(unlisted_and_unhealthy, f"{victim} unlisted, unhealthy", SERVICE, CONVERGE)
    assert services.ecs.task(victim)["spec"].get("desiredStatus", "RUNNING") == "RUNNING"
    draining = services.ecs.wait(
        lambda: next(
            (t for t in lbs.targets() if t["task"] == victim and t["state"] == "draining"), None
        ),
        f"{victim} deregistered once the grace period ended",
        lambda: lbs.targets(),
        grace,
    )
    started = services.ecs.status(victim)["startedAt"]
    waited = parse_time(draining["drainingSince"]) - parse_time(started)
    assert waited.total_seconds() >= grace - 1, (started, draining)


def test_deleting_a_load_balancer_in_use_waits_says_so_on_both_then_goes(
    services: Services, lbs: LoadBalancers
) -> None:
    launch(services, lbs, 1)
    wait_serving(services, lbs, 1)
    lbs.delete()

    def service_reports() -> str | None:
        message = str(condition(services.status(SERVICE), "Degraded").get("message", ""))
        return message if f"LoadBalancer '{LB_NAME}' is being deleted" in message else None

    message = services.wait(service_reports, "the Service reports the deletion", SERVICE, 15)
    assert "spec.loadBalancers[0].loadBalancerName" in message

    def load_balancer_reports() -> str | None:
        message = str(condition(lbs.status(), "Degraded").get("message", ""))
        return message if "still use it" in message and SERVICE in message else None

    services.wait(load_balancer_reports, "the LoadBalancer reports its users", SERVICE, 15)
    # Held while in use: traffic keeps flowing to the Service's healthy tasks.
    assert lbs.kubernetes_service() is not None
    assert lbs.listed_endpoints()
    # Once no Service names it, the deletion completes and the data path is collected.
    services.update(SERVICE, loadBalancers=None)
    services.wait(
        lambda: lbs.kubernetes_service() is None and not lbs.slices(),
        "the LoadBalancer's Kubernetes Service and EndpointSlices garbage-collected",
        SERVICE,
        CONVERGE,
    )


@pytest.mark.parametrize(
    ("entry", "field", "detail"),
    [
        (
            lb_entry(container_name="db"),
            "spec.loadBalancers[0].containerName",
            "no container named 'db' in the task definition (containers: web)",
        ),
        (
            lb_entry(port=9090),
            "spec.loadBalancers[0].containerPort",
            "container 'web' has no port mapping for 9090 (its containerPorts: 8080)",
        ),
    ],
    ids=["containerName", "containerPort"],
)
def test_a_load_balancer_entry_must_match_the_task_definition(
    services: Services, lbs: LoadBalancers, entry: dict[str, object], field: str, detail: str
) -> None:
    lbs.create(load_balancer())
    services.create_body(web_definition(FAMILY))
    services.ecs.wait_accepted(FAMILY)
    services.create(SERVICE, FAMILY, desiredCount=2, loadBalancers=[entry])

    def refused() -> str | None:
        status = services.status(SERVICE)
        message = str(condition(status, "Degraded").get("message", ""))
        return message if field in message else None

    message = services.wait(refused, f"Degraded names {field}", SERVICE, 15)
    assert detail in message
    assert services.tasks(SERVICE) == []


def test_a_standalone_task_cannot_use_a_load_balancer(ecs: Ecs) -> None:
    body = task("solo", FAMILY, loadBalancers=[lb_entry()])
    response = ecs.http.post(f"/apis/{GROUP}/{VERSION}/namespaces/{ecs.namespace}/tasks", json=body)
    assert response.status_code == 422, response.text
    assert "spec.loadBalancers" in response.text
    assert "standalone tasks cannot use a load balancer" in response.text


def test_the_example_registers_its_tasks(
    services: Services, lbs: LoadBalancers, kubectl: KubectlRunner
) -> None:
    applied = kubectl("apply", "-n", services.namespace, "-f", str(EXAMPLE))
    assert applied.returncode == 0, applied.stderr
    example = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    lb = next(d for d in example if d["kind"] == "LoadBalancer")
    service = next(d for d in example if d["kind"] == "Service")
    desired = service["spec"]["desiredCount"]
    services.ecs.wait(
        lambda: lbs.serving_all_running(
            service["metadata"]["name"], desired, lb["metadata"]["name"]
        ),
        f"the example's {desired} tasks listed and healthy",
        lambda: lbs.status(lb["metadata"]["name"]),
        CONVERGE,
    )
