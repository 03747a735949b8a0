"""Creating a Service's Tasks so that no launch ever happens twice.

A service task's name derives from its launch (`core.launches`), so a create retried after a
lost response names the same object and the API answers 409. A create whose outcome is unknown
is remembered (our expectations, as the ReplicaSet controller keeps them) and read back before
the Service is planned again; a name held by anything but this launch is reported and avoided.
Stopping one (``stop_task``) is the merge patch ``service_planning.stop_patch``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ecs_operator.controllers.cache import Key
from ecs_operator.controllers.concurrently import settle_all
from ecs_operator.controllers.context import OperatorContext
from ecs_operator.core import events, launches, service_planning
from ecs_operator.core.deployments import LaunchRequest, StopRequest
from ecs_operator.core.placement import PlacementFailure
from ecs_operator.kube.client import TASKS, KubeError
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.service import Service

logger = logging.getLogger(__name__)

NAME_TAKEN_RETRY_SECONDS = 1.0


async def stop_task(context: OperatorContext, namespace: str, request: StopRequest) -> None:
    """``desiredStatus: STOPPED`` with the request's stop code and reason (gone: nothing to
    stop)."""
    patch = service_planning.stop_patch(request)
    try:
        await context.api.patch(TASKS, namespace, request.task, patch)
    except KubeError as error:
        if not error.not_found:
            raise


Launched = tuple[
    dict[LaunchRequest, list[str]],
    list[tuple[LaunchRequest, PlacementFailure]],
    BaseException | None,
]


class TaskLauncher:
    def __init__(
        self,
        context: OperatorContext,
        events: EventRecorder,
        rng: random.Random,
        requeue: Callable[[Key, float], None],
    ) -> None:
        self.context = context
        self.events = events
        self.rng = rng
        self._requeue = requeue  # reconcile a Service again after so many seconds
        # Names of service tasks whose create may or may not have happened (the request failed
        # with an unknown outcome), by Service.
        self._in_flight: dict[Key, set[str]] = {}

    def forget(self, key: Key) -> None:
        """The Service is gone."""
        self._in_flight.pop(key, None)

    async def settle_in_flight(self, key: Key) -> None:
        """Creates whose outcome is unknown are read back before anything is planned, as the
        ReplicaSet controller waits for its expectations: a task created after all is counted
        (never launched twice), one that was not may be launched again. Until a read answers,
        the reconcile fails and is retried."""
        names = self._in_flight.get(key)
        while names:
            task = min(names)
            if self.context.tasks.get((key[0], task)) is None:
                await self.context.api.get(TASKS, key[0], task)  # cached if found
            names.discard(task)
        self._in_flight.pop(key, None)

    async def launch_all(
        self, body: Mapping[str, Any], service: Service, requests: Iterable[LaunchRequest]
    ) -> Launched:
        """Every launch of a plan: the tasks created (their names, as events name them), what
        could not be placed, and the create that failed, after which the rest waits for the
        next plan."""
        launched: dict[LaunchRequest, list[str]] = {}
        failures: list[tuple[LaunchRequest, PlacementFailure]] = []
        if self.context.namespace_terminating(body["metadata"].get("namespace", "")):
            # Every create would be refused (403) until the namespace is gone.
            return launched, failures, None
        for launch in requests:
            ids, failure, error = await self._launch(body, service, launch)
            if ids:
                launched[launch] = ids
            if failure is not None:
                failures.append((launch, failure))
            if error is not None:
                return launched, failures, error
        return launched, failures, None

    async def _launch(
        self, body: Mapping[str, Any], service: Service, launch: LaunchRequest
    ) -> tuple[list[str], PlacementFailure | None, BaseException | None]:
        """Place and create `launch.count` tasks: the names created, the first placement
        failure and the first create that failed."""
        namespace, name = body["metadata"].get("namespace", ""), body["metadata"]["name"]
        revision = self.context.revision_reader.spec(namespace, launch.task_definition)
        if revision is None:
            logger.warning(
                "service %s/%s: revision %s is gone", namespace, name, launch.task_definition
            )
            return [], None, None
        instances = self.context.container_instances(namespace)
        tasks, failure = service_planning.place_launch(
            service,
            launch,
            revision,
            instances,
            lambda task: self._taken(namespace, task),
            self.rng,
        )
        created, error = await settle_all(
            self._create_task(body, service, launch, node, ordinal, task)
            for ordinal, task, node in tasks
        )
        return [str(found["metadata"]["name"]) for found in created if found], failure, error

    def _taken(self, namespace: str, task: str) -> bool:
        """Creates of unknown outcome were settled before planning: the cache knows every name.
        A name whose Pod is still there (its Task deleted, the Pod not yet collected) is taken
        too: the new Task would find someone else's Pod under its name."""
        key = (namespace, task)
        return self.context.tasks.get(key) is not None or self.context.pods.get(key) is not None

    async def _create_task(
        self,
        body: Mapping[str, Any],
        service: Service,
        launch: LaunchRequest,
        node: str,
        ordinal: int,
        task: str,
    ) -> dict[str, Any] | None:
        """Create service task `task` (the launch's `ordinal`): the Task, or None when its
        name is held by something that is not this launch (reported; the next plan names the
        launch anew, since the holder is now in the cache)."""
        namespace, name = body["metadata"].get("namespace", ""), body["metadata"]["name"]
        manifest = service_planning.task_manifest(service, launch, node, ordinal, task)
        try:
            found, created = await self.context.api.create_or_get(TASKS, namespace, manifest)
        except KubeError as error:
            if error.outcome_unknown:
                self._in_flight.setdefault((namespace, name), set()).add(task)
            raise
        # Cached at once (our expectations): the next plan sees it even before the watch does.
        # A holder that is not ours is cached too, so the next plan avoids its name.
        if created:
            return found
        verdict = launches.existing_verdict(found, manifest)
        if verdict is launches.Existing.SAME_LAUNCH:
            return found  # created by an attempt whose response was lost
        logger.warning("service %s/%s: task name %s is taken (%s)", namespace, name, task, verdict)
        await self.events.record(
            body,
            "Warning",
            events.REASON_TASK_NAME_TAKEN,
            events.service_task_name_taken(name, task, verdict.value),
        )
        self._requeue((namespace, name), NAME_TAKEN_RETRY_SECONDS)
        return None
