"""Load-balancer targets: the ELBv2 state machine, the data path (Service, EndpointSlices),
the questions the Task and Service controllers ask, validation and status."""

import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from ecs_operator.core import names
from ecs_operator.core.load_balancing import (
    DepartedTasks,
    ServiceMembers,
    TargetsPlan,
    awaiting_registration,
    deregistration_complete,
    desired_targets,
    draining_deadline,
    failed_elb_health,
    holding_services,
    lb_status,
    load_balancer_problems,
    name_clash,
    names_load_balancer,
    own_endpoint_slices,
    own_pods,
    readiness_probe,
    render_endpoint_slices,
    render_service,
    reported_refusal,
    service_changes,
    slice_changes,
    task_deregistering,
    task_load_balancer_health,
)
from ecs_operator.models.loadbalancer import LoadBalancer, Target
from ecs_operator.models.service import Service, ServiceSpec
from ecs_operator.models.task import Task
from ecs_operator.models.taskdefinition import TaskDefinitionSpec
from support.podfactory import T0, at, pod, running, waiting

PORT = 8080
ENTRY = {"loadBalancerName": "web-lb", "containerName": "web", "containerPort": PORT}


def load_balancer(
    targets: Sequence[Target] = (), name: str = "web-lb", **spec: Any
) -> LoadBalancer:
    raw: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "default", "uid": "lb-uid", "generation": 1},
        "spec": {"listeners": [{"port": 80}]} | spec,
    }
    if targets:
        raw["status"] = {"targets": [t.model_dump(mode="json") for t in targets]}
    return LoadBalancer.model_validate(raw)


def service(name: str = "web", entries: Sequence[Mapping[str, Any]] = (ENTRY,)) -> Service:
    spec: dict[str, Any] = {"taskDefinition": "web:1", "desiredCount": 2}
    if entries:
        spec["loadBalancers"] = list(entries)
    return Service.model_validate(
        {"metadata": {"name": name, "namespace": "default"}, "spec": spec}
    )


def task(
    name: str,
    last_status: str = "RUNNING",
    *,
    stop: bool = False,
    disconnected: bool = False,
    zone: str = "zone-a",
) -> Task:
    status: dict[str, Any] = {
        "taskArn": f"{abs(hash(name)) % 16**32:032x}",
        "lastStatus": last_status,
        "desiredStatus": "STOPPED" if stop or last_status == "STOPPED" else "RUNNING",
        "availabilityZone": zone,
        "nodeName": f"node-{zone}",
        "startedAt": T0.isoformat(),
    }
    if disconnected:
        status["connectivity"] = "DISCONNECTED"
    return Task.model_validate(
        {
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"taskDefinition": "web:1", "desiredStatus": "STOPPED" if stop else "RUNNING"},
            "status": status,
        }
    )


def task_pod(
    name: str, *, ready: bool = True, ip: str = "10.0.0.1", port: int = PORT, **kw: Any
) -> dict[str, Any]:
    manifest = pod(
        name,
        containers=[running("web", ready=ready)],
        ports={"web": [{"containerPort": port, "protocol": "TCP"}]},
        **kw,
    )
    manifest["status"]["podIP"] = ip
    return manifest


def members(
    tasks: Sequence[Task], pods: Sequence[dict[str, Any]], svc: Service | None = None
) -> list[ServiceMembers]:
    return [
        ServiceMembers(
            service=svc or service(),
            tasks=list(tasks),
            pods={p["metadata"]["name"]: p for p in pods},
        )
    ]


def step(lb: LoadBalancer, plan: TargetsPlan) -> LoadBalancer:
    """The LoadBalancer after the controller wrote the plan's targets."""
    return load_balancer(plan.targets, name=lb.metadata.name, **lb.spec.model_dump(mode="json"))


def messages(plan: TargetsPlan) -> list[str]:
    return [event.message for event in plan.events]


def one(plan: TargetsPlan) -> Target:
    [target] = plan.targets
    return target


# ---------------------------------------------------------------------------------------------
# Registration and health


def test_a_running_ready_task_is_registered_healthy() -> None:
    plan = desired_targets(load_balancer(), members([task("web-1")], [task_pod("web-1")]), at(0))
    target = one(plan)
    assert (target.task, target.service, target.ip, target.port) == (
        "web-1",
        "web",
        "10.0.0.1",
        PORT,
    )
    assert (target.state, target.reason, target.availability_zone) == ("healthy", None, "zone-a")
    assert target.id == task("web-1").status.task_arn
    assert target.registered_at == at(0)
    assert messages(plan) == ["(service web) registered 1 targets in (target-group web-lb)"]


def test_a_resync_changes_nothing_and_says_nothing() -> None:
    group = members([task("web-1")], [task_pod("web-1")])
    first = desired_targets(load_balancer(), group, at(0))
    again = desired_targets(step(load_balancer(), first), group, at(60))
    assert again.targets == first.targets
    assert again.events == ()
    assert again.requeue_after is None


def test_initial_until_ready_then_unhealthy_after_both_thresholds() -> None:
    lb = load_balancer()
    not_ready = members([task("web-1")], [task_pod("web-1", ready=False)])
    plan = desired_targets(lb, not_ready, at(0))
    assert (one(plan).state, one(plan).reason) == ("initial", "Elb.InitialHealthChecking")
    assert one(plan).description == "Initial health checks in progress"
    # (healthyThresholdCount 5 + unhealthyThresholdCount 2) * interval 30 s
    assert plan.requeue_after == 210
    lb = step(lb, plan)
    assert one(desired_targets(lb, not_ready, at(209))).state == "initial"
    late = desired_targets(lb, not_ready, at(210))
    assert (one(late).state, one(late).reason) == ("unhealthy", "Target.FailedHealthChecks")
    assert messages(late) == [
        f"(service web) (task web-1) (port {PORT}) is unhealthy in (target-group "
        "web-lb) due to (reason Health checks failed)."
    ]
    ready = members([task("web-1")], [task_pod("web-1")])
    recovered = desired_targets(step(lb, late), ready, at(240))
    assert (one(recovered).state, one(recovered).registered_at) == ("healthy", at(0))
    assert recovered.events == ()


def test_a_healthy_target_that_stops_being_ready_is_unhealthy_at_once() -> None:
    lb = step(
        load_balancer(),
        desired_targets(load_balancer(), members([task("web-1")], [task_pod("web-1")]), at(0)),
    )
    plan = desired_targets(lb, members([task("web-1")], [task_pod("web-1", ready=False)]), at(10))
    assert (one(plan).state, one(plan).description) == ("unhealthy", "Health checks failed")
    # Still unhealthy on the next look: the event is not repeated.
    again = desired_targets(
        step(lb, plan), members([task("web-1")], [task_pod("web-1", ready=False)]), at(20)
    )
    assert one(again).state == "unhealthy"
    assert again.events == ()


@pytest.mark.parametrize(
    ("last_status", "registered"),
    [("PENDING", False), ("ACTIVATING", True), ("RUNNING", True), ("DEACTIVATING", False)],
)
def test_only_activating_and_running_tasks_register(last_status: str, registered: bool) -> None:
    plan = desired_targets(
        load_balancer(), members([task("web-1", last_status)], [task_pod("web-1")]), at(0)
    )
    assert bool(plan.targets) is registered


def test_a_ready_container_of_an_activating_task_stays_initial_until_the_task_runs() -> None:
    """No endpoint takes traffic before its task is RUNNING, even where a Pod is ready at
    once (a real cluster: the Task's RUNNING write lands after the EndpointSlice's)."""
    lb = load_balancer()
    plan = desired_targets(lb, members([task("web-1", "ACTIVATING")], [task_pod("web-1")]), at(0))
    assert (one(plan).state, one(plan).reason) == ("initial", "Elb.InitialHealthChecking")
    assert render_endpoint_slices(lb, plan.targets) == []
    running = desired_targets(step(lb, plan), members([task("web-1")], [task_pod("web-1")]), at(1))
    assert (one(running).state, one(running).registered_at) == ("healthy", at(0))


@pytest.mark.parametrize(
    "broken",
    [
        {"ip": ""},
        {"port": 9090},
        {"deleting": True},
    ],
    ids=["no pod IP", "container lacks the port", "pod being deleted"],
)
def test_a_pod_that_cannot_serve_is_not_registered(broken: dict[str, Any]) -> None:
    plan = desired_targets(
        load_balancer(), members([task("web-1")], [task_pod("web-1", **broken)]), at(0)
    )
    assert plan.targets == ()


def test_tasks_without_a_pod_or_of_other_load_balancers_are_not_registered() -> None:
    other = service(entries=[ENTRY | {"loadBalancerName": "other-lb"}])
    assert desired_targets(load_balancer(), members([task("web-1")], []), at(0)).targets == ()
    plan = desired_targets(
        load_balancer(), members([task("web-1")], [task_pod("web-1")], other), at(0)
    )
    assert plan.targets == ()


def test_ecs_container_names_map_through_the_pod_annotation() -> None:
    svc = service(entries=[ENTRY | {"containerName": "Web_App"}])
    manifest = task_pod("web-1", ecs_names={"web": "Web_App"})
    plan = desired_targets(load_balancer(), members([task("web-1")], [manifest], svc), at(0))
    assert one(plan).port == PORT


def test_a_native_sidecar_port_can_be_a_target() -> None:
    manifest = pod(
        "web-1",
        containers=[waiting("main")],
        sidecars=[running("web")],
        ports={"web": [{"containerPort": PORT}]},
    )
    manifest["status"]["podIP"] = "10.0.0.9"
    plan = desired_targets(load_balancer(), members([task("web-1")], [manifest]), at(0))
    assert (one(plan).ip, one(plan).state) == ("10.0.0.9", "healthy")


def test_two_services_register_into_one_target_group_in_a_stable_order() -> None:
    api = service("api")
    group = [
        *members([task("web-1")], [task_pod("web-1", ip="10.0.0.1")]),
        *members([task("api-1", zone="zone-b")], [task_pod("api-1", ip="10.0.0.2")], api),
    ]
    plan = desired_targets(load_balancer(), group, at(0))
    assert [t.task for t in plan.targets] == ["api-1", "web-1"]
    assert messages(plan) == [
        "(service api) registered 1 targets in (target-group web-lb)",
        "(service web) registered 1 targets in (target-group web-lb)",
    ]


# ---------------------------------------------------------------------------------------------
# Deregistration


def registered(*tasks: Task, **spec: Any) -> LoadBalancer:
    """A LoadBalancer with the given tasks registered healthy at T0."""
    lb = load_balancer(**spec)
    pods = [task_pod(t.metadata.name) for t in tasks]
    return step(lb, desired_targets(lb, members(tasks, pods), at(0)))


def test_a_stopping_task_drains_for_the_delay_then_goes() -> None:
    lb = registered(task("web-1"))
    stopping = members([task("web-1", stop=True)], [task_pod("web-1")])
    plan = desired_targets(lb, stopping, at(100))
    target = one(plan)
    assert (target.state, target.reason) == ("draining", "Target.DeregistrationInProgress")
    assert (target.draining_since, draining_deadline(target, 300)) == (at(100), at(400))
    assert plan.requeue_after == 300
    assert messages(plan) == [
        "(service web) deregistered 1 targets in (target-group web-lb)",
        "(service web) has begun draining connections on 1 tasks.",
    ]
    lb = step(lb, plan)
    deactivating = members([task("web-1", "DEACTIVATING", stop=True)], [task_pod("web-1")])
    later = desired_targets(lb, deactivating, at(399))
    assert (one(later).draining_since, later.events, later.requeue_after) == (at(100), (), 1)
    gone = desired_targets(step(lb, later), deactivating, at(400))
    assert (gone.targets, gone.events) == ((), ())


def test_no_delay_deregisters_at_once() -> None:
    lb = registered(task("web-1"), deregistrationDelaySeconds=0)
    plan = desired_targets(lb, members([task("web-1", stop=True)], [task_pod("web-1")]), at(5))
    assert plan.targets == ()
    assert "has begun draining connections on 1 tasks." in messages(plan)[1]


@pytest.mark.parametrize(
    ("stopped", "pods"),
    [
        (task("web-1", "STOPPED"), []),
        (task("web-1", "STOPPING", stop=True), [task_pod("web-1")]),
        (task("web-1", stop=True, disconnected=True), [task_pod("web-1")]),
        (None, []),
    ],
    ids=["crashed", "stopping without draining", "node lost", "task deleted"],
)
def test_a_target_whose_task_ended_without_draining_is_removed_at_once(
    stopped: Task | None, pods: list[dict[str, Any]]
) -> None:
    lb = registered(task("web-1"))
    plan = desired_targets(lb, members([stopped] if stopped else [], pods), at(50))
    assert plan.targets == ()
    assert messages(plan) == ["(service web) deregistered 1 targets in (target-group web-lb)"]


def test_a_task_that_stops_while_draining_keeps_draining_but_is_no_endpoint() -> None:
    lb = registered(task("web-1"))
    lb = step(
        lb, desired_targets(lb, members([task("web-1", stop=True)], [task_pod("web-1")]), at(0))
    )
    plan = desired_targets(lb, members([task("web-1", "STOPPED")], []), at(30))
    target = one(plan)
    assert (target.state, target.task_stopped, target.draining_since) == ("draining", True, at(0))
    assert render_endpoint_slices(lb, plan.targets) == []
    assert desired_targets(step(lb, plan), members([], []), at(300)).targets == ()


def test_a_service_that_stops_naming_the_load_balancer_drains_its_targets() -> None:
    lb = registered(task("web-1"))
    plan = desired_targets(
        lb, members([task("web-1")], [task_pod("web-1")], service(entries=())), at(10)
    )
    assert one(plan).state == "draining"


def test_a_deleted_service_s_tasks_drain_then_go() -> None:
    """Its Service deleted, the running task (not yet deleted by garbage collection) is
    registered no more: its target drains for the delay, then goes; without its task found
    (``DepartedTasks``) the target would go at once, cutting clients off."""
    lb = registered(task("web-1"))
    departed = [DepartedTasks("web", [task("web-1")], {"web-1": task_pod("web-1")})]
    plan = desired_targets(lb, [], at(10), departed)
    assert (one(plan).state, one(plan).draining_since) == ("draining", at(10))
    assert "(service web) has begun draining connections on 1 tasks." in messages(plan)
    assert render_endpoint_slices(lb, plan.targets)[0]["endpoints"][0]["conditions"] == {
        "ready": False,
        "serving": False,
        "terminating": True,
    }
    assert desired_targets(step(lb, plan), [], at(309), departed).targets == plan.targets
    assert desired_targets(step(lb, plan), [], at(310), departed).targets == ()
    assert desired_targets(lb, [], at(10)).targets == ()


def test_the_task_controller_waits_for_draining_and_registration() -> None:
    spec = service().spec
    lb = load_balancer()
    assert awaiting_registration("web-1", spec, {"web-lb": lb})
    assert not awaiting_registration("web-1", spec, {})  # a missing LB is reported, not awaited
    lb = registered(task("web-1"))
    assert not awaiting_registration("web-1", spec, {"web-lb": lb})
    # A healthy target not yet draining still holds the task in DEACTIVATING.
    assert task_deregistering("web-1", [lb], at(0))
    assert not task_deregistering("web-2", [lb], at(0))
    lb = step(
        lb, desired_targets(lb, members([task("web-1", stop=True)], [task_pod("web-1")]), at(0))
    )
    [target] = lb.status.targets
    assert task_deregistering("web-1", [lb], at(299))
    assert not deregistration_complete(target, lb, at(299))
    assert deregistration_complete(target, lb, at(300))
    assert not task_deregistering("web-1", [lb], at(300))


# ---------------------------------------------------------------------------------------------
# Health as the Service scheduler sees it


def test_healthy_only_when_healthy_in_every_target_group() -> None:
    two = service(entries=[ENTRY, ENTRY | {"loadBalancerName": "api-lb"}]).spec
    web = registered(task("web-1"))
    api = load_balancer(name="api-lb")
    api = step(
        api,
        desired_targets(
            api,
            members(
                [task("web-1")],
                [task_pod("web-1")],
                service(entries=[ENTRY | {"loadBalancerName": "api-lb"}]),
            ),
            at(0),
        ),
    )
    assert task_load_balancer_health("web-1", two, {"web-lb": web, "api-lb": api})
    assert not task_load_balancer_health("web-1", two, {"web-lb": web})
    assert not task_load_balancer_health(
        "web-1", two, {"web-lb": web, "api-lb": load_balancer(name="api-lb")}
    )
    sick = step(
        web, desired_targets(web, members([task("web-1")], [task_pod("web-1", ready=False)]), at(5))
    )
    assert not task_load_balancer_health("web-1", two, {"web-lb": sick, "api-lb": api})
    assert task_load_balancer_health("web-1", service(entries=()).spec, {})


def test_elb_health_failure_waits_for_the_grace_period() -> None:
    lb = registered(task("web-1"))
    sick = step(
        lb, desired_targets(lb, members([task("web-1")], [task_pod("web-1", ready=False)]), at(5))
    )
    assert failed_elb_health("web-1", T0, 60, [sick], at(59)) is None
    assert (
        failed_elb_health("web-1", T0, 60, [sick], at(60))
        == "Task failed ELB health checks in (target-group web-lb)"
    )
    assert failed_elb_health("web-1", T0, 0, [lb], at(60)) is None
    assert failed_elb_health("web-1", None, 0, [sick], at(60)) is None


# ---------------------------------------------------------------------------------------------
# Probe and validation


def test_readiness_probe_carries_the_health_check() -> None:
    probe = readiness_probe(load_balancer().spec, PORT)
    assert probe == {
        "httpGet": {"path": "/", "port": PORT, "scheme": "HTTP"},
        "periodSeconds": 30,
        "timeoutSeconds": 6,
        "successThreshold": 5,
        "failureThreshold": 2,
    }
    tcp = load_balancer(
        listeners=[{"port": 53, "protocol": "TCP_UDP"}],
        healthCheck={"port": 8081, "intervalSeconds": 10, "timeoutSeconds": 5},
    )
    assert readiness_probe(tcp.spec, PORT)["tcpSocket"] == {"port": 8081}
    https = load_balancer(
        listeners=[{"port": 443, "protocol": "HTTPS"}], healthCheck={"path": "/ok"}
    )
    assert readiness_probe(https.spec, PORT)["httpGet"] == {
        "path": "/ok",
        "port": PORT,
        "scheme": "HTTPS",
    }


TASK_DEFINITION = TaskDefinitionSpec.model_validate(
    {
        "family": "web",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "nginx",
                "memory": 128,
                "portMappings": [{"containerPort": PORT}],
            },
            {"name": "log", "image": "fluentbit", "memory": 64},
        ],
    }
)


def test_load_balancer_entries_are_checked_against_the_revision() -> None:
    lbs = {"web-lb": load_balancer()}
    assert load_balancer_problems(service().spec, TASK_DEFINITION, lbs) == []
    bad = service(
        entries=[
            ENTRY | {"containerPort": 9090},
            ENTRY | {"containerName": "db"},
            ENTRY | {"containerName": "log"},
            ENTRY | {"loadBalancerName": "nope"},
        ]
    ).spec
    assert [str(v) for v in load_balancer_problems(bad, TASK_DEFINITION, lbs)] == [
        "spec.loadBalancers[0].containerPort: container 'web' has no port mapping for 9090 "
        "(its containerPorts: 8080)",
        "spec.loadBalancers[1].containerName: no container named 'db' in the task definition "
        "(containers: log, web)",
        "spec.loadBalancers[2].containerPort: container 'log' has no port mapping for 8080 "
        "(its containerPorts: none)",
        "spec.loadBalancers[3].loadBalancerName: no LoadBalancer named 'nope' in this namespace",
    ]
    deleting = LoadBalancer.model_validate(
        load_balancer().model_dump(mode="json")
        | {"metadata": {"name": "web-lb", "deletionTimestamp": "2025-01-01T00:00:00Z"}}
    )
    [problem] = load_balancer_problems(service().spec, TASK_DEFINITION, {"web-lb": deleting})
    assert (
        str(problem)
        == "spec.loadBalancers[0].loadBalancerName: LoadBalancer 'web-lb' is being deleted"
    )
    refused = LoadBalancer.model_validate(
        load_balancer().model_dump(mode="json")
        | {
            "status": lb_status(
                load_balancer(), [], [], [], at(0), "LB refused"
            ).status.model_dump()
        }
    )
    [problem] = load_balancer_problems(service().spec, TASK_DEFINITION, {"web-lb": refused})
    assert str(problem) == "spec.loadBalancers[0].loadBalancerName: LB refused"


# ---------------------------------------------------------------------------------------------
# Service and EndpointSlices


def test_the_service_has_no_selector_and_one_port_per_listener() -> None:
    lb = load_balancer(
        type="NodePort",
        listeners=[{"port": 80, "name": "http"}, {"port": 53, "protocol": "TCP_UDP"}],
    )
    manifest = render_service(lb)
    assert manifest["metadata"]["name"] == "web-lb"
    assert manifest["metadata"]["ownerReferences"][0] | {} == {
        "apiVersion": "ecs.operator.dev/v1alpha1",
        "kind": "LoadBalancer",
        "name": "web-lb",
        "uid": "lb-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert "selector" not in manifest["spec"]
    assert manifest["spec"] == {
        "type": "NodePort",
        "ports": [
            {
                "name": "http",
                "port": 80,
                "protocol": "TCP",
                "targetPort": "http",
                "appProtocol": "http",
            },
            {"name": "port-53", "port": 53, "protocol": "TCP", "targetPort": "port-53"},
            {"name": "port-53-udp", "port": 53, "protocol": "UDP", "targetPort": "port-53-udp"},
        ],
    }


def test_service_changes_ignore_server_defaults_and_keep_node_ports() -> None:
    lb = load_balancer(type="NodePort")
    desired = render_service(lb)
    stored = {
        **desired,
        "spec": {
            **desired["spec"],
            "clusterIP": "10.96.0.10",
            "sessionAffinity": "None",
            "ports": [p | {"nodePort": 30080} for p in desired["spec"]["ports"]],
        },
    }
    assert service_changes(stored, desired) is None
    more = render_service(load_balancer(type="NodePort", listeners=[{"port": 80}, {"port": 81}]))
    patch = service_changes(stored, more)
    assert patch is not None
    assert [p.get("nodePort") for p in patch["spec"]["ports"]] == [30080, None]
    assert service_changes(stored, render_service(load_balancer()))["spec"]["type"] == "ClusterIP"


def target(task_name: str, state: str, port: int = PORT, ip: str = "10.0.0.1", **kw: Any) -> Target:
    return Target.model_validate(
        {
            "id": "a" * 32,
            "task": task_name,
            "service": "web",
            "ip": ip,
            "port": port,
            "state": state,
            "registeredAt": T0.isoformat(),
            "availabilityZone": "zone-a",
            "nodeName": "node-a",
        }
        | kw
    )


def test_slices_list_healthy_targets_ready_and_draining_ones_terminating_only() -> None:
    targets = [
        target("a", "healthy", ip="10.0.0.1"),
        target("b", "draining", ip="10.0.0.2", drainingSince=T0.isoformat()),
        target("c", "initial", ip="10.0.0.3"),
        target("d", "unhealthy", ip="10.0.0.4"),
        target("e", "draining", ip="10.0.0.5", taskStopped=True),
    ]
    [endpoint_slice] = render_endpoint_slices(load_balancer(), targets)
    assert endpoint_slice["metadata"]["name"] == "web-lb-0"
    assert endpoint_slice["metadata"]["labels"]["kubernetes.io/service-name"] == "web-lb"
    assert (
        endpoint_slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
        == "ecs-operator"
    )
    assert endpoint_slice["addressType"] == "IPv4"
    assert endpoint_slice["ports"] == [
        {"name": "port-80", "port": PORT, "protocol": "TCP", "appProtocol": "http"}
    ]
    assert endpoint_slice["endpoints"] == [
        {
            "addresses": ["10.0.0.1"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "targetRef": {"kind": "Pod", "namespace": "default", "name": "a"},
            "nodeName": "node-a",
            "zone": "zone-a",
        },
        {
            "addresses": ["10.0.0.2"],
            "conditions": {"ready": False, "serving": False, "terminating": True},
            "targetRef": {"kind": "Pod", "namespace": "default", "name": "b"},
            "nodeName": "node-a",
            "zone": "zone-a",
        },
    ]


def test_slices_group_by_port_hold_at_most_100_and_render_deterministically() -> None:
    targets = [target(f"t{i:03}", "healthy", ip=f"10.0.{i // 250}.{i % 250}") for i in range(250)]
    targets.append(target("other", "healthy", port=9090, ip="10.9.9.9"))
    slices = render_endpoint_slices(load_balancer(), targets)
    assert [s["metadata"]["name"] for s in slices] == [f"web-lb-{n}" for n in range(4)]
    assert [len(s["endpoints"]) for s in slices] == [100, 100, 50, 1]
    assert [s["ports"][0]["port"] for s in slices] == [PORT, PORT, PORT, 9090]
    shuffled = list(targets)
    random.Random(7).shuffle(shuffled)
    assert render_endpoint_slices(load_balancer(), shuffled) == slices
    assert render_endpoint_slices(load_balancer(), []) == []


def _as_stored(manifest: Mapping[str, Any], version: str = "41") -> dict[str, Any]:
    """``manifest`` as the API server returns it (extra metadata, defaulted fields)."""
    metadata = dict(manifest["metadata"]) | {
        "resourceVersion": version,
        "uid": "slice-uid",
        "generation": 1,
        "creationTimestamp": "2025-01-01T00:00:00Z",
        "managedFields": [{"manager": "ecs-operator"}],
    }
    return {**manifest, "metadata": metadata}


def test_slice_changes_are_empty_for_an_unchanged_set() -> None:
    desired = render_endpoint_slices(load_balancer(), [target("a", "healthy")])
    assert slice_changes([_as_stored(s) for s in desired], desired).empty


def test_slice_changes_create_update_and_delete_only_what_differs() -> None:
    lb = load_balancer()
    before = render_endpoint_slices(
        lb, [target("a", "healthy"), target("b", "healthy", port=9090, ip="10.0.0.2")]
    )
    after = render_endpoint_slices(lb, [target("a", "draining", drainingSince=T0.isoformat())])
    foreign = _as_stored(before[0]) | {
        "metadata": {
            "name": "web-lb-abcde",
            "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
        }
    }
    changes = slice_changes([_as_stored(s) for s in before] + [foreign], after)
    assert changes.create == ()
    [updated] = changes.update
    assert updated["metadata"]["resourceVersion"] == "41"
    assert updated["endpoints"][0]["conditions"]["terminating"] is True
    assert changes.delete == ("web-lb-1",)
    fresh = slice_changes([], after)
    assert [s["metadata"]["name"] for s in fresh.create] == ["web-lb-0"]


# ---------------------------------------------------------------------------------------------
# Status


def test_status_counts_conditions_and_no_write_on_resync() -> None:
    lb = load_balancer(listeners=[{"port": 443, "protocol": "HTTPS"}])
    targets = [target("a", "healthy"), target("b", "unhealthy"), target("c", "initial")]
    update = lb_status(lb, targets, ["web", "web"], [], at(0))
    status = update.status
    assert update.changed
    assert (status.healthy_count, status.unhealthy_count, status.initial_count) == (1, 1, 1)
    assert (status.draining_count, status.services, status.service_name) == (0, ["web"], "web-lb")
    conditions = {c.type: c for c in status.conditions or ()}
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("True", "TargetsHealthy")
    assert (conditions["Degraded"].status, conditions["Degraded"].reason) == (
        "True",
        "TargetsUnhealthy",
    )
    assert [u.field for u in status.unsupported or ()] == ["spec.listeners[0].protocol"]
    written = LoadBalancer.model_validate(
        lb.model_dump(mode="json") | {"status": status.model_dump(mode="json")}
    )
    again = lb_status(written, targets, ["web"], [], at(90))
    assert not again.changed
    assert again.status == status


def test_status_reports_problems_and_missing_targets() -> None:
    problem = "LoadBalancer web-lb is being deleted while Services still use it: web"
    status = lb_status(load_balancer(), [], ["web"], [problem], at(0)).status
    conditions = {c.type: c for c in status.conditions or ()}
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("False", "NoTargets")
    assert (conditions["Degraded"].reason, conditions["Degraded"].message) == (
        "ServiceMisconfigured",
        problem,
    )
    assert status.targets is None


# ---------------------------------------------------------------------------------------------
# Ownership of the data path


def test_only_its_own_labelled_service_is_the_load_balancers() -> None:
    lb = load_balancer(name="db")
    own = _as_stored(render_service(lb))
    assert name_clash(lb, "Service", own) is None
    foreign = {"metadata": {"name": "db", "uid": "svc-uid"}, "spec": {"selector": {"app": "db"}}}
    message = name_clash(lb, "Service", foreign)
    assert message == (
        "LoadBalancer db publishes nothing: the Service 'db' in this namespace is not managed "
        "by it (it has no owner); rename the LoadBalancer or remove that Service"
    )
    labelled = {**foreign, "metadata": {**foreign["metadata"], "labels": own["metadata"]["labels"]}}
    assert name_clash(lb, "Service", labelled) == message
    # A LoadBalancer of the same name before it (deleted, its Service not yet collected).
    previous = {**own["metadata"]["ownerReferences"][0], "uid": "previous-lb-uid"}
    other_lb = {**own, "metadata": {**own["metadata"], "ownerReferences": [previous]}}
    assert "it belongs to LoadBalancer/db" in str(name_clash(lb, "Service", other_lb))
    unlabelled = {**own, "metadata": {**own["metadata"], "labels": {}}}
    assert name_clash(lb, "Service", unlabelled) is not None


def test_slices_with_copied_labels_are_never_changed() -> None:
    lb = load_balancer()
    own = [_as_stored(s) for s in render_endpoint_slices(lb, [target("a", "healthy")])]
    forged = {**own[0], "metadata": {**own[0]["metadata"], "name": "web-lb-forged"}}
    del forged["metadata"]["ownerReferences"]
    other = _as_stored(
        render_endpoint_slices(load_balancer(name="api"), [target("b", "healthy")])[0]
    )
    current = own_endpoint_slices(lb, [*own, forged, other])
    assert [s["metadata"]["name"] for s in current] == ["web-lb-0"]
    assert slice_changes(current, []).delete == ("web-lb-0",)
    clash = name_clash(lb, "EndpointSlice", forged)
    assert clash is not None and "the EndpointSlice 'web-lb-forged'" in clash


def test_a_refused_load_balancer_is_not_ready_and_says_why() -> None:
    lb = load_balancer()
    refusal = "LoadBalancer web-lb publishes nothing: ..."
    update = lb_status(lb, [], ["web"], ["LoadBalancer web-lb is being deleted"], at(0), refusal)
    conditions = {c.type: c for c in update.status.conditions or ()}
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("False", "NameConflict")
    assert conditions["Ready"].message == refusal
    assert (conditions["Degraded"].status, conditions["Degraded"].reason) == (
        "True",
        "NameConflict",
    )
    assert conditions["Degraded"].message == f"{refusal}; LoadBalancer web-lb is being deleted"
    assert reported_refusal(lb) is None
    written = LoadBalancer.model_validate(
        lb.model_dump(mode="json") | {"status": update.status.model_dump(mode="json")}
    )
    assert reported_refusal(written) == refusal
    assert not lb_status(
        written, [], ["web"], ["LoadBalancer web-lb is being deleted"], at(5), refusal
    ).changed
    cleared = lb_status(written, [target("a", "healthy")], ["web"], [], at(9))
    assert {c.type: c.reason for c in cleared.status.conditions or ()}["Ready"] == "TargetsHealthy"


# ---------------------------------------------------------------------------------------------
# Production traffic weights (BLUE_GREEN, LINEAR, CANARY)

GREEN, BLUE = "ecs-svc/2000000000000000000", "ecs-svc/1000000000000000000"


def weighted_service(weight: float | None) -> Service:
    deployments = [
        {"id": GREEN, "status": "PRIMARY", "taskDefinition": "web:2"},
        {"id": BLUE, "status": "ACTIVE", "taskDefinition": "web:1"},
    ]
    for deployment in deployments:
        deployment |= {"createdAt": T0.isoformat(), "updatedAt": T0.isoformat()}
    if weight is not None:
        deployments[0]["productionTrafficWeight"] = weight
    body = service().model_dump(mode="json", by_alias=True, exclude_none=True)
    body["status"] = {"deployments": deployments}
    return Service.model_validate(body)


def of_deployment(name: str, deployment: str) -> Task:
    body = task(name).model_dump(mode="json", by_alias=True, exclude_none=True)
    body["spec"]["startedBy"] = deployment
    return Task.model_validate(body)


def endpoints(weight: float | None, green: int = 9, blue: int = 9) -> tuple[int, int]:
    tasks = [of_deployment(f"g{i}", GREEN) for i in range(green)]
    tasks += [of_deployment(f"b{i}", BLUE) for i in range(blue)]
    pods = [task_pod(t.metadata.name, ip=f"10.0.0.{i + 1}") for i, t in enumerate(tasks)]
    lb = load_balancer()
    svc = weighted_service(weight)
    lb = step(lb, desired_targets(lb, members(tasks, pods, svc), at(0)))
    plan = desired_targets(lb, members(tasks, pods, svc), at(1))
    listed = [
        endpoint["targetRef"]["name"]
        for piece in render_endpoint_slices(lb, plan.targets)
        for endpoint in piece["endpoints"]
    ]
    return sum(n.startswith("g") for n in listed), sum(n.startswith("b") for n in listed)


def test_production_lists_the_mix_the_weight_asks_for() -> None:
    assert endpoints(None) == (9, 9)  # no staged deployment: every healthy task serves
    assert endpoints(0.0) == (0, 9)  # green registered and checked, but no endpoint
    assert endpoints(10.0) == (1, 9)
    assert endpoints(50.0) == (9, 9)
    assert endpoints(100.0) == (9, 0)


def test_green_targets_without_traffic_are_registered_healthy() -> None:
    tasks = [of_deployment("g0", GREEN), of_deployment("b0", BLUE)]
    pods = [task_pod("g0", ip="10.0.0.1"), task_pod("b0", ip="10.0.0.2")]
    lb = load_balancer()
    plan = desired_targets(lb, members(tasks, pods, weighted_service(0.0)), at(0))
    by_task = {t.task: t for t in plan.targets}
    assert by_task["g0"].state == "healthy" and by_task["g0"].serving is False
    assert by_task["b0"].serving is None  # serving (the field is absent)
    assert not awaiting_registration("g0", service().spec, {"web-lb": step(lb, plan)})


def test_the_alternate_load_balancer_is_checked_too() -> None:
    def with_alternate(alternate: str) -> ServiceSpec:
        return ServiceSpec.model_validate(
            {
                "taskDefinition": "web:1",
                "desiredCount": 2,
                "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0},
                "loadBalancers": [
                    ENTRY | {"advancedConfiguration": {"alternateTargetGroupArn": alternate}}
                ],
            }
        )

    lbs = {"web-lb": load_balancer(), "web-test": load_balancer(name="web-test")}
    assert load_balancer_problems(with_alternate("web-test"), TASK_DEFINITION, lbs) == []
    field = "spec.loadBalancers[0].advancedConfiguration.alternateTargetGroupArn"
    arn = "arn:aws:elasticloadbalancing:r:1:targetgroup/Web-Test/1a2b"
    assert [str(v) for v in load_balancer_problems(with_alternate(arn), TASK_DEFINITION, lbs)] == [
        f"{field}: no LoadBalancer named '{names.load_balancer_name('Web-Test')}' in this "
        f"namespace ({arn!r} maps to it)"
    ]
    assert [
        str(v) for v in load_balancer_problems(with_alternate("web-lb"), TASK_DEFINITION, lbs)
    ] == [f"{field}: names LoadBalancer 'web-lb', the production one"]


# ---------------------------------------------------------------------------------------------
# Which Services, Tasks and Pods the LoadBalancer controller gathers


def test_the_services_holding_targets_are_those_its_status_lists() -> None:
    assert holding_services(load_balancer()) == set()
    held = [target("a", "healthy"), target("b", "draining", service="api")]
    assert holding_services(load_balancer(held)) == {"web", "api"}


def test_a_service_names_a_load_balancer_as_production_or_test_in_any_revision() -> None:
    alternate = ENTRY | {"advancedConfiguration": {"alternateTargetGroupArn": "web-test"}}
    spec = ServiceSpec.model_validate(
        service().spec.model_dump(by_alias=True, exclude_none=True)
        | {
            "loadBalancers": [alternate],
            "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0},
        }
    )
    assert names_load_balancer(spec, {}, "web-lb")
    assert names_load_balancer(spec, {}, "web-test")
    assert not names_load_balancer(spec, {}, "other")
    older = service(entries=[ENTRY | {"loadBalancerName": "old-lb"}]).spec.load_balancers or []
    assert names_load_balancer(service(entries=()).spec, {"d1": older}, "old-lb")
    assert not names_load_balancer(service(entries=()).spec, {"d1": older}, "web-lb")


def test_only_a_pod_its_task_owns_is_taken() -> None:
    task_body = {"metadata": {"name": "web-1", "uid": "uid-web-1"}}
    owned = task_pod("web-1")
    owned["metadata"]["ownerReferences"] = [{"kind": "Task", "name": "web-1", "uid": "uid-web-1"}]
    stranger = task_pod("web-1")
    stranger["metadata"]["ownerReferences"] = [{"kind": "Task", "name": "web-1", "uid": "x"}]
    assert own_pods([(task_body, owned)]) == {"web-1": owned}
    assert own_pods([(task_body, stranger)]) == {}
    assert own_pods([(task_body, None)]) == {}
