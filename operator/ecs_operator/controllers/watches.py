"""Kopf registrations: watch events only update the caches and enqueue keys to reconcile.

No handler here keeps Kopf state (only `on.event`), so the operator never writes Kopf
annotations onto users' objects and a resync of a converged cluster writes nothing.

The event handlers are coroutines on purpose: Kopf runs plain functions in a thread pool, and
the caches and work queues they feed belong to the event loop (a cache changing under a
reconcile's iteration, or an asyncio.Queue fed from another thread, breaks both).

Kopf's streams go through `watchstreams`: after each relist, `Relists` prunes from the caches
what a fresh LIST no longer has (a deletion no watch event will ever report), and a stream
that fails stops only its own kind, which is listed and watched again after a back-off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from ecs_operator import API_GROUP
from ecs_operator.controllers.cache import ObjectCache, object_key, owner_name
from ecs_operator.controllers.context import OperatorContext, OperatorOptions
from ecs_operator.controllers.loadbalancers import LoadBalancerController
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.services import ServiceController
from ecs_operator.controllers.taskdefinitions import TaskDefinitionController
from ecs_operator.controllers.tasks import TaskController
from ecs_operator.controllers.watchstreams import WatchedKind, WatchGuard, install
from ecs_operator.controllers.workqueue import WorkQueue
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
    KubeError,
    Resource,
    kubeconfig_credentials,
)
from ecs_operator.kube.events import EventRecorder
from ecs_operator.kube.leader import LeaderElection, local_identity

LEASE_NAME = "ecs-operator"
MANAGED_SELECTOR = f"{labels.MANAGED_BY_LABEL}={labels.MANAGED_BY}"
# A failed priming LIST is retried after this many seconds, doubling up to the cap.
PRIME_BACKOFF = 0.5
PRIME_MAX_BACKOFF = 5.0

logger = logging.getLogger(__name__)


@kopf.on.login()
def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """Kopf's client logs in with the operator's --kubeconfig (Kopf's default login would read
    only $KUBECONFIG or ~/.kube/config, or the in-cluster service account)."""
    options: OperatorOptions = memo.options
    if not options.kubeconfig:
        return kopf.login_via_client(**kwargs)
    found = kubeconfig_credentials(options.kubeconfig)
    return kopf.ConnectionInfo(
        server=found.server,
        ca_path=found.ca_path,
        insecure=found.insecure,
        scheme=found.scheme,
        token=found.token,
        certificate_path=found.certificate_path,
        private_key_path=found.private_key_path,
        username=found.username,
        password=found.password,
    )


class _NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """Kopf deep-copies every event's body to diff it for change handlers; with `on.event`
    handlers only, that diff is never read, and at thousands of events it costs a core."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    options: OperatorOptions = memo.options
    settings.persistence.finalizer = labels.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = _NoDiffBase(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.connect_timeout = 10
    # Kopf retries a failing LIST or watch request for 54 s (1, 1, 2, … 21) before giving up;
    # the watch guard (`watchstreams`) backs off and relists after that, so give up sooner.
    settings.networking.error_backoffs = (0.5, 1, 2, 4)
    context = OperatorContext(options, KubeClient.from_kubeconfig(options.kubeconfig))
    metrics = OperatorMetrics(context)
    if options.metrics_port:
        metrics.serve(options.metrics_port, options.metrics_address)
    events = EventRecorder(context.kube)
    memo.context = context
    memo.tasks = TaskController(context, events, metrics)
    memo.task_definitions = TaskDefinitionController(context, memo.tasks, events, metrics)
    memo.services = ServiceController(context, events, metrics)
    memo.load_balancers = LoadBalancerController(
        context, events, metrics, memo.tasks, memo.services
    )
    memo.relists = Relists(memo, metrics)
    memo.relists.queue.start()
    install(WatchGuard(memo.relists))
    election: LeaderElection = memo.election
    if options.leader_election:
        # Watches start now either way, so a standby's caches are warm when it takes over.
        memo.leadership = asyncio.create_task(_lead(memo, election))
    else:
        # `run` claimed the Lease before starting (refusing a second operator): keep it.
        context.kube.fence = election.ensure_leading
        await _start_controllers(memo)
        memo.leadership = asyncio.create_task(_hold(election))


async def _start_controllers(memo: kopf.Memo) -> None:
    """Prime the caches with a full listing, then reconcile everything once: no decision is
    ever made from a cache the watches have only half filled (after a restart, a half-filled
    cache would make a Service launch tasks it already has)."""
    context: OperatorContext = memo.context
    await prime(context)
    for controller, cache in (
        (memo.task_definitions, context.task_definitions),
        (memo.tasks, context.tasks),
        (memo.services, context.services),
        (memo.load_balancers, context.load_balancers),
    ):
        for body in cache.values():
            controller.enqueue(object_key(body))
        controller.start()


async def prime(
    context: OperatorContext, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Fill every cache from a LIST of its kind. A failed LIST is retried after a back-off
    of seconds (never Kopf's minute for a failed start-up handler) until it is served."""
    for feed in FEEDS.values():
        cache = feed.cache(context)
        for namespace in feed.namespaces(context):
            failures = 0
            while True:
                try:
                    listed, version = await context.kube.list_with_version(
                        feed.resource, namespace, label_selector=feed.selector
                    )
                except KubeError as error:
                    failures += 1
                    delay = min(PRIME_MAX_BACKOFF, PRIME_BACKOFF * 2 ** (failures - 1))
                    logger.warning(
                        "listing %s failed (%s); retry in %.1fs", feed.resource.plural, error, delay
                    )
                    await sleep(delay)
                    continue
                cache.replace(listed, version, namespace=namespace)
                break


class Relists:
    """After every listing of a Kopf watch stream (a relist after 410 Expired, a restart, a
    failed stream), bring that kind's cache in line with a LIST of its own: what the list no
    longer has was deleted while no watch was looking, and is handled as a DELETED event
    (tombstoned, its owners woken), as client-go's informers do on `Replace`. Kopf's listing
    itself only re-announces what exists. The LIST is the operator's own because Kopf does not
    tell the resourceVersion its listing was taken at, without which an object created since
    (by our own write) could not be told from one deleted before."""

    def __init__(self, memo: kopf.Memo, metrics: OperatorMetrics) -> None:
        self._memo = memo
        self._metrics = metrics
        # One worker: relists are rare, and a kind relisted again meanwhile is listed once more.
        self.queue: WorkQueue[tuple[WatchedKind, str | None]] = WorkQueue(
            "relists", self._resync, workers=1, base_backoff=0.5
        )

    def wants(self, kind: WatchedKind) -> bool:
        return kind in FEEDS

    def relisted(self, kind: WatchedKind, namespace: str | None) -> None:
        if kind in FEEDS:
            self.queue.add((kind, namespace))

    def failed(
        self, kind: WatchedKind, namespace: str | None, error: Exception, retry_in: float
    ) -> None:
        where = f" in {namespace}" if namespace else ""
        name = _resource_name(kind)
        self._metrics.watch_failures.labels(name).inc()
        logger.error(
            "the watch of %s%s failed: %s; the other kinds carry on, and %s is listed and "
            "watched again in %.1fs",
            name,
            where,
            error,
            name,
            retry_in,
        )

    async def _resync(self, key: tuple[WatchedKind, str | None]) -> None:
        kind, namespace = key
        feed = FEEDS[kind]
        context: OperatorContext = self._memo.context
        try:
            listed, version = await context.kube.list_with_version(
                feed.resource, namespace, label_selector=feed.selector
            )
        except KubeError as error:
            if not error.not_found:
                raise
            # Its CRD went away since: the stream fails too, and its next listing comes here.
            logger.info("%s are not served: %s", feed.resource.plural, error)
            return
        for body in feed.cache(context).replace(listed, version, namespace=namespace):
            self._metrics.relist_deletions.labels(_resource_name(kind)).inc()
            await feed.handler(event={"type": "DELETED", "object": body}, memo=self._memo)


def _resource_name(kind: WatchedKind) -> str:
    return f"{kind.plural}.{kind.group}" if kind.group else kind.plural


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


async def _lead(memo: kopf.Memo, election: LeaderElection) -> None:
    await election.acquire()
    memo.context.kube.fence = election.ensure_leading
    await _start_controllers(memo)
    await _hold(election)


async def _hold(election: LeaderElection) -> None:
    await election.hold()
    # Leadership lost: stop at once (as client-go does) so a restart rejoins as a standby
    # (or finds the new holder and refuses) rather than acting alongside the new leader.
    os.kill(os.getpid(), signal.SIGTERM)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    leadership = getattr(memo, "leadership", None)
    if leadership is not None:
        leadership.cancel()
    await memo.relists.queue.stop()
    await memo.tasks.stop()
    await memo.task_definitions.stop()
    await memo.services.stop()
    await memo.load_balancers.stop()
    memo.context.kube.close()
    election: LeaderElection = memo.election
    await election.release()
    election.kube.close()


@kopf.on.event(API_GROUP, "tasks")
async def task_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    key = memo.context.tasks.record(event.get("type"), body)
    memo.tasks.enqueue(key)
    service = owner_name(body, "Service")
    if service:
        memo.services.enqueue((key[0], service))
        memo.load_balancers.enqueue_namespace(key[0])


@kopf.on.event(API_GROUP, "taskdefinitions")
async def task_definition_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.context.task_definitions.record(event.get("type"), event["object"])
    memo.task_definitions.enqueue(key)
    memo.services.enqueue_all(key[0])  # `family` may now mean another revision


@kopf.on.event(API_GROUP, "services")
async def service_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.services.handle_event(event.get("type"), event["object"])
    memo.load_balancers.enqueue_namespace(key[0])


@kopf.on.event(API_GROUP, "loadbalancers")
async def load_balancer_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.context.load_balancers.record(event.get("type"), event["object"])
    memo.load_balancers.enqueue(key)


@kopf.on.event("v1", "services", labels={labels.MANAGED_BY_LABEL: labels.MANAGED_BY})
async def kubernetes_service_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.context.kubernetes_services.record(event.get("type"), event["object"])
    memo.load_balancers.enqueue(key)  # named after its LoadBalancer: restore what was changed


@kopf.on.event(
    "discovery.k8s.io", "v1", "endpointslices", labels={labels.MANAGED_BY_LABEL: labels.MANAGED_BY}
)
async def endpoint_slice_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    memo.context.endpoint_slices.record(event.get("type"), body)
    lb = (body["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
    if lb:
        memo.load_balancers.enqueue((body["metadata"].get("namespace", ""), lb))


@kopf.on.event("apps", "v1", "controllerrevisions", labels={labels.FAMILY_LABEL: kopf.PRESENT})
async def revision_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    memo.context.revisions.record(event.get("type"), body)
    reference = (body["metadata"].get("annotations") or {}).get(labels.TASK_DEFINITION_ANNOTATION)
    if reference:
        namespace = body["metadata"].get("namespace", "")
        memo.task_definitions.enqueue((namespace, reference.rpartition(":")[0]))
        memo.services.enqueue_all(namespace)


@kopf.on.event("v1", "pods")
async def pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    memo.context.pods.record(event.get("type"), body)
    task = owner_name(body, "Task")
    if task:
        namespace = body["metadata"].get("namespace", "")
        memo.tasks.enqueue((namespace, task))
        if (body["metadata"].get("labels") or {}).get(labels.SERVICE_LABEL):
            memo.load_balancers.enqueue_namespace(namespace)  # readiness is target health


@kopf.on.event("v1", "nodes")
async def node_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    before = memo.context.nodes.get(("", body["metadata"]["name"]))
    memo.context.nodes.record(event.get("type"), body)
    # Heartbeats change nothing placement cares about; only real changes wake the services.
    if event.get("type") == "DELETED" or _node_facts(before) != _node_facts(body):
        memo.services.enqueue_all()


@kopf.on.event("v1", "namespaces")
async def namespace_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    name = body["metadata"]["name"]
    context: OperatorContext = memo.context
    before = context.security_policy(name)
    context.namespaces.record(event.get("type"), body)
    # Which families are accepted there depends on what the namespace allows; running tasks
    # keep their Pods, as Pod Security Admission keeps running Pods.
    if context.security_policy(name) != before:
        memo.task_definitions.enqueue_namespace(name)


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


@dataclass(frozen=True)
class Feed:
    """One watched kind: what it is listed with, the cache it fills and its event handler."""

    resource: Resource
    cache: Callable[[OperatorContext], ObjectCache]
    handler: Callable[..., Any]  # a Kopf event handler: (*, event, memo)
    selector: str = ""

    def namespaces(self, context: OperatorContext) -> tuple[str | None, ...]:
        """The namespaces it is listed in (None: all, or cluster-scoped)."""
        return (context.options.namespaces or (None,)) if self.resource.namespaced else (None,)


FEEDS = {
    WatchedKind(feed.resource.group, feed.resource.plural): feed
    for feed in (
        Feed(TASK_DEFINITIONS, lambda c: c.task_definitions, task_definition_event),
        Feed(CONTROLLER_REVISIONS, lambda c: c.revisions, revision_event, labels.FAMILY_LABEL),
        Feed(TASKS, lambda c: c.tasks, task_event),
        Feed(SERVICES, lambda c: c.services, service_event),
        Feed(PODS, lambda c: c.pods, pod_event),
        Feed(LOAD_BALANCERS, lambda c: c.load_balancers, load_balancer_event),
        Feed(
            KUBERNETES_SERVICES,
            lambda c: c.kubernetes_services,
            kubernetes_service_event,
            MANAGED_SELECTOR,
        ),
        Feed(ENDPOINT_SLICES, lambda c: c.endpoint_slices, endpoint_slice_event, MANAGED_SELECTOR),
        Feed(NODES, lambda c: c.nodes, node_event),
        Feed(NAMESPACES, lambda c: c.namespaces, namespace_event),
    )
}
