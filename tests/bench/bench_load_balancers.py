"""Benchmark of LoadBalancers: target registration and deregistration latency, EndpointSlice
writes per target change (not a test).

    .venv/bin/python tests/bench/bench_load_balancers.py [--targets 100] [--json] [--workdir DIR]

One run on a fresh sandbox in its own process (3 zones x 6 nodes, as bench_services.py), with
`ecs-operator run` as a subprocess; client-side monotonic clocks from watches on Tasks, Pods and
the LoadBalancer's EndpointSlices:

- scale-out: a Service of `targets` tasks registered with a LoadBalancer whose health check is
  as fast as ELBv2 allows (5 s interval, healthy threshold 2, so a target turns healthy about
  5 s after its container starts). Per task: task RUNNING -> its Pod IP listed ready in an
  EndpointSlice (the health checks included), and the Pod's container ready (the readiness
  probe passed) -> listed ready (the operator's own share).
- scale-in to half: per stopped task, the stop decided (the task's `spec.desiredStatus`
  STOPPED, written by the Service controller) -> its endpoint no longer ready (draining).
- writes: EndpointSlice writes (sandbox request counters: create, update, patch, delete) per
  target change, a change being a target listed (scale-out), or starting to drain and being
  removed (two per target on scale-in); LoadBalancer status writes likewise.

`run(...)` returns every number as a dict; `report(result)` renders it; `--json` prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, Python sees only this folder: the benchmarks and the test support are
# imported from tests/, as pytest imports them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench.bench_services import (
    CONVERGE_TIMEOUT,
    MERGE_PATCH,
    NODE_PODS,
    NODES_PER_ZONE,
    SETTLE_LIMIT,
    SETTLE_QUIET,
    pods_path,
    tasks_path,
)
from bench.bench_tasks import GROUP, VERSION, task_running
from support.harness import (
    Api,
    Body,
    OperatorProcess,
    Requests,
    SandboxProcess,
    WatchRecorder,
    ecs_crd_manifests,
    percentile,
    run_in_workdir,
    wait_until,
)

NAMESPACE = "lb-bench"
FAMILY = "web"
SERVICE = "web"
LB_NAME = "web-lb"
CONTAINER = "web"
PORT = 8080
DEREGISTRATION_DELAY = 2
SLICE_RESOURCE = "endpointslices"
WRITE_VERBS = ("create", "update", "patch", "delete")


def task_definition() -> Body:
    container = {
        "name": CONTAINER,
        "image": "busybox:1.36",
        "memory": 64,
        "command": ["sh", "-c", "while true; do sleep 5; done"],
        "portMappings": [{"containerPort": PORT}],
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TaskDefinition",
        "metadata": {"name": FAMILY},
        "spec": {"family": FAMILY, "containerDefinitions": [container]},
    }


def load_balancer() -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LoadBalancer",
        "metadata": {"name": LB_NAME},
        "spec": {
            "listeners": [{"port": 80}],
            "deregistrationDelaySeconds": DEREGISTRATION_DELAY,
            "healthCheck": {
                "intervalSeconds": 5,
                "timeoutSeconds": 2,
                "healthyThresholdCount": 2,
                "unhealthyThresholdCount": 2,
            },
        },
    }


def service(desired: int) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Service",
        "metadata": {"name": SERVICE},
        "spec": {
            "taskDefinition": FAMILY,
            "desiredCount": desired,
            "loadBalancers": [
                {"loadBalancerName": LB_NAME, "containerName": CONTAINER, "containerPort": PORT}
            ],
        },
    }


def stop_decided(_: str, task: Body) -> bool:
    return (task.get("spec") or {}).get("desiredStatus") == "STOPPED"


def container_ready(_: str, pod: Body) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return any(s.get("name") == CONTAINER and s.get("ready") for s in statuses)


class EndpointRecorder(WatchRecorder):
    """The EndpointSlices of one Service, per endpoint (its Pod): when it was first listed
    ready (`seen["ready"]`) and, after that, first no longer ready (`seen["unready"]`)."""

    def __init__(self, api: Api, namespace: str, service_name: str) -> None:
        path = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        super().__init__(api, path, {"ready": _never, "unready": _never})
        self.service_name = service_name
        self.ready_by_slice: dict[str, set[str]] = {}

    def _record(self, event: Body, at: float) -> None:
        kind, obj = event.get("type", ""), event.get("object") or {}
        metadata = obj.get("metadata") or {}
        self._resource_version = metadata.get("resourceVersion", self._resource_version)
        labels = metadata.get("labels") or {}
        if kind in ("ERROR", "BOOKMARK"):
            return
        if labels.get("kubernetes.io/service-name") != self.service_name:
            return
        before = set().union(*self.ready_by_slice.values())
        if kind == "DELETED":
            self.ready_by_slice.pop(metadata["name"], None)
        else:
            self.ready_by_slice[metadata["name"]] = {
                (e.get("targetRef") or {}).get("name", "")
                for e in obj.get("endpoints") or ()
                if (e.get("conditions") or {}).get("ready")
            }
        after = set().union(*self.ready_by_slice.values())
        for pod in after - before:
            self.seen["ready"].setdefault(pod, at)
        for pod in before - after:
            self.seen["unready"].setdefault(pod, at)
        self.changed.set()


def _never(_: str, __: Body) -> bool:
    return False


def stats(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
    }


def writes_to(requests: Requests, resource: str) -> int:
    return sum(requests[(verb, resource)] for verb in WRITE_VERBS)


class LoadBalancerBench:
    def __init__(self, api: Api, operator: OperatorProcess) -> None:
        self.api = api
        self.operator = operator
        self.base = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}"

    async def prepare(self) -> None:
        await self.api.create_namespace(NAMESPACE)
        await self.api.create(f"{self.base}/taskdefinitions", task_definition())
        await self.api.create(f"{self.base}/loadbalancers", load_balancer())

        async def registered() -> bool:
            self.operator.check_alive()
            found = await self.api.get(f"{self.base}/taskdefinitions/{FAMILY}") or {}
            return (found.get("status") or {}).get("revision") is not None

        await wait_until(registered, 60, "the task definition to register")
        await self.api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)

    async def run(self, targets: int) -> dict[str, Any]:
        await self.prepare()
        tasks = WatchRecorder(
            self.api, tasks_path(NAMESPACE), {"running": task_running, "stop": stop_decided}
        )
        pods = WatchRecorder(self.api, pods_path(NAMESPACE), {"ready": container_ready})
        endpoints = EndpointRecorder(self.api, NAMESPACE, LB_NAME)
        for recorder in (tasks, pods, endpoints):
            await recorder.start()
        try:
            scale_out = await self._scale_out(targets, tasks, pods, endpoints)
            scale_in = await self._scale_in(targets, targets // 2, tasks, endpoints)
        finally:
            for recorder in (tasks, pods, endpoints):
                await recorder.stop()
        return {"targets": targets, "scale_out": scale_out, "scale_in": scale_in}

    async def _scale_out(
        self,
        targets: int,
        tasks: WatchRecorder,
        pods: WatchRecorder,
        endpoints: EndpointRecorder,
    ) -> dict[str, Any]:
        before = await self.api.counters()
        started = time.monotonic()
        await self.api.create(f"{self.base}/services", service(targets))

        async def all_listed() -> bool:
            self.operator.check_alive()
            return len(endpoints.seen["ready"]) >= targets

        await wait_until(all_listed, CONVERGE_TIMEOUT, f"{targets} endpoints ready", 0.1)
        settled = await self.api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
        requests = await self.api.counters() - before
        listed = endpoints.seen["ready"]
        running = tasks.seen["running"]
        ready = pods.seen["ready"]
        return {
            "seconds": round(max(listed.values()) - started, 3),
            "running_to_listed_ms": stats(
                [(listed[n] - running[n]) * 1000 for n in listed if n in running]
            ),
            "container_ready_to_listed_ms": stats(
                [(listed[n] - ready[n]) * 1000 for n in listed if n in ready]
            ),
            "slice_writes": writes_to(requests, SLICE_RESOURCE),
            "slice_writes_per_change": round(writes_to(requests, SLICE_RESOURCE) / targets, 3),
            "lb_status_writes_per_change": round(
                requests[("patch", "loadbalancers/status")] / targets, 3
            ),
            "settled": settled,
        }

    async def _scale_in(
        self, targets: int, keep: int, tasks: WatchRecorder, endpoints: EndpointRecorder
    ) -> dict[str, Any]:
        before = await self.api.counters()
        path = f"{self.api.url}{self.base}/services/{SERVICE}"
        patch = {"spec": {"desiredCount": keep}}
        async with self.api.session.patch(path, json=patch, headers=MERGE_PATCH) as response:
            if response.status != 200:
                raise RuntimeError(f"scale in: {response.status} {await response.text()}")
        stopping = targets - keep

        async def drained_and_gone() -> bool:
            self.operator.check_alive()
            stopped = set(tasks.seen["stop"])
            listed = set().union(*endpoints.ready_by_slice.values())
            slices = await self.api.get(
                f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices"
            )
            endpoints_left = sum(len(s.get("endpoints") or ()) for s in slices["items"])
            return (
                len(stopped) >= stopping
                and stopped <= set(endpoints.seen["unready"])
                and not stopped & listed
                and endpoints_left == keep
            )

        await wait_until(drained_and_gone, CONVERGE_TIMEOUT, f"{stopping} targets drained", 0.1)
        settled = await self.api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
        requests = await self.api.counters() - before
        stop, unready = tasks.seen["stop"], endpoints.seen["unready"]
        changes = 2 * stopping  # each target starts draining, then goes
        return {
            "stopped": stopping,
            "stop_to_unlisted_ms": stats([(unready[n] - stop[n]) * 1000 for n in stop]),
            "slice_writes": writes_to(requests, SLICE_RESOURCE),
            "slice_writes_per_change": round(writes_to(requests, SLICE_RESOURCE) / changes, 3),
            "lb_status_writes_per_change": round(
                requests[("patch", "loadbalancers/status")] / changes, 3
            ),
            "settled": settled,
        }


async def _run(workdir: Path, targets: int, nodes_per_zone: int) -> dict[str, Any]:
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
                result = await LoadBalancerBench(api, operator).run(targets)
            finally:
                operator.stop()
    return {"seconds": round(time.monotonic() - started, 1), **result}


def run(
    targets: int = 100, *, nodes_per_zone: int = NODES_PER_ZONE, workdir: Path | None = None
) -> dict[str, Any]:
    """One run on a fresh sandbox; logs go to `workdir` (default: a temporary directory)."""
    return run_in_workdir(
        "bench-lb-", workdir, lambda directory: _run(directory, targets, nodes_per_zone)
    )


def report(result: dict[str, Any]) -> str:
    out, down = result["scale_out"], result["scale_in"]

    def latency(values: dict[str, float]) -> str:
        return f"p50 {values['p50']:.1f} ms, p99 {values['p99']:.1f} ms, max {values['max']:.1f} ms"

    return "\n".join(
        [
            f"load balancer with {result['targets']} targets, {result['seconds']} s",
            f"  registration: all {result['targets']} listed {out['seconds']:.2f} s after the "
            "Service was created",
            f"    task RUNNING -> endpoint ready: {latency(out['running_to_listed_ms'])}",
            "    container ready -> endpoint ready: "
            f"{latency(out['container_ready_to_listed_ms'])}",
            f"    EndpointSlice writes {out['slice_writes']} "
            f"({out['slice_writes_per_change']:.2f} per target listed), LoadBalancer status "
            f"writes {out['lb_status_writes_per_change']:.2f} per target"
            f"{'' if out['settled'] else ' (NOT settled)'}",
            f"  deregistration of {down['stopped']} targets (scale-in):",
            f"    stop decided -> endpoint not ready: {latency(down['stop_to_unlisted_ms'])}",
            f"    EndpointSlice writes {down['slice_writes']} "
            f"({down['slice_writes_per_change']:.2f} per change: draining, then gone), "
            f"LoadBalancer status writes {down['lb_status_writes_per_change']:.2f} per change"
            f"{'' if down['settled'] else ' (NOT settled)'}",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100, help="tasks of the Service")
    parser.add_argument("--workdir", type=Path, help="keep the sandbox and operator logs here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(args.targets, workdir=args.workdir)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
