"""The Kopf adapter. Its watch-stream guard: each complete listing of a watched kind is
reported with its objects and the resourceVersion it was taken at; a failure of one kind's
stream ends only that stream, after a back-off that doubles (to seconds while the kind has
never been listed) and resets once a listing completes. Kopf's settings that matter, and that
only this module imports Kopf."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import kopf
import pytest
from kopf._cogs.clients import api, errors, fetching, watching
from kopf._cogs.structs import finalizers
from kopf._cogs.structs.references import Resource
from kopf._core.actions import loggers
from kopf._core.engines import posting
from kopf._core.reactor import observation, processing

import ecs_operator
from ecs_operator.controllers import kopf_adapter
from ecs_operator.controllers.feeds import FEEDS, Feed, WatchedKind
from ecs_operator.controllers.kopf_adapter import WatchGuard
from ecs_operator.core import labels

PODS = WatchedKind("", "pods")
LOAD_BALANCERS = WatchedKind("ecs.operator.dev", "loadbalancers")
NODES = WatchedKind("", "nodes")  # a kind this listener does not want
LISTED = watching.Bookmark.LISTED


class Listener:
    def __init__(self) -> None:
        self.listings: list[tuple[WatchedKind, str | None, list[str], str]] = []
        self.failures: list[tuple[WatchedKind, str | None, Exception, float]] = []
        self.failed_listing: list[bool] = []

    def listed(
        self, kind: WatchedKind, namespace: str | None, objects: list[Any], version: str
    ) -> None:
        names = [body["metadata"]["name"] for body in objects]
        self.listings.append((kind, namespace, names, version))

    def failed(
        self,
        kind: WatchedKind,
        namespace: str | None,
        error: Exception,
        retry_in: float,
        *,
        listing: bool,
    ) -> None:
        self.failures.append((kind, namespace, error, retry_in))
        self.failed_listing.append(listing)

    def wants(self, kind: WatchedKind) -> bool:
        return kind in (PODS, LOAD_BALANCERS)


def event(name: str, kind: str | None) -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"name": name}}}


async def fetched(*, version: str) -> AsyncIterator[tuple[list[Any], str]]:
    yield [], version


@pytest.fixture(autouse=True)
def fake_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kopf's `fetch_objs`, answering a listing taken at the version it is asked for."""
    monkeypatch.setattr(kopf_adapter, "_kopf_fetch_objs", fetched)


async def stream(
    *items: Any, error: Exception | None = None, listed_at: str = "7"
) -> AsyncGenerator[Any, None]:
    """A stream as Kopf's `continuous_watch` makes it: a listing read through `fetch_objs`
    (at `listed_at`), then `items`."""
    async for _ in kopf_adapter._noting_versions(version=listed_at):
        pass
    for item in items:
        yield item
    if error is not None:
        raise error


def guarded(
    *streams: AsyncGenerator[Any, None], kind: WatchedKind = PODS
) -> tuple[Listener, list[float], list[Any]]:
    listener, slept, seen = Listener(), [], []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run() -> None:
        guard = WatchGuard(listener, base_backoff=0.5, max_backoff=2.0, sleep=sleep)
        for each in streams:
            seen.extend([item async for item in guard.guard(each, kind, "ns")])

    asyncio.run(run())
    return listener, slept, seen


def test_each_listing_is_reported_with_its_version_and_the_stream_passes_through() -> None:
    items = [event("a", None), event("b", None), LISTED, event("a", "MODIFIED")]
    listener, slept, seen = guarded(stream(*items, listed_at="12"), stream(LISTED, listed_at="20"))
    assert seen == [*items, LISTED]
    assert listener.listings == [(PODS, "ns", ["a", "b"], "12"), (PODS, "ns", [], "20")]
    assert listener.failures == [] and slept == []


def test_the_listing_of_a_kind_not_wanted_is_passed_through_unreported() -> None:
    items = [event("node", None), LISTED, event("node", "MODIFIED")]
    listener, _, seen = guarded(stream(*items), kind=NODES)
    assert seen == items
    assert listener.listings == []


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
    assert listener.listings == [(PODS, "ns", [], "7")]
    assert listener.failed_listing == [True] * 5


def test_a_kind_never_listed_is_listed_again_within_seconds() -> None:
    """The controllers wait for its first listing: its back-off stops at seconds, and grows
    to the full cap only once it has been listed."""
    listener, slept = Listener(), []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run() -> None:
        guard = WatchGuard(listener, base_backoff=0.5, max_backoff=30, sleep=sleep)
        failing = errors.APIServerError({"code": 503}, status=503, headers={})
        for _ in range(6):
            [_ async for _ in guard.guard(stream(error=failing), PODS, None)]
        [_ async for _ in guard.guard(stream(LISTED, error=failing), PODS, None)]
        for _ in range(6):
            [_ async for _ in guard.guard(stream(error=failing), PODS, None)]

    asyncio.run(run())
    unlisted, listed = slept[:6], slept[6:]
    assert unlisted == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert listed == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert listener.failed_listing == [True] * 6 + [False] + [True] * 6


def test_a_listing_without_its_version_fails_the_stream() -> None:
    async def unversioned(*items: Any) -> AsyncGenerator[Any, None]:
        for item in items:
            yield item

    listener, slept, _ = guarded(unversioned(event("a", None), LISTED))
    assert listener.listings == []
    assert slept == [0.5]
    assert "without its version" in str(listener.failures[0][2])
    assert listener.failed_listing == [True]


def test_cancellation_is_never_swallowed() -> None:
    async def run() -> None:
        guard = WatchGuard(Listener())
        async for _ in guard.guard(stream(error=asyncio.CancelledError()), PODS, None):
            pass

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())


def test_kopf_still_has_what_the_guard_relies_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kopf's private modules: a listing ends with Bookmark.LISTED, continuous_watch is called
    by name from infinite_watch with these keywords and lists through `fetching.fetch_objs`,
    the rescan after a CRD event by name from the resource observer; and install routes all
    three."""
    parameters = inspect.signature(watching.continuous_watch).parameters
    assert set(parameters) == {"settings", "resource", "namespace", "operator_pause_waiter"}
    assert "continuous_watch(" in inspect.getsource(watching.infinite_watch)
    assert "yield Bookmark.LISTED" in inspect.getsource(watching.continuous_watch)
    assert "fetching.fetch_objs(" in inspect.getsource(watching.continuous_watch)
    observer = inspect.getsource(observation.resource_observer)
    assert "functools.partial(process_discovered_resource_event," in observer
    assert "insights=insights" in observer
    assert "insights.watched_resources" in inspect.getsource(observation.revise_resources)
    listener = Listener()
    monkeypatch.setattr(watching, "continuous_watch", watching.continuous_watch)
    monkeypatch.setattr(fetching, "fetch_objs", fetching.fetch_objs)
    monkeypatch.setattr(
        observation,
        "process_discovered_resource_event",
        observation.process_discovered_resource_event,
    )
    monkeypatch.setattr(kopf_adapter, "_kopf_continuous_watch", lambda **_: stream(LISTED))

    class Resource:
        group, plural = "", "pods"

    async def run() -> list[Any]:
        kopf_adapter.install(WatchGuard(listener))
        routed = watching.continuous_watch(
            settings=None, resource=Resource(), namespace=None, operator_pause_waiter=None
        )
        return [item async for item in routed]

    assert asyncio.run(run()) == [LISTED]
    assert listener.listings == [(PODS, None, [], "7")]
    assert fetching.fetch_objs is kopf_adapter._noting_versions
    assert observation.process_discovered_resource_event.__name__ == "rescan"


def test_kopfs_own_listing_reaches_the_listener_with_the_lists_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kopf's real `continuous_watch` and `fetch_objs`, with the API answered here: the
    listing's objects and the list's resourceVersion (not an object's) are reported."""
    monkeypatch.setattr(watching, "continuous_watch", watching.continuous_watch)
    monkeypatch.setattr(fetching, "fetch_objs", fetching.fetch_objs)
    monkeypatch.setattr(
        observation,
        "process_discovered_resource_event",
        observation.process_discovered_resource_event,
    )
    monkeypatch.setattr(kopf_adapter, "_kopf_continuous_watch", watching.continuous_watch)
    monkeypatch.setattr(kopf_adapter, "_kopf_fetch_objs", fetching.fetch_objs)
    urls: list[str] = []

    async def get(*, url: str, **_: Any) -> dict[str, Any]:
        urls.append(url)
        pod = {"metadata": {"name": "a", "resourceVersion": "40"}}
        return {"kind": "PodList", "metadata": {"resourceVersion": "42"}, "items": [pod]}

    async def watch_objs(*, since: str, operator_pause_waiter: Any, **_: Any) -> Any:
        yield {"type": "MODIFIED", "object": {"metadata": {"name": "a", "resourceVersion": since}}}
        operator_pause_waiter.set_result(None)  # ends the stream

    monkeypatch.setattr(api, "get", get)
    monkeypatch.setattr(watching, "watch_objs", watch_objs)
    listener = Listener()

    async def run() -> list[Any]:
        kopf_adapter.install(WatchGuard(listener))
        settings = kopf_adapter.settings()
        routed = watching.continuous_watch(
            settings=settings,
            resource=Resource("", "v1", "pods", namespaced=True),
            namespace=None,
            operator_pause_waiter=asyncio.get_running_loop().create_future(),
        )
        return [item async for item in routed]

    seen = asyncio.run(run())
    assert [item if item is LISTED else item["type"] for item in seen] == [None, LISTED, "MODIFIED"]
    assert seen[2]["object"]["metadata"]["resourceVersion"] == "42"  # watched from the list
    assert listener.listings == [(PODS, None, ["a"], "42")]
    assert urls == ["/api/v1/pods"]


def test_a_failed_rescan_after_a_crd_change_is_retried_until_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []

    async def rescan(**kwargs: Any) -> None:
        calls.append(kwargs)
        if len(calls) < 3:
            raise errors.APIServerError({"code": 503}, status=503, headers={})

    monkeypatch.setattr(kopf_adapter, "_kopf_rescan", rescan)
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
        self,
        kind: WatchedKind,
        namespace: str | None,
        error: Exception,
        retry_in: float,
        *,
        listing: bool,
    ) -> None:
        super().failed(kind, namespace, error, retry_in, listing=listing)
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
    monkeypatch.setattr(kopf_adapter, "_kopf_rescan", no_rescan)
    listener = Reporting()

    async def run() -> None:
        guard = WatchGuard(
            listener, base_backoff=3600.0, max_backoff=7200.0, unlisted_max_backoff=7200.0
        )
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
    monkeypatch.setattr(kopf_adapter, "_kopf_rescan", no_rescan)
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

    monkeypatch.setattr(kopf_adapter, "_kopf_rescan", rescan)
    with caplog.at_level("INFO", logger=kopf_adapter.__name__):
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

    monkeypatch.setattr(kopf_adapter, "_kopf_rescan", rescan)
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

    monkeypatch.setattr(kopf_adapter, "_kopf_rescan", rescan)
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

    monkeypatch.setattr(kopf_adapter, "_kopf_rescan", rescan)
    guard = WatchGuard(Listener(), sleep=sleep)
    asyncio.run(guard.rescan(raw_event=crd_event("MODIFIED", "loadbalancers"), insights=Insights))
    assert sum(slept) >= kopf_adapter.RESCAN_PATIENCE_SECONDS
    assert max(slept) <= 30.0
    assert len(scans) == len(slept) + 1
    assert "the API does not serve loadbalancers" in caplog.text


# --- Kopf's settings and registrations ---------------------------------------------------


def test_kopf_leaves_the_finalizers_of_other_kopf_operators_alone() -> None:
    """Kopf removes its configured finalizer from every object it sees when no handler needs
    one: with its default, the finalizer of another Kopf-based operator on a Pod we watch."""
    pod = kopf.Body({"metadata": {"finalizers": ["kopf.zalando.org/KopfFinalizerMarker"]}})
    default = kopf.OperatorSettings().persistence.finalizer
    assert finalizers.is_deletion_blocked(body=pod, finalizer=default)
    ours = kopf_adapter.settings().persistence.finalizer
    assert ours == labels.FINALIZER
    assert not finalizers.is_deletion_blocked(body=pod, finalizer=ours)


def test_kopf_keeps_no_diff_base_of_any_event() -> None:
    """Kopf builds a diff base of every event's body (a deep copy) and reads the last one from
    its annotation; no handler of ours reads a diff."""
    storage = kopf_adapter.settings().persistence.diffbase_storage
    body = kopf.Body({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "app"}]}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    assert "diffbase_storage.build(body=body" in inspect.getsource(processing._detect_causes)


def test_kopf_posts_no_event_for_what_event_handlers_log() -> None:
    """Why `settings.posting` is left alone: Kopf logs the outcome of `on.event` handlers
    through a local logger, whose records its Event poster skips at any level."""
    assert "logger=local_logger," in inspect.getsource(processing._detect_causes)
    records: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = records.append  # type: ignore[method-assign]
    objects = logging.getLogger("kopf.objects")
    objects.addHandler(capture)
    try:
        body = kopf.Body({"metadata": {"name": "a", "namespace": "ns", "uid": "u"}})
        local = loggers.LocalObjectLogger(body=body, settings=kopf.OperatorSettings())
        local.error("Handler 'pod_event' failed with an exception. Will ignore.")
    finally:
        objects.removeHandler(capture)
    assert [record.levelno for record in records] == [logging.ERROR]
    assert not posting.K8sPoster().filter(records[0])


def test_the_api_server_selects_what_the_caches_hold() -> None:
    configured = kopf_adapter.settings()
    selected = {
        f"{feed.resource.plural}.{feed.resource.group}": ",".join(
            configured.watching.label_selectors.collect(_kopf_resource(feed))
        )
        for feed in FEEDS.values()
    }
    managed = f"{labels.MANAGED_BY_LABEL}={labels.MANAGED_BY}"
    assert {resource: selector for resource, selector in selected.items() if selector} == {
        "controllerrevisions.apps": managed,  # task definition and service revisions
        "services.": managed,  # the Kubernetes Services, not the ECS ones
        "endpointslices.discovery.k8s.io": managed,
    }


def _kopf_resource(feed: Feed) -> Resource:
    resource = feed.resource
    return Resource(resource.group, resource.version, resource.plural, preferred=True)


def test_one_event_handler_per_watched_kind_and_the_operators_activities() -> None:
    registry = kopf_adapter.registry()
    handlers = registry._watching.get_all_handlers()
    assert sorted(handler.id for handler in handlers) == sorted(
        feed.name for feed in FEEDS.values()
    )
    for handler in handlers:
        assert handler.selector is not None
        served = [feed for feed in FEEDS.values() if handler.selector.check(_kopf_resource(feed))]
        assert [feed.name for feed in served] == [handler.id]
        wanted = {k: kopf.PRESENT if v is None else v for k, v in (served[0].labels or {}).items()}
        assert handler.labels == (wanted or None)
    activities = {handler.activity for handler in registry._activities.get_all_handlers()}
    assert {activity.value for activity in activities if activity} == {
        "authentication",
        "startup",
        "cleanup",
    }
    assert not registry._changing.get_all_handlers()  # nothing that needs Kopf's persistence


def test_only_the_adapter_imports_kopf() -> None:
    package = Path(ecs_operator.__file__).parent
    importing = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if any(
            line.startswith(("import kopf", "from kopf")) for line in path.read_text().splitlines()
        )
    )
    assert importing == ["controllers/kopf_adapter.py"]
