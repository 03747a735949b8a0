"""Benchmark of a BLUE_GREEN deployment with zero bake: wall time and API writes (not a test).

    .venv/bin/python tests/bench/bench_blue_green.py [--tasks 100] [--runs 3] [--json]
        [--workdir DIR]

One fresh sandbox in its own process (3 zones x 6 nodes, as bench_services.py) with
`ecs-operator run` as a subprocess; each run in a namespace of its own:

- setup (not measured): a LoadBalancer whose health check is as fast as ELBv2 allows (5 s
  interval, healthy threshold 2), and a Service of `tasks` tasks behind it, strategy
  BLUE_GREEN, `bakeTimeInMinutes: 0`, steady with every blue target listed;
- measured: from the client's write that registers revision 2 (an edit of the TaskDefinition)
  until the Service reports the new deployment alone and COMPLETED (green started beside blue,
  production moved, blue stopped): `seconds`; the target health checks are part of it;
- writes: the API writes (sandbox request counters, every non-GET verb, Lease renewals left
  out) from that edit until the cluster settled, minus the client's own edit; per green task.

`run(...)` returns every run and the medians as a dict; `report(result)` renders it; `--json`
prints it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, Python sees only this folder: the benchmarks and the test support are
# imported from tests/, as pytest imports them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench.bench_load_balancers import LB_NAME, load_balancer, service, task_definition
from bench.bench_services import (
    CONVERGE_TIMEOUT,
    MERGE_PATCH,
    NODE_PODS,
    NODES_PER_ZONE,
    SETTLE_LIMIT,
    SETTLE_QUIET,
)
from bench.bench_tasks import GROUP, VERSION
from support.harness import (
    Api,
    Body,
    OperatorProcess,
    Requests,
    SandboxProcess,
    ecs_crd_manifests,
    run_in_workdir,
    wait_until,
    write_breakdown,
    writes_of,
)

FAMILY = "web"
SERVICE = "web"
NAMESPACE_PREFIX = "bg-bench-"
BLUE_GREEN = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0}


class BlueGreenBench:
    """One deployment in a namespace of its own. `count_writes` picks the writes counted from
    the request counters (on the real control plane: the controllers' own, not each pod's
    scheduler binding and kwok status)."""

    def __init__(
        self,
        api: Api,
        operator: OperatorProcess,
        namespace: str,
        count_writes: Callable[[Requests], int] = writes_of,
    ) -> None:
        self.api = api
        self.operator = operator
        self.base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}"
        self.count_writes = count_writes

    async def _patch(self, path: str, patch: Body) -> None:
        async with self.api.session.patch(
            self.api.url + path, json=patch, headers=MERGE_PATCH
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"PATCH {path}: {response.status} {await response.text()}")

    async def _completed(self, tasks: int, not_id: str | None) -> str | None:
        """The id of the Service's only deployment once it is COMPLETED with `tasks` running
        (and is not `not_id`), else None."""
        self.operator.check_alive()
        found = await self.api.get(f"{self.base}/services/{SERVICE}") or {}
        status = found.get("status") or {}
        deployments = status.get("deployments") or []
        if (
            len(deployments) == 1
            and deployments[0].get("rolloutState") == "COMPLETED"
            and deployments[0].get("id") != not_id
            and status.get("runningCount") == tasks
        ):
            deployment_id: str = deployments[0]["id"]
            return deployment_id
        return None

    async def run(self, tasks: int, namespace: str) -> dict[str, Any]:
        await self.api.create_namespace(namespace)
        return await self.measure(tasks)

    async def measure(self, tasks: int) -> dict[str, Any]:
        """Set up blue in the (existing) namespace, then deploy green and measure it."""
        await self.api.create(f"{self.base}/taskdefinitions", task_definition())
        await self.api.create(f"{self.base}/loadbalancers", load_balancer())
        body = service(tasks)
        body["spec"]["deploymentConfiguration"] = BLUE_GREEN
        await self.api.create(f"{self.base}/services", body)
        blue = await wait_until(
            lambda: self._completed(tasks, None), CONVERGE_TIMEOUT, f"{tasks} blue tasks", 0.2
        )
        await self._wait_listed(tasks)
        await self.api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)

        before = await self.api.counters()
        started = time.monotonic()
        environment = [{"name": "REVISION", "value": "2"}]
        definition = task_definition()["spec"]
        definition["containerDefinitions"][0]["environment"] = environment
        await self._patch(f"{self.base}/taskdefinitions/{FAMILY}", {"spec": definition})
        await wait_until(
            lambda: self._completed(tasks, blue), CONVERGE_TIMEOUT, f"{tasks} green tasks", 0.05
        )
        seconds = time.monotonic() - started
        settled = await self.api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
        requests = await self.api.counters() - before
        _, definitions = self.api.create_key(f"{self.base}/taskdefinitions")
        requests[("patch", definitions)] -= 1  # the client's own edit
        writes = self.count_writes(requests)
        return {
            "seconds": round(seconds, 3),
            "writes": writes,
            "writes_per_task": round(writes / tasks, 3),
            "breakdown": write_breakdown(requests),
            "settled": settled,
        }

    async def _wait_listed(self, tasks: int) -> None:
        """Every blue target listed ready: production is served before green starts."""
        path = self.base.replace(f"/apis/{GROUP}/{VERSION}", "/apis/discovery.k8s.io/v1")

        async def listed() -> bool:
            slices = await self.api.get(f"{path}/endpointslices") or {}
            ready = [
                endpoint
                for piece in slices.get("items") or ()
                if (piece["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
                == LB_NAME
                for endpoint in piece.get("endpoints") or ()
                if (endpoint.get("conditions") or {}).get("ready")
            ]
            return len(ready) >= tasks

        await wait_until(listed, CONVERGE_TIMEOUT, f"{tasks} blue targets listed", 0.2)


async def _run(workdir: Path, tasks: int, runs: int, nodes_per_zone: int) -> dict[str, Any]:
    started = time.monotonic()
    with SandboxProcess(workdir, nodes_per_zone=nodes_per_zone, node_pods=NODE_PODS) as sandbox:
        async with aiohttp.ClientSession() as session:
            api = Api(session, sandbox.url)
            await api.install_crds(ecs_crd_manifests(), GROUP, {"tasks", "loadbalancers"})
            kubeconfig = sandbox.kubeconfig
            operator = OperatorProcess(
                "ecs-operator",
                ["-m", "ecs_operator", "run", "--kubeconfig", str(kubeconfig), "--liveness", ""],
                workdir,
                kubeconfig,
            )
            operator.start()
            try:
                results = []
                for index in range(runs):
                    namespace = f"{NAMESPACE_PREFIX}{index}"
                    bench = BlueGreenBench(api, operator, namespace)
                    results.append(await bench.run(tasks, namespace))
            finally:
                operator.stop()
    return {
        "tasks": tasks,
        "seconds": round(time.monotonic() - started, 1),
        "runs": results,
        "median_seconds": statistics.median(r["seconds"] for r in results),
        "median_writes_per_task": statistics.median(r["writes_per_task"] for r in results),
    }


def run(
    tasks: int = 100,
    runs: int = 3,
    *,
    nodes_per_zone: int = NODES_PER_ZONE,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """`runs` deployments on one fresh sandbox; logs go to `workdir` (default: a temporary
    directory)."""
    return run_in_workdir(
        "bench-bg-", workdir, lambda directory: _run(directory, tasks, runs, nodes_per_zone)
    )


def report(result: dict[str, Any]) -> str:
    lines = [
        f"blue/green deployment of {result['tasks']} tasks, zero bake, "
        f"{len(result['runs'])} runs, {result['seconds']} s",
        f"  revision registered -> COMPLETED: median {result['median_seconds']:.2f} s",
        f"  API writes per green task: median {result['median_writes_per_task']:.2f}",
    ]
    for index, one in enumerate(result["runs"]):
        top = sorted(one["breakdown"].items(), key=lambda item: -item[1])[:6]
        lines.append(
            f"  run {index}: {one['seconds']:.2f} s, {one['writes']} writes "
            f"({', '.join(f'{what} {n}' for what, n in top)})"
            f"{'' if one['settled'] else ' (NOT settled)'}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100, help="tasks of the Service")
    parser.add_argument("--runs", type=int, default=3, help="deployments measured")
    parser.add_argument("--workdir", type=Path, help="keep the sandbox and operator logs here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(args.tasks, args.runs, workdir=args.workdir)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
