"""The ``LoadBalancer`` custom resource: an ELBv2 target group with its listeners.

Services register their tasks with it (``Service.spec.loadBalancers[]``): every RUNNING task's
``containerName:containerPort`` becomes a target (the Pod IP and that port). ``spec`` carries the
ELBv2 settings with their names and defaults (``healthCheck``: CreateTargetGroup's
``HealthCheck*`` fields; ``deregistrationDelaySeconds``: ``deregistration_delay.timeout_seconds``)
plus how Kubernetes exposes it (``type``: the Service type). ``status.targets[]`` is
DescribeTargetHealth: each target's ``state`` (initial, healthy, unhealthy, draining) with the
ELBv2 reason code.

Adaptations (the operator owns a Kubernetes Service without selector, named like the
LoadBalancer, and its EndpointSlices; ``core/load_balancing.py`` has the rules):

* The health check is rendered as a readiness probe on the registered container
  (``successThreshold`` = healthyThresholdCount, ``failureThreshold`` = unhealthyThresholdCount),
  so the Kubernetes ``ready`` flag is the target's health. Kubernetes HTTP probes pass on any
  200-399 answer: a ``matcher`` other than that range is accepted and reported in
  ``status.unsupported``.
* HTTPS and TLS listeners do not terminate TLS: traffic reaches the targets unchanged (reported
  in ``status.unsupported``).
* The object name becomes a Kubernetes Service name, so it must be a DNS label starting with a
  letter, at most 63 characters (checked at admission).
"""

from typing import Annotated, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ecs_operator.models.common import (
    API_GROUP_VERSION,
    MAX_UNSUPPORTED_ENTRIES,
    Condition,
    EcsModel,
    ObjectMeta,
    StatusModel,
    Timestamp,
    UnsupportedField,
    cel_rules,
)
from ecs_operator.models.taskdefinition import MAX_CONDITIONS

CONDITION_READY: Final = "Ready"
CONDITION_DEGRADED: Final = "Degraded"

MAX_LISTENERS: Final = 10
MAX_TARGETS: Final = 5000
MAX_SERVICE_NAME_LENGTH: Final = 63
# A Kubernetes Service name (DNS-1035 label); the LoadBalancer's Service carries its name.
SERVICE_NAME_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# A Service port name (DNS label), short enough for the "-udp" suffix of a TCP_UDP listener.
PORT_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_PORT_NAME_LENGTH: Final = 59
TRAFFIC_PORT: Final = "traffic-port"
HTTP_CODE_PATTERN: Final = r"^[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?)*$"

DEFAULT_INTERVAL_SECONDS: Final = 30
DEFAULT_TIMEOUT_SECONDS: Final = 6
DEFAULT_HEALTHY_THRESHOLD: Final = 5
DEFAULT_UNHEALTHY_THRESHOLD: Final = 2
DEFAULT_PATH: Final = "/"
DEFAULT_HTTP_CODE: Final = "200"
DEFAULT_DEREGISTRATION_DELAY_SECONDS: Final = 300

ExposureType = Literal["ClusterIP", "NodePort", "LoadBalancer"]
ListenerProtocol = Literal["HTTP", "HTTPS", "TCP", "UDP", "TLS", "TCP_UDP"]
HealthCheckProtocol = Literal["HTTP", "HTTPS", "TCP"]
TargetState = Literal["initial", "healthy", "unhealthy", "draining", "unused"]

DUPLICATE_PORT: Final = "spec.listeners: each port may have only one listener"
DUPLICATE_NAME: Final = "spec.listeners: listener names must be unique"
TIMEOUT_NOT_BELOW_INTERVAL: Final = (
    "spec.healthCheck.timeoutSeconds must be less than intervalSeconds"
)
HTTP_ONLY_FIELDS: Final = (
    "spec.healthCheck: path and matcher are only allowed with an HTTP or HTTPS health check "
    "(protocol, or else the first listener's protocol)"
)
NAME_NOT_A_SERVICE_NAME: Final = (
    "metadata.name: a LoadBalancer names its Kubernetes Service, so it must be a DNS label "
    "starting with a letter (lower-case letters, digits, '-'), at most 63 characters"
)

_HTTP_PROTOCOLS: Final = ("HTTP", "HTTPS")


class Listener(EcsModel):
    """A port the load balancer accepts traffic on; it forwards to every healthy target."""

    port: int = Field(ge=1, le=65535, description="Port clients connect to, 1-65535.")
    protocol: ListenerProtocol = Field(
        default="HTTP",
        description=(
            "HTTP (default), HTTPS, TCP, UDP, TLS or TCP_UDP (a TCP and a UDP port). HTTPS and "
            "TLS do not terminate TLS here: traffic reaches the targets unchanged."
        ),
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PORT_NAME_LENGTH,
        pattern=PORT_NAME_PATTERN,
        description=(
            "Name of the Kubernetes Service port (default port-PORT; a TCP_UDP listener's UDP "
            "port adds -udp). Lower-case letters, digits and '-', at most 59 characters."
        ),
    )


class Matcher(EcsModel):
    """HTTP codes that count as a passing health check."""

    http_code: str = Field(
        default=DEFAULT_HTTP_CODE,
        max_length=256,
        pattern=HTTP_CODE_PATTERN,
        description=(
            'Codes such as "200", "200,202" or "200-299" (default "200"). Kubernetes probes '
            "pass on any 200-399 answer, whatever the matcher."
        ),
    )


HealthCheckPort = Annotated[
    Annotated[int, Field(ge=1, le=65535, strict=True)]
    | Annotated[str, Field(max_length=12, pattern=f"^{TRAFFIC_PORT}$")],
    Field(union_mode="left_to_right"),
]


class LoadBalancerHealthCheck(EcsModel):
    """The target group's health check (ELBv2 HealthCheck* fields and defaults)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "self.timeoutSeconds < self.intervalSeconds",
                TIMEOUT_NOT_BELOW_INTERVAL,
                ".timeoutSeconds",
            )
        )
    )

    protocol: HealthCheckProtocol | None = Field(
        default=None,
        description=(
            "HTTP, HTTPS or TCP; default: HTTP for an HTTP first listener, HTTPS for HTTPS, "
            "else TCP."
        ),
    )
    path: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        pattern=r"^/",
        description='Path an HTTP(S) check requests, starting with "/" (default "/").',
    )
    port: HealthCheckPort = Field(
        default=TRAFFIC_PORT,
        description='"traffic-port" (default: the registered port) or a port number.',
    )
    interval_seconds: int = Field(
        default=DEFAULT_INTERVAL_SECONDS,
        ge=5,
        le=300,
        description="Seconds between checks, 5-300 (default 30).",
    )
    timeout_seconds: int = Field(
        default=DEFAULT_TIMEOUT_SECONDS,
        ge=2,
        le=120,
        description="Seconds without answer that fail a check, 2-120 (default 6).",
    )
    healthy_threshold_count: int = Field(
        default=DEFAULT_HEALTHY_THRESHOLD,
        ge=2,
        le=10,
        description="Consecutive passes that make a target healthy, 2-10 (default 5).",
    )
    unhealthy_threshold_count: int = Field(
        default=DEFAULT_UNHEALTHY_THRESHOLD,
        ge=2,
        le=10,
        description="Consecutive failures that make a target unhealthy, 2-10 (default 2).",
    )
    matcher: Matcher | None = Field(
        default=None, description='HTTP codes of a pass (default "200"); HTTP(S) checks only.'
    )

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> Self:
        if self.timeout_seconds >= self.interval_seconds:
            raise ValueError(TIMEOUT_NOT_BELOW_INTERVAL)
        return self


_SPEC_RULES = cel_rules(
    (
        "self.listeners.all(a, self.listeners.exists_one(b, b.port == a.port))",
        DUPLICATE_PORT,
        ".listeners",
    ),
    (
        "self.listeners.all(a, has(a.name) ? "
        "self.listeners.exists_one(b, has(b.name) && b.name == a.name) : true)",
        DUPLICATE_NAME,
        ".listeners",
    ),
    (
        "!has(self.healthCheck) || (!has(self.healthCheck.path) && "
        "!has(self.healthCheck.matcher)) || (has(self.healthCheck.protocol) ? "
        "self.healthCheck.protocol in ['HTTP', 'HTTPS'] : "
        "self.listeners[0].protocol in ['HTTP', 'HTTPS'])",
        HTTP_ONLY_FIELDS,
        ".healthCheck",
    ),
)


class LoadBalancerSpec(EcsModel):
    """A target group with its listeners, and how Kubernetes exposes it."""

    model_config = ConfigDict(json_schema_extra=_SPEC_RULES)

    type: ExposureType = Field(
        default="ClusterIP",
        description=(
            "Type of the Kubernetes Service the operator keeps: ClusterIP (default), NodePort "
            "or LoadBalancer."
        ),
    )
    listeners: list[Listener] = Field(
        min_length=1,
        max_length=MAX_LISTENERS,
        description="1-10 listeners, one per port; each forwards to every healthy target.",
    )
    health_check: LoadBalancerHealthCheck = Field(
        default_factory=LoadBalancerHealthCheck,
        description="How target health is checked (rendered as a readiness probe).",
    )
    deregistration_delay_seconds: int = Field(
        default=DEFAULT_DEREGISTRATION_DELAY_SECONDS,
        ge=0,
        le=3600,
        description=(
            "Seconds a deregistered target keeps draining before its task stops, 0-3600 "
            "(default 300)."
        ),
    )

    @property
    def health_check_protocol(self) -> HealthCheckProtocol:
        """The health check's protocol, or the one ELBv2 derives from the first listener."""
        if self.health_check.protocol is not None:
            return self.health_check.protocol
        first = self.listeners[0].protocol
        if first == "HTTP" or first == "HTTPS":
            return first
        return "TCP"

    @model_validator(mode="after")
    def _listener_rules(self) -> Self:
        ports = [listener.port for listener in self.listeners]
        names = [listener.name for listener in self.listeners if listener.name is not None]
        check = self.health_check
        problems = [
            (len(set(ports)) != len(ports), DUPLICATE_PORT),
            (len(set(names)) != len(names), DUPLICATE_NAME),
            (
                (check.path is not None or check.matcher is not None)
                and self.health_check_protocol not in _HTTP_PROTOCOLS,
                HTTP_ONLY_FIELDS,
            ),
        ]
        for failed, message in problems:
            if failed:
                raise ValueError(message)
        return self


class Target(StatusModel):
    """One registered target and its health, as DescribeTargetHealth reports it."""

    id: str = Field(max_length=64, description="The task's id (32 hex characters).")
    task: str = Field(max_length=253, description="The Task object (and its Pod).")
    service: str = Field(max_length=253, description="The Service that registered it.")
    ip: str = Field(max_length=45, description="The Pod IP.")
    port: int = Field(ge=1, le=65535, description="The registered containerPort.")
    availability_zone: str | None = Field(
        default=None, max_length=253, description="Zone of the task's node."
    )
    node_name: str | None = Field(default=None, max_length=253, description="The task's node.")
    state: TargetState = Field(description="initial, healthy, unhealthy, draining or unused.")
    reason: str | None = Field(
        default=None,
        max_length=64,
        description="ELBv2 reason code, e.g. Elb.InitialHealthChecking; absent when healthy.",
    )
    description: str | None = Field(
        default=None, max_length=1024, description="The reason in words."
    )
    registered_at: Timestamp = Field(description="When the target was registered.")
    draining_since: Timestamp | None = Field(
        default=None, description="When deregistration began (state draining)."
    )
    task_stopped: bool = Field(
        default=False,
        description=(
            "The task stopped while the target drained: it stays draining until the delay ends "
            "but is no longer an endpoint."
        ),
    )
    serving: bool | None = Field(
        default=None,
        description=(
            "false: registered and health-checked, but given no production traffic (its "
            "deployment's traffic weight during a BLUE_GREEN, LINEAR or CANARY deployment): "
            "not an endpoint."
        ),
    )


class TrafficWeight(StatusModel):
    """The production traffic share its endpoints carry for a Service's PRIMARY deployment."""

    service: str = Field(max_length=253, description="The Service.")
    deployment_id: str = Field(max_length=27, description="Its PRIMARY deployment, ecs-svc/...")
    weight: float = Field(ge=0.0, le=100.0, description="The deployment's share (%).")
    applied_at: Timestamp = Field(description="Since when the EndpointSlices carry it.")


class LoadBalancerStatus(StatusModel):
    """Targets and their health, plus Kubernetes conditions."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status reflects."
    )
    targets: list[Target] | None = Field(
        default=None, max_length=MAX_TARGETS, description="Registered targets, by task and port."
    )
    healthy_count: int = Field(default=0, ge=0, description="Targets in state healthy.")
    unhealthy_count: int = Field(default=0, ge=0, description="Targets in state unhealthy.")
    draining_count: int = Field(default=0, ge=0, description="Targets in state draining.")
    initial_count: int = Field(default=0, ge=0, description="Targets in state initial.")
    services: list[str] | None = Field(
        default=None, max_length=1000, description="Services whose loadBalancers[] name it."
    )
    service_name: str | None = Field(
        default=None, max_length=63, description="The Kubernetes Service the operator keeps."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=MAX_CONDITIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description=(
            "Ready (at least one healthy target), Degraded (targets unhealthy, or a Service "
            "names it wrongly)."
        ),
    )
    traffic_weights: list[TrafficWeight] | None = Field(
        default=None,
        description=(
            "Per Service in a BLUE_GREEN, LINEAR or CANARY deployment: the production share its "
            "new revision's endpoints carry, once written to the EndpointSlices."
        ),
    )
    unsupported: list[UnsupportedField] | None = Field(
        default=None,
        max_length=MAX_UNSUPPORTED_ENTRIES,
        description="Fields accepted but not honoured on Kubernetes, and why.",
    )


class LoadBalancer(BaseModel):
    """An ELBv2-style target group; Services register their tasks' ports with it."""

    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
        json_schema_extra=cel_rules(
            (
                f"size(self.metadata.name) <= {MAX_SERVICE_NAME_LENGTH} && "
                f"self.metadata.name.matches('{SERVICE_NAME_PATTERN}')",
                NAME_NOT_A_SERVICE_NAME,
                ".metadata.name",
            )
        ),
    )

    api_version: str = Field(default=API_GROUP_VERSION, alias="apiVersion")
    kind: Literal["LoadBalancer"] = "LoadBalancer"
    metadata: ObjectMeta
    spec: LoadBalancerSpec
    status: LoadBalancerStatus | None = None
