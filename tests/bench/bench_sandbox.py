"""Benchmark of the sandbox API server over HTTP (aiohttp client), medians over several runs.

    .venv/bin/python tests/bench/bench_sandbox.py [--runs 5] [--pods 2000] [--list-pods 10000]

The server runs in its own process (as it does next to an operator), without simulated nodes,
so only API work is measured:

(a) create N pods with 16 requests in flight while a watch on the namespace consumes them:
    objects/s from the first request until the watch has seen every pod (target >= 1,000/s);
(b) list pods with a labelSelector matching 1 % of 10,000 pods: median ms (target <= 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import aiohttp

CONCURRENCY = 16
DEFAULT_PODS = 2000
DEFAULT_LIST_PODS = 10000


def serve() -> None:
    """Child process: a sandbox without nodes; prints its URL, runs until stdin closes."""
    from ecs_sandbox.runtime import Sandbox

    async def main() -> None:
        async with Sandbox(port=0) as sandbox:
            print(sandbox.url, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


def pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "1"]}]},
    }


async def new_namespace(session: aiohttp.ClientSession, url: str) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    async with session.post(f"{url}/api/v1/namespaces", json=body) as response:
        assert response.status == 201, await response.text()
    return name


async def create_pods(
    session: aiohttp.ClientSession, url: str, ns: str, count: int, labels_of: Any
) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            body = pod(f"p-{index}", labels_of(index))
            async with session.post(f"{url}/api/v1/namespaces/{ns}/pods", json=body) as response:
                if response.status != 201:
                    raise RuntimeError(f"create failed: {response.status} {await response.text()}")
                await response.read()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def create_while_watching(url: str, count: int) -> float:
    async with aiohttp.ClientSession() as session:
        ns = await new_namespace(session, url)
        watch_url = f"{url}/api/v1/namespaces/{ns}/pods?watch=true"
        async with session.get(watch_url, timeout=aiohttp.ClientTimeout(total=None)) as watch:
            seen = 0
            started = time.perf_counter()
            creating = asyncio.create_task(create_pods(session, url, ns, count, lambda i: {}))
            async for line in watch.content:
                if line.strip() and json.loads(line)["type"] == "ADDED":
                    seen += 1
                    if seen == count:
                        break
            elapsed = time.perf_counter() - started
            await creating
        await session.delete(f"{url}/api/v1/namespaces/{ns}")
    return count / elapsed


async def list_with_selector(url: str, count: int, repeats: int = 20) -> float:
    async with aiohttp.ClientSession() as session:
        ns = await new_namespace(session, url)
        await create_pods(session, url, ns, count, lambda i: {"app": f"a{i % 100}", "tier": "t"})
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            async with session.get(
                f"{url}/api/v1/namespaces/{ns}/pods", params={"labelSelector": "app=a7,tier"}
            ) as response:
                body = await response.json()
            timings.append((time.perf_counter() - started) * 1000)
            assert len(body["items"]) == count // 100
        await session.delete(f"{url}/api/v1/namespaces/{ns}")
    return statistics.median(timings)


def measure(
    runs: int = 5, pods: int = DEFAULT_PODS, list_pods: int = DEFAULT_LIST_PODS
) -> tuple[list[float], list[float]]:
    """(objects/s of each run of (a), ms of each run of (b)), on one server process."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        rates = [asyncio.run(create_while_watching(url, pods)) for _ in range(runs)]
        lists = [asyncio.run(list_with_selector(url, list_pods)) for _ in range(runs)]
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(30)
    return rates, lists


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pods", type=int, default=DEFAULT_PODS)
    parser.add_argument("--list-pods", type=int, default=DEFAULT_LIST_PODS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0
    rates, lists = measure(args.runs, args.pods, args.list_pods)
    print(
        f"(a) create {args.pods} pods ({CONCURRENCY} in flight) while watching: "
        f"median {statistics.median(rates):,.0f} objects/s over {args.runs} runs "
        f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}; target >= 1,000)"
    )
    print(
        f"(b) list with labelSelector over {args.list_pods:,} pods: "
        f"median {statistics.median(lists):.1f} ms over {args.runs} runs "
        f"(runs: {', '.join(f'{t:.1f}' for t in lists)}; target <= 50)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
