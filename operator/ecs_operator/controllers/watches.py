"""What the operator watches, what each watch event updates and wakes, and when the controllers
start. No Kopf here: `kopf_adapter` delivers the events and listings of its watch streams.

Every event only records the object in its kind's cache and enqueues the keys to reconcile,
so a resync of a converged cluster writes nothing.

The caches are filled from the watch streams' own listings (`Listings`), as client-go's
informers are: one LIST per kind at start, and after every relist (410 Expired, a failed
stream) what the listing no longer has was deleted while no watch was looking. The
controllers start once every kind has been listed, so that no decision is ever made from a
half-filled cache (after a restart, a half-filled cache would make a Service launch tasks it
already has).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ecs_operator.controllers.cache import ObjectCache, object_key, owner_name
from ecs_operator.controllers.context import OperatorContext, OperatorOptions
from ecs_operator.controllers.loadbalancers import LoadBalancerController
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.services import ServiceController
from ecs_operator.controllers.taskdefinitions import TaskDefinitionController
from ecs_operator.controllers.tasks import TaskController
from ecs_operator.core import labels
from ecs_operator.kube.client import (
    CONTROLLER_REVISIONS,
    ENDPOINT_SLICES,
    KUBERNETES_SERVICES,
    LOAD_BALANCERS,
    NAMESPACES,
    NODES,
    PODS,
    SERVICES,
    TASK_DEFINITIONS,
    TASKS,
    KubeClient,
    Resource,
)
from ecs_operator.kube.events import EventRecorder
from ecs_operator.kube.leader import LeaderElection, local_identity

Body = Mapping[str, Any]

LEASE_NAME = "ecs-operator"
MANAGED: Mapping[str, str | None] = {labels.MANAGED_BY_LABEL: labels.MANAGED_BY}
# While the controllers wait for the first listings, say every this many seconds which.
LISTING_REPORT_SECONDS = 10.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchedKind:
    group: str  # "" for the core API
    plural: str


@dataclass
class Controllers:
    """The caches and the controllers the watch events feed."""

    context: OperatorContext
    metrics: OperatorMetrics
    tasks: TaskController
    task_definitions: TaskDefinitionController
    services: ServiceController
    load_balancers: LoadBalancerController

    @classmethod
    def create(cls, options: OperatorOptions) -> Controllers:
        context = OperatorContext(options, KubeClient.from_kubeconfig(options.kubeconfig))
        metrics = OperatorMetrics(context)
        if options.metrics_port:
            metrics.serve(options.metrics_port, options.metrics_address)
        events = EventRecorder(context.kube)
        tasks = TaskController(context, events, metrics)
        task_definitions = TaskDefinitionController(context, tasks, events, metrics)
        services = ServiceController(context, events, metrics)
        load_balancers = LoadBalancerController(context, events, metrics, tasks, services)
        return cls(context, metrics, tasks, task_definitions, services, load_balancers)

    def start(self) -> None:
        """Reconcile every cached object once, then whatever the watches wake."""
        for controller, cache in (
            (self.task_definitions, self.context.task_definitions),
            (self.tasks, self.context.tasks),
            (self.services, self.context.services),
            (self.load_balancers, self.context.load_balancers),
        ):
            for body in cache.values():
                controller.enqueue(object_key(body))
            controller.start()

    async def stop(self) -> None:
        await self.tasks.stop()
        await self.task_definitions.stop()
        await self.services.stop()
        await self.load_balancers.stop()
        self.context.kube.close()


def task_event(controllers: Controllers, event_type: str | None, body: Body) -> None:
    key = controllers.context.tasks.record(event_type, body)
    controllers.tasks.enqueue(key)
    service = owner_name(body, "Service")
    if service:
        controllers.services.enqueue((key[0], service))
        controllers.load_balancers.enqueue_namespace(key[0])


def task_definition_event(controllers: Controllers, event_type: str | None, body: Body) -> None:
    key = controllers.context.task_definitions.record(event_type, body)
    controllers.task_definitions.enqueue(key)
    controllers.services.enqueue_all(key[0])  # `family` may now mean another revision


def service_event(controllers: Controllers, event_type: str | None, body: Body) -> None:
    key = controllers.services.handle_event(event_type, body)
    controllers.load_balancers.enqueue_namespace(key[0])


def load_balancer_event(controllers: Controllers, event_type: str | None, body: Body) -> None:
    key = controllers.context.load_balancers.record(event_type, body)
    controllers.load_balancers.enqueue(key)


def kubernetes_service_event(controllers: Controllers, event_type: str | None, body: Body) -> None:
    key = controllers.context.kubernetes_services.record(event_type, body)
    controllers.load_balancers.enqueue(key)  # named after its LoadBalancer: restore what changed


def endpoint_slice_event(controllers: Controllers, event_type: str | None, body: Body) -> None:
    controllers.context.endpoint_slices.record(event_type, body)
    lb = (body["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
    if lb:
        controllers.load_balancers.enqueue((body["metadata"].get("namespace", ""), lb))


def revision_event(controllers: Controllers, event_type: str | None, body: Body) -> None:
    controllers.context.revisions.record(event_type, body)
    reference = (body["metadata"].get("annotations") or {}).get(labels.TASK_DEFINITION_ANNOTATION)
    if reference:
        namespace = body["metadata"].get("namespace", "")
        controllers.task_definitions.enqueue((namespace, reference.rpartition(":")[0]))
        controllers.services.enqueue_all(namespace)


def pod_event(controllers: Controllers, event_type: str | None, body: Body) -> None:
    controllers.context.pods.record(event_type, body)
    task = owner_name(body, "Task")
    if task:
        namespace = body["metadata"].get("namespace", "")
        controllers.tasks.enqueue((namespace, task))
        if (body["metadata"].get("labels") or {}).get(labels.SERVICE_LABEL):
            controllers.load_balancers.enqueue_namespace(namespace)  # readiness is target health


def node_event(controllers: Controllers, event_type: str | None, body: Body) -> None:
    before = controllers.context.nodes.get(("", body["metadata"]["name"]))
    controllers.context.nodes.record(event_type, body)
    # Heartbeats change nothing placement cares about; only real changes wake the services.
    if event_type == "DELETED" or _node_facts(before) != _node_facts(body):
        controllers.services.enqueue_all()


def namespace_event(controllers: Controllers, event_type: str | None, body: Body) -> None:
    name = body["metadata"]["name"]
    context = controllers.context
    before = context.security_policy(name)
    context.namespaces.record(event_type, body)
    # Which families are accepted there depends on what the namespace allows; running tasks
    # keep their Pods, as Pod Security Admission keeps running Pods.
    if context.security_policy(name) != before:
        controllers.task_definitions.enqueue_namespace(name)


def _node_facts(node: Mapping[str, Any] | None) -> tuple[Any, ...]:
    if node is None:
        return ()
    conditions = (node.get("status") or {}).get("conditions") or ()
    ready = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
    spec = node.get("spec") or {}
    return (
        ready,
        spec.get("unschedulable", False),
        json.dumps(spec.get("taints") or [], sort_keys=True),
        json.dumps(node["metadata"].get("labels") or {}, sort_keys=True),
        json.dumps((node.get("status") or {}).get("allocatable") or {}, sort_keys=True),
    )


Route = Callable[[Controllers, str | None, Body], None]


@dataclass(frozen=True)
class Feed:
    """One watched kind: the cache it fills, the route of its events, and the labels its
    objects must carry to be watched (a value of None: the label is present)."""

    resource: Resource
    cache: Callable[[OperatorContext], ObjectCache]
    route: Route
    labels: Mapping[str, str | None] | None = None

    @property
    def selector(self) -> str:
        """`labels` as a label selector ("" when every object is watched)."""
        return ",".join(
            key if value is None else f"{key}={value}" for key, value in (self.labels or {}).items()
        )

    def namespaces(self, options: OperatorOptions) -> tuple[str | None, ...]:
        """The namespaces it is watched in (None: all, or cluster-scoped)."""
        return (options.namespaces or (None,)) if self.resource.namespaced else (None,)


FEEDS = {
    WatchedKind(feed.resource.group, feed.resource.plural): feed
    for feed in (
        Feed(TASK_DEFINITIONS, lambda c: c.task_definitions, task_definition_event),
        Feed(
            CONTROLLER_REVISIONS, lambda c: c.revisions, revision_event, {labels.FAMILY_LABEL: None}
        ),
        Feed(TASKS, lambda c: c.tasks, task_event),
        Feed(SERVICES, lambda c: c.services, service_event),
        Feed(PODS, lambda c: c.pods, pod_event),
        Feed(LOAD_BALANCERS, lambda c: c.load_balancers, load_balancer_event),
        Feed(
            KUBERNETES_SERVICES, lambda c: c.kubernetes_services, kubernetes_service_event, MANAGED
        ),
        Feed(ENDPOINT_SLICES, lambda c: c.endpoint_slices, endpoint_slice_event, MANAGED),
        Feed(NODES, lambda c: c.nodes, node_event),
        Feed(NAMESPACES, lambda c: c.namespaces, namespace_event),
    )
}


def resource_name(kind: WatchedKind) -> str:
    return f"{kind.plural}.{kind.group}" if kind.group else kind.plural


class Listings:
    """Fills each kind's cache from every listing of its watch stream (at start, and after a
    relist), tells when every kind has been listed once, and reports failed streams (the
    `kopf_adapter.WatchListener` of the operator).

    A listing replaces what the cache holds of its kind (and namespace), as client-go's
    informer `Replace` does: what the listing no longer has (or has under another uid:
    re-created) was deleted while no watch was looking, and is handled as a DELETED event
    (tombstoned, its owners woken). An object newer than the listing's resourceVersion (our
    own write, answered after the listing was taken) is kept."""

    def __init__(self, controllers: Controllers) -> None:
        self._controllers = controllers
        options = controllers.context.options
        self._unlisted = {
            (kind, namespace)
            for kind, feed in FEEDS.items()
            for namespace in feed.namespaces(options)
        }
        self._all_listed = asyncio.Event()

    def wants(self, kind: WatchedKind) -> bool:
        return kind in FEEDS

    def listed(
        self, kind: WatchedKind, namespace: str | None, objects: list[Body], version: str
    ) -> None:
        feed = FEEDS[kind]
        controllers = self._controllers
        for body in feed.cache(controllers.context).replace(objects, version, namespace=namespace):
            controllers.metrics.relist_deletions.labels(resource_name(kind)).inc()
            feed.route(controllers, "DELETED", body)
        self._unlisted.discard((kind, namespace))
        if not self._unlisted:
            self._all_listed.set()

    def failed(
        self,
        kind: WatchedKind,
        namespace: str | None,
        error: Exception,
        retry_in: float,
        *,
        listing: bool,
    ) -> None:
        where = f" in {namespace}" if namespace else ""
        name = resource_name(kind)
        self._controllers.metrics.watch_failures.labels(name).inc()
        logger.error(
            "%s%s failed: %s; the other kinds carry on, and %s is listed and watched again in "
            "%.1fs",
            f"listing {name}" if listing else f"the watch of {name}",
            where,
            error,
            name,
            retry_in,
        )

    async def all_listed(self) -> None:
        """Return once every watched kind has been listed (in every watched namespace), saying
        meanwhile which listings are awaited."""
        while True:
            try:
                async with asyncio.timeout(LISTING_REPORT_SECONDS):
                    await self._all_listed.wait()
                    return
            except TimeoutError:
                awaited = sorted(
                    resource_name(kind) + (f" in {namespace}" if namespace else "")
                    for kind, namespace in self._unlisted
                )
                logger.warning("the controllers wait for the listing of %s", ", ".join(awaited))


def leader_election(options: OperatorOptions) -> LeaderElection:
    """The operator's claim on the Lease, through a client of its own: the operator's client
    is fenced by this election, which must not fence itself. Standbys poll and renew every
    lease/7.5 (client-go's 2 s for 15 s); a single operator renews every third of a lease."""
    lease = options.leader_election_lease_seconds
    return LeaderElection(
        KubeClient.from_kubeconfig(options.kubeconfig),
        options.leader_election_namespace,
        LEASE_NAME,
        local_identity(),
        lease_seconds=lease,
        renew_seconds=lease * 2 / 3,
        retry_seconds=max(0.2, lease / 7.5 if options.leader_election else lease / 3),
    )


class Operator:
    """One run of the operator: its watches feed the caches from the start (so a standby's
    caches are warm when it takes over); its controllers run while it leads, from the moment
    every kind has been listed."""

    def __init__(self, options: OperatorOptions, election: LeaderElection) -> None:
        self.controllers = Controllers.create(options)
        self.listings = Listings(self.controllers)
        self._election = election
        self._leading: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._leading = asyncio.create_task(self._lead())

    async def _lead(self) -> None:
        election = self._election
        if self.controllers.context.options.leader_election:
            await election.acquire()
        # Otherwise `run` claimed the Lease before starting (refusing a second operator).
        self.controllers.context.kube.fence = election.ensure_leading
        starting = asyncio.create_task(self._start_controllers())
        try:
            await election.hold()
        finally:
            starting.cancel()
        # Leadership lost: stop at once (as client-go does) so a restart rejoins as a standby
        # (or finds the new holder and refuses) rather than acting alongside the new leader.
        os.kill(os.getpid(), signal.SIGTERM)

    async def _start_controllers(self) -> None:
        await self.listings.all_listed()
        self.controllers.start()

    async def stop(self) -> None:
        if self._leading is not None:
            self._leading.cancel()
        await self.controllers.stop()
        await self._election.release()
        self._election.kube.close()
