"""Service model: CreateService JSON parses, defaults, status, CRD names/scale, CEL verdicts."""

from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ecs_operator.models.crd import openapi_schema, render_crds
from ecs_operator.models.service import (
    MAX_SERVICE_NAME_LENGTH,
    TASK_NAME_SUFFIX_ROOM,
    AdvancedConfiguration,
    Service,
    ServiceSpec,
    ServiceStatus,
)
from support.crd_rules import evaluate, walk_rules

SCHEMA = openapi_schema(Service)
CREATE_SERVICE: dict[str, Any] = {
    "taskDefinition": "web:3",
    "desiredCount": 4,
    "deploymentConfiguration": {
        "maximumPercent": 150,
        "minimumHealthyPercent": 50,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    },
    "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}],
    "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
    "healthCheckGracePeriodSeconds": 30,
    "loadBalancers": [{"loadBalancerName": "web-lb", "containerName": "web", "containerPort": 80}],
    "tags": [{"key": "team", "value": "shop"}],
    "propagateTags": "SERVICE",
    "enableECSManagedTags": True,
    "launchType": "EC2",
}
DAEMON = {"taskDefinition": "agent", "schedulingStrategy": "DAEMON"}


def rule(path: str, message_part: str) -> str:
    found = [r["rule"] for p, r in walk_rules(SCHEMA) if p == path and message_part in r["message"]]
    assert len(found) == 1, found
    return found[0]


def test_create_service_json_round_trips() -> None:
    parsed = ServiceSpec.model_validate(CREATE_SERVICE)
    assert parsed.model_dump(mode="json", exclude_unset=True) == CREATE_SERVICE
    assert parsed.deployment_configuration is not None
    assert parsed.deployment_configuration.deployment_circuit_breaker is not None


def test_defaults_leave_strategy_dependent_values_to_the_operator() -> None:
    parsed = ServiceSpec.model_validate({"taskDefinition": "web", "desiredCount": 1})
    assert parsed.scheduling_strategy == "REPLICA"
    assert parsed.health_check_grace_period_seconds == 0
    assert parsed.deployment_configuration is None
    assert parsed.availability_zone_rebalancing is None
    spec = SCHEMA["properties"]["spec"]["properties"]
    assert spec["schedulingStrategy"]["default"] == "REPLICA"
    configuration = spec["deploymentConfiguration"]["properties"]
    assert "default" not in configuration["maximumPercent"]
    assert "default" not in spec["availabilityZoneRebalancing"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"desiredCount": 5001}, "desiredCount"),
        ({"desiredCount": -1}, "desiredCount"),
        ({"taskDefinition": "web:0"}, "taskDefinition"),
        ({"schedulingStrategy": "BATCH"}, "schedulingStrategy"),
        ({"deploymentConfiguration": {"maximumPercent": 99}}, "maximumPercent"),
        ({"deploymentConfiguration": {"minimumHealthyPercent": 101}}, "minimumHealthyPercent"),
        ({"deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True}}}, "rollback"),
        ({"placementStrategy": [{"type": "random"}] * 6}, "placementStrategy"),
        ({"placementConstraints": [{"type": "distinctInstance"}] * 11}, "placementConstraints"),
        ({"healthCheckGracePeriodSeconds": 2**31}, "healthCheckGracePeriodSeconds"),
        ({"availabilityZoneRebalancing": "YES"}, "availabilityZoneRebalancing"),
        (
            {
                "loadBalancers": [
                    {"loadBalancerName": "Web_LB", "containerName": "w", "containerPort": 80}
                ]
            },
            "loadBalancerName",
        ),
        (
            {
                "loadBalancers": [
                    {"loadBalancerName": "lb", "containerName": "w", "containerPort": 0}
                ]
            },
            "containerPort",
        ),
        ({"forceNewDeployment": True}, "forceNewDeployment"),
        ({"serviceArn": "arn:aws:ecs:us-east-1:1:service/c/web"}, "serviceArn"),
        ({"launchType": "SPOT"}, "launchType"),
    ],
)
def test_bad_input_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        ServiceSpec.model_validate({"taskDefinition": "web", "desiredCount": 1} | change)
    assert field in str(error.value)


TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/73e2d6bc"

# (message fragment, good spec, bad spec); every one is checked by CEL and by the model.
SPEC_CASES = [
    (
        "desiredCount is required for the REPLICA",
        {"taskDefinition": "w", "desiredCount": 0},
        {"taskDefinition": "w"},
    ),
    ("desiredCount is not allowed for a DAEMON", DAEMON, DAEMON | {"desiredCount": 2}),
    (
        "placementStrategy is not allowed for a DAEMON",
        DAEMON | {"placementConstraints": [{"type": "distinctInstance"}]},
        DAEMON | {"placementStrategy": [{"type": "random"}]},
    ),
    (
        "maximumPercent must be 100 for a DAEMON",
        DAEMON | {"deploymentConfiguration": {"maximumPercent": 100, "minimumHealthyPercent": 50}},
        DAEMON | {"deploymentConfiguration": {"maximumPercent": 200}},
    ),
    (
        "strategy must be ROLLING for a DAEMON",
        DAEMON | {"deploymentConfiguration": {"strategy": "ROLLING"}},
        DAEMON | {"deploymentConfiguration": {"strategy": "CANARY"}},
    ),
    (
        "each (loadBalancerName or targetGroupArn, containerName, containerPort) may appear only "
        "once",
        CREATE_SERVICE
        | {
            "loadBalancers": [
                {"loadBalancerName": "a", "containerName": "web", "containerPort": 80},
                {"loadBalancerName": "a", "containerName": "web", "containerPort": 443},
                {"targetGroupArn": TARGET_GROUP, "containerName": "web", "containerPort": 80},
            ]
        },
        CREATE_SERVICE | {"loadBalancers": CREATE_SERVICE["loadBalancers"] * 2},
    ),
    (
        "each (loadBalancerName or targetGroupArn, containerName, containerPort) may appear only "
        "once",
        CREATE_SERVICE
        | {
            "loadBalancers": [
                {"targetGroupArn": TARGET_GROUP, "containerName": "web", "containerPort": 80},
                {"targetGroupArn": TARGET_GROUP, "containerName": "web", "containerPort": 81},
            ]
        },
        CREATE_SERVICE
        | {
            "loadBalancers": [
                {"targetGroupArn": TARGET_GROUP, "containerName": "web", "containerPort": 80}
            ]
            * 2
        },
    ),
]

ALTERNATE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/1a2b3c"
WITH_ALTERNATE = {
    "loadBalancers": [
        {
            "targetGroupArn": TARGET_GROUP,
            "containerName": "web",
            "containerPort": 80,
            "advancedConfiguration": {"alternateTargetGroupArn": ALTERNATE},
        }
    ]
}
SPEC_CASES.append(
    (
        "advancedConfiguration is allowed only with strategy BLUE_GREEN, LINEAR or CANARY",
        CREATE_SERVICE
        | WITH_ALTERNATE
        | {"deploymentConfiguration": {"strategy": "LINEAR", "bakeTimeInMinutes": 0}},
        CREATE_SERVICE | WITH_ALTERNATE | {"deploymentConfiguration": {"strategy": "ROLLING"}},
    )
)
SPEC_CASES.append(
    (
        "advancedConfiguration is allowed only with strategy BLUE_GREEN, LINEAR or CANARY",
        CREATE_SERVICE
        | WITH_ALTERNATE
        | {"deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0}},
        CREATE_SERVICE | WITH_ALTERNATE,
    )
)


@pytest.mark.parametrize(
    ("advanced", "field"),
    [
        ({}, "alternateTargetGroupArn"),
        ({"alternateTargetGroupArn": ""}, "alternateTargetGroupArn"),
        ({"alternateTargetGroupArn": "arn:aws:iam::1:role/x"}, "alternateTargetGroupArn"),
    ],
)
def test_advanced_configuration_needs_an_alternate(advanced: dict[str, Any], field: str) -> None:
    entry = WITH_ALTERNATE["loadBalancers"][0] | {"advancedConfiguration": advanced}
    with pytest.raises(ValidationError) as error:
        ServiceSpec.model_validate(
            CREATE_SERVICE
            | {
                "loadBalancers": [entry],
                "deploymentConfiguration": {"strategy": "CANARY"},
            }
        )
    assert field in str(error.value)
    entry_schema = SCHEMA["properties"]["spec"]["properties"]["loadBalancers"]["items"]
    assert entry_schema["properties"]["advancedConfiguration"]["required"] == [
        "alternateTargetGroupArn"
    ]


# (message fragment, good loadBalancers[] entry, bad one): CEL and the model agree.
PORT = {"containerName": "web", "containerPort": 80}
LOAD_BALANCER_CASES = [
    (
        "give loadBalancerName or targetGroupArn",
        PORT | {"targetGroupArn": TARGET_GROUP},
        PORT,
    ),
    (
        "give loadBalancerName or targetGroupArn, not both",
        PORT | {"loadBalancerName": "MyELB"},
        PORT | {"loadBalancerName": "web-tg", "targetGroupArn": TARGET_GROUP},
    ),
]


@pytest.mark.parametrize(
    ("message", "good", "bad"), LOAD_BALANCER_CASES, ids=[c[0] for c in LOAD_BALANCER_CASES]
)
def test_load_balancer_rules_and_model_agree(
    message: str, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    [cel] = [
        r["rule"]
        for p, r in walk_rules(SCHEMA)
        if p == "spec.loadBalancers[]" and r["message"] == message
    ]
    assert evaluate(cel, good) is True
    assert evaluate(cel, bad) is False
    ServiceSpec.model_validate({"taskDefinition": "w", "desiredCount": 1, "loadBalancers": [good]})
    with pytest.raises(ValidationError, match=message):
        ServiceSpec.model_validate(
            {"taskDefinition": "w", "desiredCount": 1, "loadBalancers": [bad]}
        )


# (good advancedConfiguration, bad one): the same HTTPRoute as both listener rules is refused,
# by CEL and the model alike; ARNs and distinct routes are not.
SAME_ROUTE = "testListenerRule must name another HTTPRoute than productionListenerRule"
RULE_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/a/b/c/d"
SAME_ROUTE_CASES = [
    (
        {"productionListenerRule": "httproute/shop"},
        {"productionListenerRule": "shop", "testListenerRule": "shop"},
    ),
    (
        {"productionListenerRule": "httproute/shop", "testListenerRule": "httproute/shop-test"},
        {"productionListenerRule": "httproute/shop", "testListenerRule": "httproute/shop"},
    ),
    (
        {"productionListenerRule": "shop", "testListenerRule": "shop-test"},
        {"productionListenerRule": "HTTPRoute/shop", "testListenerRule": "shop"},
    ),
    (
        {"productionListenerRule": RULE_ARN, "testListenerRule": RULE_ARN},
        {"productionListenerRule": "shop.v1", "testListenerRule": "httproute/shop.v1"},
    ),
    (
        # Not a route name (upper case): the two name no route, so no clash.
        {"productionListenerRule": "httproute/Shop", "testListenerRule": "HTTPRoute/Shop"},
        {"productionListenerRule": "httpROUTE/shop", "testListenerRule": "httproute/shop"},
    ),
]


@pytest.mark.parametrize(("good", "bad"), SAME_ROUTE_CASES)
def test_the_same_route_as_both_listener_rules_is_refused(
    good: dict[str, Any], bad: dict[str, Any]
) -> None:
    cel = rule("spec.loadBalancers[].advancedConfiguration", SAME_ROUTE)
    assert evaluate(cel, {"alternateTargetGroupArn": ALTERNATE} | good) is True
    assert evaluate(cel, {"alternateTargetGroupArn": ALTERNATE} | bad) is False

    def spec(advanced: dict[str, Any]) -> dict[str, Any]:
        (entry,) = WITH_ALTERNATE["loadBalancers"]
        return (
            CREATE_SERVICE
            | {"deploymentConfiguration": {"strategy": "CANARY"}}
            | {
                "loadBalancers": [
                    entry | {"advancedConfiguration": entry["advancedConfiguration"] | advanced}
                ]
            }
        )

    ServiceSpec.model_validate(spec(good))
    with pytest.raises(ValidationError, match=SAME_ROUTE) as error:
        ServiceSpec.model_validate(spec(bad))
    assert "loadBalancers.0.advancedConfiguration" in str(error.value)


_LISTENER_RULES = st.one_of(
    st.none(),
    st.builds(
        str.__add__,
        st.sampled_from(["", "httproute/", "HTTPRoute/", "httproute", "route/"]),
        st.sampled_from(["shop", "shop-test", "Shop", "a.b", "-x", "", "httproute/shop"]),
    ),
    st.just(RULE_ARN),
)


@given(_LISTENER_RULES, _LISTENER_RULES)
def test_cel_and_model_agree_on_the_same_route(production: str | None, test: str | None) -> None:
    advanced = {"alternateTargetGroupArn": ALTERNATE}
    for field, value in (("productionListenerRule", production), ("testListenerRule", test)):
        if value is not None:
            advanced[field] = value
    cel = rule("spec.loadBalancers[].advancedConfiguration", SAME_ROUTE)
    try:
        AdvancedConfiguration.model_validate(advanced)
        admitted = True
    except ValidationError:
        admitted = False
    assert evaluate(cel, advanced) is admitted


@pytest.mark.parametrize(("message", "good", "bad"), SPEC_CASES, ids=[c[0] for c in SPEC_CASES])
def test_spec_rule_and_model_agree(message: str, good: dict[str, Any], bad: dict[str, Any]) -> None:
    cel = rule("spec", message)
    with_default = {"schedulingStrategy": "REPLICA"}
    assert evaluate(cel, with_default | good) is True
    assert evaluate(cel, with_default | bad) is False
    ServiceSpec.model_validate(good)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ServiceSpec.model_validate(bad)


def test_minimum_above_maximum_is_refused() -> None:
    cel = rule("spec.deploymentConfiguration", "minimumHealthyPercent must not exceed")
    assert evaluate(cel, {"minimumHealthyPercent": 100, "maximumPercent": 100}) is True
    assert evaluate(cel, {"minimumHealthyPercent": 50}) is True
    # Unreachable through the bounds (min <= 100 <= max) but kept as the documented rule.
    assert evaluate(cel, {"minimumHealthyPercent": 100, "maximumPercent": 90}) is False


def test_service_name_leaves_room_for_task_names() -> None:
    assert MAX_SERVICE_NAME_LENGTH + TASK_NAME_SUFFIX_ROOM == 253
    cel = rule("", "a Service names its tasks SERVICE-SUFFIX")
    longest, too_long = "s" * MAX_SERVICE_NAME_LENGTH, "s" * (MAX_SERVICE_NAME_LENGTH + 1)
    for name, admitted in ((longest, True), (too_long, False)):
        body = {"metadata": {"name": name}, "spec": {"taskDefinition": "web", "desiredCount": 1}}
        assert evaluate(cel, body) is admitted
        if admitted:
            Service.model_validate(body)
        else:
            with pytest.raises(ValidationError, match=f"at most {MAX_SERVICE_NAME_LENGTH}"):
                Service.model_validate(body)


# (message fragment, good deploymentConfiguration, bad one): CEL and the model agree.
PAUSE_HOOK = {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}
LAMBDA_HOOK = {
    "targetType": "AWS_LAMBDA",
    "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"],
    "hookTargetArn": "http://hooks.web.svc:8080/verify",
}
STRATEGY_CASES = [
    (
        "canaryConfiguration is allowed only with strategy CANARY",
        {"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 10}},
        {"strategy": "LINEAR", "canaryConfiguration": {"canaryPercent": 10}},
    ),
    (
        "linearConfiguration is allowed only with strategy LINEAR",
        {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 10}},
        {"linearConfiguration": {"stepPercent": 10}},
    ),
    (
        "bakeTimeInMinutes is required with strategy BLUE_GREEN",
        {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0},
        {"strategy": "BLUE_GREEN"},
    ),
    (
        "at most 10 PAUSE hooks",
        {"lifecycleHooks": [PAUSE_HOOK] * 10 + [LAMBDA_HOOK]},
        {"lifecycleHooks": [PAUSE_HOOK] * 11},
    ),
    (
        "at most 10 AWS_LAMBDA hooks",
        {"lifecycleHooks": [LAMBDA_HOOK] * 10 + [PAUSE_HOOK]},
        {"lifecycleHooks": [LAMBDA_HOOK] * 11},
    ),
]
HOOK_CASES = [
    (
        "a PAUSE hook is not allowed at TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT",
        PAUSE_HOOK | {"lifecycleStages": ["PRE_SCALE_UP", "POST_TEST_TRAFFIC_SHIFT"]},
        PAUSE_HOOK | {"lifecycleStages": ["POST_SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT"]},
    ),
    (
        "hookTargetArn is required for an AWS_LAMBDA hook",
        {"lifecycleStages": ["POST_SCALE_UP"], "hookTargetArn": "https://hooks/verify"},
        {"lifecycleStages": ["POST_SCALE_UP"]},
    ),
    (
        "there is no Lambda on Kubernetes: an AWS_LAMBDA hook's target is an http:// or "
        "https:// URL",
        {"lifecycleStages": ["POST_SCALE_UP"], "hookTargetArn": "http://10.0.0.1:8080"},
        {
            "lifecycleStages": ["POST_SCALE_UP"],
            "hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:check",
        },
    ),
    (
        "there is no Lambda on Kubernetes",
        PAUSE_HOOK | {"hookTargetArn": "anything: PAUSE does not use it"},
        {"lifecycleStages": ["POST_SCALE_UP"], "hookTargetArn": "ftp://hooks/verify"},
    ),
    (
        "or a task definition, arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY",
        {"lifecycleStages": ["POST_SCALE_UP"], "hookTargetArn": "task-definition/check:3"},
        {"lifecycleStages": ["POST_SCALE_UP"], "hookTargetArn": "task-definition/check:0"},
    ),
    (
        "task-definition/FAMILY",
        {
            "lifecycleStages": ["POST_SCALE_UP"],
            "hookTargetArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/check",
        },
        {"lifecycleStages": ["POST_SCALE_UP"], "hookTargetArn": "check"},
    ),
    (
        "an AWS_LAMBDA hook waits at most 1440 minutes",
        LAMBDA_HOOK | {"timeoutConfiguration": {"timeoutInMinutes": 1440}},
        LAMBDA_HOOK | {"timeoutConfiguration": {"timeoutInMinutes": 1441}},
    ),
]


@pytest.mark.parametrize(("message", "good", "bad"), HOOK_CASES, ids=[c[0] for c in HOOK_CASES])
def test_lifecycle_hook_rules_and_model_agree(
    message: str, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    cel = rule("spec.deploymentConfiguration.lifecycleHooks[]", message)
    assert evaluate(cel, good) is True
    assert evaluate(cel, bad) is False
    base = {"taskDefinition": "w", "desiredCount": 1}
    ServiceSpec.model_validate(base | {"deploymentConfiguration": {"lifecycleHooks": [good]}})
    with pytest.raises(ValidationError, match=message):
        ServiceSpec.model_validate(base | {"deploymentConfiguration": {"lifecycleHooks": [bad]}})


@pytest.mark.parametrize(
    ("hook", "field"),
    [
        (PAUSE_HOOK | {"timeoutConfiguration": {"timeoutInMinutes": 20161}}, "timeoutInMinutes"),
        (PAUSE_HOOK | {"timeoutConfiguration": {"timeoutInMinutes": 0}}, "timeoutInMinutes"),
        (PAUSE_HOOK | {"timeoutConfiguration": {"action": "WAIT"}}, "action"),
        (PAUSE_HOOK | {"lifecycleStages": []}, "lifecycleStages"),
        (PAUSE_HOOK | {"lifecycleStages": ["SCALE_UP"]}, "lifecycleStages"),
    ],
)
def test_bad_lifecycle_hooks_name_the_field(hook: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        ServiceSpec.model_validate(
            {
                "taskDefinition": "w",
                "desiredCount": 1,
                "deploymentConfiguration": {"lifecycleHooks": [hook]},
            }
        )
    assert field in str(error.value)


def test_continue_service_deployment_names_a_pause_hook() -> None:
    base = {"taskDefinition": "w", "desiredCount": 1}
    spec = ServiceSpec.model_validate(
        base | {"continueServiceDeployment": {"hookId": "ecs-pause-1234567890123456789-1"}}
    )
    assert spec.continue_service_deployment is not None
    assert spec.continue_service_deployment.action == "CONTINUE"  # ECS's default
    with pytest.raises(ValidationError, match="hookId"):
        ServiceSpec.model_validate(base | {"continueServiceDeployment": {"hookId": "mine"}})


@pytest.mark.parametrize(
    ("message", "good", "bad"), STRATEGY_CASES, ids=[c[0] for c in STRATEGY_CASES]
)
def test_strategy_rules_and_model_agree(
    message: str, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    cel = rule("spec.deploymentConfiguration", message)
    assert evaluate(cel, good) is True
    assert evaluate(cel, bad) is False
    base = {"taskDefinition": "w", "desiredCount": 1}
    ServiceSpec.model_validate(base | {"deploymentConfiguration": good})
    with pytest.raises(ValidationError, match=message):
        ServiceSpec.model_validate(base | {"deploymentConfiguration": bad})


@pytest.mark.parametrize(
    ("configuration", "field"),
    [
        ({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 0}}, "canaryPercent"),
        ({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 2.9}}, "stepPercent"),
        ({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1441}, "bakeTimeInMinutes"),
        ({"strategy": "RED_BLACK"}, "strategy"),
    ],
)
def test_bad_strategy_settings_name_the_field(configuration: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        ServiceSpec.model_validate(
            {"taskDefinition": "w", "desiredCount": 1, "deploymentConfiguration": configuration}
        )
    assert field in str(error.value)


def test_every_rule_has_a_case() -> None:
    covered = {("spec", m) for m, _, _ in SPEC_CASES}
    covered.add(("spec.deploymentConfiguration", "minimumHealthyPercent must not exceed"))
    covered |= {("spec.deploymentConfiguration", m) for m, _, _ in STRATEGY_CASES}
    covered.add(("", "a Service names its tasks SERVICE-SUFFIX"))
    covered |= {("spec.loadBalancers[]", m) for m, _, _ in LOAD_BALANCER_CASES}
    covered.add(("spec.loadBalancers[].advancedConfiguration", SAME_ROUTE))
    covered |= {("spec.deploymentConfiguration.lifecycleHooks[]", m) for m, _, _ in HOOK_CASES}
    for path, found in walk_rules(SCHEMA):
        if path.startswith(("spec.placement", "spec.tags")):
            continue  # the shared models' own rules, tested with them
        assert any(p == path and m in found["message"] for p, m in covered), found["message"]


def test_status_round_trips() -> None:
    raw = {
        "observedGeneration": 3,
        "desiredCount": 2,
        "runningCount": 1,
        "pendingCount": 1,
        "taskDefinition": "web:3",
        "deployments": [
            {
                "id": "ecs-svc/8646900195280463695",
                "status": "PRIMARY",
                "taskDefinition": "web:3",
                "desiredCount": 2,
                "pendingCount": 1,
                "runningCount": 1,
                "failedTasks": 0,
                "createdAt": "2025-01-01T00:00:00Z",
                "updatedAt": "2025-01-01T00:01:00Z",
                "rolloutState": "IN_PROGRESS",
                "rolloutStateReason": "ECS deployment ecs-svc/8646900195280463695 in progress.",
            }
        ],
        "events": [
            {
                "id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                "createdAt": "2025-01-01T00:01:00Z",
                "message": "(service web) has started 1 tasks: (task abc).",
            }
        ],
        "selector": "ecs.operator.dev/service=web",
    }
    assert ServiceStatus.model_validate(raw).model_dump(mode="json", exclude_none=True) == raw | {
        "deployments": [raw["deployments"][0]]
    }
    with pytest.raises(ValidationError, match="id"):
        ServiceStatus.model_validate({"deployments": [raw["deployments"][0] | {"id": "svc-1"}]})


def test_crd_names_columns_and_scale_subresource() -> None:
    crd = render_crds()["services.ecs.operator.dev.yaml"]
    names = crd["spec"]["names"]
    assert (names["kind"], names["shortNames"], names["categories"]) == (
        "Service",
        ["ecssvc"],
        ["ecs"],
    )
    [version] = crd["spec"]["versions"]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.desiredCount",
            "statusReplicasPath": ".status.runningCount",
            "labelSelectorPath": ".status.selector",
        },
    }
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert list(columns) == [
        "Desired",
        "Running",
        "Pending",
        "Ready",
        "Degraded",
        "Task Definition",
        "Rollout",
        "Stage",
        "Age",
        "Strategy",
        "Progress",
        "Rollout Reason",
        "Degraded Message",
    ]
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Rollout"] == '.status.deployments[?(@.status=="PRIMARY")].rolloutState'
    assert columns["Degraded"] == '.status.conditions[?(@.type=="Degraded")].reason'
    assert columns["Strategy"] == '.status.deployments[?(@.status=="PRIMARY")].strategy'


def test_openapi_schema_accepts_create_service_and_refuses_bad_bounds() -> None:
    def errors(spec: dict[str, Any]) -> list[Any]:
        obj = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "metadata": {}}
        return list(jsonschema.Draft7Validator(SCHEMA).iter_errors(obj | {"spec": spec}))

    assert errors(CREATE_SERVICE) == []
    assert errors(CREATE_SERVICE | {"desiredCount": 6000})
    assert errors(CREATE_SERVICE | {"deploymentConfiguration": {"maximumPercent": 50}})
