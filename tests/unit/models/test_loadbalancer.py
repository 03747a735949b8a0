"""LoadBalancer model: defaults (ELBv2's), bounds, CEL verdicts agreeing with the model, CRD."""

from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from ecs_operator.models.crd import openapi_schema, render_crds
from ecs_operator.models.loadbalancer import (
    LoadBalancer,
    LoadBalancerSpec,
    LoadBalancerStatus,
)
from support.crd_rules import evaluate, walk_rules

SCHEMA = openapi_schema(LoadBalancer)
WEB = {"listeners": [{"port": 80}]}
# The health check as the API server stores it after defaulting (CEL runs after defaults).
CHECK_DEFAULTS = {
    "port": "traffic-port",
    "intervalSeconds": 30,
    "timeoutSeconds": 6,
    "healthyThresholdCount": 5,
    "unhealthyThresholdCount": 2,
}


def rule(path: str, message_part: str) -> str:
    found = [r["rule"] for p, r in walk_rules(SCHEMA) if p == path and message_part in r["message"]]
    assert len(found) == 1, found
    return found[0]


def test_defaults_are_elbv2s() -> None:
    spec = LoadBalancerSpec.model_validate(WEB)
    assert spec.type == "ClusterIP"
    assert spec.listeners[0].protocol == "HTTP"
    check = spec.health_check
    assert (check.interval_seconds, check.timeout_seconds) == (30, 6)
    assert (check.healthy_threshold_count, check.unhealthy_threshold_count) == (5, 2)
    assert check.port == "traffic-port"
    assert spec.deregistration_delay_seconds == 300
    assert spec.health_check_protocol == "HTTP"
    schema_spec = SCHEMA["properties"]["spec"]["properties"]
    assert schema_spec["deregistrationDelaySeconds"]["default"] == 300
    assert schema_spec["healthCheck"]["properties"]["intervalSeconds"]["default"] == 30
    # path and matcher have no schema default: the CEL rule sees only what the user wrote.
    assert "default" not in schema_spec["healthCheck"]["properties"]["path"]


@pytest.mark.parametrize(
    ("listener", "expected"),
    [("HTTP", "HTTP"), ("HTTPS", "HTTPS"), ("TCP", "TCP"), ("UDP", "TCP"), ("TLS", "TCP")],
)
def test_health_check_protocol_follows_the_first_listener(listener: str, expected: str) -> None:
    spec = LoadBalancerSpec.model_validate({"listeners": [{"port": 53, "protocol": listener}]})
    assert spec.health_check_protocol == expected


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "ExternalName"}, "type"),
        ({"listeners": []}, "listeners"),
        ({"listeners": [{"port": 0}]}, "port"),
        ({"listeners": [{"port": 80, "protocol": "SCTP"}]}, "protocol"),
        ({"listeners": [{"port": 80, "name": "Web_Port"}]}, "name"),
        ({"listeners": [{"port": p} for p in range(1, 12)]}, "listeners"),
        ({"healthCheck": {"intervalSeconds": 4}}, "intervalSeconds"),
        ({"healthCheck": {"timeoutSeconds": 121}}, "timeoutSeconds"),
        ({"healthCheck": {"healthyThresholdCount": 11}}, "healthyThresholdCount"),
        ({"healthCheck": {"unhealthyThresholdCount": 1}}, "unhealthyThresholdCount"),
        ({"healthCheck": {"port": "8080"}}, "port"),
        ({"healthCheck": {"port": 70000}}, "port"),
        ({"healthCheck": {"path": "health"}}, "path"),
        ({"healthCheck": {"matcher": {"httpCode": "2xx"}}}, "httpCode"),
        ({"deregistrationDelaySeconds": 3601}, "deregistrationDelaySeconds"),
        ({"targetType": "ip"}, "targetType"),
    ],
)
def test_bad_input_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        LoadBalancerSpec.model_validate(WEB | change)
    assert field in str(error.value)


def test_health_check_port_takes_a_number_or_traffic_port() -> None:
    spec = LoadBalancerSpec.model_validate(WEB | {"healthCheck": {"port": 8081}})
    assert spec.health_check.port == 8081
    assert spec.model_dump(mode="json", exclude_unset=True)["healthCheck"] == {"port": 8081}


# (path of the rule, message fragment, good spec, bad spec); CEL and the model must agree.
SPEC_CASES = [
    (
        "spec",
        "each port may have only one listener",
        {"listeners": [{"port": 80}, {"port": 443, "protocol": "HTTPS"}]},
        {"listeners": [{"port": 80}, {"port": 80, "protocol": "TCP"}]},
    ),
    (
        "spec",
        "listener names must be unique",
        {"listeners": [{"port": 80, "name": "web"}, {"port": 81}, {"port": 82}]},
        {"listeners": [{"port": 80, "name": "web"}, {"port": 81, "name": "web"}]},
    ),
    (
        "spec",
        "path and matcher are only allowed",
        {"listeners": [{"port": 53, "protocol": "TCP"}], "healthCheck": {"protocol": "HTTP"}}
        | {"healthCheck": {"protocol": "HTTP", "path": "/ping"}},
        {"listeners": [{"port": 53, "protocol": "TCP"}], "healthCheck": {"path": "/ping"}},
    ),
    (
        "spec",
        "path and matcher are only allowed",
        WEB | {"healthCheck": {"matcher": {"httpCode": "200-299"}}},
        WEB | {"healthCheck": {"protocol": "TCP", "matcher": {"httpCode": "200"}}},
    ),
    (
        "spec.healthCheck",
        "timeoutSeconds must be less than intervalSeconds",
        WEB | {"healthCheck": {"intervalSeconds": 10, "timeoutSeconds": 9}},
        WEB | {"healthCheck": {"intervalSeconds": 10, "timeoutSeconds": 10}},
    ),
]


def _stored(spec: dict[str, Any], path: str) -> dict[str, Any]:
    """``spec`` (or its healthCheck) as CEL sees it: after the API server's defaults."""
    if path == "spec.healthCheck":
        return CHECK_DEFAULTS | spec["healthCheck"]
    return spec | {"listeners": [{"protocol": "HTTP"} | item for item in spec["listeners"]]}


@pytest.mark.parametrize(("path", "message", "good", "bad"), SPEC_CASES)
def test_rule_and_model_agree(
    path: str, message: str, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    cel = rule(path, message)
    assert evaluate(cel, _stored(good, path)) is True
    assert evaluate(cel, _stored(bad, path)) is False
    LoadBalancerSpec.model_validate(good)
    with pytest.raises(ValidationError, match=message):
        LoadBalancerSpec.model_validate(bad)


def test_every_rule_has_a_case() -> None:
    covered = {(p, m) for p, m, _, _ in SPEC_CASES}
    covered.add(("", "a LoadBalancer names its Kubernetes Service"))
    for path, found in walk_rules(SCHEMA):
        assert any(p == path and m in found["message"] for p, m in covered), found["message"]


@pytest.mark.parametrize(
    ("name", "valid"),
    [("web", True), ("web-lb-2", True), ("2web", False), ("web.lb", False), ("a" * 64, False)],
)
def test_name_must_be_a_service_name(name: str, valid: bool) -> None:
    cel = rule("", "a LoadBalancer names its Kubernetes Service")
    assert evaluate(cel, {"metadata": {"name": name}, "spec": WEB}) is valid


def test_status_round_trips_and_tolerates_newer_fields() -> None:
    raw = {
        "observedGeneration": 2,
        "targets": [
            {
                "id": "0" * 32,
                "task": "web-abc",
                "service": "web",
                "ip": "10.0.0.7",
                "port": 8080,
                "availabilityZone": "zone-a",
                "state": "draining",
                "reason": "Target.DeregistrationInProgress",
                "description": "Target deregistration is in progress",
                "registeredAt": "2025-01-01T00:00:00Z",
                "drainingSince": "2025-01-01T00:05:00Z",
                "taskStopped": False,
            }
        ],
        "healthyCount": 0,
        "unhealthyCount": 0,
        "drainingCount": 1,
        "initialCount": 0,
        "services": ["web"],
        "serviceName": "web-lb",
    }
    status = LoadBalancerStatus.model_validate(raw | {"futureField": 1})
    assert status.model_dump(mode="json", exclude_none=True) == raw
    with pytest.raises(ValidationError, match="state"):
        LoadBalancerStatus.model_validate({"targets": [raw["targets"][0] | {"state": "gone"}]})


def test_crd_names_and_columns() -> None:
    crd = render_crds()["loadbalancers.ecs.operator.dev.yaml"]
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"], names["categories"]) == (
        "LoadBalancer",
        "loadbalancers",
        ["ecslb"],
        ["ecs"],
    )
    [version] = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Type": ".spec.type",
        "Healthy": ".status.healthyCount",
        "Unhealthy": ".status.unhealthyCount",
        "Draining": ".status.drainingCount",
        "Age": ".metadata.creationTimestamp",
    }


def test_openapi_schema_accepts_a_full_spec_and_refuses_bad_bounds() -> None:
    def errors(spec: dict[str, Any]) -> list[Any]:
        obj = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "LoadBalancer", "metadata": {}}
        return list(jsonschema.Draft7Validator(SCHEMA).iter_errors(obj | {"spec": spec}))

    full = {
        "type": "NodePort",
        "listeners": [{"port": 80, "name": "http"}, {"port": 53, "protocol": "TCP_UDP"}],
        "healthCheck": {"protocol": "HTTP", "path": "/ready", "port": 8081}
        | {"matcher": {"httpCode": "200,202-204"}},
        "deregistrationDelaySeconds": 0,
    }
    assert errors(full) == []
    LoadBalancerSpec.model_validate(full)
    assert errors(full | {"deregistrationDelaySeconds": -1})
    assert errors(full | {"healthCheck": {"port": "other-port"}})
