"""`ecs-sandbox demo`: the sandbox, the operator and the examples, with a live view of tasks.

What `make sandbox` runs. In one command:

1. the sandbox cluster starts in this process (the same flags as `ecs-sandbox serve`:
   127.0.0.1, port 8080 by default, `--port 0` picks a free one; kubeconfig in
   `.sandbox/kubeconfig`);
2. the CRDs of the installed operator (what `ecs-operator crds` prints, what `crds/` holds: read
   from that command, run as a subprocess, since the sandbox never imports the operator) are
   created and the demo waits until the API serves them;
3. the operator runs as a subprocess, exactly `ecs-operator run --kubeconfig … --liveness ''`
   (`python -m ecs_operator` of this interpreter), its log in `operator.log` next to the
   kubeconfig; so `ecs-sandbox serve` plus `ecs-operator run` is the same thing in two
   processes;
4. the one line a user needs is printed (`export KUBECONFIG=…; kubectl get ecs`), then the
   script plays, its scenes one after the other, each announced in one sentence:
   - "the examples": every document of `manifests/examples/*.yaml` created through the API,
     namespaces and Secrets first, then TaskDefinitions (the demo waits, up to
     `REGISTRATION_TIMEOUT`, until the operator has registered them, so nothing that runs them
     starts before its revision exists), then the rest, so no kubectl is needed;
   - with the repository's examples (and without `--no-scenes`), the ECS service story on the
     examples' Service (`service.yaml`, 6 tasks): it spreads across the zones; a task is killed
     (its Pod gets the sandbox's exit annotation) and replaced by a new task; every node of one
     zone is lost (an AZ outage: its tasks start again in the other zones) and comes back (AZ
     rebalancing); a new TaskDefinition revision rolls out within minimumHealthyPercent and
     maximumPercent until the deployment is COMPLETED; then, on the examples' CANARY Service
     (`web-canary.yaml`'s `shop`), a new revision deploys through ECS's lifecycle stages, each
     printed as it is read (`PRODUCTION_TRAFFIC_SHIFT: 20 % of production on shop:2`), to
     COMPLETED or a rollback, its bake times set to 0 first to keep it short. Each scene waits
     on what it shows (a deadline of `SCENE_TIMEOUT` per step, then the next scene) and prints
     the service's new ECS events as they appear; the whole story takes about a minute;
5. a view of the Services (desired, running, pending, revision, rollout, running tasks per zone;
   a line for each BLUE_GREEN, LINEAR or CANARY deployment in progress: strategy, stage and
   production share) and the Tasks (rich Live table, refreshed a few times a second by list
   calls; STOPPED tasks leave it `STOPPED_SHOWN_SECONDS` after stopping, failures
   `FAILED_SHOWN_SECONDS`, and the rows are capped, routine stops leaving first, with a count
   of what is not shown; only failures are red, see `stop_severity`) plus one line of nodes by
   zone, both tables fitting the terminal's width by leaving out their least useful columns
   (readable at 80x24), until Ctrl-C, SIGTERM or `--duration` seconds;
   with `--no-live` or when stdout is not a terminal, a plain table every few seconds when
   something changed, and every task at exit;
6. then the operator is stopped (SIGTERM, SIGKILL after 10 s) and the sandbox after it; exit 0.
   Exit 1 when the operator dies on its own (the tail of its log is shown) or the sandbox cannot
   listen, 2 for bad input (an example that does not parse, or an object defined twice).

More examples are more YAML files in the examples directory. A scripted scene is a `Scene` in
`SERVICE_SCENES`: an async function of the `Stage` (API client, console, loaded examples) that
says what it is about to do with `stage.say` and waits for the outcome with `stage.follow`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import ctypes
import functools
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ecs_sandbox import serve as serve_cli
from ecs_sandbox.client import (
    CRDS,
    NODES,
    PODS,
    SERVICES,
    TASK_DEFINITIONS,
    TASKS,
    ApiClient,
    RequestError,
    Resource,
)
from ecs_sandbox.cluster import EXIT_ANNOTATION, NODE_STATE_ANNOTATION, ZONE_LABEL
from ecs_sandbox.contract import API_GROUP, ECS_API_VERSION, SERVICE_LABEL
from ecs_sandbox.runtime import Sandbox
from ecs_sandbox.tables import age

DEFAULT_EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
DEFAULT_NAMESPACE = "default"
# Created before everything else, in this order; other kinds keep their file order.
APPLY_FIRST = ("Namespace", "Secret", "ConfigMap", "TaskDefinition", "LoadBalancer")
LIVE_REFRESH_SECONDS = 0.25
PLAIN_REFRESH_SECONDS = 3.0
CRDS_SERVED_TIMEOUT = 30.0
CRDS_COMMAND_TIMEOUT = 60.0  # `ecs-operator crds` imports the operator's models
OPERATOR_STOP_TIMEOUT = 10.0
OPERATOR_LOG_TAIL = 20
PLAIN_WIDTH = 200  # a pipe has no width; rich would squeeze the table into 80 columns
STOP_TEXT_WIDTH = 90
PREFERRED_STOP_TEXT_WIDTH = 28  # columns leave the task table until the STOP text has this
# The scenes: each step waits for what it shows, polling the API, at most SCENE_TIMEOUT.
REGISTRATION_TIMEOUT = 30.0
SCENE_TIMEOUT = 45.0
SCENE_POLL_SECONDS = 0.25
SCENE_PAUSE_SECONDS = 2.0  # between scenes, to look at the result
KILL_EXIT_CODE = 137  # what a SIGKILLed process reports
NEW_GREETING = "bonjour"  # the environment change that registers a new revision
CANARY = "CANARY"  # the strategy of the Service whose staged deployment a scene shows
CANARY_HELLO = ("v2", "v1")  # its TaskDefinition's HELLO: the value set, or else the other
EVENT_TEXT_WIDTH = 160
# The tasks table: a STOPPED task stays this long, and at most this many rows (live view: what
# the terminal's height leaves). The table at exit shows every task.
STOPPED_SHOWN_SECONDS = 20.0
FAILED_SHOWN_SECONDS = 600.0  # a failure stays longer in view: it is what needs looking at
MAX_TASK_ROWS = 40
MIN_TASK_ROWS = 8
# The live view's lines besides the rows of services, deployments and tasks: both tables'
# borders and headers (8), the note on tasks not shown, the nodes line, and two to spare.
VIEW_OTHER_LINES = 12

Obj = dict[str, Any]


class DemoError(Exception):
    """Something the user must fix (a bad example, a port in use); the message says what."""


# --- the examples ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """One YAML document of an examples file."""

    source: Path
    body: Obj

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    def is_ecs(self, kind: str) -> bool:
        """Whether this is this operator's `kind` (not a namesake of another API group)."""
        return self.kind == kind and self.body["apiVersion"] == ECS_API_VERSION


def load_manifests(directory: Path) -> list[Manifest]:
    """Every document of `directory/*.yaml` (and `*.yml`), in creation order: the kinds of
    `APPLY_FIRST` first, in that order, then the rest in file order. DemoError names the file
    and document of anything that is not a Kubernetes object, or that defines an object again
    (same apiVersion, kind, namespace and name)."""
    if not directory.is_dir():
        raise DemoError(f"no examples directory {directory} (pass --examples DIR)")
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    manifests: list[Manifest] = []
    defined: dict[tuple[str, str, str | None, str], Path] = {}
    for path in files:
        try:
            documents = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as error:
            raise DemoError(f"{path}: not valid YAML: {error}") from None
        for number, body in enumerate(documents, start=1):
            if body is None:
                continue
            where = f"{path}: document {number}"
            _check_object(body, where)
            manifest = Manifest(path, body)
            # A second object of the same name would only be refused as existing, and the
            # scenes would act on the first one whatever its file says.
            namespace = body["metadata"].get("namespace")
            identity = (body["apiVersion"], manifest.kind, namespace, manifest.name)
            if identity in defined:
                raise DemoError(
                    f"{where}: {manifest.kind}/{manifest.name} is already defined in "
                    f"{defined[identity].name}"
                )
            defined[identity] = path
            manifests.append(manifest)
    if not manifests:
        raise DemoError(f"{directory}: no Kubernetes objects in *.yaml")

    def rank(manifest: Manifest) -> int:
        kind = manifest.kind
        return APPLY_FIRST.index(kind) if kind in APPLY_FIRST else len(APPLY_FIRST)

    return sorted(manifests, key=rank)


def _check_object(body: Any, where: str) -> None:
    if not isinstance(body, dict):
        raise DemoError(f"{where}: expected a mapping (a Kubernetes object)")
    for key in ("apiVersion", "kind"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise DemoError(f"{where}: {key} is missing")
    metadata = body.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise DemoError(f"{where}: metadata.name is missing")


class ResourceFinder:
    """The REST collection of an apiVersion + kind, from the API's discovery (cached)."""

    def __init__(self, kube: ApiClient) -> None:
        self._kube = kube
        self._listings: dict[str, list[Obj]] = {}

    async def find(self, api_version: str, kind: str) -> Resource:
        group, _, version = api_version.rpartition("/")
        if api_version not in self._listings:
            path = f"/apis/{api_version}" if group else f"/api/{version}"
            try:
                listing = await self._kube.request("GET", path)
            except RequestError as error:
                if error.not_found:
                    raise DemoError(f"the API does not serve {api_version}") from None
                raise
            self._listings[api_version] = listing.get("resources") or []
        for resource in self._listings[api_version]:
            if resource.get("kind") == kind and "/" not in resource.get("name", "/"):
                return Resource(group, version, resource["name"], bool(resource.get("namespaced")))
        raise DemoError(f"the API serves no kind {kind} in {api_version}")


# --- the stage and the script ---------------------------------------------------------------

T = TypeVar("T")
ObjectKey = tuple[str, str]  # namespace, name


def _name(body: Obj) -> str:
    return str((body.get("metadata") or {}).get("name", ""))


def _last_status(task: Obj) -> str:
    return str((task.get("status") or {}).get("lastStatus") or "")


def _task_zone(task: Obj) -> str:
    return str((task.get("status") or {}).get("availabilityZone") or "")


def _node_zone(node: Obj) -> str:
    return str(((node.get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL, "(no zone)"))


def _node_ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _strategy(service: Obj) -> str:
    configuration = (service.get("spec") or {}).get("deploymentConfiguration") or {}
    return str(configuration.get("strategy") or "ROLLING")


def _primary(service: Obj) -> Obj:
    deployments = (service.get("status") or {}).get("deployments") or ()
    return next((d for d in deployments if d.get("status") == "PRIMARY"), {})


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class ServiceView:
    """One read of a Service, its Tasks and the nodes: what the table shows and scenes check."""

    service: Obj
    tasks: list[Obj]
    nodes: list[Obj]

    @property
    def desired(self) -> int:
        status = self.service.get("status") or {}
        spec = self.service.get("spec") or {}
        return int(status.get("desiredCount") or spec.get("desiredCount") or 0)

    @property
    def running(self) -> list[Obj]:
        return [task for task in self.tasks if _last_status(task) == "RUNNING"]

    def task(self, name: str) -> Obj | None:
        return next((task for task in self.tasks if _name(task) == name), None)

    def primary(self) -> Obj:
        return _primary(self.service)

    def running_by_zone(self) -> Counter[str]:
        return Counter(_task_zone(task) for task in self.running)

    def zones(self) -> list[str]:
        return sorted({_node_zone(node) for node in self.nodes})

    def ready_zones(self) -> list[str]:
        return sorted({_node_zone(node) for node in self.nodes if _node_ready(node)})

    def zone_text(self) -> str:
        """`zone-a 2 · zone-b 2 · zone-c 2`: RUNNING tasks in every zone of the cluster."""
        counts = self.running_by_zone()
        return " · ".join(f"{zone} {counts[zone]}" for zone in self.zones()) or "-"

    def settled(self) -> bool:
        """desiredCount tasks RUNNING and none other on its way up or down."""
        moving = [task for task in self.tasks if _last_status(task) not in ("RUNNING", "STOPPED")]
        return len(self.running) == self.desired and not moving

    def balanced(self) -> bool:
        """ECS's AZ balance: the RUNNING tasks per zone with a Ready node (zero counts too) at
        most one apart, and none in other zones."""
        counts = self.running_by_zone()
        zones = self.ready_zones()
        if not zones or not set(counts) <= set(zones):
            return False
        per_zone = [counts[zone] for zone in zones]
        return max(per_zone) - min(per_zone) <= 1


def _settled(view: ServiceView) -> ServiceView | None:
    return view if view.settled() else None


@dataclass
class Stage:
    """What a scene may use: the API, the console to narrate on, the loaded examples."""

    kube: ApiClient
    console: Console
    examples: list[Manifest]
    examples_dir: Path
    namespace: str = DEFAULT_NAMESPACE
    finder: ResourceFinder = field(init=False)
    shown_events: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.finder = ResourceFinder(self.kube)

    def say(self, text: str, style: str = "") -> None:
        self.console.print(Text(text, style=style))

    async def create(self, manifest: Manifest) -> str:
        """Create the object; the outcome in a few words (`created`, `exists`, `rejected: …`)."""
        body = manifest.body
        try:
            resource = await self.finder.find(body["apiVersion"], manifest.kind)
            namespace = self.namespace_of(manifest) if resource.namespaced else None
            await self.kube.create(resource, namespace, body)
        except DemoError as error:
            return f"rejected: {error}"
        except RequestError as error:
            if error.code == 409:
                return "exists"
            return f"rejected: {error.message}"
        return "created"

    def namespace_of(self, manifest: Manifest) -> str:
        """Where a namespaced object of the examples goes: its own namespace, else the stage's."""
        return str(manifest.body["metadata"].get("namespace") or self.namespace)

    def service_key(self, strategy: str | None = None) -> ObjectKey:
        """The examples' first Service (with `strategy`, the first whose deploymentConfiguration
        names it): the one a scene acts on."""
        for manifest in self.examples:
            if manifest.is_ecs("Service") and strategy in (None, _strategy(manifest.body)):
                return self.namespace_of(manifest), manifest.name
        which = f"{strategy} Service" if strategy else "Service"
        raise DemoError(f"the examples hold no {which} for the scenes to show")

    async def read_service(self, key: ObjectKey) -> ServiceView:
        namespace, name = key
        service = await self.kube.get(SERVICES, namespace, name) or {}
        tasks = await self.kube.list(TASKS, namespace, label_selector=f"{SERVICE_LABEL}={name}")
        return ServiceView(service, tasks, await self.kube.list(NODES))

    def show_new_events(self, service: Obj) -> None:
        """The service's ECS events not shown yet, oldest first (status lists newest first)."""
        events = (service.get("status") or {}).get("events") or ()
        for event in reversed(events):
            if event.get("id") in self.shown_events:
                continue
            self.shown_events.add(event.get("id"))
            self.say(f"  event: {_clip(str(event.get('message', '')), EVENT_TEXT_WIDTH)}", "cyan")

    async def follow(
        self,
        key: ObjectKey,
        what: str,
        check: Callable[[ServiceView], T | None],
        seconds: float = SCENE_TIMEOUT,
    ) -> T:
        """Poll the service until `check` returns something, showing its new events meanwhile;
        DemoError naming `what` after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            view = await self.read_service(key)
            self.show_new_events(view.service)
            outcome = check(view)
            if outcome is not None:
                return outcome
            if time.monotonic() > deadline:
                raise DemoError(f"waited {seconds:.0f} s for {what}")
            await asyncio.sleep(SCENE_POLL_SECONDS)


@dataclass(frozen=True)
class Scene:
    """One step of the script: `delay` seconds after the previous one ended, `play` runs."""

    title: str
    play: Callable[[Stage], Awaitable[None]]
    delay: float = 0.0


async def apply_examples(stage: Stage) -> None:
    shown = _shown_path(stage.examples_dir)
    stage.say(f"creating {len(stage.examples)} objects from {shown}")
    registering: list[ObjectKey] = []
    for manifest in stage.examples:
        if registering and manifest.kind not in APPLY_FIRST:
            await wait_registered(stage, registering)
            registering = []
        outcome = await stage.create(manifest)
        style = "red" if outcome.startswith("rejected") else ""
        stage.say(f"  {manifest.source.name}: {manifest.kind}/{manifest.name} {outcome}", style)
        if manifest.is_ecs("TaskDefinition") and outcome == "created":
            registering.append((stage.namespace_of(manifest), manifest.name))


async def wait_registered(stage: Stage, names: list[ObjectKey]) -> None:
    """Wait until the operator has judged each TaskDefinition (a revision registered, or an
    `Accepted` condition saying why not), so what runs them never sees a pending family."""
    stage.say(f"  waiting for the operator to register {len(names)} task definitions")
    deadline = time.monotonic() + REGISTRATION_TIMEOUT
    pending = list(names)
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(SCENE_POLL_SECONDS)
        pending = [
            key for key in pending if not _judged(await stage.kube.get(TASK_DEFINITIONS, *key))
        ]
    if pending:
        late = ", ".join(name for _, name in pending)
        stage.say(f"  not registered after {REGISTRATION_TIMEOUT:.0f} s: {late}", "yellow")


def _judged(definition: Obj | None) -> bool:
    status = (definition or {}).get("status") or {}
    conditions = status.get("conditions") or ()
    return bool(status.get("revision")) or any(c.get("type") == "Accepted" for c in conditions)


async def spread_service(stage: Stage) -> None:
    key = stage.service_key()
    view = await stage.read_service(key)
    stage.say(
        f"Service {key[1]} keeps {view.desired} tasks running: watch them start and spread "
        f"evenly across the zones ({', '.join(view.zones())})."
    )
    view = await stage.follow(
        key,
        "its tasks running in every zone",
        lambda v: v if v.settled() and v.balanced() else None,
    )
    stage.say(f"{key[1]}: {len(view.running)} tasks RUNNING, by zone: {view.zone_text()}", "green")


async def kill_task(stage: Stage) -> None:
    key = stage.service_key()
    namespace = key[0]
    view = await stage.follow(key, "the service to settle", _settled)
    victim = min(view.running, key=_name)
    victim_name = _name(victim)
    pod = await stage.kube.get(PODS, namespace, victim_name) or {}
    containers = (pod.get("spec") or {}).get("containers") or ()
    if not containers:
        raise DemoError(f"task {victim_name} has no Pod to kill")
    container = containers[0]["name"]
    stage.say(
        f"Killing task {victim_name} in {_task_zone(victim)}: its container {container} exits "
        f"with code {KILL_EXIT_CODE}; watch the task stop (EssentialContainerExited) and the "
        "service start a new task in its place."
    )
    kill = {"metadata": {"annotations": {EXIT_ANNOTATION: f"{container}:{KILL_EXIT_CODE}"}}}
    await stage.kube.patch(PODS, namespace, victim_name, kill)
    before = {_name(task) for task in view.tasks}

    def replaced(view: ServiceView) -> tuple[Obj, Obj] | None:
        stopped = view.task(victim_name)
        newcomers = [task for task in view.running if _name(task) not in before]
        if stopped is None or _last_status(stopped) != "STOPPED" or not newcomers:
            return None
        return (stopped, newcomers[0]) if view.settled() else None

    stopped, newcomer = await stage.follow(key, f"task {victim_name} to be replaced", replaced)
    stage.say(
        f"{victim_name} STOPPED, {stop_text(stopped.get('status') or {})}; "
        f"replaced by {_name(newcomer)}, RUNNING in {_task_zone(newcomer)}",
        "green",
    )


async def lose_zone(stage: Stage) -> None:
    key = stage.service_key()
    view = await stage.follow(key, "the service to settle", _settled)
    counts = view.running_by_zone()
    zone = max(sorted(counts), key=counts.__getitem__)
    nodes = sorted(_name(node) for node in view.nodes if _node_zone(node) == zone)
    stage.say(
        f"Zone {zone} goes dark: its nodes {', '.join(nodes)} stop answering (an AZ outage); "
        f"watch them turn NotReady and the service replace its {counts[zone]} tasks there with "
        "new ones in the other zones."
    )
    await _set_node_state(stage, nodes, "lost")

    def zone_down(view: ServiceView) -> ServiceView | None:
        return None if zone in view.ready_zones() else view

    await stage.follow(key, f"the nodes of {zone} to turn NotReady", zone_down)
    stage.say(f"{', '.join(nodes)}: NotReady (no heartbeat)", "yellow")

    def moved(view: ServiceView) -> ServiceView | None:
        return view if view.settled() and not view.running_by_zone()[zone] else None

    view = await stage.follow(key, f"the tasks of {zone} to be replaced", moved)
    stage.say(f"replaced: {len(view.running)} tasks RUNNING, by zone: {view.zone_text()}", "green")

    await asyncio.sleep(SCENE_PAUSE_SECONDS)
    stage.say(
        f"Zone {zone} comes back: watch its nodes turn Ready and the service rebalance its "
        "tasks across all the zones (ECS AZ rebalancing: start in the emptiest zone, then stop "
        "in the fullest)."
    )
    await _set_node_state(stage, nodes, "ready")

    def rebalanced(view: ServiceView) -> ServiceView | None:
        ready = zone in view.ready_zones() and view.settled() and view.balanced()
        return view if ready else None

    view = await stage.follow(key, f"the service to rebalance into {zone}", rebalanced)
    stage.say(
        f"AZ balanced: {len(view.running)} tasks RUNNING, by zone: {view.zone_text()}", "green"
    )


async def _set_node_state(stage: Stage, nodes: list[str], state: str) -> None:
    for node in nodes:
        patch = {"metadata": {"annotations": {NODE_STATE_ANNOTATION: state}}}
        await stage.kube.patch(NODES, None, node, patch)


def _task_definition(task: Obj) -> str:
    status = task.get("status") or {}
    return str(
        status.get("taskDefinitionArn") or (task.get("spec") or {}).get("taskDefinition") or ""
    )


def deployment_bounds(view: ServiceView) -> tuple[int, int]:
    """(minimum healthy tasks, maximum tasks) of a rolling deployment, as ECS computes them."""
    configuration = (view.service.get("spec") or {}).get("deploymentConfiguration") or {}
    minimum = configuration.get("minimumHealthyPercent", 100)
    maximum = configuration.get("maximumPercent", 200)
    return math.ceil(view.desired * minimum / 100), math.floor(view.desired * maximum / 100)


async def service_family(stage: Stage, view: ServiceView) -> tuple[str, Obj]:
    """The TaskDefinition family the service runs the latest revision of, and its object;
    DemoError when the service pins a revision (a new one would not deploy) or there is none."""
    reference = str(view.service["spec"]["taskDefinition"])
    family, _, pinned = reference.partition(":")
    if pinned:
        raise DemoError(
            f"service {_name(view.service)} pins {reference}: a new revision would not deploy"
        )
    namespace = str(view.service["metadata"].get("namespace") or DEFAULT_NAMESPACE)
    definition = await stage.kube.get(TASK_DEFINITIONS, namespace, family)
    if definition is None:
        raise DemoError(f"no TaskDefinition {family}")
    return family, definition


def changed_environment(
    definition: Obj, variable: str, values: tuple[str, str]
) -> tuple[list[Obj], str]:
    """The TaskDefinition's containerDefinitions with `variable` of its first container set to
    the first of `values`, or to the second when it holds the first already (so every call
    registers a new revision), and the value set."""
    containers = copy.deepcopy(definition["spec"]["containerDefinitions"])
    environment = containers[0].get("environment") or []
    current = next((e.get("value") for e in environment if e.get("name") == variable), None)
    value = values[1] if current == values[0] else values[0]
    containers[0]["environment"] = [
        *(e for e in environment if e.get("name") != variable),
        {"name": variable, "value": value},
    ]
    return containers, value


async def start_new_revision(
    stage: Stage, key: ObjectKey, family: str, containers: list[Obj], previous: str
) -> Obj:
    """Set TaskDefinition `family`'s containerDefinitions to `containers` (registering a new
    revision); the PRIMARY deployment of service `key` once it runs a revision other than
    `previous`."""
    patch = {"spec": {"containerDefinitions": containers}}
    await stage.kube.patch(TASK_DEFINITIONS, key[0], family, patch)

    def started(view: ServiceView) -> Obj | None:
        primary = view.primary()
        return primary if primary.get("taskDefinition") not in (None, previous) else None

    return await stage.follow(key, f"a deployment of a new revision of {family}", started)


async def roll_out_revision(stage: Stage) -> None:
    key = stage.service_key()
    view = await stage.follow(key, "the service to settle", _settled)
    family, definition = await service_family(stage, view)
    containers, greeting = changed_environment(definition, "GREETING", (NEW_GREETING, "hello"))
    previous = str(view.primary().get("taskDefinition", view.service["spec"]["taskDefinition"]))
    min_healthy, max_tasks = deployment_bounds(view)
    stage.say(
        f"Setting GREETING={greeting} in TaskDefinition {family} registers a new revision; watch "
        f"the service replace its {previous} tasks with new ones, never fewer than {min_healthy} "
        f"running nor more than {max_tasks} in all, until the deployment is COMPLETED."
    )
    primary = await start_new_revision(stage, key, family, containers, previous)
    deployment, revision = primary["id"], primary["taskDefinition"]
    stage.say(f"deployment {deployment} of {revision} started (PRIMARY)", "yellow")

    def completed(view: ServiceView) -> ServiceView | None:
        primary = view.primary()
        done = (
            primary.get("id") == deployment
            and primary.get("rolloutState") == "COMPLETED"
            and view.settled()
            and all(_task_definition(task) == revision for task in view.running)
        )
        return view if done else None

    view = await stage.follow(key, f"deployment {deployment} to complete", completed)
    stage.say(
        f"deployment {deployment} of {revision} COMPLETED: {len(view.running)} tasks RUNNING "
        f"{revision}, spread {view.zone_text()}",
        "green",
    )


def stage_text(deployment: Obj) -> str:
    """Where a BLUE_GREEN, LINEAR or CANARY deployment is, from its `status.deployments[]`
    entry: `PRODUCTION_TRAFFIC_SHIFT: 20 % of production on shop:2` ('' out of any stage)."""
    stage = deployment.get("lifecycleStage")
    if not stage:
        return ""
    weight = float(deployment.get("productionTrafficWeight") or 0)
    return f"{stage}: {weight:g} % of production on {deployment.get('taskDefinition', '')}"


def _deployment(view: ServiceView, deployment_id: str) -> Obj:
    deployments = (view.service.get("status") or {}).get("deployments") or ()
    return next((d for d in deployments if d.get("id") == deployment_id), {})


def _on_revision(view: ServiceView, deployment_id: str) -> ServiceView | None:
    """The view once `deployment_id` is COMPLETED and every task RUNNING its revision."""
    deployment = _deployment(view, deployment_id)
    done = (
        deployment.get("rolloutState") == "COMPLETED"
        and view.settled()
        and all(_task_definition(task) == deployment["taskDefinition"] for task in view.running)
    )
    return view if done else None


async def deploy_canary(stage: Stage) -> None:
    key = stage.service_key(CANARY)
    namespace, name = key

    def ready(view: ServiceView) -> ServiceView | None:
        primary = view.primary()
        return _on_revision(view, primary["id"]) if primary.get("id") else None

    view = await stage.follow(key, f"service {name} to settle", ready)
    family, definition = await service_family(stage, view)
    containers, hello = changed_environment(definition, "HELLO", CANARY_HELLO)
    previous = str(view.primary()["taskDefinition"])
    configuration = view.service["spec"].get("deploymentConfiguration") or {}
    canary = configuration.get("canaryConfiguration") or {}
    share = f"{canary['canaryPercent']:g} %" if canary.get("canaryPercent") else "a share"
    stage.say(
        f"Setting HELLO={hello} in TaskDefinition {family} registers a new revision; service "
        f"{name} deploys it with CANARY: watch its lifecycle stages as it starts beside "
        f"{previous}, takes {share} of production, then all of it, and {previous} stops."
    )
    # Bake times are whole minutes: 0 is the only shorter wait than the example's.
    canary_bake = canary.get("canaryBakeTimeInMinutes")
    bake = configuration.get("bakeTimeInMinutes")
    if (canary_bake, bake) != (0, 0):
        at_share = f"{canary_bake} min" if canary_bake is not None else "its default time"
        stage.say(
            f"(The example waits {at_share} at the canary share and bakes {bake or 0} min once "
            "all production moved; to keep the show short, both are set to 0 first.)"
        )
        no_bakes: Obj = {
            "spec": {
                "deploymentConfiguration": {
                    "canaryConfiguration": {"canaryBakeTimeInMinutes": 0},
                    "bakeTimeInMinutes": 0,
                }
            }
        }
        patched = await stage.kube.patch(SERVICES, namespace, name, no_bakes)
        generation = int(patched["metadata"].get("generation") or 0)

        def observed(view: ServiceView) -> ServiceView | None:
            seen = (view.service.get("status") or {}).get("observedGeneration") or 0
            return view if int(seen) >= generation else None

        await stage.follow(key, f"the operator to read {name}'s bake times", observed)
    primary = await start_new_revision(stage, key, family, containers, previous)
    deployment, revision = primary["id"], primary["taskDefinition"]
    strategy = primary.get("strategy") or _strategy(view.service)
    stage.say(f"deployment {deployment} of {revision} started ({strategy})", "yellow")

    shown = ""

    def moved(view: ServiceView) -> tuple[str, ServiceView] | None:
        """What is new: a stage (or share) not shown yet, COMPLETED, or FAILED."""
        state = _deployment(view, deployment).get("rolloutState")
        if state == "FAILED":
            return state, view
        if state == "COMPLETED":
            return (state, view) if _on_revision(view, deployment) else None
        text = stage_text(_deployment(view, deployment))
        return (text, view) if text and text != shown else None

    while True:
        what = f"deployment {deployment} to move on from {shown or 'its start'}"
        outcome, view = await stage.follow(key, what, moved)
        if outcome in ("COMPLETED", "FAILED"):
            break
        stage.say(outcome, "yellow")
        shown = outcome
    if outcome == "COMPLETED":
        weight = float(_deployment(view, deployment).get("productionTrafficWeight") or 0)
        stage.say(
            f"COMPLETED: {len(view.running)} tasks RUNNING {revision}, {weight:g} % of "
            f"production on it; {previous} stopped",
            "green",
        )
        return
    reason = _deployment(view, deployment).get("rolloutStateReason") or "no reason given"
    stage.say(f"deployment {deployment} FAILED: {reason}", "red")
    back = view.primary()
    if back.get("rollback"):
        stage.say(f"rolling back: production returns whole to {previous}", "yellow")
        rollback = functools.partial(_on_revision, deployment_id=back["id"])
        view = await stage.follow(key, f"the rollback to {previous}", rollback)
        stage.say(f"rolled back: {len(view.running)} tasks RUNNING {previous}", "yellow")


SERVICE_SCENES: tuple[Scene, ...] = (
    Scene("a service spreads across the zones", spread_service, SCENE_PAUSE_SECONDS),
    Scene("killing a task", kill_task, SCENE_PAUSE_SECONDS),
    Scene("losing the nodes of a zone", lose_zone, SCENE_PAUSE_SECONDS),
    Scene("a rolling deployment", roll_out_revision, SCENE_PAUSE_SECONDS),
    Scene("a CANARY deployment's lifecycle stages", deploy_canary, SCENE_PAUSE_SECONDS),
)
SCRIPT: tuple[Scene, ...] = (Scene("the examples", apply_examples), *SERVICE_SCENES)


def choose_script(examples_dir: Path, *, scenes: bool) -> tuple[Scene, ...]:
    """The whole SCRIPT with the repository's examples; only "the examples" with `--no-scenes`
    or another examples directory (the scenes act on the repository's Services)."""
    if scenes and examples_dir.resolve() == DEFAULT_EXAMPLES.resolve():
        return SCRIPT
    return SCRIPT[:1]


async def play(script: tuple[Scene, ...], stage: Stage) -> None:
    for number, scene in enumerate(script, start=1):
        await asyncio.sleep(scene.delay)
        stage.say(f"── scene {number}/{len(script)}: {scene.title}", "bold")
        try:
            await scene.play(stage)
        except (RequestError, DemoError, OSError) as error:
            stage.say(f"scene {scene.title!r} failed: {error}", "red")
    stage.say(
        f"── script done ({len(script)} scene{'' if len(script) == 1 else 's'}); the cluster "
        "keeps running: try kubectl get ecs",
        "bold",
    )


# --- the view -------------------------------------------------------------------------------
#
# Both tables fit the terminal's width by leaving columns out, least useful first, rather than
# letting rich squeeze every column (at 80 columns it squeezed the counts to nothing and cut the
# task table after DESIRED). A column is never narrower than its widest cell, except the task's
# STOP text, which takes the room left (an ellipsis cuts it), and, as a last resort on a very
# narrow terminal, the name.

_STATUS_STYLES = {
    "RUNNING": "green",
    "STOPPED": "dim",
    "PROVISIONING": "yellow",
    "PENDING": "yellow",
    "ACTIVATING": "yellow",
    "DEACTIVATING": "magenta",
    "STOPPING": "magenta",
    "DEPROVISIONING": "magenta",
}
_HEALTH_STYLES = {"HEALTHY": "green", "UNHEALTHY": "red", "UNKNOWN": "dim"}
COLUMNS = (
    "NAMESPACE",
    "NAME",
    "TASK DEFINITION",
    "LAST STATUS",
    "DESIRED",
    "STOP",
    "NODE",
    "ZONE",
    "HEALTH",
    "AGE",
)
# Which columns go first when the width is short: the first of this list leaves first. NAME,
# LAST STATUS and STOP always stay.
TASK_COLUMNS_LEAVING = ("NAMESPACE", "NODE", "DESIRED", "HEALTH", "TASK DEFINITION", "AGE", "ZONE")
# Stop severities: how a stopped (or stopping) task's STOP text is drawn, and how long it stays.
FAILURE, WARNING, ROUTINE, COMPLETED = "failure", "warning", "routine", "completed"
_STOP_STYLES = {FAILURE: "red", WARNING: "yellow", ROUTINE: "dim", COMPLETED: ""}
# A task the service scheduler stopped for failed container or ELB health checks carries this
# annotation (its stopCode, ServiceSchedulerInitiated, cannot say so).
FAILED_HEALTH_CHECKS_ANNOTATION = f"{API_GROUP}/failed-health-checks"
MIN_NAME_WIDTH = 8


def stop_text(status: Obj) -> str:
    """`stopCode (exit codes): stoppedReason` of a stopped or stopping task, else ''."""
    code = status.get("stopCode")
    if not code:
        return ""
    exits = [c for c in status.get("containers") or () if c.get("exitCode") is not None]
    if len(exits) == 1:
        code += f" (exit {exits[0]['exitCode']})"
    elif exits:
        code += " (exit " + ", ".join(f"{c['name']}={c['exitCode']}" for c in exits) + ")"
    reason = status.get("stoppedReason")
    return f"{code}: {reason}" if reason else code


def stop_severity(task: Obj) -> str:
    """How serious a task's stop is ('' while it has no stopCode):

    - `failure`: it failed to start, an essential container exited non-zero (or without a code),
      or its service stopped it for failed health checks;
    - `warning`: the infrastructure took it away (its node was lost, a Spot interruption);
    - `routine`: its service scheduler stopped it (scale-in, a deployment, AZ rebalancing, a
      draining node) or a user did (StopTask): work as usual, not a failure;
    - `completed`: its essential containers exited 0 (a batch job done)."""
    status = task.get("status") or {}
    code = status.get("stopCode")
    if not code:
        return ""
    if code == "TaskFailedToStart":
        return FAILURE
    if code == "EssentialContainerExited":
        exits = [c.get("exitCode") for c in status.get("containers") or ()]
        known = [e for e in exits if e is not None]
        return COMPLETED if known and all(e == 0 for e in known) else FAILURE
    if code in ("ServiceSchedulerInitiated", "UserInitiated"):
        annotations = (task.get("metadata") or {}).get("annotations") or {}
        failed = annotations.get(FAILED_HEALTH_CHECKS_ANNOTATION) == "true"
        return FAILURE if failed else ROUTINE
    return WARNING  # TerminationNotice, SpotInterruption


def task_row(task: Obj, now: datetime) -> tuple[str, ...]:
    """The cells of one task, in `COLUMNS` order."""
    metadata = task.get("metadata") or {}
    spec = task.get("spec") or {}
    status = task.get("status") or {}
    return (
        metadata.get("namespace", ""),
        metadata.get("name", ""),
        _task_definition(task),
        status.get("lastStatus") or "",
        status.get("desiredStatus") or spec.get("desiredStatus", ""),
        stop_text(status),
        status.get("nodeName") or "",
        status.get("availabilityZone") or "",
        status.get("healthStatus") or "",
        age(metadata.get("creationTimestamp"), now) or "",
    )


def _sorted_tasks(tasks: list[Obj]) -> list[Obj]:
    def key(task: Obj) -> tuple[str, str, str]:
        metadata = task.get("metadata") or {}
        return (
            metadata.get("namespace", ""),
            metadata.get("creationTimestamp", ""),
            metadata.get("name", ""),
        )

    return sorted(tasks, key=key)


def zone_summary(nodes: list[Obj], tasks: list[Obj], width: int | None = None) -> str:
    """One line: per zone, the Ready nodes (and cordoned ones) and the RUNNING tasks; shorter
    words when the long form does not fit `width`."""
    running = Counter(_task_zone(task) for task in tasks if _last_status(task) == "RUNNING")
    zones: dict[str, list[Obj]] = {}
    for node in nodes:
        zones.setdefault(_node_zone(node), []).append(node)
    if not zones:
        return "nodes  (none)"
    long_parts, short_parts = [], []
    for zone in sorted(zones):
        members = zones[zone]
        ready = sum(_node_ready(node) for node in members)
        cordoned = sum(bool((node.get("spec") or {}).get("unschedulable")) for node in members)
        count = running[zone]
        text = f"{zone}: {ready}/{len(members)} nodes ready"
        short = f"{zone}: {ready}/{len(members)} up"
        if cordoned:
            text += f" ({cordoned} cordoned)"
            short += f" ({cordoned} cordoned)"
        tasks_text = f"{count} task{'' if count == 1 else 's'}"
        long_parts.append(f"{text}, {tasks_text} running")
        short_parts.append(f"{short}, {tasks_text}")
    text = "nodes  " + "  │  ".join(long_parts)
    if width is None or len(text) <= width:
        return text
    short_text = " │ ".join(short_parts)
    return short_text if len(short_text) <= width else "\n".join(short_parts)


def _stopped_at(task: Obj) -> datetime | None:
    stopped_at = (task.get("status") or {}).get("stoppedAt")
    if _last_status(task) != "STOPPED" or not isinstance(stopped_at, str):
        return None
    try:
        return datetime.fromisoformat(stopped_at.replace("Z", "+00:00"))
    except ValueError:
        return None


def _stopped_long_ago(task: Obj, now: datetime) -> bool:
    """STOPPED longer ago than its kind of stop stays in view: `STOPPED_SHOWN_SECONDS`, or
    `FAILED_SHOWN_SECONDS` for a failure."""
    stopped = _stopped_at(task)
    if stopped is None:
        return False
    kept = FAILED_SHOWN_SECONDS if stop_severity(task) == FAILURE else STOPPED_SHOWN_SECONDS
    return (now - stopped).total_seconds() > kept


# When rows are short, tasks leave in this order (then oldest first): routine stops, completed
# ones, the infrastructure's, failures, and live tasks last.
_LEAVING_RANK = {ROUTINE: 0, COMPLETED: 1, WARNING: 2, FAILURE: 3}


def shown_tasks(tasks: list[Obj], now: datetime, max_rows: int | None) -> tuple[list[Obj], str]:
    """The tasks the view shows, in creation order, and a note on those it leaves out ('' when
    none): tasks STOPPED long ago (see `_stopped_long_ago`), then, over `max_rows`, routine
    stops before failures and stopped tasks before live ones, oldest first. `max_rows=None`
    shows every task."""
    ordered = _sorted_tasks(tasks)
    if max_rows is None:
        return ordered, ""
    shown = [task for task in ordered if not _stopped_long_ago(task, now)]
    if len(shown) > max_rows:

        def leaving(index: int) -> tuple[int, int]:
            task = shown[index]
            stopped = _last_status(task) == "STOPPED"
            rank = _LEAVING_RANK.get(stop_severity(task), 0) if stopped else len(_LEAVING_RANK)
            return rank, index

        leaving_order = sorted(range(len(shown)), key=leaving)
        kept = sorted(leaving_order[len(shown) - max_rows :])
        shown = [shown[i] for i in kept]
    hidden = [task for task in ordered if task not in shown]
    if not hidden:
        return shown, ""
    stopped = sum(_last_status(task) == "STOPPED" for task in hidden)
    return shown, (
        f"{len(hidden)} more task{'' if len(hidden) == 1 else 's'} not shown ({stopped} STOPPED)"
        "; kubectl get ecstask lists them all"
    )


def _table_width(widths: list[int]) -> int:
    """What rich needs for columns of these widths: padding and a border per column, and one."""
    return sum(widths) + 3 * len(widths) + 1


def fit_columns(
    names: tuple[str, ...],
    rows: list[tuple[str, ...]],
    width: int,
    leaving: tuple[str, ...],
    flexible: str | None = None,
    flexible_min: int = 0,
) -> tuple[list[int], dict[int, int]]:
    """The indexes of the columns to show and each one's width, fitting `width`: columns leave
    in the `leaving` order until the rest fit at their natural width (the widest cell or
    header) with the `flexible` column at `flexible_min` (or its natural width when that is
    less); the flexible column then takes what is left."""
    natural = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(names)]
    flex = names.index(flexible) if flexible is not None else None

    def needed(chosen: list[int]) -> int:
        widths = [min(natural[i], flexible_min) if i == flex else natural[i] for i in chosen]
        return _table_width(widths)

    chosen = list(range(len(names)))
    for name in leaving:
        if needed(chosen) <= width:
            break
        chosen.remove(names.index(name))
    widths = {i: natural[i] for i in chosen}
    if flex is not None:
        room = width - _table_width([natural[i] for i in chosen if i != flex] + [0])
        widths[flex] = max(min(natural[flex], flexible_min), min(natural[flex], room))
    return chosen, widths


def _shrink_name(widths: dict[int, int], name_index: int, width: int) -> None:
    """Last resort on a very narrow terminal: the name column gives way (down to
    `MIN_NAME_WIDTH`, an ellipsis cutting it)."""
    excess = _table_width(list(widths.values())) - width
    if excess > 0:
        widths[name_index] = max(MIN_NAME_WIDTH, widths[name_index] - excess)


def task_table(tasks: list[Obj], now: datetime, *, width: int, plain: bool) -> Table:
    """The tasks, one row each, fitting `width` columns (see `fit_columns`): columns leave until
    the STOP text has `PREFERRED_STOP_TEXT_WIDTH` (at 80 columns: NAME, LAST STATUS, STOP and
    ZONE stay), then it takes the room left, at most `STOP_TEXT_WIDTH`; it is drawn red for a
    failure only (`stop_severity`)."""
    rows = [task_row(task, now) for task in tasks]
    chosen, widths = fit_columns(
        COLUMNS,
        rows,
        width,
        TASK_COLUMNS_LEAVING,
        flexible="STOP",
        flexible_min=PREFERRED_STOP_TEXT_WIDTH,
    )
    stop = COLUMNS.index("STOP")
    widths[stop] = min(widths[stop], STOP_TEXT_WIDTH)
    _shrink_name(widths, COLUMNS.index("NAME"), width)
    table = Table(box=box.SIMPLE_HEAD if plain else box.ROUNDED, pad_edge=not plain)
    for index in chosen:
        table.add_column(
            COLUMNS[index],
            no_wrap=True,
            overflow="ellipsis",
            min_width=widths[index],
            max_width=widths[index],
        )
    for task, cells in zip(tasks, rows, strict=True):
        styles = {
            3: _STATUS_STYLES.get(cells[3], ""),
            5: _STOP_STYLES.get(stop_severity(task), ""),
            8: _HEALTH_STYLES.get(cells[8], ""),
        }
        table.add_row(*(Text(cells[i], style=styles.get(i, "")) for i in chosen))
    return table


SERVICE_COLUMNS = (
    "NAMESPACE",
    "SERVICE",
    "DESIRED",
    "RUNNING",
    "PENDING",
    "TASK DEFINITION",
    "ROLLOUT",
    "DEPLOYMENTS",
    "RUNNING BY ZONE",
)
# The first leaves first; the counts and the rollout state always stay (the nodes line below
# the tables says what runs in each zone).
SERVICE_COLUMNS_LEAVING = ("DEPLOYMENTS", "NAMESPACE", "RUNNING BY ZONE", "TASK DEFINITION")
_ROLLOUT_STYLES = {"COMPLETED": "green", "IN_PROGRESS": "yellow", "FAILED": "red"}


def service_views(services: list[Obj], tasks: list[Obj], nodes: list[Obj]) -> list[ServiceView]:
    """Each service with its tasks (by the service label, in its namespace), by name."""
    views = []
    for service in services:
        metadata = service.get("metadata") or {}
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        own = [
            task
            for task in tasks
            if (task.get("metadata") or {}).get("namespace", "") == namespace
            and ((task.get("metadata") or {}).get("labels") or {}).get(SERVICE_LABEL) == name
        ]
        views.append(ServiceView(service, own, nodes))
    return sorted(
        views, key=lambda view: (view.service["metadata"].get("namespace", ""), _name(view.service))
    )


def service_row(view: ServiceView) -> tuple[str, ...]:
    """The cells of one service, in `SERVICE_COLUMNS` order."""
    metadata = view.service.get("metadata") or {}
    status = view.service.get("status") or {}
    deployments = " · ".join(
        f"{d.get('status', '')} {d.get('taskDefinition', '')} ({d.get('runningCount', 0)} running)"
        for d in status.get("deployments") or ()
    )
    return (
        metadata.get("namespace", ""),
        metadata.get("name", ""),
        str(view.desired),
        str(status.get("runningCount", 0)),
        str(status.get("pendingCount", 0)),
        str(status.get("taskDefinition") or (view.service.get("spec") or {}).get("taskDefinition")),
        str(view.primary().get("rolloutState") or ""),
        deployments,
        view.zone_text(),
    )


def service_table(views: list[ServiceView], *, plain: bool, width: int = PLAIN_WIDTH) -> Table:
    """The services, one row each, fitting `width` (see `fit_columns`): the counts stay."""
    rows = [service_row(view) for view in views]
    chosen, widths = fit_columns(SERVICE_COLUMNS, rows, width, SERVICE_COLUMNS_LEAVING)
    _shrink_name(widths, SERVICE_COLUMNS.index("SERVICE"), width)
    table = Table(box=box.SIMPLE_HEAD if plain else box.ROUNDED, pad_edge=not plain)
    for index in chosen:
        table.add_column(
            SERVICE_COLUMNS[index],
            no_wrap=True,
            overflow="ellipsis",
            min_width=widths[index],
            max_width=widths[index],
        )
    rollout = SERVICE_COLUMNS.index("ROLLOUT")
    for cells in rows:
        styles = {rollout: _ROLLOUT_STYLES.get(cells[rollout], "")}
        table.add_row(*(Text(cells[i], style=styles.get(i, "")) for i in chosen))
    return table


def deployment_lines(services: list[Obj], width: int | None = None) -> list[str]:
    """One line per service whose PRIMARY deployment is in a lifecycle stage (a BLUE_GREEN,
    LINEAR or CANARY deployment in progress), by namespace and name: `shop  CANARY
    PRODUCTION_TRAFFIC_SHIFT: 20 % of production on shop:2`, cut to `width`."""
    lines = []
    for service in sorted(services, key=lambda s: (s["metadata"].get("namespace", ""), _name(s))):
        primary = _primary(service)
        text = stage_text(primary)
        if text:
            strategy = primary.get("strategy") or _strategy(service)
            line = f"{_name(service)}  {strategy}  {text}"
            lines.append(line if width is None else _clip(line, width))
    return lines


@dataclass
class Snapshot:
    """What the view shows, read from the API in one go."""

    tasks: list[Obj]
    nodes: list[Obj]
    services: list[Obj]
    error: str = ""

    def render(self, now: datetime, *, width: int, plain: bool, max_task_rows: int | None) -> Group:
        """Services (when there are any), tasks (see `shown_tasks`), nodes by zone."""
        parts: list[Any] = []
        if self.services:
            views = service_views(self.services, self.tasks, self.nodes)
            parts.append(service_table(views, plain=plain, width=width))
            for line in deployment_lines(self.services, width):
                parts.append(Text(line, style="yellow"))
        tasks, note = shown_tasks(self.tasks, now, max_task_rows)
        parts.append(task_table(tasks, now, width=width, plain=plain))
        if note:
            parts.append(Text(note, style="dim"))
        parts.append(Text(zone_summary(self.nodes, self.tasks, width), style="cyan"))
        if self.error:
            parts.append(Text(f"API error (retrying): {self.error}", style="red"))
        return Group(*parts)

    def task_rows(self, height: int) -> int:
        """How many task rows leave room on a terminal of `height` lines for the rest: a row
        per service and per deployment line, and `VIEW_OTHER_LINES`."""
        others = len(self.services) + len(deployment_lines(self.services)) + VIEW_OTHER_LINES
        return max(MIN_TASK_ROWS, height - others)

    def signature(self) -> tuple[Any, ...]:
        """Everything shown except the ages: the plain view prints only when this changes."""
        epoch = datetime.fromtimestamp(0, UTC)
        rows = tuple(task_row(task, epoch)[:-1] for task in _sorted_tasks(self.tasks))
        services = tuple(map(service_row, service_views(self.services, self.tasks, self.nodes)))
        staged = tuple(deployment_lines(self.services))
        return (services, staged, rows, zone_summary(self.nodes, self.tasks), self.error)


async def read_snapshot(kube: ApiClient, previous: Snapshot | None) -> Snapshot:
    try:
        tasks = await kube.list(TASKS)
        nodes = await kube.list(NODES)
        services = await kube.list(SERVICES)
    except RequestError as error:
        if previous is None:
            return Snapshot([], [], [], error.message)
        return Snapshot(previous.tasks, previous.nodes, previous.services, error.message)
    return Snapshot(tasks, nodes, services)


# --- the operator subprocess ----------------------------------------------------------------

PR_SET_PDEATHSIG = 1  # prctl(2)


def _die_with_parent(parent: int) -> None:
    """In the operator's child process before it runs: on Linux, SIGTERM it when the demo
    dies however it dies (SIGKILL included), so no operator outlives its sandbox and takes the
    port and the Lease of a later sandbox. (The signal follows the thread that started the
    child: `start` runs on the event loop's thread, which lives as long as the demo.)"""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the demo died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def operator_command(*args: str) -> list[str]:
    """`ecs-operator ARGS…` as the operator installed next to this interpreter runs it."""
    return [sys.executable, "-m", "ecs_operator", *args]


class OperatorProcess:
    """`ecs-operator run` against the sandbox, its output appended to `log_path`."""

    def __init__(self, kubeconfig: Path, log_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return operator_command("run", "--kubeconfig", str(self.kubeconfig.resolve()))

    def start(self) -> int:
        # No liveness endpoint: nothing probes it here, and two demos would share its port.
        command = [*self.command(), "--liveness", ""]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig.resolve())}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"===== {shlex.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=functools.partial(_die_with_parent, os.getpid()),
            )
        return self.process.pid

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    async def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, OPERATOR_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    def tail(self, lines: int = OPERATOR_LOG_TAIL) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


# --- the command ----------------------------------------------------------------------------


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of seconds, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Every flag of `ecs-sandbox serve` (port, kubeconfig, zones, nodes, faults) works here.
    serve_cli.add_arguments(parser)
    demo = parser.add_argument_group("demo")
    demo.add_argument(
        "--examples",
        type=Path,
        default=DEFAULT_EXAMPLES,
        metavar="DIR",
        help="directory of YAML manifests to create (default: the repository's manifests/examples)",
    )
    demo.add_argument(
        "--no-scenes",
        action="store_true",
        help="only create the examples, for a quiet cluster (the scenes also stay off when "
        "--examples names another directory: they act on the repository's Services)",
    )
    demo.add_argument(
        "--no-live",
        action="store_true",
        help="print a plain table every few seconds instead of the live view (the default "
        "when stdout is not a terminal)",
    )
    demo.add_argument(
        "--duration",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds from ready (default: run until Ctrl-C)",
    )


def main(args: argparse.Namespace) -> int:
    console = _console()
    try:
        examples = load_manifests(args.examples)
        sandbox = serve_cli.sandbox_from_args(args)
    except (DemoError, ValueError) as error:
        print(f"ecs-sandbox demo: error: {error}", file=sys.stderr)
        return 2
    demo = Demo(
        sandbox,
        examples,
        args.examples,
        console,
        script=choose_script(args.examples, scenes=not args.no_scenes),
        live=console.is_terminal and not args.no_live,
        duration=args.duration,
    )
    try:
        return asyncio.run(demo.run())
    except DemoError as error:
        print(f"ecs-sandbox demo: error: {error}", file=sys.stderr)
        return 1


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        return Console(highlight=False, width=PLAIN_WIDTH)
    return console


def _shown_path(path: Path) -> str:
    """`path` relative to the working directory when it is below it (shorter to read)."""
    resolved = path.resolve()
    with contextlib.suppress(ValueError):
        return str(resolved.relative_to(Path.cwd()))
    return str(resolved)


class Demo:
    """The whole run: sandbox, CRDs, operator, script and view, then the orderly shutdown."""

    def __init__(
        self,
        sandbox: Sandbox,
        examples: list[Manifest],
        examples_dir: Path,
        console: Console,
        *,
        script: tuple[Scene, ...],
        live: bool,
        duration: float | None,
    ) -> None:
        self.sandbox = sandbox
        self.examples = examples
        self.examples_dir = examples_dir
        self.console = console
        self.script = script
        self.live = live
        self.duration = duration
        self.stopping = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        async with contextlib.AsyncExitStack() as cleanup:
            # Unwound in reverse: the operator first, the sandbox it talks to last.
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, self.stopping.set)
                cleanup.callback(loop.remove_signal_handler, signum)
            # The operator's CRDs are read (a subprocess) while the sandbox starts.
            crds = asyncio.create_task(operator_crds())
            cleanup.callback(crds.cancel)
            cleanup.push_async_callback(self.sandbox.stop)
            try:
                await self.sandbox.start()
            except OSError as error:
                raise DemoError(f"the sandbox cannot listen: {error} (try --port 0)") from None
            kubeconfig = self.sandbox.kubeconfig_path
            kube = ApiClient(self.sandbox.url)
            cleanup.push_async_callback(kube.close)
            operator = OperatorProcess(kubeconfig, kubeconfig.parent / "operator.log")
            cleanup.push_async_callback(operator.stop)
            code = await self._run(kube, operator, crds)
        return code

    async def _run(
        self, kube: ApiClient, operator: OperatorProcess, crds: Awaitable[list[Obj]]
    ) -> int:
        stage = Stage(kube, self.console, self.examples, self.examples_dir)
        config = self.sandbox.cluster_config
        assert config is not None
        stage.say(
            f"sandbox serving {self.sandbox.url}: {len(config.zones)} zones of "
            f"{config.nodes_per_zone} nodes ({', '.join(config.zones)})"
        )
        plurals = await install_crds(kube, await crds)
        stage.say(f"CRDs served: {', '.join(plurals)}")
        pid = operator.start()
        stage.say(f"operator started (pid {pid}), log: {_shown_path(operator.log_path)}")
        kubeconfig = shlex.quote(str(self.sandbox.kubeconfig_path.resolve()))
        stage.say(
            f"ready at {self.sandbox.url}: export KUBECONFIG={kubeconfig}; kubectl get ecs"
            + ("" if self.duration else "   (Ctrl-C to stop)"),
            "bold green",
        )
        if self.duration is not None:
            asyncio.get_running_loop().call_later(self.duration, self.stopping.set)
        script = asyncio.create_task(play(self.script, stage))
        try:
            return await self._watch(kube, operator)
        finally:
            script.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await script

    async def _watch(self, kube: ApiClient, operator: OperatorProcess) -> int:
        """Show the tasks until asked to stop (0) or until the operator dies (1)."""
        snapshot: Snapshot | None = None
        shown: tuple[Any, ...] | None = None
        interval = LIVE_REFRESH_SECONDS if self.live else PLAIN_REFRESH_SECONDS
        with self._live_view() as live:
            while not self.stopping.is_set():
                if operator.exit_code is not None:
                    self.console.print(
                        Text(
                            f"the operator exited with code {operator.exit_code}; "
                            f"the end of {_shown_path(operator.log_path)}:\n{operator.tail()}",
                            style="red",
                        )
                    )
                    return 1
                snapshot = await read_snapshot(kube, snapshot)
                now = datetime.now(UTC)
                if live is not None:
                    rows = snapshot.task_rows(self.console.height)
                    live.update(
                        snapshot.render(
                            now, width=self.console.width, plain=False, max_task_rows=rows
                        )
                    )
                elif snapshot.signature() != shown:
                    shown = snapshot.signature()
                    self._print_plain(snapshot, now, "tasks", MAX_TASK_ROWS)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):  # unlike wait_for, never eats a cancel
                        await self.stopping.wait()
        if live is None:
            final = await read_snapshot(kube, snapshot)
            self._print_plain(final, datetime.now(UTC), "tasks at exit", None)
        self.console.print(Text("stopping the operator and the sandbox"))
        return 0

    @contextlib.contextmanager
    def _live_view(self) -> Iterator[Live | None]:
        if not self.live:
            yield None
            return
        with Live(
            Text("reading the tasks…"),
            console=self.console,
            refresh_per_second=1 / LIVE_REFRESH_SECONDS,
        ) as live:
            yield live

    def _print_plain(
        self, snapshot: Snapshot, now: datetime, title: str, max_task_rows: int | None
    ) -> None:
        clock = time.strftime("%H:%M:%S")
        self.console.print(Text(f"── {title} at {clock} ({len(snapshot.tasks)})", style="bold"))
        self.console.print(
            snapshot.render(now, width=self.console.width, plain=True, max_task_rows=max_task_rows)
        )


async def operator_crds() -> list[Obj]:
    """The CRDs of the installed operator, as `ecs-operator crds` prints them (what `crds/`
    holds), run with this interpreter: the sandbox never imports the operator, and this is the
    operator the demo then runs. DemoError when the command fails (no operator installed)."""
    command = operator_command("crds")
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as error:
        raise DemoError(f"cannot run {shlex.join(command)}: {error}") from None
    try:
        output, errors = await asyncio.wait_for(process.communicate(), CRDS_COMMAND_TIMEOUT)
    except BaseException as error:  # the timeout, or the demo stopping meanwhile
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        if isinstance(error, TimeoutError):
            raise DemoError(
                f"{shlex.join(command)} printed no CRDs in {CRDS_COMMAND_TIMEOUT:.0f} s"
            ) from None
        raise
    if process.returncode != 0:
        tail = "\n".join(errors.decode(errors="replace").splitlines()[-OPERATOR_LOG_TAIL:])
        raise DemoError(
            f"{shlex.join(command)} exited with {process.returncode} (is ecs-operator installed "
            f"in this environment?):\n{tail}"
        )
    try:
        documents = list(yaml.safe_load_all(output))
    except yaml.YAMLError as error:
        raise DemoError(f"{shlex.join(command)} printed no valid YAML: {error}") from None
    crds = [
        document
        for document in documents
        if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition"
    ]
    if not crds:
        raise DemoError(f"{shlex.join(command)} printed no CustomResourceDefinition")
    return crds


async def install_crds(kube: ApiClient, crds: list[Obj]) -> list[str]:
    """Create the operator's CRDs (`operator_crds`) and wait until the API serves them; the
    plurals, in order."""
    wanted: dict[str, set[str]] = {}
    for crd in crds:
        try:
            await kube.create(CRDS, None, crd)
        except RequestError as error:
            if error.code != 409:
                raise
        spec = crd["spec"]
        for version in spec["versions"]:
            group_version = f"{spec['group']}/{version['name']}"
            wanted.setdefault(group_version, set()).add(spec["names"]["plural"])
    deadline = time.monotonic() + CRDS_SERVED_TIMEOUT
    for group_version, plurals in wanted.items():
        while not plurals <= await _served(kube, group_version):
            if time.monotonic() > deadline:
                raise DemoError(f"the API did not serve {sorted(plurals)} of {group_version}")
            await asyncio.sleep(0.05)
    return sorted(plural for plurals in wanted.values() for plural in plurals)


async def _served(kube: ApiClient, group_version: str) -> set[str]:
    try:
        listing = await kube.request("GET", f"/apis/{group_version}")
    except RequestError as error:
        if error.not_found:
            return set()
        raise
    return {resource.get("name", "") for resource in listing.get("resources") or ()}
