"""Running the sandbox: store + registry + HTTP server + simulated nodes, and its kubeconfig.

    async with Sandbox(port=0) as sandbox:          # in an event loop
        print(sandbox.url, sandbox.kubeconfig_path)

    with SandboxThread(port=0) as sandbox:          # from synchronous code (tests, scripts)
        subprocess.run(["kubectl", "--kubeconfig", sandbox.kubeconfig_path, "get", "nodes"])

The kubeconfig names the cluster, user and context `ecs-sandbox`, uses plain HTTP on
127.0.0.1 and a dummy bearer token (the sandbox accepts any token, or none).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import yaml
from aiohttp import web

from ecs_sandbox.cluster import ClusterConfig, ClusterSimulator
from ecs_sandbox.registry import Registry
from ecs_sandbox.server import ApiServer, Faults, RequestCounters
from ecs_sandbox.store import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")

CONTEXT_NAME = "ecs-sandbox"
DUMMY_TOKEN = "sandbox-token"


def kubeconfig_document(url: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT_NAME, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT_NAME, "user": {"token": DUMMY_TOKEN}}],
        "contexts": [
            {
                "name": CONTEXT_NAME,
                "context": {"cluster": CONTEXT_NAME, "user": CONTEXT_NAME, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }


class Sandbox:
    """One sandbox cluster in the current event loop.

    port 0 picks a free port. `kubeconfig_path` None writes the kubeconfig into a temporary
    directory removed on stop. `cluster` None runs the API server without simulated nodes.
    `faults` may be changed at run time (its fields apply to the next request).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        kubeconfig_path: str | Path | None = None,
        cluster: ClusterConfig | None = None,
        faults: Faults | None = None,
        bookmark_interval: float = 1.0,
        watch_window: int = 5000,
        access_log: bool = False,
    ) -> None:
        self.host = host
        self.requested_port = port
        self._kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else None
        self._temp_dir: str | None = None
        self.cluster_config = cluster
        self.registry = Registry()
        self.store = Store(self.registry, watch_window=watch_window)
        self.faults = faults or Faults()
        self.counters = RequestCounters()
        self.api = ApiServer(
            self.store,
            self.registry,
            faults=self.faults,
            counters=self.counters,
            bookmark_interval=bookmark_interval,
        )
        self.simulator: ClusterSimulator | None = None
        self._access_log = access_log
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def kubeconfig_path(self) -> Path:
        if self._kubeconfig_path is None:
            raise RuntimeError("the sandbox is not started")
        return self._kubeconfig_path

    async def start(self) -> None:
        await self.start_api()
        self._write_kubeconfig()
        if self.cluster_config is not None:
            self.simulator = ClusterSimulator(self.store, self.registry, self.cluster_config)
            await self.simulator.start()
        logger.info("sandbox serving %s (kubeconfig %s)", self.url, self.kubeconfig_path)

    async def start_api(self) -> None:
        """Serve HTTP (again, after `stop_api`: on the same port)."""
        app = self.api.application()
        kwargs: dict[str, Any] = {} if self._access_log else {"access_log": None}
        # Open watches would hold a graceful shutdown for their whole timeout.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, **kwargs)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port or self.requested_port)
        await site.start()
        self._port = self._bound_port(site)

    async def stop_api(self, *, restarting: bool = False) -> None:
        """Stop serving HTTP: every connection and watch ends, new ones are refused. With
        `restarting`, as a kube-apiserver restart: the objects stay (they live in etcd) but the
        watch history is gone, so a watch resumed afterwards gets 410 Expired and relists.
        The simulated nodes carry on (they write to the store directly)."""
        for task in list(self.api.watch_streams):
            task.cancel()
        self.store.close_watches(expire=restarting)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def stop(self) -> None:
        if self.simulator is not None:
            await self.simulator.stop()
            self.simulator = None
        await self.stop_api()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
            self._kubeconfig_path = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @staticmethod
    def _bound_port(site: web.TCPSite) -> int:
        server = site._server  # aiohttp keeps the listening sockets only there
        sockets = getattr(server, "sockets", None) or []
        if not sockets:
            raise RuntimeError("the sandbox HTTP server did not bind a socket")
        return int(sockets[0].getsockname()[1])

    def _write_kubeconfig(self) -> None:
        if self._kubeconfig_path is None:
            self._temp_dir = tempfile.mkdtemp(prefix="ecs-sandbox-")
            self._kubeconfig_path = Path(self._temp_dir) / "kubeconfig"
        self._kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(kubeconfig_document(self.url), sort_keys=False)
        self._kubeconfig_path.write_text(text)


class SandboxThread:
    """A `Sandbox` running in a background thread with its own event loop.

    For synchronous code: `start()` returns once the server answers; `call(fn, *args)` runs
    `fn` inside the sandbox's loop (the store is not thread-safe, so touch it only that way);
    `run(coroutine)` awaits a coroutine there. `faults` and `counters` may be read and changed
    directly (plain attribute writes).
    """

    def __init__(self, **sandbox_kwargs: Any) -> None:
        self._kwargs = sandbox_kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.sandbox: Sandbox | None = None

    def start(self, timeout: float = 30.0) -> Sandbox:
        self._thread = threading.Thread(target=self._main, name="ecs-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the sandbox did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError("the sandbox failed to start") from self._error
        assert self.sandbox is not None
        return self.sandbox

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 30.0) -> T:
        async def invoke() -> T:
            return fn(*args)

        return self.run(invoke(), timeout=timeout)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        if self._loop is None:
            raise RuntimeError("the sandbox thread is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            self.sandbox = Sandbox(**self._kwargs)
            await self.sandbox.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await self.sandbox.stop()
