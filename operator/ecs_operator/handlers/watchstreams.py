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
and try again instead.

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


Stream = AsyncGenerator[Any, None]  # Kopf's raw events and bookmarks


class WatchGuard:
    """Watches one kind's stream: reports the end of each listing, and turns a failure into
    a back-off (doubling from `base_backoff` to `max_backoff`, reset by a listing that
    completes) followed by the end of the stream. Retries Kopf's rescans likewise."""

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
            await self._sleep(delay)

    async def rescan(self, **kwargs: Any) -> None:
        """Kopf's rescan of the API after a CRD event, retried with back-off until it is done."""
        failures = 0
        while True:
            try:
                await _kopf_rescan(**kwargs)
                return
            except Exception as error:  # a failed rescan would stop the whole operator
                failures += 1
                delay = self._backoff(failures)
                logger.error(
                    "rescanning the API after a CRD change failed: %s; retry in %.1fs",
                    error,
                    delay,
                )
                await self._sleep(delay)

    def _backoff(self, failures: int) -> float:
        return min(self._max_backoff, self._base_backoff * 2.0 ** (failures - 1))


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
