"""API faults for the resilience scenarios, the same on both targets (`ApiFaults`): injected
into the sandbox itself (`SandboxFaults`), or in front of a real kube-apiserver (`FaultProxy`).

`FaultProxy` is a plain-HTTP reverse proxy on 127.0.0.1 that the operator under test talks to
instead of the API server (its ServiceAccount token passes through untouched, so RBAC judges it
as before). Every request is forwarded, except where the sandbox's own `Faults` (the same
class, the same knobs and the same random choices) say otherwise: an injected 500/503/429 (with
Retry-After), a watch dropped after `watch_drop_interval`, a resumed watch answered 410 Expired,
a create committed whose response is lost. `close_watches` drops every open watch at once (with
`expire`, their resumes get 410 Expired, as from an API server that lost its watch history), and
`lose_create_answers` lets a test decide, create by create, to answer 500 after the API server
carried it out. Everything else is the real API server's own behaviour.

It runs on its own event loop in a background thread; its methods are thread-safe.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from ecs_sandbox.errors import ApiError
from ecs_sandbox.runtime import SandboxThread
from ecs_sandbox.server import Faults, status_response

# Whether the answer to a create is lost: (resource, namespace, status 201 or 409, the name
# created or found taken).
CreateAnswerRule = Callable[[str, str | None, int, str], bool]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "host",
    "accept-encoding",
    "upgrade",
}
LOST_ANSWER = "the create was carried out but its response is lost (test fault)"


def request_verb_and_resource(method: str, path: str, query: dict[str, str]) -> tuple[str, str]:
    """(verb, `plural` or `plural/subresource`) of a Kubernetes API request, as RBAC names
    them; ("", "") for a path that names no resource (discovery, OpenAPI, health)."""
    parts = [part for part in path.split("/") if part]
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
        core = True
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        rest = parts[3:]
        core = False
    else:
        return "", ""
    watch = bool(rest) and rest[0] == "watch"
    if watch:
        rest = rest[1:]
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and not (core and rest[2] in ("status", "finalize"))
    ):
        rest = rest[2:]
    if not rest:
        return "", ""
    named = len(rest) >= 2
    resource = "/".join([rest[0], *rest[2:3]])
    watch = watch or query.get("watch") in ("true", "1")
    verb = {
        "GET": "watch" if watch else ("get" if named else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }.get(method, method.lower())
    return verb, resource


def _namespace_of(path: str) -> str | None:
    parts = [part for part in path.split("/") if part]
    if "namespaces" in parts:
        index = parts.index("namespaces")
        if len(parts) > index + 2:
            return parts[index + 1]
    return None


class FaultProxy:
    """Forwards to `upstream` (https, verified with `ca_file`), injecting `faults`."""

    def __init__(
        self, upstream: str, ca_file: str | None, resource_version: Callable[[], int | None]
    ) -> None:
        """`resource_version` reads the API server's current resourceVersion (a LIST's)."""
        self.upstream = upstream.rstrip("/")
        self.ca_file = ca_file
        self.resource_version = resource_version
        self.faults = Faults()
        self.url = ""
        self._lost_answers: CreateAnswerRule | None = None
        self._expire_below: int | None = None
        self._watches: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None
        self._lock = threading.Lock()
        # What became of the last watches (opened, answered 410, ended), for failure reports.
        self.journal: collections.deque[str] = collections.deque(maxlen=300)

    # -- the test's controls (any thread) --------------------------------------------------

    def update(self, changes: dict[str, Any]) -> None:
        with self._lock:
            self.faults.update(changes)

    def reset(self) -> None:
        with self._lock:
            self.faults.update(Faults().to_dict())
            self._lost_answers = None
            self._expire_below = None

    def close_watches(self, *, expire: bool = False) -> None:
        """Drop every open watch; with `expire`, a watch resuming from any resourceVersion
        older than the API server's current one is answered 410 Expired (the client must
        relist)."""
        if expire:
            self._expire_below = self.resource_version()
        self._note(f"close_watches expire={expire} floor={self._expire_below}")
        self._call(self._close_watches())

    def _note(self, what: str) -> None:
        self.journal.append(f"{time.strftime('%H:%M:%S')} {what}")

    @contextlib.contextmanager
    def lose_create_answers(self, rule: CreateAnswerRule) -> Iterator[None]:
        self._lost_answers = rule
        try:
            yield
        finally:
            self._lost_answers = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> FaultProxy:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(started))
            except BaseException as error:  # reported to start()
                failure.append(error)
                started.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not started.wait(timeout) or failure:
            raise RuntimeError(f"the fault proxy did not start: {failure}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _call(self, coroutine: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    async def _serve(self, started: threading.Event) -> None:
        context = ssl.create_default_context(cafile=self.ca_file)
        connector = aiohttp.TCPConnector(ssl=context, limit=0)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        )
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        started.set()
        try:
            await self._stopping.wait()
        finally:
            await self._close_watches()
            await runner.cleanup()
            await self._session.close()

    # -- forwarding ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        verb, resource = request_verb_and_resource(
            request.method, request.path, dict(request.query)
        )
        with self._lock:
            fault = self.faults.injected_error(verb, resource) if verb else None
        if fault is not None:
            return status_response(fault)
        if verb == "watch":
            return await self._watch(request, resource)
        body = await request.read()
        try:
            async with self._forward(request, body) as upstream:
                payload = await upstream.read()
                status, headers = upstream.status, _end_to_end(upstream.headers)
        except aiohttp.ClientError as error:  # the API server is down or restarting
            return status_response(ApiError(503, "ServiceUnavailable", str(error)))
        if verb == "create" and "dryRun" not in request.query:
            lost = self._lost(resource, request.path, status, payload)
            if lost is not None:
                return status_response(lost)
        return web.Response(body=payload, status=status, headers=headers)

    def _lost(self, resource: str, path: str, status: int, payload: bytes) -> ApiError | None:
        rule = self._lost_answers
        if rule is not None and status in (201, 409):
            try:
                body = json.loads(payload)
            except ValueError:
                body = {}
            name = (body.get("metadata") or body.get("details") or {}).get("name") or ""
            if rule(resource, _namespace_of(path), status, name):
                return ApiError(500, "InternalError", LOST_ANSWER)
        if status == 201:
            with self._lock:
                return self.faults.create_response_lost(resource)
        return None

    def _forward(self, request: web.Request, body: bytes) -> Any:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        return self._session.request(
            request.method,
            self.upstream + request.rel_url.path_qs,
            headers=headers,
            data=body or None,
        )

    async def _watch(self, request: web.Request, resource: str) -> web.StreamResponse:
        version = request.query.get("resourceVersion") or None
        resuming = version not in (None, "0")
        with self._lock:
            expired = self.faults.expires(resuming)
        floor = self._expire_below
        if resuming and floor is not None and _int(version) is not None:
            # Older than the history's end: every position a watch had before the drop. Not
            # the end itself: a relist answered at that very version (nothing written since)
            # may resume there, or it would relist for ever.
            expired = expired or (_int(version) or 0) < floor
        self._note(f"watch {request.path_qs} {'expired' if expired else 'opened'}")
        if expired:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            error = ApiError(410, "Expired", f"too old resource version: {version} (proxy fault)")
            await response.write(json.dumps({"type": "ERROR", "object": error.status()}).encode())
            await response.write(b"\n")
            await response.write_eof()
            return response
        task = asyncio.current_task()
        assert task is not None
        self._watches.add(task)
        response = web.StreamResponse()
        try:
            async with self._forward(request, b"") as upstream:
                response.set_status(upstream.status)
                response.headers.update(_end_to_end(upstream.headers))
                await response.prepare(request)
                started = asyncio.get_running_loop().time()
                while True:
                    drop = self.faults.watch_drop_interval
                    wait = (
                        None if drop is None else started + drop - asyncio.get_running_loop().time()
                    )
                    if wait is not None and wait <= 0:
                        break
                    # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that
                    # comes as the read completes, and a dropped watch would stream on.
                    try:
                        async with asyncio.timeout(min(wait or 0.5, 0.5)):
                            chunk = await upstream.content.readany()
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    await response.write(chunk)
        except asyncio.CancelledError:  # dropped: aiohttp closes the client's connection
            self._note(f"watch {request.path_qs} ended: dropped")
            raise
        except (ConnectionResetError, aiohttp.ClientError) as error:
            self._note(f"watch {request.path_qs} ended: {type(error).__name__}")
        finally:
            self._watches.discard(task)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    async def _close_watches(self) -> None:
        watches = list(self._watches)
        for task in watches:
            task.cancel()
        if watches:
            await asyncio.wait(watches)


def _end_to_end(headers: Any) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class ApiFaults(Protocol):
    """API faults, on the sandbox or in front of a real API server."""

    def update(self, changes: dict[str, Any]) -> None:
        """Change `Faults` fields (see `ecs_sandbox.server.Faults`)."""

    def close_watches(self, *, expire: bool = False) -> None:
        """Drop every open watch; with `expire`, their resumes get 410 Expired."""

    def lose_create_answers(
        self, rule: CreateAnswerRule
    ) -> contextlib.AbstractContextManager[None]:
        """While open: a create answered 201 or 409 for which `rule` says so is answered 500
        (the API server carried it out; the client never learns)."""

    def reset(self) -> None:
        """No fault."""


class SandboxFaults:
    def __init__(self, sandbox_thread: SandboxThread) -> None:
        self.thread = sandbox_thread
        assert sandbox_thread.sandbox is not None
        self.sandbox = sandbox_thread.sandbox

    def update(self, changes: dict[str, Any]) -> None:
        self.thread.call(self.sandbox.faults.update, changes)

    def close_watches(self, *, expire: bool = False) -> None:
        self.thread.call(lambda: self.sandbox.store.close_watches(expire=expire))

    @contextlib.contextmanager
    def lose_create_answers(self, rule: CreateAnswerRule) -> Iterator[None]:
        api = self.sandbox.api
        original = api._dispatch

        async def dispatch(request: Any, target: Any, verb: str) -> Any:
            if verb != "create" or "dryRun" in request.query:
                return await original(request, target, verb)
            try:
                response = await original(request, target, verb)
            except ApiError as error:
                taken = error.name or ""
                if error.code != 409 or not rule(target.resource, target.namespace, 409, taken):
                    raise
                raise ApiError(500, "InternalError", LOST_ANSWER) from error
            name = json.loads(response.body)["metadata"]["name"]
            if rule(target.resource, target.namespace, response.status, name):
                raise ApiError(500, "InternalError", LOST_ANSWER)
            return response

        self.thread.call(setattr, api, "_dispatch", dispatch)
        try:
            yield
        finally:
            self.thread.call(delattr, api, "_dispatch")

    def reset(self) -> None:
        self.update(Faults().to_dict())
