"""`KubeClient.request` retries transient failures: after the server's Retry-After when it gives
one (capped), else with a short capped back-off; anything else is raised at once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from unittest import mock

import pytest

from ecs_operator.kube import client as client_module
from ecs_operator.kube.client import MAX_RETRY_AFTER, KubeClient, KubeError


class Scripted(KubeClient):
    """Answers each request with the next scripted error, then with `{}`."""

    def __init__(self, *errors: KubeError) -> None:
        super().__init__(mock.MagicMock(), threads=1)
        self.errors = list(errors)
        self.sent = 0

    def _send(self, method: str, url_path: str, body: Any, content_type: str) -> Any:
        self.sent += 1
        if self.errors:
            raise self.errors.pop(0)
        return {}


def run(client: Scripted, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's request, its sleeps recorded (and skipped). `asyncio.sleep` is patched for
    the whole process: another thread's event loop (a session's sandbox) sleeps as before."""
    slept: list[float] = []
    real_sleep, this_thread = asyncio.sleep, threading.get_ident()

    async def sleep(seconds: float, *args: Any) -> Any:
        if threading.get_ident() != this_thread:
            return await real_sleep(seconds, *args)
        slept.append(seconds)
        return None

    monkeypatch.setattr(client_module.asyncio, "sleep", sleep)
    try:
        asyncio.run(client.request("GET", "/api/v1/pods"))
    finally:
        client.close()
    return slept


def test_retry_after_is_honoured_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    client = Scripted(
        KubeError(429, "TooManyRequests", "slow down", retry_after=1),
        KubeError(503, "ServiceUnavailable", "starting", retry_after=3),
        KubeError(429, "TooManyRequests", "much later", retry_after=600),
        KubeError(500, "InternalError", "no header"),
    )
    slept = run(client, monkeypatch)
    assert slept[:3] == [1, 3, MAX_RETRY_AFTER]
    assert 0 < slept[3] <= 2.0  # the client's own back-off
    assert client.sent == 5


def test_a_non_transient_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    client = Scripted(KubeError(409, "Conflict", "stale", retry_after=1))
    with pytest.raises(KubeError) as raised:
        run(client, monkeypatch)
    assert raised.value.code == 409
    assert client.sent == 1


def test_retry_after_headers_are_read_as_seconds() -> None:
    assert client_module._seconds("2") == 2.0
    assert client_module._seconds(None) is None
    assert client_module._seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
