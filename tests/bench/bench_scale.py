"""Benchmark of the operator at scale: memory and idle CPU with many Services (not a test).

    .venv/bin/python tests/bench/bench_scale.py [--services 1000] [--tasks-per-service 10]

reference/targets.md P6: 1,000 Services / 10,000 tasks watched, operator RSS <= 500 MB and idle
CPU <= 5 % of a core. On a fresh sandbox in its own process (3 zones of nodes with room for
every task, heartbeating every 10 s as kubelets do by default), `ecs-operator run` as a
subprocess: one namespace, one task definition, `services` Services of `tasks_per_service`
tasks each, created SERVICE_CONCURRENCY at a time.
Once every task is RUNNING, every Service's deployment COMPLETED and the API saw no write for
SETTLE_QUIET s, the operator's resident memory (VmRSS, and VmHWM its peak) is read from /proc,
and its CPU time (user + system) is sampled over `idle_seconds` (30): idle CPU = that time /
IDLE_SECONDS, in % of one core. Also
reported: seconds from the first Service create to every task RUNNING, and the API writes
during the idle window (a converged operator writes nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, Python sees only this folder: the benchmarks and the test support are
# imported from tests/, as pytest imports them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench.bench_services import NODE_PODS, service, tasks_path
from bench.bench_tasks import FAMILY, GROUP, VERSION, task_definition, task_running
from support.harness import (
    Api,
    OperatorProcess,
    SandboxProcess,
    WatchRecorder,
    ecs_crd_manifests,
    run_in_workdir,
    wait_until,
    write_breakdown,
    writes_of,
)

NAMESPACE = "scale"
SERVICE_CONCURRENCY = 16
CONVERGE_TIMEOUT = 900.0
SETTLE_QUIET = 5.0
SETTLE_LIMIT = 120.0
PODS_PER_NODE = int(NODE_PODS)
# Kubernetes' defaults (kubelet nodeStatusUpdateFrequency, node-monitor-grace-period): idle is
# measured against a cluster's usual node heartbeats, not the sandbox's 1 s test timing.
KUBELET_STATUS_SECONDS = 10.0
NODE_MONITOR_GRACE_SECONDS = 40.0


def proc_status(pid: int, field: str) -> int:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of PID so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(
    workdir: Path, services: int, per_service: int, idle_seconds: float
) -> dict[str, Any]:
    tasks = services * per_service
    nodes_per_zone = math.ceil(tasks * 1.2 / PODS_PER_NODE / 3)
    with SandboxProcess(
        workdir,
        nodes_per_zone=nodes_per_zone,
        node_pods=NODE_PODS,
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
                return await _measure(
                    api, operator, services, per_service, nodes_per_zone * 3, idle_seconds
                )
            finally:
                operator.stop()


async def _measure(
    api: Api,
    operator: OperatorProcess,
    services: int,
    per_service: int,
    nodes: int,
    idle_seconds: float,
) -> dict[str, Any]:
    tasks = services * per_service
    await api.create_namespace(NAMESPACE)
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}"
    await api.create(f"{base}/taskdefinitions", task_definition())

    async def registered() -> bool:
        operator.check_alive()
        found = await api.get(f"{base}/taskdefinitions/{FAMILY}") or {}
        return (found.get("status") or {}).get("revision") is not None

    await wait_until(registered, 60, "the task definition to register")
    running = WatchRecorder(api, tasks_path(NAMESPACE), {"running": task_running})
    await running.start()
    try:
        started = time.monotonic()
        bodies = [service(f"svc-{index:04d}", per_service) for index in range(services)]
        queue = list(reversed(bodies))

        async def create() -> None:
            while queue:
                await api.create(f"{base}/services", queue.pop())

        await asyncio.gather(*(create() for _ in range(SERVICE_CONCURRENCY)))

        async def all_running() -> bool:
            operator.check_alive()
            return len(running.seen["running"]) >= tasks

        await wait_until(all_running, CONVERGE_TIMEOUT, f"{tasks} tasks RUNNING", 0.5)
        converged = max(running.seen["running"].values()) - started
    finally:
        await running.stop()

    # Every task RUNNING is not yet converged: each Service still completes its deployment and
    # reports its steady state. Idle is measured after that, and once no write came for a while.
    async def all_completed() -> bool:
        operator.check_alive()
        listed = await api.get(f"{base}/services") or {}
        return len(listed.get("items") or ()) == services and all(
            _completed(body) for body in listed["items"]
        )

    await wait_until(all_completed, CONVERGE_TIMEOUT, "every deployment COMPLETED", 2.0)
    settled = await api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
    assert operator.process is not None
    pid = operator.process.pid
    before_writes = await api.counters()
    cpu_before, clock_before = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(idle_seconds)  # the measurement window itself, not a wait for state
    cpu_after, clock_after = cpu_seconds(pid), time.monotonic()
    idle_writes = await api.counters() - before_writes
    operator.check_alive()
    return {
        "services": services,
        "tasks": tasks,
        "nodes": nodes,
        "converged_seconds": round(converged, 1),
        "settled": settled,
        "rss_mb": round(proc_status(pid, "VmRSS") / 2**20, 1),
        "peak_rss_mb": round(proc_status(pid, "VmHWM") / 2**20, 1),
        "idle_cpu_percent": round(100 * (cpu_after - cpu_before) / (clock_after - clock_before), 2),
        "idle_seconds": idle_seconds,
        "idle_writes": writes_of(idle_writes),
        "idle_write_breakdown": write_breakdown(idle_writes),
    }


def _completed(service: dict[str, Any]) -> bool:
    """One deployment, COMPLETED, with every desired task running."""
    status = service.get("status") or {}
    deployments = status.get("deployments") or ()
    return (
        len(deployments) == 1
        and deployments[0].get("rolloutState") == "COMPLETED"
        and status.get("runningCount") == (service.get("spec") or {}).get("desiredCount")
    )


def run(
    services: int = 1000,
    tasks_per_service: int = 10,
    workdir: Path | None = None,
    idle_seconds: float = 30.0,
) -> dict[str, Any]:
    """One run on a fresh sandbox; logs go to `workdir` (default: a temporary directory)."""
    return run_in_workdir(
        "bench-scale-",
        workdir,
        lambda directory: _run(directory, services, tasks_per_service, idle_seconds),
    )


def report(result: dict[str, Any]) -> str:
    return (
        f"scale: {result['services']:,} Services / {result['tasks']:,} tasks on "
        f"{result['nodes']} nodes, all RUNNING after {result['converged_seconds']} s "
        f"({'settled' if result['settled'] else 'NOT settled'}); operator RSS "
        f"{result['rss_mb']} MB (peak {result['peak_rss_mb']} MB), idle CPU "
        f"{result['idle_cpu_percent']} % of a core over {result['idle_seconds']:g} s, "
        f"{result['idle_writes']} writes meanwhile {result['idle_write_breakdown']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--tasks-per-service", type=int, default=10)
    parser.add_argument("--workdir", type=Path, help="keep the sandbox and operator logs here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(args.services, args.tasks_per_service, args.workdir)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
