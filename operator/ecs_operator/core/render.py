"""Render an ECS task (a task definition revision plus a Task's overrides) as a Pod manifest.

One Task is one Pod, named after the Task, in its namespace, owned by it (controller,
blockOwnerDeletion), labelled with the task, family, revision and ``managed-by: ecs-operator``
and annotated with the task group and the resolved ``family:revision``. The rules, field by field
(what is accepted but not honoured is listed in ``NOT_HONOURED`` and reported per task as
``UnsupportedField`` entries):

Pod
    ``restartPolicy: Never`` (an ECS task never restarts); ``enableServiceLinks: false``;
    ``terminationGracePeriodSeconds`` = the largest container ``stopTimeout`` (default 30).
    The node the operator placed the task on is a *required* node affinity on
    ``kubernetes.io/hostname`` (not ``spec.nodeName``), so the cluster scheduler still checks it.
    ``taskRoleArn`` (the override wins) names the ServiceAccount: the role name (the last path
    segment of an IAM role ARN, ``arn:aws:iam::1:role/app/web`` -> ``web``, or the plain value)
    mapped to a Kubernetes name (``core/names.py``), or ``taskRoleServiceAccountName`` when the
    task definition gives it for its own role; never the operator's own. Its token is mounted
    unless the ServiceAccount opts out
    (``automountServiceAccountToken: false``). Without a role no token is mounted (ECS: a task
    without a role has no credentials).
    Pod security (``core/security.py``): the pod's ``seccompProfile`` is ``RuntimeDefault``; every
    container that is not privileged gets ``allowPrivilegeEscalation: false`` (except with an
    added ``SYS_ADMIN``, which Kubernetes refuses with it) and ``capabilities.drop: [ALL]``, plus
    what ``linuxParameters.capabilities.add`` adds back; a task definition that lists what to
    drop gets its own list instead (``[]``: the runtime's default set), except in a namespace
    enforcing the ``restricted`` standard, which always drops ALL.
    ``networkMode`` bridge/awsvpc/none -> the pod network; host -> ``hostNetwork``.
    ``pidMode`` host -> ``hostPID``, task -> ``shareProcessNamespace``; ``ipcMode`` host ->
    ``hostIPC`` (task is what a pod always does). ``initProcessEnabled`` on any container ->
    ``shareProcessNamespace`` too: the pod's pause process becomes PID 1 and reaps zombies, as
    the init process would (side effect: the containers see each other's processes).
    ``dnsServers`` -> ``dnsPolicy: None`` with ``dnsConfig.nameservers`` (ECS replaces the DNS
    servers); ``dnsSearchDomains`` -> ``dnsConfig.searches``; ``extraHosts`` -> ``hostAliases``,
    and so does each ``links`` name (or alias) -> 127.0.0.1 (the containers share the network);
    ``hostname`` -> ``spec.hostname``; ``systemControls`` -> ``securityContext.sysctls`` (the
    namespaced ones). These are per pod on Kubernetes: the containers' values are merged in
    container order, and a conflict is reported. ``repositoryCredentials`` -> the pod's
    ``imagePullSecrets`` (the Secret named like a secret reference, below).
    ``dockerLabels`` -> the annotation ``ecs.operator.dev/docker-labels`` (JSON: ECS container
    name -> labels). ``ephemeralStorage`` -> ``ephemeral-storage`` requests, split like memory.

Containers
    Kubernetes container names are DNS labels, so ECS names are mapped (``container_names``):
    a valid name stays, others are lower-cased with ``_`` -> ``-``; two names that would collide
    both get a hash suffix. The annotation ``ecs.operator.dev/containers`` maps them back.
    ``image``; ``entryPoint`` -> ``command``; ``command`` (or the override's) -> ``args``;
    ``workingDirectory`` -> ``workingDir``; ``interactive``/``pseudoTerminal`` ->
    ``stdin``/``tty``; ``environment`` -> ``env``, the override's merged by name (it wins);
    ``secrets`` -> ``env`` ``secretKeyRef`` (a secret wins over a plain variable of the same name,
    as in ECS). A ``valueFrom`` is read as:

    - ``NAME:KEY`` -> Secret NAME, key KEY; a plain ``NAME`` or SSM parameter name
      (``/a/b/NAME``) -> that Secret, key = the variable name;
    - ``arn:aws:secretsmanager:R:A:secret:NAME-RANDOM[:JSON_KEY[:STAGE[:ID]]]`` -> Secret NAME
      (paths kept, AWS's 6-character random suffix dropped), key JSON_KEY or else the variable
      name;
    - ``arn:aws:ssm:R:A:parameter/PATH/NAME`` -> Secret ``/PATH/NAME``, key = the variable name;

    each Secret name mapped to a Kubernetes name (``core/names.py``: ``prod/db`` ->
    ``prod-db-`` and a digest), unless the entry's ``kubernetesSecretName`` names the Secret.

    ``secret_references`` lists them so the operator can check they exist before creating the
    pod. ``portMappings`` -> ``ports`` (``containerPort``, ``protocol`` TCP/UDP, ``name`` when it
    is a valid Kubernetes port name, ``hostPort`` when non-zero in bridge mode and always in host
    mode, where it equals ``containerPort``).

    Resources. ``cpu`` units -> a CPU request (1024 units = 1000m; 0 or absent: none);
    ``memoryReservation`` -> the memory request, ``memory`` -> the memory limit (and the request
    when there is no reservation); the override's values replace the container's. A task-level
    ``cpu``/``memory`` (the override's wins) caps the task as a whole in ECS; Kubernetes caps
    containers, so it is split (``_task_amounts``): containers keep their own value, the rest is
    shared evenly among the main containers and sidecars without one (among all of them when
    every one has a value; memory only up to a hard limit), and each share is the container's
    request *and* limit, so the Pod's limits never add up to more than the task's. CPU shares
    are rounded cumulatively (``_cumulative_millicores``) so they add up to exactly the task's
    millicores. A run-to-completion init container keeps its own value, set aside first and then
    given to the main containers (which start after it); its limit is what the sidecars started
    before it leave. A container left nothing gets ``MIN_SHARE_CPU_UNITS``/``MIN_SHARE_MIB``
    from the largest share (reported). GPU ``resourceRequirements`` -> ``nvidia.com/gpu``
    requests and limits. ``runtimePlatform`` -> a ``nodeSelector`` on ``kubernetes.io/os`` (for
    Windows also ``node.kubernetes.io/windows-build``) and ``kubernetes.io/arch``
    (``placement.platform_node_labels``).

    ``healthCheck`` -> a **readinessProbe** (not a livenessProbe: ECS never restarts an unhealthy
    container): ``CMD-SHELL x`` -> exec ``sh -c x``; ``CMD a b`` -> exec ``a b``; interval ->
    ``periodSeconds``, timeout -> ``timeoutSeconds``, retries -> ``failureThreshold``,
    ``startPeriod`` -> ``initialDelaySeconds`` (failures inside it never count; a container can
    only become healthy once it is over).

    ``user`` ``uid[:gid]`` -> ``runAsUser``/``runAsGroup``, and ``runAsNonRoot`` when the uid is
    not 0 (a name is reported);
    ``readonlyRootFilesystem``, ``privileged`` -> ``securityContext``; capabilities add/drop ->
    ``securityContext.capabilities`` (upper case, without ``CAP_``); ``sharedMemorySize`` -> an
    in-memory ``emptyDir`` at ``/dev/shm`` with that ``sizeLimit``; ``tmpfs`` -> in-memory
    ``emptyDir`` volumes; ``devices`` -> ``hostPath`` mounts (only when the policy allows
    privileged containers).

Volumes
    ``mountPoints`` -> ``volumeMounts`` (``readOnly`` kept); ``volumesFrom`` -> the source
    container's mounts (read-only when asked), transitively; a container's own mount of a path
    wins. A volume with no configuration, or ``host`` without ``sourcePath`` -> ``emptyDir``;
    ``host.sourcePath`` -> ``hostPath`` (refused by default, ``core/security.py``);
    ``dockerVolumeConfiguration`` -> ``emptyDir`` (scope ``shared``, drivers, EFS and FSx are
    reported and get an ``emptyDir`` too). Volume names are mapped to DNS labels like containers.

dependsOn
    A container another depends on with COMPLETE or SUCCESS becomes an ordinary init container
    (it runs to completion before the others; the CRD makes sure it is non-essential). One it
    depends on with START or HEALTHY stays a regular container, listed before its dependents:
    the kubelet starts regular containers one after another, in list order, and finishes a
    container's postStart hook before it starts the next one. HEALTHY adds a postStart hook that
    runs the ``CMD-SHELL`` health check with ``/bin/sh`` until it passes (``healthy_gate_hook``:
    at most the checks in ``startPeriod`` plus ``retries``, ``interval`` apart, each bounded by
    ``timeout``), exiting non-zero when it never does, and the kubelet then kills the container.
    With the pod's ``restartPolicy: Never`` a regular container that exits is never restarted,
    as in ECS. Regular containers are in a topological order of the dependencies
    (``dependency_order``; ties in task definition order), and so are init containers.
    A START/HEALTHY dependency is a native sidecar instead (an init container with
    ``restartPolicy: Always``, ``container_roles``) when it must start before an init container
    (an init container or another sidecar waits for it: Kubernetes runs every init container
    before any regular one), or when it gates HEALTHY with a ``CMD`` health check (the image may
    have no shell to loop in); HEALTHY then adds a startupProbe from its health check
    (failureThreshold = the checks in ``startPeriod`` plus ``retries``) so the next containers
    wait until it is healthy. The kubelet restarts a native sidecar that exits, so a non-essential
    one is reported. Approximations (in ``NOT_HONOURED``): init containers delay every regular
    container, and a regular container every one listed after it, not only the dependents;
    COMPLETE behaves like SUCCESS, because an init container that fails fails the pod; an
    ordinary init container runs no health check.
"""

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from ecs_operator.core import labels, names
from ecs_operator.core.placement import (
    GPU_RESOURCE,
    WINDOWS_FAMILY_BUILDS,
    operating_system,
    platform_node_labels,
)
from ecs_operator.core.quantity import cpu_units_to_millicores, mib_quantity, millicores_quantity
from ecs_operator.core.security import (
    SecurityPolicy,
    Violation,
    capability_name,
    is_namespaced_sysctl,
    security_violations,
    user_id,
)
from ecs_operator.models.common import UnsupportedField
from ecs_operator.models.task import TaskOverride, TaskSpec
from ecs_operator.models.taskdefinition import (
    ContainerDefinition,
    HealthCheck,
    Secret,
    TaskDefinitionSpec,
    Volume,
)

DEFAULT_STOP_TIMEOUT_SECONDS: Final = 30
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"
DOCKER_LABELS_ANNOTATION: Final = f"{labels.PREFIX}docker-labels"
# What `kubectl logs` and `kubectl exec` pick without `-c`: the task's own application, not a
# dependency listed before it.
DEFAULT_CONTAINER_ANNOTATION: Final = "kubectl.kubernetes.io/default-container"
MAX_NAMESERVERS: Final = 3
LOOPBACK: Final = "127.0.0.1"
MIN_SHARE_CPU_UNITS: Final = 11
"""A container's least share of a task's CPU: 11 units are at least 10m however they round
(the CFS quota's floor is 1 ms per 100 ms)."""
MIN_SHARE_MIB: Final = 6
"""A container's least share of a task's memory (the container runtime's smallest limit)."""

NOT_HONOURED: Final[Mapping[str, str]] = {
    "executionRoleArn": "not needed: the kubelet pulls images and Secrets come from the namespace",
    "networkMode awsvpc": ("no ENI per task: the pod gets its own IP on the cluster's pod network"),
    "networkMode none": "a pod always has a network: the task gets the pod network",
    "ipcMode none": "the containers of a pod always share one IPC namespace",
    "enableFaultInjection": "ECS fault injection endpoints do not exist on Kubernetes",
    "volumes[].dockerVolumeConfiguration.scope shared": (
        "no volume outlives its task: an emptyDir that lives as long as the pod is mounted"
    ),
    "volumes[].dockerVolumeConfiguration.driver": (
        "Docker volume drivers, options and labels are not available: an emptyDir is mounted"
    ),
    "volumes[].efsVolumeConfiguration": (
        "EFS is not mounted by the operator: an empty emptyDir is mounted instead"
    ),
    "volumes[].fsxWindowsFileServerVolumeConfiguration": (
        "FSx for Windows is not available: an empty emptyDir is mounted instead"
    ),
    "volumes[].configuredAtLaunch": (
        "volumes configured at launch are not available: an emptyDir is mounted"
    ),
    "containerDefinitions[].logConfiguration": (
        "Kubernetes collects stdout/stderr on the node (kubectl logs); log drivers are not used"
    ),
    "containerDefinitions[].firelensConfiguration": "FireLens log routing is not available",
    "containerDefinitions[].ulimits": (
        "Kubernetes has no per-container ulimits: the node runtime's defaults apply"
    ),
    "containerDefinitions[].environmentFiles": (
        "S3 environment files are not fetched: use environment or secrets"
    ),
    "containerDefinitions[].disableNetworking": (
        "the containers of a pod share its network; it cannot be turned off for one"
    ),
    "containerDefinitions[].restartPolicy": (
        "containers are not restarted in place: an essential container's exit stops the task"
    ),
    "containerDefinitions[].startTimeout": (
        "dependent containers wait for their dependencies without a time limit"
    ),
    "containerDefinitions[].dockerSecurityOptions": (
        "Docker security options (SELinux, AppArmor labels) are not translated"
    ),
    "containerDefinitions[].credentialSpecs": "Windows gMSA credential specs are not available",
    "containerDefinitions[].versionConsistency": (
        "the kubelet resolves image tags when it pulls; they are not pinned at launch"
    ),
    "containerDefinitions[].user name": (
        "only numeric uid[:gid] can be applied (Kubernetes cannot read the image's users)"
    ),
    "containerDefinitions[].linuxParameters.maxSwap": "swap is set per node by the kubelet",
    "containerDefinitions[].linuxParameters.swappiness": "swap is set per node by the kubelet",
    "containerDefinitions[].linuxParameters.tmpfs[].mountOptions": (
        "tmpfs mount options are not available: an in-memory emptyDir is mounted"
    ),
    "containerDefinitions[].linuxParameters.devices[].permissions": (
        "device permissions are not available: the device is mounted from the node (hostPath)"
    ),
    "containerDefinitions[].portMappings[].containerPortRange": (
        "Kubernetes has no port ranges: the range is not declared (still reachable on the pod IP)"
    ),
    "containerDefinitions[].portMappings[].appProtocol": (
        "there is no Service Connect: the application protocol is not used"
    ),
    "containerDefinitions[].portMappings[].name": (
        "not a Kubernetes port name (1-15 lower-case letters, digits and single inner '-', "
        "with a letter): the port is declared without a name"
    ),
    "containerDefinitions[].portMappings[].hostPort 0": (
        "no dynamic host port: the port is reachable on the pod IP (not reported per task)"
    ),
    "containerDefinitions[].resourceRequirements InferenceAccelerator": (
        "Elastic Inference accelerators are not available"
    ),
    "containerDefinitions[].links": (
        "not a DNS name (letters, digits, '-' and '.'), so it cannot be a host alias: the name "
        "does not resolve (the containers of a task share localhost)"
    ),
    "containerDefinitions[].hostname": (
        "a pod has one hostname, a DNS label: only the first container's valid hostname is used"
    ),
    "containerDefinitions[].dnsServers": (
        "DNS settings are per pod: the first three servers of all containers are used"
    ),
    "containerDefinitions[].systemControls": (
        "sysctls are per pod and must be namespaced (kernel.shm*, kernel.msg*, kernel.sem, "
        "fs.mqueue.*, net.* without host networking): this one is not set"
    ),
    "containerDefinitions[].healthCheck of an init container": (
        "a container others wait for to COMPLETE or SUCCEED is an init container, which "
        "cannot have probes: its health check is not run"
    ),
    "containerDefinitions[].essential false of a START/HEALTHY dependency": (
        "an init container waits for it (directly or through another such dependency), or its "
        "HEALTHY wait is a CMD health check (no shell to wait in): it must start before the "
        "regular containers, so it is a native sidecar, which the kubelet restarts when it "
        "exits: the task reports it STOPPED with its first exit code, but it runs again (an "
        "essential one stops the task, as in ECS)"
    ),
    "containerDefinitions[].dependsOn COMPLETE": (
        "behaves like SUCCESS: the dependency runs as an init container, and one that exits "
        "non-zero fails the task"
    ),
    "containerDefinitions[].dependsOn (ordering)": (
        "init containers and sidecars start before every regular container, and a regular "
        "container waited for with HEALTHY holds every container listed after it, not only the "
        "dependent ones; one that never becomes healthy is stopped and the next containers "
        "start anyway (not reported per task)"
    ),
    "containerDefinitions[].healthCheck.startPeriod": (
        "rendered as the readiness probe's initial delay: a container cannot be HEALTHY before "
        "startPeriod is over (not reported per task)"
    ),
    "memory (task level)": (
        "part of the task memory could not be given to any container within its hard limit"
    ),
    "cpu (task level) minimum share": (
        "the containers' own cpu takes all of the task's: Kubernetes has no task-wide limit, so "
        "each container without cpu gets 11 units (10m) taken from the largest share"
    ),
    "memory (task level) minimum share": (
        "the containers' own memory takes all of the task's: Kubernetes has no task-wide limit, "
        "so each container without memory gets 6 MiB taken from the largest share"
    ),
    "proxyConfiguration": (
        "App Mesh is not available: traffic is not redirected through the proxy container, "
        "which runs as an ordinary container"
    ),
    "inferenceAccelerators": "Elastic Inference accelerators are not available",
    "read-only fields of describe-task-definition": (
        "output of ECS, not input: ignored (the operator's own revision, status and "
        "registeredAt are in the TaskDefinition's status)"
    ),
    "tags (task definition)": (
        "kept on the TaskDefinition; nothing on Kubernetes reads ECS resource tags (use labels)"
    ),
    "enableExecuteCommand": "ECS Exec is not available: use kubectl exec",
    "networkConfiguration": "no ENI per task: the pod gets its own IP on the pod network",
    "propagateTags": "tags are not copied to the pod",
    "enableECSManagedTags": "ECS-managed tags are not added",
    "serviceName": "the Service is named by metadata.name: this serviceName is not used",
    "cluster": "the namespace is the ECS cluster: cluster is not used",
    "platformVersion": "there are no Fargate platform versions: tasks run as Pods on the nodes",
    "platformFamily": "there are no Fargate platform families: tasks run as Pods on the nodes",
    "capacityProviderStrategy": (
        "there are no capacity providers: tasks are placed on the namespace's schedulable nodes"
    ),
    "deploymentController": (
        "only the ECS rolling update is available: CODE_DEPLOY and EXTERNAL are not honoured"
    ),
    "serviceRegistries": (
        "there is no Cloud Map: use the LoadBalancer's Kubernetes Service (cluster DNS)"
    ),
    "serviceConnectConfiguration": (
        "there is no Service Connect: use the LoadBalancer's Kubernetes Service (cluster DNS)"
    ),
    "role": "no IAM role is needed: the operator registers targets itself",
    "loadBalancers[].advancedConfiguration.roleArn": (
        "no IAM role is needed: the operator registers targets and shifts traffic itself"
    ),
    "loadBalancers[].advancedConfiguration.productionListenerRule": (
        "the LoadBalancer is the listener: an ELB rule ARN names no HTTPRoute, and production "
        "traffic reaches the production LoadBalancer's Kubernetes Service"
    ),
    "loadBalancers[].advancedConfiguration.testListenerRule": (
        "the LoadBalancer is the listener: an ELB rule ARN names no HTTPRoute, and test traffic "
        "reaches the alternate LoadBalancer's Kubernetes Service"
    ),
    "propagateTags TASK_DEFINITION": "the task definition's tags are not copied to the tasks",
    "lifecycleHooks with ROLLING": (
        "ECS documents hook stages for BLUE_GREEN, LINEAR and CANARY only: a ROLLING deployment "
        "does not pause"
    ),
    "read-only fields of describe-services": (
        "output of ECS, not input: ignored (the operator's own counts are in the Service's status)"
    ),
}
"""Everything accepted but not (or not exactly) honoured, keyed by the ECS field: the README's
table. ``UnsupportedField.reason`` is always one of these texts."""

Role = Literal["init", "sidecar", "main"]

_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SECRET_KEY: Final = re.compile(r"[-._a-zA-Z0-9]+")
_PORT_NAME: Final = re.compile(r"(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*(?<!-)")
_NUMERIC: Final = re.compile(r"[0-9]+")
_MAX_DNS_LABEL: Final = 63
_MAX_DNS_SUBDOMAIN: Final = 253
_MAX_PORT_NAME: Final = 15
_HASH_LENGTH: Final = 8


class RenderError(ValueError):
    """The task cannot be rendered; every violation names its field."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(str(violation) for violation in self.violations))


@dataclass(frozen=True)
class ResolvedTaskDefinition:
    """The revision a task runs."""

    family: str
    revision: int
    spec: TaskDefinitionSpec


@dataclass(frozen=True)
class RenderedPod:
    manifest: dict[str, Any]
    unsupported: list[UnsupportedField]


@dataclass(frozen=True)
class SecretReference:
    """A key of a Secret in the task's namespace that a container's environment needs, and
    the ``valueFrom`` (at ``field``) it was mapped from."""

    secret: str
    key: str
    field: str
    value_from: str


@dataclass(frozen=True)
class TaskRoleAccount:
    """The ServiceAccount a task runs as, and the task role (at ``field``) it was mapped from:
    ``spec.taskRoleArn``, or ``spec.taskRoleServiceAccountName`` when that names it."""

    role: str
    account: str
    field: str


# ---------------------------------------------------------------------------------------------
# Names


def _hash(text: str, length: int = _HASH_LENGTH) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _sanitise(name: str) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:_MAX_DNS_LABEL].strip("-")
    return label or "x"


def _is_dns_label(name: str) -> bool:
    return len(name) <= _MAX_DNS_LABEL and _DNS_LABEL.fullmatch(name) is not None


def dns_labels(names: Sequence[str]) -> dict[str, str]:
    """Map distinct names to distinct DNS labels, deterministically: a valid label stays itself,
    another becomes its lower-cased, ``-`` for ``_`` form, and names whose forms collide get a
    hash suffix of their original name."""
    valid = {name for name in names if _is_dns_label(name)}
    forms = {name: _sanitise(name) for name in names if name not in valid}
    counts: dict[str, int] = {}
    for form in forms.values():
        counts[form] = counts.get(form, 0) + 1
    mapping = {name: name for name in valid}
    taken = set(valid)
    clashing: list[str] = []
    for name, form in forms.items():
        if counts[form] == 1 and form not in taken:
            mapping[name] = form
            taken.add(form)
        else:
            clashing.append(name)
    for name in clashing:
        length = _HASH_LENGTH
        while True:
            suffix = _hash(name, length)
            candidate = f"{forms[name][: _MAX_DNS_LABEL - len(suffix) - 1].strip('-')}-{suffix}"
            if candidate not in taken:
                break
            length += 1
        mapping[name] = candidate
        taken.add(candidate)
    return {name: mapping[name] for name in names}


def container_names(spec: TaskDefinitionSpec) -> dict[str, str]:
    """ECS container name -> Kubernetes container name."""
    return dns_labels([container.name for container in spec.container_definitions])


def task_role_account(spec: TaskDefinitionSpec) -> TaskRoleAccount | None:
    """The ServiceAccount of the task role: ``taskRoleServiceAccountName`` when given, else the
    one ``taskRoleArn`` maps to (``core/names.py``); None without a role."""
    role = spec.task_role_arn
    if not role:
        return None
    if spec.task_role_service_account_name:
        account = spec.task_role_service_account_name
        return TaskRoleAccount(role, account, "spec.taskRoleServiceAccountName")
    return TaskRoleAccount(role, names.service_account_name(role), "spec.taskRoleArn")


# ---------------------------------------------------------------------------------------------
# Dependencies


def _path(spec: TaskDefinitionSpec, name: str) -> str:
    index = next(i for i, c in enumerate(spec.container_definitions) if c.name == name)
    return f"spec.containerDefinitions[{index}]"


def dependency_order(spec: TaskDefinitionSpec) -> list[str]:
    """Every container name, each after the containers it depends on (ties in task definition
    order). Raises ``RenderError`` naming an unknown dependency or a cycle
    (``dependsOn cycle: a -> b -> a``: a depends on b, which depends on a)."""
    names = [container.name for container in spec.container_definitions]
    needs: dict[str, list[str]] = {}
    for index, container in enumerate(spec.container_definitions):
        needs[container.name] = []
        for position, dependency in enumerate(container.depends_on or []):
            if dependency.container_name not in names:
                raise RenderError(
                    [
                        Violation(
                            f"spec.containerDefinitions[{index}].dependsOn[{position}]"
                            ".containerName",
                            f"no container named {dependency.container_name!r} in the task "
                            "definition",
                        )
                    ]
                )
            needs[container.name].append(dependency.container_name)
    order: list[str] = []
    state: dict[str, Literal["visiting", "done"]] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*trail[trail.index(name) :], name]
            raise RenderError(
                [
                    Violation(
                        f"{_path(spec, name)}.dependsOn", f"dependsOn cycle: {' -> '.join(cycle)}"
                    )
                ]
            )
        state[name] = "visiting"
        for dependency in needs[name]:
            visit(dependency, [*trail, name])
        state[name] = "done"
        order.append(name)

    for name in names:
        visit(name, [])
    return order


def container_roles(spec: TaskDefinitionSpec) -> dict[str, Role]:
    """How each container runs: ``init`` (others wait for it to COMPLETE or SUCCEED),
    ``sidecar`` (a START/HEALTHY dependency that must start among the init containers: an init
    container or another sidecar waits for it, or it gates a HEALTHY dependent with a ``CMD``
    health check, which cannot be run by a postStart hook without a shell) or ``main`` (a
    regular container: nobody waits for it, or a START/HEALTHY dependency started before its
    dependents)."""
    by_name = {container.name: container for container in spec.container_definitions}
    roles: dict[str, Role] = dict.fromkeys(by_name, "main")
    for container in spec.container_definitions:
        for dependency in container.depends_on or []:
            if dependency.condition in ("COMPLETE", "SUCCESS"):
                roles[dependency.container_name] = "init"
    for name in _healthy_gated(spec):
        if roles.get(name) == "main" and not _shell_gated(by_name[name]):
            roles[name] = "sidecar"
    # Kubernetes runs every init container before any regular one, so whatever an init
    # container or a sidecar waits for must start among the init containers too.
    pending = [name for name, role in roles.items() if role != "main"]
    while pending:
        for dependency in by_name[pending.pop()].depends_on or []:
            if roles.get(dependency.container_name) == "main":
                roles[dependency.container_name] = "sidecar"
                pending.append(dependency.container_name)
    return roles


def _healthy_gated(spec: TaskDefinitionSpec) -> set[str]:
    return {
        dependency.container_name
        for container in spec.container_definitions
        for dependency in container.depends_on or []
        if dependency.condition == "HEALTHY"
    }


def _shell_gated(container: ContainerDefinition) -> bool:
    """Whether the HEALTHY wait for ``container`` can be its postStart hook: its health check is
    ``CMD-SHELL``, which ECS itself runs with ``/bin/sh`` in the container (so there is one)."""
    check = container.health_check
    return check is not None and check.command[0] == "CMD-SHELL"


# ---------------------------------------------------------------------------------------------
# Secrets


def _secret_location(value_from: str, field: str) -> tuple[str, str | None]:
    """A ``valueFrom`` (or registry credentials parameter) as (ECS secret or parameter name, key
    or None); ``core/names.py`` maps the name to a Secret."""
    if value_from.startswith("arn:"):
        parts = value_from.split(":")
        service = parts[2] if len(parts) > 2 else ""
        if service == "secretsmanager" and len(parts) >= 7 and parts[5] == "secret" and parts[6]:
            key = parts[7] if len(parts) > 7 and parts[7] else None
            return names.ecs_secret_name(parts[6]), key
        if service == "ssm" and len(parts) >= 6 and parts[5].startswith("parameter/"):
            name = names.ecs_parameter_name(":".join(parts[5:]))
            if name.strip("/"):
                return name, None
        raise RenderError(
            [
                Violation(
                    field,
                    f"{value_from!r} is neither a Secrets Manager secret ARN nor an SSM "
                    "parameter ARN; on Kubernetes write SECRET:KEY (a key of a Secret in "
                    "the task's namespace)",
                )
            ]
        )
    name, separator, key = value_from.partition(":")
    if ("/" in name and not name.startswith("/")) or not name.strip("/"):
        # Not an ECS form (SSM paths start with '/'); most likely SECRET/KEY meant SECRET:KEY.
        raise RenderError(
            [
                Violation(
                    field,
                    f"{value_from!r} is not a secret reference: write SECRET:KEY for a key "
                    "of a Secret in the task's namespace",
                )
            ]
        )
    return name, key if separator else None


def _secret_of(value_from: str, override: str | None, field: str) -> tuple[str, str | None]:
    """(Secret name, key or None) of a secret reference: its ``kubernetesSecretName`` when
    given, else the Secret its ECS name maps to."""
    ecs_name, key = _secret_location(value_from, field)
    return override or names.secret_name(ecs_name), key


def _parse_secret(secret: Secret, field: str) -> SecretReference:
    """One ``secrets[]`` entry as (Secret, key); raises ``RenderError`` naming ``field``."""
    name, key = _secret_of(secret.value_from, secret.kubernetes_secret_name, field)
    key = key or secret.name
    if len(key) > _MAX_DNS_SUBDOMAIN or not _SECRET_KEY.fullmatch(key):
        raise RenderError(
            [
                Violation(
                    field,
                    f"Secret key {key!r} (from {secret.value_from!r}) is not a valid key: "
                    "letters, digits, '-', '_' and '.'",
                )
            ]
        )
    return SecretReference(secret=name, key=key, field=field, value_from=secret.value_from)


def secret_references(spec: TaskDefinitionSpec) -> list[SecretReference]:
    """Every Secret key the containers' ``secrets`` need, so the operator can check that they
    exist before it creates the pod. Raises ``RenderError`` listing every unreadable one."""
    references: list[SecretReference] = []
    violations: list[Violation] = []
    for index, container in enumerate(spec.container_definitions):
        for position, secret in enumerate(container.secrets or []):
            field = f"spec.containerDefinitions[{index}].secrets[{position}].valueFrom"
            try:
                references.append(_parse_secret(secret, field))
            except RenderError as error:
                violations.extend(error.violations)
    if violations:
        raise RenderError(violations)
    return references


# ---------------------------------------------------------------------------------------------
# Resources


def _spread(amount: int, caps: Sequence[int | None]) -> tuple[list[int], int]:
    """Split ``amount`` as evenly as integers allow, each share at most its cap (None: no cap);
    returns the shares and what fitted nowhere."""
    shares = [0] * len(caps)
    left = amount
    open_slots = [i for i, cap in enumerate(caps) if cap is None or cap > 0]
    while left > 0 and open_slots:
        each, extra = divmod(left, len(open_slots))
        for position, slot in enumerate(open_slots):
            want = each + (1 if position < extra else 0)
            cap = caps[slot]
            give = want if cap is None else min(want, cap - shares[slot])
            shares[slot] += give
            left -= give
        open_slots = [i for i in open_slots if caps[i] is None or shares[i] < (caps[i] or 0)]
    return shares, left


def _fill(
    explicit: Mapping[str, int | None],
    total: int,
    eligible: Sequence[str],
    limits: Mapping[str, int | None],
) -> tuple[dict[str, int], int]:
    """Requests that keep the explicit values and share the rest of ``total``."""
    requests = {name: value for name, value in explicit.items() if value}
    remainder = total - sum(requests.values())
    takers = [name for name in eligible if not explicit[name]] or list(eligible)
    caps = [
        None if limits.get(name) is None else (limits[name] or 0) - requests.get(name, 0)
        for name in takers
    ]
    shares, left = _spread(max(remainder, 0), caps)
    for name, share in zip(takers, shares, strict=True):
        if share:
            requests[name] = requests.get(name, 0) + share
    return requests, left


def _cumulative_millicores(units: Mapping[str, int]) -> dict[str, int]:
    """CPU units as millicores, each rounded so that every running total is the total's own
    conversion (rounded up): the sum is exactly ``cpu_units_to_millicores(sum of units)``, so
    shares of a task's CPU never add up to more than the task's, and each share is within 1m
    of its exact value."""
    millicores: dict[str, int] = {}
    running_units = running_millicores = 0
    for name, amount in units.items():
        running_units += amount
        total = cpu_units_to_millicores(running_units)
        millicores[name] = total - running_millicores
        running_millicores = total
    return millicores


def _give_back(
    amounts: dict[str, int],
    own: Mapping[str, int | None],
    mains: Sequence[str],
    roles: Mapping[str, Role],
    caps: Mapping[str, int | None],
) -> int:
    """Add what the init containers' own values set aside to the main containers (those
    without a value first), each up to its cap; returns what fitted nowhere."""
    set_aside = sum(amounts.get(name, 0) for name, role in roles.items() if role == "init")
    takers = [name for name in mains if not own[name]] or list(mains)
    room = [
        None if caps.get(name) is None else max((caps[name] or 0) - amounts.get(name, 0), 0)
        for name in takers
    ]
    shares, left = _spread(set_aside, room)
    for name, share in zip(takers, shares, strict=True):
        if share:
            amounts[name] = amounts.get(name, 0) + share
    return left


def _with_minimum(amounts: dict[str, int], eligible: Sequence[str], minimum: int) -> bool:
    """Give every eligible container at least ``minimum``, taken from the largest amounts (a
    container's share is its hard limit, and one without any could not run). Returns whether
    anything had to be taken."""
    taken = False
    for needy in eligible:
        while amounts.get(needy, 0) < minimum:
            donor = max(eligible, key=lambda name: amounts.get(name, 0))
            give = min(minimum - amounts.get(needy, 0), amounts.get(donor, 0) - minimum)
            if donor == needy or give <= 0:
                break
            amounts[donor] -= give
            amounts[needy] = amounts.get(needy, 0) + give
            taken = True
    return taken


@dataclass(frozen=True)
class _Resources:
    requests: dict[str, dict[str, str]]
    limits: dict[str, dict[str, str]]
    unassigned_memory: int
    minimum_taken: tuple[str, ...]
    """``cpu``/``memory`` when a container's share had to be raised to the minimum."""


def gpu_count(container: ContainerDefinition) -> int:
    """The GPUs a container's ``resourceRequirements`` ask for (0 without, or when the value is
    not a whole number, which ``inspect_task`` refuses)."""
    return sum(
        int(requirement.value)
        for requirement in container.resource_requirements or []
        if requirement.type == "GPU" and _NUMERIC.fullmatch(requirement.value)
    )


def effective_spec(spec: TaskDefinitionSpec, overrides: TaskOverride | None) -> TaskDefinitionSpec:
    """``spec`` with a Task's overrides applied, as ECS applies them: ``command``,
    ``environmentFiles``, ``cpu``, ``memory``, ``memoryReservation`` and ``resourceRequirements``
    replace the container's; ``environment`` is merged by name (the override wins); the task's
    ``cpu``, ``memory``, ``taskRoleArn``, ``executionRoleArn`` and ``ephemeralStorage`` replace
    the task definition's."""
    if overrides is None:
        return spec
    by_name = {override.name: override for override in overrides.container_overrides or []}
    containers = []
    for container in spec.container_definitions:
        override = by_name.get(container.name)
        if override is None:
            containers.append(container)
            continue
        changes: dict[str, Any] = {
            field: getattr(override, field)
            for field in (
                "command",
                "environment_files",
                "cpu",
                "memory",
                "memory_reservation",
                "resource_requirements",
            )
            if getattr(override, field) is not None
        }
        if override.environment:
            merged = {variable.name: variable for variable in container.environment or []}
            merged.update((variable.name, variable) for variable in override.environment)
            changes["environment"] = list(merged.values())
        containers.append(container.model_copy(update=changes))
    task_changes: dict[str, Any] = {
        field: getattr(overrides, field)
        for field in ("cpu", "memory", "task_role_arn", "execution_role_arn", "ephemeral_storage")
        if getattr(overrides, field) is not None
    }
    if overrides.task_role_arn is not None:
        # The task definition's ServiceAccount override belongs to its own role.
        task_changes["task_role_service_account_name"] = None
    return spec.model_copy(update={"container_definitions": containers, **task_changes})


def _task_amounts(
    spec: TaskDefinitionSpec, roles: Mapping[str, Role], eligible: Sequence[str]
) -> tuple[dict[str, int], dict[str, int], int, list[str]]:
    """Every container's CPU (millicores) and memory (MiB), what no container could take of
    the task's memory, and which resources needed ``_with_minimum``."""
    containers = spec.container_definitions
    task_cpu = spec.cpu_units
    task_memory = spec.memory_mib
    own_cpu = {c.name: c.cpu or None for c in containers}
    own_memory = {c.name: c.memory_reservation or c.memory for c in containers}
    hard_memory = {c.name: c.memory for c in containers}

    # Every container's amount in CPU units and MiB: its own value, plus its share of what
    # the task's amount leaves (containers without a value share it; when all have one, all
    # eligible ones do, memory only up to a hard limit).
    # Init containers' own values are set aside first (they run beside the sidecars), then
    # given to the main containers, which start only once every init container is done.
    mains = [name for name in eligible if roles[name] == "main"]
    minimum_taken: list[str] = []
    cpu_units = {name: units for name, units in own_cpu.items() if units}
    if task_cpu is not None:
        cpu_units, _ = _fill(own_cpu, task_cpu, eligible, {})
        _give_back(cpu_units, own_cpu, mains, roles, {})
        if _with_minimum(cpu_units, eligible, MIN_SHARE_CPU_UNITS):
            minimum_taken.append("cpu")
    cpu = _cumulative_millicores({name: cpu_units.get(name, 0) for name in eligible})
    for name in own_cpu.keys() - set(eligible):
        cpu[name] = cpu_units_to_millicores(cpu_units.get(name, 0))
    memory = {name: mib for name, mib in own_memory.items() if mib}
    unassigned = 0
    if task_memory is not None:
        memory, unassigned = _fill(own_memory, task_memory, eligible, hard_memory)
        unassigned += _give_back(memory, own_memory, mains, roles, hard_memory)
        if _with_minimum(memory, eligible, MIN_SHARE_MIB):
            minimum_taken.append("memory")
    return cpu, memory, unassigned, minimum_taken


def _sidecars_before_init(
    roles: Mapping[str, Role],
    order: Sequence[str],
    cpu: Mapping[str, int],
    memory: Mapping[str, int],
) -> dict[str, tuple[int, int]]:
    """Per init container, the CPU and memory of the sidecars started before it: it runs
    beside them, so its ceiling is what they leave of the task's amount."""
    sidecars_cpu = sidecars_memory = 0
    init_room: dict[str, tuple[int, int]] = {}
    for name in order:
        if roles[name] == "sidecar":
            sidecars_cpu += cpu.get(name, 0)
            sidecars_memory += memory.get(name, 0)
        elif roles[name] == "init":
            init_room[name] = (sidecars_cpu, sidecars_memory)
    return init_room


def _resources(
    spec: TaskDefinitionSpec, roles: Mapping[str, Role], order: Sequence[str]
) -> _Resources:
    """Requests and limits per ECS container name (see the module docstring; ``order`` is the
    dependency order, in which init containers and sidecars start)."""
    containers = spec.container_definitions
    eligible = [c.name for c in containers if roles[c.name] != "init"]
    cpu, memory, unassigned, minimum_taken = _task_amounts(spec, roles, eligible)
    task_cpu = spec.cpu_units
    task_memory = spec.memory_mib
    hard_memory = {c.name: c.memory for c in containers}
    storage_shares: dict[str, int] = {}
    if spec.ephemeral_storage is not None:
        shares, _ = _spread(spec.ephemeral_storage.size_in_gib * 1024, [None] * len(eligible))
        storage_shares = dict(zip(eligible, shares, strict=True))

    init_room = _sidecars_before_init(roles, order, cpu, memory)

    requests: dict[str, dict[str, str]] = {}
    limits: dict[str, dict[str, str]] = {}
    for container in containers:
        name = container.name
        request: dict[str, str] = {}
        limit: dict[str, str] = {}
        cpu_limit: int | None = None
        memory_limit = hard_memory[name]
        if task_cpu is not None:
            cpu_limit = cpu[name]
            if name in init_room:
                cpu_limit = cpu_units_to_millicores(task_cpu) - init_room[name][0]
                cpu[name] = min(cpu[name], cpu_limit)
        if task_memory is not None and name in init_room:
            # Its own hard limit too must fit beside the sidecars started before it.
            room = task_memory - init_room[name][1]
            memory_limit = room if memory_limit is None else min(memory_limit, room)
            memory[name] = min(memory.get(name, 0), memory_limit)
        elif task_memory is not None:
            memory_limit = memory.get(name, 0)
        if cpu[name]:
            request["cpu"] = millicores_quantity(cpu[name])
        if cpu_limit:
            limit["cpu"] = millicores_quantity(cpu_limit)
        if memory.get(name):
            request["memory"] = mib_quantity(memory[name])
        if memory_limit:
            limit["memory"] = mib_quantity(memory_limit)
        if storage_shares.get(name):
            request["ephemeral-storage"] = mib_quantity(storage_shares[name])
        gpus = gpu_count(container)
        if gpus:
            request[GPU_RESOURCE] = limit[GPU_RESOURCE] = str(gpus)
        requests[name] = request
        limits[name] = limit
    return _Resources(
        requests=requests,
        limits=limits,
        unassigned_memory=unassigned,
        minimum_taken=tuple(minimum_taken),
    )


# ---------------------------------------------------------------------------------------------
# Probes


def _probe_command(check: HealthCheck) -> list[str]:
    head, *rest = check.command
    if head == "CMD-SHELL":
        return ["sh", "-c", " ".join(rest)]
    if head == "CMD":
        return rest
    return list(check.command)


def readiness_probe(check: HealthCheck) -> dict[str, Any]:
    """An ECS health check as a readiness probe (ECS never restarts an unhealthy container)."""
    probe: dict[str, Any] = {
        "exec": {"command": _probe_command(check)},
        "periodSeconds": check.interval,
        "timeoutSeconds": check.timeout,
        "failureThreshold": check.retries,
        "successThreshold": 1,
    }
    if check.start_period:
        probe["initialDelaySeconds"] = check.start_period
    return probe


def _healthy_gate_checks(check: HealthCheck) -> int:
    """How many checks the HEALTHY wait runs before giving up: a success any time passes;
    failures inside ``startPeriod`` plus ``retries`` more are allowed."""
    return math.ceil((check.start_period or 0) / check.interval) + check.retries


def healthy_gate_probe(check: HealthCheck) -> dict[str, Any]:
    """The startup probe that holds the containers after a sidecar until it is healthy."""
    return {
        "exec": {"command": _probe_command(check)},
        "periodSeconds": check.interval,
        "timeoutSeconds": check.timeout,
        "failureThreshold": _healthy_gate_checks(check),
        "successThreshold": 1,
    }


_HEALTHY_GATE_SCRIPT: Final = (
    # Old busybox spells it `timeout -t N`: without a usable timeout, checks are not bounded.
    'if timeout 1 true >/dev/null 2>&1; then bound="timeout {timeout}"; else bound=""; fi; '
    "checks=1; "
    'until $bound /bin/sh -c "$1"; do '
    '[ "$checks" -lt {checks} ] || exit 1; '
    "checks=$((checks + 1)); "
    "sleep {interval}; "
    "done"
)
"""The postStart loop of ``healthy_gate_hook``; the health check is its ``$1``, never quoted
into the script."""


def healthy_gate_hook(check: HealthCheck) -> dict[str, Any]:
    """The postStart hook that holds the containers listed after a regular container until its
    ``CMD-SHELL`` health check passes: the kubelet starts the next container only once the hook
    is done, and kills this one when the hook exits non-zero (the checks of
    ``healthy_gate_probe``, each bounded by ``timeout`` where the image has ``timeout``)."""
    script = _HEALTHY_GATE_SCRIPT.format(
        timeout=check.timeout, checks=_healthy_gate_checks(check), interval=check.interval
    )
    return {"exec": {"command": ["/bin/sh", "-c", script, "healthy-gate", *check.command[1:]]}}


# ---------------------------------------------------------------------------------------------
# The pod


def _parse_user(user: str) -> tuple[int | None, int | None, bool]:
    """``uid[:gid]`` -> (uid, gid, whether a part was a name)."""
    uid_part, _, gid_part = user.partition(":")
    uid = user_id(uid_part)
    gid = int(gid_part) if _NUMERIC.fullmatch(gid_part) else None
    named = uid is None or (gid_part != "" and gid is None)
    return uid, gid, named


class _PodBuilder:
    """Builds the pod spec of one task, collecting refusals and unsupported fields."""

    def __init__(
        self,
        spec: TaskDefinitionSpec,
        task: TaskSpec | None,
        policy: SecurityPolicy,
        service_account_automount: bool | None = None,
    ) -> None:
        self.spec = effective_spec(spec, task.overrides if task else None)
        self.task = task
        self.policy = policy
        self.service_account_automount = service_account_automount
        spec = self.spec
        self.violations: list[Violation] = list(security_violations(spec, policy))
        self.unsupported: list[UnsupportedField] = []
        self.names = container_names(spec)
        self.order = dependency_order(spec)
        self.roles = container_roles(spec)
        self.healthy_gated = _healthy_gated(spec)
        self.host_network = spec.network_mode == "host"
        self.volume_names = dns_labels(self._volume_keys())
        self.extra_volumes: list[dict[str, Any]] = []
        self.docker_labels: dict[str, dict[str, str]] = {}
        self.pod: dict[str, Any] = {}

    # -- reporting

    def report(self, field: str, key: str) -> None:
        self.unsupported.append(UnsupportedField(field=field, reason=NOT_HONOURED[key]))

    def refuse(self, field: str, message: str) -> None:
        self.violations.append(Violation(field, message))

    # -- names

    def _volume_keys(self) -> list[str]:
        # Generated volumes are keyed with '/', which ECS volume names cannot contain, so they
        # never take a user volume's name.
        keys = [volume.name for volume in self.spec.volumes or []]
        for container in self.spec.container_definitions:
            linux = container.linux_parameters
            if linux is None:
                continue
            if linux.shared_memory_size:
                keys.append(f"shm/{container.name}")
            keys.extend(f"tmpfs/{container.name}/{i}" for i in range(len(linux.tmpfs or [])))
            keys.extend(f"device/{container.name}/{i}" for i in range(len(linux.devices or [])))
        return keys

    # -- whole pod

    def build(self) -> dict[str, Any]:
        spec = self.spec
        self.pod = {
            "restartPolicy": "Never",
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": max(
                DEFAULT_STOP_TIMEOUT_SECONDS if c.stop_timeout is None else c.stop_timeout
                for c in spec.container_definitions
            ),
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        }
        self._identity()
        self._namespaces()
        self._platform()
        self._task_level_reports()
        volumes = [self._volume(index, volume) for index, volume in enumerate(spec.volumes or [])]
        resources = _resources(spec, self.roles, self.order)
        if resources.unassigned_memory:
            self.report("spec.memory", "memory (task level)")
        for resource in resources.minimum_taken:
            self.report(f"spec.{resource}", f"{resource} (task level) minimum share")
        containers = {
            c.name: self._container(index, c, resources)
            for index, c in enumerate(spec.container_definitions)
        }
        init = [containers[name] for name in self.order if self.roles[name] != "main"]
        if init:
            self.pod["initContainers"] = init
        # The kubelet starts regular containers one after another, in this order.
        self.pod["containers"] = [
            containers[name] for name in self.order if self.roles[name] == "main"
        ]
        self._pod_level_container_settings()
        volumes.extend(self.extra_volumes)
        if volumes:
            self.pod["volumes"] = volumes
        return self.pod

    def _identity(self) -> None:
        identity = task_role_account(self.spec)
        if identity is None:
            self.pod["automountServiceAccountToken"] = False
            return
        if not names.is_role_name(names.ecs_role_name(identity.role)):
            self.refuse(
                "spec.taskRoleArn",
                f"{identity.role!r} does not name an IAM role (1-64 letters, digits and "
                "+=,.@_-) nor a ServiceAccount",
            )
            return
        if identity.account == self.policy.operator_service_account:
            self.refuse(
                identity.field,
                f"names the ServiceAccount {identity.account!r}, the operator's own: a task may "
                "not run with the operator's permissions",
            )
            return
        self.pod["serviceAccountName"] = identity.account
        # The ServiceAccount decides, as for any Pod: its token is mounted unless it opts out.
        self.pod["automountServiceAccountToken"] = self.service_account_automount is not False

    def _namespaces(self) -> None:
        spec = self.spec
        if self.host_network:
            self.pod["hostNetwork"] = True
        elif spec.network_mode in ("awsvpc", "none"):
            self.report("spec.networkMode", f"networkMode {spec.network_mode}")
        init_process = any(
            c.linux_parameters and c.linux_parameters.init_process_enabled
            for c in spec.container_definitions
        )
        if spec.pid_mode == "host":
            self.pod["hostPID"] = True
        elif spec.pid_mode == "task" or init_process:
            self.pod["shareProcessNamespace"] = True
        if spec.ipc_mode == "host":
            self.pod["hostIPC"] = True
        elif spec.ipc_mode == "none":
            self.report("spec.ipcMode", "ipcMode none")

    def _platform(self) -> None:
        """``runtimePlatform`` -> a nodeSelector on the node's OS (and Windows build) and CPU
        architecture labels (placement chose such a node; the scheduler checks it again)."""
        platform = self.spec.runtime_platform
        if platform is None:
            return
        family = platform.operating_system_family
        if family and operating_system(family) is None:
            self.refuse(
                "spec.runtimePlatform.operatingSystemFamily",
                f"{family!r} is not an ECS operating system family: LINUX or one of "
                + ", ".join(WINDOWS_FAMILY_BUILDS),
            )
        selector = platform_node_labels(family, platform.cpu_architecture)
        if selector:
            self.pod["nodeSelector"] = selector

    def _task_level_reports(self) -> None:
        if self.spec.execution_role_arn:
            self.report("spec.executionRoleArn", "executionRoleArn")
        if self.spec.enable_fault_injection:
            self.report("spec.enableFaultInjection", "enableFaultInjection")
        if self.spec.proxy_configuration is not None:
            self.report("spec.proxyConfiguration", "proxyConfiguration")
        if self.spec.inference_accelerators:
            self.report("spec.inferenceAccelerators", "inferenceAccelerators")
        task = self.task
        if task is None:
            return
        for field, key in (
            (task.enable_execute_command, "enableExecuteCommand"),
            (task.network_configuration, "networkConfiguration"),
            (task.propagate_tags not in (None, "NONE"), "propagateTags"),
            (task.enable_ecs_managed_tags, "enableECSManagedTags"),
        ):
            if field:
                self.report(f"spec.{key}", key)

    # -- volumes

    def _volume(self, index: int, volume: Volume) -> dict[str, Any]:
        name = self.volume_names[volume.name]
        path = f"spec.volumes[{index}]"
        if volume.host is not None and volume.host.source_path:
            return {"name": name, "hostPath": {"path": volume.host.source_path}}
        docker = volume.docker_volume_configuration
        if docker is not None:
            if docker.scope == "shared" or docker.autoprovision:
                self.report(
                    f"{path}.dockerVolumeConfiguration.scope",
                    "volumes[].dockerVolumeConfiguration.scope shared",
                )
            if docker.driver not in (None, "local") or docker.driver_opts or docker.labels:
                self.report(
                    f"{path}.dockerVolumeConfiguration.driver",
                    "volumes[].dockerVolumeConfiguration.driver",
                )
        for field, present in (
            ("efsVolumeConfiguration", volume.efs_volume_configuration),
            (
                "fsxWindowsFileServerVolumeConfiguration",
                volume.fsx_windows_file_server_volume_configuration,
            ),
            ("configuredAtLaunch", volume.configured_at_launch),
        ):
            if present:
                self.report(f"{path}.{field}", f"volumes[].{field}")
        return {"name": name, "emptyDir": {}}

    def _mounts(self, container: ContainerDefinition) -> list[dict[str, Any]]:
        """The container's own mounts, then those of its volumesFrom sources (transitively);
        the first mount of a path wins."""
        mounts: dict[str, dict[str, Any]] = {}
        seen: set[str] = set()

        def collect(source: ContainerDefinition, read_only: bool) -> None:
            seen.add(source.name)
            for mount in source.mount_points or []:
                if mount.container_path not in mounts and mount.source_volume in self.volume_names:
                    entry: dict[str, Any] = {
                        "name": self.volume_names[mount.source_volume],
                        "mountPath": mount.container_path,
                    }
                    if read_only or mount.read_only:
                        entry["readOnly"] = True
                    mounts[mount.container_path] = entry
            for volume_from in source.volumes_from or []:
                other = self.spec.container(volume_from.source_container)
                if other is not None and other.name not in seen:
                    collect(other, read_only or bool(volume_from.read_only))

        collect(container, False)
        return list(mounts.values())

    def _volume_mounts(self, index: int, container: ContainerDefinition) -> list[dict[str, Any]]:
        # Kubernetes refuses two mounts at one path; the task definition's own mounts win.
        mounts: dict[str, dict[str, Any]] = {}
        for mount in self._mounts(container) + self._linux_mounts(index, container):
            mounts.setdefault(mount["mountPath"], mount)
        return list(mounts.values())

    def _linux_mounts(self, index: int, container: ContainerDefinition) -> list[dict[str, Any]]:
        linux = container.linux_parameters
        if linux is None:
            return []
        path = f"spec.containerDefinitions[{index}].linuxParameters"
        mounts: list[dict[str, Any]] = []

        def memory_volume(key: str, size_mib: int, mount_path: str) -> None:
            name = self.volume_names[key]
            self.extra_volumes.append(
                {
                    "name": name,
                    "emptyDir": {"medium": "Memory", "sizeLimit": mib_quantity(size_mib)},
                }
            )
            mounts.append({"name": name, "mountPath": mount_path})

        if linux.shared_memory_size:
            memory_volume(f"shm/{container.name}", linux.shared_memory_size, "/dev/shm")
        for position, tmpfs in enumerate(linux.tmpfs or []):
            memory_volume(f"tmpfs/{container.name}/{position}", tmpfs.size, tmpfs.container_path)
            if tmpfs.mount_options:
                self.report(
                    f"{path}.tmpfs[{position}].mountOptions",
                    "containerDefinitions[].linuxParameters.tmpfs[].mountOptions",
                )
        for position, device in enumerate(linux.devices or []):
            name = self.volume_names[f"device/{container.name}/{position}"]
            self.extra_volumes.append({"name": name, "hostPath": {"path": device.host_path}})
            mounts.append({"name": name, "mountPath": device.container_path or device.host_path})
            if device.permissions:
                self.report(
                    f"{path}.devices[{position}].permissions",
                    "containerDefinitions[].linuxParameters.devices[].permissions",
                )
        for field in ("maxSwap", "swappiness"):
            if getattr(linux, "max_swap" if field == "maxSwap" else "swappiness") is not None:
                self.report(f"{path}.{field}", f"containerDefinitions[].linuxParameters.{field}")
        return mounts

    # -- containers

    def _environment(self, index: int, container: ContainerDefinition) -> list[dict[str, Any]]:
        env: dict[str, dict[str, Any]] = {}
        for variable in container.environment or []:
            env[variable.name] = {"name": variable.name, "value": variable.value or ""}
        for position, secret in enumerate(container.secrets or []):
            field = f"spec.containerDefinitions[{index}].secrets[{position}].valueFrom"
            try:
                reference = _parse_secret(secret, field)
            except RenderError as error:
                self.violations.extend(error.violations)
                continue
            env.pop(secret.name, None)
            env[secret.name] = {
                "name": secret.name,
                "valueFrom": {"secretKeyRef": {"name": reference.secret, "key": reference.key}},
            }
        return list(env.values())

    def _ports(self, index: int, container: ContainerDefinition) -> list[dict[str, Any]]:
        ports: list[dict[str, Any]] = []
        path = f"spec.containerDefinitions[{index}].portMappings"
        for position, mapping in enumerate(container.port_mappings or []):
            field = f"{path}[{position}]"
            if mapping.app_protocol:
                self.report(
                    f"{field}.appProtocol", "containerDefinitions[].portMappings[].appProtocol"
                )
            if mapping.container_port is None:
                self.report(
                    f"{field}.containerPortRange",
                    "containerDefinitions[].portMappings[].containerPortRange",
                )
                continue
            port: dict[str, Any] = {
                "containerPort": mapping.container_port,
                "protocol": mapping.protocol.upper(),
            }
            if mapping.name:
                if len(mapping.name) <= _MAX_PORT_NAME and _PORT_NAME.fullmatch(mapping.name):
                    port["name"] = mapping.name
                else:
                    self.report(f"{field}.name", "containerDefinitions[].portMappings[].name")
            if self.host_network:
                port["hostPort"] = mapping.container_port
            elif self.spec.network_mode == "bridge" and mapping.host_port:
                port["hostPort"] = mapping.host_port
            ports.append(port)
        return ports

    def _security_context(self, index: int, container: ContainerDefinition) -> dict[str, Any]:
        context: dict[str, Any] = {}
        if container.user:
            uid, gid, named = _parse_user(container.user)
            if uid is not None:
                context["runAsUser"] = uid
                if uid != 0:
                    context["runAsNonRoot"] = True
            if gid is not None:
                context["runAsGroup"] = gid
            if named:
                self.report(
                    f"spec.containerDefinitions[{index}].user", "containerDefinitions[].user name"
                )
        if container.readonly_root_filesystem:
            context["readOnlyRootFilesystem"] = True
        if container.privileged:
            context["privileged"] = True
        linux = container.linux_parameters
        capabilities = linux.capabilities if linux else None
        asked = capabilities.drop if capabilities else None
        added = [capability_name(name) for name in (capabilities and capabilities.add) or ()]
        dropped = [capability_name(name) for name in asked or ()]
        if not container.privileged:
            # Nothing beyond what the task definition adds back, unless it lists what to drop
            # itself (an empty list keeps the runtime's default set); restricted: always ALL.
            if asked is None or self.policy.restricted:
                dropped = ["ALL"]
            # No setuid escalation (no_new_privs). Kubernetes refuses it with privileged (which
            # may do anything anyway) and with an added SYS_ADMIN.
            if "SYS_ADMIN" not in added:
                context["allowPrivilegeEscalation"] = False
        rendered = {field: names for field, names in (("add", added), ("drop", dropped)) if names}
        if rendered:
            context["capabilities"] = rendered
        return context

    _CONTAINER_REPORTS: Final = (
        ("log_configuration", "logConfiguration"),
        ("firelens_configuration", "firelensConfiguration"),
        ("ulimits", "ulimits"),
        ("environment_files", "environmentFiles"),
        ("disable_networking", "disableNetworking"),
        ("restart_policy", "restartPolicy"),
        ("start_timeout", "startTimeout"),
        ("docker_security_options", "dockerSecurityOptions"),
        ("credential_specs", "credentialSpecs"),
    )

    def _container_reports(self, index: int, container: ContainerDefinition) -> None:
        path = f"spec.containerDefinitions[{index}]"
        for attribute, field in self._CONTAINER_REPORTS:
            if getattr(container, attribute):
                self.report(f"{path}.{field}", f"containerDefinitions[].{field}")
        if container.version_consistency == "enabled":
            self.report(f"{path}.versionConsistency", "containerDefinitions[].versionConsistency")
        for position, requirement in enumerate(container.resource_requirements or []):
            if requirement.type == "GPU" and not _NUMERIC.fullmatch(requirement.value):
                self.refuse(
                    f"{path}.resourceRequirements[{position}].value",
                    f"{requirement.value!r} is not a number of GPUs (a whole number)",
                )
            if requirement.type == "InferenceAccelerator":
                self.report(
                    f"{path}.resourceRequirements[{position}]",
                    "containerDefinitions[].resourceRequirements InferenceAccelerator",
                )
        for position, dependency in enumerate(container.depends_on or []):
            if dependency.condition == "COMPLETE":
                self.report(
                    f"{path}.dependsOn[{position}]", "containerDefinitions[].dependsOn COMPLETE"
                )

    def _container(
        self, index: int, container: ContainerDefinition, resources: _Resources
    ) -> dict[str, Any]:
        name = container.name
        rendered: dict[str, Any] = {"name": self.names[name], "image": container.image}
        if container.entry_point is not None:
            rendered["command"] = list(container.entry_point)
        if container.command is not None:
            rendered["args"] = list(container.command)
        if container.working_directory:
            rendered["workingDir"] = container.working_directory
        optional: dict[str, Any] = {
            "env": self._environment(index, container),
            "ports": self._ports(index, container),
            "securityContext": self._security_context(index, container),
            "volumeMounts": self._volume_mounts(index, container),
        }
        rendered.update({key: value for key, value in optional.items() if value})
        resource_spec = {
            key: value
            for key, value in (
                ("requests", resources.requests[name]),
                ("limits", resources.limits[name]),
            )
            if value
        }
        if resource_spec:
            rendered["resources"] = resource_spec
        if container.interactive:
            rendered["stdin"] = True
        if container.pseudo_terminal:
            rendered["tty"] = True
        if self.roles[name] == "sidecar":
            rendered["restartPolicy"] = "Always"
            if not container.essential:
                self.report(
                    f"spec.containerDefinitions[{index}].essential",
                    "containerDefinitions[].essential false of a START/HEALTHY dependency",
                )
        elif name in self.healthy_gated and container.health_check is not None:
            # A regular container (container_roles): its CMD-SHELL check runs as a postStart hook.
            rendered["lifecycle"] = {"postStart": healthy_gate_hook(container.health_check)}
        self._probes(index, container, rendered)
        self._container_reports(index, container)
        return rendered

    def default_container(self) -> str:
        """The application a user means: of the regular containers in task definition order,
        the first essential one no other container waits for, else the first essential one,
        else the first."""
        awaited = {
            dependency.container_name
            for container in self.spec.container_definitions
            for dependency in container.depends_on or []
        }
        regular = [c for c in self.spec.container_definitions if self.roles[c.name] == "main"]
        preferred = sorted(regular, key=lambda c: (not c.essential, c.name in awaited))
        return self.names[preferred[0].name]

    def _probes(self, index: int, container: ContainerDefinition, rendered: dict[str, Any]) -> None:
        role = self.roles[container.name]
        check = container.health_check
        if check is None:
            return
        if role == "init":
            self.report(
                f"spec.containerDefinitions[{index}].healthCheck",
                "containerDefinitions[].healthCheck of an init container",
            )
            return
        rendered["readinessProbe"] = readiness_probe(check)
        if role == "sidecar" and container.name in self.healthy_gated:
            rendered["startupProbe"] = healthy_gate_probe(check)

    # -- settings that are per container in ECS and per pod in Kubernetes

    def _pod_level_container_settings(self) -> None:
        self._dns()
        self._hosts()
        self._sysctls()
        pull_secrets: list[str] = []
        for index, container in enumerate(self.spec.container_definitions):
            credentials = container.repository_credentials
            if credentials is not None:
                field = (
                    f"spec.containerDefinitions[{index}].repositoryCredentials.credentialsParameter"
                )
                try:
                    secret, _ = _secret_of(
                        credentials.credentials_parameter,
                        credentials.kubernetes_secret_name,
                        field,
                    )
                except RenderError as error:
                    self.violations.extend(error.violations)
                else:
                    if secret not in pull_secrets:
                        pull_secrets.append(secret)
            if container.docker_labels:
                self.docker_labels[container.name] = dict(container.docker_labels)
        if pull_secrets:
            self.pod["imagePullSecrets"] = [{"name": name} for name in pull_secrets]

    def _dns(self) -> None:
        servers: list[str] = []
        searches: list[str] = []
        for index, container in enumerate(self.spec.container_definitions):
            for server in container.dns_servers or []:
                if server in servers:
                    continue
                if len(servers) == MAX_NAMESERVERS:
                    self.report(
                        f"spec.containerDefinitions[{index}].dnsServers",
                        "containerDefinitions[].dnsServers",
                    )
                    break
                servers.append(server)
            searches.extend(d for d in container.dns_search_domains or [] if d not in searches)
        config: dict[str, Any] = {}
        if servers:
            self.pod["dnsPolicy"] = "None"
            config["nameservers"] = servers
        if searches:
            config["searches"] = searches
        if config:
            self.pod["dnsConfig"] = config

    def _hosts(self) -> None:
        aliases: dict[str, list[str]] = {}
        hostname: str | None = None

        def alias(ip: str, name: str) -> None:
            names = aliases.setdefault(ip, [])
            if name not in names:
                names.append(name)

        for index, container in enumerate(self.spec.container_definitions):
            for entry in container.extra_hosts or []:
                alias(entry.ip_address, entry.hostname)
            # A link's name (``mysql``, or the alias of ``mysql:db``) resolves to the pod
            # itself: its containers share one network namespace, as linked ones share a host.
            for position, link in enumerate(container.links or []):
                name, _, link_alias = link.partition(":")
                host = (link_alias or name).lower()
                if names.is_kubernetes_name(host):
                    alias(LOOPBACK, host)
                else:
                    self.report(
                        f"spec.containerDefinitions[{index}].links[{position}]",
                        "containerDefinitions[].links",
                    )
            if container.hostname is None or container.hostname == hostname:
                continue
            if hostname is None and _is_dns_label(container.hostname):
                hostname = container.hostname
            else:
                self.report(
                    f"spec.containerDefinitions[{index}].hostname",
                    "containerDefinitions[].hostname",
                )
        if aliases:
            self.pod["hostAliases"] = [
                {"ip": ip, "hostnames": names} for ip, names in aliases.items()
            ]
        if hostname is not None:
            self.pod["hostname"] = hostname

    def _sysctls(self) -> None:
        # A namespace's Pod Security Standard refuses unsafe ones (``pod_security_violations``).
        sysctls: dict[str, str] = {}
        for index, container in enumerate(self.spec.container_definitions):
            for position, control in enumerate(container.system_controls or []):
                name = control.namespace
                usable = is_namespaced_sysctl(name, self.host_network)
                if not usable or sysctls.get(name, control.value) != control.value:
                    self.report(
                        f"spec.containerDefinitions[{index}].systemControls[{position}]",
                        "containerDefinitions[].systemControls",
                    )
                    continue
                sysctls[name] = control.value
        if sysctls:
            self.pod.setdefault("securityContext", {})["sysctls"] = [
                {"name": name, "value": value} for name, value in sysctls.items()
            ]


# ---------------------------------------------------------------------------------------------
# Entry points


@dataclass(frozen=True)
class Inspection:
    """Everything that stops a task from running, and what it accepts but does not honour."""

    violations: list[Violation]
    unsupported: list[UnsupportedField]


def inspect_task(
    spec: TaskDefinitionSpec, task: TaskSpec | None, policy: SecurityPolicy
) -> Inspection:
    """Render ``spec`` (with ``task``'s overrides, if any) without raising."""
    try:
        builder = _PodBuilder(spec, task, policy)
        builder.build()
    except RenderError as error:
        return Inspection(violations=list(error.violations), unsupported=[])
    return Inspection(violations=builder.violations, unsupported=builder.unsupported)


def render_pod(
    *,
    task_name: str,
    namespace: str,
    task_uid: str,
    task: TaskSpec,
    task_definition: ResolvedTaskDefinition,
    node_name: str,
    group: str,
    policy: SecurityPolicy,
    service: str | None = None,
    readiness_probes: Mapping[str, dict[str, Any]] | None = None,
    service_account_automount: bool | None = None,
) -> RenderedPod:
    """The Pod that runs Task ``namespace/task_name`` on ``node_name``; a service task's Pod
    also carries the Service's label (its scale subresource selects Pods by it).
    ``service_account_automount`` is the task role's ServiceAccount's
    ``automountServiceAccountToken`` (None: it does not say).

    Raises ``RenderError`` listing every refusal: what the security policy forbids, dependency
    cycles, secret references and role names that are not Kubernetes names.
    """
    builder = _PodBuilder(task_definition.spec, task, policy, service_account_automount)
    pod_spec = builder.build()
    if builder.violations:
        raise RenderError(builder.violations)
    # A load balancer's health check becomes the readiness probe of the container it targets
    # (``readiness_probes``: ECS container name -> probe), unless the container's own ECS
    # health check already is its readiness probe.
    for ecs_name, probe in (readiness_probes or {}).items():
        for container in [*pod_spec.get("initContainers", ()), *pod_spec["containers"]]:
            if container["name"] == builder.names.get(ecs_name):
                container.setdefault("readinessProbe", probe)
    pod_spec["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": HOSTNAME_LABEL, "operator": "In", "values": [node_name]}
                        ]
                    }
                ]
            }
        }
    }
    reference = f"{task_definition.family}:{task_definition.revision}"
    annotations = {
        labels.GROUP_ANNOTATION: group,
        labels.TASK_DEFINITION_ANNOTATION: reference,
        labels.CONTAINERS_ANNOTATION: json.dumps(
            {k8s: ecs for ecs, k8s in builder.names.items()}, sort_keys=True
        ),
    }
    annotations[DEFAULT_CONTAINER_ANNOTATION] = builder.default_container()
    if builder.docker_labels:
        annotations[DOCKER_LABELS_ANNOTATION] = json.dumps(builder.docker_labels, sort_keys=True)
    pod_labels = {
        labels.TASK_LABEL: labels.label_value(task_name),
        labels.FAMILY_LABEL: labels.label_value(task_definition.family),
        labels.REVISION_LABEL: str(task_definition.revision),
        labels.MANAGED_BY_LABEL: labels.MANAGED_BY,
    }
    if service is not None:
        pod_labels[labels.SERVICE_LABEL] = labels.label_value(service)
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": task_name,
            "namespace": namespace,
            "labels": pod_labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": labels.OWNER_API_VERSION,
                    "kind": "Task",
                    "name": task_name,
                    "uid": task_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": pod_spec,
    }
    return RenderedPod(manifest=manifest, unsupported=builder.unsupported)
