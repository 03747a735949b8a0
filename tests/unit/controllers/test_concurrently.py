"""`settle_all`: bounded concurrency, every call settles, the first error is returned."""

from __future__ import annotations

import asyncio

import pytest

from ecs_operator.controllers.concurrently import settle_all, settle_all_or_raise


async def test_runs_at_most_limit_calls_at_once_and_keeps_the_order() -> None:
    in_flight = peak = 0

    async def call(value: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (value % 3))
        in_flight -= 1
        return value

    results, error = await settle_all((call(n) for n in range(40)), limit=4)

    assert results == list(range(40))
    assert error is None
    assert peak == 4


async def test_every_call_settles_when_one_fails_and_the_first_error_is_returned() -> None:
    done: list[int] = []

    async def call(value: int) -> int:
        await asyncio.sleep(0.001 * value)
        if value in (2, 5):
            raise RuntimeError(f"call {value}")
        done.append(value)
        return value

    results, error = await settle_all(call(n) for n in range(8))

    assert sorted(done) == [0, 1, 3, 4, 6, 7]
    assert results == [0, 1, 3, 4, 6, 7]
    assert isinstance(error, RuntimeError) and str(error) == "call 2"


async def test_a_cancelled_call_cancels_the_caller() -> None:
    async def cancelled() -> int:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await settle_all([cancelled()])


async def test_settle_all_or_raise_raises_the_first_error_once_every_call_settled() -> None:
    done: list[int] = []

    async def call(value: int) -> None:
        await asyncio.sleep(0.001 * (5 - value))
        if value == 1:
            raise KeyError(value)
        done.append(value)

    with pytest.raises(KeyError):
        await settle_all_or_raise(call(n) for n in range(5))
    assert sorted(done) == [0, 2, 3, 4]
    await settle_all_or_raise([])  # nothing to do: no error
