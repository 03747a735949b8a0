"""The ``Task`` custom resource: one ECS task (RunTask), run once as one Pod and never replaced.

``spec`` is the RunTask request (``taskDefinition``, ``count``, ``overrides``, ``group``,
``startedBy``, placement, ``tags``) plus the StopTask verb as desired state: ``desiredStatus:
STOPPED`` with an optional ``stoppedReason``. ``status`` is the ECS task description
(``lastStatus``, ``stopCode``, ``containers[]``, timestamps) plus ``observedGeneration`` and
conditions.

Conditions (Kubernetes API conventions: a summary condition plus a terminal one for
bounded-execution objects):

* ``Ready``: True while ``lastStatus`` is RUNNING, otherwise False with the ECS ``lastStatus``
  as the reason (``Pending``, ``Stopping`` ...);
* ``Stopped``: the terminal condition, True once ``lastStatus`` is STOPPED, with the ``stopCode``
  as reason and ``stoppedReason`` as message. ECS has no success/failure verdict for a task; a
  consumer that needs one reads ``stopCode`` and ``containers[].exitCode``.

A Task with ``count`` N is the first of N tasks: the operator creates the others as ordinary
Tasks owned by it (``core.launches.run_task_names``), and records in ``status.launchedCount``
that it did, so that none is ever created twice.

A launched task cannot be changed: CEL transition rules make the launch parameters immutable
and forbid moving ``desiredStatus`` from STOPPED back to RUNNING (create a new Task instead).
``tags`` and ``ttlSecondsAfterStopped`` stay editable, as ECS allows tagging a running task.
"""

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ecs_operator.models.common import (
    API_GROUP_VERSION,
    EMPTY_IS_UNSET,
    MAX_CPU_UNITS,
    MAX_INT32,
    MAX_LIST_ITEMS,
    MAX_MEMORY_MIB,
    MAX_TAGS,
    MAX_UNSUPPORTED_ENTRIES,
    MIN_MEMORY_MIB,
    Condition,
    EcsModel,
    KeyValuePair,
    ObjectMeta,
    StatusModel,
    Tag,
    TaskCpu,
    TaskMemory,
    Text,
    Timestamp,
    UnsupportedField,
    cel_rules,
)
from ecs_operator.models.placement import PlacementConstraint, PlacementStrategy
from ecs_operator.models.taskdefinition import (
    MAX_CONDITIONS,
    MAX_CONTAINERS,
    MAX_ENVIRONMENT_FILES,
    NAME_PATTERN,
    TASK_DEFINITION_REF_PATTERN,
    EnvironmentFile,
    EphemeralStorage,
    ResourceRequirement,
)

CONDITION_READY: Final = "Ready"
CONDITION_STOPPED: Final = "Stopped"
CONDITION_TASKS_LAUNCHED: Final = "TasksLaunched"
MAX_RUN_TASK_COUNT: Final = 10
"""RunTask's limit on ``count``."""
DEFAULT_TTL_SECONDS_AFTER_STOPPED: Final = 3600
MAX_OVERRIDES_JSON_CHARS: Final = 8192
MAX_STOPPED_REASON_SPEC: Final = 255
MAX_REASON_STATUS: Final = 1024
LOAD_BALANCERS_MESSAGE: Final = (
    "spec.loadBalancers: standalone tasks cannot use a load balancer; only Services can"
)

DesiredStatus = Literal["RUNNING", "STOPPED"]
LastStatus = Literal[
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
]
StopCode = Literal[
    "TaskFailedToStart",
    "EssentialContainerExited",
    "UserInitiated",
    "ServiceSchedulerInitiated",
    "SpotInterruption",
    "TerminationNotice",
]
HealthStatus = Literal["HEALTHY", "UNHEALTHY", "UNKNOWN"]
ContainerLastStatus = Literal["PENDING", "RUNNING", "STOPPED"]

_DIGITS = r"^[0-9]+$"


class ContainerOverride(EcsModel):
    """Per-container changes for this task; there is no image or entryPoint override."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "!has(self.memory) || !has(self.memoryReservation) "
                "|| self.memory > self.memoryReservation",
                "overrides.containerOverrides[].memory must be greater than memoryReservation",
                ".memoryReservation",
            )
        )
    )

    name: str = Field(
        min_length=1,
        max_length=255,
        pattern=NAME_PATTERN,
        description="Container of the task definition to override.",
    )
    command: list[Text] | None = Field(
        default=None,
        max_length=MAX_LIST_ITEMS,
        description="Replaces the container's command (Docker CMD).",
    )
    environment: list[KeyValuePair] | None = Field(
        default=None,
        max_length=MAX_LIST_ITEMS,
        description="Added to the container's environment, overriding by name.",
    )
    environment_files: list[EnvironmentFile] | None = Field(
        default=None,
        max_length=MAX_ENVIRONMENT_FILES,
        description="Replaces the container's environmentFiles (not honoured).",
    )
    cpu: int | None = Field(
        default=None, ge=0, le=MAX_CPU_UNITS, description="Replaces the container's CPU units."
    )
    memory: int | None = Field(
        default=None,
        ge=MIN_MEMORY_MIB,
        le=MAX_MEMORY_MIB,
        description="Replaces the container's hard memory limit (MiB).",
    )
    memory_reservation: int | None = Field(
        default=None,
        ge=1,
        le=MAX_MEMORY_MIB,
        description="Replaces the container's soft memory limit (MiB).",
    )
    resource_requirements: list[ResourceRequirement] | None = Field(
        default=None, max_length=2, description="Replaces the container's GPU requirements."
    )


class TaskOverride(EcsModel):
    """RunTask overrides; at most 8192 characters of JSON in all (checked by the operator, which
    reports a larger one as a task that failed to start: ``core.validation.task_problems``)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "!has(self.containerOverrides) || self.containerOverrides.all(c, "
                "self.containerOverrides.exists_one(o, o.name == c.name))",
                "overrides.containerOverrides: each container may be overridden once",
                ".containerOverrides",
            )
        )
    )

    container_overrides: list[ContainerOverride] | None = Field(
        default=None, max_length=MAX_CONTAINERS, description="Per-container overrides."
    )
    cpu: TaskCpu | None = Field(
        default=None, description='Replaces the task CPU: units ("1024") or vCPUs ("1 vCPU").'
    )
    memory: TaskMemory | None = Field(
        default=None, description='Replaces the task memory: MiB ("2048") or GB ("2GB").'
    )
    task_role_arn: str | None = Field(
        default=None,
        max_length=2048,
        description="Replaces the task role, i.e. the Pod's ServiceAccount.",
    )
    execution_role_arn: str | None = Field(
        default=None, max_length=2048, description="Replaces the execution role (not honoured)."
    )
    ephemeral_storage: EphemeralStorage | None = Field(
        default=None, description="Replaces the ephemeral storage size."
    )


class AwsVpcConfiguration(EcsModel):
    """awsvpc subnets and security groups (not honoured: pods use the cluster network)."""

    subnets: list[Annotated[str, Field(max_length=1024)]] = Field(
        max_length=16, description="Subnet ids."
    )
    security_groups: list[Annotated[str, Field(max_length=1024)]] | None = Field(
        default=None, max_length=5, description="Security group ids."
    )
    assign_public_ip: Annotated[Literal["ENABLED", "DISABLED"] | None, EMPTY_IS_UNSET] = Field(
        default=None, description="Give the ENI a public IP."
    )


class NetworkConfiguration(EcsModel):
    """The network configuration ECS requires for awsvpc tasks (accepted, not honoured)."""

    awsvpc_configuration: AwsVpcConfiguration | None = Field(
        default=None, description="Subnets and security groups."
    )


def _immutable(field: str) -> tuple[str, str, str]:
    """CEL transition rule: ``field`` keeps its value (and its presence) once the task exists."""
    return (
        f"has(self.{field}) == has(oldSelf.{field}) && "
        f"(!has(self.{field}) || self.{field} == oldSelf.{field})",
        f"spec.{field} cannot change after the task is launched; create a new Task",
        f".{field}",
    )


_IMMUTABLE_FIELDS: Final = (
    "taskDefinition",
    "count",
    "overrides",
    "group",
    "startedBy",
    "placementConstraints",
    "placementStrategy",
    "launchType",
    "networkConfiguration",
    "enableExecuteCommand",
)

_SPEC_RULES = cel_rules(
    ("!has(self.loadBalancers)", LOAD_BALANCERS_MESSAGE, ".loadBalancers"),
    (
        "!has(self.stoppedReason) || (has(self.desiredStatus) && self.desiredStatus == 'STOPPED')",
        "spec.stoppedReason is only allowed with desiredStatus STOPPED",
        ".stoppedReason",
    ),
    (
        "!has(oldSelf.desiredStatus) || oldSelf.desiredStatus != 'STOPPED' || "
        "(has(self.desiredStatus) && self.desiredStatus == 'STOPPED')",
        "spec.desiredStatus: a stopped task cannot run again; create a new Task",
        ".desiredStatus",
    ),
    *(_immutable(field) for field in _IMMUTABLE_FIELDS),
)


class TaskSpec(EcsModel):
    """A RunTask request, plus the desired status (StopTask = desiredStatus STOPPED)."""

    model_config = ConfigDict(json_schema_extra=_SPEC_RULES)

    task_definition: str = Field(
        min_length=1,
        max_length=512,
        pattern=TASK_DEFINITION_REF_PATTERN,
        description=(
            "TaskDefinition to run: family (its latest ACTIVE revision, resolved at launch) or "
            "family:revision. An ECS task definition ARN is accepted; region and account are "
            "ignored."
        ),
    )
    count: int = Field(
        default=1,
        ge=1,
        le=MAX_RUN_TASK_COUNT,
        description=(
            "How many tasks to run, 1 to 10 (default 1), as RunTask's count. This Task is the "
            "first; the operator creates the others as Tasks NAME-2 ... NAME-N with the same "
            "spec on the revision this one resolved, owned by this Task (deleting it deletes "
            "them) and labelled ecs.operator.dev/run=NAME. None is created twice, or once this "
            "Task is stopped."
        ),
    )
    overrides: TaskOverride | None = Field(
        default=None, description="Changes to the task definition for this task only."
    )
    group: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description=(
            "Task group used by spread and distinctInstance placement; default family:FAMILY."
        ),
    )
    started_by: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^[A-Za-z0-9/_-]{1,128}$",
        description="Free-form launcher id, up to 128 letters, digits, -, / and _.",
    )
    placement_constraints: list[PlacementConstraint] | None = Field(
        default=None,
        max_length=10,
        description="Rules the node must satisfy; at most 10 with the task definition's.",
    )
    placement_strategy: list[PlacementStrategy] | None = Field(
        default=None,
        max_length=5,
        description="How to rank candidate nodes, in priority order; at most 5 (default random).",
    )
    tags: list[Tag] | None = Field(
        default=None, max_length=MAX_TAGS, description="Up to 50 tags; aws: keys are reserved."
    )
    desired_status: DesiredStatus = Field(
        default="RUNNING",
        description=(
            "RUNNING (default), or STOPPED to stop the task (ECS StopTask). A stopped task never "
            "runs again."
        ),
    )
    stopped_reason: str | None = Field(
        default=None,
        max_length=MAX_STOPPED_REASON_SPEC,
        description=(
            "With desiredStatus STOPPED: the reason reported in status.stoppedReason "
            "(default 'Task stopped by user'); at most 255 characters."
        ),
    )
    ttl_seconds_after_stopped: int = Field(
        default=DEFAULT_TTL_SECONDS_AFTER_STOPPED,
        ge=0,
        le=MAX_INT32,
        description=(
            "Seconds the Task object is kept after it reaches STOPPED before it is deleted "
            "(default 3600: ECS shows stopped tasks for at least an hour); at most 2147483647."
        ),
    )
    enable_execute_command: bool | None = Field(
        default=None, description="ECS Exec (accepted, not honoured: use kubectl exec)."
    )
    launch_type: Annotated[
        Literal["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"] | None, EMPTY_IS_UNSET
    ] = Field(
        default=None, description="ECS launch type (informational: every task runs as a Pod)."
    )
    network_configuration: NetworkConfiguration | None = Field(
        default=None, description="awsvpc network configuration (accepted, not honoured)."
    )
    propagate_tags: Annotated[
        Literal["TASK_DEFINITION", "SERVICE", "NONE"] | None, EMPTY_IS_UNSET
    ] = Field(
        default=None, description="Copy tags from the task definition (TASK_DEFINITION) or not."
    )
    enable_ecs_managed_tags: bool | None = Field(
        default=None,
        alias="enableECSManagedTags",
        description="Add ECS-managed tags (not honoured).",
    )
    load_balancers: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=5,
        description="Not allowed: only Services register tasks with a load balancer.",
    )

    @field_validator("load_balancers")
    @classmethod
    def _no_load_balancers(cls, value: list[dict[str, Any]] | None) -> None:
        if value is not None:
            raise ValueError(LOAD_BALANCERS_MESSAGE)


class NetworkBinding(StatusModel):
    """Where a container port is reachable."""

    bind_ip: str | None = Field(
        default=None, alias="bindIP", max_length=45, description="Address bound (the pod IP)."
    )
    container_port: int | None = Field(default=None, ge=0, le=65535, description="Container port.")
    host_port: int | None = Field(default=None, ge=0, le=65535, description="Port on bindIP.")
    protocol: Literal["tcp", "udp"] | None = Field(default=None, description="tcp or udp.")


class ContainerStatus(StatusModel):
    """A container of the task as ECS describes it."""

    name: str = Field(max_length=255, description="Container name from the task definition.")
    image: str | None = Field(default=None, max_length=1024, description="Image reference.")
    image_digest: str | None = Field(
        default=None, max_length=255, description="Digest of the image that runs."
    )
    runtime_id: str | None = Field(
        default=None, max_length=255, description="Container runtime id."
    )
    last_status: ContainerLastStatus | None = Field(
        default=None, description="PENDING, RUNNING or STOPPED."
    )
    exit_code: int | None = Field(
        default=None, description="Exit code once STOPPED; absent if it never ran."
    )
    reason: str | None = Field(
        default=None,
        max_length=MAX_REASON_STATUS,
        description="Why it stopped or failed, e.g. OutOfMemoryError: ...",
    )
    health_status: HealthStatus | None = Field(
        default=None, description="HEALTHY, UNHEALTHY, or UNKNOWN (no or pending health check)."
    )
    network_bindings: list[NetworkBinding] | None = Field(
        default=None, max_length=100, description="Bound ports once RUNNING."
    )
    cpu: str | None = Field(
        default=None, max_length=16, pattern=_DIGITS, description="CPU units, as ECS shows them."
    )
    memory: str | None = Field(
        default=None, max_length=16, pattern=_DIGITS, description="Hard memory limit in MiB."
    )
    memory_reservation: str | None = Field(
        default=None, max_length=16, pattern=_DIGITS, description="Soft memory limit in MiB."
    )


class TaskStatus(StatusModel):
    """The ECS task description (DescribeTasks) plus Kubernetes conditions."""

    task_arn: str | None = Field(
        default=None,
        max_length=32,
        pattern=r"^[0-9a-f]{32}$",
        description="Task id, 32 lowercase hex characters (ECS: the end of the task ARN).",
    )
    task_definition_arn: str | None = Field(
        default=None,
        max_length=300,
        description="The revision the task runs, family:revision (resolved at launch).",
    )
    revision: int | None = Field(default=None, ge=1, description="Revision the task runs.")
    last_status: LastStatus | None = Field(
        default=None,
        description=(
            "Lifecycle state, moving forward only: PROVISIONING, PENDING, ACTIVATING, RUNNING, "
            "DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED."
        ),
    )
    desired_status: DesiredStatus | None = Field(
        default=None, description="RUNNING, or STOPPED once the task is stopping or stopped."
    )
    stop_code: StopCode | None = Field(
        default=None, description="Why the task stopped, e.g. EssentialContainerExited."
    )
    stopped_reason: str | None = Field(
        default=None, max_length=MAX_REASON_STATUS, description="Why the task stopped, in words."
    )
    health_status: HealthStatus | None = Field(
        default=None, description="Aggregate health of the essential containers."
    )
    group: str | None = Field(default=None, max_length=255, description="Task group.")
    started_by: str | None = Field(default=None, max_length=128, description="Who launched it.")
    containers: list[ContainerStatus] | None = Field(
        default=None, max_length=MAX_CONTAINERS, description="The task's containers."
    )
    cpu: str | None = Field(
        default=None, max_length=16, pattern=_DIGITS, description="CPU units reserved."
    )
    memory: str | None = Field(
        default=None, max_length=16, pattern=_DIGITS, description="Memory reserved, MiB."
    )
    node_name: str | None = Field(
        default=None, max_length=253, description="Node the task runs on (container instance)."
    )
    availability_zone: str | None = Field(
        default=None, max_length=253, description="The node's topology.kubernetes.io/zone."
    )
    pod_name: str | None = Field(default=None, max_length=253, description="The task's Pod.")
    connectivity: Literal["CONNECTED", "DISCONNECTED"] | None = Field(
        default=None, description="Whether the node is reachable."
    )
    connectivity_at: Timestamp | None = Field(
        default=None, description="When connectivity last changed."
    )
    created_at: Timestamp | None = Field(default=None, description="When the task was created.")
    pull_started_at: Timestamp | None = Field(
        default=None, description="When the first image pull began."
    )
    pull_stopped_at: Timestamp | None = Field(
        default=None, description="When the last image pull finished."
    )
    started_at: Timestamp | None = Field(default=None, description="When the task reached RUNNING.")
    stopping_at: Timestamp | None = Field(default=None, description="When the task began stopping.")
    execution_stopped_at: Timestamp | None = Field(
        default=None, description="When the containers actually stopped."
    )
    stopped_at: Timestamp | None = Field(default=None, description="When the task reached STOPPED.")
    version: int | None = Field(
        default=None, ge=0, description="Incremented on every state change of the task."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status reflects."
    )
    launched_count: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RUN_TASK_COUNT,
        description=(
            "On the first Task of a run (spec.count above 1), once every task of the run was "
            "created: how many were, this one included (fewer than spec.count when a name was "
            "taken; the TasksLaunched condition says which). No task of the run is created "
            "again, even if one is deleted."
        ),
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=MAX_CONDITIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description=(
            "Ready while RUNNING; Stopped (terminal) once STOPPED, reason = stopCode; on the "
            "first Task of a run, TasksLaunched once its tasks were created."
        ),
    )
    unsupported: list[UnsupportedField] | None = Field(
        default=None,
        max_length=MAX_UNSUPPORTED_ENTRIES,
        description="Fields accepted but not honoured on Kubernetes, and why.",
    )


class Task(BaseModel):
    """One ECS task, run once as one Pod; stop it with spec.desiredStatus STOPPED."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True, extra="ignore")

    api_version: str = Field(default=API_GROUP_VERSION, alias="apiVersion")
    kind: Literal["Task"] = "Task"
    metadata: ObjectMeta
    spec: TaskSpec
    status: TaskStatus | None = None
