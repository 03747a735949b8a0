"""The work queue: one worker per key at a time, nothing lost, failures retried with backoff."""

import asyncio

from ecs_operator.controllers.workqueue import WorkQueue
from ecs_operator.kube.client import KubeError


async def test_a_key_added_while_processing_runs_again_afterwards_never_concurrently() -> None:
    running: set[str] = set()
    overlaps = 0
    runs: list[str] = []
    first_started, release, second_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def reconcile(key: str) -> None:
        nonlocal overlaps
        overlaps += key in running
        running.add(key)
        runs.append(key)
        if len(runs) == 1:
            first_started.set()
            await release.wait()
        else:
            second_done.set()
        running.discard(key)

    queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=4)
    queue.start()
    queue.add("a")
    async with asyncio.timeout(5):
        await first_started.wait()
        queue.add("a")
        queue.add("a")  # folded into the previous add: one more run, not two
        release.set()
        await second_done.wait()
    await queue.stop()
    assert runs == ["a", "a"]
    assert overlaps == 0


async def test_failures_are_retried_with_backoff_and_observed() -> None:
    attempts = 0
    observed: list[bool] = []
    succeeded = asyncio.Event()

    async def reconcile(key: str) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError("transient")
        succeeded.set()

    queue: WorkQueue[str] = WorkQueue(
        "test",
        reconcile,
        base_backoff=0.001,
        observe=lambda name, seconds, ok: observed.append(ok),
    )
    queue.start()
    queue.add("k")
    async with asyncio.timeout(5):
        await succeeded.wait()
    await queue.stop()
    assert observed == [False, False, True]


async def test_a_reconcile_whose_namespace_is_gone_is_not_retried() -> None:
    attempts = 0
    done = asyncio.Event()

    async def reconcile(key: str) -> None:
        nonlocal attempts
        attempts += 1
        done.set()
        raise KubeError(404, "NotFound", 'namespaces "gone" not found')

    queue: WorkQueue[str] = WorkQueue("test", reconcile, base_backoff=0.001)
    queue.start()
    queue.add("k")
    async with asyncio.timeout(5):
        await done.wait()
    await asyncio.sleep(0.05)  # a retry would come after 1 ms; none may come
    await queue.stop()
    assert attempts == 1
