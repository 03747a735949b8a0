"""A Task's Pod: check that what it needs exists, place it, create it. The Task controller's
launching half (the Service controller's is `task_launcher`)."""

from __future__ import annotations

import random
import time
from typing import Any

from ecs_operator.controllers.cache import Key
from ecs_operator.controllers.context import NODE_INDEX, OperatorContext
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.core import events
from ecs_operator.core.capacity import cluster_instances
from ecs_operator.core.launches import is_controlled_by
from ecs_operator.core.ownership import left_by_earlier_task
from ecs_operator.core.placement import ContainerInstance
from ecs_operator.core.render import RenderedPod
from ecs_operator.core.task_planning import (
    Launched,
    LaunchOutcome,
    NotLaunched,
    PodLaunch,
    place_pod,
    secret_failure,
    task_role_failure,
)
from ecs_operator.kube.client import PODS, SECRETS, SERVICE_ACCOUNTS, KubeError

# The API refuses such a Pod for good (Pod Security Admission, an invalid field): the task fails.
POD_REFUSED_CODES = (400, 403, 422)


class PodLauncher:
    def __init__(self, context: OperatorContext, metrics: OperatorMetrics) -> None:
        self.context = context
        self.metrics = metrics
        self.rng = random.Random()
        self._launched_at: dict[Key, float] = {}  # when this operator created a task's Pod

    def since_launch(self, key: Key) -> float | None:
        """Seconds since this operator created the task's Pod (None: it did not)."""
        launched = self._launched_at.get(key)
        return time.monotonic() - launched if launched is not None else None

    def forget(self, key: Key) -> None:
        """The Task is gone."""
        self._launched_at.pop(key, None)

    async def launch(self, key: Key, body: dict[str, Any], launch: PodLaunch) -> LaunchOutcome:
        """Check that what the Pod needs exists, then place it and create it."""
        for reference in launch.secrets:
            secret = await self.context.api.get(SECRETS, key[0], reference.secret)
            missing = secret_failure(key[0], reference, secret)
            if missing is not None:
                return missing
        account = await self._service_account(key[0], launch)
        pod = place_pod(launch, account, self._instances(key[0], launch.placed_node), self.rng)
        if isinstance(pod, NotLaunched):
            if pod.placement_failure is not None:
                self.metrics.placement_failures.labels(pod.placement_failure).inc()
            return pod
        return await self._create(key, body, pod, launch)

    async def _service_account(self, namespace: str, launch: PodLaunch) -> dict[str, Any] | None:
        identity = launch.service_account
        if identity is None:
            return None
        return await self.context.api.get(SERVICE_ACCOUNTS, namespace, identity.account)

    def _instances(self, namespace: str, placed: str | None) -> list[ContainerInstance]:
        """Where the task may go: only the node its Service placed it on, if any (the task still
        checks it fits; only that node's pods count, so a scale-out rescans no other pods)."""
        if placed is None:
            return self.context.container_instances(namespace)
        node = self.context.nodes.get(("", placed))
        pods = self.context.pods.indexed(NODE_INDEX, placed)
        found = cluster_instances([node] if node else [], pods, self.context.footprints)
        return [instance.in_cluster(namespace) for instance in found]

    async def _create(
        self, key: Key, body: dict[str, Any], pod: RenderedPod, launch: PodLaunch
    ) -> LaunchOutcome:
        try:
            # Expected in the cache before its creation is answered: a task placed meanwhile
            # must see this one (distinctInstance, spread, remaining resources).
            found, created = await self.context.api.create_or_get(
                PODS, key[0], pod.manifest, expect=True
            )
        except KubeError as error:
            if error.code not in POD_REFUSED_CODES:
                raise
            # The ServiceAccount admission plugin refuses a Pod whose ServiceAccount is gone
            # (deleted since it was checked): say so in both names, not in the API's words.
            if launch.service_account is not None and (
                await self._service_account(key[0], launch) is None
            ):
                return task_role_failure(launch.service_account, key[0])
            return NotLaunched(events.pod_refused(error.message))
        if not created and not is_controlled_by(found, body["metadata"]["uid"]):
            # Someone else's Pod holds the name: a conflict, never taken for our launch. One
            # an earlier Task of the same name left (being deleted, or its owner gone and
            # garbage collection about to remove it) is waited for by the retry.
            if left_by_earlier_task(found, body):
                raise KubeError(409, "AlreadyExists", f"a previous pod {key[1]} is still going")
            return NotLaunched(events.pod_name_taken(key[1]))
        self._launched_at[key] = time.monotonic()
        launched = self.context.pods.get(key)
        return Launched(launched, self.context.node_of(launched), pod.unsupported)
