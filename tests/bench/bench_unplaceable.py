"""Benchmark of a full cluster: what the operator spends on Services it cannot place (not a test).

    .venv/bin/python tests/bench/bench_unplaceable.py [--window 60]

Issue #13: a Service that cannot place every task once kept the operator at about 60 % of a
core, rewriting the Service's status 220-280 times a second. On a fresh sandbox of 3 zones x 2
nodes (8 GiB each, heartbeating every 10 s as kubelets do by default), `ecs-operator run` as a
subprocess and two Services of 8 tasks each that can never all be placed:

- `ported`: every task asks for host port 8080, so one fits per node (6 of 8);
- `big`: every task asks for 6,000 MiB, so one fits per node (6 of 8).

Once both run 6 tasks and report `Degraded` `TasksCannotBePlaced`, and the API saw no write for
SETTLE_QUIET s (or SETTLE_LIMIT s passed: an operator that never stops writing is measured all
the same), the operator's CPU time (user + system) and the API's request counters are sampled
over `window` seconds: operator CPU in % of one core, API writes per second (with their
breakdown), and the ECS events the two Services gained meanwhile. Placement is retried every 30 s
(`core/service_planning.py` PLACEMENT_RETRY_SECONDS), so a 60 s window holds two retries per
Service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, Python sees only this folder: the benchmarks and the test support are
# imported from tests/, as pytest imports them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench import floor_operator
from bench.bench_scale import KUBELET_STATUS_SECONDS, NODE_MONITOR_GRACE_SECONDS, cpu_seconds
from bench.bench_tasks import GROUP, VERSION
from support.harness import (
    Api,
    Body,
    OperatorProcess,
    SandboxProcess,
    ecs_crd_manifests,
    run_in_workdir,
    wait_until,
    write_breakdown,
    writes_of,
)

NAMESPACE = "full"
NODES_PER_ZONE = 2
NODE_MEMORY = "8Gi"
DESIRED = 8
PLACEABLE = 3 * NODES_PER_ZONE
IMAGE = floor_operator.IMAGE
STUCK_TIMEOUT = 120.0
SETTLE_QUIET = 5.0
SETTLE_LIMIT = 60.0
SCENARIOS: dict[str, Body] = {
    "ported": {
        "name": "app",
        "image": IMAGE,
        "memory": 64,
        "portMappings": [{"containerPort": 8080, "hostPort": 8080}],
    },
    "big": {"name": "app", "image": IMAGE, "memory": 6000},
}


def task_definition(family: str, container: Body) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TaskDefinition",
        "metadata": {"name": family},
        "spec": {"family": family, "containerDefinitions": [container]},
    }


def service(name: str) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"taskDefinition": name, "desiredCount": DESIRED},
    }


def stuck(body: Body | None) -> bool:
    """PLACEABLE tasks run and the rest is reported as unplaceable."""
    status = (body or {}).get("status") or {}
    degraded = next((c for c in status.get("conditions") or () if c.get("type") == "Degraded"), {})
    return (
        status.get("runningCount") == PLACEABLE and degraded.get("reason") == "TasksCannotBePlaced"
    )


async def _run(workdir: Path, window: float) -> dict[str, Any]:
    with SandboxProcess(
        workdir,
        nodes_per_zone=NODES_PER_ZONE,
        node_memory=NODE_MEMORY,
        heartbeat_interval=KUBELET_STATUS_SECONDS,
        node_monitor_grace=NODE_MONITOR_GRACE_SECONDS,
    ) as sandbox:
        async with aiohttp.ClientSession() as session:
            api = Api(session, sandbox.url)
            await api.install_crds(ecs_crd_manifests(), GROUP, {"tasks", "services"})
            operator = OperatorProcess(
                "ecs-operator",
                [
                    "-m",
                    "ecs_operator",
                    "run",
                    "--kubeconfig",
                    str(sandbox.kubeconfig),
                    "--liveness",
                    "",
                ],
                workdir,
                sandbox.kubeconfig,
            )
            operator.start()
            try:
                return await _measure(api, operator, window)
            finally:
                operator.stop()


async def _measure(api: Api, operator: OperatorProcess, window: float) -> dict[str, Any]:
    await api.create_namespace(NAMESPACE)
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}"
    for family, container in SCENARIOS.items():
        await api.create(f"{base}/taskdefinitions", task_definition(family, container))
        await api.create(f"{base}/services", service(family))

    async def all_stuck() -> bool:
        operator.check_alive()
        found = [await api.get(f"{base}/services/{name}") for name in SCENARIOS]
        return all(stuck(body) for body in found)

    await wait_until(all_stuck, STUCK_TIMEOUT, "both Services stuck at 6 of 8 tasks", 0.5)
    settled = await api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
    assert operator.process is not None
    pid = operator.process.pid

    async def event_ids() -> set[str]:
        found = [await api.get(f"{base}/services/{name}") for name in SCENARIOS]
        return {
            event["id"]
            for body in found
            for event in ((body or {}).get("status") or {}).get("events") or ()
        }

    events_before = await event_ids()
    requests_before = await api.counters()
    cpu_before, clock_before = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(window)  # the measurement window itself, not a wait for state
    cpu_after, clock_after = cpu_seconds(pid), time.monotonic()
    requests = await api.counters() - requests_before
    new_events = len(await event_ids() - events_before)
    operator.check_alive()
    elapsed = clock_after - clock_before
    writes = writes_of(requests)
    return {
        "services": list(SCENARIOS),
        "desired": DESIRED,
        "placeable": PLACEABLE,
        "settled": settled,
        "window_seconds": round(elapsed, 1),
        "cpu_seconds": round(cpu_after - cpu_before, 3),
        "cpu_percent": round(100 * (cpu_after - cpu_before) / elapsed, 2),
        "writes": writes,
        "writes_per_second": round(writes / elapsed, 3),
        "write_breakdown": write_breakdown(requests),
        "service_status_writes": requests.get(("patch", "services/status"), 0),
        "new_ecs_events": new_events,
    }


def run(window: float = 60.0, workdir: Path | None = None) -> dict[str, Any]:
    """One run on a fresh sandbox; logs go to `workdir` (default: a temporary directory)."""
    return run_in_workdir("bench-unplaceable-", workdir, lambda directory: _run(directory, window))


def report(result: dict[str, Any]) -> str:
    return (
        f"full cluster: Services {', '.join(result['services'])} at {result['placeable']} of "
        f"{result['desired']} tasks ({'settled' if result['settled'] else 'NOT settled'}); over "
        f"{result['window_seconds']} s the operator used {result['cpu_seconds']} CPU s "
        f"({result['cpu_percent']} % of a core), {result['writes']} API writes "
        f"({result['writes_per_second']}/s; {result['service_status_writes']} Service status "
        f"writes) {result['write_breakdown']}, {result['new_ecs_events']} new ECS events"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--workdir", type=Path, help="keep the sandbox and operator logs here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(args.window, args.workdir)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
