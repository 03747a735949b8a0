"""The Kopf watch-stream guard: a listing's end is reported, a failure of one kind's stream
ends only that stream, after a back-off that doubles and resets once a listing completes."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from kopf._cogs.clients import errors, watching
from kopf._core.reactor import observation

from ecs_operator.handlers import watchstreams
from ecs_operator.handlers.watchstreams import WatchedKind, WatchGuard

PODS = WatchedKind("", "pods")
LISTED = watching.Bookmark.LISTED


class Listener:
    def __init__(self) -> None:
        self.relists: list[tuple[WatchedKind, str | None]] = []
        self.failures: list[tuple[WatchedKind, str | None, Exception, float]] = []

    def relisted(self, kind: WatchedKind, namespace: str | None) -> None:
        self.relists.append((kind, namespace))

    def failed(
        self, kind: WatchedKind, namespace: str | None, error: Exception, retry_in: float
    ) -> None:
        self.failures.append((kind, namespace, error, retry_in))


def event(name: str, kind: str | None) -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"name": name}}}


async def stream(*items: Any, error: Exception | None = None) -> AsyncGenerator[Any, None]:
    for item in items:
        yield item
    if error is not None:
        raise error


def guarded(*streams: AsyncGenerator[Any, None]) -> tuple[Listener, list[float], list[Any]]:
    listener, slept, seen = Listener(), [], []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run() -> None:
        guard = WatchGuard(listener, base_backoff=0.5, max_backoff=2.0, sleep=sleep)
        for each in streams:
            seen.extend([item async for item in guard.guard(each, PODS, "ns")])

    asyncio.run(run())
    return listener, slept, seen


def test_the_end_of_each_listing_is_reported_and_the_stream_passes_through() -> None:
    items = [event("a", None), LISTED, event("a", "MODIFIED"), event("b", "ADDED")]
    listener, slept, seen = guarded(stream(*items))
    assert seen == items
    assert listener.relists == [(PODS, "ns")]
    assert listener.failures == [] and slept == []


def test_a_failing_stream_ends_after_a_back_off_instead_of_raising() -> None:
    gone = errors.APINotFoundError({"code": 404, "message": "gone"}, status=404, headers={})
    forbidden = errors.APIForbiddenError({"code": 403, "message": "no"}, status=403, headers={})
    listener, slept, seen = guarded(
        stream(error=gone),
        stream(event("a", None), error=forbidden),
        stream(error=watching.WatchingError("409 in the stream")),
        stream(error=gone),
        stream(LISTED),  # served again: the back-off starts over
        stream(error=gone),
    )
    assert slept == [0.5, 1.0, 2.0, 2.0, 0.5]
    assert [failure[2] for failure in listener.failures] == [
        gone,
        forbidden,
        listener.failures[2][2],
        gone,
        gone,
    ]
    assert [failure[3] for failure in listener.failures] == slept
    assert seen == [event("a", None), LISTED]
    assert listener.relists == [(PODS, "ns")]


def test_cancellation_is_never_swallowed() -> None:
    async def run() -> None:
        guard = WatchGuard(Listener())
        async for _ in guard.guard(stream(error=asyncio.CancelledError()), PODS, None):
            pass

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())


def test_kopf_still_has_what_the_guard_relies_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kopf's private modules: a listing ends with Bookmark.LISTED, continuous_watch is called
    by name from infinite_watch with these keywords, the rescan after a CRD event by name from
    the resource observer; and install routes both."""
    parameters = inspect.signature(watching.continuous_watch).parameters
    assert set(parameters) == {"settings", "resource", "namespace", "operator_pause_waiter"}
    assert "continuous_watch(" in inspect.getsource(watching.infinite_watch)
    assert "yield Bookmark.LISTED" in inspect.getsource(watching.continuous_watch)
    observer = inspect.getsource(observation.resource_observer)
    assert "functools.partial(process_discovered_resource_event," in observer
    listener = Listener()
    monkeypatch.setattr(watching, "continuous_watch", watching.continuous_watch)
    monkeypatch.setattr(
        observation,
        "process_discovered_resource_event",
        observation.process_discovered_resource_event,
    )
    monkeypatch.setattr(watchstreams, "_kopf_continuous_watch", lambda **_: stream(LISTED))

    class Resource:
        group, plural = "", "pods"

    async def run() -> list[Any]:
        watchstreams.install(WatchGuard(listener))
        routed = watching.continuous_watch(
            settings=None, resource=Resource(), namespace=None, operator_pause_waiter=None
        )
        return [item async for item in routed]

    assert asyncio.run(run()) == [LISTED]
    assert listener.relists == [(PODS, None)]
    assert observation.process_discovered_resource_event.__name__ == "rescan"


def test_a_failed_rescan_after_a_crd_change_is_retried_until_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []

    async def rescan(**kwargs: Any) -> None:
        calls.append(kwargs)
        if len(calls) < 3:
            raise errors.APIServerError({"code": 503}, status=503, headers={})

    monkeypatch.setattr(watchstreams, "_kopf_rescan", rescan)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    asyncio.run(WatchGuard(Listener(), sleep=sleep).rescan(raw_event={"type": "ADDED"}))
    assert calls == [{"raw_event": {"type": "ADDED"}}] * 3
    assert slept == [0.5, 1.0]
