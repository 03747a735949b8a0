"""A lifecycle hook's URL target for the integration tests: an HTTP server in the test process
on 127.0.0.1 (the operator runs on this machine in the tests, on either target) that answers
ECS's hook protocol and keeps every payload it was sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Body = dict[str, Any]
Answer = Callable[[int], Body]


class HookServer:
    """Answers the n-th POST (from 0) with ``answer(n)`` as JSON; keeps the payloads."""

    def __init__(self) -> None:
        self.answer: Answer = lambda _n: {"hookStatus": "SUCCEEDED"}
        self.payloads: list[Body] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.payloads.append(json.loads(self.rfile.read(length)))
                body = json.dumps(server.answer(len(server.payloads) - 1)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass  # quiet: the payloads are kept

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/verify"


@contextmanager
def serving_hooks() -> Iterator[HookServer]:
    """A HookServer serving in a thread of its own until the block ends."""
    server = HookServer()
    thread = threading.Thread(target=server.http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.http.shutdown()
        server.http.server_close()
