"""The verbs of `kubectl ecs`, against the API through `KubeClient` (thin: the decisions are
`translate`'s and `views`'s).

Each verb returns a `Result` (the ECS-shaped JSON, its table, notes for stderr) or raises
`translate.InputError` (bad input: exit 2) or `CommandError` (it could not be done: exit 1).
Writes are what a user would write: objects and their `spec`, never `status`. Every create is
safe to repeat after a lost response: a Task's name is chosen before it is sent, so a retried
create meets its own object (409) instead of starting a second task.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from ecs_operator.core.labels import CONTAINERS_ANNOTATION, SERVICE_LABEL, label_value
from ecs_operator.kube.client import (
    PODS,
    SERVICES,
    TASK_DEFINITIONS,
    TASKS,
    KubeClient,
    KubeError,
)
from ecs_operator.models.taskdefinition import parse_task_definition_ref
from ecs_operator.plugin import translate, views
from ecs_operator.plugin.translate import InputError

CONFLICT_ATTEMPTS: Final = 5
ACCEPTED: Final = "Accepted"

Body = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class CommandError(Exception):
    """The command could not be done (not found, refused, timed out): exit 1."""


@dataclass
class Result:
    """What a verb prints: `payload` with `--output json`, `text` otherwise; `notes` go to
    stderr either way."""

    payload: Body | None
    text: str
    notes: list[str] = field(default_factory=list)
    exit_code: int = 0


# --- lookups -------------------------------------------------------------------------------------


class Tasks:
    """Finds Tasks by name or by id (`status.taskArn`, or a task ARN ending in it), listing the
    namespace at most once for the ids."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self._by_id: dict[str, Body] | None = None

    async def find(self, reference: str) -> Body | None:
        name = translate.object_reference(reference)
        found = await self.kube.get(TASKS, self.namespace, name)
        if found is not None or not translate.is_task_id(name):
            return found
        if self._by_id is None:
            listed = await self.kube.list(TASKS, self.namespace)
            self._by_id = {
                str((t.get("status") or {}).get("taskArn")): t
                for t in listed
                if (t.get("status") or {}).get("taskArn")
            }
        return self._by_id.get(name)

    async def fetch(self, reference: str) -> Body | None:
        """Like `find`, but a task found by id is read afresh (for waiters)."""
        found = await self.find(reference)
        if found is None or found["metadata"]["name"] == translate.object_reference(reference):
            return found
        return await self.kube.get(TASKS, self.namespace, found["metadata"]["name"])


def _placed(manifest: Body, namespace: str) -> Body:
    """`manifest` with its namespace set (the one it is sent to)."""
    return {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}


def _condition(obj: Mapping[str, Any], kind: str) -> Body:
    conditions = (obj.get("status") or {}).get("conditions") or ()
    return next((dict(c) for c in conditions if c.get("type") == kind), {})


async def check_task_definition(kube: KubeClient, namespace: str, reference: str) -> None:
    """That `reference` (family or family:revision) can start new tasks, as ECS checks at
    RunTask/CreateService/UpdateService: the family exists and is not being deleted, and a pinned
    revision is registered and ACTIVE. A family the operator has not registered yet passes (the
    operator waits for it)."""
    family, revision = parse_task_definition_ref(reference)
    definition = await kube.get(TASK_DEFINITIONS, namespace, family)
    where = f"in cluster {namespace}"
    if definition is None:
        raise CommandError(
            f"task definition {family} not found {where} (register it first: kubectl ecs "
            "register-task-definition)"
        )
    if definition["metadata"].get("deletionTimestamp"):
        raise CommandError(f"task definition {family} is being deleted {where}: it is INACTIVE")
    status = definition.get("status") or {}
    accepted = _condition(definition, ACCEPTED)
    if status.get("revision") is None and accepted.get("status") == "False":
        raise CommandError(
            f"task definition {family} has no registered revision: {accepted.get('message')}"
        )
    if revision is None or not status.get("revisions"):
        return
    known = {int(r["revision"]): r.get("status") for r in status["revisions"]}
    if revision not in known:
        latest = status.get("taskDefinitionArn")
        raise CommandError(
            f"task definition {family}:{revision} is not registered {where} (latest: {latest})"
        )
    if known[revision] != "ACTIVE":
        raise CommandError(
            f"task definition {family}:{revision} is {known[revision]}: ECS starts no new task "
            "from an inactive revision"
        )


# --- register-task-definition --------------------------------------------------------------------


async def register_task_definition(
    kube: KubeClient,
    namespace: str,
    request: Any,
    *,
    within: float,
    interval: float = 0.5,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
) -> Result:
    """Create or update the TaskDefinition named after the request's family, then wait (up to
    `within`) for the operator's verdict: the revision it registered, or why it refused."""
    manifest = _placed(translate.task_definition_manifest(request), namespace)
    name = manifest["metadata"]["name"]
    stored, unchanged = await _create_or_replace(kube, namespace, manifest)
    generation = int(stored["metadata"].get("generation") or 1)

    async def observed() -> Body | None:
        current = await kube.get(TASK_DEFINITIONS, namespace, name)
        if current is None:
            raise CommandError(f"task definition {name} was deleted meanwhile")
        seen = (current.get("status") or {}).get("observedGeneration")
        return current if seen is not None and int(seen) >= generation else None

    current = await _poll(observed, within, interval, sleep, clock)
    if current is None:
        raise CommandError(
            f"timed out after {within:g} s waiting for the operator to register task definition "
            f"{name} in cluster {namespace}: is ecs-operator running and watching this namespace?"
        )
    accepted = _condition(current, ACCEPTED)
    if accepted.get("status") != "True":
        latest = (current.get("status") or {}).get("taskDefinitionArn")
        keeps = f"; {latest} stays the latest revision" if latest else ""
        raise InputError(
            f"the operator refused task definition {name}: {accepted.get('message')} (the "
            f"TaskDefinition keeps this spec until it is corrected{keeps})"
        )
    described = views.describe_task_definition(current)
    notes = []
    if unchanged:
        notes.append(
            f"the spec is unchanged: {described.get('taskDefinitionArn')} stays the latest "
            "revision (a new revision is registered only when the spec changes)"
        )
    if accepted.get("reason") == "RegisteredWithUnsupportedFields":
        notes.append(f"warning: {accepted.get('message')}")
    return Result({"taskDefinition": described}, views.task_definitions_text([described]), notes)


async def _create_or_replace(kube: KubeClient, namespace: str, manifest: Body) -> tuple[Body, bool]:
    """The stored object, and whether its spec was already what `manifest` says."""
    name = manifest["metadata"]["name"]
    for _ in range(CONFLICT_ATTEMPTS):
        existing = await kube.get(TASK_DEFINITIONS, namespace, name)
        if existing is None:
            stored, created = await kube.create_or_get(TASK_DEFINITIONS, namespace, manifest)
            if created:
                return stored, False
            existing = stored  # created meanwhile (or by this create, its response lost)
        body = translate.replace_spec(existing, manifest)
        try:
            stored = await kube.replace(TASK_DEFINITIONS, namespace, name, body)
        except KubeError as error:
            if error.conflict:
                continue
            raise
        before = existing["metadata"].get("generation")
        return stored, stored["metadata"].get("generation") == before
    raise CommandError(
        f"task definition {name} kept changing while it was being updated; try again"
    )


# --- run-task, stop-task -------------------------------------------------------------------------


async def run_task(
    kube: KubeClient,
    namespace: str,
    *,
    task_definition: str,
    tokens: Sequence[str],
    overrides: Any = None,
    started_by: str | None = None,
    group: str | None = None,
    placement_constraints: Any = None,
    placement_strategy: Any = None,
) -> Result:
    """RunTask: one Task object per token (`count`), after checking the task definition."""
    translated = translate.run_task_manifests(
        task_definition,
        tokens,
        overrides=overrides,
        started_by=started_by,
        group=group,
        placement_constraints=placement_constraints,
        placement_strategy=placement_strategy,
    )
    manifests = [_placed(manifest, namespace) for manifest in translated]
    await check_task_definition(kube, namespace, task_definition)
    tasks: list[Body] = []
    failures: list[dict[str, str]] = []
    for manifest in manifests:
        name = manifest["metadata"]["name"]
        try:
            stored, created = await kube.create_or_get(TASKS, namespace, manifest)
        except KubeError as error:
            failures.append({"arn": name, "reason": error.message})
            continue
        if not created and stored.get("spec", {}).get("taskDefinition") != task_definition:
            failures.append({"arn": name, "reason": "the name is taken by another Task"})
            continue
        tasks.append(views.describe_task(stored))
    return Result(
        {"tasks": tasks, "failures": failures},
        views.tasks_text(tasks, failures),
        exit_code=1 if failures else 0,
    )


async def stop_task(kube: KubeClient, namespace: str, reference: str, reason: str | None) -> Result:
    """StopTask: `spec.desiredStatus: STOPPED` with the reason (the operator stops the Pod and
    reports stopCode UserInitiated and the reason as stoppedReason)."""
    patch = translate.stop_task_patch(reason)
    task = await Tasks(kube, namespace).find(reference)
    if task is None:
        raise CommandError(f"task {reference} not found in cluster {namespace}")
    name = task["metadata"]["name"]
    notes = []
    if (task.get("spec") or {}).get("desiredStatus") == "STOPPED":
        notes.append(f"task {name} was already stopped (its reason is not changed)")
    else:
        task = await kube.patch(TASKS, namespace, name, patch)
    described = views.describe_task(task)
    return Result({"task": described}, views.tasks_text([described]), notes)


# --- create-service, update-service --------------------------------------------------------------


async def create_service(kube: KubeClient, namespace: str, manifest: Body) -> Result:
    """CreateService. A Service of that name with the same settings is returned as it is (a
    repeated request); with other settings it is an error, as in ECS."""
    await check_task_definition(kube, namespace, manifest["spec"]["taskDefinition"])
    manifest = _placed(manifest, namespace)
    stored, created = await kube.create_or_get(SERVICES, namespace, manifest)
    name = manifest["metadata"]["name"]
    if not created:
        spec = stored.get("spec") or {}
        same = all(spec.get(key) == value for key, value in manifest["spec"].items())
        if not same or stored["metadata"].get("deletionTimestamp"):
            raise CommandError(
                f"service {name} already exists in cluster {namespace} with other settings: "
                "use update-service"
            )
    described = views.describe_service(stored)
    return Result({"service": described}, views.services_text([described]))


async def update_service(
    kube: KubeClient,
    namespace: str,
    reference: str,
    *,
    desired_count: int | None = None,
    task_definition: str | None = None,
    force_new_deployment: bool = False,
    now: datetime | None = None,
) -> Result:
    """UpdateService as a merge patch of the spec. --force-new-deployment sets a new
    `forceNewDeployment` token (the spec's stand-in for ECS's one-shot flag)."""
    name = translate.object_reference(reference)
    service = await kube.get(SERVICES, namespace, name)
    if service is None:
        raise CommandError(f"service {name} not found in cluster {namespace}")
    spec = service.get("spec") or {}
    token = None
    if force_new_deployment:
        token = translate.deployment_token(now or datetime.now(UTC), spec.get("forceNewDeployment"))
    patch = translate.update_service_patch(
        spec, desired_count=desired_count, task_definition=task_definition, force_token=token
    )
    if task_definition is not None:
        await check_task_definition(kube, namespace, task_definition)
    patched = await kube.patch(SERVICES, namespace, name, patch)
    described = views.describe_service(patched)
    return Result({"service": described}, views.services_text([described]))


# --- describe ------------------------------------------------------------------------------------


async def describe_tasks(kube: KubeClient, namespace: str, references: Sequence[str]) -> Result:
    finder = Tasks(kube, namespace)
    tasks, failures = [], []
    for reference in references:
        found = await finder.find(reference)
        if found is None:
            failures.append(views.failure(reference))
        else:
            tasks.append(views.describe_task(found))
    return Result({"tasks": tasks, "failures": failures}, views.tasks_text(tasks, failures))


async def describe_services(kube: KubeClient, namespace: str, references: Sequence[str]) -> Result:
    services, failures = [], []
    for reference in references:
        name = translate.object_reference(reference)
        found = await kube.get(SERVICES, namespace, name)
        if found is not None:
            services.append(views.describe_service(found))
            continue
        # Deleted: DRAINING (then INACTIVE) while its tasks are still going.
        selector = f"{SERVICE_LABEL}={label_value(name)}"
        tasks = await kube.list(TASKS, namespace, label_selector=selector)
        departed = views.departed_service(name, namespace, tasks)
        if departed is None:
            failures.append(views.failure(reference))
        else:
            services.append(departed)
    payload = {"services": services, "failures": failures}
    return Result(payload, views.services_text(services, failures))


# --- logs ----------------------------------------------------------------------------------------


def _pod_containers(pod: Mapping[str, Any]) -> dict[str, str]:
    """ECS container name -> the Pod's container name (the operator records the mapping; a
    Kubernetes name may differ from the ECS one, e.g. for `My_App`)."""
    spec = pod.get("spec") or {}
    names = [c["name"] for c in (*spec.get("initContainers", ()), *spec.get("containers", ()))]
    annotation = ((pod.get("metadata") or {}).get("annotations") or {}).get(CONTAINERS_ANNOTATION)
    try:
        mapping = json.loads(annotation) if annotation else {}
    except ValueError:
        mapping = {}
    if not isinstance(mapping, dict):
        mapping = {}
    return {str(mapping.get(name, name)): name for name in names}


def _owned_by(pod: Mapping[str, Any], task: Mapping[str, Any]) -> bool:
    uid = task["metadata"].get("uid")
    references = (pod.get("metadata") or {}).get("ownerReferences") or ()
    return any(r.get("uid") == uid for r in references)


def _gone(task: Mapping[str, Any], pod_name: str) -> CommandError:
    status = task.get("status") or {}
    name = task["metadata"]["name"]
    last = status.get("lastStatus")
    if last == "STOPPED":
        return CommandError(
            f"task {name} is STOPPED and its Pod {pod_name} is gone, with its logs: a stopped "
            "task keeps its Pod until the Task is deleted (ttlSecondsAfterStopped), but this "
            "one never started, was on a node that was lost, or was deleted (ship logs "
            "elsewhere with a log router or a node log agent to keep them longer)"
        )
    return CommandError(
        f"task {name} has no Pod yet (lastStatus {last or 'not yet reported'}); try again once "
        "it is RUNNING"
    )


async def logs(
    kube: KubeClient,
    namespace: str,
    reference: str,
    container: str | None = None,
    tail: int | None = None,
) -> str:
    """The log of one container of a task (its Pod has the task's name), as `kubectl logs`;
    a STOPPED task's too, while its Task exists (its Pod stays, terminated, until then)."""
    task = await Tasks(kube, namespace).find(reference)
    if task is None:
        raise CommandError(f"task {reference} not found in cluster {namespace}")
    name = task["metadata"]["name"]
    pod_name = str((task.get("status") or {}).get("podName") or name)
    pod = await kube.get(PODS, namespace, pod_name)
    if pod is None:
        raise _gone(task, pod_name)
    if not _owned_by(pod, task):
        raise CommandError(f"Pod {pod_name} is not task {name}'s (another object holds the name)")
    containers = _pod_containers(pod)
    choices = ", ".join(sorted(containers))
    if container is None:
        regular = [c["name"] for c in (pod.get("spec") or {}).get("containers", ())]
        if len(regular) != 1:
            raise InputError(
                f"-c/--container: task {name} has the containers {choices}: choose one"
            )
        chosen = regular[0]
    elif container in containers:
        chosen = containers[container]
    elif container in containers.values():
        chosen = container
    else:
        raise InputError(f"-c/--container: task {name} has no container {container!r} ({choices})")
    try:
        return await kube.pod_log(namespace, pod_name, container=chosen, tail_lines=tail)
    except KubeError as error:
        if error.not_found and await kube.get(PODS, namespace, pod_name) is None:
            raise _gone(task, pod_name) from None
        raise CommandError(
            f"the API server did not return the log of container {container or chosen} of Pod "
            f"{pod_name}: {error}"
        ) from None


# --- wait ----------------------------------------------------------------------------------------


async def _poll(
    check: Callable[[], Awaitable[Body | None]],
    within: float,
    interval: float,
    sleep: Sleep,
    clock: Clock,
) -> Body | None:
    """`check()` until it answers, at most until `within` has passed (then None)."""
    deadline = clock() + within
    while True:
        found = await check()
        if found is not None:
            return found
        left = deadline - clock()
        if left <= 0:
            return None
        await sleep(min(interval, left))


WAITERS: Final = {
    "services-stable": views.service_stable,
    "tasks-stopped": views.task_stopped,
    "tasks-running": views.task_running,
}


async def wait(
    kube: KubeClient,
    namespace: str,
    waiter: str,
    references: Sequence[str],
    *,
    within: float,
    interval: float = 1.0,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
) -> Result:
    """ECS's waiters: poll every `interval` until every object is there, fail at once when one
    can no longer get there, and fail after `within` seconds saying where each one stands."""
    verdict = WAITERS[waiter]
    tasks = Tasks(kube, namespace)

    async def fetch(reference: str) -> Body | None:
        if waiter == "services-stable":
            return await kube.get(SERVICES, namespace, translate.object_reference(reference))
        return await tasks.fetch(reference)

    pending: list[views.Verdict] = []

    async def check() -> Body | None:
        verdicts = [verdict(reference, await fetch(reference)) for reference in references]
        failed = [v.failed for v in verdicts if v.failed]
        if failed:
            raise CommandError(f"waiter {waiter} failed: " + "; ".join(failed))
        pending[:] = [v for v in verdicts if not v.done]
        return {} if not pending else None

    if await _poll(check, within, interval, sleep, clock) is None:
        raise CommandError(
            f"timed out after {within:g} s waiting for {waiter}: "
            + "; ".join(v.progress for v in pending)
        )
    return Result(None, "")
