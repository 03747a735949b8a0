"""A level-triggered work queue, as Kubernetes controllers use (client-go's workqueue).

Watch events only *enqueue a key*; workers reconcile the key from current state. A key is
queued at most once, is never processed by two workers at once, and a key added while it is
being processed runs again afterwards, so no change is ever lost or handled concurrently.
Failures are retried per key with capped exponential backoff; success resets it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from ecs_operator.kube.client import KubeError

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        name: str,
        reconcile: Callable[[K], Awaitable[None]],
        *,
        workers: int = 4,
        base_backoff: float = 0.05,
        max_backoff: float = 30.0,
        observe: Callable[[str, float, bool], None] | None = None,
    ) -> None:
        self.name = name
        self._reconcile = reconcile
        self._workers = workers
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._observe = observe  # (queue name, seconds, succeeded), e.g. for metrics
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, key: K) -> None:
        """Reconcile `key` as soon as a worker is free."""
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Reconcile `key` after `delay` seconds (an earlier request wins)."""
        loop = asyncio.get_running_loop()
        timer = self._timers.get(key)
        when = loop.time() + max(0.0, delay)
        if timer is not None and not timer.cancelled():
            if timer.when() <= when:
                return
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"{self.name}-worker-{i}")
            for i in range(self._workers)
        ]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _retry(self, key: K, error: Exception) -> None:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(self._max_backoff, self._base_backoff * 2 ** (failures - 1))
        logger.error(
            "%s: reconcile of %s failed; retry in %.2fs", self.name, key, delay, exc_info=error
        )
        self.add_after(key, delay)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._processing.add(key)
            started = time.monotonic()
            ok = False
            try:
                await self._reconcile(key)
                ok = True
            except asyncio.CancelledError:
                raise
            except KubeError as error:
                if not error.namespace_gone:
                    self._retry(key, error)
                else:  # its namespace is being deleted: nothing left to reconcile there
                    logger.debug("%s: %s: %s", self.name, key, error)
            except Exception as error:
                self._retry(key, error)
            else:
                self._failures.pop(key, None)
            finally:
                if self._observe is not None:
                    self._observe(self.name, time.monotonic() - started, ok)
                self._processing.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
