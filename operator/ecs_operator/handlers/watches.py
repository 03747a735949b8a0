"""Kopf registrations: watch events only update the caches and enqueue keys to reconcile.

No handler here keeps Kopf state (only `on.event`), so the operator never writes Kopf
annotations onto users' objects and a resync of a converged cluster writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from typing import Any

import kopf

from ecs_operator import API_GROUP
from ecs_operator.core import labels
from ecs_operator.handlers.context import OperatorContext, OperatorOptions
from ecs_operator.handlers.metrics import OperatorMetrics
from ecs_operator.handlers.taskdefinitions import TaskDefinitionController
from ecs_operator.handlers.tasks import TaskController
from ecs_operator.kube.client import KubeClient
from ecs_operator.kube.events import EventRecorder
from ecs_operator.kube.leader import LeaderElection

LEASE_NAME = "ecs-operator"


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    options: OperatorOptions = memo.options
    settings.persistence.finalizer = labels.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.connect_timeout = 10
    context = OperatorContext(options, KubeClient.from_kubeconfig(options.kubeconfig))
    metrics = OperatorMetrics(context)
    if options.metrics_port:
        metrics.serve(options.metrics_port)
    events = EventRecorder(context.kube)
    memo.context = context
    memo.tasks = TaskController(context, events, metrics)
    memo.task_definitions = TaskDefinitionController(context, memo.tasks, events, metrics)
    if options.leader_election:
        # Watches start now either way, so a standby's caches are warm when it takes over.
        memo.leadership = asyncio.create_task(_lead(memo))
    else:
        _start_controllers(memo)


def _start_controllers(memo: kopf.Memo) -> None:
    memo.tasks.start()
    memo.task_definitions.start()


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
    _start_controllers(memo)
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
    memo.context.kube.close()


@kopf.on.event(API_GROUP, "tasks")
def task_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.context.tasks.observe(event.get("type"), event["object"])
    memo.tasks.enqueue(key)


@kopf.on.event(API_GROUP, "taskdefinitions")
def task_definition_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.context.task_definitions.observe(event.get("type"), event["object"])
    memo.task_definitions.enqueue(key)


@kopf.on.event("apps", "v1", "controllerrevisions", labels={labels.FAMILY_LABEL: kopf.PRESENT})
def revision_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    memo.context.revisions.observe(event.get("type"), body)
    namespace = body["metadata"].get("namespace", "")
    memo.task_definitions.enqueue((namespace, body["metadata"]["labels"][labels.FAMILY_LABEL]))


@kopf.on.event("v1", "pods")
def pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body = event["object"]
    memo.context.pods.observe(event.get("type"), body)
    task = (body["metadata"].get("labels") or {}).get(labels.TASK_LABEL)
    if task:
        memo.tasks.enqueue((body["metadata"].get("namespace", ""), task))


@kopf.on.event("v1", "nodes")
def node_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.context.nodes.observe(event.get("type"), event["object"])
