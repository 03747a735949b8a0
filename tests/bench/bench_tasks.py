"""Benchmark of standalone Task launch latency, ecs-operator against the Kopf floor (not a test).

    .venv/bin/python tests/bench/bench_tasks.py [--tasks 200] [--rate 40] [--json]

One run, on a fresh sandbox (`ecs-sandbox serve` in its own process: 3 zones x 4 nodes of
64 CPU / 256 GiB, so everything fits), measures two phases one after the other, each with only
its own operator running:

1. ecs-operator (`ecs-operator run`, a subprocess): a TaskDefinition whose container runs
   until stopped, one warm-up Task, then `--tasks` Tasks created through the API at `--rate`
   per second, open loop (each create starts on schedule, however slow the previous answers).
   Per task, with client-side monotonic clocks (creationTimestamp has 1 s resolution): from the
   create call returning to (a) the Pod's first event on a pod watch opened beforehand, (b) the
   Pod Running on that watch, (c) the Task's status.lastStatus RUNNING on a task watch.
   The sandbox's request counters give the operator's API writes per task launched (everything
   written while launching and settling, minus the client's own Task creates). Then the
   operator is restarted against the converged cluster: the writes from its start until it has
   listed everything and no write came for 2 s (30 s deadline) — target: none.
2. the floor (`floor_operator.py`, a minimal Kopf operator creating one Pod per `Floor`):
   the same number of objects at the same rate, (a) and (b) measured the same way.

Targets (reference/targets.md P1): Task -> Pod created p50 <= 30 ms, p99 <= 100 ms.
`run(...)` returns the numbers as a dict; `--json` prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, Python sees only this folder: the benchmarks and the test support are
# imported from tests/, as pytest imports them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench import floor_operator
from support.harness import (
    Api,
    Body,
    OperatorProcess,
    Requests,
    SandboxProcess,
    WatchRecorder,
    ecs_crd_manifests,
    paced,
    percentile,
    run_in_workdir,
    wait_until,
    write_breakdown,
    writes_of,
)

GROUP = "ecs.operator.dev"
VERSION = "v1alpha1"
FAMILY = "bench"
REAL_NAMESPACE = "bench-ecs"
FLOOR_NAMESPACE = "bench-floor"
CONVERGE_TIMEOUT = 120.0
RESTART_QUIET = 2.0
RESTART_TIMEOUT = 30.0
# What the operator watches: the restarted operator has listed all of these before it settles.
OPERATOR_LISTS = ("tasks", "taskdefinitions", "controllerrevisions", "pods", "nodes")


def task_definition() -> Body:
    container = {"name": "app", "image": floor_operator.IMAGE, "memory": 64}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TaskDefinition",
        "metadata": {"name": FAMILY},
        "spec": {"family": FAMILY, "containerDefinitions": [container]},
    }


def task(name: str) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {"taskDefinition": FAMILY},
    }


def pod_running(_: str, pod: Body) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def task_running(_: str, obj: Body) -> bool:
    return (obj.get("status") or {}).get("lastStatus") == "RUNNING"


@dataclass
class Phase:
    """Per-object latencies (ms) of one operator; `running` is what "running" means for it."""

    operator: str
    objects: int
    to_pod: list[float] = field(default_factory=list)
    to_pod_running: list[float] = field(default_factory=list)
    to_running: list[float] = field(default_factory=list)
    running_means: str = ""
    writes: dict[str, int] = field(default_factory=dict)
    missing_pods: list[str] = field(default_factory=list)
    create_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, float] | None:
            if not values:
                return None
            return {"p50": percentile(values, 50), "p99": percentile(values, 99)}

        return {
            "operator": self.operator,
            "objects": self.objects,
            "to_pod_ms": stats(self.to_pod),
            "to_pod_running_ms": stats(self.to_pod_running),
            "to_running_ms": stats(self.to_running),
            "running_means": self.running_means,
            "writes_per_object": round(sum(self.writes.values()) / self.objects, 3),
            "writes": self.writes,
            "missing_pods": self.missing_pods,
            "create_seconds": round(self.create_seconds, 3),
        }


async def launch(
    api: Api,
    namespace: str,
    collection: str,
    bodies: list[Body],
    rate: float,
    operator: OperatorProcess,
    *,
    watch_objects: bool,
) -> Phase:
    """Create `bodies` at `rate` and time their pods (and, for Tasks, their status)."""
    names = [body["metadata"]["name"] for body in bodies]
    phase = Phase(operator.name, len(bodies))
    pods = WatchRecorder(
        api,
        f"/api/v1/namespaces/{namespace}/pods",
        {"created": lambda _kind, _obj: True, "running": pod_running},
    )
    objects = WatchRecorder(api, collection, {"running": task_running})
    final = objects if watch_objects else pods
    created_at: dict[str, float] = {}

    async def create(index: int) -> None:
        await api.create(collection, bodies[index])
        created_at[names[index]] = time.monotonic()

    await pods.start()
    if watch_objects:
        await objects.start()
    try:
        before = await api.counters()
        started, finished = await paced(len(bodies), rate, create)
        phase.create_seconds = finished - started
        await final.wait_all("running", names, CONVERGE_TIMEOUT)
        operator.check_alive()
        await api.settle(quiet=1.0, limit=15.0)
        after = await api.counters()
    finally:
        await pods.stop()
        await objects.stop()
    phase.missing_pods = sorted(set(names) - pods.seen["created"].keys())
    requests: Requests = after - before
    requests.pop(api.create_key(collection), None)  # the client's own creates
    phase.writes = write_breakdown(requests)

    def latencies(seen: dict[str, float]) -> list[float]:
        return [(seen[name] - created_at[name]) * 1000 for name in names if name in seen]

    phase.to_pod = latencies(pods.seen["created"])
    phase.to_pod_running = latencies(pods.seen["running"])
    phase.to_running = latencies(final.seen["running"])
    phase.running_means = (
        "Task status.lastStatus RUNNING (task watch)"
        if watch_objects
        else "Pod phase Running (pod watch)"
    )
    return phase


async def restart_writes(api: Api, operator: OperatorProcess) -> dict[str, Any]:
    """Restart the operator on a converged cluster: its writes until it listed and settled."""
    operator.stop()
    before = await api.counters()
    started = time.monotonic()
    operator.start()

    async def listed() -> bool:
        operator.check_alive()
        requests = await api.counters() - before
        return all(requests[("list", plural)] > 0 for plural in OPERATOR_LISTS)

    await wait_until(listed, RESTART_TIMEOUT, f"the restarted {operator.name} to list everything")
    settled = await api.settle(quiet=RESTART_QUIET, limit=RESTART_TIMEOUT)
    requests = await api.counters() - before
    return {
        "writes": writes_of(requests),
        "breakdown": write_breakdown(requests),
        "settled": settled,
        "seconds": round(time.monotonic() - started, 2),
    }


async def ecs_phase(
    api: Api, kubeconfig: Path, workdir: Path, count: int, rate: float
) -> tuple[Phase, dict[str, Any]]:
    await api.install_crds(ecs_crd_manifests(), GROUP, {"tasks", "taskdefinitions"})
    await api.create_namespace(REAL_NAMESPACE)
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{REAL_NAMESPACE}"
    await api.create(f"{base}/taskdefinitions", task_definition())
    operator = OperatorProcess(
        "ecs-operator",
        ["-m", "ecs_operator", "run", "--kubeconfig", str(kubeconfig), "--liveness", ""],
        workdir,
        kubeconfig,
    )
    operator.start()
    try:

        async def registered() -> bool:
            operator.check_alive()
            found = await api.get(f"{base}/taskdefinitions/{FAMILY}") or {}
            return (found.get("status") or {}).get("revision") is not None

        await wait_until(registered, 60, "ecs-operator to register the task definition")
        await api.create(f"{base}/tasks", task("warm-up"))

        async def warmed_up() -> bool:
            operator.check_alive()
            return task_running("", await api.get(f"{base}/tasks/warm-up") or {})

        await wait_until(warmed_up, 60, "the warm-up task to run")
        bodies = [task(f"task-{index:04d}") for index in range(count)]
        phase = await launch(
            api, REAL_NAMESPACE, f"{base}/tasks", bodies, rate, operator, watch_objects=True
        )
        restart = await restart_writes(api, operator)
    finally:
        operator.stop()
    return phase, restart


async def floor_phase(api: Api, kubeconfig: Path, workdir: Path, count: int, rate: float) -> Phase:
    group, version = floor_operator.GROUP, floor_operator.VERSION
    await api.install_crds([floor_operator.crd_manifest()], group, {floor_operator.PLURAL})
    await api.create_namespace(FLOOR_NAMESPACE)
    base = f"/apis/{group}/{version}/namespaces/{FLOOR_NAMESPACE}/{floor_operator.PLURAL}"
    operator = OperatorProcess(
        "floor", [floor_operator.__file__, "--kubeconfig", str(kubeconfig)], workdir, kubeconfig
    )
    operator.start()
    try:
        await api.create(base, floor_operator.floor_body("warm-up"))

        async def warmed_up() -> bool:
            operator.check_alive()
            pod = await api.get(f"/api/v1/namespaces/{FLOOR_NAMESPACE}/pods/warm-up") or {}
            return pod_running("", pod)

        await wait_until(warmed_up, 60, "the floor operator's warm-up pod to run")
        bodies = [floor_operator.floor_body(f"floor-{index:04d}") for index in range(count)]
        return await launch(api, FLOOR_NAMESPACE, base, bodies, rate, operator, watch_objects=False)
    finally:
        operator.stop()


def ratio(real: dict[str, Any], floor: dict[str, Any], metric: str, stat: str) -> float | None:
    if not real.get(metric) or not floor.get(metric) or floor[metric][stat] <= 0:
        return None
    return float(real[metric][stat] / floor[metric][stat])


async def _run(tasks: int, rate: float, workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    with SandboxProcess(workdir) as sandbox:
        async with aiohttp.ClientSession() as session:
            api = Api(session, sandbox.url)
            ecs, restart = await ecs_phase(api, sandbox.kubeconfig, workdir, tasks, rate)
            floor = await floor_phase(api, sandbox.kubeconfig, workdir, tasks, rate)
    real, base = ecs.summary(), floor.summary()
    return {
        "tasks": tasks,
        "rate_per_second": rate,
        "pacing": "open loop: one create every 1/rate s, each awaited concurrently",
        "seconds": round(time.monotonic() - started, 1),
        "ecs_operator": real,
        "floor": base,
        "ratios": {
            f"{metric}_{stat}": ratio(real, base, f"{metric}_ms", stat)
            for metric in ("to_pod", "to_running")
            for stat in ("p50", "p99")
        },
        "restart": restart,
    }


def run(tasks: int = 200, rate: float = 40.0, workdir: Path | None = None) -> dict[str, Any]:
    """One run of both phases on a fresh sandbox; logs go to `workdir` (default: a temporary
    directory, removed afterwards)."""
    return run_in_workdir("bench-tasks-", workdir, lambda directory: _run(tasks, rate, directory))


def report(result: dict[str, Any]) -> str:
    lines = [
        f"{result['tasks']} objects per operator at {result['rate_per_second']:g}/s, "
        f"{result['seconds']} s"
    ]
    for key in ("ecs_operator", "floor"):
        phase = result[key]
        for metric, label in (
            ("to_pod_ms", "created -> Pod created"),
            ("to_running_ms", f"created -> {phase['running_means']}"),
        ):
            stats = phase[metric] or {"p50": float("nan"), "p99": float("nan")}
            lines.append(
                f"  {phase['operator']:13} {label:58} "
                f"p50 {stats['p50']:7.1f} ms  p99 {stats['p99']:7.1f} ms"
            )
        lines.append(
            f"  {phase['operator']:13} API writes per object {phase['writes_per_object']:.2f}: "
            f"{phase['writes']}"
        )
        if phase["missing_pods"]:
            lines.append(f"  {phase['operator']:13} NO POD for {phase['missing_pods']}")
    ratios = ", ".join(
        f"{name} {value:.2f}" for name, value in result["ratios"].items() if value is not None
    )
    lines.append(f"  ratios ecs-operator/floor: {ratios}")
    restart = result["restart"]
    lines.append(
        f"  restart on a converged cluster: {restart['writes']} writes {restart['breakdown']} "
        f"({'settled' if restart['settled'] else 'NOT settled'} after {restart['seconds']} s)"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="objects per operator")
    parser.add_argument("--rate", type=float, default=40.0, help="creations per second")
    parser.add_argument("--workdir", type=Path, help="keep the sandbox and operator logs here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(args.tasks, args.rate, args.workdir)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
