"""Kopf, behind this one file: the operator's watch feed and process frame.

What Kopf provides:
- a watch stream per watched kind (and namespace): one LIST, then watches resumed from its
  resourceVersion, listed again after 410 Expired or a dropped stream; label selectors are
  sent to the API server;
- discovery: which kinds the API serves, rescanned whenever a CRD changes, so a kind whose
  CRD is deleted stops being watched and is watched again when the CRD returns;
- the process: login with the operator's kubeconfig, startup and cleanup activities, signal
  handling, and the liveness endpoint.

What is deliberately unused: change handlers (`on.create/update/delete`, daemons, timers)
and all that serves them: Kopf's finalizers, progress and diff-base storage, handler retries
and the posting of handlers' log records as Events; `kopf.index` (the caches are the
operator's own, filled from Kopf's listings: `watches.Listings`); peering (one operator
acts: the Lease of `kube.leader`); admission webhooks. The event handlers registered here
only route each event to `watches` (record it in a cache, enqueue keys): every decision and
every write is the controllers'.

The event handlers are coroutines on purpose: Kopf runs plain functions in a thread pool,
and the caches and work queues they feed belong to the event loop (a cache changing under a
reconcile's iteration, or an asyncio.Queue fed from another thread, breaks both).

Kopf's streams are routed through `WatchGuard` (`install`), because Kopf (1.45):
- tells handlers the objects of each listing (events of type None), but neither that the
  listing is over nor the resourceVersion it was taken at; the guard reports each complete
  listing with its version to `watches.Listings`, which fills the caches from it, so a start
  LISTs each kind once and a relist finds what was deleted during the gap;
- lets any watch error but 410 (404 when a CRD is deleted, 403, 409, …) stop the whole
  operator; the guard ends only that kind's stream, which Kopf's `infinite_watch` starts
  again (with a fresh LIST) after the guard's back-off;
- stops the operator when a rescan after a CRD change fails (its retries spent while the API
  server restarts); the guard retries it, and a rescan ends the back-off of each kind it
  finds watched, so a kind whose CRD returns is listed at once.
This reaches into Kopf's private modules `kopf._cogs.clients.watching` and `fetching` and
`kopf._core.reactor.observation`; the unit tests pin what it relies on (names, keyword
arguments, `Bookmark.LISTED`), so a Kopf upgrade that moves them fails there rather than
silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection
from contextvars import ContextVar
from typing import Any, Protocol, cast

import kopf
from kopf._cogs.clients import fetching, watching
from kopf._core.reactor import observation

from ecs_operator.controllers.context import OperatorOptions
from ecs_operator.controllers.feeds import FEEDS, Feed, WatchedKind
from ecs_operator.controllers.watches import Body, Operator
from ecs_operator.core import labels
from ecs_operator.kube.client import kubeconfig_credentials
from ecs_operator.kube.leader import LeaderElection

# A failed stream starts again after a back-off doubling from the base to the cap; while its
# kind has never been listed (the controllers wait for it), the cap is seconds.
BASE_BACKOFF = 0.5
MAX_BACKOFF = 30.0
UNLISTED_MAX_BACKOFF = 5.0
# How long a rescan retries for an established CRD's kind the API does not serve yet.
RESCAN_PATIENCE_SECONDS = 60.0

logger = logging.getLogger(__name__)


def run(
    options: OperatorOptions,
    election: LeaderElection,
    *,
    liveness_endpoint: str | None,
    verbose: bool,
) -> None:
    """Run the operator until it is stopped (SIGTERM, SIGINT, or leadership lost)."""
    if not verbose:
        # Kopf logs every handled watch event at INFO ("Handler … succeeded"): one line per
        # event of every pod and node, which costs time and buries what matters.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kopf.run(
        registry=registry(),
        settings=settings(),
        standalone=True,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        liveness_endpoint=liveness_endpoint,
        memo=kopf.Memo(options=options, election=election),
    )


def settings() -> kopf.OperatorSettings:
    """Kopf's settings that matter when only event, startup, cleanup and login handlers are
    registered; the others (progress storage, posting of Events, …) serve no such handler."""
    configured = kopf.OperatorSettings()
    # Kopf removes the finalizer it is configured with from every object it sees when no
    # handler needs one. Ours is set by no one: Kopf's default would strip the finalizer of
    # other Kopf-based operators from the Pods, Nodes and Namespaces we watch.
    configured.persistence.finalizer = labels.FINALIZER
    configured.persistence.diffbase_storage = _NoDiffBase()
    # Each watch request ends after 5 minutes and is resumed, as client-go's reflectors ask
    # (kube-apiserver would hold it for 30 to 60).
    configured.watching.server_timeout = 300
    # A watch whose connection cannot be made fails in seconds, not at Kopf's 5-minute request
    # timeout.
    configured.watching.connect_timeout = 10
    # Kopf retries a failing LIST or watch request for 54 s (1, 1, 2, … 21) before giving up;
    # the watch guard backs off and lists again after that, so give up sooner.
    configured.networking.error_backoffs = (0.5, 1, 2, 4)
    for feed in FEEDS.values():
        if feed.selector:  # listed and watched with it: the caches hold what the API selects
            configured.watching.label_selectors[_resource_spec(feed)] = feed.selector
    return configured


class _NoDiffBase(kopf.DiffBaseStorage):
    """Kopf deep-copies every event's body to diff it for change handlers; with `on.event`
    handlers only, that diff is never read, and at thousands of events it costs a core."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


def registry() -> kopf.OperatorRegistry:
    """The operator's handlers: login, startup and cleanup, and one event handler per kind."""
    handlers = kopf.OperatorRegistry()
    kopf.on.login(registry=handlers)(login)
    kopf.on.startup(registry=handlers)(start)
    kopf.on.cleanup(registry=handlers)(stop)
    for feed in FEEDS.values():
        kopf.on.event(
            *_resource_spec(feed),
            id=feed.name,
            labels=_label_filter(feed),
            registry=handlers,
        )(_event_handler(feed))
    return handlers


def _label_filter(feed: Feed) -> dict[str, Any] | None:
    """Kopf filters by the labels too, not only the API server: the DELETED event of an object
    that merely lost a label is dropped, and the next listing, which no longer has it, takes
    it out of the cache."""
    if not feed.labels:
        return None
    return {key: kopf.PRESENT if value is None else value for key, value in feed.labels.items()}


def _resource_spec(feed: Feed) -> tuple[str, str, str]:
    return (feed.resource.group, feed.resource.version, feed.resource.plural)


def _event_handler(feed: Feed) -> Callable[..., Awaitable[None]]:
    async def on_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
        operator: Operator = memo.operator
        operator.controllers.watch_event(feed, event.get("type"), event["object"])

    return on_event


def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """Kopf's client logs in with the operator's --kubeconfig (Kopf's default login would read
    only $KUBECONFIG or ~/.kube/config, or the in-cluster service account)."""
    options: OperatorOptions = memo.options
    if not options.kubeconfig:
        return kopf.login_via_client(**kwargs)
    found = kubeconfig_credentials(options.kubeconfig)
    return kopf.ConnectionInfo(
        server=found.server,
        ca_path=found.ca_path,
        insecure=found.insecure,
        scheme=found.scheme,
        token=found.token,
        certificate_path=found.certificate_path,
        private_key_path=found.private_key_path,
        username=found.username,
        password=found.password,
    )


async def start(memo: kopf.Memo, **_: Any) -> None:
    """Before Kopf starts its watch streams: the operator is created and every stream is
    routed through its guard."""
    operator = Operator(memo.options, memo.election)
    memo.operator = operator
    install(WatchGuard(operator.listings))
    operator.start()


async def stop(memo: kopf.Memo, **_: Any) -> None:
    operator: Operator = memo.operator
    await operator.stop()


# --- Kopf's watch streams, guarded ----------------------------------------------------------


class WatchListener(Protocol):
    def wants(self, kind: WatchedKind) -> bool:
        """Whether the operator watches `kind` when the API serves it."""

    def listed(
        self, kind: WatchedKind, namespace: str | None, objects: list[Body], version: str
    ) -> None:
        """A listing of `kind` (in `namespace`; None: all, or cluster-scoped) taken at
        resourceVersion `version` has ended with `objects`."""

    def failed(
        self,
        kind: WatchedKind,
        namespace: str | None,
        error: Exception,
        retry_in: float,
        *,
        listing: bool,
    ) -> None:
        """The stream of `kind` failed (while `listing`, or watching); it starts again with a
        fresh LIST in `retry_in` seconds."""


Stream = AsyncGenerator[Any, None]  # Kopf's raw events and bookmarks
StreamKey = tuple[WatchedKind, str | None]


class WatchGuard:
    """Watches each kind's stream: reports each complete listing of a kind the listener wants
    (with the resourceVersion the listing was taken at), and turns a failure into a back-off
    (doubling from `base_backoff` to `max_backoff`, or to `unlisted_max_backoff` while the kind
    has never been listed; reset by a listing that completes, cut short by a rescan) followed
    by the end of the stream. Retries Kopf's rescans likewise."""

    def __init__(
        self,
        listener: WatchListener,
        *,
        base_backoff: float = BASE_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        unlisted_max_backoff: float = UNLISTED_MAX_BACKOFF,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._listener = listener
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._unlisted_max_backoff = unlisted_max_backoff
        self._sleep = sleep
        self._failures: dict[StreamKey, int] = {}
        self._ever_listed: set[StreamKey] = set()
        # The back-offs under way, per kind: a rescan that finds the kind watched ends them.
        self._backing_off: dict[WatchedKind, set[asyncio.Event]] = {}

    async def guard(self, stream: Stream, kind: WatchedKind, namespace: str | None) -> Stream:
        key = (kind, namespace)
        wanted = self._listener.wants(kind)
        listing: list[Body] | None = []
        versions: list[str] = []
        _LIST_VERSIONS.set(versions)
        try:
            async with contextlib.aclosing(stream):
                async for item in stream:
                    if listing is not None:
                        if item is watching.Bookmark.LISTED:
                            self._listed(key, listing if wanted else None, versions)
                            listing = None
                        elif wanted:
                            listing.append(item["object"])
                    yield item
        except Exception as error:  # any failure of one stream: back off, then relist
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            cap = self._max_backoff
            if key not in self._ever_listed:
                cap = min(cap, self._unlisted_max_backoff)
            delay = self._backoff(failures, cap)
            self._listener.failed(kind, namespace, error, delay, listing=listing is not None)
            await self._back_off(kind, delay)

    def _listed(self, key: StreamKey, objects: list[Body] | None, versions: list[str]) -> None:
        if objects is not None:
            if not versions:
                raise RuntimeError(f"Kopf's listing of {key[0].plural} came without its version")
            self._listener.listed(*key, objects, versions[-1])
        self._failures.pop(key, None)
        self._ever_listed.add(key)

    async def rescan(self, **kwargs: Any) -> None:
        """Kopf's rescan of the API after a CRD event, retried with back-off until it is done.

        A real API server lists a new CRD's kind in its discovery a moment after the CRD says
        Established, and no further CRD event follows: Kopf's rescan at that event can miss
        the kind for good. So while an established CRD's kind that the operator wants is not
        watched, the rescan is tried again, for up to `RESCAN_PATIENCE_SECONDS`."""
        event = kwargs.get("raw_event") or {}
        crd = event.get("object") or {}
        logger.debug(
            "rescanning the API after %s of CRD %s",
            event.get("type"),
            crd.get("metadata", {}).get("name"),
        )
        insights = kwargs.get("insights")
        watched = set(insights.watched_resources) if insights is not None else set()
        await self._rescan_until_done(kwargs, insights)
        kind = _established_kind(event)
        waited, delay = 0.0, self._base_backoff
        while (
            insights is not None
            and kind is not None
            and self._listener.wants(kind)
            and not _is_watched(insights, kind)
        ):
            if waited >= RESCAN_PATIENCE_SECONDS:
                logger.warning(
                    "CRD %s is established but the API does not serve %s: it is watched "
                    "after the next change of its CRD",
                    crd.get("metadata", {}).get("name"),
                    kind.plural,
                )
                break
            await self._sleep(delay)
            waited += delay
            delay = min(self._max_backoff, delay * 2)
            await self._rescan_until_done(kwargs, insights)
        if insights is not None:
            _log_watched_changes(watched, set(insights.watched_resources))

    async def _rescan_until_done(self, kwargs: dict[str, Any], insights: Any) -> None:
        failures = 0
        while True:
            try:
                await _kopf_rescan(**kwargs)
            except Exception as error:  # a failed rescan would stop the whole operator
                failures += 1
                delay = self._backoff(failures, self._max_backoff)
                logger.error(
                    "rescanning the API after a CRD change failed: %s; retry in %.1fs",
                    error,
                    delay,
                )
                await self._sleep(delay)
            else:
                self._failures.clear()
                self._end_back_offs(insights)
                return

    def _end_back_offs(self, insights: Any) -> None:
        """End the back-off of every kind the rescan found watched. Never of a kind it did not:
        Kopf is about to cancel that kind's stream, and a stream that ends on its own at the
        moment Kopf cancels it may lose the cancellation (Kopf's `streaming_block` suppresses
        a CancelledError while it cleans up) and hold Kopf's rescans up for good."""
        for kind, wakers in self._backing_off.items():
            if insights is not None and _is_watched(insights, kind):
                for waker in wakers:
                    waker.set()

    async def _back_off(self, kind: WatchedKind, delay: float) -> None:
        """Sleep `delay` seconds, or until a rescan finds `kind` watched."""
        waker = asyncio.Event()
        wakers = self._backing_off.setdefault(kind, set())
        wakers.add(waker)
        sleeping = asyncio.ensure_future(self._sleep(delay))
        waking = asyncio.ensure_future(waker.wait())
        try:
            await asyncio.wait({sleeping, waking}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            waking.cancel()
            wakers.discard(waker)
            if not wakers:
                del self._backing_off[kind]

    def _backoff(self, failures: int, cap: float) -> float:
        return min(cap, self._base_backoff * 2.0 ** (failures - 1))


def _established_kind(event: dict[str, Any]) -> WatchedKind | None:
    """The kind a CRD event's object defines, if that CRD is established and not deleted."""
    crd = event.get("object") or {}
    if event.get("type") not in ("ADDED", "MODIFIED") or crd.get("metadata", {}).get(
        "deletionTimestamp"
    ):
        return None
    conditions = (crd.get("status") or {}).get("conditions") or ()
    if not any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
        return None
    spec = crd.get("spec") or {}
    plural = (spec.get("names") or {}).get("plural")
    return WatchedKind(spec["group"], plural) if spec.get("group") and plural else None


def _is_watched(insights: Any, kind: WatchedKind) -> bool:
    return any(
        resource.group == kind.group and resource.plural == kind.plural
        for resource in insights.watched_resources
    )


def _log_watched_changes(before: set[Any], after: set[Any]) -> None:
    for resource in sorted(after - before, key=repr):
        logger.info("%r is served: it is listed and watched", resource)
    for resource in sorted(before - after, key=repr):
        logger.warning("%r is no longer served: it is not watched until it is", resource)


# Where Kopf's `fetch_objs` notes the resourceVersion of each chunk of a listing, for the
# guard of the stream taking it: each of Kopf's streams is iterated by a task of its own, and a
# context variable is per task (two streams of one kind may list at once: Kopf's namespace
# observer and the namespaces' own).
_LIST_VERSIONS: ContextVar[list[str]] = ContextVar("list_versions")

_kopf_continuous_watch = watching.continuous_watch
_kopf_fetch_objs = fetching.fetch_objs
_kopf_rescan = observation.process_discovered_resource_event


def install(guard: WatchGuard) -> None:
    """Route every Kopf watch stream started from now on through `guard` (noting the
    resourceVersion of the listings they start with), and make Kopf's rescans after a CRD
    change retry (the last installed guard wins: one operator per process)."""

    def continuous_watch(*, resource: Any, namespace: Any, **kwargs: Any) -> Stream:
        # An async generator, though Kopf declares an AsyncIterator.
        stream = cast(
            Stream, _kopf_continuous_watch(resource=resource, namespace=namespace, **kwargs)
        )
        return guard.guard(stream, WatchedKind(resource.group, resource.plural), namespace)

    watching.continuous_watch = continuous_watch
    fetching.fetch_objs = _noting_versions
    observation.process_discovered_resource_event = guard.rescan


def _noting_versions(**kwargs: Any) -> AsyncIterator[tuple[Collection[Any], str]]:
    chunks = _kopf_fetch_objs(**kwargs)
    versions = _LIST_VERSIONS.get(None)
    return chunks if versions is None else _noted(chunks, versions)


async def _noted(
    chunks: AsyncIterator[tuple[Collection[Any], str]], versions: list[str]
) -> AsyncGenerator[tuple[Collection[Any], str], None]:
    async with contextlib.aclosing(cast(AsyncGenerator[Any, None], chunks)):
        async for chunk, version in chunks:
            versions.append(version)
            yield chunk, version
