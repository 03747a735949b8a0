"""Test traffic through an alternate LoadBalancer (issue #11 item 3): green registers in the
test LoadBalancer from TEST_TRAFFIC_SHIFT on and blue never does; production moves as before;
when the deployment completes the two LoadBalancers swap roles (status.resolvedConfiguration)
and the next deployment uses them swapped."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ecs_operator.core import load_balancing, traffic_roles
from ecs_operator.core.load_balancing import ServiceMembers, desired_targets
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.service import Service, ServiceStatus
from ecs_operator.models.task import Task
from support.podfactory import T0, at, pod, running
from support.servicesim import Sim, node, spec

PORT = 8080
GREEN, BLUE = "ecs-svc/2000000000000000000", "ecs-svc/1000000000000000000"
STAGES = ["SCALE_UP", "TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"]
ENTRY: dict[str, Any] = {
    "loadBalancerName": "web",
    "containerName": "web",
    "containerPort": PORT,
    "advancedConfiguration": {"alternateTargetGroupArn": "web-test"},
}
STAGED = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0}


def roles(production: str, test: str) -> dict[str, Any]:
    return {
        "loadBalancers": [
            {
                "loadBalancerName": production,
                "alternateLoadBalancerName": test,
                "containerName": "web",
                "containerPort": PORT,
            }
        ]
    }


def load_balancer(name: str) -> LoadBalancer:
    return LoadBalancer.model_validate(
        {
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"listeners": [{"port": 80}]},
        }
    )


def service(stage: str | None, weight: float, swapped: bool) -> Service:
    """The Service as its controllers see it: the spec resolved to the recorded roles."""
    stamp = T0.isoformat()
    green: dict[str, Any] = {
        "id": GREEN,
        "status": "PRIMARY",
        "taskDefinition": "web:2",
        "createdAt": stamp,
        "updatedAt": stamp,
        "rolloutState": "IN_PROGRESS" if stage else "COMPLETED",
        "productionTrafficWeight": weight,
    }
    if stage:
        green["lifecycleStage"] = stage
    blue = {"id": BLUE, "status": "ACTIVE", "taskDefinition": "web:1"}
    status: dict[str, Any] = {
        "deployments": [green, blue | {"createdAt": stamp, "updatedAt": stamp}]
    }
    if swapped:
        status["resolvedConfiguration"] = roles("web-test", "web")
    parsed = Service.model_validate(
        {
            "metadata": {"name": "svc", "namespace": "default"},
            "spec": {
                "taskDefinition": "web:2",
                "desiredCount": 2,
                "deploymentConfiguration": STAGED,
                "loadBalancers": [ENTRY],
            },
            "status": status,
        }
    )
    resolved = traffic_roles.resolved_entries([ENTRY_MODEL], parsed.status)
    return parsed.model_copy(
        update={"spec": parsed.spec.model_copy(update={"load_balancers": resolved})}
    )


ENTRY_MODEL = spec(deploymentConfiguration=STAGED, loadBalancers=[ENTRY]).load_balancers[0]  # type: ignore[index]


def task(name: str, deployment: str, last_status: str) -> Task:
    return Task.model_validate(
        {
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"taskDefinition": "web", "startedBy": deployment},
            "status": {
                "taskArn": f"{abs(hash(name)) % 16**32:032x}",
                "lastStatus": last_status,
                "desiredStatus": "RUNNING",
                "startedAt": T0.isoformat(),
            },
        }
    )


def task_pod(name: str, ready: bool, ip: str) -> dict[str, Any]:
    manifest = pod(
        name,
        containers=[running("web", ready=ready)],
        ports={"web": [{"containerPort": PORT, "protocol": "TCP"}]},
    )
    manifest["status"]["podIP"] = ip
    return manifest


def endpoint_tasks(lb: LoadBalancer, plan: load_balancing.TargetsPlan) -> set[str]:
    return {
        endpoint["targetRef"]["name"]
        for piece in load_balancing.render_endpoint_slices(lb, plan.targets)
        for endpoint in piece["endpoints"]
        if endpoint["conditions"].get("ready")
    }


TASK = st.tuples(
    st.sampled_from([GREEN, BLUE]),
    st.sampled_from(["ACTIVATING", "RUNNING"]),
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(
    stage=st.sampled_from([None, *STAGES]),
    weight=st.sampled_from([0.0, 10.0, 50.0, 100.0]),
    swapped=st.booleans(),
    tasks=st.lists(TASK, max_size=8),
)
def test_the_test_load_balancer_never_lists_blue(
    stage: str | None, weight: float, swapped: bool, tasks: list[tuple[str, str, bool]]
) -> None:
    svc = service(stage, weight, swapped)
    made = [task(f"t{i}", d, s) for i, (d, s, _) in enumerate(tasks)]
    pods = {
        f"t{i}": task_pod(f"t{i}", ready, f"10.0.0.{i + 1}") for i, (*_, ready) in enumerate(tasks)
    }
    members = [ServiceMembers(svc, made, pods)]
    production, test = ("web-test", "web") if swapped else ("web", "web-test")
    listed: dict[str, set[str]] = {}
    healthy: dict[str, set[str]] = {}
    for name in (production, test):
        lb = load_balancer(name)
        for moment in range(2):  # registered, then as its status reads
            plan = desired_targets(lb, members, at(moment))
            lb = lb.model_copy(
                update={
                    "status": load_balancing.lb_status(
                        lb, plan.targets, ["svc"], [], at(moment)
                    ).status
                }
            )
        listed[name] = endpoint_tasks(lb, plan)
        healthy[name] = {t.task for t in plan.targets if t.state == "healthy"}
    green = {f"t{i}" for i, (d, *_) in enumerate(tasks) if d == GREEN}
    # Test traffic never reaches blue, and reaches green only from TEST_TRAFFIC_SHIFT on.
    assert listed[test] <= green
    if stage in (None, "SCALE_UP"):
        assert listed[test] == set()
    else:
        assert listed[test] == healthy[test] == green & healthy[production]
    # Production lists only healthy registered targets, green only with a share.
    assert listed[production] <= healthy[production]
    if weight == 0.0:
        assert listed[production].isdisjoint(green)


def sim_with_alternate() -> Sim:
    sim = Sim(
        spec(desiredCount=2, deploymentConfiguration=STAGED, loadBalancers=[ENTRY]),
        [node(f"a{i}", "a") for i in range(4)],
    )
    sim.run(4)
    assert sim.steady()
    return sim


def recorded(sim: Sim) -> tuple[str, str]:
    assert sim.status is not None and sim.status.resolved_configuration is not None
    [entry] = sim.status.resolved_configuration.load_balancers or []
    return entry.load_balancer_name, entry.alternate_load_balancer_name


def test_test_traffic_shift_waits_for_the_test_load_balancer_then_the_roles_swap() -> None:
    sim = sim_with_alternate()
    assert recorded(sim) == ("web", "web-test")  # the first deployment rolls: no swap
    asked: list[list[str]] = []
    shifted = False

    def test_traffic(tasks: Any) -> bool:
        asked.append(list(tasks))
        return shifted

    sim.test_traffic_shifted = test_traffic
    for generation, roles_after in ((2, ("web-test", "web")), (3, ("web", "web-test"))):
        sim.revision, sim.generation = f"web:{generation}", generation
        shifted = False
        sim.plan()
        sim.tick()
        for _ in range(3):
            sim.plan()
            sim.tick()
        primary = sim.primary()
        assert (primary.lifecycle_stage, primary.production_traffic_weight) == (
            "TEST_TRAFFIC_SHIFT",
            0.0,
        )
        green = {t.name for t in sim.live() if t.deployment_id == primary.id}
        assert asked and set(asked[-1]) == green  # only green is asked for
        assert recorded(sim) != roles_after
        shifted = True
        sim.run(6)
        assert sim.steady() and sim.primary().rollout_state == "COMPLETED"
        assert recorded(sim) == roles_after
    assert any("(TEST_TRAFFIC_SHIFT)" in m for m in sim.messages())


def test_without_an_alternate_there_is_no_test_traffic_stage() -> None:
    sim = Sim(spec(desiredCount=2, deploymentConfiguration=STAGED), [node("a0", "a")])
    sim.run(4)
    sim.revision, sim.generation = "web:2", 2
    sim.run(8)
    assert sim.steady() and sim.status is not None
    assert sim.status.resolved_configuration is None
    assert not any("TEST_TRAFFIC_SHIFT" in m for m in sim.messages())


def test_resolved_entries_name_the_production_load_balancer_first() -> None:
    swapped = ServiceStatus.model_validate({"resolvedConfiguration": roles("web-test", "web")})
    [entry] = traffic_roles.resolved_entries([ENTRY_MODEL], swapped)
    assert (entry.load_balancer_name, entry.advanced_configuration.alternate_target_group_arn) == (  # type: ignore[union-attr]
        "web-test",
        "web",
    )
    assert traffic_roles.resolved_entries([entry], swapped) == [entry]  # resolving again
    assert traffic_roles.resolved_entries([ENTRY_MODEL], None) == [ENTRY_MODEL]
    again = traffic_roles.recorded_roles([entry], swapped, swap=True)
    assert (
        again
        == ServiceStatus.model_validate(
            {"resolvedConfiguration": roles("web", "web-test")}
        ).resolved_configuration
    )


def test_the_test_traffic_check_asks_every_test_load_balancer() -> None:
    svc = service("TEST_TRAFFIC_SHIFT", 0.0, swapped=False)
    green = task("g", GREEN, "RUNNING")
    members = [ServiceMembers(svc, [green], {"g": task_pod("g", True, "10.0.0.9")})]
    empty = load_balancer("web-test")
    check = load_balancing.test_traffic_check(svc.spec, {"web-test": empty})
    assert check is not None and not check(["g"])
    plan = desired_targets(empty, members, at(0))
    written = empty.model_copy(
        update={"status": load_balancing.lb_status(empty, plan.targets, ["svc"], [], at(0)).status}
    )
    check = load_balancing.test_traffic_check(svc.spec, {"web-test": written})
    assert check is not None and check(["g"]) and not check(["g", "other"])
    assert load_balancing.test_traffic_check(spec(), {}) is None


def rolled_back(svc: Service) -> Service:
    """``svc`` once its green deployment failed: blue PRIMARY again, all production on it."""
    assert svc.status is not None
    green, blue = svc.status.deployments or []
    deployments = [
        green.model_copy(update={"status": "ACTIVE", "rollout_state": "FAILED"}),
        blue.model_copy(
            update={
                "status": "PRIMARY",
                "rollout_state": "IN_PROGRESS",
                "rollback": True,
                "production_traffic_weight": 100.0,
            }
        ),
    ]
    return svc.model_copy(
        update={"status": svc.status.model_copy(update={"deployments": deployments})}
    )


def with_targets(lb: LoadBalancer, plan: load_balancing.TargetsPlan, moment: int) -> LoadBalancer:
    status = load_balancing.lb_status(lb, plan.targets, ["svc"], [], at(moment)).status
    return lb.model_copy(update={"status": status})


@settings(max_examples=30, deadline=None)
@given(
    stage=st.sampled_from(STAGES[1:4]),
    swapped=st.booleans(),
    ready=st.lists(st.booleans(), min_size=1, max_size=4),
)
def test_a_rollback_withdraws_green_from_the_test_load_balancer_at_once(
    stage: str, swapped: bool, ready: list[bool]
) -> None:
    """Green registered in the test LoadBalancer (whatever its health) is no longer registered
    there from the rollback's first LoadBalancer reconcile on: draining, then gone. That is
    when a TEST_TRAFFIC_SHIFT hook's rollback run is released."""
    svc = service(stage, 0.0, swapped)
    test = "web" if swapped else "web-test"
    green = [task(f"g{i}", GREEN, "RUNNING") for i in range(len(ready))]
    pods = {
        f"g{i}": task_pod(f"g{i}", healthy, f"10.0.0.{i + 1}") for i, healthy in enumerate(ready)
    }
    names = [t.metadata.name for t in green]
    lb = load_balancer(test)
    lb = with_targets(lb, desired_targets(lb, [ServiceMembers(svc, green, pods)], at(0)), 0)
    withdrawn = load_balancing.test_traffic_withdrawn([test], {test: lb})
    assert not withdrawn(names) and not withdrawn(names[:1])
    back = rolled_back(svc)
    lb = with_targets(lb, desired_targets(lb, [ServiceMembers(back, green, pods)], at(1)), 1)
    assert {t.state for t in (lb.status.targets if lb.status else None) or ()} == {"draining"}
    assert load_balancing.test_traffic_withdrawn([test], {test: lb})(names)
    # The production LoadBalancer still registers green (stopping): it is not asked.
    assert load_balancing.test_traffic_withdrawn([], {test: lb})(names)
    assert load_balancing.test_traffic_withdrawn([test], {})(names)  # a LoadBalancer gone


def test_a_failed_deployment_swaps_nothing() -> None:
    failing = STAGED | {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    sim = Sim(
        spec(desiredCount=2, deploymentConfiguration=failing, loadBalancers=[ENTRY]),
        [node(f"a{i}", "a") for i in range(4)],
    )
    sim.run(4)
    blue = sim.primary().id
    sim.test_traffic_shifted = lambda _tasks: False  # green never reaches the test listener
    sim.revision, sim.generation = "web:2", 2
    sim.outcomes["web:2"] = "fail"
    sim.run(40, 30)
    assert sim.primary().id == blue and sim.steady()
    assert recorded(sim) == ("web", "web-test")


@settings(max_examples=25, deadline=None)
@given(
    strategy=st.sampled_from(["BLUE_GREEN", "LINEAR", "CANARY"]),
    desired=st.integers(1, 4),
    deployments=st.integers(1, 3),
)
def test_each_completed_deployment_swaps_the_roles_once(
    strategy: str, desired: int, deployments: int
) -> None:
    configuration: dict[str, Any] = {"strategy": strategy, "bakeTimeInMinutes": 0}
    if strategy == "LINEAR":
        configuration["linearConfiguration"] = {"stepPercent": 50, "stepBakeTimeInMinutes": 0}
    if strategy == "CANARY":
        configuration["canaryConfiguration"] = {"canaryBakeTimeInMinutes": 0}
    sim = Sim(
        spec(desiredCount=desired, deploymentConfiguration=configuration, loadBalancers=[ENTRY]),
        [node(f"{z}{i}", z) for z in "ab" for i in range(3)],
    )
    sim.run(4)
    sim.test_traffic_shifted = lambda _tasks: True
    expected = ("web", "web-test")
    for version in range(2, 2 + deployments):
        sim.revision, sim.generation = f"web:{version}", version
        for _ in range(60):
            sim.plan()
            primary = sim.primary()
            if primary.rollout_state == "COMPLETED":
                break
            # Until it completes, the roles hold.
            assert recorded(sim) == expected
            sim.tick(20)
        assert sim.primary().rollout_state == "COMPLETED"
        expected = (expected[1], expected[0])
        assert recorded(sim) == expected
