"""Simulated zone-labelled nodes for the sandbox: scheduler, kubelets, node lifecycle (KWOK-like).

`ClusterSimulator` runs in-process as asyncio tasks against the sandbox `Store` and talks to it
only through the API surface (create / patch / delete, the `pods/binding` subresource, watches),
so everything it does is visible to `kubectl` and to the operator exactly as on a real cluster:

- **Nodes** `node-<zone>-<n>` carry the zone, region ("sandbox"), instance-type, arch, os and
  hostname labels, capacity and allocatable, an InternalIP, `spec.podCIDR` and the Ready /
  MemoryPressure / DiskPressure / PIDPressure conditions, with `lastHeartbeatTime` refreshed every
  `heartbeat_interval` through `nodes/status`. Every Node in the store is simulated, including
  Nodes created later through the API (missing capacity defaults to the configured one). Nodes
  already in the store are adopted, never duplicated. Deleting a Node deletes the pods bound to
  it (as the pod garbage collector does).
- **Node lifecycle controller**: a node silent for `node_monitor_grace` turns Ready=Unknown
  (reason NodeStatusUnknown), gets the `node.kubernetes.io/unreachable` NoExecute and NoSchedule
  taints, and its pods get Ready=False. The taint manager deletes the pods on a NoExecute-tainted
  node at once when they do not tolerate the taint, or after their toleration's
  `tolerationSeconds`. When the node heartbeats again it is Ready and the taints go.
- **Scheduler** (`schedulerName` default-scheduler): nodeSelector, required node affinity,
  taints and tolerations, cordon (`spec.unschedulable`), CPU / memory / pod-count / extended
  resource fit (`nvidia.com/gpu` and any other extended resource a pod requests, against the
  node's allocatable: `Insufficient nvidia.com/gpu`; init containers and native sidecars counted
  as Kubernetes does), host ports; the least allocated
  node wins, ties to the first name. Binds through `pods/binding`; an unschedulable pod gets
  PodScheduled=False with the scheduler's message and one aggregated FailedScheduling event, and
  is retried (debounced) when nodes or pods change.
- **Kubelet**: runs containers per `programs.py` (`sh -c "sleep 5; exit 3"` exits 3 after 5 s;
  unknown programs run until stopped), init containers in order, native sidecars, then the
  regular containers one after another in list order, restart policies with a doubling back-off,
  startup / readiness / liveness probes with their real periods and thresholds (exec probes per
  `programs.exec_probe_passes`; HTTP, TCP and gRPC probes pass), `lifecycle.postStart` hooks run
  right after their container starts and holding the next container until they are done (an exec
  hook takes as long as `programs.py` says, at once when it would run forever; it fails when it
  would exit non-zero or its container is marked unhealthy, and then the container is killed with
  143 after a `FailedPostStartHook` event and restarts only by the restart policy), and deletion
  (running containers end with 143, then the pod is deleted with grace 0).
  Each pod's status is written at most once per pass, with the whole change in it.
- **Faults**, settable with kubectl:
  Node annotation `sandbox.ecs.operator.dev/node-state=lost` stops the node's heartbeat and its
  kubelet (its pods' statuses freeze); `ready` or removing the annotation brings it back.
  Pod annotation `sandbox.ecs.operator.dev/exit=CONTAINER:CODE` makes that container exit with
  CODE as soon as it runs (once per annotation value). Pod annotation
  `sandbox.ecs.operator.dev/unhealthy=CONTAINER[,CONTAINER…]` makes its probes (and postStart
  hooks) fail until removed.
  Cordon is the real `spec.unschedulable`.

Simplifications, on purpose: a restarted simulator restarts the containers of the non-terminal
pods it finds (new startedAt); termination does not wait for the grace period; the scheduler does
no preemption, no inter-pod (anti-)affinity and no topology spreading (the operator places tasks
itself through node affinity).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ecs_sandbox.errors import ApiError
from ecs_sandbox.programs import RunPlan, exec_probe_passes, plan_container
from ecs_sandbox.quantity import cpu_millicores, memory_bytes, whole_count
from ecs_sandbox.registry import Registry
from ecs_sandbox.resources import ResourceType
from ecs_sandbox.store import Store

logger = logging.getLogger(__name__)

# The sandbox serves plain HTTP and has no CA: the ConfigMap exists, as on a real cluster, with an
# empty certificate.
ROOT_CA_CONFIG_MAP: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "kube-root-ca.crt"},
    "data": {"ca.crt": ""},
}

ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ARCH_LABEL = "kubernetes.io/arch"
OS_LABEL = "kubernetes.io/os"
HOSTNAME_LABEL = "kubernetes.io/hostname"
REGION = "sandbox"

NODE_STATE_ANNOTATION = "sandbox.ecs.operator.dev/node-state"
EXIT_ANNOTATION = "sandbox.ecs.operator.dev/exit"
UNHEALTHY_ANNOTATION = "sandbox.ecs.operator.dev/unhealthy"

UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
DEFAULT_SCHEDULER = "default-scheduler"
KUBELET_VERSION = "v1.32.0-sandbox"

MERGE_PATCH = "application/merge-patch+json"
EXIT_SIGTERM = 143
EXIT_SIGKILL = 137
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
# The scheduler scores a container without requests as if it asked for this much (k8s does).
NONZERO_CPU_MILLI = 100
NONZERO_MEMORY = 200 * 2**20
SANDBOX_RETRY_SECONDS = 1.0
# How many writes one pass makes before letting the API server's other tasks run.
WRITES_PER_SLICE = 200


@dataclass
class ClusterConfig:
    """Shape and timings of the simulated cluster (seconds; tests shrink them)."""

    zones: list[str] = field(default_factory=lambda: ["zone-a", "zone-b", "zone-c"])
    nodes_per_zone: int = 2
    cpu: str = "4"
    memory: str = "8Gi"
    pods: str = "110"
    instance_type: str = "m5.xlarge"
    arch: str = "amd64"
    os: str = "linux"
    node_labels: dict[str, str] = field(default_factory=dict)
    heartbeat_interval: float = 1.0
    node_monitor_grace: float = 3.0
    pod_start_delay: float = 0.05
    restart_backoff: float = 0.2  # first restart delay; doubles per restart
    restart_backoff_max: float = 5.0
    # Unschedulable pods are retried when nodes or pods change, each after a per-pod back-off
    # that starts here and doubles up to the maximum (kube-scheduler: 1 s to 10 s).
    unschedulable_backoff: float = 0.2
    unschedulable_backoff_max: float = 10.0
    post_events: bool = True  # benchmarks may turn the Event writes off

    def __post_init__(self) -> None:
        if not self.zones:
            raise ValueError("ClusterConfig.zones: at least one zone is required")
        if self.nodes_per_zone < 0:
            raise ValueError("ClusterConfig.nodes_per_zone: must not be negative")
        for name in ("cpu", "memory", "pods"):
            try:
                (cpu_millicores if name == "cpu" else whole_count)(getattr(self, name))
            except ValueError as error:
                raise ValueError(f"ClusterConfig.{name}: {error}") from error
        positive = (
            "heartbeat_interval",
            "node_monitor_grace",
            "restart_backoff",
            "unschedulable_backoff",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"ClusterConfig.{name}: must be positive")

    def node_names(self) -> list[tuple[str, str]]:
        """(node name, zone) of every configured node, in zone order."""
        return [
            (f"node-{zone}-{number}", zone)
            for zone in self.zones
            for number in range(1, self.nodes_per_zone + 1)
        ]


def timestamp() -> str:
    """Now as a Kubernetes `metav1.Time` (RFC 3339, second precision, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Scheduling rules (pure)
# --------------------------------------------------------------------------------------------


def _is_extended_resource(name: str) -> bool:
    """Kubernetes' `IsExtendedResourceName`: a domain-prefixed name outside `kubernetes.io`
    (`nvidia.com/gpu`, `example.com/dongle`), counted from the node's allocatable like CPU."""
    domain, slash, _ = name.partition("/")
    return bool(slash) and not domain.endswith("kubernetes.io") and not name.startswith("requests.")


def _merge_counts(
    mine: tuple[tuple[str, int], ...],
    theirs: tuple[tuple[str, int], ...],
    combine: Callable[[int, int], int],
) -> tuple[tuple[str, int], ...]:
    counts = dict(mine)
    for name, count in theirs:
        counts[name] = combine(counts.get(name, 0), count)
    return tuple(sorted((name, count) for name, count in counts.items() if count))


@dataclass(frozen=True)
class Resources:
    """What a pod asks for, or what a node offers: millicores, bytes, pod slots, and extended
    resources by name in whole units (sorted, none zero)."""

    cpu: int = 0
    memory: int = 0
    pods: int = 0
    extended: tuple[tuple[str, int], ...] = ()

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu + other.cpu,
            self.memory + other.memory,
            self.pods + other.pods,
            _merge_counts(self.extended, other.extended, lambda a, b: a + b),
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu - other.cpu,
            self.memory - other.memory,
            self.pods - other.pods,
            _merge_counts(self.extended, other.extended, lambda a, b: a - b),
        )

    def peak(self, other: Resources) -> Resources:
        return Resources(
            max(self.cpu, other.cpu),
            max(self.memory, other.memory),
            max(self.pods, other.pods),
            _merge_counts(self.extended, other.extended, max),
        )


def _extended_counts(quantities: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """The extended resources of a requests / limits / allocatable map, in whole units."""
    counts = {}
    for name, value in quantities.items():
        if _is_extended_resource(name):
            try:
                counts[name] = whole_count(value)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from error
    return _merge_counts((), tuple(counts.items()), lambda a, b: a + b)


def _container_requests(container: dict[str, Any], where: str) -> Resources:
    resources = container.get("resources") or {}
    # Admission copies limits into missing requests; do the same here.
    asked = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    try:
        cpu = cpu_millicores(asked["cpu"]) if "cpu" in asked else 0
        memory = memory_bytes(asked["memory"]) if "memory" in asked else 0
        extended = _extended_counts(asked)
    except ValueError as error:
        raise ValueError(f"{where}.resources: {error}") from error
    return Resources(cpu, memory, extended=extended)


def pod_requests(spec: dict[str, Any]) -> Resources:
    """The effective request of a pod, as the scheduler counts it: the larger of the running
    containers (plus sidecars) and the peak during init, plus overhead, plus one pod slot."""
    running = Resources()
    for index, container in enumerate(spec.get("containers") or []):
        running += _container_requests(container, f"spec.containers[{index}]")
    sidecars = Resources()
    init_peak = Resources()
    for index, container in enumerate(spec.get("initContainers") or []):
        asked = _container_requests(container, f"spec.initContainers[{index}]")
        if container.get("restartPolicy") == "Always":
            sidecars += asked
            init_peak = init_peak.peak(sidecars)
        else:
            init_peak = init_peak.peak(sidecars + asked)
    total = (running + sidecars).peak(init_peak)
    overhead = spec.get("overhead") or {}
    try:
        total += Resources(
            cpu_millicores(overhead.get("cpu", 0)), memory_bytes(overhead.get("memory", 0))
        )
    except ValueError as error:
        raise ValueError(f"spec.overhead: {error}") from error
    return total + Resources(pods=1)


def _nonzero(requests: Resources) -> Resources:
    return Resources(
        requests.cpu or NONZERO_CPU_MILLI, requests.memory or NONZERO_MEMORY, requests.pods
    )


def host_ports(spec: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) of every container port that claims a host port."""
    claimed = []
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                claimed.append(
                    (
                        port.get("hostIP") or "0.0.0.0",
                        port.get("protocol") or "TCP",
                        int(port["hostPort"]),
                    )
                )
    return claimed


def _ports_conflict(
    wanted: list[tuple[str, str, int]], used: Counter[tuple[str, str, int]]
) -> bool:
    for ip, protocol, port in wanted:
        for used_ip, used_protocol, used_port in used:
            same_ip = "0.0.0.0" in (ip, used_ip) or ip == used_ip
            if used_port == port and used_protocol == protocol and same_ip:
                return True
    return False


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """Kubernetes' `Toleration.ToleratesTaint`."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def _untolerated(
    tolerations: list[dict[str, Any]], taints: Iterable[dict[str, Any]], effects: frozenset[str]
) -> dict[str, Any] | None:
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def _expression_matches(expression: dict[str, Any], value: str | None) -> bool:
    operator = expression.get("operator")
    values = expression.get("values") or []
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, bound = int(value), int(values[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def _term_matches(term: dict[str, Any], name: str, labels: dict[str, str]) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term selects nothing
    return all(_expression_matches(e, labels.get(e.get("key", ""))) for e in expressions) and all(
        _expression_matches(f, name if f.get("key") == "metadata.name" else None) for f in fields
    )


def node_selection_matches(spec: dict[str, Any], name: str, labels: dict[str, str]) -> bool:
    """`nodeSelector` and required node affinity (the NodeAffinity filter)."""
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if terms is None:
        return True
    return any(_term_matches(term, name, labels) for term in terms)


def unschedulable_message(node_count: int, reasons: Counter[str]) -> str:
    """kube-scheduler's FitError text: `0/6 nodes are available: 2 Insufficient memory, …`."""
    if node_count == 0:
        return "no nodes available to schedule pods"
    listed = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return f"0/{node_count} nodes are available: {', '.join(listed)}."


def eviction_delay(tolerations: list[dict[str, Any]], taints: list[dict[str, Any]]) -> float | None:
    """Seconds a pod may stay on a node with these NoExecute taints (None: for ever), as the
    taint manager computes it: 0 when one taint is not tolerated, else the smallest
    `tolerationSeconds` of the tolerations used."""
    used: list[dict[str, Any]] = []
    for taint in taints:
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return 0.0
        used.extend(matching)
    limits = [float(t["tolerationSeconds"]) for t in used if t.get("tolerationSeconds") is not None]
    if not limits:
        return None
    return max(0.0, min(limits))


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


class _EventRecorder:
    """Posts core/v1 Events, aggregated: a repeat of the same (object, reason, key) bumps
    `count` and `lastTimestamp` of the first Event instead of creating a new one."""

    def __init__(self, store: Store, events: ResourceType, enabled: bool) -> None:
        self._store = store
        self._events = events
        self._enabled = enabled
        # involved uid -> (reason, aggregation key) -> (namespace, event name, count)
        self._posted: dict[str, dict[tuple[str, str], tuple[str, str, int]]] = {}

    def record(
        self,
        involved: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        source: dict[str, str],
        *,
        key: str | None = None,
    ) -> None:
        if not self._enabled:
            return
        uid = involved.get("uid", "")
        aggregation = (reason, message if key is None else key)
        posted = self._posted.setdefault(uid, {})
        stamp = timestamp()
        known = posted.get(aggregation)
        if known is not None:
            namespace, name, count = known
            bump = {"count": count + 1, "lastTimestamp": stamp, "message": message}
            try:
                self._store.patch(self._events, namespace, name, bump, MERGE_PATCH)
            except ApiError:
                pass  # expired or deleted: post a fresh one below
            else:
                posted[aggregation] = (namespace, name, count + 1)
                return
        namespace = involved.get("namespace") or "default"
        name = f"{involved.get('name', 'object')}.{time.time_ns():x}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": source,
            "reportingComponent": source["component"],
            "reportingInstance": source.get("host", source["component"]),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self._store.create(self._events, namespace, event)
        except ApiError as error:
            logger.debug("event %s %s not posted: %s", reason, name, error)
            return
        posted[aggregation] = (namespace, name, 1)

    def forget(self, uid: str) -> None:
        self._posted.pop(uid, None)


def _pod_reference(pod: dict[str, Any], field_path: str | None = None) -> dict[str, Any]:
    metadata = pod["metadata"]
    reference = {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": metadata.get("namespace"),
        "name": metadata["name"],
        "uid": metadata.get("uid", ""),
    }
    if field_path:
        reference["fieldPath"] = field_path
    return reference


# --------------------------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------------------------


@dataclass
class _Node:
    """The simulator's view of one Node: its object, accounting and kubelet state."""

    name: str
    obj: dict[str, Any]
    ip: str
    pod_network: str  # "10.244.3." — pods get .2 to .254
    allocatable: Resources = field(default_factory=Resources)
    used: Resources = field(default_factory=Resources)
    used_nonzero: Resources = field(default_factory=Resources)
    ports: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    pods: set[str] = field(default_factory=set)
    ips_in_use: set[int] = field(default_factory=set)
    next_ip: int = 2
    last_heartbeat: float = 0.0
    full_status_written: bool = False
    marked_unknown: bool = False

    @property
    def labels(self) -> dict[str, str]:
        return self.obj.get("metadata", {}).get("labels") or {}

    @property
    def lost(self) -> bool:
        annotations = self.obj.get("metadata", {}).get("annotations") or {}
        return annotations.get(NODE_STATE_ANNOTATION) == "lost"

    @property
    def unschedulable(self) -> bool:
        return bool(self.obj.get("spec", {}).get("unschedulable"))

    @property
    def taints(self) -> list[dict[str, Any]]:
        return list(self.obj.get("spec", {}).get("taints") or [])

    def condition(self, kind: str) -> dict[str, Any] | None:
        for condition in self.obj.get("status", {}).get("conditions") or []:
            if condition.get("type") == kind:
                return condition  # type: ignore[no-any-return]
        return None

    def ready_status(self) -> str:
        ready = self.condition("Ready")
        return str(ready.get("status", "Unknown")) if ready else "Unknown"

    def effective_taints(self) -> list[dict[str, Any]]:
        """Spec taints plus the NoSchedule taint Kubernetes keeps on a node that is not Ready."""
        taints = self.taints
        ready = self.ready_status()
        if ready != "True":
            implied = UNREACHABLE_TAINT if ready == "Unknown" else NOT_READY_TAINT
            if not any(t.get("key") == implied for t in taints):
                taints.append({"key": implied, "effect": "NoSchedule"})
        return taints

    def scheduling_signature(self) -> tuple[Any, ...]:
        """What the scheduler reads from the object: a change re-tries unschedulable pods."""
        spec = self.obj.get("spec", {})
        return (
            sorted(self.labels.items()),
            repr(spec.get("taints")),
            bool(spec.get("unschedulable")),
            self.allocatable,
            self.ready_status(),
        )

    def allocate_ip(self) -> str | None:
        """A free pod IP of the node's /24, or None when all 253 are taken."""
        for _ in range(253):
            candidate = self.next_ip
            self.next_ip = 2 if self.next_ip >= 254 else self.next_ip + 1
            if candidate not in self.ips_in_use:
                self.ips_in_use.add(candidate)
                return f"{self.pod_network}{candidate}"
        return None

    def release_ip(self, ip: str | None) -> None:
        if ip and ip.startswith(self.pod_network):
            self.ips_in_use.discard(int(ip.rsplit(".", 1)[1]))

    def score(self, requests: Resources) -> float:
        """Least allocated: the mean free share of CPU and memory after placing the pod."""
        after = self.used_nonzero + _nonzero(requests)
        cpu = 1 - after.cpu / self.allocatable.cpu if self.allocatable.cpu else 0.0
        memory = 1 - after.memory / self.allocatable.memory if self.allocatable.memory else 0.0
        return (cpu + memory) / 2


def _node_conditions(
    previous: list[dict[str, Any]], status: str, stamp: str
) -> list[dict[str, Any]]:
    """The four kubelet conditions; Ready=`status` (True from the kubelet, Unknown from the
    lifecycle controller), keeping `lastTransitionTime` when nothing changed."""
    known = {c.get("type"): c for c in previous}
    healthy = status == "True"
    wanted = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]  # fmt: skip
    conditions = []
    for kind, good, reason, message in wanted:
        value = good if healthy else "Unknown"
        if not healthy:
            reason, message = "NodeStatusUnknown", "Kubelet stopped posting node status."
        before = known.get(kind) or {}
        conditions.append(
            {
                "type": kind,
                "status": value,
                "lastHeartbeatTime": stamp if healthy else before.get("lastHeartbeatTime", stamp),
                "lastTransitionTime": before.get("lastTransitionTime", stamp)
                if before.get("status") == value
                else stamp,
                "reason": reason,
                "message": message,
            }
        )
    return conditions


# --------------------------------------------------------------------------------------------
# Kubelet state
# --------------------------------------------------------------------------------------------

_PROBE_FIELDS = (
    ("startupProbe", "Startup"),
    ("readinessProbe", "Readiness"),
    ("livenessProbe", "Liveness"),
)


def _probe_number(spec: dict[str, Any], key: str, default: float, minimum: float) -> float:
    value = spec.get(key)
    if value is None:
        return default
    try:
        return max(minimum, float(value))
    except (TypeError, ValueError):
        return default


@dataclass
class _Probe:
    kind: str  # Startup | Readiness | Liveness
    spec: dict[str, Any]
    next_at: float | None = None
    successes: int = 0
    failures: int = 0

    @property
    def initial_delay(self) -> float:
        return _probe_number(self.spec, "initialDelaySeconds", 0.0, 0.0)

    @property
    def period(self) -> float:
        return _probe_number(self.spec, "periodSeconds", 10.0, 0.001)

    @property
    def failure_threshold(self) -> int:
        return int(_probe_number(self.spec, "failureThreshold", 3, 1))

    @property
    def success_threshold(self) -> int:
        return int(_probe_number(self.spec, "successThreshold", 1, 1))

    def failure_detail(self, pod_ip: str | None) -> str:
        if "exec" in self.spec:
            return "command failed: exit status 1"
        if "httpGet" in self.spec:
            return "HTTP probe failed with statuscode: 503"
        port = (self.spec.get("tcpSocket") or self.spec.get("grpc") or {}).get("port", "")
        return f"dial tcp {pod_ip}:{port}: connect: connection refused"


@dataclass
class _Container:
    name: str
    image: str
    role: str  # init | sidecar | main
    plan: RunPlan
    probes: dict[str, _Probe]
    state: str = "waiting"  # waiting | running | terminated
    waiting_reason: str = "PodInitializing"
    waiting_message: str | None = None
    started_at: str | None = None
    started_mono: float = 0.0
    terminated: dict[str, Any] | None = None
    last_terminated: dict[str, Any] | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    ends_at: float | None = None
    restart_at: float | None = None
    container_id: str = ""
    post_start: dict[str, Any] | None = None
    """``lifecycle.postStart``: the kubelet runs it right after the start, and starts the next
    container only once it is done."""
    post_start_done_at: float | None = None
    """When the running postStart hook finishes (None: no hook is running)."""

    def next_event(self) -> float | None:
        times = [
            t for t in (self.ends_at, self.restart_at, self.post_start_done_at) if t is not None
        ]
        times.extend(p.next_at for p in self.probes.values() if p.next_at is not None)
        return min(times, default=None)

    def status(self) -> dict[str, Any]:
        state: dict[str, Any]
        if self.state == "running":
            state = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {"terminated": dict(self.terminated or {})}
        else:
            waiting: dict[str, Any] = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        status: dict[str, Any] = {
            "name": self.name,
            "state": state,
            "lastState": {"terminated": dict(self.last_terminated)} if self.last_terminated else {},
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": f"sandbox://{self.image}" if self.container_id else "",
            "started": self.started,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def _container(spec: dict[str, Any], role: str) -> _Container:
    probes = {kind: _Probe(kind, spec[key]) for key, kind in _PROBE_FIELDS if spec.get(key)}
    if role == "init":
        probes = {}  # regular init containers have no probes (the API rejects them)
    return _Container(
        name=str(spec.get("name", "")),
        image=str(spec.get("image", "")),
        role=role,
        plan=plan_container(spec.get("command"), spec.get("args")),
        probes=probes,
        post_start=(spec.get("lifecycle") or {}).get("postStart") or None,
    )


def _post_start_seconds(hook: dict[str, Any]) -> float:
    """How long a postStart hook runs: an exec hook as `programs.py` reads it (one that would
    run forever or is unknown is done at once, as an exec probe passes), `sleep` its seconds,
    an HTTP hook at once."""
    if "exec" in hook:
        plan = plan_container((hook.get("exec") or {}).get("command"), None)
        return plan.seconds or 0.0
    if "sleep" in hook:
        return _probe_number(hook.get("sleep") or {}, "seconds", 0.0, 0.0)
    return 0.0


@dataclass
class _PodRun:
    """One pod as its kubelet runs it."""

    uid: str
    namespace: str
    name: str
    node: str
    restart_policy: str
    host_network: bool
    init: list[_Container]
    main: list[_Container]
    start_at: float
    reference: dict[str, Any]
    sandbox_ready: bool = False
    init_done: int = 0
    mains_started: int = 0
    """How many regular containers the kubelet has started (one after another, in order)."""
    phase: str = "Pending"
    pod_ip: str | None = None
    host_ip: str | None = None
    start_time: str | None = None
    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)
    unhealthy: frozenset[str] = frozenset()
    pending_exit: tuple[str, int] | None = None
    applied_exits: set[str] = field(default_factory=set)
    deleting: bool = False
    delete_sent: bool = False
    terminal: bool = False
    wake_at: float | None = None
    written: dict[str, Any] | None = None
    seen_at: float = 0.0
    """When the kubelet first saw the pod: its active deadline counts from there."""
    deadline_at: float | None = None
    """When ``spec.activeDeadlineSeconds`` runs out (None: no deadline)."""
    reason: str | None = None
    message: str | None = None
    ip_released: bool = False

    def containers(self) -> list[_Container]:
        return [*self.init, *self.main]

    def find(self, name: str) -> _Container | None:
        return next((c for c in self.containers() if c.name == name), None)

    def next_event(self) -> float | None:
        if self.terminal:
            return None
        if not self.sandbox_ready:
            return min(self.start_at, self.deadline_at or self.start_at)
        times = [t for t in (c.next_event() for c in self.containers()) if t is not None]
        if self.deadline_at is not None:
            times.append(self.deadline_at)
        if self.pending_exit is not None:
            target = self.find(self.pending_exit[0])
            if target is not None and target.state == "running":
                times.append(0.0)
        return min(times, default=None)


def _new_run(pod: dict[str, Any], node: str, start_at: float) -> _PodRun:
    spec = pod.get("spec") or {}
    metadata = pod["metadata"]
    init = [
        _container(c, "sidecar" if c.get("restartPolicy") == "Always" else "init")
        for c in spec.get("initContainers") or []
    ]
    return _PodRun(
        uid=metadata.get("uid", ""),
        namespace=metadata.get("namespace", "default"),
        name=metadata["name"],
        node=node,
        restart_policy=spec.get("restartPolicy") or "Always",
        host_network=bool(spec.get("hostNetwork")),
        init=init,
        main=[_container(c, "main") for c in spec.get("containers") or []],
        start_at=start_at,
        reference=_pod_reference(pod),
    )


def _parse_exit_fault(value: str) -> tuple[str, int]:
    """`CONTAINER:CODE` of the exit annotation; ValueError with the expected form otherwise."""
    container, separator, code = value.rpartition(":")
    if not separator or not container:
        raise ValueError(f"{EXIT_ANNOTATION}={value!r}: expected CONTAINER:CODE, e.g. app:3")
    try:
        return container, int(code) % 256
    except ValueError:
        raise ValueError(
            f"{EXIT_ANNOTATION}={value!r}: the exit code {code!r} is not an integer"
        ) from None


# --------------------------------------------------------------------------------------------
# Kubelet
# --------------------------------------------------------------------------------------------


class _Kubelet:
    """All nodes' kubelets in one loop: a timer heap of pod wake-ups, one status write per pod
    per pass."""

    def __init__(self, sim: ClusterSimulator) -> None:
        self._sim = sim
        self.runs: dict[str, _PodRun] = {}
        self._timers: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        self._container_ids = itertools.count(1)
        self._dirty: set[str] = set()
        self._wakeup = asyncio.Event()
        # Terminal pods found at start-up and later deleted: nothing to run, only the delete.
        self._orphan_deletions: dict[str, tuple[str, str]] = {}

    # -- watch input ---------------------------------------------------------------------

    def observe(self, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        uid = metadata.get("uid", "")
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or node_name not in self._sim.nodes:
            return
        deleting = metadata.get("deletionTimestamp") is not None
        run = self.runs.get(uid)
        if run is None:
            if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
                if deleting:
                    self._orphan_deletions[uid] = (metadata.get("namespace", ""), metadata["name"])
                    self._wakeup.set()
                return
            now = asyncio.get_running_loop().time()
            run = _new_run(pod, node_name, now + self._sim.config.pod_start_delay)
            run.seen_at = now
            self.runs[uid] = run
            self._wake(run, run.start_at)
        self._read_faults(run, metadata.get("annotations") or {})
        self._read_deadline(run, pod.get("spec") or {})
        if deleting and not run.deleting:
            run.deleting = True
            self._wake(run, 0.0)

    def _read_faults(self, run: _PodRun, annotations: dict[str, str]) -> None:
        unhealthy = annotations.get(UNHEALTHY_ANNOTATION, "")
        run.unhealthy = frozenset(n.strip() for n in unhealthy.split(",") if n.strip())
        value = annotations.get(EXIT_ANNOTATION)
        if not value or value in run.applied_exits:
            return
        run.applied_exits.add(value)
        try:
            run.pending_exit = _parse_exit_fault(value)
        except ValueError as error:
            self._sim.recorder.record(
                run.reference, "Warning", "InvalidFault", str(error), self._source(run)
            )
            return
        self._wake(run, 0.0)

    def _read_deadline(self, run: _PodRun, spec: dict[str, Any]) -> None:
        """``spec.activeDeadlineSeconds`` (it may be set or lowered on a running pod): once it
        runs out, counted from when the kubelet first saw the pod, the pod fails."""
        seconds = spec.get("activeDeadlineSeconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
            return
        deadline = run.seen_at + seconds
        if run.deadline_at is None or deadline < run.deadline_at:
            run.deadline_at = deadline
            if not run.terminal:
                self._wake(run, deadline)

    def forget(self, uid: str) -> None:
        run = self.runs.pop(uid, None)
        self._dirty.discard(uid)
        self._orphan_deletions.pop(uid, None)
        if run is not None:
            self._release_ip(run)

    def _release_ip(self, run: _PodRun) -> None:
        """The pod's sandbox is gone (it terminated, or was deleted): its IP is free for
        another pod, as a CNI frees it; a terminated pod's status still shows it."""
        if run.ip_released:
            return
        run.ip_released = True
        node = self._sim.nodes.get(run.node)
        if node is not None and not run.host_network:
            node.release_ip(run.pod_ip)

    def resume_node(self, name: str) -> None:
        """The node is back: catch up on its pods and re-post their statuses."""
        for run in self.runs.values():
            if run.node == name:
                run.written = None
                self._dirty.add(run.uid)
                self._wake(run, 0.0)
        self._wakeup.set()

    # -- loop ----------------------------------------------------------------------------

    def _wake(self, run: _PodRun, at: float) -> None:
        if run.wake_at is not None and run.wake_at <= at:
            return
        run.wake_at = at
        heapq.heappush(self._timers, (at, next(self._sequence), run.uid))
        if self._timers[0][2] == run.uid:
            self._wakeup.set()

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            now = loop.time()
            # Timers due within a millisecond run together; each runs at no earlier than its
            # own time, or a pod woken a hair early would find nothing to do and re-arm forever.
            while self._timers and self._timers[0][0] <= now + 0.001:
                at, _, uid = heapq.heappop(self._timers)
                run = self.runs.get(uid)
                if run is not None and run.wake_at == at:
                    run.wake_at = None
                    try:
                        self._process(run, max(now, at))
                    except Exception:  # one odd pod must not stop every kubelet
                        logger.exception("kubelet: pod %s/%s", run.namespace, run.name)
            await self._flush()
            delay = self._timers[0][0] - loop.time() if self._timers else None
            if delay is None or delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):  # unlike wait_for, never eats a cancel
                        await self._wakeup.wait()

    def _process(self, run: _PodRun, now: float) -> None:
        node = self._sim.nodes.get(run.node)
        if node is None or node.lost:
            return  # a lost node's kubelet is silent; resume_node() picks the pod up again
        if run.deleting:
            if not run.delete_sent:
                self._terminate(run, now)
            return
        if run.deadline_at is not None and now >= run.deadline_at and not run.terminal:
            self._deadline_exceeded(run, now)
            return
        self._advance(run, now)
        wake = run.next_event()
        if wake is not None:
            self._wake(run, wake)
        self._dirty.add(run.uid)

    async def _flush(self) -> None:
        sim = self._sim
        writes = 0
        for uid in list(self._dirty):
            self._dirty.discard(uid)
            run = self.runs.get(uid)
            if run is None or not (run.sandbox_ready or run.terminal):
                continue
            node = sim.nodes.get(run.node)
            if node is None or node.lost:
                continue
            writes += self._write_status(run)
            if run.deleting and not run.delete_sent:
                run.delete_sent = True
                writes += 1
                sim.delete_pod(run.namespace, run.name, run.uid, grace_period=0)
            if writes >= WRITES_PER_SLICE:
                writes = 0
                await asyncio.sleep(0)
        for uid, (namespace, name) in list(self._orphan_deletions.items()):
            del self._orphan_deletions[uid]
            sim.delete_pod(namespace, name, uid, grace_period=0)

    def _write_status(self, run: _PodRun) -> int:
        status = self._status(run)
        if status == run.written:
            return 0
        try:
            self._sim.store.patch(
                self._sim.pods_rt,
                run.namespace,
                run.name,
                {"status": status},
                MERGE_PATCH,
                subresource="status",
            )
        except ApiError as error:
            if error.code != 404:
                logger.warning("pod %s/%s status not written: %s", run.namespace, run.name, error)
            return 1
        run.written = status
        return 1

    # -- the pod state machine -----------------------------------------------------------

    def _advance(self, run: _PodRun, now: float) -> None:
        if not run.sandbox_ready and (now < run.start_at or not self._create_sandbox(run, now)):
            return
        # Instant steps chain (an `echo` init container finishes and the next one starts);
        # the bound only guards against a rule that would keep flipping.
        for _ in range(4 * len(run.containers()) + 4):
            if run.terminal or not self._step(run, now):
                return

    def _create_sandbox(self, run: _PodRun, now: float) -> bool:
        node = self._sim.nodes[run.node]
        pod_ip = node.ip if run.host_network else node.allocate_ip()
        if pod_ip is None:
            # As a real CNI does: the pod waits in ContainerCreating and the kubelet retries.
            message = (
                "Failed to create pod sandbox: failed to allocate for range 0: "
                f"no IP addresses available in range set: {node.pod_network}0/24"
            )
            self._sim.recorder.record(
                run.reference, "Warning", "FailedCreatePodSandBox", message, self._source(run)
            )
            run.start_at = now + SANDBOX_RETRY_SECONDS
            return False
        run.sandbox_ready = True
        run.host_ip = node.ip
        run.pod_ip = pod_ip
        run.start_time = timestamp()
        return True

    def _step(self, run: _PodRun, now: float) -> bool:
        changed = self._apply_exit_fault(run, now)
        for container in run.containers():
            changed = self._tick(run, container, now) or changed
        changed = self._start_next(run, now) or changed
        if changed:
            self._settle_phase(run, now)
        return changed

    def _apply_exit_fault(self, run: _PodRun, now: float) -> bool:
        if run.pending_exit is None:
            return False
        name, code = run.pending_exit
        container = run.find(name)
        if container is None:
            run.pending_exit = None
            message = f"{EXIT_ANNOTATION}: the pod has no container named {name!r}"
            self._sim.recorder.record(
                run.reference, "Warning", "InvalidFault", message, self._source(run)
            )
            return False
        if container.state != "running":
            return False  # applied as soon as it runs
        run.pending_exit = None
        self._exit(run, container, code, now)
        return True

    def _tick(self, run: _PodRun, container: _Container, now: float) -> bool:
        if container.state == "running":
            if container.ends_at is not None and container.ends_at <= now:
                self._exit(run, container, container.plan.exit_code, now)
                return True
            if container.post_start_done_at is not None and container.post_start_done_at <= now:
                self._finish_post_start(run, container, now)
                return True
            return self._probe(run, container, now)
        if container.restart_at is not None and container.restart_at <= now:
            self._start(run, container, now)
            return True
        return False

    def _start_next(self, run: _PodRun, now: float) -> bool:
        changed = False
        while run.init_done < len(run.init):
            container = run.init[run.init_done]
            if container.state == "waiting" and not container.container_id:
                self._start(run, container, now)
                changed = True
            if container.role == "sidecar":
                done = container.started and container.post_start_done_at is None
            else:
                done = container.state == "terminated" and container.restart_at is None
                done = done and (container.terminated or {}).get("exitCode") == 0
            if not done:
                return changed
            run.init_done += 1
            changed = True
        # Regular containers start in list order; a postStart hook holds the next one until it
        # is done (kubelet: startContainer runs the hook synchronously).
        while run.mains_started < len(run.main):
            if run.mains_started and run.main[run.mains_started - 1].post_start_done_at is not None:
                return changed
            self._start(run, run.main[run.mains_started], now)
            run.mains_started += 1
            changed = True
        return changed

    def _start(self, run: _PodRun, container: _Container, now: float) -> None:
        if container.container_id:
            container.restart_count += 1
        container.container_id = f"sandbox://{next(self._container_ids):012x}"
        container.state = "running"
        container.waiting_reason, container.waiting_message = "", None
        container.started_at = timestamp()
        container.started_mono = now
        container.terminated = None
        container.restart_at = None
        seconds = container.plan.seconds
        container.ends_at = None if seconds is None else now + seconds
        for probe in container.probes.values():
            probe.successes = probe.failures = 0
            probe.next_at = None
        startup = container.probes.get("Startup")
        if startup is not None:
            container.started = False
            startup.next_at = now + startup.initial_delay
        else:
            self._mark_started(container, now)
        self._sim.recorder.record(
            {**run.reference, "fieldPath": self._field_path(run, container)},
            "Normal",
            "Started",
            f"Started container {container.name}",
            self._source(run),
        )
        if container.post_start is not None:
            container.post_start_done_at = now + _post_start_seconds(container.post_start)

    def _finish_post_start(self, run: _PodRun, container: _Container, now: float) -> None:
        """The hook is done: it passes as an exec probe of the container would (`programs.py`,
        and not while the container is marked unhealthy); a failed one kills the container,
        which then restarts by the restart policy (never, under `restartPolicy: Never`)."""
        hook = container.post_start or {}
        container.post_start_done_at = None
        command = (hook.get("exec") or {}).get("command")
        passed = container.name not in run.unhealthy and (
            "exec" not in hook or exec_probe_passes(command)
        )
        if passed:
            return
        reference = {**run.reference, "fieldPath": self._field_path(run, container)}
        self._sim.recorder.record(
            reference, "Warning", "FailedPostStartHook", "PostStartHook failed", self._source(run)
        )
        self._kill(run, container, now, "FailedPostStartHook", EXIT_SIGTERM)

    @staticmethod
    def _mark_started(container: _Container, now: float) -> None:
        container.started = True
        for kind in ("Readiness", "Liveness"):
            probe = container.probes.get(kind)
            if probe is not None:
                probe.next_at = max(now, container.started_mono + probe.initial_delay)
        # A running container without a readiness probe is ready; init containers never are.
        container.ready = container.role != "init" and "Readiness" not in container.probes

    def _probe(self, run: _PodRun, container: _Container, now: float) -> bool:
        changed = False
        for probe in list(container.probes.values()):
            if probe.next_at is None or probe.next_at > now:
                continue
            probe.next_at = now + probe.period
            passed = self._probe_passes(run, container, probe)
            if passed:
                probe.successes, probe.failures = probe.successes + 1, 0
            else:
                probe.successes, probe.failures = 0, probe.failures + 1
                self._sim.recorder.record(
                    {**run.reference, "fieldPath": self._field_path(run, container)},
                    "Warning",
                    "Unhealthy",
                    f"{probe.kind} probe failed: {probe.failure_detail(run.pod_ip)}",
                    self._source(run),
                )
            changed = self._probe_outcome(run, container, probe, passed, now) or changed
            if container.state != "running":
                return True
        return changed

    @staticmethod
    def _probe_passes(run: _PodRun, container: _Container, probe: _Probe) -> bool:
        if container.name in run.unhealthy:
            return False
        if "exec" in probe.spec:
            return exec_probe_passes((probe.spec.get("exec") or {}).get("command"))
        return True

    def _probe_outcome(
        self, run: _PodRun, container: _Container, probe: _Probe, passed: bool, now: float
    ) -> bool:
        if probe.kind == "Startup":
            if passed:
                probe.next_at = None
                self._mark_started(container, now)
                return True
            if probe.failures >= probe.failure_threshold:
                message = f"Container {container.name} failed startup probe, will be restarted"
                self._kill(run, container, now, message, EXIT_SIGKILL)
                return True
            return False
        if probe.kind == "Readiness":
            if passed and not container.ready and probe.successes >= probe.success_threshold:
                container.ready = True
                return True
            if not passed and container.ready and probe.failures >= probe.failure_threshold:
                container.ready = False
                return True
            return False
        if not passed and probe.failures >= probe.failure_threshold:
            message = f"Container {container.name} failed liveness probe, will be restarted"
            self._kill(run, container, now, message, EXIT_SIGKILL)
            return True
        return False

    def _kill(
        self, run: _PodRun, container: _Container, now: float, message: str, code: int
    ) -> None:
        self._sim.recorder.record(
            {**run.reference, "fieldPath": self._field_path(run, container)},
            "Normal",
            "Killing",
            message,
            self._source(run),
        )
        self._exit(run, container, code, now)

    def _exit(self, run: _PodRun, container: _Container, code: int, now: float) -> None:
        container.state = "terminated"
        container.terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": container.started_at,
            "finishedAt": timestamp(),
            "containerID": container.container_id,
        }
        container.ends_at = container.post_start_done_at = None
        container.ready = container.started = False
        for probe in container.probes.values():
            probe.next_at = None
        if not self._restarts(run, container, code):
            return
        backoff = min(
            self._sim.config.restart_backoff_max,
            self._sim.config.restart_backoff * 2**container.restart_count,
        )
        container.last_terminated = container.terminated
        container.terminated = None
        container.state = "waiting"
        container.waiting_reason = "CrashLoopBackOff"
        container.waiting_message = (
            f"back-off {backoff:g}s restarting failed container={container.name} "
            f"pod={run.name}_{run.namespace}({run.uid})"
        )
        container.restart_at = now + backoff
        self._sim.recorder.record(
            {**run.reference, "fieldPath": self._field_path(run, container)},
            "Warning",
            "BackOff",
            f"Back-off restarting failed container {container.name} in pod "
            f"{run.name}_{run.namespace}({run.uid})",
            self._source(run),
        )

    @staticmethod
    def _restarts(run: _PodRun, container: _Container, code: int) -> bool:
        if run.deleting or run.terminal:
            return False
        if container.role == "sidecar":
            return True
        if container.role == "init":
            return code != 0 and run.restart_policy != "Never"
        return run.restart_policy == "Always" or (run.restart_policy == "OnFailure" and code != 0)

    def _settle_phase(self, run: _PodRun, now: float) -> None:
        run.phase = self._phase(run)
        if run.phase not in TERMINAL_PHASES:
            return
        # The pod is done: sidecars are stopped and nothing restarts any more. The pod stays
        # (with its final statuses) until it is deleted.
        run.terminal = True
        for container in run.containers():
            container.restart_at = None
            if container.state == "running":
                self._exit(run, container, EXIT_SIGTERM, now)
        self._release_ip(run)

    def _deadline_exceeded(self, run: _PodRun, now: float) -> None:
        """``activeDeadlineSeconds`` ran out: as a kubelet does, stop every container
        (SIGTERM: exit 143) and fail the pod with reason DeadlineExceeded; the pod stays."""
        message = "Pod was active on the node longer than the specified deadline"
        self._sim.recorder.record(
            run.reference, "Normal", "DeadlineExceeded", message, self._source(run)
        )
        run.terminal = True  # nothing restarts any more
        for container in run.containers():
            container.restart_at = None
            if container.state == "running":
                self._kill(
                    run, container, now, f"Stopping container {container.name}", EXIT_SIGTERM
                )
        if not run.sandbox_ready:
            run.host_ip = self._sim.nodes[run.node].ip
            run.start_time = run.start_time or timestamp()
        run.phase, run.reason, run.message = "Failed", "DeadlineExceeded", message
        self._release_ip(run)
        self._dirty.add(run.uid)
        self._wakeup.set()

    @staticmethod
    def _phase(run: _PodRun) -> str:
        for container in run.init:
            code = (container.terminated or {}).get("exitCode", 0)
            if container.role == "init" and container.state == "terminated" and code != 0:
                return "Failed"  # and it will not restart (restartPolicy Never)
        if run.init_done < len(run.init) or not run.mains_started:
            return "Pending"
        mains = run.main
        if any(c.state == "running" or c.restart_at is not None for c in mains):
            return "Running"
        if mains and all(c.state == "terminated" for c in mains):
            failed = any((c.terminated or {}).get("exitCode") != 0 for c in mains)
            return "Failed" if failed else "Succeeded"
        return "Pending"

    def _terminate(self, run: _PodRun, now: float) -> None:
        """Deletion on a live node: running containers get SIGTERM (exit 143), the final
        status is written, then the pod is deleted with grace 0 (by `_flush`)."""
        if not run.sandbox_ready:
            run.delete_sent = True
            self._sim.delete_pod(run.namespace, run.name, run.uid, grace_period=0)
            return
        for container in run.containers():
            container.restart_at = None
            if container.state == "running":
                message = f"Stopping container {container.name}"
                self._kill(run, container, now, message, EXIT_SIGTERM)
        run.terminal = True
        phase = self._phase(run)
        run.phase = phase if phase in TERMINAL_PHASES else "Failed"
        self._release_ip(run)
        self._dirty.add(run.uid)
        self._wakeup.set()

    # -- status --------------------------------------------------------------------------

    def _status(self, run: _PodRun) -> dict[str, Any]:
        status: dict[str, Any] = {
            "phase": run.phase,
            "conditions": self._conditions(run),
            "hostIP": run.host_ip,
            "hostIPs": [{"ip": run.host_ip}],
            "startTime": run.start_time,
            "containerStatuses": [c.status() for c in run.main],
        }
        if run.pod_ip:  # none when the pod failed before its sandbox was created
            status["podIP"] = run.pod_ip
            status["podIPs"] = [{"ip": run.pod_ip}]
        if run.reason:
            status["reason"] = run.reason
            status["message"] = run.message
        if run.init:
            status["initContainerStatuses"] = [c.status() for c in run.init]
        return status

    def _conditions(self, run: _PodRun) -> list[dict[str, Any]]:
        incomplete = [c.name for c in run.init[run.init_done :] if c.role == "init"]
        unready = [c.name for c in [*run.init, *run.main] if c.role != "init" and not c.ready]
        if run.terminal:
            ready = ("False", "PodCompleted", "")
        elif unready:
            ready = (
                "False",
                "ContainersNotReady",
                f"containers with unready status: [{' '.join(unready)}]",
            )
        else:
            ready = ("True", "", "")
        if run.init_done >= len(run.init):
            initialized = ("True", "", "")
        elif run.terminal:
            initialized = ("False", "PodCompleted", "")
        else:
            message = f"containers with incomplete status: [{' '.join(incomplete)}]"
            initialized = ("False", "ContainersNotInitialized", message)
        wanted = [
            ("PodReadyToStartContainers", ("False", "", "") if run.terminal else ("True", "", "")),
            ("Initialized", initialized),
            ("Ready", ready),
            ("ContainersReady", ready),
            ("PodScheduled", ("True", "", "")),
        ]
        stamp = timestamp()
        conditions = []
        for kind, (value, reason, message) in wanted:
            previous = run.transitions.get(kind)
            if previous is None or previous[0] != value:
                run.transitions[kind] = previous = (value, stamp)
            condition: dict[str, Any] = {
                "type": kind,
                "status": value,
                "lastProbeTime": None,
                "lastTransitionTime": previous[1],
            }
            if reason:
                condition["reason"] = reason
            if message:
                condition["message"] = message
            conditions.append(condition)
        return conditions

    @staticmethod
    def _field_path(run: _PodRun, container: _Container) -> str:
        if container.role == "main":
            return f"spec.containers{{{container.name}}}"
        return f"spec.initContainers{{{container.name}}}"

    @staticmethod
    def _source(run: _PodRun) -> dict[str, str]:
        return {"component": "kubelet", "host": run.node}


# --------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------

_AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
_PORTS_TAKEN = "node(s) didn't have free ports for the requested pod ports"
_CORDONED = "node(s) were unschedulable"
_SCHEDULING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
_NODE_CONTROLLER = {"component": "node-controller"}
_SCHEDULER = {"component": DEFAULT_SCHEDULER}


@dataclass
class _Unschedulable:
    message: str
    attempts: int
    tried_at: float
    not_before: float  # end of the back-off


@dataclass
class _Placement:
    node: str
    requests: Resources
    ports: list[tuple[str, str, int]]


def _needs_scheduling(pod: dict[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    return (
        not spec.get("nodeName")
        and (spec.get("schedulerName") or DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER
        and pod["metadata"].get("deletionTimestamp") is None
        and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES
    )


class ClusterSimulator:
    """Simulated nodes, scheduler, kubelets and node lifecycle controller over a sandbox Store.

    `await sim.start()` registers (or adopts) the nodes and starts the loops; `await sim.stop()`
    cancels them. Everything else happens through the API: create pods, annotate, cordon.
    """

    def __init__(
        self, store: Store, registry: Registry, config: ClusterConfig | None = None
    ) -> None:
        self.store = store
        self.config = config or ClusterConfig()
        self.pods_rt = registry.get("", "v1", "pods")
        self.nodes_rt = registry.get("", "v1", "nodes")
        self.namespaces_rt = registry.get("", "v1", "namespaces")
        self.configmaps_rt = registry.get("", "v1", "configmaps")
        self.recorder = _EventRecorder(
            store, registry.get("", "v1", "events"), self.config.post_events
        )
        self.nodes: dict[str, _Node] = {}
        self._node_order: list[_Node] = []
        self._node_count = 0
        self._pods: dict[str, dict[str, Any]] = {}
        self._placements: dict[str, _Placement] = {}
        self._assumed: set[str] = set()  # bound by us, the watch has not shown it yet
        self._queue: dict[str, None] = {}  # an ordered set: pods to schedule, oldest first
        self._unschedulable: dict[str, _Unschedulable] = {}
        self._schedule_wakeup = asyncio.Event()
        self._retry_handle: asyncio.TimerHandle | None = None
        self._cluster_changed_at = float("-inf")
        self._evicted: set[str] = set()
        self._noexecute_seen: dict[tuple[str, str], float] = {}
        self._kubelet = _Kubelet(self)
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._tasks:
            raise RuntimeError("ClusterSimulator is already started")
        self._register_nodes()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._watch(self.nodes_rt, self._on_node, self._resync_nodes)),
            loop.create_task(self._watch(self.pods_rt, self._on_pod, self._resync_pods)),
            loop.create_task(
                self._watch(self.namespaces_rt, self._on_namespace, self._resync_namespaces)
            ),
            loop.create_task(self._schedule_forever()),
            loop.create_task(self._kubelet.run_forever()),
            loop.create_task(self._node_loop()),
        ]

    async def stop(self) -> None:
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def __aenter__(self) -> ClusterSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- shared helpers ------------------------------------------------------------------

    def delete_pod(
        self, namespace: str, name: str, uid: str, *, grace_period: int | None = None
    ) -> None:
        options: dict[str, Any] = {"preconditions": {"uid": uid}}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        try:
            self.store.delete(self.pods_rt, namespace, name, options)
        except ApiError as error:
            if error.code not in (404, 409):
                logger.warning("pod %s/%s not deleted: %s", namespace, name, error)

    def _patch_pod_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        try:
            self.store.patch(
                self.pods_rt,
                metadata.get("namespace"),
                metadata["name"],
                {"status": status},
                MERGE_PATCH,
                subresource="status",
            )
        except ApiError as error:
            if error.code != 404:
                logger.warning("pod %s status not written: %s", metadata["name"], error)

    def _patch_node(self, node: _Node, patch: dict[str, Any], subresource: str | None) -> bool:
        try:
            updated = self.store.patch(
                self.nodes_rt, None, node.name, patch, MERGE_PATCH, subresource=subresource
            )
        except ApiError as error:
            if error.code != 404:
                logger.warning("node %s not updated: %s", node.name, error)
            return False
        self._update_node(node, updated)
        return True

    async def _watch(
        self,
        rt: ResourceType,
        on_event: Callable[[str, dict[str, Any]], None],
        resync: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        """List, then watch from the list's resourceVersion; re-list on 410 or a dropped watch."""
        while True:
            try:
                listing = self.store.list(rt, None)
                resync(listing.get("items") or [])
                rv = listing["metadata"]["resourceVersion"]
                watch = self.store.watch(rt, None, resource_version=rv)
                try:
                    async for event in watch:
                        on_event(event["type"], event["object"])
                finally:
                    watch.close()
            except ApiError as error:
                logger.info("re-listing %s after %s", rt.plural, error)
            except Exception:
                logger.exception("the %s watch of the cluster simulator failed", rt.plural)
                await asyncio.sleep(0.5)
            await asyncio.sleep(0)

    # -- namespaces ----------------------------------------------------------------------

    def _on_namespace(self, kind: str, namespace: dict[str, Any]) -> None:
        """The `kube-root-ca.crt` ConfigMap kube-controller-manager's root CA publisher gives
        every namespace (its `default` ServiceAccount comes with the namespace: see Store)."""
        metadata = namespace["metadata"]
        if kind == "DELETED" or metadata.get("deletionTimestamp"):
            return
        try:
            self.store.create(self.configmaps_rt, metadata["name"], ROOT_CA_CONFIG_MAP)
        except ApiError as error:
            if error.code not in (403, 404, 409):  # 403/404: the namespace is going away
                logger.warning(
                    "kube-root-ca.crt of namespace %s not created: %s", metadata["name"], error
                )

    def _resync_namespaces(self, namespaces: list[dict[str, Any]]) -> None:
        for namespace in namespaces:
            self._on_namespace("ADDED", namespace)

    # -- nodes ---------------------------------------------------------------------------

    def _register_nodes(self) -> None:
        existing = {
            item["metadata"]["name"]: item
            for item in self.store.list(self.nodes_rt, None).get("items") or []
        }
        for name, zone in self.config.node_names():
            obj = existing.pop(name, None)
            if obj is None:
                obj = self.store.create(self.nodes_rt, None, self._new_node(name, zone))
            self._add_node(obj)
        for obj in existing.values():
            self._add_node(obj)
        # Register with a full status at once, so pods created right after start() fit.
        now = asyncio.get_running_loop().time()
        for node in self._node_order:
            if not node.lost:
                self._heartbeat(node, now)

    def _new_node(self, name: str, zone: str) -> dict[str, Any]:
        index = self._node_count
        labels = {
            **self.config.node_labels,
            ZONE_LABEL: zone,
            REGION_LABEL: REGION,
            INSTANCE_TYPE_LABEL: self.config.instance_type,
            ARCH_LABEL: self.config.arch,
            OS_LABEL: self.config.os,
            HOSTNAME_LABEL: name,
        }
        cidr = f"{_pod_network(index)}0/24"
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr], "providerID": f"sandbox://{zone}/{name}"},
        }

    def _add_node(self, obj: dict[str, Any]) -> _Node:
        index = self._node_count
        self._node_count += 1
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
        cidr = (obj.get("spec") or {}).get("podCIDR") or ""
        node = _Node(
            name=name,
            obj=obj,
            ip=addresses.get("InternalIP") or f"10.0.{index // 250}.{index % 250 + 10}",
            pod_network=cidr.rsplit(".", 1)[0] + "."
            if cidr.endswith(".0/24")
            else _pod_network(index),
            allocatable=self._allocatable(obj),
            last_heartbeat=asyncio.get_running_loop().time(),
        )
        self.nodes[name] = node
        self._node_order = sorted(self.nodes.values(), key=lambda n: n.name)
        return node

    def _allocatable(self, obj: dict[str, Any]) -> Resources:
        offered = (obj.get("status") or {}).get("allocatable") or {}
        try:
            return Resources(
                cpu_millicores(offered.get("cpu", self.config.cpu)),
                memory_bytes(offered.get("memory", self.config.memory)),
                whole_count(offered.get("pods", self.config.pods)),
                _extended_counts(offered),
            )
        except ValueError as error:
            logger.warning("node %s: status.allocatable: %s", obj["metadata"]["name"], error)
            return Resources()

    def _full_node_status(self, node: _Node, conditions: list[dict[str, Any]]) -> dict[str, Any]:
        current = node.obj.get("status") or {}
        config = self.config
        offered = {"cpu": config.cpu, "memory": config.memory, "pods": config.pods}
        offered["ephemeral-storage"] = "100Gi"
        labels = node.labels
        return {
            "capacity": current.get("capacity") or offered,
            "allocatable": current.get("allocatable") or offered,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": node.ip},
                {"type": "Hostname", "address": node.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": f"sandbox-{node.name}",
                "systemUUID": f"sandbox-{node.name}",
                "bootID": f"sandbox-{node.name}",
                "kernelVersion": "6.1.0-sandbox",
                "osImage": "ecs-operator sandbox",
                "containerRuntimeVersion": "sandbox://1.0",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": labels.get(OS_LABEL, config.os),
                "architecture": labels.get(ARCH_LABEL, config.arch),
            },
        }

    def _on_node(self, kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self._remove_node(name)
            return
        node = self.nodes.get(name)
        if node is None:
            self._add_node(obj)
            self._retry_unschedulable()
            return
        self._update_node(node, obj)

    def _update_node(self, node: _Node, obj: dict[str, Any]) -> None:
        signature, was_lost = node.scheduling_signature(), node.lost
        node.obj = obj
        node.allocatable = self._allocatable(obj)
        if was_lost and not node.lost:
            node.last_heartbeat = float("-inf")  # heartbeat on the next tick
            self._kubelet.resume_node(node.name)
        if node.scheduling_signature() != signature:
            self._retry_unschedulable()

    def _resync_nodes(self, items: list[dict[str, Any]]) -> None:
        listed = {item["metadata"]["name"] for item in items}
        for name in [n for n in self.nodes if n not in listed]:
            self._remove_node(name)
        for item in items:
            self._on_node("MODIFIED", item)

    def _remove_node(self, name: str) -> None:
        if self.nodes.pop(name, None) is None:
            return
        self._node_order = sorted(self.nodes.values(), key=lambda n: n.name)
        # The pod garbage collector deletes the pods of a node that no longer exists.
        for uid, pod in list(self._pods.items()):
            if (pod.get("spec") or {}).get("nodeName") == name:
                self.delete_pod(
                    pod["metadata"].get("namespace", ""),
                    pod["metadata"]["name"],
                    uid,
                    grace_period=0,
                )

    async def _node_loop(self) -> None:
        loop = asyncio.get_running_loop()
        tick = min(self.config.heartbeat_interval, self.config.node_monitor_grace) / 4
        while True:
            now = loop.time()
            for node in list(self._node_order):
                due = now - node.last_heartbeat >= self.config.heartbeat_interval
                if not node.lost and (due or not node.full_status_written):
                    self._heartbeat(node, now)
            for node in list(self._node_order):
                self._monitor(node, now)
            self._evict_by_taints()
            await asyncio.sleep(tick)

    def _heartbeat(self, node: _Node, now: float) -> None:
        previous = (node.obj.get("status") or {}).get("conditions") or []
        conditions = _node_conditions(previous, "True", timestamp())
        node.last_heartbeat = now
        if node.full_status_written and conditions == previous:
            return  # same second, nothing new: no write
        if node.full_status_written:
            status = {"conditions": conditions}
        else:
            status = self._full_node_status(node, conditions)
        if not self._patch_node(node, {"status": status}, "status"):
            return
        node.full_status_written = True
        if node.marked_unknown:
            node.marked_unknown = False
            self._node_event(
                node, "Normal", "NodeReady", f"Node {node.name} status is now: NodeReady"
            )

    def _monitor(self, node: _Node, now: float) -> None:
        """The node lifecycle controller's view of one node."""
        silent = now - node.last_heartbeat > self.config.node_monitor_grace
        if silent and not node.marked_unknown:
            self._mark_unknown(node)
        elif not silent and any(t.get("key") == UNREACHABLE_TAINT for t in node.taints):
            kept = [t for t in node.taints if t.get("key") != UNREACHABLE_TAINT]
            self._patch_node(node, {"spec": {"taints": kept or None}}, None)

    def _mark_unknown(self, node: _Node) -> None:
        stamp = timestamp()
        previous = (node.obj.get("status") or {}).get("conditions") or []
        if not self._patch_node(
            node, {"status": {"conditions": _node_conditions(previous, "Unknown", stamp)}}, "status"
        ):
            return
        node.marked_unknown = True
        taints = [t for t in node.taints if t.get("key") != UNREACHABLE_TAINT]
        taints.append({"key": UNREACHABLE_TAINT, "effect": "NoSchedule"})
        taints.append({"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": stamp})
        self._patch_node(node, {"spec": {"taints": taints}}, None)
        self._node_event(
            node, "Normal", "NodeNotReady", f"Node {node.name} status is now: NodeNotReady"
        )
        for uid in list(node.pods):
            pod = self._pods.get(uid)
            if pod is not None:
                self._mark_pod_not_ready(pod, stamp)

    def _mark_pod_not_ready(self, pod: dict[str, Any], stamp: str) -> None:
        conditions = [dict(c) for c in (pod.get("status") or {}).get("conditions") or []]
        for condition in conditions:
            if condition.get("type") == "Ready" and condition.get("status") != "False":
                condition.update(status="False", lastTransitionTime=stamp)
                self._patch_pod_status(pod, {"conditions": conditions})
                return

    def _node_event(self, node: _Node, event_type: str, reason: str, message: str) -> None:
        involved = {
            "apiVersion": "v1",
            "kind": "Node",
            "name": node.name,
            "uid": node.obj["metadata"].get("uid", node.name),
        }
        self.recorder.record(involved, event_type, reason, message, _NODE_CONTROLLER)

    def _evict_by_taints(self) -> None:
        """The taint manager: pods leave a NoExecute-tainted node once their toleration ends."""
        wall = time.time()
        for node in self._node_order:
            taints = [t for t in node.taints if t.get("effect") == "NoExecute"]
            if not taints:
                continue
            since = max(self._noexecute_since(node, taint, wall) for taint in taints)
            for uid in list(node.pods):
                pod = self._pods.get(uid)
                if pod is None or uid in self._evicted or pod["metadata"].get("deletionTimestamp"):
                    continue
                delay = eviction_delay((pod.get("spec") or {}).get("tolerations") or [], taints)
                if delay is not None and wall >= since + delay:
                    self._evict(pod, uid)

    def _noexecute_since(self, node: _Node, taint: dict[str, Any], wall: float) -> float:
        added = _parse_timestamp(taint.get("timeAdded"))
        if added is not None:
            return added
        return self._noexecute_seen.setdefault((node.name, str(taint.get("key"))), wall)

    def _evict(self, pod: dict[str, Any], uid: str) -> None:
        self._evicted.add(uid)
        metadata = pod["metadata"]
        namespace, name = metadata.get("namespace", ""), metadata["name"]
        conditions = [
            c for c in (pod.get("status") or {}).get("conditions") or []
            if c.get("type") != "DisruptionTarget"
        ]  # fmt: skip
        conditions.append(
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
                "lastTransitionTime": timestamp(),
                "lastProbeTime": None,
            }
        )
        self._patch_pod_status(pod, {"conditions": conditions})
        self.recorder.record(
            _pod_reference(pod),
            "Normal",
            "TaintManagerEviction",
            f"Marking for deletion Pod {namespace}/{name}",
            {"component": "taint-eviction-controller"},
        )
        self.delete_pod(namespace, name, uid)

    # -- pods ----------------------------------------------------------------------------

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"].get("uid", "")
        if kind == "DELETED":
            self._forget_pod(uid)
            return
        previous = self._pods.get(uid)
        self._pods[uid] = pod
        spec = pod.get("spec") or {}
        if spec.get("nodeName"):
            self._assumed.discard(uid)
        self._account(uid, pod)
        if _needs_scheduling(pod):
            retry = uid in self._unschedulable
            changed = previous is not None and previous.get("spec") != spec
            if uid not in self._assumed and (not retry or changed):
                self._queue[uid] = None
                self._schedule_wakeup.set()
        else:
            self._unschedulable.pop(uid, None)
        self._kubelet.observe(pod)

    def _resync_pods(self, items: list[dict[str, Any]]) -> None:
        listed = {item["metadata"].get("uid", "") for item in items}
        for uid in [u for u in self._pods if u not in listed]:
            self._forget_pod(uid)
        for item in items:
            self._on_pod("MODIFIED", item)

    def _forget_pod(self, uid: str) -> None:
        self._pods.pop(uid, None)
        self._release(uid)
        self._queue.pop(uid, None)
        self._unschedulable.pop(uid, None)
        self._assumed.discard(uid)
        self._evicted.discard(uid)
        self._kubelet.forget(uid)
        self.recorder.forget(uid)

    def _account(self, uid: str, pod: dict[str, Any]) -> None:
        """Keep node usage in step: a bound, non-terminal pod counts on its node."""
        spec = pod.get("spec") or {}
        node_name = spec.get("nodeName")
        live = (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES
        target = node_name if node_name and live and node_name in self.nodes else None
        if target is None and uid in self._assumed:
            return
        current = self._placements.get(uid)
        if (current.node if current else None) == target:
            return
        self._release(uid)
        if target is not None:
            try:
                requests = pod_requests(spec)
            except ValueError:
                requests = Resources(pods=1)
            self._place(uid, target, requests, host_ports(spec))

    def _place(
        self, uid: str, node_name: str, requests: Resources, ports: list[tuple[str, str, int]]
    ) -> None:
        node = self.nodes[node_name]
        node.used += requests
        node.used_nonzero += _nonzero(requests)
        node.ports.update(ports)
        node.pods.add(uid)
        self._placements[uid] = _Placement(node_name, requests, ports)

    def _release(self, uid: str) -> None:
        placement = self._placements.pop(uid, None)
        if placement is None:
            return
        node = self.nodes.get(placement.node)
        if node is not None:
            node.used -= placement.requests
            node.used_nonzero -= _nonzero(placement.requests)
            node.ports.subtract(placement.ports)
            node.ports = +node.ports
            node.pods.discard(uid)
        self._retry_unschedulable()

    # -- scheduler -----------------------------------------------------------------------

    async def _schedule_forever(self) -> None:
        while True:
            await self._schedule_wakeup.wait()
            self._schedule_wakeup.clear()
            attempts = 0
            while self._queue:
                uid = next(iter(self._queue))
                del self._queue[uid]
                pod = self._pods.get(uid)
                if pod is None or uid in self._assumed or not _needs_scheduling(pod):
                    continue
                self._schedule(pod)
                attempts += 1
                if attempts % WRITES_PER_SLICE == 0:
                    await asyncio.sleep(0)

    def _schedule(self, pod: dict[str, Any]) -> None:
        spec = pod.get("spec") or {}
        try:
            requests = pod_requests(spec)
        except ValueError as error:
            self._mark_unschedulable(pod, str(error))
            return
        ports = host_ports(spec)
        tolerations = spec.get("tolerations") or []
        reasons: Counter[str] = Counter()
        best: _Node | None = None
        best_score = 0.0
        for node in self._node_order:
            misfit = self._misfit(node, spec, requests, ports, tolerations)
            if misfit:
                reasons.update(misfit)
                continue
            score = node.score(requests)
            if best is None or score > best_score:
                best, best_score = node, score
        if best is None:
            self._mark_unschedulable(pod, unschedulable_message(len(self._node_order), reasons))
            return
        self._bind(pod, best, requests, ports)

    @staticmethod
    def _misfit(
        node: _Node,
        spec: dict[str, Any],
        requests: Resources,
        ports: list[tuple[str, str, int]],
        tolerations: list[dict[str, Any]],
    ) -> list[str]:
        """Why the pod cannot go to this node (empty: it fits), in kube-scheduler's filter
        order and words."""
        cordon = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
        if node.unschedulable and not any(tolerates(t, cordon) for t in tolerations):
            return [_CORDONED]
        taint = _untolerated(tolerations, node.effective_taints(), _SCHEDULING_EFFECTS)
        if taint is not None:
            return [
                f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
            ]
        if not node_selection_matches(spec, node.name, node.labels):
            return [_AFFINITY_MISMATCH]
        if ports and _ports_conflict(ports, node.ports):
            return [_PORTS_TAKEN]
        free = node.allocatable - node.used
        short = []
        if requests.pods > free.pods:
            short.append("Too many pods")
        if requests.cpu and requests.cpu > free.cpu:
            short.append("Insufficient cpu")
        if requests.memory and requests.memory > free.memory:
            short.append("Insufficient memory")
        available = dict(free.extended)
        short.extend(
            f"Insufficient {name}"
            for name, count in requests.extended
            if count > available.get(name, 0)
        )
        return short

    def _bind(
        self,
        pod: dict[str, Any],
        node: _Node,
        requests: Resources,
        ports: list[tuple[str, str, int]],
    ) -> None:
        metadata = pod["metadata"]
        namespace, name, uid = metadata.get("namespace", ""), metadata["name"], metadata.get("uid")
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node.name},
        }
        try:
            self.store.bind(namespace, name, binding)
        except ApiError as error:
            if error.code not in (404, 409):  # gone, or already bound: nothing to do
                logger.warning("pod %s/%s not bound: %s", namespace, name, error)
                self._mark_unschedulable(pod, f"binding rejected: {error.message}")
            return
        self._assumed.add(uid or "")
        self._place(uid or "", node.name, requests, ports)
        self._unschedulable.pop(uid or "", None)
        self.recorder.record(
            _pod_reference(pod),
            "Normal",
            "Scheduled",
            f"Successfully assigned {namespace}/{name} to {node.name}",
            _SCHEDULER,
        )

    def _mark_unschedulable(self, pod: dict[str, Any], message: str) -> None:
        uid = pod["metadata"].get("uid", "")
        loop = asyncio.get_running_loop()
        entry = self._unschedulable.get(uid)
        attempts = entry.attempts + 1 if entry else 1
        backoff = min(
            self.config.unschedulable_backoff_max,
            self.config.unschedulable_backoff * 2 ** (attempts - 1),
        )
        now = loop.time()
        self._unschedulable[uid] = _Unschedulable(message, attempts, now, now + backoff)
        conditions = (pod.get("status") or {}).get("conditions") or []
        scheduled: dict[str, Any] = next(
            (c for c in conditions if c.get("type") == "PodScheduled"), {}
        )
        if scheduled.get("message") != message or scheduled.get("status") != "False":
            stamp = timestamp()
            condition = {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": scheduled.get("lastTransitionTime", stamp)
                if scheduled.get("status") == "False"
                else stamp,
            }
            others = [c for c in conditions if c.get("type") != "PodScheduled"]
            self._patch_pod_status(pod, {"conditions": [*others, condition]})
        self.recorder.record(
            _pod_reference(pod), "Warning", "FailedScheduling", message, _SCHEDULER, key=""
        )

    def _retry_unschedulable(self) -> None:
        """A cluster change: every unschedulable pod is tried again once, after its back-off."""
        if not self._unschedulable:
            return
        loop = asyncio.get_running_loop()
        self._cluster_changed_at = loop.time()
        if self._retry_handle is None:
            self._retry_handle = loop.call_later(
                self.config.unschedulable_backoff, self._requeue_unschedulable
            )

    def _requeue_unschedulable(self) -> None:
        self._retry_handle = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        later = []
        for uid, entry in self._unschedulable.items():
            if entry.tried_at > self._cluster_changed_at:
                continue  # tried since the last change: nothing new to try it against
            if entry.not_before <= now:
                self._queue[uid] = None
            else:
                later.append(entry.not_before)
        if later:
            self._retry_handle = loop.call_at(min(later), self._requeue_unschedulable)
        if self._queue:
            self._schedule_wakeup.set()


def _pod_network(index: int) -> str:
    return f"10.{244 + index // 256}.{index % 256}."
