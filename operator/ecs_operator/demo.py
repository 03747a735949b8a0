"""`ecs-operator demo`: the sandbox, the operator and the examples, with a live view of tasks.

What `make sandbox` runs. In one command:

1. the sandbox cluster starts in this process (the same flags as `ecs-operator sandbox`:
   127.0.0.1, port 8080 by default, `--port 0` picks a free one; kubeconfig in
   `.sandbox/kubeconfig`);
2. the CRDs this operator was built with (what `crds/` holds) are created and the demo waits
   until the API serves them;
3. the operator runs as a subprocess, exactly `ecs-operator run --kubeconfig … --liveness ''`,
   its log in `operator.log` next to the kubeconfig; so `ecs-operator sandbox` plus
   `ecs-operator run` is the same thing in two processes;
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
     maximumPercent until the deployment is COMPLETED. Each scene waits on what it shows (a
     deadline of `SCENE_TIMEOUT` per step, then the next scene) and prints the service's new ECS
     events as they appear; the whole story takes under a minute;
5. a view of the Services (desired, running, pending, revision, rollout, running tasks per zone)
   and the Tasks (rich Live table, refreshed a few times a second by list calls; STOPPED tasks
   leave it `STOPPED_SHOWN_SECONDS` after stopping and the rows are capped, with a count of what
   is not shown) plus one line of nodes by zone, until Ctrl-C, SIGTERM or `--duration` seconds;
   with `--no-live` or when stdout is not a terminal, a plain table every few seconds when
   something changed, and every task at exit;
6. then the operator is stopped (SIGTERM, SIGKILL after 10 s) and the sandbox after it; exit 0.
   Exit 1 when the operator dies on its own (the tail of its log is shown) or the sandbox cannot
   listen, 2 for bad input (an example that does not parse).

More examples are more YAML files in the examples directory. A scripted scene is a `Scene` in
`SERVICE_SCENES`: an async function of the `Stage` (API client, console, loaded examples) that
says what it is about to do with `stage.say` and waits for the outcome with `stage.follow`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from typing import Any

import yaml
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.core.placement import ZONE_LABEL
from ecs_operator.kube.client import CRDS, NODES, KubeClient, KubeError, Resource
from ecs_operator.models.crd import render_crds
from ecs_operator.sandbox import cli as sandbox_cli
from ecs_operator.sandbox.runtime import Sandbox
from ecs_operator.sandbox.tables import age

DEFAULT_EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
DEFAULT_NAMESPACE = "default"
TASKS = Resource(API_GROUP, API_VERSION, "tasks")
# Created before everything else, in this order; other kinds keep their file order.
APPLY_FIRST = ("Namespace", "Secret", "ConfigMap", "TaskDefinition", "LoadBalancer")
LIVE_REFRESH_SECONDS = 0.25
PLAIN_REFRESH_SECONDS = 3.0
CRDS_SERVED_TIMEOUT = 30.0
OPERATOR_STOP_TIMEOUT = 10.0
OPERATOR_LOG_TAIL = 20
PLAIN_WIDTH = 200  # a pipe has no width; rich would squeeze the table into 80 columns
STOP_TEXT_WIDTH = 90
MIN_STOP_TEXT_WIDTH = 16

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


def load_manifests(directory: Path) -> list[Manifest]:
    """Every document of `directory/*.yaml` (and `*.yml`), in creation order: the kinds of
    `APPLY_FIRST` first, in that order, then the rest in file order. DemoError names the file
    and document of anything that is not a Kubernetes object."""
    if not directory.is_dir():
        raise DemoError(f"no examples directory {directory} (pass --examples DIR)")
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    manifests: list[Manifest] = []
    for path in files:
        try:
            documents = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as error:
            raise DemoError(f"{path}: not valid YAML: {error}") from None
        for number, body in enumerate(documents, start=1):
            if body is None:
                continue
            _check_object(body, f"{path}: document {number}")
            manifests.append(Manifest(path, body))
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

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube
        self._listings: dict[str, list[Obj]] = {}

    async def find(self, api_version: str, kind: str) -> Resource:
        group, _, version = api_version.rpartition("/")
        if api_version not in self._listings:
            path = f"/apis/{api_version}" if group else f"/api/{version}"
            try:
                listing = await self._kube.request("GET", path)
            except KubeError as error:
                if error.not_found:
                    raise DemoError(f"the API does not serve {api_version}") from None
                raise
            self._listings[api_version] = listing.get("resources") or []
        for resource in self._listings[api_version]:
            if resource.get("kind") == kind and "/" not in resource.get("name", "/"):
                return Resource(group, version, resource["name"], bool(resource.get("namespaced")))
        raise DemoError(f"the API serves no kind {kind} in {api_version}")


# --- the stage and the script ---------------------------------------------------------------


@dataclass
class Stage:
    """What a scene may use: the API, the console to narrate on, the loaded examples."""

    kube: KubeClient
    console: Console
    examples: list[Manifest]
    examples_dir: Path
    namespace: str = DEFAULT_NAMESPACE
    finder: ResourceFinder = field(init=False)

    def __post_init__(self) -> None:
        self.finder = ResourceFinder(self.kube)

    def say(self, text: str, style: str = "") -> None:
        self.console.print(Text(text, style=style))

    async def create(self, manifest: Manifest) -> str:
        """Create the object; the outcome in a few words (`created`, `exists`, `rejected: …`)."""
        body = manifest.body
        try:
            resource = await self.finder.find(body["apiVersion"], manifest.kind)
            namespace = body["metadata"].get("namespace") or self.namespace
            await self.kube.create(resource, namespace if resource.namespaced else None, body)
        except DemoError as error:
            return f"rejected: {error}"
        except KubeError as error:
            if error.code == 409:
                return "exists"
            return f"rejected: {error.message}"
        return "created"


@dataclass(frozen=True)
class Scene:
    """One step of the script: `delay` seconds after the previous one ended, `play` runs."""

    title: str
    play: Callable[[Stage], Awaitable[None]]
    delay: float = 0.0


async def apply_examples(stage: Stage) -> None:
    shown = _shown_path(stage.examples_dir)
    stage.say(f"creating {len(stage.examples)} objects from {shown}")
    for manifest in stage.examples:
        outcome = await stage.create(manifest)
        style = "red" if outcome.startswith("rejected") else ""
        stage.say(f"  {manifest.source.name}: {manifest.kind}/{manifest.name} {outcome}", style)


SCRIPT: tuple[Scene, ...] = (Scene("the examples", apply_examples),)


async def play(script: tuple[Scene, ...], stage: Stage) -> None:
    for number, scene in enumerate(script, start=1):
        await asyncio.sleep(scene.delay)
        stage.say(f"── scene {number}/{len(script)}: {scene.title}", "bold")
        try:
            await scene.play(stage)
        except (KubeError, DemoError, OSError) as error:
            stage.say(f"scene {scene.title!r} failed: {error}", "red")


# --- the view -------------------------------------------------------------------------------

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


def task_row(task: Obj, now: datetime) -> tuple[str, ...]:
    """The cells of one task, in `COLUMNS` order."""
    metadata = task.get("metadata") or {}
    spec = task.get("spec") or {}
    status = task.get("status") or {}
    return (
        metadata.get("namespace", ""),
        metadata.get("name", ""),
        status.get("taskDefinitionArn") or spec.get("taskDefinition", ""),
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


def _node_ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def zone_summary(nodes: list[Obj], tasks: list[Obj]) -> str:
    """One line: per zone, the Ready nodes (and cordoned ones) and the RUNNING tasks."""
    running = Counter(
        (task.get("status") or {}).get("availabilityZone")
        for task in tasks
        if (task.get("status") or {}).get("lastStatus") == "RUNNING"
    )
    zones: dict[str, list[Obj]] = {}
    for node in nodes:
        zone = ((node.get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL, "(no zone)")
        zones.setdefault(zone, []).append(node)
    parts = []
    for zone in sorted(zones):
        members = zones[zone]
        ready = sum(_node_ready(node) for node in members)
        cordoned = sum(bool((node.get("spec") or {}).get("unschedulable")) for node in members)
        text = f"{zone}: {ready}/{len(members)} nodes ready"
        if cordoned:
            text += f" ({cordoned} cordoned)"
        count = running[zone]
        parts.append(f"{text}, {count} task{'' if count == 1 else 's'} running")
    return "nodes  " + "  │  ".join(parts) if parts else "nodes  (none)"


def task_table(tasks: list[Obj], now: datetime, *, width: int, plain: bool) -> Table:
    """The tasks, one row each, fitting `width` columns: only the STOP text gives way (rich
    would otherwise shorten every column)."""
    rows = [task_row(task, now) for task in _sorted_tasks(tasks)]
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(COLUMNS)]
    stop = COLUMNS.index("STOP")
    # Padding and borders take up to three characters per column.
    room = width - sum(widths) + widths[stop] - 3 * len(COLUMNS) - 1
    stop_width = max(MIN_STOP_TEXT_WIDTH, min(STOP_TEXT_WIDTH, room))
    table = Table(box=box.SIMPLE_HEAD if plain else box.ROUNDED, pad_edge=not plain)
    for index, name in enumerate(COLUMNS):
        if index == stop:
            table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=stop_width)
        else:
            table.add_column(name, no_wrap=True, min_width=widths[index])
    for cells in rows:
        styles = {
            3: _STATUS_STYLES.get(cells[3], ""),
            5: "red" if cells[5] and "(exit 0)" not in cells[5] else "",
            8: _HEALTH_STYLES.get(cells[8], ""),
        }
        table.add_row(*(Text(cell, style=styles.get(i, "")) for i, cell in enumerate(cells)))
    return table


@dataclass
class Snapshot:
    """What the view shows, read from the API in one go."""

    tasks: list[Obj]
    nodes: list[Obj]
    error: str = ""

    def render(self, now: datetime, *, width: int, plain: bool) -> Group:
        parts: list[Any] = [
            task_table(self.tasks, now, width=width, plain=plain),
            Text(zone_summary(self.nodes, self.tasks), style="cyan"),
        ]
        if self.error:
            parts.append(Text(f"API error (retrying): {self.error}", style="red"))
        return Group(*parts)

    def signature(self) -> tuple[Any, ...]:
        """Everything shown except the ages: the plain view prints only when this changes."""
        epoch = datetime.fromtimestamp(0, UTC)
        rows = tuple(task_row(task, epoch)[:-1] for task in _sorted_tasks(self.tasks))
        return (rows, zone_summary(self.nodes, self.tasks), self.error)


async def read_snapshot(kube: KubeClient, previous: Snapshot | None) -> Snapshot:
    try:
        tasks = await kube.list(TASKS)
        nodes = await kube.list(NODES)
    except KubeError as error:
        if previous is None:
            return Snapshot([], [], error.message)
        return Snapshot(previous.tasks, previous.nodes, error.message)
    return Snapshot(tasks, nodes)


# --- the operator subprocess ----------------------------------------------------------------


class OperatorProcess:
    """`ecs-operator run` against the sandbox, its output appended to `log_path`."""

    def __init__(self, kubeconfig: Path, log_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        kubeconfig = str(self.kubeconfig.resolve())
        return [sys.executable, "-m", "ecs_operator", "run", "--kubeconfig", kubeconfig]

    def start(self) -> int:
        # No liveness endpoint: its default port is the sandbox's, and nothing probes it here.
        command = [*self.command(), "--liveness", ""]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig.resolve())}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"===== {shlex.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
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
    # Every flag of `ecs-operator sandbox` (port, kubeconfig, zones, nodes, faults) works here.
    sandbox_cli.add_arguments(parser)
    demo = parser.add_argument_group("demo")
    demo.add_argument(
        "--examples",
        type=Path,
        default=DEFAULT_EXAMPLES,
        metavar="DIR",
        help="directory of YAML manifests to create (default: the repository's manifests/examples)",
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
        sandbox = sandbox_cli.sandbox_from_args(args)
    except (DemoError, ValueError) as error:
        print(f"ecs-operator demo: error: {error}", file=sys.stderr)
        return 2
    demo = Demo(
        sandbox,
        examples,
        args.examples,
        console,
        live=console.is_terminal and not args.no_live,
        duration=args.duration,
    )
    try:
        return asyncio.run(demo.run())
    except DemoError as error:
        print(f"ecs-operator demo: error: {error}", file=sys.stderr)
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
        live: bool,
        duration: float | None,
    ) -> None:
        self.sandbox = sandbox
        self.examples = examples
        self.examples_dir = examples_dir
        self.console = console
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
            cleanup.push_async_callback(self.sandbox.stop)
            try:
                await self.sandbox.start()
            except OSError as error:
                raise DemoError(f"the sandbox cannot listen: {error} (try --port 0)") from None
            kubeconfig = self.sandbox.kubeconfig_path
            kube = KubeClient.from_kubeconfig(str(kubeconfig))
            cleanup.callback(kube.close)
            operator = OperatorProcess(kubeconfig, kubeconfig.parent / "operator.log")
            cleanup.push_async_callback(operator.stop)
            code = await self._run(kube, operator)
        return code

    async def _run(self, kube: KubeClient, operator: OperatorProcess) -> int:
        stage = Stage(kube, self.console, self.examples, self.examples_dir)
        config = self.sandbox.cluster_config
        assert config is not None
        stage.say(
            f"sandbox serving {self.sandbox.url}: {len(config.zones)} zones of "
            f"{config.nodes_per_zone} nodes ({', '.join(config.zones)})"
        )
        plurals = await install_crds(kube)
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
        script = asyncio.create_task(play(SCRIPT, stage))
        try:
            return await self._watch(kube, operator)
        finally:
            script.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await script

    async def _watch(self, kube: KubeClient, operator: OperatorProcess) -> int:
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
                    live.update(snapshot.render(now, width=self.console.width, plain=False))
                elif snapshot.signature() != shown:
                    shown = snapshot.signature()
                    self._print_plain(snapshot, now, "tasks")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), interval)
        if live is None:
            final = await read_snapshot(kube, snapshot)
            self._print_plain(final, datetime.now(UTC), "tasks at exit")
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

    def _print_plain(self, snapshot: Snapshot, now: datetime, title: str) -> None:
        clock = time.strftime("%H:%M:%S")
        self.console.print(Text(f"── {title} at {clock} ({len(snapshot.tasks)})", style="bold"))
        self.console.print(snapshot.render(now, width=self.console.width, plain=True))


async def install_crds(kube: KubeClient) -> list[str]:
    """Create the operator's CRDs (as `crds/` holds them) and wait until the API serves them;
    the plurals, in order."""
    wanted: dict[str, set[str]] = {}
    for crd in render_crds().values():
        try:
            await kube.create(CRDS, None, crd)
        except KubeError as error:
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


async def _served(kube: KubeClient, group_version: str) -> set[str]:
    try:
        listing = await kube.request("GET", f"/apis/{group_version}")
    except KubeError as error:
        if error.not_found:
            return set()
        raise
    return {resource.get("name", "") for resource in listing.get("resources") or ()}
