"""The targets of AWS_LAMBDA lifecycle hooks for the Service controller
(``core.lifecycle_hooks`` decides which runs are due and what a reply means).

There is no Lambda on Kubernetes: a hook's ``hookTargetArn`` is a URL or a task definition.
A call of a URL (``HookCaller``) POSTs ECS's invocation payload to it as JSON, bounded by
``CALL_TIMEOUT_SECONDS``. A 2xx answer's JSON body is the reply; what has none (unreachable,
too slow, not 2xx, not JSON) is a reply with the problem, which the core takes as a Lambda
function error. Nothing here raises or waits for a callBackDelay: the core schedules the next
call as a requeue. A task definition (``HookTasks``) runs once as a Task the run's hookId
names, created when the run starts and read from the cache afterwards, and stopped if its run
times out. ``ServiceHooks`` is what the Service controller does with them around a plan.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import aiohttp
from pydantic import ValidationError

from ecs_operator.controllers.context import OperatorContext
from ecs_operator.controllers.task_launcher import stop_task
from ecs_operator.core import lifecycle_hooks, service_planning
from ecs_operator.core.lifecycle_hooks import HookCall, HookReply, HookTaskRun
from ecs_operator.core.ownership import owned_by
from ecs_operator.kube.client import TASKS, KubeError
from ecs_operator.models.service import Service, ServiceStatus
from ecs_operator.models.task import Task

logger = logging.getLogger(__name__)

CALL_TIMEOUT_SECONDS = 10.0
# What of a failed answer's body is kept in the reason: enough to say what went wrong.
BODY_EXCERPT = 200


def _not_json(constant: str) -> None:
    """NaN and Infinity, which Python's json reads but JSON (and the status) has not."""
    raise ValueError(f"{constant} is not JSON")


class HookCaller:
    """POSTs hook payloads; one HTTP session for every Service."""

    def __init__(self, timeout_seconds: float = CALL_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def call_all(self, calls: Sequence[HookCall]) -> dict[str, HookReply]:
        """Each call's reply by hookId; the calls of one stage run in parallel."""
        if not calls:
            return {}
        replies = await asyncio.gather(*(self._call(call) for call in calls))
        return {call.hook_id: reply for call, reply in zip(calls, replies, strict=True)}

    async def _call(self, call: HookCall) -> HookReply:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._session.post(call.url, json=call.payload) as response:
                body = await response.text()
                if not 200 <= response.status < 300:
                    excerpt = body[:BODY_EXCERPT].strip()
                    problem = f"it answered HTTP {response.status}" + (
                        f": {excerpt}" if excerpt else ""
                    )
                else:
                    return HookReply(answer=json.loads(body, parse_constant=_not_json))
        except TimeoutError:
            problem = f"no answer within {self.timeout:g} seconds"
        except aiohttp.ClientError as error:
            problem = f"it cannot be reached: {error or type(error).__name__}"
        except ValueError:  # the 2xx body is not JSON (UnicodeDecodeError is one too)
            problem = "its answer is not JSON"
        logger.warning(
            "lifecycle hook %s: the call of %s failed: %s", call.hook_id, call.url, problem
        )
        return HookReply(error=problem)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HookTasks:
    """Starts the Tasks of task target runs and reads how they ended."""

    def __init__(self, context: OperatorContext) -> None:
        self.context = context

    async def run_all(
        self, service: dict[str, Any], runs: Sequence[HookTaskRun]
    ) -> dict[str, HookReply]:
        """The replies of the runs whose Task started or stopped now, by hookId."""
        replies = {}
        for run in runs:
            reply = await self._run(service, run)
            if reply is not None:
                replies[run.hook_id] = reply
        return replies

    async def _run(self, service: dict[str, Any], run: HookTaskRun) -> HookReply | None:
        metadata = service["metadata"]
        namespace = metadata["namespace"]
        body = self.context.tasks.get((namespace, run.task_name))
        if body is None and run.started:  # the watch may not have brought it yet
            body = await self.context.api.get(TASKS, namespace, run.task_name)
            if body is None:
                return lifecycle_hooks.task_gone(run)
        if body is None:
            return await self._start(service, run)
        if not owned_by(body, service):
            return HookReply(error=f"the name of its task {run.task_name} is taken", counted=False)
        try:
            task = Task.model_validate(body)
        except ValidationError as error:
            logger.warning("lifecycle hook task %s cannot be read: %s", run.task_name, error)
            return None
        ran = (task.status.task_definition_arn if task.status else None) or run.task_definition
        resolved = self.context.revision_reader.resolve(namespace, ran, for_new_task=False)
        essential = [
            c.name
            for c in (resolved.revision.spec.container_definitions if resolved.revision else ())
            if c.essential
        ]
        return lifecycle_hooks.task_reply(run, task, essential)

    async def _start(self, service: dict[str, Any], run: HookTaskRun) -> HookReply:
        metadata = service["metadata"]
        namespace = metadata["namespace"]
        resolved = self.context.revision_reader.resolve(
            namespace, run.task_definition, for_new_task=True
        )
        if resolved.revision is None:
            return HookReply(
                error=f"task definition {run.task_definition} cannot run: {resolved.reason}"
            )
        containers = [c.name for c in resolved.revision.spec.container_definitions]
        manifest = lifecycle_hooks.hook_task_manifest(
            run, namespace, metadata["name"], metadata["uid"], containers
        )
        try:
            await self.context.api.create_or_get(TASKS, namespace, manifest)
        except KubeError as error:
            if error.outcome_unknown or error.code == 429:
                raise  # retried with back-off: the run stays due
            return HookReply(error=f"its task {run.task_name} cannot be created: {error}")
        return lifecycle_hooks.task_started(run)


class ServiceHooks:
    """A Service's hook runs around its plan: the URL calls and Task runs due are made before
    it (the plan reads their replies; the status keeps what they said), and the Tasks of runs
    that timed out are stopped after it."""

    def __init__(self, context: OperatorContext) -> None:
        self.context = context
        self.caller = HookCaller()
        self.tasks = HookTasks(context)

    async def replies(
        self, body: dict[str, Any], service: Service, now: datetime
    ) -> dict[str, HookReply]:
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        spec, status = service.spec, service.status
        replies = await self.caller.call_all(
            lifecycle_hooks.calls_due(namespace, name, spec, status, now)
        )
        return replies | await self.tasks.run_all(
            body, lifecycle_hooks.task_runs_due(namespace, name, spec, status, now)
        )

    async def stop_timed_out(self, body: Mapping[str, Any], status: ServiceStatus | None) -> None:
        """Stop the Tasks of the task target runs in ``status`` that timed out."""
        namespace = body["metadata"]["namespace"]
        tasks = {}
        for hook in lifecycle_hooks.timed_out_tasks(status):
            name = lifecycle_hooks.hook_task_name(hook)
            found = self.context.tasks.get((namespace, name))
            if found is None or not owned_by(found, body):
                continue  # gone, or not the run's: a name taken is not ours to stop
            try:
                tasks[name] = self.context.tasks.parsed(found, Task)
            except ValidationError as error:
                logger.warning("lifecycle hook task %s cannot be read: %s", name, error)
        for request in service_planning.hook_task_stops(status, tasks):
            await stop_task(self.context, namespace, request)

    async def close(self) -> None:
        await self.caller.close()
