"""Kopf registrations: watch events only update the caches and enqueue keys to reconcile.

No handler here keeps Kopf state (only `on.event`), so the operator never writes Kopf
annotations onto users' objects and a resync of a converged cluster writes nothing.

The event handlers are coroutines on purpose: Kopf runs plain functions in a thread pool, and
the caches and work queues they feed belong to the event loop (a cache changing under a
reconcile's iteration, or an asyncio.Queue fed from another thread, breaks both).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import uuid
from collections.abc import Mapping
from typing import Any

import kopf

from ecs_operator import API_GROUP
from ecs_operator.core import labels
from ecs_operator.handlers.cache import object_key, owner_name
from ecs_operator.handlers.context import OperatorContext, OperatorOptions
from ecs_operator.handlers.loadbalancers import LoadBalancerController
from ecs_operator.handlers.metrics import OperatorMetrics
from ecs_operator.handlers.services import ServiceController
from ecs_operator.handlers.taskdefinitions import TaskDefinitionController
from ecs_operator.handlers.tasks import TaskController
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
    kubeconfig_credentials,
)
from ecs_operator.kube.events import EventRecorder
from ecs_operator.kube.leader import LeaderElection

LEASE_NAME = "ecs-operator"
MANAGED_SELECTOR = f"{labels.MANAGED_BY_LABEL}={labels.MANAGED_BY}"


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
    if options.leader_election:
        # Watches start now either way, so a standby's caches are warm when it takes over.
        memo.leadership = asyncio.create_task(_lead(memo))
    else:
        await _start_controllers(memo)


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


async def prime(context: OperatorContext) -> None:
    namespaces: tuple[str | None, ...] = context.options.namespaces or (None,)
    for resource, cache, selector in (
        (TASK_DEFINITIONS, context.task_definitions, ""),
        (CONTROLLER_REVISIONS, context.revisions, labels.FAMILY_LABEL),
        (TASKS, context.tasks, ""),
        (SERVICES, context.services, ""),
        (PODS, context.pods, ""),
        (LOAD_BALANCERS, context.load_balancers, ""),
        (KUBERNETES_SERVICES, context.kubernetes_services, MANAGED_SELECTOR),
        (ENDPOINT_SLICES, context.endpoint_slices, MANAGED_SELECTOR),
    ):
        for namespace in namespaces:
            for body in await context.kube.list(resource, namespace, label_selector=selector):
                cache.observe("ADDED", body)
    for body in await context.kube.list(NODES):
        context.nodes.observe("ADDED", body)
    for body in await context.kube.list(NAMESPACES):
        context.namespaces.observe("ADDED", body)


async def _lead(memo: kopf.Memo) -> None:
    options: OperatorOptions = memo.options
    election = LeaderElection(
        memo.context.kube,
        options.leader_election_namespace,
        LEASE_NAME,
        f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        lease_seconds=options.leader_election_lease_seconds,
        renew_seconds=options.leader_election_lease_seconds * 2 / 3,
        retry_seconds=max(0.2, options.leader_election_lease_seconds / 7.5),
    )
    await election.acquire()
    await _start_controllers(memo)
    await election.hold()
    # Leadership lost: stop at once (as client-go does) so a restart rejoins as a standby
    # rather than acting alongside the new leader.
    os.kill(os.getpid(), signal.SIGTERM)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    leadership = getattr(memo, "leadership", None)
    if leadership is not None:
        leadership.cancel()
    await memo.tasks.stop()
    await memo.task_definitions.stop()
    await memo.services.stop()
    await memo.load_balancers.stop()
    memo.context.kube.close()


@kopf.on.event(API_GROUP, "tasks")
async def task_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    key = memo.context.tasks.observe(event.get("type"), body)
    memo.tasks.enqueue(key)
    service = owner_name(body, "Service")
    if service:
        memo.services.enqueue((key[0], service))
        memo.load_balancers.enqueue_namespace(key[0])


@kopf.on.event(API_GROUP, "taskdefinitions")
async def task_definition_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.context.task_definitions.observe(event.get("type"), event["object"])
    memo.task_definitions.enqueue(key)
    memo.services.enqueue_all(key[0])  # `family` may now mean another revision


@kopf.on.event(API_GROUP, "services")
async def service_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.context.services.observe(event.get("type"), event["object"])
    memo.services.enqueue(key)
    memo.load_balancers.enqueue_namespace(key[0])


@kopf.on.event(API_GROUP, "loadbalancers")
async def load_balancer_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.context.load_balancers.observe(event.get("type"), event["object"])
    memo.load_balancers.enqueue(key)


@kopf.on.event("v1", "services", labels={labels.MANAGED_BY_LABEL: labels.MANAGED_BY})
async def kubernetes_service_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.context.kubernetes_services.observe(event.get("type"), event["object"])
    memo.load_balancers.enqueue(key)  # named after its LoadBalancer: restore what was changed


@kopf.on.event(
    "discovery.k8s.io", "v1", "endpointslices", labels={labels.MANAGED_BY_LABEL: labels.MANAGED_BY}
)
async def endpoint_slice_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    memo.context.endpoint_slices.observe(event.get("type"), body)
    lb = (body["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
    if lb:
        memo.load_balancers.enqueue((body["metadata"].get("namespace", ""), lb))


@kopf.on.event("apps", "v1", "controllerrevisions", labels={labels.FAMILY_LABEL: kopf.PRESENT})
async def revision_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    memo.context.revisions.observe(event.get("type"), body)
    reference = (body["metadata"].get("annotations") or {}).get(labels.TASK_DEFINITION_ANNOTATION)
    if reference:
        namespace = body["metadata"].get("namespace", "")
        memo.task_definitions.enqueue((namespace, reference.rpartition(":")[0]))
        memo.services.enqueue_all(namespace)


@kopf.on.event("v1", "pods")
async def pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    memo.context.pods.observe(event.get("type"), body)
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
    memo.context.nodes.observe(event.get("type"), body)
    # Heartbeats change nothing placement cares about; only real changes wake the services.
    if event.get("type") == "DELETED" or _node_facts(before) != _node_facts(body):
        memo.services.enqueue_all()


@kopf.on.event("v1", "namespaces")
async def namespace_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    name = body["metadata"]["name"]
    context: OperatorContext = memo.context
    before = context.security_policy(name)
    context.namespaces.observe(event.get("type"), body)
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
