"""The Kopf watch-stream guard: a listing's end is reported, a failure of one kind's stream
ends only that stream, after a back-off that doubles and resets once a listing completes."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

import pytest
from kopf._cogs.clients import errors, watching
from kopf._cogs.structs.references import Resource
from kopf._core.reactor import observation

from ecs_operator.controllers import watchstreams
from ecs_operator.controllers.watchstreams import WatchedKind, WatchGuard

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

    def wants(self, kind: WatchedKind) -> bool:
        return kind == WatchedKind("ecs.operator.dev", "loadbalancers")


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
    assert "insights=insights" in observer
    assert "insights.watched_resources" in inspect.getsource(observation.revise_resources)
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


class WatchedPods:
    """Kopf's insights after a rescan that found pods served."""

    watched_resources: ClassVar[set[Any]] = {Resource("", "v1", "pods")}


class NothingWatched:
    watched_resources: ClassVar[set[Any]] = set()


class Reporting(Listener):
    def __init__(self) -> None:
        super().__init__()
        self.failing = asyncio.Event()

    def failed(
        self, kind: WatchedKind, namespace: str | None, error: Exception, retry_in: float
    ) -> None:
        super().failed(kind, namespace, error, retry_in)
        self.failing.set()


GONE = errors.APINotFoundError({"code": 404, "message": "gone"}, status=404, headers={})


async def no_rescan(**_: Any) -> None:
    pass


async def backing_off(guard: WatchGuard, listener: Reporting) -> asyncio.Task[Any]:
    """A pods stream that failed and is in its back-off."""
    listener.failing.clear()
    task = asyncio.create_task(anext(guard.guard(stream(error=GONE), PODS, "ns"), None))
    await listener.failing.wait()
    assert not task.done()
    return task


def test_a_rescan_that_finds_the_kind_watched_ends_its_back_off_and_starts_it_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CRD deleted for long grows its kind's back-off; when the CRD returns, Kopf's rescan
    ends that back-off at once (the kind is listed again now), and the next failure starts
    from the base back-off again."""
    monkeypatch.setattr(watchstreams, "_kopf_rescan", no_rescan)
    listener = Reporting()

    async def run() -> None:
        guard = WatchGuard(listener, base_backoff=3600.0, max_backoff=7200.0)
        for _ in range(2):
            task = await backing_off(guard, listener)
            await guard.rescan(raw_event={"type": "MODIFIED"}, insights=WatchedPods)
            assert await asyncio.wait_for(task, 5) is None

    asyncio.run(run())
    assert [failure[3] for failure in listener.failures] == [3600.0, 3600.0]


def test_a_rescan_leaves_the_back_off_of_a_kind_no_longer_watched_to_kopf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kopf cancels the stream of a kind that is no longer served; ending its back-off then
    could make the stream end at the moment of that cancellation, which Kopf may lose."""
    monkeypatch.setattr(watchstreams, "_kopf_rescan", no_rescan)
    listener = Reporting()

    async def run() -> None:
        guard = WatchGuard(listener, base_backoff=3600.0)
        task = await backing_off(guard, listener)
        await guard.rescan(raw_event={"type": "DELETED"}, insights=NothingWatched)
        await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())


def test_a_rescan_says_which_kinds_became_served_or_not(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    balancers = Resource("ecs.operator.dev", "v1alpha1", "loadbalancers")
    tasks = Resource("ecs.operator.dev", "v1alpha1", "tasks")

    class Insights:
        watched_resources = {tasks}

    async def rescan(**_: Any) -> None:
        Insights.watched_resources = {balancers}

    monkeypatch.setattr(watchstreams, "_kopf_rescan", rescan)
    with caplog.at_level("INFO", logger=watchstreams.__name__):
        asyncio.run(WatchGuard(Listener()).rescan(raw_event={"type": "ADDED"}, insights=Insights))
    assert [record.getMessage() for record in caplog.records] == [
        "loadbalancers.v1alpha1.ecs.operator.dev is served: it is listed and watched",
        "tasks.v1alpha1.ecs.operator.dev is no longer served: it is not watched until it is",
    ]


def crd_event(kind: str, plural: str, *, established: bool = True) -> dict[str, Any]:
    status = "True" if established else "False"
    return {
        "type": kind,
        "object": {
            "metadata": {"name": f"{plural}.ecs.operator.dev"},
            "spec": {"group": "ecs.operator.dev", "names": {"plural": plural}},
            "status": {"conditions": [{"type": "Established", "status": status}]},
        },
    }


def test_an_established_crd_whose_kind_discovery_lags_is_rescanned_until_watched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real API server serves a new CRD's kind a moment after the CRD says Established, and
    no CRD event follows: the rescan is tried again until the kind is watched."""
    balancers = Resource("ecs.operator.dev", "v1alpha1", "loadbalancers")

    class Insights:
        watched_resources: set[Resource] = set()

    scans: list[str] = []

    async def rescan(**kwargs: Any) -> None:
        scans.append(kwargs["raw_event"]["type"])
        if len(scans) == 3:  # discovery serves it at the third look
            Insights.watched_resources = {balancers}

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(watchstreams, "_kopf_rescan", rescan)
    guard = WatchGuard(Listener(), sleep=sleep)
    asyncio.run(guard.rescan(raw_event=crd_event("MODIFIED", "loadbalancers"), insights=Insights))
    assert scans == ["MODIFIED"] * 3
    assert slept == [0.5, 1.0]


@pytest.mark.parametrize(
    "event",
    [
        crd_event("ADDED", "loadbalancers", established=False),  # its MODIFIED event follows
        crd_event("DELETED", "loadbalancers"),
        crd_event("MODIFIED", "widgets"),  # a kind the operator does not watch
    ],
)
def test_a_crd_not_established_deleted_or_not_wanted_is_scanned_once(
    monkeypatch: pytest.MonkeyPatch, event: dict[str, Any]
) -> None:
    scans: list[str] = []

    async def rescan(**kwargs: Any) -> None:
        scans.append(kwargs["raw_event"]["type"])

    class Insights:
        watched_resources: set[Any] = set()

    monkeypatch.setattr(watchstreams, "_kopf_rescan", rescan)
    guard = WatchGuard(Listener(), sleep=lambda _: asyncio.sleep(0))
    asyncio.run(guard.rescan(raw_event=event, insights=Insights))
    assert len(scans) == 1


def test_a_kind_never_served_is_given_up_after_the_patience_and_said(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    scans: list[str] = []

    async def rescan(**kwargs: Any) -> None:
        scans.append(kwargs["raw_event"]["type"])

    class Insights:
        watched_resources: set[Any] = set()

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(watchstreams, "_kopf_rescan", rescan)
    guard = WatchGuard(Listener(), sleep=sleep)
    asyncio.run(guard.rescan(raw_event=crd_event("MODIFIED", "loadbalancers"), insights=Insights))
    assert sum(slept) >= watchstreams.RESCAN_PATIENCE_SECONDS
    assert max(slept) <= 30.0
    assert len(scans) == len(slept) + 1
    assert "the API does not serve loadbalancers" in caplog.text
