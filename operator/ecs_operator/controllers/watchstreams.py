"""Kopf's watch streams, made to report relists and to survive errors of one kind.

Kopf (1.45) relists a kind whenever its watch cannot resume (410 Expired, a failed stream),
but tells handlers only about the objects it listed (events of type None): never that a
listing is over, nor what it no longer has, so an object deleted during the gap would stay in
the caches forever. And any watch error but 410 (404 when a CRD is deleted, 403, 409, …)
escapes Kopf's watcher and stops the whole operator.

Both happen in Kopf's `continuous_watch` (one LIST, then watches resumed from its
resourceVersion until one cannot be), so `install` wraps it:
- when a listing ends, `relisted(kind, namespace)` is called (the caches then reconcile with a
  LIST of their own: see `watches.py`);
- an error ends only that kind's stream: `failed(kind, namespace, error, retry_in)` is called,
  and after the back-off Kopf's `infinite_watch` starts the stream again with a fresh LIST. A
  kind whose CRD was deleted thus resumes when the CRD returns (if Kopf's own CRD observer has
  not stopped and restarted it first), and every other kind carries on.

Kopf also rescans the API's discovery when a CRD changes, and a scan that fails (its retries
spent while the API server restarts) stops the operator too: `install` makes that rescan wait
and try again instead. A rescan also ends the back-off of each kind it finds watched: a kind
whose CRD returns is listed again at once, not after a back-off grown while it was gone (up to
`max_backoff`).

This reaches into Kopf's private modules `kopf._cogs.clients.watching` and
`kopf._core.reactor.observation`; the unit tests pin what it relies on (names, keyword
arguments, `Bookmark.LISTED`), so a Kopf upgrade that moves them fails there rather than
silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from kopf._cogs.clients import watching
from kopf._core.reactor import observation

logger = logging.getLogger(__name__)

# How long a rescan retries for an established CRD's kind the API does not serve yet.
RESCAN_PATIENCE_SECONDS = 60.0


@dataclass(frozen=True)
class WatchedKind:
    group: str  # "" for the core API
    plural: str


class WatchListener(Protocol):
    def relisted(self, kind: WatchedKind, namespace: str | None) -> None:
        """A listing of `kind` (in `namespace`, None: all or cluster-scoped) has ended."""

    def failed(
        self, kind: WatchedKind, namespace: str | None, error: Exception, retry_in: float
    ) -> None:
        """The stream of `kind` failed; it starts again with a fresh LIST in `retry_in` s."""

    def wants(self, kind: WatchedKind) -> bool:
        """Whether the operator watches `kind` when the API serves it."""


Stream = AsyncGenerator[Any, None]  # Kopf's raw events and bookmarks


class WatchGuard:
    """Watches one kind's stream: reports the end of each listing, and turns a failure into
    a back-off (doubling from `base_backoff` to `max_backoff`, reset by a listing that
    completes, cut short by a rescan) followed by the end of the stream. Retries Kopf's rescans
    likewise."""

    def __init__(
        self,
        listener: WatchListener,
        *,
        base_backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._listener = listener
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._failures: dict[tuple[WatchedKind, str | None], int] = {}
        # The back-offs under way, per kind: a rescan that finds the kind watched ends them.
        self._backing_off: dict[WatchedKind, set[asyncio.Event]] = {}

    async def guard(self, stream: Stream, kind: WatchedKind, namespace: str | None) -> Stream:
        listing = True
        try:
            async with contextlib.aclosing(stream):
                async for item in stream:
                    if listing and item is watching.Bookmark.LISTED:
                        listing = False
                        self._failures.pop((kind, namespace), None)
                        self._listener.relisted(kind, namespace)
                    yield item
        except Exception as error:  # any failure of one stream: back off, then relist
            failures = self._failures.get((kind, namespace), 0) + 1
            self._failures[(kind, namespace)] = failures
            delay = self._backoff(failures)
            self._listener.failed(kind, namespace, error, delay)
            await self._back_off(kind, delay)

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
                delay = self._backoff(failures)
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

    def _backoff(self, failures: int) -> float:
        return min(self._max_backoff, self._base_backoff * 2.0 ** (failures - 1))


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


_kopf_continuous_watch = watching.continuous_watch
_kopf_rescan = observation.process_discovered_resource_event


def install(guard: WatchGuard) -> None:
    """Route every Kopf watch stream started from now on through `guard`, and make Kopf's
    rescans after a CRD change retry (the last installed guard wins: one operator per
    process)."""

    def continuous_watch(*, resource: Any, namespace: Any, **kwargs: Any) -> Stream:
        # An async generator, though Kopf declares an AsyncIterator.
        stream = cast(
            Stream, _kopf_continuous_watch(resource=resource, namespace=namespace, **kwargs)
        )
        return guard.guard(stream, WatchedKind(resource.group, resource.plural), namespace)

    watching.continuous_watch = continuous_watch
    observation.process_discovered_resource_event = guard.rescan
