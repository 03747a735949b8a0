"""The real control plane's fault proxy (`support.api_faults.FaultProxy`) drops its watches on
`close_watches`, whether their client reads on or has stopped reading (SIGSTOPped): the
resilience scenarios rely on it, and a dropped watch that streamed on once stalled them."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from support.api_faults import FaultProxy

WATCH = b"GET /api/v1/pods?watch=true HTTP/1.1\r\nHost: proxy\r\n\r\n"


class ChattyUpstream:
    """An API server whose every watch streams events without end, as during a namespace's
    teardown; `stalled` is set once the proxy stops taking them (its client is not reading
    and every buffer between is full)."""

    def __init__(self) -> None:
        self.url = ""
        self.stalled = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChattyUpstream:
        self._thread.start()
        assert self._started.wait(30)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/pods", self._watch)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self._started.set()
        await self._stop.wait()
        await runner.cleanup()

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        event = b'{"type":"MODIFIED","object":{"kind":"Pod","data":"' + b"x" * 512 + b'"}}\n'
        with contextlib.suppress(ConnectionError):  # the proxy dropped the watch
            while not self._stop.is_set():
                try:
                    await asyncio.wait_for(response.write(event), timeout=1)
                except TimeoutError:
                    self.stalled.set()
                    await self._stop.wait()
                await asyncio.sleep(0)
        return response


@pytest.fixture
def upstream() -> Iterator[ChattyUpstream]:
    with ChattyUpstream() as server:
        yield server


@pytest.fixture
def proxy(upstream: ChattyUpstream) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(upstream.url, None, lambda: None).start()
    try:
        yield fault_proxy
    finally:
        fault_proxy.stop()


def _read_to_the_end(client: socket.socket, ended: threading.Event) -> None:
    with contextlib.suppress(OSError):
        while client.recv(1 << 16):
            pass
    ended.set()


def test_close_watches_ends_a_watch_whose_client_reads_on(proxy: FaultProxy) -> None:
    """Events keep arriving as the watch is dropped: the drop must not be swallowed."""
    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))) as client:
        client.sendall(WATCH)
        assert client.recv(64).startswith(b"HTTP/1.1 200")
        ended = threading.Event()
        threading.Thread(target=_read_to_the_end, args=(client, ended), daemon=True).start()

        proxy.close_watches()

        assert not proxy._watches
        assert ended.wait(30), "the client's watch never ended"


def test_close_watches_ends_a_watch_whose_client_has_stopped_reading(
    proxy: FaultProxy, upstream: ChattyUpstream
) -> None:
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])))
    with client:
        client.sendall(WATCH)
        assert upstream.stalled.wait(60), "the watch never filled the client's buffers"

        proxy.close_watches()

        assert not proxy._watches
        ended = threading.Event()
        client.settimeout(30)
        _read_to_the_end(client, ended)  # what was buffered, then the end
        assert ended.is_set()
