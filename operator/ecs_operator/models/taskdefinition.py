"""The ``TaskDefinition`` custom resource: an ECS task definition family, named after the family.

``spec`` is the RegisterTaskDefinition request with the ECS field names, so the JSON of an ECS
task definition pasted under ``spec:`` is accepted. ``family`` may be given; ``metadata.name``
must then be its Kubernetes name (``family_name``: lower-cased, ``_`` as ``-``), and every
reference to the family is read by the same rule. The output of ``aws ecs
describe-task-definition`` pastes too, with or without its ``{"taskDefinition": …, "tags": …}``
wrapper: it is read as the request it describes, and its read-only fields (``READ_ONLY_FIELDS``)
are accepted, never stored with a revision, and reported. ``""`` in an enum field means not set
(``EMPTY_IS_UNSET``), as exported definitions write it. Every spec change registers a new
immutable revision; ``status`` reports the latest one and a bounded history.

Validation is split in three on purpose:

* the CRD (schema bounds plus the CEL rules declared here) rejects at admission what ECS's
  RegisterTaskDefinition rejects for *every* installation: unique container names, one essential
  container, memory rules, dependsOn targets and conditions, volume references, network-mode
  rules, port rules, health-check ranges;
* security policy is **not** in the CRD: privileged containers, ``pidMode``/``ipcMode`` host,
  ``networkMode`` host, host-path volumes (``volumes[].host.sourcePath``), added Linux
  capabilities and devices are valid ECS, and an installation may allow them
  (``--allow-privileged``). An admission rule could not be loosened by that flag, so the operator
  checks them on every reconcile (``core/security.py``) and reports a refusal as a condition;
* what needs arithmetic on ECS unit strings or other objects is the operator's: Σ container
  memory/cpu within the task's (``"1GB"``, ``"1 vCPU"``), dependency cycles and port names unique
  across containers (not checkable in CEL within kube-apiserver's cost budget; the CRD checks
  them within one container), placement constraints counted with a Task's.

Defaults are static in the schema where ECS documents one (``essential: true``,
``networkMode: bridge``, port ``protocol: tcp``, health check ``30/5/3``,
``restartAttemptPeriod: 300``), so the stored object reads like ECS's DescribeTaskDefinition.
"""

import re
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    model_validator,
)

from ecs_operator.models.common import (
    API_GROUP_VERSION,
    EMPTY_IS_UNSET,
    MAX_CPU_UNITS,
    MAX_INT32,
    MAX_LIST_ITEMS,
    MAX_MEMORY_MIB,
    MAX_OBJECT_NAME_LENGTH,
    MAX_TAGS,
    MAX_UNSUPPORTED_ENTRIES,
    MIN_MEMORY_MIB,
    OBJECT_NAME_PATTERN,
    Condition,
    EcsModel,
    KeyValuePair,
    ObjectMeta,
    StatusModel,
    Tag,
    TaskCpu,
    TaskMemory,
    Text,
    TextMap,
    Timestamp,
    UnsupportedField,
    cel_rules,
    parse_cpu_units,
    parse_memory_mib,
)
from ecs_operator.models.placement import PlacementConstraint

NAME_PATTERN: Final = r"^[A-Za-z0-9_-]{1,255}$"
MAX_CONTAINERS: Final = 10
MAX_PORT_MAPPINGS: Final = 50
MAX_VOLUMES: Final = 50
MAX_MOUNT_POINTS: Final = 50
MAX_DEPENDS_ON: Final = MAX_CONTAINERS
MAX_PLACEMENT_CONSTRAINTS: Final = 10
MAX_ENVIRONMENT_FILES: Final = 10
MAX_IGNORED_EXIT_CODES: Final = 50
MAX_REVISION_HISTORY: Final = 100
MAX_CONDITIONS: Final = 16
MAX_STOP_TIMEOUT_SECONDS: Final = 86_400
MIN_INT32: Final = -MAX_INT32 - 1
MAX_TASK_DEFINITION_BYTES: Final = 64 * 1024
"""ECS: a task definition is at most 64 KiB of JSON."""
MAX_REVISION_DIGITS: Final = 7
# Revision N of family F is stored as the ControllerRevision F-N (an object name), so the family
# leaves room for "-" and the revision's digits.
MAX_FAMILY_LENGTH: Final = MAX_OBJECT_NAME_LENGTH - 1 - MAX_REVISION_DIGITS
FAMILY_TOO_LONG: Final = (
    f"metadata.name: a TaskDefinition is named after its family and stores revision N as the "
    f"ControllerRevision FAMILY-N (at most {MAX_OBJECT_NAME_LENGTH} characters), so the name "
    f"is at most {MAX_FAMILY_LENGTH} characters"
)

# A reference to a revision: family, family:revision, or the full ECS ARN (whose region and
# account are ignored: the namespace is the cluster).
TASK_DEFINITION_REF_PATTERN: Final = (
    r"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:task-definition/)?"
    r"[A-Za-z0-9_-]{1,255}(:[1-9][0-9]{0,6})?$"  # {0,6}: MAX_REVISION_DIGITS
)
_REF = re.compile(TASK_DEFINITION_REF_PATTERN)

NetworkMode = Literal["bridge", "host", "awsvpc", "none"]
DependencyCondition = Literal["START", "COMPLETE", "SUCCESS", "HEALTHY"]
TaskDefinitionState = Literal["ACTIVE", "INACTIVE"]
RevisionState = Literal["ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"]
ContainerName = str

NAME_DESCRIPTION: Final = "1-255 letters, digits, hyphens and underscores."


def _name_field(description: str) -> Any:
    return Field(min_length=1, max_length=255, pattern=NAME_PATTERN, description=description)


# ---------------------------------------------------------------------------------------------
# Container definition parts


class PortMapping(EcsModel):
    """A port the container listens on, and how it is exposed on the node."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "has(self.containerPort) != has(self.containerPortRange)",
                "portMappings[]: set exactly one of containerPort and containerPortRange",
                ".containerPort",
            ),
            (
                "!has(self.containerPortRange) || !has(self.hostPort)",
                "portMappings[].hostPort cannot be set with containerPortRange",
                ".hostPort",
            ),
        )
    )

    container_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port the container listens on, 1-65535."
    )
    host_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description=(
            "Node port, 0-65535. bridge: 0 or absent picks a dynamic port. host/awsvpc: absent "
            "or equal to containerPort."
        ),
    )
    protocol: Annotated[Literal["tcp", "udp"], EMPTY_IS_UNSET] = Field(
        default="tcp", description="tcp (default) or udp."
    )
    name: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[a-z0-9_][a-z0-9_-]{0,63}$",
        description=(
            "Port name, unique in the task definition; lowercase letters, digits, _ and -, "
            "not starting with -. Used by Service Connect."
        ),
    )
    app_protocol: Annotated[Literal["http", "http2", "grpc"] | None, EMPTY_IS_UNSET] = Field(
        default=None, description="Application protocol of the port: http, http2 or grpc."
    )
    container_port_range: str | None = Field(
        default=None,
        max_length=11,
        pattern=r"^[0-9]{1,5}-[0-9]{1,5}$",
        description="A range such as 8000-8010 instead of containerPort (not honoured on "
        "Kubernetes, which has no port ranges).",
    )


class ContainerDependency(EcsModel):
    """Start ordering: this container waits until another reaches a condition."""

    container_name: ContainerName = _name_field(
        "Name of the container this one depends on; it must exist in the task definition."
    )
    condition: DependencyCondition = Field(
        description=(
            "START: the dependency has started. COMPLETE: it has exited (non-essential only). "
            "SUCCESS: it exited 0 (non-essential only). HEALTHY: it passes its healthCheck."
        )
    )


class HealthCheck(EcsModel):
    """A container health check run inside the container; exit 0 means healthy."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "self.command[0] in ['CMD', 'CMD-SHELL']",
                "healthCheck.command must start with CMD or CMD-SHELL",
                ".command",
            )
        )
    )

    command: list[Text] = Field(
        min_length=2,
        max_length=256,
        description='["CMD", "exe", "arg", ...] or ["CMD-SHELL", "shell command"].',
    )
    interval: int = Field(default=30, ge=5, le=300, description="Seconds between checks, 5-300.")
    timeout: int = Field(default=5, ge=2, le=60, description="Seconds before a check fails, 2-60.")
    retries: int = Field(
        default=3, ge=1, le=10, description="Consecutive failures before UNHEALTHY, 1-10."
    )
    start_period: int | None = Field(
        default=None,
        ge=0,
        le=300,
        description="Grace seconds, 0-300, in which failures do not count (default: none).",
    )


class Secret(EcsModel):
    """A secret exposed to the container as an environment variable (or a log option)."""

    name: str = Field(min_length=1, max_length=1024, description="Environment variable name.")
    value_from: str = Field(
        min_length=1,
        max_length=2048,
        description=(
            "Secrets Manager or SSM Parameter Store ARN or name; on Kubernetes it names a key of "
            "a Secret in the task's namespace: the secret's or parameter's name mapped to a "
            "Kubernetes name (kept when it is one, else lower-cased, other characters as -, and "
            "a digest of the name appended; a secret ARN's random suffix dropped), the key its "
            "JSON key or else the variable name. NAME:KEY names key KEY of the Secret NAME."
        ),
    )
    kubernetes_secret_name: str | None = Field(
        default=None,
        max_length=MAX_OBJECT_NAME_LENGTH,
        pattern=OBJECT_NAME_PATTERN,
        description=(
            "Not ECS: the Secret to read instead of the one valueFrom maps to (the key stays "
            "valueFrom's JSON key, else the variable name)."
        ),
    )


class EnvironmentFile(EcsModel):
    """An S3 object of VAR=VALUE lines loaded into the environment."""

    value: str = Field(min_length=1, max_length=2048, description="S3 object ARN of the file.")
    type: Literal["s3"] = Field(description="Only s3.")


class MountPoint(EcsModel):
    """A task volume mounted into the container."""

    source_volume: str = _name_field("Name of a volume in spec.volumes.")
    container_path: str = Field(
        min_length=1, max_length=4096, description="Absolute path inside the container."
    )
    read_only: bool | None = Field(default=None, description="Mount read-only (default false).")


class VolumeFrom(EcsModel):
    """Mount all volumes of another container of the task."""

    source_container: ContainerName = _name_field("Container whose volumes are mounted.")
    read_only: bool | None = Field(default=None, description="Mount read-only (default false).")


class KernelCapabilities(EcsModel):
    """Linux capabilities added to or dropped from Docker's default set."""

    add: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None,
        max_length=64,
        description=(
            "Capabilities to add back, e.g. NET_BIND_SERVICE. Beyond the runtime's default set "
            "(e.g. NET_ADMIN): refused unless the operator allows it."
        ),
    )
    drop: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None,
        max_length=64,
        description=(
            "Capabilities to drop, e.g. NET_RAW; without a list every capability is dropped "
            "(ALL), and [] keeps the runtime's default set."
        ),
    )


class Device(EcsModel):
    """A host device exposed to the container."""

    host_path: str = Field(min_length=1, max_length=4096, description="Device path on the host.")
    container_path: str | None = Field(
        default=None, max_length=4096, description="Path in the container (default: hostPath)."
    )
    permissions: list[Literal["read", "write", "mknod"]] | None = Field(
        default=None, max_length=3, description="read, write and/or mknod."
    )


class Tmpfs(EcsModel):
    """A tmpfs mount."""

    container_path: str = Field(
        min_length=1, max_length=4096, description="Absolute path inside the container."
    )
    size: int = Field(ge=1, le=MAX_MEMORY_MIB, description="Size in MiB.")
    mount_options: list[Annotated[str, Field(max_length=256)]] | None = Field(
        default=None, max_length=32, description='Mount options, e.g. ["noexec", "nosuid"].'
    )


class LinuxParameters(EcsModel):
    """Linux-specific container settings."""

    capabilities: KernelCapabilities | None = Field(
        default=None, description="Capabilities to add or drop."
    )
    devices: list[Device] | None = Field(
        default=None,
        max_length=64,
        description="Host devices to expose. Refused unless the operator allows it.",
    )
    init_process_enabled: bool | None = Field(
        default=None, description="Run an init process (tini) as PID 1 to reap zombies."
    )
    shared_memory_size: int | None = Field(
        default=None, ge=0, le=MAX_MEMORY_MIB, description="Size of /dev/shm in MiB."
    )
    tmpfs: list[Tmpfs] | None = Field(default=None, max_length=32, description="tmpfs mounts.")
    max_swap: int | None = Field(
        default=None,
        ge=0,
        le=MAX_INT32,
        description="Swap MiB the container may use (not honoured).",
    )
    swappiness: int | None = Field(
        default=None, ge=0, le=100, description="Swappiness 0-100 (not honoured)."
    )


class LogConfiguration(EcsModel):
    """The container's log driver. Kubernetes always collects stdout/stderr from the node."""

    log_driver: Literal[
        "json-file",
        "syslog",
        "journald",
        "gelf",
        "fluentd",
        "awslogs",
        "splunk",
        "awsfirelens",
    ] = Field(description="Docker log driver; informational on Kubernetes.")
    options: TextMap | None = Field(default=None, description="Log driver options.")
    secret_options: list[Secret] | None = Field(
        default=None, max_length=64, description="Secrets passed as log driver options."
    )


class Ulimit(EcsModel):
    """A resource limit (ulimit) for the container's processes."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "self.softLimit <= self.hardLimit",
                "ulimits[].softLimit cannot exceed hardLimit",
                ".softLimit",
            )
        )
    )

    name: Literal[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ] = Field(description="The limit's name, e.g. nofile.")
    soft_limit: int = Field(ge=-1, le=MAX_INT32, description="Soft limit (-1 = unlimited).")
    hard_limit: int = Field(ge=-1, le=MAX_INT32, description="Hard limit (-1 = unlimited).")


class HostEntry(EcsModel):
    """An /etc/hosts entry."""

    hostname: str = Field(min_length=1, max_length=253, description="Host name.")
    ip_address: str = Field(min_length=1, max_length=45, description="IPv4 or IPv6 address.")


class SystemControl(EcsModel):
    """A namespaced kernel parameter (sysctl)."""

    namespace: str = Field(
        min_length=1, max_length=256, description="sysctl name, e.g. net.core.somaxconn."
    )
    value: str = Field(max_length=256, description="Value to set.")


class ResourceRequirement(EcsModel):
    """A special resource the container needs (GPUs)."""

    value: str = Field(
        min_length=1, max_length=64, description="Amount, e.g. 1 for one GPU (a whole number)."
    )
    type: Literal["GPU", "InferenceAccelerator"] = Field(
        description="GPU (nvidia.com/gpu on Kubernetes) or InferenceAccelerator (not honoured)."
    )


class ContainerRestartPolicy(EcsModel):
    """Restart an exited container in place instead of stopping the task."""

    enabled: bool = Field(description="Whether the container is restarted when it exits.")
    ignored_exit_codes: list[Annotated[int, Field(ge=MIN_INT32, le=MAX_INT32)]] | None = Field(
        default=None,
        max_length=MAX_IGNORED_EXIT_CODES,
        description="Exit codes that do not trigger a restart (at most 50).",
    )
    restart_attempt_period: int = Field(
        default=300,
        ge=60,
        le=1800,
        description=(
            "Seconds, 60-1800 (default 300), the container must have run before it may be "
            "restarted again."
        ),
    )


class RepositoryCredentials(EcsModel):
    """Private registry credentials."""

    credentials_parameter: str = Field(
        min_length=1,
        max_length=2048,
        description=(
            "Secrets Manager ARN; on Kubernetes the image pull Secret its secret name maps to "
            "(as for secrets[].valueFrom)."
        ),
    )
    kubernetes_secret_name: str | None = Field(
        default=None,
        max_length=MAX_OBJECT_NAME_LENGTH,
        pattern=OBJECT_NAME_PATTERN,
        description="Not ECS: the image pull Secret to use instead of the mapped one.",
    )


class FirelensConfiguration(EcsModel):
    """FireLens log router settings (informational on Kubernetes)."""

    type: Literal["fluentd", "fluentbit"] = Field(description="fluentd or fluentbit.")
    options: TextMap | None = Field(default=None, description="Router options.")


_CONTAINER_RULES = cel_rules(
    (
        "!has(self.memory) || !has(self.memoryReservation) || self.memory > self.memoryReservation",
        "containerDefinitions[].memory must be greater than memoryReservation when both are set",
        ".memoryReservation",
    ),
    (
        "!has(self.dependsOn) || self.dependsOn.all(d, d.containerName != self.name)",
        "containerDefinitions[].dependsOn: a container cannot depend on itself",
        ".dependsOn",
    ),
    (
        "!has(self.volumesFrom) || self.volumesFrom.all(v, v.sourceContainer != self.name)",
        "containerDefinitions[].volumesFrom: a container cannot mount its own volumes",
        ".volumesFrom",
    ),
    (
        # Every optional field read through a ternary: CEL absorbs an error on the far side of
        # && and ||, but the sandbox's evaluator (cel-python) raises it from inside filter().
        "!has(self.portMappings) || self.portMappings.all(p, !has(p.containerPort)"
        " || self.portMappings.filter(q, (has(q.containerPort) ? q.containerPort : 0)"
        " == (has(p.containerPort) ? p.containerPort : 0)"
        " && (has(q.protocol) ? q.protocol : 'tcp') == (has(p.protocol) ? p.protocol : 'tcp'))"
        ".size() == 1)",
        "containerDefinitions[].portMappings: a containerPort is mapped twice for the same "
        "protocol",
        ".portMappings",
    ),
    (
        "!has(self.portMappings) || self.portMappings.all(p, !has(p.name) || "
        "self.portMappings.filter(q, (has(q.name) ? q.name : '') == "
        "(has(p.name) ? p.name : '')).size() == 1)",
        "containerDefinitions[].portMappings[].name must be unique in the task definition",
        ".portMappings",
    ),
)


class ContainerDefinition(EcsModel):
    """One container of the task (an ECS ContainerDefinition)."""

    model_config = ConfigDict(json_schema_extra=_CONTAINER_RULES)

    name: ContainerName = _name_field(
        "Container name, unique in the task definition; " + NAME_DESCRIPTION
    )
    image: str = Field(
        min_length=1,
        max_length=1024,
        description="Image reference, repository:tag or repository@sha256:digest.",
    )
    repository_credentials: RepositoryCredentials | None = Field(
        default=None, description="Credentials for a private registry."
    )
    cpu: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CPU_UNITS,
        description=(
            "CPU units reserved (1024 = 1 vCPU), 0-196608; a relative share. Counted at "
            "placement when the task-level cpu is not set."
        ),
    )
    memory: int | None = Field(
        default=None,
        ge=MIN_MEMORY_MIB,
        le=MAX_MEMORY_MIB,
        description=(
            "Hard memory limit in MiB (at least 6); the container is killed above it. Must be "
            "greater than memoryReservation."
        ),
    )
    memory_reservation: int | None = Field(
        default=None,
        ge=1,
        le=MAX_MEMORY_MIB,
        description=(
            "Soft memory limit in MiB, reserved at placement instead of memory. Without a "
            "task-level memory, memory or memoryReservation is required."
        ),
    )
    links: list[Annotated[str, Field(max_length=512)]] | None = Field(
        default=None,
        max_length=MAX_CONTAINERS,
        description="name:alias links to other containers; bridge mode only (a no-op here: "
        "containers of a task share localhost).",
    )
    port_mappings: list[PortMapping] | None = Field(
        default=None, max_length=MAX_PORT_MAPPINGS, description="Ports the container exposes."
    )
    essential: bool = Field(
        default=True,
        description=(
            "Default true. When an essential container exits, with any code, the whole task "
            "stops. At least one container must be essential."
        ),
    )
    restart_policy: ContainerRestartPolicy | None = Field(
        default=None, description="Restart the container in place when it exits."
    )
    entry_point: list[Text] | None = Field(
        default=None,
        max_length=MAX_LIST_ITEMS,
        description="Docker ENTRYPOINT override (Kubernetes command).",
    )
    command: list[Text] | None = Field(
        default=None,
        max_length=MAX_LIST_ITEMS,
        description="Docker CMD override (Kubernetes args); overridable per task.",
    )
    environment: list[KeyValuePair] | None = Field(
        default=None,
        max_length=MAX_LIST_ITEMS,
        description="Environment variables; they win over environmentFiles.",
    )
    environment_files: list[EnvironmentFile] | None = Field(
        default=None,
        max_length=MAX_ENVIRONMENT_FILES,
        description="Up to 10 S3 .env files (not honoured on Kubernetes).",
    )
    mount_points: list[MountPoint] | None = Field(
        default=None, max_length=MAX_MOUNT_POINTS, description="Task volumes to mount."
    )
    volumes_from: list[VolumeFrom] | None = Field(
        default=None,
        max_length=MAX_CONTAINERS,
        description="Other containers whose volumes are mounted.",
    )
    linux_parameters: LinuxParameters | None = Field(
        default=None, description="Linux-specific settings (capabilities, devices, tmpfs, init)."
    )
    secrets: list[Secret] | None = Field(
        default=None,
        max_length=MAX_LIST_ITEMS,
        description="Secrets exposed as environment variables.",
    )
    depends_on: list[ContainerDependency] | None = Field(
        default=None,
        max_length=MAX_DEPENDS_ON,
        description="Containers that must reach a condition before this one starts.",
    )
    start_timeout: int | None = Field(
        default=None,
        ge=2,
        le=MAX_STOP_TIMEOUT_SECONDS,
        description=(
            "Seconds a dependent container waits for this one to reach its dependsOn "
            "condition before the task stops."
        ),
    )
    stop_timeout: int | None = Field(
        default=None,
        ge=0,
        le=MAX_STOP_TIMEOUT_SECONDS,
        description="Seconds between SIGTERM and SIGKILL when the task stops (default 30).",
    )
    version_consistency: Annotated[Literal["enabled", "disabled"] | None, EMPTY_IS_UNSET] = Field(
        default=None, description="Pin the image tag to its digest at launch (default enabled)."
    )
    hostname: str | None = Field(
        default=None,
        max_length=253,
        description="Container host name; not allowed with networkMode awsvpc.",
    )
    user: str | None = Field(
        default=None,
        max_length=255,
        description="user, user:group, uid, uid:gid, user:gid or uid:group to run as.",
    )
    working_directory: str | None = Field(
        default=None, max_length=4096, description="Working directory of the command."
    )
    disable_networking: bool | None = Field(
        default=None, description="Turn networking off for the container (not honoured)."
    )
    privileged: bool | None = Field(
        default=None,
        description="Run privileged (default false). Refused unless the operator allows it.",
    )
    readonly_root_filesystem: bool | None = Field(
        default=None, description="Mount the root filesystem read-only (default false)."
    )
    dns_servers: list[Annotated[str, Field(max_length=45)]] | None = Field(
        default=None, max_length=3, description="DNS servers (pod dnsConfig nameservers)."
    )
    dns_search_domains: list[Annotated[str, Field(max_length=253)]] | None = Field(
        default=None, max_length=6, description="DNS search domains (pod dnsConfig searches)."
    )
    extra_hosts: list[HostEntry] | None = Field(
        default=None,
        max_length=MAX_LIST_ITEMS,
        description="Extra /etc/hosts entries (pod hostAliases).",
    )
    docker_security_options: list[Annotated[str, Field(max_length=1024)]] | None = Field(
        default=None, max_length=64, description="SELinux/AppArmor labels (not honoured)."
    )
    interactive: bool | None = Field(default=None, description="Keep stdin open.")
    pseudo_terminal: bool | None = Field(default=None, description="Allocate a TTY.")
    docker_labels: TextMap | None = Field(
        default=None, description="Docker labels (added as pod annotations)."
    )
    ulimits: list[Ulimit] | None = Field(
        default=None,
        max_length=15,
        description="Resource limits; Kubernetes has no per-container ulimit (not honoured).",
    )
    log_configuration: LogConfiguration | None = Field(
        default=None, description="Log driver settings (informational)."
    )
    health_check: HealthCheck | None = Field(
        default=None, description="Container health check; drives healthStatus and HEALTHY."
    )
    system_controls: list[SystemControl] | None = Field(
        default=None,
        max_length=MAX_LIST_ITEMS,
        description="Namespaced sysctls (pod securityContext.sysctls).",
    )
    resource_requirements: list[ResourceRequirement] | None = Field(
        default=None, max_length=2, description="GPUs the container needs."
    )
    firelens_configuration: FirelensConfiguration | None = Field(
        default=None, description="FireLens log router settings (not honoured)."
    )
    credential_specs: list[Annotated[str, Field(max_length=2048)]] | None = Field(
        default=None, max_length=1, description="Windows gMSA credential spec (not honoured)."
    )


# ---------------------------------------------------------------------------------------------
# Task-level parts


class HostVolumeProperties(EcsModel):
    """A bind mount from the node, or (no sourcePath) a scratch directory."""

    source_path: str | None = Field(
        default=None,
        max_length=4096,
        description=(
            "Node path to mount (a hostPath; refused unless the operator allows it). Absent: "
            "an empty scratch directory that lives as long as the task."
        ),
    )


class DockerVolumeConfiguration(EcsModel):
    """A Docker volume."""

    scope: Annotated[Literal["task", "shared"] | None, EMPTY_IS_UNSET] = Field(
        default=None, description="task: removed with the task (default); shared: kept."
    )
    autoprovision: bool | None = Field(
        default=None, description="Create a shared volume if missing."
    )
    driver: str | None = Field(default=None, max_length=255, description="Volume driver.")
    driver_opts: TextMap | None = Field(default=None, description="Driver options.")
    labels: TextMap | None = Field(default=None, description="Volume labels.")


class EfsAuthorizationConfig(EcsModel):
    """EFS access point and IAM settings."""

    access_point_id: str | None = Field(default=None, max_length=255, description="Access point.")
    iam: Annotated[Literal["ENABLED", "DISABLED"] | None, EMPTY_IS_UNSET] = Field(
        default=None, description="Use task IAM."
    )


class EfsVolumeConfiguration(EcsModel):
    """An Amazon EFS file system (not honoured on Kubernetes; use a PersistentVolume)."""

    file_system_id: str = Field(min_length=1, max_length=255, description="EFS id, fs-....")
    root_directory: str | None = Field(default=None, max_length=4096, description="Root path.")
    transit_encryption: Annotated[Literal["ENABLED", "DISABLED"] | None, EMPTY_IS_UNSET] = Field(
        default=None, description="Encrypt in transit."
    )
    transit_encryption_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port for encrypted traffic."
    )
    authorization_config: EfsAuthorizationConfig | None = Field(
        default=None, description="Access point and IAM."
    )


class FsxAuthorizationConfig(EcsModel):
    """FSx for Windows credentials."""

    credentials_parameter: str = Field(
        min_length=1, max_length=2048, description="Secret with the credentials."
    )
    domain: str = Field(min_length=1, max_length=255, description="Active Directory domain.")


class FsxWindowsFileServerVolumeConfiguration(EcsModel):
    """An FSx for Windows File Server volume (not honoured on Kubernetes)."""

    file_system_id: str = Field(min_length=1, max_length=255, description="FSx file system id.")
    root_directory: str = Field(min_length=1, max_length=4096, description="Share path.")
    authorization_config: FsxAuthorizationConfig = Field(description="Credentials.")


class Volume(EcsModel):
    """A task volume that containers mount through mountPoints."""

    name: str = _name_field("Volume name referenced by mountPoints[].sourceVolume; unique.")
    host: HostVolumeProperties | None = Field(
        default=None, description="A node path or, without sourcePath, a scratch directory."
    )
    docker_volume_configuration: DockerVolumeConfiguration | None = Field(
        default=None, description="A Docker volume (task scope: an emptyDir)."
    )
    efs_volume_configuration: EfsVolumeConfiguration | None = Field(
        default=None, description="An EFS file system (not honoured)."
    )
    fsx_windows_file_server_volume_configuration: FsxWindowsFileServerVolumeConfiguration | None = (
        Field(default=None, description="An FSx for Windows volume (not honoured).")
    )
    configured_at_launch: bool | None = Field(
        default=None, description="Volume supplied at launch (not honoured)."
    )


class EphemeralStorage(EcsModel):
    """Fargate ephemeral storage size."""

    size_in_gib: int = Field(
        alias="sizeInGiB", ge=21, le=200, description="GiB, 21-200 (ephemeral-storage request)."
    )


class RuntimePlatform(EcsModel):
    """CPU architecture and OS the task needs (matched against node labels)."""

    cpu_architecture: Annotated[Literal["X86_64", "ARM64"] | None, EMPTY_IS_UNSET] = Field(
        default=None, description="X86_64 (kubernetes.io/arch amd64) or ARM64 (arm64)."
    )
    operating_system_family: str | None = Field(
        default=None, max_length=64, description="LINUX or a WINDOWS_SERVER_* family."
    )


class ProxyConfiguration(EcsModel):
    """App Mesh proxy settings: traffic redirected through an Envoy container (not honoured)."""

    type: Annotated[Literal["APPMESH"], EMPTY_IS_UNSET] = Field(
        default="APPMESH", description="APPMESH, the only proxy type."
    )
    container_name: ContainerName = _name_field("The container that is the proxy (Envoy).")
    properties: list[KeyValuePair] | None = Field(
        default=None,
        max_length=MAX_LIST_ITEMS,
        description=(
            "Proxy settings as name/value pairs: IgnoredUID, IgnoredGID, AppPorts, "
            "ProxyIngressPort, ProxyEgressPort, EgressIgnoredPorts, EgressIgnoredIPs."
        ),
    )


class InferenceAccelerator(EcsModel):
    """An Elastic Inference accelerator of the task (not honoured)."""

    device_name: str = Field(
        min_length=1, max_length=255, description="Name referenced by resourceRequirements."
    )
    device_type: str = Field(min_length=1, max_length=255, description="e.g. eia2.medium.")


class TaskDefinitionAttribute(EcsModel):
    """A container instance attribute the task needs (describe-task-definition output)."""

    name: str = Field(min_length=1, max_length=1024, description="Attribute name.")
    value: str | None = Field(default=None, max_length=1024, description="Attribute value.")
    target_type: str | None = Field(default=None, max_length=64, description="container-instance.")
    target_id: str | None = Field(default=None, max_length=2048, description="Target id or ARN.")


READ_ONLY: Final = (
    "Read-only output of describe-task-definition: accepted, ignored, never stored with a "
    "revision, and listed in status.unsupported."
)


def _timestamp_field() -> Any:
    return Field(
        default=None,
        exclude=True,
        description=f"{READ_ONLY} A timestamp: RFC 3339 text (the AWS CLI) or epoch seconds.",
    )


EcsTimestamp = Annotated[
    float | Annotated[str, Field(max_length=64)],
    WithJsonSchema(
        {
            "x-kubernetes-preserve-unknown-fields": True,
            "description": (
                "A timestamp as the AWS CLI prints it (RFC 3339 text) or as the API returns it "
                "(seconds since the epoch)."
            ),
        }
    ),
]
"""A timestamp of ECS output: text (``2024-06-01T10:00:00.123000+00:00``) or epoch seconds."""

READ_ONLY_FIELDS: Final = (
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "deleteRequestedAt",
)
"""describe-task-definition's output fields: accepted with the input, ignored, reported."""

WRAPPER_FIELD: Final = "taskDefinition"
WRAPPER_SIBLINGS: Final = frozenset({WRAPPER_FIELD, "tags"})
WRAPPED_EXTRA_FIELD: Final = (
    "spec.taskDefinition holds the whole task definition (the output of aws ecs "
    "describe-task-definition): beside it only tags may be given"
)
CONTAINERS_REQUIRED: Final = (
    "spec.containerDefinitions is required (or spec.taskDefinition: the output of aws ecs "
    "describe-task-definition)"
)


def _each_dependency(condition: str) -> str:
    """CEL: every dependsOn entry of every container satisfies ``condition`` (binds c, d)."""
    return (
        "self.containerDefinitions.all(c, !has(c.dependsOn) || c.dependsOn.all(d, "
        + condition
        + "))"
    )


TASK_ROLE_ACCOUNT_WITHOUT_ROLE: Final = (
    "spec.taskRoleServiceAccountName needs spec.taskRoleArn: it names the ServiceAccount of "
    "that role"
)

_BODY_RULES: Final[tuple[tuple[str, str, str], ...]] = (
    (
        "self.containerDefinitions.all(c, "
        "self.containerDefinitions.exists_one(d, d.name == c.name))",
        "spec.containerDefinitions: container names must be unique",
        ".containerDefinitions",
    ),
    (
        "self.containerDefinitions.exists(c, !has(c.essential) || c.essential)",
        "spec.containerDefinitions: at least one container must be essential "
        "(essential defaults to true)",
        ".containerDefinitions",
    ),
    (
        "has(self.memory) || self.containerDefinitions.all(c, has(c.memory) "
        "|| has(c.memoryReservation))",
        "spec.containerDefinitions: without a task-level memory, every container needs memory "
        "or memoryReservation",
        ".containerDefinitions",
    ),
    (
        _each_dependency("self.containerDefinitions.exists(t, t.name == d.containerName)"),
        "spec.containerDefinitions[].dependsOn[].containerName must name a container of this "
        "task definition",
        ".containerDefinitions",
    ),
    (
        _each_dependency(
            "!(d.condition in ['COMPLETE', 'SUCCESS']) || self.containerDefinitions.all(t, "
            "t.name != d.containerName || (has(t.essential) && !t.essential))"
        ),
        "spec.containerDefinitions[].dependsOn: a COMPLETE or SUCCESS dependency cannot target "
        "an essential container",
        ".containerDefinitions",
    ),
    (
        _each_dependency(
            "d.condition != 'HEALTHY' || self.containerDefinitions.all(t, "
            "t.name != d.containerName || has(t.healthCheck))"
        ),
        "spec.containerDefinitions[].dependsOn: a HEALTHY dependency must target a container "
        "with a healthCheck",
        ".containerDefinitions",
    ),
    (
        "self.containerDefinitions.all(c, !has(c.volumesFrom) || c.volumesFrom.all(v, "
        "self.containerDefinitions.exists(t, t.name == v.sourceContainer)))",
        "spec.containerDefinitions[].volumesFrom[].sourceContainer must name a container of "
        "this task definition",
        ".containerDefinitions",
    ),
    (
        "self.containerDefinitions.all(c, !has(c.mountPoints) || c.mountPoints.all(m, "
        "has(self.volumes) && self.volumes.exists(v, v.name == m.sourceVolume)))",
        "spec.containerDefinitions[].mountPoints[].sourceVolume must name one of spec.volumes",
        ".containerDefinitions",
    ),
    (
        "!has(self.volumes) || self.volumes.all(v, self.volumes.exists_one(w, w.name == v.name))",
        "spec.volumes: volume names must be unique",
        ".volumes",
    ),
    (
        "!has(self.networkMode) || self.networkMode != 'none' || "
        "self.containerDefinitions.all(c, !has(c.portMappings) || size(c.portMappings) == 0)",
        "spec.containerDefinitions[].portMappings are not allowed with networkMode none",
        ".containerDefinitions",
    ),
    (
        "!has(self.networkMode) || !(self.networkMode in ['host', 'awsvpc']) || "
        "self.containerDefinitions.all(c, !has(c.portMappings) || c.portMappings.all(p, "
        "!has(p.hostPort) || (has(p.containerPort) && p.hostPort == p.containerPort)))",
        "spec.containerDefinitions[].portMappings[].hostPort must be absent or equal to "
        "containerPort with networkMode host or awsvpc",
        ".containerDefinitions",
    ),
    (
        "!has(self.networkMode) || self.networkMode == 'bridge' || "
        "self.containerDefinitions.all(c, !has(c.links) || size(c.links) == 0)",
        "spec.containerDefinitions[].links are only allowed with networkMode bridge",
        ".containerDefinitions",
    ),
    (
        "!has(self.networkMode) || self.networkMode != 'awsvpc' || "
        "self.containerDefinitions.all(c, !has(c.hostname))",
        "spec.containerDefinitions[].hostname is not allowed with networkMode awsvpc",
        ".containerDefinitions",
    ),
    (
        "!has(self.taskRoleServiceAccountName) || has(self.taskRoleArn)",
        TASK_ROLE_ACCOUNT_WITHOUT_ROLE,
        ".taskRoleServiceAccountName",
    ),
    (
        "!has(self.placementConstraints) || self.placementConstraints.all(p, p.type == 'memberOf')",
        "spec.placementConstraints: a task definition only takes memberOf constraints "
        "(distinctInstance belongs on a Task or Service)",
        ".placementConstraints",
    ),
)


class TaskDefinitionBody(EcsModel):
    """A task definition: an ECS RegisterTaskDefinition request, or the ``taskDefinition`` of
    describe-task-definition's output (whose read-only fields are accepted and ignored)."""

    model_config = ConfigDict(json_schema_extra=cel_rules(*_BODY_RULES))

    family: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_FAMILY_LENGTH,
        pattern=NAME_PATTERN,
        description=(
            "ECS family name. Optional: the family is metadata.name; if given, metadata.name "
            "must be the family lower-cased with _ as - (consulServer: consulserver, "
            "clerk_backend_task: clerk-backend-task). At most "
            f"{MAX_FAMILY_LENGTH} characters (room for the revision's name)."
        ),
    )
    container_definitions: list[ContainerDefinition] = Field(
        min_length=1,
        max_length=MAX_CONTAINERS,
        description="The task's containers, 1-10.",
    )
    task_role_arn: str | None = Field(
        default=None,
        max_length=2048,
        description=(
            "IAM role for the task's code; on Kubernetes the Pod's ServiceAccount (never the "
            "operator's own) is the role name (the ARN's last path segment) mapped to a "
            "Kubernetes name: kept when it is one, else lower-cased, other characters as -, and "
            "a digest of the name appended. Its token is mounted unless it opts out; without a "
            "role no token is mounted."
        ),
    )
    task_role_service_account_name: str | None = Field(
        default=None,
        max_length=MAX_OBJECT_NAME_LENGTH,
        pattern=OBJECT_NAME_PATTERN,
        description=(
            "Not ECS: the ServiceAccount of taskRoleArn's role, instead of the one its name "
            "maps to. Needs taskRoleArn; a Task's overrides.taskRoleArn maps by the rule."
        ),
    )
    execution_role_arn: str | None = Field(
        default=None,
        max_length=2048,
        description="IAM role the agent uses to pull images and secrets (not honoured).",
    )
    network_mode: Annotated[NetworkMode, EMPTY_IS_UNSET] = Field(
        default="bridge",
        description=(
            "bridge (default), host, awsvpc or none. On Kubernetes every task gets its own pod "
            "network; host uses the node's network."
        ),
    )
    volumes: list[Volume] | None = Field(
        default=None, max_length=MAX_VOLUMES, description="Volumes the containers can mount."
    )
    placement_constraints: list[PlacementConstraint] | None = Field(
        default=None,
        max_length=MAX_PLACEMENT_CONSTRAINTS,
        description=(
            "memberOf constraints on the nodes that may run the task; at most 10, counted "
            "together with a Task's own."
        ),
    )
    requires_compatibilities: list[Literal["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"]] | (
        None
    ) = Field(
        default=None, max_length=4, description="Launch types the task definition is checked for."
    )
    cpu: TaskCpu | None = Field(
        default=None,
        description=(
            'Task CPU: units ("1024") or vCPUs ("1 vCPU"), 128-196608 units. Reserved at '
            "placement instead of the containers' sum."
        ),
    )
    memory: TaskMemory | None = Field(
        default=None,
        description=(
            'Task memory: MiB ("2048") or GB ("2GB"). Without it every container needs memory '
            "or memoryReservation."
        ),
    )
    pid_mode: Annotated[Literal["host", "task"] | None, EMPTY_IS_UNSET] = Field(
        default=None,
        description=(
            "task: containers share a PID namespace; host: the node's (refused by default)."
        ),
    )
    ipc_mode: Annotated[Literal["host", "task", "none"] | None, EMPTY_IS_UNSET] = Field(
        default=None,
        description="IPC namespace: task, none, or host (the node's; refused by default).",
    )
    ephemeral_storage: EphemeralStorage | None = Field(
        default=None, description="Scratch storage size (Fargate)."
    )
    runtime_platform: RuntimePlatform | None = Field(
        default=None, description="CPU architecture and OS family the task needs."
    )
    enable_fault_injection: bool | None = Field(
        default=None, description="ECS fault injection endpoints (not honoured)."
    )
    proxy_configuration: ProxyConfiguration | None = Field(
        default=None, description="App Mesh proxy configuration (not honoured)."
    )
    inference_accelerators: list[InferenceAccelerator] | None = Field(
        default=None, max_length=8, description="Elastic Inference accelerators (not honoured)."
    )
    # describe-task-definition's output: accepted, never stored with a revision, reported.
    task_definition_arn: str | None = Field(
        default=None, max_length=2048, exclude=True, description=READ_ONLY
    )
    revision: int | None = Field(
        default=None, ge=1, le=MAX_INT32, exclude=True, description=READ_ONLY
    )
    status: Annotated[RevisionState | None, EMPTY_IS_UNSET] = Field(
        default=None, exclude=True, description=READ_ONLY
    )
    requires_attributes: list[TaskDefinitionAttribute] | None = Field(
        default=None, max_length=MAX_LIST_ITEMS, exclude=True, description=READ_ONLY
    )
    compatibilities: list[Literal["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"]] | None = (
        Field(default=None, max_length=8, exclude=True, description=READ_ONLY)
    )
    registered_at: EcsTimestamp | None = _timestamp_field()
    registered_by: str | None = Field(
        default=None, max_length=2048, exclude=True, description=READ_ONLY
    )
    deregistered_at: EcsTimestamp | None = _timestamp_field()
    delete_requested_at: EcsTimestamp | None = _timestamp_field()

    @model_validator(mode="after")
    def _account_has_role(self) -> Self:
        # Mirrors the CEL rule, so the operator's own parse gives the same answer.
        if self.task_role_service_account_name and not self.task_role_arn:
            raise ValueError(TASK_ROLE_ACCOUNT_WITHOUT_ROLE)
        return self

    @model_validator(mode="after")
    def _within_size_limit(self) -> Self:
        size = len(self.model_dump_json(exclude_none=True).encode())
        if size > MAX_TASK_DEFINITION_BYTES:
            raise ValueError(
                f"spec is {size} bytes of JSON; ECS allows a task definition of at most "
                f"{MAX_TASK_DEFINITION_BYTES} bytes (64 KiB)"
            )
        return self

    @property
    def read_only_fields(self) -> list[str]:
        """The describe-task-definition output fields given (ECS names), in ECS's order."""
        given = {field.alias or name for name, field in type(self).model_fields.items()}
        return [
            name
            for name in READ_ONLY_FIELDS
            if name in given and getattr(self, _attribute(name)) is not None
        ]

    def container(self, name: str) -> ContainerDefinition | None:
        """The container called ``name``, or None."""
        return next((c for c in self.container_definitions if c.name == name), None)

    @property
    def essential_containers(self) -> list[ContainerDefinition]:
        """Containers whose exit stops the task (``essential`` defaults to true)."""
        return [c for c in self.container_definitions if c.essential]

    @property
    def cpu_units(self) -> int | None:
        """Task-level CPU in units (1 vCPU = 1024), or None when not set."""
        return None if self.cpu is None else parse_cpu_units(self.cpu)

    @property
    def memory_mib(self) -> int | None:
        """Task-level memory in MiB, or None when not set."""
        return None if self.memory is None else parse_memory_mib(self.memory)


def _attribute(alias: str) -> str:
    return next(
        name
        for name, field in TaskDefinitionBody.model_fields.items()
        if (field.alias or name) == alias
    )


def _guarded(rule: tuple[str, str, str]) -> tuple[str, str, str]:
    """A body rule at the spec, where containerDefinitions may be absent (the wrapper)."""
    expression, message, path = rule
    if "self.containerDefinitions" not in expression:
        return rule
    return f"!has(self.containerDefinitions) || ({expression})", message, path


def _untyped(field: dict[str, Any]) -> bool:
    """A property CEL cannot see: unknown fields kept, no type (also when optional)."""
    options = field.get("anyOf") or [field]
    return any(o.get("x-kubernetes-preserve-unknown-fields") and "type" not in o for o in options)


def _spec_schema(schema: dict[str, Any]) -> None:
    """The spec's schema: the body's, plus the describe-task-definition wrapper. Either
    containerDefinitions or taskDefinition is given; beside taskDefinition only tags (and
    networkMode, which kube-apiserver defaults to bridge)."""
    schema["required"] = [r for r in schema.get("required", []) if r != "containerDefinitions"]
    if not schema["required"]:
        del schema["required"]
    # CEL sees only typed fields (kube-apiserver refuses a rule naming an untyped one, such as
    # the read-only timestamps): the model refuses those beside the wrapper.
    others = sorted(
        name
        for name, field in schema["properties"].items()
        if name not in WRAPPER_SIBLINGS | {"networkMode"} and not _untyped(field)
    )
    beside = " || ".join(f"has(self.{name})" for name in others)
    rules = cel_rules(
        *(_guarded(rule) for rule in _BODY_RULES),
        (
            "has(self.containerDefinitions) || has(self.taskDefinition)",
            CONTAINERS_REQUIRED,
            ".containerDefinitions",
            "FieldValueRequired",
        ),
        (
            f"!has(self.taskDefinition) || (!({beside}) && "
            "(!has(self.networkMode) || self.networkMode == 'bridge'))",
            WRAPPED_EXTRA_FIELD,
            ".taskDefinition",
            "FieldValueForbidden",
        ),
    )
    schema["x-kubernetes-validations"] = rules["x-kubernetes-validations"]


class TaskDefinitionSpec(TaskDefinitionBody):
    """The task definition: an ECS RegisterTaskDefinition request, or the output of
    ``aws ecs describe-task-definition`` as it is (``{"taskDefinition": {...}, "tags": [...]}``),
    which is read as the request it describes (``wrapped`` says which was given)."""

    model_config = ConfigDict(json_schema_extra=_spec_schema)

    tags: list[Tag] | None = Field(
        default=None,
        max_length=MAX_TAGS,
        description=(
            "Up to 50 tags; aws: keys are reserved. Kept on the TaskDefinition; nothing on "
            "Kubernetes reads them (reported)."
        ),
    )
    task_definition: TaskDefinitionBody | None = Field(
        default=None,
        exclude=True,
        description=(
            "The output of aws ecs describe-task-definition pasted as it is: its taskDefinition "
            "object here, its tags beside it. Read as the task definition it describes; its "
            "read-only fields are ignored and reported. Instead of containerDefinitions and the "
            "other fields."
        ),
    )
    _wrapped: bool = PrivateAttr(default=False)

    @model_validator(mode="wrap")
    @classmethod
    def _unwrap(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Self:
        wrapped = isinstance(data, dict) and data.get(WRAPPER_FIELD) is not None
        if wrapped:
            body = data[WRAPPER_FIELD]
            extra = sorted(
                key
                for key, value in data.items()
                if key not in WRAPPER_SIBLINGS
                and not (key in ("networkMode", "network_mode") and value == "bridge")
            )
            if extra:
                raise ValueError(f"spec.{extra[0]}: {WRAPPED_EXTRA_FIELD}")
            if isinstance(body, dict):
                data = {**body, **({"tags": data["tags"]} if "tags" in data else {})}
        spec: Self = handler(data)
        if wrapped:
            spec._wrapped = True
        return spec

    @property
    def wrapped(self) -> bool:
        """Whether the spec was describe-task-definition's output (``spec.taskDefinition``)."""
        return self._wrapped

    def user_path(self, path: str) -> str:
        """``path`` (``spec.containerDefinitions[0]``) where the user wrote it."""
        return user_path(path, wrapped=self._wrapped)


def is_wrapped(spec: Any) -> bool:
    """Whether a raw spec is describe-task-definition's output (``spec.taskDefinition``)."""
    return isinstance(spec, dict) and spec.get(WRAPPER_FIELD) is not None


def user_path(path: str, *, wrapped: bool) -> str:
    """A ``spec.…`` path of the task definition as the user wrote it: inside
    ``spec.taskDefinition`` when the spec was describe-task-definition's output (its ``tags``
    stay beside it)."""
    field = re.split(r"[.\[]", path.removeprefix("spec."), maxsplit=1)[0]
    if not wrapped or not path.startswith("spec.") or field in WRAPPER_SIBLINGS:
        return path
    return "spec.taskDefinition." + path.removeprefix("spec.")


class RevisionSummary(StatusModel):
    """One registered revision of the family."""

    revision: int = Field(ge=1, description="Revision number, 1, 2, 3 ... never reused.")
    registered_at: Timestamp = Field(description="When the revision was registered.")
    status: RevisionState = Field(
        description="ACTIVE: usable; INACTIVE: deregistered, still runs existing tasks."
    )


class TaskDefinitionStatus(StatusModel):
    """The latest registered revision and the history of the family."""

    revision: int | None = Field(
        default=None, ge=1, description="Latest registered revision (what family alone means)."
    )
    task_definition_arn: str | None = Field(
        default=None,
        max_length=300,
        description="The latest revision as family:revision (ECS: the task definition ARN).",
    )
    registered_at: Timestamp | None = Field(
        default=None, description="When the latest revision was registered."
    )
    status: TaskDefinitionState | None = Field(
        default=None, description="ACTIVE, or INACTIVE once the family is deregistered."
    )
    revisions: list[RevisionSummary] | None = Field(
        default=None,
        max_length=MAX_REVISION_HISTORY,
        description="Registered revisions, newest last (at most the latest 100).",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status reflects."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=MAX_CONDITIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Accepted: the spec was registered as a revision (or why not).",
    )
    unsupported: list[UnsupportedField] | None = Field(
        default=None,
        max_length=MAX_UNSUPPORTED_ENTRIES,
        description="Fields accepted but not honoured on Kubernetes, and why.",
    )


def family_name(family: str) -> str:
    """The Kubernetes name of an ECS family: lower-cased, ``_`` written ``-``
    (``consulServer`` -> ``consulserver``, ``clerk_backend_task`` -> ``clerk-backend-task``).

    A TaskDefinition is named after its family by this rule, and every reference to a family
    (a Task's or Service's ``taskDefinition``, an ARN) is read through it, so ``consulServer:3``
    names revision 3 of the TaskDefinition ``consulserver``. Families that differ only in case
    or in ``_`` versus ``-`` are one family on Kubernetes (one object name in a namespace)."""
    return family.lower().replace("_", "-")


_FAMILY_CEL: Final = "lowerAscii().replace('_', '-') == self.metadata.name"
FAMILY_IS_NOT_NAME: Final = (
    "must match metadata.name: a TaskDefinition is named after its family, lower-cased with _ "
    "written - (consulServer: consulserver, clerk_backend_task: clerk-backend-task)"
)


class TaskDefinition(BaseModel):
    """An ECS task definition family; each spec change registers a new revision."""

    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
        json_schema_extra=cel_rules(
            (
                f"!has(self.spec.family) || self.spec.family.{_FAMILY_CEL}",
                f"spec.family {FAMILY_IS_NOT_NAME}",
                ".spec.family",
            ),
            (
                "!has(self.spec.taskDefinition) || !has(self.spec.taskDefinition.family) || "
                f"self.spec.taskDefinition.family.{_FAMILY_CEL}",
                f"spec.taskDefinition.family {FAMILY_IS_NOT_NAME}",
                ".spec.taskDefinition.family",
            ),
            (f"size(self.metadata.name) <= {MAX_FAMILY_LENGTH}", FAMILY_TOO_LONG, ".metadata.name"),
        ),
    )

    api_version: str = Field(default=API_GROUP_VERSION, alias="apiVersion")
    kind: Literal["TaskDefinition"] = "TaskDefinition"
    metadata: ObjectMeta
    spec: TaskDefinitionSpec
    status: TaskDefinitionStatus | None = None

    @model_validator(mode="after")
    def _family_is_name(self) -> Self:
        if len(self.metadata.name) > MAX_FAMILY_LENGTH:
            raise ValueError(FAMILY_TOO_LONG)
        family = self.spec.family
        if family is not None and family_name(family) != self.metadata.name:
            raise ValueError(
                f"{self.spec.user_path('spec.family')} {family!r} {FAMILY_IS_NOT_NAME}; "
                f"metadata.name is {self.metadata.name!r}, the family's name is "
                f"{family_name(family)!r}"
            )
        return self

    @property
    def family(self) -> str:
        """The family name on Kubernetes (``metadata.name``; ``family_name`` of spec.family)."""
        return self.metadata.name


def parse_task_definition_ref(ref: str) -> tuple[str, int | None]:
    """``"web"`` -> ``("web", None)`` (latest ACTIVE), ``"web:3"`` -> ``("web", 3)``.

    A full ECS ARN (``arn:aws:ecs:REGION:ACCOUNT:task-definition/web:3``) is accepted too; its
    region and account are ignored. The family is returned as its Kubernetes name
    (``family_name``: ``consulServer:3`` -> ``("consulserver", 3)``). Raises ``ValueError``
    naming the problem.
    """
    if not isinstance(ref, str) or not _REF.fullmatch(ref):
        raise ValueError(
            f"taskDefinition {ref!r} is not family, family:revision or a task definition ARN "
            "(family: 1-255 letters, digits, - and _; revision: a positive integer)"
        )
    family_revision = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
    family, _, revision = family_revision.partition(":")
    return family_name(family), int(revision) if revision else None


def format_task_definition_ref(family: str, revision: int) -> str:
    """``("web", 3)`` -> ``"web:3"``, the form status fields use."""
    return f"{family}:{revision}"
