"""The controller-level tier's cluster: the objects of a small ECS cluster stored in a
`FakeKube`, and an `Operator` (caches, Task and Service controllers) in front of it.

A test calls `await operator.tasks.reconcile(key)` and asserts the requests the controller
sent (`kube.written()`). Nothing reaches the caches but what the operator itself records and
what `catch_up` delivers (the watch catching up with the API), so a test chooses how far
behind the watch is; `Operator(kube)` primes its caches from the API as a restarted operator
does.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.controllers.cache import Key, ObjectCache, object_key
from ecs_operator.controllers.context import OperatorContext, OperatorOptions
from ecs_operator.controllers.feeds import FEEDS, WatchedKind
from ecs_operator.controllers.loadbalancers import LoadBalancerController
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.services import ServiceController
from ecs_operator.controllers.taskdefinitions import TaskDefinitionController
from ecs_operator.controllers.tasks import TaskController
from ecs_operator.controllers.watches import Controllers
from ecs_operator.core.placement import ZONE_LABEL
from ecs_operator.core.revisions import controller_revision_manifest
from ecs_operator.kube.client import (
    CONTROLLER_REVISIONS,
    NAMESPACES,
    NODES,
    PODS,
    TASK_DEFINITIONS,
    KubeClient,
)
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.taskdefinition import TaskDefinitionSpec
from support.fake_kube import FakeKube
from support.podfactory import started, terminated

NAMESPACE = "ns"
FAMILY = "web"
ZONES = ("zone-a", "zone-b", "zone-c")
ECS = f"{API_GROUP}/{API_VERSION}"
# How long `Operator.process` leaves a failed reconcile to be retried: the work queue's first
# retries come after 0.05 s and 0.1 s.
RETRY_WINDOW_SECONDS = 0.2

# The cache each watched kind feeds, as the operator's watches feed them.


def cluster() -> FakeKube:
    """An API server holding namespace `ns`, a node in each of three zones and the task
    definition `web` (one container) with its revision 1 registered."""
    kube = FakeKube()
    kube.seed(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    for number, zone in enumerate(ZONES, 1):
        kube.seed(NODES, node(f"node-{number}", zone))
    spec = TaskDefinitionSpec.model_validate(
        {"containerDefinitions": [{"name": "app", "image": "nginx:1.27", "memory": 128}]}
    )
    definition = kube.seed(
        TASK_DEFINITIONS,
        {
            "apiVersion": ECS,
            "kind": "TaskDefinition",
            "metadata": {"name": FAMILY, "namespace": NAMESPACE},
            "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        },
    )
    kube.seed(
        CONTROLLER_REVISIONS,
        controller_revision_manifest(
            FAMILY,
            NAMESPACE,
            definition["metadata"]["uid"],
            1,
            1,
            spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        ),
    )
    return kube


def node(name: str, zone: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {ZONE_LABEL: zone}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def task(name: str) -> dict[str, Any]:
    """A standalone Task (RunTask) of the latest revision of `web`."""
    return {
        "apiVersion": ECS,
        "kind": "Task",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"taskDefinition": FAMILY},
    }


def service(name: str, desired_count: int) -> dict[str, Any]:
    return {
        "apiVersion": ECS,
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"taskDefinition": FAMILY, "desiredCount": desired_count},
    }


def run_pods(kube: FakeKube) -> None:
    """The kubelets: every Pod not yet running now runs (a write of theirs, not the
    operator's: not recorded as a request)."""
    for pod in kube.all_stored(PODS):
        if (pod.get("status") or {}).get("phase") != "Running":
            kube.put(PODS, started(pod))


def service_events(kube: FakeKube) -> list[str]:
    """The messages of the Events written about Services."""
    return [
        r.body["message"]
        for r in kube.written()
        if (r.verb, r.plural) == ("create", "events")
        and r.body["involvedObject"]["kind"] == "Service"
    ]


def exit_pod(kube: FakeKube, task: str, code: int) -> None:
    """The kubelet: the containers of ``task``'s Pod exit with ``code``."""
    [pod] = [p for p in kube.all_stored(PODS) if p["metadata"]["name"] == task]
    status = pod["status"] | {
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [terminated(c["name"], code) for c in pod["spec"]["containers"]],
    }
    kube.put(PODS, pod | {"status": status})


class ReconcileMetrics(OperatorMetrics):
    """The operator's metrics, also telling when a work queue has run a reconcile."""

    def __init__(self, context: OperatorContext) -> None:
        super().__init__(context)
        self.reconciled = asyncio.Event()

    def observe_reconcile(self, kind: str, seconds: float, ok: bool) -> None:
        super().observe_reconcile(kind, seconds, ok)
        self.reconciled.set()


class Operator:
    """An operator's caches and its Task, Service and LoadBalancer controllers, as
    `ecs-operator run` wires them, on `kube`; created, its caches hold what the API holds (a
    restart's priming)."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.context = OperatorContext(OperatorOptions(), kube)
        self.metrics = ReconcileMetrics(self.context)
        events = EventRecorder(kube)
        self.tasks = TaskController(self.context, events, self.metrics)
        self.services = ServiceController(self.context, events, self.metrics)
        self.load_balancers = LoadBalancerController(self.context, events, self.metrics)
        self._deletions_seen = 0
        self.catch_up()

    def catch_up(self) -> None:
        """The watches catch up with the API: every object written and every deletion since
        the last time reach the caches."""
        for feed in FEEDS.values():
            for body in self.kube.all_stored(feed.resource):
                self.context.record(feed.resource, "MODIFIED", body)
        for kind, body in self.kube.deleted[self._deletions_seen :]:
            feed = FEEDS.get(WatchedKind(*kind))
            if feed is not None:
                self.context.record(feed.resource, "DELETED", body)
        self._deletions_seen = len(self.kube.deleted)

    async def converge(self) -> None:
        """Reconcile every Service and Task until a round writes nothing, the kubelets running
        every Pod and the watches catching up between rounds."""
        for _ in range(10):
            before = len(self.kube.written())
            for key in keys(self.context.services):
                await self.services.reconcile(key)
            self.catch_up()
            for key in keys(self.context.tasks):
                await self.tasks.reconcile(key)
            run_pods(self.kube)
            self.catch_up()
            if len(self.kube.written()) == before:
                return
        raise AssertionError(f"still writing after 10 rounds: {self.kube.written()[-5:]}")

    async def process(self, controller: TaskController | ServiceController, key: Key) -> None:
        """Reconcile `key` through the controller's work queue, as the running operator does,
        and give a failure the time to be retried."""
        controller.start()
        controller.enqueue(key)
        await asyncio.wait_for(self.metrics.reconciled.wait(), 5)
        await asyncio.sleep(RETRY_WINDOW_SECONDS)
        await controller.stop()

    def reconciles(self, queue: str) -> int:
        """The reconciles the work queue named `queue` ran, succeeded or failed."""
        return sum(
            int(
                self.metrics.registry.get_sample_value(
                    "ecs_operator_reconcile_total", {"kind": queue, "result": result}
                )
                or 0
            )
            for result in ("ok", "error")
        )


def keys(cache: ObjectCache) -> list[Key]:
    return [object_key(body) for body in cache.values()]


class Recorder:
    """A controller's work queue, recording what it is asked to reconcile, under that
    controller's triggers."""

    def __init__(self, controller: type[Any]) -> None:
        self.TRIGGERS = controller.TRIGGERS
        self.keys: list[Key] = []

    def enqueue(self, key: Key) -> None:
        self.keys.append(key)


def recording_controllers(
    options: OperatorOptions | None = None, kube: KubeClient | None = None
) -> tuple[Controllers, dict[str, Recorder]]:
    """The operator's wiring (`Controllers`) with a `Recorder` for each controller, by name,
    on `kube` (None: no API at all)."""
    context = OperatorContext(options or OperatorOptions(), cast(KubeClient, kube))
    recorders = {
        "tasks": Recorder(TaskController),
        "task_definitions": Recorder(TaskDefinitionController),
        "services": Recorder(ServiceController),
        "load_balancers": Recorder(LoadBalancerController),
    }
    wired: Any = list(recorders.values())
    return Controllers(context, OperatorMetrics(context), *wired), recorders
