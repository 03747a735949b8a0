"""Shared pieces of the end-to-end benchmarks (not a test module).

- `SandboxProcess`: `ecs-sandbox serve` in its own process, so the measuring client never
  competes with the API server for one interpreter lock;
- `OperatorProcess`: an operator subprocess with its log in a file; with the environment
  variable ECS_BENCH_PROFILE_DIR set, it runs under cProfile and leaves `<name>-<n>.prof` there;
- `Api`: a small aiohttp client (create, get, request counters, "wait until writes settle");
- `WatchRecorder`: a watch that records the client-side monotonic time at which each object
  first satisfied each probe (e.g. "ADDED", "phase Running");
- `percentile` and `paced`: nearest-rank percentiles and open-loop pacing of creations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml

REPO = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO / "crds"
PROFILE_ENV = "ECS_BENCH_PROFILE_DIR"
CRDS_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

Body = dict[str, Any]
Requests = Counter[tuple[str, str]]
Probe = Callable[[str, Body], bool]
Result = TypeVar("Result")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# The operator's Lease renewals are its heartbeat (every operator holds the Lease), not work:
# "a converged operator writes nothing" and "the API is quiet" leave them out.
HEARTBEAT_RESOURCES = frozenset({"leases"})


def _is_work_write(verb: str, resource: str) -> bool:
    return verb in WRITE_VERBS and resource not in HEARTBEAT_RESOURCES


def writes_of(requests: Requests) -> int:
    return sum(n for (verb, resource), n in requests.items() if _is_work_write(verb, resource))


def write_breakdown(requests: Requests) -> dict[str, int]:
    """`{"create pods": 200, "patch tasks/status": 400, …}`: the writes only, sorted."""
    return {
        f"{verb} {resource}": n
        for (verb, resource), n in sorted(requests.items())
        if _is_work_write(verb, resource) and n
    }


def run_in_workdir(
    prefix: str, workdir: Path | None, phases: Callable[[Path], Coroutine[Any, Any, Result]]
) -> Result:
    """`phases(workdir)` to completion; its logs go to `workdir`, by default a temporary
    directory named `prefix…` and removed afterwards."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(phases(workdir))
    with tempfile.TemporaryDirectory(prefix=prefix) as temporary:
        return asyncio.run(phases(Path(temporary)))


class SandboxProcess:
    """A sandbox with simulated nodes in its own process; `url` and `kubeconfig` once up.

    It is the in-process `Sandbox` of `ecs_sandbox.runtime`, served by `serve()` below
    in a child interpreter, because the `ecs-sandbox serve` command does not expose the
    kubelet's timings: the benchmarks start containers at once (`pod_start_delay` 0) so that
    "running" latencies are the operators' own, not a simulated image pull.
    """

    READY = re.compile(r"sandbox ready: (\S+) kubeconfig=(\S+)")

    def __init__(
        self,
        workdir: Path,
        *,
        zones: Iterable[str] = ("zone-a", "zone-b", "zone-c"),
        nodes_per_zone: int = 4,
        node_cpu: str = "64",
        node_memory: str = "256Gi",
        node_pods: str = "1000",
        pod_start_delay: float = 0.0,
        heartbeat_interval: float | None = None,
        node_monitor_grace: float | None = None,
    ) -> None:
        self.workdir = workdir
        config: dict[str, Any] = {
            "zones": list(zones),
            "nodes_per_zone": nodes_per_zone,
            "cpu": node_cpu,
            "memory": node_memory,
            "pods": node_pods,
            "pod_start_delay": pod_start_delay,
        }
        # Node timings left unset are the sandbox's fast test ones.
        if heartbeat_interval is not None:
            config["heartbeat_interval"] = heartbeat_interval
        if node_monitor_grace is not None:
            config["node_monitor_grace"] = node_monitor_grace
        kubeconfig = str(workdir / "kubeconfig")
        self.command = [sys.executable, __file__, "serve", kubeconfig, json.dumps(config)]
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.kubeconfig = Path()

    def start(self) -> None:
        with (self.workdir / "sandbox.log").open("w") as log:
            self.process = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=log, text=True
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = self.READY.search(line)
        if found is None:
            self.stop()
            raise RuntimeError(
                f"the sandbox did not start: {line!r}; see {self.workdir / 'sandbox.log'}"
            )
        self.url = found.group(1)
        self.kubeconfig = Path(found.group(2))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> SandboxProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def serve(kubeconfig: str, config: str) -> None:
    """Child process of `SandboxProcess`: serve until SIGTERM."""
    from ecs_sandbox.cluster import ClusterConfig
    from ecs_sandbox.runtime import Sandbox

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        cluster = ClusterConfig(**json.loads(config))
        async with Sandbox(port=0, kubeconfig_path=kubeconfig, cluster=cluster) as sandbox:
            print(f"sandbox ready: {sandbox.url} kubeconfig={kubeconfig}", flush=True)
            await stop.wait()

    asyncio.run(main())


class OperatorProcess:
    """An operator subprocess (`arguments` after the interpreter); its output goes to a log.
    KUBECONFIG is set in its environment too, for any tool the arguments run."""

    def __init__(self, name: str, arguments: list[str], workdir: Path, kubeconfig: Path) -> None:
        self.name = name
        self.arguments = arguments
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def command(self) -> list[str]:
        profile_dir = os.environ.get(PROFILE_ENV)
        if not profile_dir:
            return [sys.executable, *self.arguments]
        Path(profile_dir).mkdir(parents=True, exist_ok=True)
        output = Path(profile_dir) / f"{self.name}-{self.starts}.prof"
        return [sys.executable, "-m", "cProfile", "-o", str(output), *self.arguments]

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n")
            log.flush()
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=self.env
            )

    def stop(self) -> None:
        """SIGTERM (a graceful stop, which also lets cProfile write its file), then SIGKILL."""
        if not self.alive:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if not self.alive:
            raise RuntimeError(f"{self.name} exited; log tail:\n{self.tail()}")


async def wait_until(
    predicate: Callable[[], Awaitable[Any]],
    seconds: float,
    what: str,
    interval: float = 0.05,
) -> Any:
    """Poll an async predicate until it returns something truthy; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(interval)


class Api:
    """JSON over HTTP to the sandbox (it accepts any token, so none is sent)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def create(self, path: str, body: Body) -> Body:
        async with self.session.post(self.url + path, json=body) as response:
            if response.status != 201:
                raise RuntimeError(f"POST {path}: {response.status} {await response.text()}")
            created: Body = await response.json()
            return created

    async def get(self, path: str) -> Body | None:
        async with self.session.get(self.url + path) as response:
            if response.status == 404:
                return None
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {await response.text()}")
            found: Body = await response.json()
            return found

    def create_key(self, collection: str) -> tuple[str, str]:
        """The request counters' key of a create in `collection` (to leave out the client's
        own writes)."""
        return ("create", collection.rsplit("/", 1)[-1])

    async def create_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await self.create("/api/v1/namespaces", body)

    async def install_crds(self, manifests: Iterable[Body], group: str, plurals: set[str]) -> None:
        """Create the CRDs and return once the API serves every plural of `group`."""
        for manifest in manifests:
            await self.create(CRDS_PATH, manifest)
        versions = {
            version["name"] for manifest in manifests for version in manifest["spec"]["versions"]
        }

        async def served() -> bool:
            names: set[str] = set()
            for version in versions:
                listing = await self.get(f"/apis/{group}/{version}") or {}
                names |= {resource["name"] for resource in listing.get("resources", [])}
            return plurals <= names

        await wait_until(served, 20, f"the CRDs of {group} to be served")

    async def counters(self) -> Requests:
        async with self.session.get(self.url + "/sandbox/counters") as response:
            data = await response.json()
        return Counter(
            {
                (verb, resource): n
                for verb, per_resource in data["counts"].items()
                for resource, n in per_resource.items()
            }
        )

    async def settle(self, quiet: float, limit: float) -> bool:
        """Wait until no write reached the API for `quiet` seconds; False after `limit` s."""
        deadline = time.monotonic() + limit
        last = writes_of(await self.counters())
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            now = writes_of(await self.counters())
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet:
                return True
        return False


def ecs_crd_manifests() -> list[Body]:
    manifests: list[Body] = []
    for path in sorted(CRDS_DIR.glob("*.yaml")):
        manifests.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return manifests


class WatchRecorder:
    """One watch on `path`: for each probe, the monotonic time each object first satisfied it.

    Probes receive the event type and the object. The watch resumes from the last
    resourceVersion should the server end the stream. Objects are told apart by `key`, a
    metadata field: their name, or their uid where a name may be reused (a service task's
    name is freed once the task is deleted, and a replacement may take it).
    """

    def __init__(self, api: Api, path: str, probes: dict[str, Probe], key: str = "name") -> None:
        self.api = api
        self.path = path
        self.probes = probes
        self.key = key
        self.seen: dict[str, dict[str, float]] = {name: {} for name in probes}
        self.changed = asyncio.Event()
        self._resource_version = ""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Return once the server has opened the watch (events after this are all seen)."""
        response = await self._open()
        self._task = asyncio.create_task(self._read(response))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _open(self) -> aiohttp.ClientResponse:
        params = {"watch": "true"}
        if self._resource_version:
            params["resourceVersion"] = self._resource_version
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        response = await self.api.session.get(
            self.api.url + self.path, params=params, timeout=timeout
        )
        if response.status != 200:
            raise RuntimeError(f"watch {self.path}: {response.status} {await response.text()}")
        return response

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        while True:
            try:
                async for line in response.content:
                    if line.strip():
                        self._record(json.loads(line), time.monotonic())
            finally:
                response.release()
            response = await self._open()

    def _record(self, event: Body, at: float) -> None:
        kind, obj = event.get("type", ""), event.get("object") or {}
        if kind == "ERROR":
            self._resource_version = ""  # expired: start afresh (first times are kept)
            return
        metadata = obj.get("metadata") or {}
        self._resource_version = metadata.get("resourceVersion", self._resource_version)
        name = metadata.get(self.key)
        if kind == "BOOKMARK" or not name:
            return
        for probe_name, probe in self.probes.items():
            first = self.seen[probe_name]
            if name not in first and probe(kind, obj):
                first[name] = at
                self.changed.set()

    async def wait_all(self, probe: str, names: Iterable[str], seconds: float) -> list[str]:
        """Wait until every name satisfied `probe`; the names still missing after `seconds`."""
        wanted = set(names)
        deadline = time.monotonic() + seconds
        while True:
            missing = wanted - self.seen[probe].keys()
            remaining = deadline - time.monotonic()
            if not missing or remaining <= 0:
                return sorted(missing)
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))


async def paced(
    count: int, rate: float, launch: Callable[[int], Awaitable[None]]
) -> tuple[float, float]:
    """Start `launch(i)` for i in range(count) at `rate` per second, open loop (a slow answer
    never delays the next start); return (first start, last completion) monotonic times."""
    started = time.monotonic()
    calls = []
    for index in range(count):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        calls.append(asyncio.create_task(launch(index)))
    await asyncio.gather(*calls)
    return started, time.monotonic()


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(*sys.argv[2:4])
