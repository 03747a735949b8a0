"""What the operator watches feeds its caches, and each change wakes the controllers whose
triggers name it; when the controllers start. No Kopf here: `kopf_adapter` delivers the events
and listings of its watch streams.

Every event only records the object in its kind's cache and enqueues the keys the controllers'
triggers map it to, so a resync of a converged cluster writes nothing. Our own writes' responses
are recorded (and wake) the same way, when they are answered (`writer`).

The caches are filled from the watch streams' own listings (`Listings`), as client-go's
informers are: one LIST per kind at start, and after every relist (410 Expired, a failed
stream) what the listing no longer has was deleted while no watch was looking. The
controllers start once every kind has been listed, so that no decision is ever made from a
half-filled cache (after a restart, a half-filled cache would make a Service launch tasks it
already has).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from ecs_operator.controllers.cache import Key, object_key
from ecs_operator.controllers.context import OperatorContext, OperatorOptions
from ecs_operator.controllers.feeds import FEEDS, Feed, WatchedKind
from ecs_operator.controllers.loadbalancers import LoadBalancerController
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.services import ServiceController
from ecs_operator.controllers.taskdefinitions import TaskDefinitionController
from ecs_operator.controllers.tasks import TaskController
from ecs_operator.controllers.triggers import Change, KeyMap, Trigger
from ecs_operator.kube.client import KubeClient, Resource
from ecs_operator.kube.events import EventRecorder
from ecs_operator.kube.leader import LeaderElection, local_identity

Body = Mapping[str, Any]

LEASE_NAME = "ecs-operator"
# While the controllers wait for the first listings, say every this many seconds which.
LISTING_REPORT_SECONDS = 10.0

logger = logging.getLogger(__name__)


class Controller(Protocol):
    TRIGGERS: ClassVar[tuple[Trigger, ...]]

    def enqueue(self, key: Key) -> None: ...


@dataclass
class Controllers:
    """The caches and the controllers their changes wake."""

    context: OperatorContext
    metrics: OperatorMetrics
    tasks: TaskController
    task_definitions: TaskDefinitionController
    services: ServiceController
    load_balancers: LoadBalancerController
    _routes: dict[Resource, list[tuple[Controller, KeyMap]]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        routes: defaultdict[Resource, list[tuple[Controller, KeyMap]]] = defaultdict(list)
        controllers: tuple[Controller, ...] = (
            self.tasks,
            self.task_definitions,
            self.services,
            self.load_balancers,
        )
        for controller in controllers:
            for trigger in controller.TRIGGERS:
                routes[trigger.resource].append((controller, trigger.keys))
        self._routes = dict(routes)
        self.context.on_change = self.wake

    @classmethod
    def create(cls, options: OperatorOptions) -> Controllers:
        context = OperatorContext(options, KubeClient.from_kubeconfig(options.kubeconfig))
        metrics = OperatorMetrics(context)
        if options.metrics_port:
            metrics.serve(options.metrics_port, options.metrics_address)
        events = EventRecorder(context.kube)
        return cls(
            context,
            metrics,
            TaskController(context, events, metrics),
            TaskDefinitionController(context, events, metrics),
            ServiceController(context, events, metrics),
            LoadBalancerController(context, events, metrics),
        )

    def watch_event(self, feed: Feed, event_type: str | None, body: Body) -> None:
        """A watch event (type None: Kopf's listing) of `feed`'s kind."""
        self.context.record(feed.resource, event_type, body)

    def wake(self, change: Change) -> None:
        """Enqueue every key the triggers of `change`'s kind map it to."""
        for controller, keys in self._routes.get(change.resource, ()):
            for key in keys(change, self.context):
                controller.enqueue(key)

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
        namespaces = controllers.context.options.namespaces
        self._unlisted = {
            (kind, namespace)
            for kind, feed in FEEDS.items()
            for namespace in feed.namespaces(namespaces)
        }
        self._all_listed = asyncio.Event()

    def wants(self, kind: WatchedKind) -> bool:
        return kind in FEEDS

    def listed(
        self, kind: WatchedKind, namespace: str | None, objects: list[Body], version: str
    ) -> None:
        feed = FEEDS[kind]
        controllers = self._controllers
        cache = getattr(controllers.context, feed.cache)
        for body in cache.replace(objects, version, namespace=namespace):
            controllers.metrics.relist_deletions.labels(feed.name).inc()
            controllers.wake(Change(feed.resource, "DELETED", body, body))
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
        name = FEEDS[kind].name
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
                    FEEDS[kind].name + (f" in {namespace}" if namespace else "")
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
