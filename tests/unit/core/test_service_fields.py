"""A Service's fields that Kubernetes cannot honour: accepted, listed in status.unsupported, in
the Ready condition's message and in one event, never silently dropped."""

from typing import Any

import pytest

from ecs_operator.core import events
from ecs_operator.core.render import NOT_HONOURED
from ecs_operator.core.service_fields import unsupported_service_fields
from support.servicesim import Sim, node, spec

ZONES3 = [node("n1", "a"), node("n2", "b"), node("n3", "c")]
CREATE_SERVICE = {
    "serviceName": "web",
    "cluster": "production",
    "platformVersion": "LATEST",
    "enableExecuteCommand": True,
    "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
}


@pytest.mark.parametrize(
    ("fields", "reported"),
    [
        ({}, []),
        ({"serviceName": "web"}, []),
        ({"serviceName": "Web_"}, ["spec.serviceName"]),
        ({"cluster": "default"}, ["spec.cluster"]),
        (
            {"platformVersion": "1.4.0", "platformFamily": "Linux"},
            ["spec.platformVersion", "spec.platformFamily"],
        ),
        ({"enableExecuteCommand": False, "enableECSManagedTags": False}, []),
        ({"enableExecuteCommand": True}, ["spec.enableExecuteCommand"]),
        ({"networkConfiguration": {}}, []),
        ({"propagateTags": "SERVICE"}, []),
        ({"propagateTags": "TASK_DEFINITION"}, ["spec.propagateTags"]),
        ({"capacityProviderStrategy": []}, []),
        (
            {"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT"}]},
            ["spec.capacityProviderStrategy"],
        ),
        ({"deploymentController": {"type": "ECS"}}, []),
        ({"deploymentController": {"type": "EXTERNAL"}}, ["spec.deploymentController"]),
        (
            {"serviceRegistries": [{"registryArn": "arn:aws:servicediscovery:x"}]},
            ["spec.serviceRegistries"],
        ),
        ({"serviceConnectConfiguration": {"enabled": True}}, ["spec.serviceConnectConfiguration"]),
        ({"role": "ecsServiceRole"}, ["spec.role"]),
        (
            {
                "deploymentConfiguration": {
                    "alarms": {"alarmNames": ["a"], "enable": True, "rollback": True}
                }
            },
            [],  # honoured: core.alarms
        ),
        (
            {
                "deploymentConfiguration": {"strategy": "CANARY"},
                "loadBalancers": [
                    {
                        "loadBalancerName": "web",
                        "containerName": "web",
                        "containerPort": 80,
                        "advancedConfiguration": {
                            "alternateTargetGroupArn": "web-test",
                            "productionListenerRule": "arn:aws:elasticloadbalancing:r:1:rule/a",
                            "roleArn": "arn:aws:iam::1:role/ecs-infra",
                        },
                    },
                    {
                        "loadBalancerName": "api",
                        "containerName": "web",
                        "containerPort": 81,
                        "advancedConfiguration": {
                            "alternateTargetGroupArn": "api-test",
                            "testListenerRule": "arn:aws:elasticloadbalancing:r:1:rule/b",
                        },
                    },
                ],
            },
            [
                "spec.loadBalancers[0].advancedConfiguration.productionListenerRule",
                "spec.loadBalancers[0].advancedConfiguration.roleArn",
                "spec.loadBalancers[1].advancedConfiguration.testListenerRule",
            ],
        ),
        ({"runningCount": 2, "pendingCount": 0}, ["spec.runningCount", "spec.pendingCount"]),
        ({"launchType": "", "schedulingStrategy": "", "availabilityZoneRebalancing": ""}, []),
    ],
)
def test_what_is_reported(fields: dict[str, Any], reported: list[str]) -> None:
    found = unsupported_service_fields("web", spec(**fields))
    assert [u.field for u in found] == reported
    assert all(u.reason in NOT_HONOURED.values() for u in found)
    assert [u.field for u in found if u.read_only] == [
        f for f in reported if f in ("spec.runningCount", "spec.pendingCount")
    ]


def test_empty_enums_mean_not_set() -> None:
    parsed = spec(launchType="", schedulingStrategy="", availabilityZoneRebalancing="")
    assert parsed.launch_type is None
    assert parsed.scheduling_strategy == "REPLICA"
    assert parsed.availability_zone_rebalancing is None


def test_the_status_lists_them_says_so_once_and_follows_the_spec() -> None:
    sim = Sim(spec(desiredCount=3, **CREATE_SERVICE), ZONES3)
    first = sim.plan()
    assert sim.status is not None and sim.status.unsupported is not None
    fields = [u.field for u in sim.status.unsupported]
    assert fields == [
        "spec.cluster",
        "spec.platformVersion",
        "spec.enableExecuteCommand",
        "spec.networkConfiguration",
    ]
    [said] = [e for e in first.events if events.NOT_HONOURED_PREFIX in e]
    assert said.startswith("(service web) accepted but not honoured on Kubernetes: spec.cluster (")
    ready = next(c for c in sim.status.conditions or () if c.type == "Ready")
    assert ready.message.startswith("0 of 3 tasks running and healthy, 0 pending; accepted but")
    assert "spec.networkConfiguration (no ENI per task" in ready.message
    sim.tick()
    later = [sim.plan() for _ in range(3)]
    assert not [e for plan in later for e in plan.events if events.NOT_HONOURED_PREFIX in e]
    assert sim.steady()

    sim.spec = spec(desiredCount=3, cluster="production")
    sim.generation += 1
    changed = sim.plan()
    assert [u.field for u in sim.status.unsupported or ()] == ["spec.cluster"]
    assert [e for e in changed.events if events.NOT_HONOURED_PREFIX in e]

    sim.spec = spec(desiredCount=3)
    sim.generation += 1
    sim.plan()
    assert sim.status.unsupported is None
    ready = next(c for c in sim.status.conditions or () if c.type == "Ready")
    assert events.NOT_HONOURED_PREFIX not in ready.message


def test_service_fields_that_start_a_deployment_as_in_ecs() -> None:
    sim = Sim(spec(desiredCount=1), ZONES3)
    sim.run(3)
    before = sim.primary().id
    sim.spec = spec(
        desiredCount=1, serviceRegistries=[{"registryArn": "arn:aws:servicediscovery:x"}]
    )
    sim.generation += 1
    sim.plan()
    assert sim.primary().id != before


def test_hooks_of_a_rolling_service_are_reported_those_of_a_staged_one_not() -> None:
    pause = {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}
    called = {"lifecycleStages": ["POST_SCALE_UP"], "hookTargetArn": "http://hooks:8080/check"}
    at_shift = {
        "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"],
        "hookTargetArn": "http://hooks:8080/check",
    }
    staged = {"strategy": "CANARY", "lifecycleHooks": [pause, called, at_shift]}
    found = unsupported_service_fields("web", spec(deploymentConfiguration=staged))
    # An AWS_LAMBDA hook is honoured (its URL called), at the traffic shift stages in a
    # rollback too.
    assert found == []
    rolling = unsupported_service_fields(
        "web", spec(deploymentConfiguration={"lifecycleHooks": [pause]})
    )
    assert [(f.field, f.reason) for f in rolling] == [
        (
            "spec.deploymentConfiguration.lifecycleHooks[0]",
            NOT_HONOURED["lifecycleHooks with ROLLING"],
        )
    ]
