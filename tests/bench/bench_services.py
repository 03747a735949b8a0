"""Benchmark of Services: scale-out, replacement, node loss, API writes (not a test).

    .venv/bin/python tests/bench/bench_services.py [--scales 100,1000] [--json] [--workdir DIR]

One run, on a fresh sandbox in its own process (3 zones x 6 nodes of 64 CPU / 256 GiB and 250
pods each: the simulator hands out one /24 of pod IPs per node), with `ecs-operator run` as a
subprocess, then the Kopf floor (`floor_operator.py`) alone, each phase in its own namespace
(reference/targets.md P2-P5); client-side monotonic clocks throughout:

- P3 replacement: a Service of `replace_tasks` tasks runs; once they have run for
  STARTUP_FAILURE_SECONDS (a task that stops sooner counts as one that failed to start, and the
  service then throttles its launches: that would measure the throttle), `failures` of its pods
  get the sandbox's `exit` annotation (their essential container exits 1), paced at FAILURE_RATE/s.
  From the moment the pod watch shows a container terminated to the moment it shows the Pod of
  a new task of that service; failures and new Pods are paired in order (first failure, first
  new Pod). Target p99 <= 500 ms.
- P4 node loss: a Service of `node_loss_tasks` tasks; the node holding most of them is marked
  lost (`node-state=lost`). From the node watch showing Ready not True to the task watch showing
  as many new tasks RUNNING as the node held. The node is restored and the service settles
  between runs; each run takes another node. Target <= 10 s.
- P2 scale-out, one Service per size in `scales`: from the Service create call to every task
  RUNNING (task watch); tasks/s = N / that time. Targets: 100 in <= 5 s, 1,000 in <= 20 s.
- P5 writes: the API writes (sandbox request counters, every non-GET verb) from the first
  scale-out's create until the cluster settled, minus the client's own create, per task.
  Then the operator restarts against the converged cluster of all these services: its writes
  until it has listed everything and nothing was written for 2 s (target: none).
- Floor: for each size, that many `Floor` objects created as one batch (FLOOR_CONCURRENCY
  requests in flight) from the first create call to every Pod Running (pod watch).

`run(...)` returns every number as a dict; `report(result)` renders it; `--json` prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a script, Python sees only this folder: the benchmarks and the test support are
# imported from tests/, as pytest imports them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench import bench_tasks, floor_operator
from bench.bench_tasks import FAMILY, GROUP, VERSION, pod_running, task_definition, task_running
from ecs_operator.core.deployments import STARTUP_FAILURE_SECONDS
from support.harness import (
    Api,
    Body,
    OperatorProcess,
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

NODES_PER_ZONE = 6
NODE_PODS = "250"
EXIT_ANNOTATION = "sandbox.ecs.operator.dev/exit"
NODE_STATE_ANNOTATION = "sandbox.ecs.operator.dev/node-state"
FAILURE_RATE = 5.0
FLOOR_CONCURRENCY = 16
CONVERGE_TIMEOUT = 180.0
SETTLE_QUIET = 1.0
SETTLE_LIMIT = 30.0
ZONE_LABEL = "topology.kubernetes.io/zone"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def service(name: str, desired: int) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"taskDefinition": FAMILY, "desiredCount": desired},
    }


def container_terminated(_: str, pod: Body) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return any("terminated" in (status.get("state") or {}) for status in statuses)


def node_not_ready(_: str, node: Body) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or ()
    ready = next((c for c in conditions if c.get("type") == "Ready"), {})
    return ready.get("status") != "True"


def anything(_: str, __: Body) -> bool:
    return True


def tasks_path(namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/tasks"


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


async def merge_patch(api: Api, path: str, patch: Body) -> None:
    async with api.session.patch(api.url + path, json=patch, headers=MERGE_PATCH) as response:
        if response.status != 200:
            raise RuntimeError(f"PATCH {path}: {response.status} {await response.text()}")


async def items(api: Api, path: str) -> list[Body]:
    listing = await api.get(path) or {}
    found: list[Body] = listing.get("items") or []
    return found


async def running_tasks(api: Api, namespace: str) -> list[Body]:
    return [t for t in await items(api, tasks_path(namespace)) if task_running("", t)]


async def wait_count(
    recorder: WatchRecorder,
    probe: str,
    count: int,
    seconds: float,
    what: str,
    *,
    among: Iterable[str] | None = None,
    excluding: Iterable[str] = (),
) -> float:
    """Wait until `count` objects (of `among` if given, never of `excluding`) satisfied
    `probe`; the time the `count`-th did (TimeoutError after `seconds`)."""
    wanted = None if among is None else set(among)
    unwanted = set(excluding)

    async def reached() -> list[float] | None:
        times = sorted(
            at
            for name, at in recorder.seen[probe].items()
            if (wanted is None or name in wanted) and name not in unwanted
        )
        return times if len(times) >= count else None

    times: list[float] = await wait_until(reached, seconds, what)
    return times[count - 1]


class EcsBench:
    """The ecs-operator phases, sharing one sandbox, one operator and its task definition."""

    def __init__(self, api: Api, operator: OperatorProcess) -> None:
        self.api = api
        self.operator = operator

    async def prepare(self, namespace: str) -> None:
        """A namespace with the benchmark's task definition registered."""
        await self.api.create_namespace(namespace)
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}"
        await self.api.create(f"{base}/taskdefinitions", task_definition())

        async def registered() -> bool:
            self.operator.check_alive()
            found = await self.api.get(f"{base}/taskdefinitions/{FAMILY}") or {}
            return (found.get("status") or {}).get("revision") is not None

        await wait_until(registered, 60, f"the task definition of {namespace} to register")

    async def converged_service(self, namespace: str, name: str, desired: int) -> None:
        await self.prepare(namespace)
        await self.api.create(
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/services", service(name, desired)
        )
        await self.until_running(namespace, desired)

    async def until_running(self, namespace: str, desired: int) -> None:
        """Exactly `desired` tasks RUNNING and no write for a while (steady state)."""

        async def steady() -> bool:
            self.operator.check_alive()
            return len(await running_tasks(self.api, namespace)) == desired

        await wait_until(steady, CONVERGE_TIMEOUT, f"{desired} tasks RUNNING in {namespace}", 0.2)
        await self.api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)

    async def until_established(self, namespace: str, names: list[str]) -> None:
        """Wait until every task of `names` has run for STARTUP_FAILURE_SECONDS."""
        started = []
        for name in names:
            task = await self.api.get(f"{tasks_path(namespace)}/{name}") or {}
            started.append(datetime.fromisoformat((task.get("status") or {})["startedAt"]))
        established = max(started) + timedelta(seconds=STARTUP_FAILURE_SECONDS + 0.5)
        wait = (established - datetime.now(UTC)).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)  # the operator's own threshold, not a guess

    async def scale_out(self, namespace: str, count: int) -> dict[str, Any]:
        """P2 and P5: a Service 0 -> `count`; seconds to all RUNNING and the writes it took."""
        await self.prepare(namespace)
        await self.api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
        tasks = WatchRecorder(self.api, tasks_path(namespace), {"running": task_running})
        pods = WatchRecorder(self.api, pods_path(namespace), {"running": pod_running})
        await tasks.start()
        await pods.start()
        try:
            before = await self.api.counters()
            started = time.monotonic()
            await self.api.create(
                f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/services",
                service("scale", count),
            )
            what = f"{count} service tasks RUNNING"
            all_running = await wait_count(tasks, "running", count, CONVERGE_TIMEOUT, what)
            what = f"{count} pods Running"
            pods_running = await wait_count(pods, "running", count, CONVERGE_TIMEOUT, what)
            self.operator.check_alive()
            settled = await self.api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
            requests = await self.api.counters() - before
        finally:
            await tasks.stop()
            await pods.stop()
        requests.pop(("create", "services"), None)  # the client's own
        seconds = all_running - started
        return {
            "tasks": count,
            "seconds": round(seconds, 3),
            "tasks_per_second": round(count / seconds, 1),
            "pods_running_seconds": round(pods_running - started, 3),
            "writes_per_task": round(writes_of(requests) / count, 3),
            "writes": write_breakdown(requests),
            "settled": settled,
        }

    async def replacements(self, namespace: str, desired: int, failures: int) -> dict[str, Any]:
        """P3: `failures` essential-container exits in a converged service; latencies (ms)."""
        await self.converged_service(namespace, "replace", desired)
        # By uid: a replacement may take the name of a failed task deleted meanwhile.
        pods = WatchRecorder(
            self.api,
            pods_path(namespace),
            {"added": anything, "failed": container_terminated},
            key="uid",
        )
        await pods.start()
        try:
            uids = {
                p["metadata"]["name"]: p["metadata"]["uid"]
                for p in await items(self.api, pods_path(namespace))
            }
            originals = set(uids.values())
            victims = sorted(
                t["metadata"]["name"] for t in await running_tasks(self.api, namespace)
            )
            victims = victims[:failures]
            victim_uids = [uids[name] for name in victims]
            await self.until_established(namespace, victims)

            async def fail(index: int) -> None:
                patch = {"metadata": {"annotations": {EXIT_ANNOTATION: "app:1"}}}
                path = f"{pods_path(namespace)}/{victims[index]}"
                async with self.api.session.patch(
                    self.api.url + path, json=patch, headers=MERGE_PATCH
                ) as response:
                    if response.status == 404:
                        task = await self.api.get(f"{tasks_path(namespace)}/{victims[index]}")
                        reason = ((task or {}).get("spec") or {}).get("stoppedReason")
                        raise RuntimeError(
                            f"the pod of {victims[index]}, a task of a converged service, "
                            f"vanished before the benchmark failed it: the operator stopped it "
                            f"on its own ({reason or 'task gone'})"
                        )
                    if response.status != 200:
                        raise RuntimeError(
                            f"PATCH {path}: {response.status} {await response.text()}"
                        )

            await paced(len(victims), FAILURE_RATE, fail)
            what = "the failures to show"
            await wait_count(pods, "failed", len(victims), 60, what, among=victim_uids)
            what = f"{len(victims)} replacement pods"
            await wait_count(pods, "added", len(victims), 60, what, excluding=originals)
        finally:
            await pods.stop()
        failed_at = sorted(pods.seen["failed"][uid] for uid in victim_uids)
        replaced_at = sorted(at for uid, at in pods.seen["added"].items() if uid not in originals)
        latencies = [(new - old) * 1000 for old, new in zip(failed_at, replaced_at, strict=False)]
        await self.until_running(namespace, desired)
        return {
            "service_tasks": desired,
            "failures": len(victims),
            "rate_per_second": FAILURE_RATE,
            "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
            "max_ms": round(max(latencies), 1),
        }

    async def node_losses(self, namespace: str, desired: int, runs: int) -> list[dict[str, Any]]:
        """P4: `runs` node losses, another node each time, restored in between."""
        await self.converged_service(namespace, "nodeloss", desired)
        lost: list[str] = []
        results = []
        for _ in range(runs):
            result = await self._lose_one_node(namespace, desired, lost)
            lost.append(result["node"])
            results.append(result)
        return results

    async def _lose_one_node(
        self, namespace: str, desired: int, already_lost: list[str]
    ) -> dict[str, Any]:
        running = {t["metadata"]["name"] for t in await running_tasks(self.api, namespace)}
        known = {t["metadata"]["uid"] for t in await items(self.api, tasks_path(namespace))}
        by_node: dict[str, list[str]] = {}
        for pod in await items(self.api, pods_path(namespace)):
            name = pod["metadata"]["name"]
            if name in running:
                by_node.setdefault(pod["spec"].get("nodeName", ""), []).append(name)
        node = max(
            (n for n in by_node if n and n not in already_lost), key=lambda n: len(by_node[n])
        )
        victims = by_node[node]
        nodes = WatchRecorder(self.api, "/api/v1/nodes", {"not_ready": node_not_ready})
        # By uid: a replacement may take the name of a task deleted meanwhile.
        tasks = WatchRecorder(self.api, tasks_path(namespace), {"running": task_running}, key="uid")
        await nodes.start()
        await tasks.start()
        node_path = f"/api/v1/nodes/{node}"
        try:
            lost_at = time.monotonic()
            patch = {"metadata": {"annotations": {NODE_STATE_ANNOTATION: "lost"}}}
            await merge_patch(self.api, node_path, patch)
            not_ready = await wait_count(
                nodes, "not_ready", 1, 60, f"{node} NotReady", among=[node]
            )
            what = f"{len(victims)} replacements of the tasks on {node}"
            replaced = await wait_count(tasks, "running", len(victims), 60, what, excluding=known)
        finally:
            await nodes.stop()
            await tasks.stop()
        new_names = {
            t["metadata"]["name"]
            for t in await running_tasks(self.api, namespace)
            if t["metadata"]["uid"] not in known
        }
        pods = await items(self.api, pods_path(namespace))
        zones = {
            n["metadata"]["name"]: n["metadata"]["labels"].get(ZONE_LABEL, "")
            for n in await items(self.api, "/api/v1/nodes")
        }
        placed = [p["spec"].get("nodeName", "") for p in pods if p["metadata"]["name"] in new_names]
        await merge_patch(
            self.api, node_path, {"metadata": {"annotations": {NODE_STATE_ANNOTATION: None}}}
        )

        async def ready_again() -> bool:
            return not node_not_ready("", await self.api.get(node_path) or {})

        await wait_until(ready_again, 30, f"{node} Ready again")
        await self.until_running(namespace, desired)
        return {
            "node": node,
            "tasks_on_node": len(victims),
            "seconds": round(replaced - not_ready, 3),
            "not_ready_after_seconds": round(not_ready - lost_at, 3),
            "zone": zones.get(node, ""),
            "replacements_on_lost_node": placed.count(node),
            "replacement_zones": dict(Counter(zones.get(n, "") for n in placed)),
        }


async def floor_batches(
    api: Api, kubeconfig: Path, workdir: Path, sizes: list[int]
) -> list[dict[str, Any]]:
    """For each size, a batch of `Floor` objects until all their Pods run (the floor of P2)."""
    await api.install_crds(
        [floor_operator.crd_manifest()], floor_operator.GROUP, {floor_operator.PLURAL}
    )
    operator = OperatorProcess(
        "floor", [floor_operator.__file__, "--kubeconfig", str(kubeconfig)], workdir, kubeconfig
    )
    operator.start()
    try:
        await floor_batch(api, operator, "floor-warm-up", 1)
        return [await floor_batch(api, operator, f"floor-{size}", size) for size in sizes]
    finally:
        operator.stop()


async def floor_batch(
    api: Api, operator: OperatorProcess, namespace: str, size: int
) -> dict[str, Any]:
    await api.create_namespace(namespace)
    base = (
        f"/apis/{floor_operator.GROUP}/{floor_operator.VERSION}/namespaces/{namespace}/"
        f"{floor_operator.PLURAL}"
    )
    names = [f"floor-{index:04d}" for index in range(size)]
    pods = WatchRecorder(api, pods_path(namespace), {"running": pod_running})
    await pods.start()
    try:
        before = await api.counters()
        started = time.monotonic()
        await batch_create(api, base, [floor_operator.floor_body(name) for name in names])
        missing = await pods.wait_all("running", names, CONVERGE_TIMEOUT)
        operator.check_alive()
        if missing:
            raise TimeoutError(f"{len(missing)} floor pods not Running, e.g. {missing[:3]}")
        seconds = max(pods.seen["running"].values()) - started
        await api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
        requests = await api.counters() - before
    finally:
        await pods.stop()
    requests.pop(("create", floor_operator.PLURAL), None)  # the client's own
    return {
        "objects": size,
        "seconds": round(seconds, 3),
        "objects_per_second": round(size / seconds, 1),
        "writes_per_object": round(writes_of(requests) / size, 3),
    }


async def batch_create(api: Api, path: str, bodies: list[Body]) -> None:
    queue = list(reversed(bodies))

    async def worker() -> None:
        while queue:
            await api.create(path, queue.pop())

    await asyncio.gather(*(worker() for _ in range(FLOOR_CONCURRENCY)))


async def _run(
    workdir: Path,
    scales: list[int],
    replace_tasks: int,
    failures: int,
    node_loss_tasks: int,
    node_loss_runs: int,
    nodes_per_zone: int,
) -> dict[str, Any]:
    started = time.monotonic()
    with SandboxProcess(workdir, nodes_per_zone=nodes_per_zone, node_pods=NODE_PODS) as sandbox:
        async with aiohttp.ClientSession() as session:
            api = Api(session, sandbox.url)
            await api.install_crds(ecs_crd_manifests(), GROUP, {"tasks", "services"})
            kubeconfig = sandbox.kubeconfig
            operator = OperatorProcess(
                "ecs-operator",
                ["-m", "ecs_operator", "run", "--kubeconfig", str(kubeconfig), "--liveness", ""],
                workdir,
                kubeconfig,
            )
            operator.start()
            try:
                bench = EcsBench(api, operator)
                replacement = await bench.replacements("svc-replace", replace_tasks, failures)
                node_loss = await bench.node_losses(
                    "svc-node-loss", node_loss_tasks, node_loss_runs
                )
                scale = [await bench.scale_out(f"svc-{n}", n) for n in scales]
                restart = await bench_tasks.restart_writes(api, operator)
            finally:
                operator.stop()
            floor = await floor_batches(api, kubeconfig, workdir, scales)
    for real, base in zip(scale, floor, strict=True):
        real["floor"] = base
        real["ratio"] = round(real["seconds"] / base["seconds"], 2)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "nodes": nodes_per_zone * 3,
        "scale_out": scale,
        "replacement": replacement,
        "node_loss": node_loss,
        "node_loss_median_seconds": statistics.median(r["seconds"] for r in node_loss),
        "restart": restart,
    }


def run(
    scales: Iterable[int] = (100, 1000),
    *,
    replace_tasks: int = 50,
    failures: int = 30,
    node_loss_tasks: int = 60,
    node_loss_runs: int = 3,
    nodes_per_zone: int = NODES_PER_ZONE,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """One run of every phase on a fresh sandbox; logs go to `workdir` (default: a temporary
    directory, removed afterwards)."""
    arguments = (
        list(scales),
        replace_tasks,
        failures,
        node_loss_tasks,
        node_loss_runs,
        nodes_per_zone,
    )
    return run_in_workdir("bench-services-", workdir, lambda directory: _run(directory, *arguments))


def report(result: dict[str, Any]) -> str:
    lines = [f"services on {result['nodes']} nodes, {result['seconds']} s"]
    for scale in result["scale_out"]:
        floor = scale["floor"]
        lines.append(
            f"  0 -> {scale['tasks']:>5} tasks RUNNING {scale['seconds']:7.2f} s "
            f"({scale['tasks_per_second']:.1f}/s; pods Running {scale['pods_running_seconds']:.2f}"
            f" s) | floor {floor['seconds']:.2f} s ({floor['objects_per_second']:.1f}/s) | "
            f"ratio {scale['ratio']:.2f}"
        )
        lines.append(
            f"     API writes per task {scale['writes_per_task']:.2f}: {scale['writes']}"
            f"{'' if scale['settled'] else ' (NOT settled)'}"
        )
    replacement = result["replacement"]
    lines.append(
        f"  replacement of {replacement['failures']} failed tasks (of "
        f"{replacement['service_tasks']}): p50 {replacement['p50_ms']:.1f} ms, "
        f"p99 {replacement['p99_ms']:.1f} ms, max {replacement['max_ms']:.1f} ms"
    )
    for loss in result["node_loss"]:
        lines.append(
            f"  node loss {loss['node']}: {loss['tasks_on_node']} tasks replaced and RUNNING "
            f"{loss['seconds']:.2f} s after NotReady (NotReady "
            f"{loss['not_ready_after_seconds']:.1f} s after the loss; "
            f"{loss['replacements_on_lost_node']} replacements on that node; replacements per "
            f"zone {loss['replacement_zones']}, lost node in {loss['zone']})"
        )
    restart = result["restart"]
    lines.append(
        f"  restart on a converged cluster: {restart['writes']} writes {restart['breakdown']} "
        f"({'settled' if restart['settled'] else 'NOT settled'} after {restart['seconds']} s)"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales", default="100,1000", help="comma-separated Service sizes to scale out to"
    )
    parser.add_argument("--workdir", type=Path, help="keep the sandbox and operator logs here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    scales = [int(size) for size in args.scales.split(",")]
    result = run(scales, workdir=args.workdir)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
