"""The ``Service`` custom resource: an ECS service that keeps tasks running (CreateService).

``spec`` is the CreateService/UpdateService request with the ECS field names: ``taskDefinition``,
``desiredCount``, ``schedulingStrategy``, ``deploymentConfiguration``, placement, health-check
grace period, AZ rebalancing, ``loadBalancers``, tags. Editing the spec is UpdateService, with two
Kubernetes adaptations:

* ``forceNewDeployment`` is a string token instead of a boolean flag: a declarative spec has no
  one-shot flag, so changing the token (any value, e.g. a timestamp) starts a new deployment, as
  ``update-service --force-new-deployment`` does. An unchanged token does nothing.
* Defaults that depend on the scheduling strategy are left out of the schema and applied by the
  operator: ``deploymentConfiguration`` is 100/200 percent for REPLICA and 0/100 for DAEMON;
  ``availabilityZoneRebalancing`` absent means ENABLED unless a binpack strategy is used.

What starts a new deployment (ECS UpdateService): a different resolved task definition revision
(including ``family`` whose latest ACTIVE revision moved), a new ``forceNewDeployment`` token,
``placementConstraints``, ``placementStrategy``, ``loadBalancers``, ``networkConfiguration``,
``launchType``, ``propagateTags`` or ``enableECSManagedTags``. Not ``desiredCount``,
``deploymentConfiguration``, ``healthCheckGracePeriodSeconds``, ``availabilityZoneRebalancing``,
``tags`` or ``continueServiceDeployment`` (the answer to a PAUSE lifecycle hook, not an ECS
service field: ECS's ContinueServiceDeployment call as a declaration).

A CreateService request, or an ecspresso or Terraform service definition, pastes as it is: the
fields ECS has and Kubernetes cannot honour (``serviceName``, ``cluster``, ``platformVersion``,
``platformFamily``, ``enableExecuteCommand``, ``networkConfiguration``,
``capacityProviderStrategy``, ``deploymentController``, ``serviceRegistries``,
``serviceConnectConfiguration``, ``role``, describe-services'
``runningCount`` and ``pendingCount``) are accepted and reported in ``status.unsupported``
(``core.service_fields``). ``""`` in an enum field (``"launchType": ""``, as exports write it)
means not set.

``status`` is the ECS DescribeServices output (counts, ``deployments[]``, ``events[]`` newest
first, at most 100) plus ``observedGeneration``, the conditions ``Ready`` (steady state),
``Progressing`` (a deployment is rolling out) and ``Degraded`` (the service cannot reach its goal),
``selector`` for the scale subresource, and ``scheduler``, the scheduler's own bookkeeping.
"""

import re
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ecs_operator.models.common import (
    API_GROUP_VERSION,
    EMPTY_IS_UNSET,
    MAX_INT32,
    MAX_OBJECT_NAME_LENGTH,
    MAX_TAGS,
    MAX_UNSUPPORTED_ENTRIES,
    Condition,
    EcsModel,
    ObjectMeta,
    StatusModel,
    Tag,
    Timestamp,
    UnsupportedField,
    cel_rules,
)
from ecs_operator.models.placement import PlacementConstraint, PlacementStrategy
from ecs_operator.models.task import NetworkConfiguration
from ecs_operator.models.taskdefinition import (
    MAX_CONDITIONS,
    NAME_PATTERN,
    TASK_DEFINITION_REF_PATTERN,
)

CONDITION_READY: Final = "Ready"
CONDITION_PROGRESSING: Final = "Progressing"
CONDITION_DEGRADED: Final = "Degraded"

MAX_DESIRED_COUNT: Final = 5000
MAX_PLACEMENT_STRATEGIES: Final = 5
MAX_PLACEMENT_CONSTRAINTS: Final = 10
MAX_LOAD_BALANCERS: Final = 5
MAX_EVENTS: Final = 100
MAX_SERVICE_EVENT_LENGTH: Final = 2048
MAX_DEPLOYMENTS: Final = 64
# A service's task is named SERVICE-SUFFIX (a Kubernetes object name, at most 253 characters);
# the suffix that makes it unique may take up to 52 characters, so the name takes the rest.
TASK_NAME_SUFFIX_ROOM: Final = 53
MAX_SERVICE_NAME_LENGTH: Final = MAX_OBJECT_NAME_LENGTH - TASK_NAME_SUFFIX_ROOM
SERVICE_NAME_TOO_LONG: Final = (
    f"metadata.name: a Service names its tasks SERVICE-SUFFIX, and a task's name is at most "
    f"{MAX_OBJECT_NAME_LENGTH} characters, so the Service's name is at most "
    f"{MAX_SERVICE_NAME_LENGTH} characters"
)
DEPLOYMENT_ID_PATTERN: Final = r"^ecs-svc/[0-9]{19}$"
# A Kubernetes object name (RFC 1123 subdomain): LoadBalancer objects are named like any other.

SchedulingStrategy = Literal["REPLICA", "DAEMON"]
DeploymentStatus = Literal["PRIMARY", "ACTIVE", "INACTIVE"]
RolloutState = Literal["IN_PROGRESS", "COMPLETED", "FAILED"]
AvailabilityZoneRebalancing = Literal["ENABLED", "DISABLED"]
DeploymentStrategy = Literal["ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"]
# The stages a lifecycle hook may name (ECS DeploymentLifecycleHook.lifecycleStages).
HookStage = Literal[
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
]
# The stages a BLUE_GREEN, LINEAR or CANARY deployment goes through (ECS's names). A hook stage
# passes at once unless a PAUSE hook waits there; TEST_TRAFFIC_SHIFT is entered only with an
# alternate (test) LoadBalancer.
LifecycleStage = Literal[
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
]
HookTargetType = Literal["AWS_LAMBDA", "PAUSE"]
HookAction = Literal["CONTINUE", "ROLLBACK"]
HookStatus = Literal["AWAITING_ACTION", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT"]
MAX_PAUSE_HOOKS: Final = 10
MAX_LAMBDA_HOOKS: Final = 10
MAX_PAUSE_TIMEOUT_MINUTES: Final = 20160
MAX_LAMBDA_TIMEOUT_MINUTES: Final = 1440
# A LINEAR deployment pauses before each of its steps (at most 34) besides its other stages.
MAX_HOOK_DETAILS: Final = 64
HOOK_ID_PATTERN: Final = r"^ecs-pause-[0-9]{19}-[0-9]{1,3}$"
# ECS's ServiceDeployment.status (ecs-deployments.md §7.4).
ServiceDeploymentStatus = Literal[
    "PENDING",
    "IN_PROGRESS",
    "SUCCESSFUL",
    "STOPPED",
    "STOP_REQUESTED",
    "ROLLBACK_REQUESTED",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_SUCCESSFUL",
    "ROLLBACK_FAILED",
]
CircuitBreakerStatus = Literal["TRIGGERED", "MONITORING", "MONITORING_COMPLETE", "DISABLED"]
MAX_ALARMS: Final = 64
MAX_SERVICE_DEPLOYMENTS: Final = 10
MAX_ARN_LENGTH: Final = 1600

DESIRED_COUNT_REQUIRED: Final = "spec.desiredCount is required for the REPLICA scheduling strategy"
DAEMON_DESIRED_COUNT: Final = (
    "spec.desiredCount is not allowed for a DAEMON service: it runs one task on each node"
)
DAEMON_PLACEMENT_STRATEGY: Final = (
    "spec.placementStrategy is not allowed for a DAEMON service: it runs one task on each node"
)
DAEMON_MAXIMUM_PERCENT: Final = (
    "spec.deploymentConfiguration.maximumPercent must be 100 for a DAEMON service"
)
DUPLICATE_LOAD_BALANCER: Final = (
    "spec.loadBalancers: each (loadBalancerName or targetGroupArn, containerName, containerPort) "
    "may appear only once"
)
MINIMUM_ABOVE_MAXIMUM: Final = (
    "spec.deploymentConfiguration.minimumHealthyPercent must not exceed maximumPercent"
)
CANARY_CONFIGURATION_WITHOUT_CANARY: Final = (
    "spec.deploymentConfiguration.canaryConfiguration is allowed only with strategy CANARY"
)
LINEAR_CONFIGURATION_WITHOUT_LINEAR: Final = (
    "spec.deploymentConfiguration.linearConfiguration is allowed only with strategy LINEAR"
)
BLUE_GREEN_WITHOUT_BAKE_TIME: Final = (
    "spec.deploymentConfiguration.bakeTimeInMinutes is required with strategy BLUE_GREEN"
)
PAUSE_AT_TRAFFIC_SHIFT: Final = (
    "spec.deploymentConfiguration.lifecycleHooks[].lifecycleStages: a PAUSE hook is not allowed "
    "at TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT (they also run during a rollback)"
)
LAMBDA_WITHOUT_TARGET: Final = (
    "spec.deploymentConfiguration.lifecycleHooks[].hookTargetArn is required for an AWS_LAMBDA hook"
)
LAMBDA_TARGET_FORM: Final = (
    "spec.deploymentConfiguration.lifecycleHooks[].hookTargetArn: there is no Lambda on "
    "Kubernetes: an AWS_LAMBDA hook's target is an http:// or https:// URL (the operator POSTs "
    "ECS's hook payload to it) or a task definition, "
    "arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY[:REVISION] or "
    "task-definition/FAMILY[:REVISION] (the operator runs it as a Task)"
)
LAMBDA_TIMEOUT_TOO_LONG: Final = (
    "spec.deploymentConfiguration.lifecycleHooks[].timeoutConfiguration.timeoutInMinutes: an "
    f"AWS_LAMBDA hook waits at most {MAX_LAMBDA_TIMEOUT_MINUTES} minutes"
)
TOO_MANY_PAUSE_HOOKS: Final = (
    f"spec.deploymentConfiguration.lifecycleHooks: at most {MAX_PAUSE_HOOKS} PAUSE hooks"
)
TOO_MANY_LAMBDA_HOOKS: Final = (
    f"spec.deploymentConfiguration.lifecycleHooks: at most {MAX_LAMBDA_HOOKS} AWS_LAMBDA hooks"
)
ADVANCED_CONFIGURATION_WITHOUT_STAGED: Final = (
    "spec.loadBalancers[].advancedConfiguration is allowed only with strategy BLUE_GREEN, LINEAR "
    "or CANARY"
)
DAEMON_STRATEGY: Final = (
    "spec.deploymentConfiguration.strategy must be ROLLING for a DAEMON service: it runs one "
    "task on each node"
)

_DAEMON = "has(self.schedulingStrategy) && self.schedulingStrategy == 'DAEMON'"

# Mirrored by ServiceSpec._strategy_rules, so the operator's own parse gives the same answer.
_SPEC_RULES = cel_rules(
    (f"({_DAEMON}) || has(self.desiredCount)", DESIRED_COUNT_REQUIRED, ".desiredCount"),
    (f"!({_DAEMON}) || !has(self.desiredCount)", DAEMON_DESIRED_COUNT, ".desiredCount"),
    (
        f"!({_DAEMON}) || !has(self.placementStrategy)",
        DAEMON_PLACEMENT_STRATEGY,
        ".placementStrategy",
    ),
    (
        f"!({_DAEMON}) || !has(self.deploymentConfiguration) || "
        "!has(self.deploymentConfiguration.maximumPercent) || "
        "self.deploymentConfiguration.maximumPercent == 100",
        DAEMON_MAXIMUM_PERCENT,
        ".deploymentConfiguration.maximumPercent",
    ),
    (
        f"!({_DAEMON}) || !has(self.deploymentConfiguration) || "
        "!has(self.deploymentConfiguration.strategy) || "
        "self.deploymentConfiguration.strategy == 'ROLLING'",
        DAEMON_STRATEGY,
        ".deploymentConfiguration.strategy",
    ),
    (
        "!has(self.loadBalancers) || self.loadBalancers.all(a, self.loadBalancers.exists_one(b, "
        "has(b.loadBalancerName) == has(a.loadBalancerName) && "
        "(!has(a.loadBalancerName) || b.loadBalancerName == a.loadBalancerName) && "
        "has(b.targetGroupArn) == has(a.targetGroupArn) && "
        "(!has(a.targetGroupArn) || b.targetGroupArn == a.targetGroupArn) && "
        "b.containerName == a.containerName && b.containerPort == a.containerPort))",
        DUPLICATE_LOAD_BALANCER,
        ".loadBalancers",
    ),
    (
        "!has(self.loadBalancers) || self.loadBalancers.all(b, !has(b.advancedConfiguration)) || "
        "(has(self.deploymentConfiguration) && has(self.deploymentConfiguration.strategy) && "
        "self.deploymentConfiguration.strategy in ['BLUE_GREEN', 'LINEAR', 'CANARY'])",
        ADVANCED_CONFIGURATION_WITHOUT_STAGED,
        ".loadBalancers",
    ),
)


class DeploymentCircuitBreaker(EcsModel):
    """Stop a deployment whose tasks keep failing, and optionally roll back."""

    enable: bool = Field(
        description=(
            "Fail the deployment after min(200, max(3, ceil(desiredCount / 2))) of its tasks "
            "failed to start or failed their health checks."
        )
    )
    rollback: bool = Field(
        description=(
            "When the deployment fails, return to the task definition of the last deployment "
            "that completed."
        )
    )


class LinearConfiguration(EcsModel):
    """LINEAR: production traffic moves to the new revision in equal steps."""

    step_percent: float | None = Field(
        default=None,
        ge=3.0,
        le=100.0,
        description="Share of production traffic each step moves, 3.0-100.0 %. Default 10.0.",
    )
    step_bake_time_in_minutes: int | None = Field(
        default=None,
        ge=0,
        le=1440,
        description="Minutes to wait after each step but the last, 0-1440. Default 6.",
    )


class CanaryConfiguration(EcsModel):
    """CANARY: a share of production traffic first, then the rest."""

    canary_percent: float | None = Field(
        default=None,
        ge=0.1,
        le=100.0,
        description="Share of production traffic the canary takes first, 0.1-100.0 %. Default 5.0.",
    )
    canary_bake_time_in_minutes: int | None = Field(
        default=None,
        ge=0,
        le=1440,
        description="Minutes to wait at the canary share before the rest moves, 0-1440. "
        "Default 10.",
    )


class DeploymentAlarms(EcsModel):
    """Alarms that fail a deployment: each name is an alarm of the operator's install, a
    Prometheus query (``--alarms-file``), in ALARM while it returns a non-zero sample."""

    alarm_names: list[Annotated[str, Field(max_length=255)]] = Field(
        max_length=MAX_ALARMS, description="Alarm names (defined in the operator's alarms file)."
    )
    enable: bool = Field(description="Whether the alarms are watched during a deployment.")
    rollback: bool = Field(description="Whether a failed deployment is rolled back.")


class HookTimeoutConfiguration(EcsModel):
    """How long a hook may wait, and what happens then (ECS
    DeploymentLifecycleHookTimeoutConfiguration)."""

    timeout_in_minutes: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PAUSE_TIMEOUT_MINUTES,
        description=(
            "Minutes the hook waits for an action, 1-20160 (PAUSE; AWS_LAMBDA at most 1440). "
            "Default 1440."
        ),
    )
    action: HookAction | None = Field(
        default=None,
        description="What applies when it expires: ROLLBACK (default) or CONTINUE.",
    )


_PAUSE = "has(self.targetType) && self.targetType == 'PAUSE'"
# What an AWS_LAMBDA hook may name instead of a Lambda function (core.lifecycle_hooks): a URL
# to call, or a task definition to run.
HOOK_URL_PATTERN: Final = r"^https?://[^\s/?#]+([/?#]\S*)?$"
HOOK_TASK_PATTERN: Final = (
    r"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:)?task-definition/"
    r"([A-Za-z0-9_-]{1,255}(:[1-9][0-9]{0,6})?)$"
)
HOOK_TARGET_PATTERN: Final = f"({HOOK_URL_PATTERN})|({HOOK_TASK_PATTERN})"
# The pattern inside a CEL string literal: backslashes escaped (CEL has no `\s` escape, and a
# real kube-apiserver refuses the CRD whose rule has one).
HOOK_TARGET_CEL_LITERAL: Final = HOOK_TARGET_PATTERN.replace("\\", "\\\\")


class DeploymentLifecycleHook(EcsModel):
    """A lifecycle hook of BLUE_GREEN, LINEAR and CANARY deployments (ECS
    DeploymentLifecycleHook). PAUSE stops the deployment at each of its stages until
    spec.continueServiceDeployment names it, or its timeout applies; AWS_LAMBDA (there is no
    Lambda) POSTs ECS's hook payload to the URL hookTargetArn names until it answers SUCCEEDED
    or FAILED, or runs the task definition it names once as a Task (exit 0: SUCCEEDED), or its
    timeout applies."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                f"!({_PAUSE}) || !self.lifecycleStages.exists(s, "
                "s == 'TEST_TRAFFIC_SHIFT' || s == 'PRODUCTION_TRAFFIC_SHIFT')",
                PAUSE_AT_TRAFFIC_SHIFT,
                ".lifecycleStages",
            ),
            (f"({_PAUSE}) || has(self.hookTargetArn)", LAMBDA_WITHOUT_TARGET, ".hookTargetArn"),
            (
                f"({_PAUSE}) || !has(self.hookTargetArn) || "
                f"self.hookTargetArn.matches('{HOOK_TARGET_CEL_LITERAL}')",
                LAMBDA_TARGET_FORM,
                ".hookTargetArn",
            ),
            (
                f"({_PAUSE}) || !has(self.timeoutConfiguration) || "
                "!has(self.timeoutConfiguration.timeoutInMinutes) || "
                f"self.timeoutConfiguration.timeoutInMinutes <= {MAX_LAMBDA_TIMEOUT_MINUTES}",
                LAMBDA_TIMEOUT_TOO_LONG,
                ".timeoutConfiguration.timeoutInMinutes",
            ),
        )
    )

    target_type: HookTargetType | None = Field(
        default=None,
        description="PAUSE (wait for an action) or AWS_LAMBDA (default: call hookTargetArn).",
    )
    lifecycle_stages: list[HookStage] = Field(
        min_length=1,
        max_length=8,
        description=(
            "The stages it runs at. PAUSE: RECONCILE_SERVICE, PRE_SCALE_UP, POST_SCALE_UP, "
            "POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT (before every traffic step), "
            "POST_PRODUCTION_TRAFFIC_SHIFT. AWS_LAMBDA: these, TEST_TRAFFIC_SHIFT and "
            "PRODUCTION_TRAFFIC_SHIFT (at every traffic step, once its traffic is in place)."
        ),
    )
    hook_target_arn: str | None = Field(
        default=None,
        max_length=MAX_ARN_LENGTH,
        description=(
            "AWS_LAMBDA: the http:// or https:// URL (say a cluster Service's) the operator "
            "POSTs ECS's hook payload to, or a task definition (task-definition/FAMILY[:REVISION], "
            "or its ECS ARN) the operator runs once as a Task with the payload in "
            "ECS_LIFECYCLE_HOOK_PAYLOAD; not used by PAUSE."
        ),
    )
    role_arn: str | None = Field(
        default=None,
        max_length=MAX_ARN_LENGTH,
        description="The IAM role that invokes the Lambda: not needed on Kubernetes.",
    )
    hook_details: Any = Field(
        default=None,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="Any JSON passed in the payload's hookDetails (ignored by PAUSE).",
    )
    timeout_configuration: HookTimeoutConfiguration | None = Field(
        default=None, description="How long it waits and what happens then."
    )

    @model_validator(mode="after")
    def _hook_rules(self) -> Self:
        pause = self.target_type == "PAUSE"
        minutes = (
            self.timeout_configuration.timeout_in_minutes if self.timeout_configuration else None
        )
        problems = [
            (
                pause
                and any(
                    s in ("TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")
                    for s in self.lifecycle_stages
                ),
                PAUSE_AT_TRAFFIC_SHIFT,
            ),
            (not pause and self.hook_target_arn is None, LAMBDA_WITHOUT_TARGET),
            (
                not pause
                and self.hook_target_arn is not None
                and re.match(HOOK_TARGET_PATTERN, self.hook_target_arn) is None,
                LAMBDA_TARGET_FORM,
            ),
            (
                not pause and minutes is not None and minutes > MAX_LAMBDA_TIMEOUT_MINUTES,
                LAMBDA_TIMEOUT_TOO_LONG,
            ),
        ]
        for failed, message in problems:
            if failed:
                raise ValueError(message)
        return self


class ContinueServiceDeployment(EcsModel):
    """The answer to a PAUSE hook (ECS ContinueServiceDeployment's members)."""

    hook_id: str = Field(
        max_length=40,
        pattern=HOOK_ID_PATTERN,
        description="The hook awaiting action (status.serviceDeployments[].lifecycleHookDetails).",
    )
    action: HookAction = Field(
        default="CONTINUE",
        description="CONTINUE (default): the deployment goes on. ROLLBACK: it rolls back.",
    )


class DeploymentConfiguration(EcsModel):
    """How a deployment replaces tasks: the strategy, and for ROLLING how many tasks may run and
    must stay healthy meanwhile."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "!has(self.minimumHealthyPercent) || !has(self.maximumPercent) || "
                "self.minimumHealthyPercent <= self.maximumPercent",
                MINIMUM_ABOVE_MAXIMUM,
                ".minimumHealthyPercent",
            ),
            (
                "!has(self.canaryConfiguration) || "
                "(has(self.strategy) && self.strategy == 'CANARY')",
                CANARY_CONFIGURATION_WITHOUT_CANARY,
                ".canaryConfiguration",
            ),
            (
                "!has(self.linearConfiguration) || "
                "(has(self.strategy) && self.strategy == 'LINEAR')",
                LINEAR_CONFIGURATION_WITHOUT_LINEAR,
                ".linearConfiguration",
            ),
            (
                "!has(self.strategy) || self.strategy != 'BLUE_GREEN' || "
                "has(self.bakeTimeInMinutes)",
                BLUE_GREEN_WITHOUT_BAKE_TIME,
                ".bakeTimeInMinutes",
            ),
            (
                "!has(self.lifecycleHooks) || self.lifecycleHooks.filter(h, "
                f"has(h.targetType) && h.targetType == 'PAUSE').size() <= {MAX_PAUSE_HOOKS}",
                TOO_MANY_PAUSE_HOOKS,
                ".lifecycleHooks",
            ),
            (
                "!has(self.lifecycleHooks) || self.lifecycleHooks.filter(h, "
                f"!has(h.targetType) || h.targetType != 'PAUSE').size() <= {MAX_LAMBDA_HOOKS}",
                TOO_MANY_LAMBDA_HOOKS,
                ".lifecycleHooks",
            ),
        )
    )

    strategy: DeploymentStrategy | None = Field(
        default=None,
        description=(
            "ROLLING (default): replace tasks within minimumHealthyPercent/maximumPercent. "
            "BLUE_GREEN, LINEAR, CANARY: start the new revision at the full desiredCount beside "
            "the old one, move production traffic to it (at once, in steps, or a canary share "
            "first), wait bakeTimeInMinutes, then stop the old revision."
        ),
    )
    bake_time_in_minutes: int | None = Field(
        default=None,
        ge=0,
        le=1440,
        description=(
            "BLUE_GREEN, LINEAR, CANARY: minutes both revisions keep running after all "
            "production traffic moved, 0-1440 (required for BLUE_GREEN; default 0 otherwise)."
        ),
    )
    linear_configuration: LinearConfiguration | None = Field(
        default=None, description="LINEAR's steps (only with strategy LINEAR)."
    )
    canary_configuration: CanaryConfiguration | None = Field(
        default=None, description="CANARY's share and wait (only with strategy CANARY)."
    )

    maximum_percent: int | None = Field(
        default=None,
        ge=100,
        le=MAX_INT32,
        description=(
            "Upper bound on the service's PENDING and RUNNING tasks during a deployment or "
            "draining, as a percentage of desiredCount (rounded down); at least 100. Default 200 "
            "(REPLICA); a DAEMON service must use 100."
        ),
    )
    minimum_healthy_percent: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description=(
            "Lower bound on healthy RUNNING tasks during a deployment or draining, as a "
            "percentage of desiredCount (rounded up), 0-100. Default 100 (REPLICA), 0 (DAEMON)."
        ),
    )
    deployment_circuit_breaker: DeploymentCircuitBreaker | None = Field(
        default=None, description="Fail (and optionally roll back) a deployment that cannot start."
    )
    alarms: DeploymentAlarms | None = Field(
        default=None,
        description=(
            "Alarms (Prometheus queries of the operator's install) watched during a deployment "
            "and its bake time: one in ALARM fails the deployment (and rolls it back)."
        ),
    )
    lifecycle_hooks: list[DeploymentLifecycleHook] | None = Field(
        default=None,
        max_length=MAX_PAUSE_HOOKS + MAX_LAMBDA_HOOKS,
        description=(
            "Hooks at the stages of BLUE_GREEN, LINEAR and CANARY deployments: at most 10 PAUSE "
            "and 10 AWS_LAMBDA."
        ),
    )

    @model_validator(mode="after")
    def _minimum_within_maximum(self) -> Self:
        if (
            self.minimum_healthy_percent is not None
            and self.maximum_percent is not None
            and self.minimum_healthy_percent > self.maximum_percent
        ):
            raise ValueError(MINIMUM_ABOVE_MAXIMUM)
        hooks = self.lifecycle_hooks or ()
        problems = [
            (
                self.canary_configuration is not None and self.strategy != "CANARY",
                CANARY_CONFIGURATION_WITHOUT_CANARY,
            ),
            (
                self.linear_configuration is not None and self.strategy != "LINEAR",
                LINEAR_CONFIGURATION_WITHOUT_LINEAR,
            ),
            (
                self.strategy == "BLUE_GREEN" and self.bake_time_in_minutes is None,
                BLUE_GREEN_WITHOUT_BAKE_TIME,
            ),
            (sum(h.target_type == "PAUSE" for h in hooks) > MAX_PAUSE_HOOKS, TOO_MANY_PAUSE_HOOKS),
            (
                sum(h.target_type != "PAUSE" for h in hooks) > MAX_LAMBDA_HOOKS,
                TOO_MANY_LAMBDA_HOOKS,
            ),
        ]
        for failed, message in problems:
            if failed:
                raise ValueError(message)
        return self


LOAD_BALANCER_NAME_PATTERN: Final = r"^[A-Za-z0-9]([-.A-Za-z0-9]*[A-Za-z0-9])?$"
TARGET_GROUP_ARN_PATTERN: Final = (
    r"^arn:[a-z-]+:elasticloadbalancing:[^:]*:[^:]*:targetgroup/[A-Za-z0-9-]{1,32}/[0-9A-Za-z]+$"
)
ALTERNATE_TARGET_GROUP_PATTERN: Final = (
    r"^([A-Za-z0-9]([-.A-Za-z0-9]*[A-Za-z0-9])?|"
    r"arn:[a-z-]+:elasticloadbalancing:[^:]*:[^:]*:targetgroup/[A-Za-z0-9-]{1,32}/[0-9A-Za-z]+)$"
)
HTTP_ROUTE_PREFIX: Final = "httproute/"
# The name of an HTTPRoute (a DNS subdomain) that a listener rule may give instead of an ARN.
HTTP_ROUTE_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
SAME_ROUTE_TWICE: Final = (
    "spec.loadBalancers[].advancedConfiguration.testListenerRule must name another HTTPRoute "
    "than productionListenerRule: ECS requires distinct production and test listener rules"
)


def route_name(rule: str | None) -> str | None:
    """The HTTPRoute a ``productionListenerRule`` or ``testListenerRule`` names (``httproute/NAME``
    or ``NAME``, in the Service's namespace); None when it names none (an ELB rule ARN)."""
    if not rule:
        return None
    prefixed = rule[: len(HTTP_ROUTE_PREFIX)].lower() == HTTP_ROUTE_PREFIX
    name = rule[len(HTTP_ROUTE_PREFIX) :] if prefixed else rule
    return name if re.fullmatch(HTTP_ROUTE_NAME_PATTERN, name) else None


def _cel_route_name(field: str) -> str:
    """CEL for ``route_name``'s NAME part of ``self.FIELD`` (whether it is a name is checked
    apart)."""
    value = f"self.{field}"
    return (
        f"({value}.lowerAscii().startsWith('{HTTP_ROUTE_PREFIX}') ? "
        f"{value}.substring({len(HTTP_ROUTE_PREFIX)}) : {value})"
    )


LOAD_BALANCER_MISSING: Final = "give loadBalancerName or targetGroupArn"
LOAD_BALANCER_TWICE: Final = "give loadBalancerName or targetGroupArn, not both"


class AdvancedConfiguration(EcsModel):
    """ECS's advanced settings of a load balancer for BLUE_GREEN, LINEAR and CANARY: the
    alternate target group (here a second LoadBalancer) that carries test traffic to the new
    revision; ``productionListenerRule`` may name an HTTPRoute that splits production traffic
    exactly and ``testListenerRule`` one that sends test traffic to the test LoadBalancer
    (``core.http_routes``), never both the same; the role, and a listener rule that is an ELB
    rule ARN, are accepted and not honoured."""

    # Mirrored by _distinct_routes, so the operator's own parse gives the same answer.
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "!has(self.productionListenerRule) || !has(self.testListenerRule) || "
                f"{_cel_route_name('productionListenerRule')} != "
                f"{_cel_route_name('testListenerRule')} || "
                f"!{_cel_route_name('productionListenerRule')}"
                f".matches('{HTTP_ROUTE_NAME_PATTERN}')",
                SAME_ROUTE_TWICE,
                ".testListenerRule",
            ),
        )
    )

    alternate_target_group_arn: str = Field(
        min_length=1,
        max_length=2048,
        pattern=ALTERNATE_TARGET_GROUP_PATTERN,
        description=(
            "The LoadBalancer that carries test traffic: its name, or a target group ARN naming "
            "it (mapped as targetGroupArn). It lists the new revision's tasks from "
            "TEST_TRAFFIC_SHIFT on, never the old revision's; once a deployment completes the "
            "two swap roles (status.resolvedConfiguration)."
        ),
    )
    production_listener_rule: str | None = Field(
        default=None,
        max_length=2048,
        description=(
            "A Gateway API HTTPRoute in the Service's namespace, as httproute/NAME or NAME: the "
            "operator sets the weights of its backendRefs naming the production and test "
            "LoadBalancers' Kubernetes Services to the deployment's production share. An ELB "
            "listener rule ARN is not honoured (the LoadBalancer listens)."
        ),
    )
    test_listener_rule: str | None = Field(
        default=None,
        max_length=2048,
        description=(
            "A Gateway API HTTPRoute in the Service's namespace, as httproute/NAME or NAME, "
            "other than productionListenerRule's: the operator weights its backendRefs naming "
            "the production and test LoadBalancers' Kubernetes Services 0 and 1000, so its "
            "traffic reaches the test LoadBalancer only. An ELB listener rule ARN is not "
            "honoured (the LoadBalancer listens)."
        ),
    )
    role_arn: str | None = Field(
        default=None,
        max_length=2048,
        description="IAM role for the load balancer calls (not honoured: none is needed).",
    )

    @model_validator(mode="after")
    def _distinct_routes(self) -> Self:
        route = route_name(self.production_listener_rule)
        if route is not None and route == route_name(self.test_listener_rule):
            raise ValueError(SAME_ROUTE_TWICE)
        return self


class ServiceLoadBalancer(EcsModel):
    """A container port to register as a target of a LoadBalancer object, named by
    ``loadBalancerName`` or by ``targetGroupArn`` (mapped to a LoadBalancer's name by the rule
    of ``core/names.py``)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "has(self.loadBalancerName) || has(self.targetGroupArn)",
                LOAD_BALANCER_MISSING,
                ".loadBalancerName",
                "FieldValueRequired",
            ),
            (
                "!has(self.loadBalancerName) || !has(self.targetGroupArn)",
                LOAD_BALANCER_TWICE,
                ".targetGroupArn",
                "FieldValueForbidden",
            ),
        )
    )

    load_balancer_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_OBJECT_NAME_LENGTH,
        pattern=LOAD_BALANCER_NAME_PATTERN,
        description=(
            "Name of a LoadBalancer object in the Service's namespace; a classic ELB's name that "
            "is not one (MyELB) is mapped: lower-cased, other characters as -, a digest of the "
            "name appended."
        ),
    )
    target_group_arn: str | None = Field(
        default=None,
        max_length=2048,
        pattern=TARGET_GROUP_ARN_PATTERN,
        description=(
            "An ELBv2 target group ARN instead of loadBalancerName: the LoadBalancer named "
            "after the target group (targetgroup/web-tg/73e2... names web-tg, mapped like "
            "loadBalancerName)."
        ),
    )
    container_name: str = Field(
        min_length=1,
        max_length=255,
        pattern=NAME_PATTERN,
        description="Container of the task definition whose port is registered.",
    )
    container_port: int = Field(
        ge=1,
        le=65535,
        description="A containerPort of that container's portMappings.",
    )
    advanced_configuration: AdvancedConfiguration | None = Field(
        default=None,
        description=(
            "BLUE_GREEN, LINEAR, CANARY: the alternate LoadBalancer that carries test traffic "
            "to the new revision."
        ),
    )

    @model_validator(mode="after")
    def _one_name(self) -> Self:
        # Mirrors the CEL rules, so the operator's own parse gives the same answer.
        if self.load_balancer_name is None and self.target_group_arn is None:
            raise ValueError(LOAD_BALANCER_MISSING)
        if self.load_balancer_name is not None and self.target_group_arn is not None:
            raise ValueError(LOAD_BALANCER_TWICE)
        return self


class CapacityProviderStrategyItem(EcsModel):
    """A capacity provider and its share of the tasks (not honoured)."""

    capacity_provider: str = Field(
        min_length=1, max_length=255, description="Capacity provider name, e.g. FARGATE_SPOT."
    )
    weight: int | None = Field(default=None, ge=0, le=1000, description="Relative share, 0-1000.")
    base: int | None = Field(default=None, ge=0, le=100_000, description="Tasks placed first.")


class DeploymentController(EcsModel):
    """Who deploys the service: ECS's rolling update (the only one here), CodeDeploy or an
    external controller."""

    type: Annotated[Literal["ECS", "CODE_DEPLOY", "EXTERNAL"], EMPTY_IS_UNSET] = Field(
        default="ECS",
        description="ECS (rolling update, the default and the only one honoured), CODE_DEPLOY "
        "or EXTERNAL.",
    )


class ServiceRegistry(EcsModel):
    """A Cloud Map service registry the tasks register with (not honoured)."""

    registry_arn: str | None = Field(
        default=None, max_length=2048, description="Cloud Map service ARN."
    )
    port: int | None = Field(default=None, ge=1, le=65535, description="SRV record port.")
    container_name: str | None = Field(
        default=None, max_length=255, description="Container for SRV records."
    )
    container_port: int | None = Field(
        default=None, ge=1, le=65535, description="Container port for SRV records."
    )


class ServiceSpec(EcsModel):
    """A CreateService/UpdateService request (see the module docstring for the adaptations)."""

    model_config = ConfigDict(json_schema_extra=_SPEC_RULES)

    task_definition: str = Field(
        min_length=1,
        max_length=512,
        pattern=TASK_DEFINITION_REF_PATTERN,
        description=(
            "TaskDefinition to run: family (its latest ACTIVE revision; a newer revision starts a "
            "new deployment) or family:revision. An ECS task definition ARN is accepted; region "
            "and account are ignored."
        ),
    )
    desired_count: int | None = Field(
        default=None,
        ge=0,
        le=MAX_DESIRED_COUNT,
        description=(
            "Tasks to keep RUNNING, 0-5000; required for REPLICA, not allowed for DAEMON. "
            "Changing it scales the current deployment and never starts a new one."
        ),
    )
    scheduling_strategy: Annotated[SchedulingStrategy, EMPTY_IS_UNSET] = Field(
        default="REPLICA",
        description=(
            "REPLICA (default): desiredCount tasks spread by the placement strategy. DAEMON: one "
            "task on each schedulable node that satisfies the placement constraints."
        ),
    )
    deployment_configuration: DeploymentConfiguration | None = Field(
        default=None, description="Rolling-update bounds and the deployment circuit breaker."
    )
    placement_strategy: list[PlacementStrategy] | None = Field(
        default=None,
        max_length=MAX_PLACEMENT_STRATEGIES,
        description=(
            "How to rank candidate nodes, in priority order; at most 5. Default: balance across "
            "availability zones, then across nodes. Not allowed for DAEMON."
        ),
    )
    placement_constraints: list[PlacementConstraint] | None = Field(
        default=None,
        max_length=MAX_PLACEMENT_CONSTRAINTS,
        description="Rules a node must satisfy to run the tasks; at most 10 with the revision's.",
    )
    health_check_grace_period_seconds: int = Field(
        default=0,
        ge=0,
        le=MAX_INT32,
        description=(
            "Seconds after a task starts during which failing container (and load balancer) "
            "health checks do not get it replaced; default 0."
        ),
    )
    availability_zone_rebalancing: Annotated[AvailabilityZoneRebalancing | None, EMPTY_IS_UNSET] = (
        Field(
            default=None,
            description=(
                "ENABLED: when the tasks' per-zone counts differ by more than one, start tasks in "
                "the emptiest zone and stop tasks in the fullest, within the deployment bounds. "
                "Absent means ENABLED, or DISABLED with a binpack placement strategy."
            ),
        )
    )
    force_new_deployment: str | None = Field(
        default=None,
        max_length=253,
        description=(
            "A token; changing it (to any value, e.g. a timestamp) starts a new deployment of "
            "the same configuration, like update-service --force-new-deployment."
        ),
    )
    load_balancers: list[ServiceLoadBalancer] | None = Field(
        default=None,
        max_length=MAX_LOAD_BALANCERS,
        description="Container ports registered as targets of LoadBalancer objects; at most 5.",
    )
    tags: list[Tag] | None = Field(
        default=None, max_length=MAX_TAGS, description="Up to 50 tags; aws: keys are reserved."
    )
    propagate_tags: Annotated[
        Literal["TASK_DEFINITION", "SERVICE", "NONE"] | None, EMPTY_IS_UNSET
    ] = Field(
        default=None,
        description=(
            "SERVICE copies the service's tags to its tasks; TASK_DEFINITION is not honoured."
        ),
    )
    enable_ecs_managed_tags: bool | None = Field(
        default=None,
        alias="enableECSManagedTags",
        description="Add ECS-managed tags (not honoured).",
    )
    launch_type: Annotated[
        Literal["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"] | None, EMPTY_IS_UNSET
    ] = Field(
        default=None, description="ECS launch type (informational: every task runs as a Pod)."
    )
    network_configuration: NetworkConfiguration | None = Field(
        default=None, description="awsvpc network configuration (accepted, not honoured)."
    )
    service_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=NAME_PATTERN,
        description=(
            "CreateService's name. The Service is named by metadata.name; a serviceName that "
            "does not match it (lower-cased, _ as -) is reported and not used."
        ),
    )
    cluster: str | None = Field(
        default=None,
        max_length=2048,
        description="ECS cluster name or ARN (not used: the namespace is the cluster).",
    )
    platform_version: str | None = Field(
        default=None, max_length=64, description="Fargate platform version (not honoured)."
    )
    platform_family: str | None = Field(
        default=None, max_length=64, description="Fargate platform family (not honoured)."
    )
    enable_execute_command: bool | None = Field(
        default=None, description="ECS Exec (not honoured: use kubectl exec)."
    )
    capacity_provider_strategy: list[CapacityProviderStrategyItem] | None = Field(
        default=None,
        max_length=20,
        description="Capacity providers (not honoured: tasks run on the namespace's nodes).",
    )
    deployment_controller: DeploymentController | None = Field(
        default=None, description="The deployment controller; only ECS is honoured."
    )
    service_registries: list[ServiceRegistry] | None = Field(
        default=None, max_length=10, description="Cloud Map registries (not honoured)."
    )
    service_connect_configuration: dict[str, Any] | None = Field(
        default=None, description="Service Connect configuration (not honoured)."
    )
    role: str | None = Field(
        default=None,
        max_length=2048,
        description="IAM role for the load balancer (not needed on Kubernetes).",
    )
    running_count: int | None = Field(
        default=None,
        ge=0,
        le=MAX_INT32,
        description="Read-only (describe-services output): ignored; see status.runningCount.",
    )
    pending_count: int | None = Field(
        default=None,
        ge=0,
        le=MAX_INT32,
        description="Read-only (describe-services output): ignored; see status.pendingCount.",
    )
    continue_service_deployment: ContinueServiceDeployment | None = Field(
        default=None,
        description=(
            "Not an ECS service field: ECS's ContinueServiceDeployment call as a declaration. "
            "When hookId names a PAUSE hook AWAITING_ACTION, CONTINUE lets the deployment go on "
            "and ROLLBACK rolls it back to the last successful service revision; otherwise it "
            "is ignored. Changing it never starts a deployment."
        ),
    )

    @model_validator(mode="after")
    def _strategy_rules(self) -> Self:
        daemon = self.scheduling_strategy == "DAEMON"
        configuration = self.deployment_configuration
        balancers = [
            (b.load_balancer_name, b.target_group_arn, b.container_name, b.container_port)
            for b in self.load_balancers or ()
        ]
        problems = [
            (not daemon and self.desired_count is None, DESIRED_COUNT_REQUIRED),
            (daemon and self.desired_count is not None, DAEMON_DESIRED_COUNT),
            (daemon and self.placement_strategy is not None, DAEMON_PLACEMENT_STRATEGY),
            (
                daemon
                and configuration is not None
                and configuration.maximum_percent not in (None, 100),
                DAEMON_MAXIMUM_PERCENT,
            ),
            (
                daemon
                and configuration is not None
                and configuration.strategy not in (None, "ROLLING"),
                DAEMON_STRATEGY,
            ),
            (len(set(balancers)) != len(balancers), DUPLICATE_LOAD_BALANCER),
            (
                any(b.advanced_configuration for b in self.load_balancers or ())
                and (configuration is None or configuration.strategy in (None, "ROLLING")),
                ADVANCED_CONFIGURATION_WITHOUT_STAGED,
            ),
        ]
        for failed, message in problems:
            if failed:
                raise ValueError(message)
        return self


class LifecycleHookDetail(StatusModel):
    """A lifecycle hook run of one deployment (ECS DeploymentLifecycleHookDetail)."""

    hook_id: str = Field(
        max_length=40,
        description=(
            "ecs-pause-DIGITS-N: the deployment's digits and the hook's number in it; what "
            "spec.continueServiceDeployment.hookId names."
        ),
    )
    target_type: HookTargetType = Field(description="PAUSE or AWS_LAMBDA.")
    target_arn: str | None = Field(
        default=None,
        max_length=MAX_ARN_LENGTH,
        description="AWS_LAMBDA: the URL it calls, or the task definition it runs.",
    )
    status: HookStatus = Field(
        description=(
            "PAUSE: AWAITING_ACTION, then SUCCEEDED (continued), FAILED (rolled back) or "
            "TIMED_OUT (its timeoutAction applied). AWS_LAMBDA: IN_PROGRESS, then SUCCEEDED, "
            "FAILED (answered so, or the call failed) or TIMED_OUT."
        )
    )
    status_reason: str | None = Field(
        default=None,
        max_length=1024,
        description="AWS_LAMBDA: why it has that status (the call's failure, say).",
    )
    invocations: int | None = Field(
        default=None,
        ge=0,
        description="AWS_LAMBDA: how many times it was called (a task definition: run).",
    )
    next_invocation_at: Timestamp | None = Field(
        default=None,
        description="AWS_LAMBDA IN_PROGRESS: when it is called (again), after callBackDelay.",
    )
    hook_details: Any = Field(
        default=None,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description=(
            "AWS_LAMBDA: the hookDetails its answers returned, merged; passed on its next call."
        ),
    )
    expires_at: Timestamp = Field(description="When its timeoutAction applies.")
    timeout_action: HookAction = Field(description="ROLLBACK or CONTINUE.")
    lifecycle_stage: LifecycleStage = Field(
        description="The stage it holds the deployment at (not a member of ECS's detail)."
    )
    started_at: Timestamp = Field(
        description="When the deployment reached that stage (not a member of ECS's detail)."
    )
    rollback: bool | None = Field(
        default=None,
        description=(
            "True: a run of the rollback (TEST_/PRODUCTION_TRAFFIC_SHIFT called again as traffic "
            "returns to the previous revision); its answer never changes the rollback (not a "
            "member of ECS's detail)."
        ),
    )


class Deployment(StatusModel):
    """One deployment of the service: a task definition revision and the tasks started for it."""

    id: str = Field(
        max_length=27,
        pattern=DEPLOYMENT_ID_PATTERN,
        description="ecs-svc/ and 19 digits; also the startedBy of the deployment's tasks.",
    )
    status: DeploymentStatus = Field(
        description=(
            "PRIMARY: the deployment being rolled out or kept. ACTIVE: an older one that still "
            "has tasks. INACTIVE: replaced; kept only as the circuit breaker's rollback target."
        )
    )
    task_definition: str = Field(
        max_length=300, description="The revision its tasks run, family:revision."
    )
    spec_hash: str | None = Field(
        default=None,
        max_length=64,
        description=(
            "Digest of the spec fields (other than taskDefinition) that start a new deployment "
            "when changed; not an ECS field."
        ),
    )
    desired_count: int = Field(
        default=0,
        ge=0,
        description=(
            "Tasks the deployment should have (ACTIVE: what it holds while a rolling "
            "deployment replaces it; its failed tasks are replaced from its own revision)."
        ),
    )
    pending_count: int = Field(default=0, ge=0, description="Its tasks not yet RUNNING.")
    running_count: int = Field(default=0, ge=0, description="Its RUNNING tasks.")
    failed_tasks: int = Field(
        default=0,
        ge=0,
        description=(
            "Its tasks that failed to start or failed health checks while it rolled out; reset "
            "when one of its tasks is healthy. The circuit breaker compares it to its threshold."
        ),
    )
    created_at: Timestamp = Field(description="When the deployment started.")
    updated_at: Timestamp = Field(description="When the deployment last changed.")
    rollout_state: RolloutState | None = Field(
        default=None, description="IN_PROGRESS, COMPLETED or FAILED (circuit breaker)."
    )
    rollout_state_reason: str | None = Field(
        default=None, max_length=1024, description="Why the rollout is in that state, ECS's words."
    )
    rollback: bool | None = Field(
        default=None,
        description=(
            "True on a deployment the circuit breaker or a lifecycle hook rolled back to "
            "(PRIMARY again after a failed deployment); not an ECS field."
        ),
    )
    strategy: DeploymentStrategy | None = Field(
        default=None, description="The deploymentConfiguration.strategy it was started with."
    )
    lifecycle_stage: LifecycleStage | None = Field(
        default=None,
        description=(
            "BLUE_GREEN, LINEAR, CANARY while IN_PROGRESS: SCALE_UP (the new revision starts at "
            "the full count beside the old), TEST_TRAFFIC_SHIFT (with an alternate "
            "LoadBalancer: it lists the new tasks), PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME, "
            "CLEAN_UP (the old revision stops); a hook stage (PRE_SCALE_UP, POST_SCALE_UP ...) "
            "while a PAUSE hook holds it there."
        ),
    )
    stage_started_at: Timestamp | None = Field(
        default=None, description="When the lifecycle stage (or traffic step) began."
    )
    production_traffic_weight: float | None = Field(
        default=None,
        ge=0.0,
        le=100.0,
        description=(
            "Share of production traffic (%) its tasks get while older tasks still serve the "
            "rest; absent: every healthy task serves. Kept by the LoadBalancer as the mix of "
            "its endpoints."
        ),
    )
    lifecycle_hook_details: list[LifecycleHookDetail] | None = Field(
        default=None,
        max_length=MAX_HOOK_DETAILS,
        description="Its lifecycle hook runs, oldest first.",
    )
    alarms_armed: list[Annotated[str, Field(max_length=255)]] | None = Field(
        default=None,
        max_length=MAX_ALARMS,
        description=(
            "deploymentConfiguration.alarms first read not in ALARM while it rolled out: one "
            "going into ALARM fails it; not an ECS field."
        ),
    )
    alarms_ignored: list[Annotated[str, Field(max_length=255)]] | None = Field(
        default=None,
        max_length=MAX_ALARMS,
        description=(
            "Alarms already in ALARM when it started (first read): ignored for this deployment, "
            "as ECS does; not an ECS field."
        ),
    )
    triggered_alarms: list[Annotated[str, Field(max_length=255)]] | None = Field(
        default=None, max_length=MAX_ALARMS, description="The alarms that failed it."
    )
    alarm_bake_started_at: Timestamp | None = Field(
        default=None,
        description=(
            "ROLLING with alarms: when it first reached a steady state; it completes once the "
            "operator's alarm bake time (--alarm-bake) has passed since; not an ECS field."
        ),
    )


class ServiceEvent(StatusModel):
    """A service event, as ECS lists them (newest first)."""

    id: str = Field(max_length=36, description="Event id, a UUID.")
    created_at: Timestamp = Field(description="When the event happened.")
    message: str = Field(
        max_length=MAX_SERVICE_EVENT_LENGTH, description="The event, in ECS's words."
    )


class DeploymentRequest(StatusModel):
    """What the newest user-driven deployment was started for."""

    task_definition: str = Field(
        max_length=300, description="The resolved revision, family:revision."
    )
    spec_hash: str = Field(max_length=64, description="Digest of the other deployment fields.")


class SchedulerState(StatusModel):
    """The service scheduler's bookkeeping between reconciles (not an ECS field)."""

    last_deployment_request: DeploymentRequest | None = Field(
        default=None,
        description=(
            "The configuration the newest deployment was started for. A new deployment starts "
            "when the spec resolves to a different one; after a circuit-breaker rollback the "
            "failed configuration stays here, so it is not retried until the spec changes."
        ),
    )
    failures_counted_until: Timestamp | None = Field(
        default=None,
        description="stoppedAt of the newest failed task already counted (throttle, breaker).",
    )
    consecutive_start_failures: int = Field(
        default=0,
        ge=0,
        description="Tasks that stopped before RUNNING since a task last reached RUNNING.",
    )
    last_start_failure_at: Timestamp | None = Field(
        default=None, description="When the newest of those tasks stopped."
    )
    az_rebalancing: bool = Field(
        default=False, description="An availability-zone rebalancing is in progress."
    )
    unable_to_place_event_at: Timestamp | None = Field(
        default=None,
        description=(
            "When an 'unable to place a task' event was last recorded: while tasks cannot be "
            "placed it is said again at most every 5 minutes."
        ),
    )
    rollback_cause: str | None = Field(
        default=None,
        max_length=1024,
        description=(
            "Why the last rollback happened (the failed deployment's reason), for Degraded; "
            "absent: the circuit breaker."
        ),
    )
    ignored_hook_id: str | None = Field(
        default=None,
        max_length=40,
        description=(
            "The hookId of spec.continueServiceDeployment last said to name no hook of the "
            "service (said once per hookId)."
        ),
    )
    alarm_not_evaluated_event_at: Timestamp | None = Field(
        default=None,
        description=(
            "When an 'unable to evaluate deployment alarms' event was last recorded: while it "
            "lasts it is said again at most every 5 minutes."
        ),
    )
    deployment_refused_event_at: Timestamp | None = Field(
        default=None,
        description=(
            "When an 'unable to start a deployment' event was last recorded: while the refusal "
            "lasts it is said again at most every 5 minutes."
        ),
    )


class ServiceRevisionSummary(StatusModel):
    """A service revision and its tasks (ECS ServiceRevisionSummary)."""

    arn: str = Field(max_length=MAX_ARN_LENGTH, description="The service revision's ARN.")
    requested_task_count: int = Field(default=0, ge=0, description="Tasks it should have.")
    running_task_count: int = Field(default=0, ge=0, description="Its RUNNING tasks.")
    pending_task_count: int = Field(default=0, ge=0, description="Its tasks not yet RUNNING.")
    requested_production_traffic_weight: float | None = Field(
        default=None,
        ge=0.0,
        le=100.0,
        description="Its requested share of production traffic (%), BLUE_GREEN/LINEAR/CANARY.",
    )


class ServiceDeploymentCircuitBreaker(StatusModel):
    """The circuit breaker of one service deployment (ECS ServiceDeploymentCircuitBreaker)."""

    status: CircuitBreakerStatus = Field(
        description=(
            "DISABLED (not enabled), MONITORING (the deployment is in progress), TRIGGERED (it "
            "failed the deployment), MONITORING_COMPLETE (the deployment succeeded)."
        )
    )
    failure_count: int = Field(default=0, ge=0, description="Tasks counted as failed.")
    threshold: int = Field(default=0, ge=0, description="Failed tasks that fail the deployment.")


class ServiceDeploymentAlarms(StatusModel):
    """The alarms of one service deployment (ECS ServiceDeploymentAlarms)."""

    alarm_names: list[Annotated[str, Field(max_length=255)]] | None = Field(
        default=None, max_length=MAX_ALARMS, description="The alarms watched."
    )
    status: CircuitBreakerStatus = Field(
        description=(
            "DISABLED (alarms not enabled), MONITORING (the deployment or its bake time is in "
            "progress), TRIGGERED (an alarm failed the deployment), MONITORING_COMPLETE."
        )
    )
    triggered_alarm_names: list[Annotated[str, Field(max_length=255)]] | None = Field(
        default=None, max_length=MAX_ALARMS, description="The alarms that failed it."
    )


class ServiceDeploymentRollback(StatusModel):
    """The rollback of a failed service deployment (ECS Rollback)."""

    reason: str = Field(max_length=1024, description="Why it was rolled back, ECS's words.")
    service_revision_arn: str = Field(
        max_length=MAX_ARN_LENGTH,
        description="The service revision rolled back to: the last successful one.",
    )
    started_at: Timestamp = Field(description="When the rollback started.")


class ServiceDeploymentConfiguration(StatusModel):
    """The part of ECS's ServiceDeployment.deploymentConfiguration recorded: the strategy."""

    strategy: DeploymentStrategy = Field(description="The strategy the deployment ran with.")


class ServiceDeployment(StatusModel):
    """One service deployment (ECS DescribeServiceDeployments): what moved the service from
    its source service revisions to its target, and how that went."""

    service_deployment_arn: str = Field(
        max_length=MAX_ARN_LENGTH,
        description=(
            "arn:aws:ecs:::service-deployment/NAMESPACE/SERVICE/ID, ID being "
            "the digits of the deployments[] id (ecs-svc/ID)."
        ),
    )
    target_service_revision: ServiceRevisionSummary = Field(
        description="The service revision deployed."
    )
    source_service_revisions: list[ServiceRevisionSummary] | None = Field(
        default=None,
        max_length=MAX_DEPLOYMENTS,
        description="The service revisions that had tasks when it started.",
    )
    status: ServiceDeploymentStatus = Field(
        description=(
            "IN_PROGRESS, then SUCCESSFUL; STOPPED (failed without rollback, or superseded by "
            "a newer deployment); ROLLBACK_IN_PROGRESS, then ROLLBACK_SUCCESSFUL or "
            "ROLLBACK_FAILED. Never moves backwards."
        )
    )
    status_reason: str | None = Field(
        default=None, max_length=1024, description="Why it has that status, ECS's words."
    )
    created_at: Timestamp = Field(description="When it was created.")
    started_at: Timestamp | None = Field(default=None, description="When it started.")
    finished_at: Timestamp | None = Field(
        default=None, description="When it finished (SUCCESSFUL or a rollback's end)."
    )
    stopped_at: Timestamp | None = Field(
        default=None, description="When it was stopped (failed without rollback, superseded)."
    )
    updated_at: Timestamp | None = Field(default=None, description="When it last changed.")
    lifecycle_stage: LifecycleStage | None = Field(
        default=None, description="Its stage (BLUE_GREEN, LINEAR, CANARY)."
    )
    deployment_configuration: ServiceDeploymentConfiguration | None = Field(
        default=None, description="How it deploys: its strategy."
    )
    deployment_circuit_breaker: ServiceDeploymentCircuitBreaker | None = Field(
        default=None, description="The circuit breaker's state for this deployment."
    )
    alarms: ServiceDeploymentAlarms | None = Field(
        default=None, description="The deployment alarms' state for this deployment."
    )
    rollback: ServiceDeploymentRollback | None = Field(
        default=None, description="Set once it is rolled back."
    )
    lifecycle_hook_details: list[LifecycleHookDetail] | None = Field(
        default=None,
        max_length=MAX_HOOK_DETAILS,
        description=(
            "Its lifecycle hook runs, oldest first (AWAITING_ACTION: it waits for one; "
            "IN_PROGRESS: a URL is being called)."
        ),
    )


class StoredServiceRevision(StatusModel):
    """A service revision as its ControllerRevision stores it (``data``; ECS ServiceRevision):
    the task definition revision and the service settings that define what runs. Immutable."""

    service_revision_arn: str = Field(max_length=MAX_ARN_LENGTH)
    service_arn: str = Field(max_length=MAX_ARN_LENGTH)
    cluster_arn: str = Field(max_length=MAX_ARN_LENGTH)
    task_definition: str = Field(min_length=1, max_length=300)
    created_at: Timestamp
    load_balancers: list[ServiceLoadBalancer] | None = None
    health_check_grace_period_seconds: int = Field(default=0, ge=0, le=MAX_INT32)
    placement_constraints: list[PlacementConstraint] | None = None
    placement_strategy: list[PlacementStrategy] | None = None
    launch_type: str | None = None
    platform_version: str | None = None
    platform_family: str | None = None
    network_configuration: NetworkConfiguration | None = None
    capacity_provider_strategy: list[CapacityProviderStrategyItem] | None = None
    service_registries: list[ServiceRegistry] | None = None
    service_connect_configuration: dict[str, Any] | None = None


class ResolvedLoadBalancer(StatusModel):
    """Which LoadBalancer of a ``loadBalancers[]`` entry with an alternate carries production
    traffic now, and which one takes the next deployment's test traffic (ECS
    ServiceRevisionLoadBalancer). The two swap each time a BLUE_GREEN, LINEAR or CANARY
    deployment completes."""

    load_balancer_name: str = Field(
        max_length=MAX_OBJECT_NAME_LENGTH,
        description="The LoadBalancer carrying production traffic (its Kubernetes Service).",
    )
    alternate_load_balancer_name: str = Field(
        max_length=MAX_OBJECT_NAME_LENGTH,
        description=(
            "The LoadBalancer carrying test traffic: the next deployment's new tasks register "
            "in it from TEST_TRAFFIC_SHIFT on."
        ),
    )
    container_name: str = Field(max_length=255, description="The entry's containerName.")
    container_port: int = Field(ge=1, le=65535, description="The entry's containerPort.")


class ResolvedConfiguration(StatusModel):
    """The Service's settings as they resolve now (ECS ServiceRevision.resolvedConfiguration)."""

    load_balancers: list[ResolvedLoadBalancer] | None = Field(
        default=None,
        max_length=MAX_LOAD_BALANCERS,
        description=(
            "For each loadBalancers[] entry with advancedConfiguration: its production and "
            "test LoadBalancer."
        ),
    )


class ServiceStatus(StatusModel):
    """The ECS service description (DescribeServices) plus Kubernetes conditions."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status reflects."
    )
    desired_count: int | None = Field(
        default=None,
        ge=0,
        description="Tasks wanted: spec.desiredCount, or the eligible nodes of a DAEMON service.",
    )
    running_count: int = Field(default=0, ge=0, description="Tasks in RUNNING.")
    pending_count: int = Field(
        default=0, ge=0, description="Tasks launched and not yet RUNNING (PROVISIONING-ACTIVATING)."
    )
    task_definition: str | None = Field(
        default=None, max_length=300, description="Revision of the PRIMARY deployment."
    )
    deployments: list[Deployment] | None = Field(
        default=None,
        max_length=MAX_DEPLOYMENTS,
        description="PRIMARY first, then ACTIVE deployments, newest first.",
    )
    events: list[ServiceEvent] | None = Field(
        default=None, max_length=MAX_EVENTS, description="The last 100 events, newest first."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=MAX_CONDITIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description=(
            "Ready (steady state), Progressing (a deployment is rolling out), Degraded (the "
            "service cannot reach its goal: failed deployment, tasks failing to start, "
            "deployment bounds that block progress, unusable task definition)."
        ),
    )
    selector: str | None = Field(
        default=None,
        max_length=1024,
        description="Label selector of the service's tasks and pods (scale subresource).",
    )
    scheduler: SchedulerState | None = Field(
        default=None, description="The scheduler's bookkeeping between reconciles."
    )
    unsupported: list[UnsupportedField] | None = Field(
        default=None,
        max_length=MAX_UNSUPPORTED_ENTRIES,
        description="Fields accepted but not honoured on Kubernetes, and why.",
    )
    service_deployments: list[ServiceDeployment] | None = Field(
        default=None,
        max_length=MAX_SERVICE_DEPLOYMENTS,
        description=(
            "The last 10 service deployments, newest first (ECS DescribeServiceDeployments); "
            "their service revisions are the ControllerRevisions labelled "
            "ecs.operator.dev/service=SERVICE."
        ),
    )
    current_service_deployment: str | None = Field(
        default=None,
        max_length=MAX_ARN_LENGTH,
        description="The ARN of the newest service deployment.",
    )
    current_service_revisions: list[ServiceRevisionSummary] | None = Field(
        default=None,
        max_length=MAX_DEPLOYMENTS,
        description="The service revisions that have tasks now, with their task counts.",
    )
    resolved_configuration: ResolvedConfiguration | None = Field(
        default=None,
        description=(
            "Which LoadBalancer of each entry with an alternate carries production traffic "
            "and which test traffic: they swap when a BLUE_GREEN, LINEAR or CANARY deployment "
            "completes, as ECS's target groups do."
        ),
    )


class Service(BaseModel):
    """An ECS service: keeps desiredCount tasks (or one per node) running and rolls out updates."""

    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
        json_schema_extra=cel_rules(
            (
                f"size(self.metadata.name) <= {MAX_SERVICE_NAME_LENGTH}",
                SERVICE_NAME_TOO_LONG,
                ".metadata.name",
            )
        ),
    )

    api_version: str = Field(default=API_GROUP_VERSION, alias="apiVersion")
    kind: Literal["Service"] = "Service"
    metadata: ObjectMeta
    spec: ServiceSpec
    status: ServiceStatus | None = None

    @model_validator(mode="after")
    def _name_leaves_room_for_task_names(self) -> Self:
        if len(self.metadata.name) > MAX_SERVICE_NAME_LENGTH:
            raise ValueError(SERVICE_NAME_TOO_LONG)
        return self
