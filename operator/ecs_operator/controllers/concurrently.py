"""API calls made concurrently, a bounded number at a time: one request at a time would pace a
large scale-out, a blue/green clean-up or a trim by the API's round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

Result = TypeVar("Result")

CONCURRENT_CALLS = 16


async def settle_all(
    calls: Iterable[Awaitable[Result]], limit: int = CONCURRENT_CALLS
) -> tuple[list[Result], BaseException | None]:
    """Await `calls`, at most `limit` at a time, until every one settled (one still in flight
    would not be seen by the next plan): what those that returned gave, in order, and the first
    error. A cancellation is raised at once."""
    gate = asyncio.Semaphore(limit)

    async def gated(call: Awaitable[Result]) -> Result:
        async with gate:
            return await call

    settled = await asyncio.gather(*(gated(call) for call in calls), return_exceptions=True)
    error = next((r for r in settled if isinstance(r, BaseException)), None)
    if isinstance(error, asyncio.CancelledError):
        raise error
    return [r for r in settled if not isinstance(r, BaseException)], error


async def settle_all_or_raise(
    calls: Iterable[Awaitable[object]], limit: int = CONCURRENT_CALLS
) -> None:
    """`settle_all`, then its first error raised (a retry plans again from what is then
    cached): a blue/green clean-up stops, and a trim deletes, a hundred tasks at once."""
    _, error = await settle_all(calls, limit)
    if error is not None:
        raise error
