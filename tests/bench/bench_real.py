"""Benchmark on the real control plane: ecs-operator against the native Deployment (not a test).

    .venv/bin/python tests/bench/bench_real.py [--kubeconfig PATH] [--tasks 1000]
        [--standalone 200] [--rate 40] [--bg-tasks 100] [--runs 1] [--json]
        [--workdir DIR]

Without `--kubeconfig`, `tools/cluster.py up` starts the real control plane (etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kwok) and `down` stops it afterwards.
The cluster gets as many extra kwok nodes per zone as `--tasks` pods need (110 pods per node,
spread at most 75 % full), labelled like tools/cluster.py's; the ones the benchmark added are
deleted at the end. Every pod asks for 10 CPU units / 16 MiB, so a thousand fit.

Per run, on the same cluster, one after the other (reference/targets.md "On the real control
plane"); each phase in its own namespace, deleted (and gone) before the next phase:

1. ecs-operator (`python -m ecs_operator run --kubeconfig … --liveness ''`, admin identity, a
   subprocess), CRDs applied with kubectl:
   - P1 on a real API server: `--standalone` Tasks created at `--rate`/s, open loop
     (bench_tasks.launch): create call returned -> the Pod's first event, p50/p99;
   - P7: a Service 0 -> `--tasks`, from the create call to every task RUNNING (task watch);
     per task, its Task's first event -> its Pod's first event (the operator's share);
   - the API writes meanwhile (kube-apiserver's own `apiserver_request_total` from /metrics,
     scraped before and after, until nothing but node heartbeats was written for a while),
     split into the controller's writes and the per-pod writes every pod costs whoever creates
     it (scheduler binding, kwok's pods/status, node heartbeats, the scheduler's events);
   - P9: the operator's CPU seconds (utime + stime of /proc/PID/stat) over the same window,
     per task launched.
   - P10: a BLUE_GREEN deployment of `--bg-tasks` tasks with zero bake behind a LoadBalancer
     (bench_blue_green.py, in a namespace of its own): new revision registered -> the new
     deployment alone and COMPLETED (blue scaled down), and the controllers' API writes until
     settled per green task (`--bg-tasks 0`: not measured);
2. The native baseline: a Deployment (busybox; kwok "runs" it) at 0 replicas, scaled to
   `--tasks` in one patch: the deployment and ReplicaSet controllers of kube-controller-manager
   (default client QPS 20 / burst 30) create the pods; from the patch to `--tasks` pods Running
   (pod watch). Its writes the same way, and kube-controller-manager's CPU over the window
   (its pid from the cluster directory's kube-controller-manager.pid; the whole process, so an
   upper bound of the ReplicaSet controller's share).

Ratios are ecs-operator / Deployment within one run. `run(...)` returns every number as a dict;
`report(result)` renders it; `--json` prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.util
import json
import math
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Run as a script, Python sees only this folder: the benchmarks and the test support are
# imported from tests/, as pytest imports them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import yaml

from bench import bench_tasks
from bench.bench_blue_green import BlueGreenBench
from bench.bench_services import anything, pods_path, service, tasks_path, wait_count
from bench.bench_tasks import FAMILY, GROUP, VERSION, pod_running, task_running
from support.harness import (
    CRDS_DIR,
    REPO,
    WRITE_VERBS,
    Api,
    Body,
    OperatorProcess,
    Requests,
    WatchRecorder,
    percentile,
    run_in_workdir,
    wait_until,
    write_breakdown,
    writes_of,
)

CLUSTER_TOOL = REPO / "tools" / "cluster.py"
TASK_CPU_UNITS = 10
TASK_MEMORY_MIB = 16
NODE_PODS = 110
NODE_FILL = 0.75
CONVERGE_TIMEOUT = 600.0
SETTLE_QUIET = 2.0
SETTLE_LIMIT = 60.0
NAMESPACE_GONE_TIMEOUT = 300.0
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
METRIC = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+(\S+)$", re.MULTILINE)
LABEL = re.compile(r'(\w+)="([^"]*)"')
VERBS = {
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "APPLY": "patch",
    "DELETE": "delete",
    "DELETECOLLECTION": "deletecollection",
}
# Written whatever creates the pods (and whether anything happens at all): node heartbeats,
# the scheduler's bindings and events, kwok's pod status. Not a controller's own writes.
BACKGROUND = frozenset({"leases.coordination.k8s.io", "nodes", "nodes/status"})
PER_POD = BACKGROUND | {"pods/binding", "pods/status", "events.events.k8s.io"}


def controller_writes(requests: Requests) -> int:
    return sum(
        n
        for (verb, resource), n in requests.items()
        if verb in WRITE_VERBS and resource not in PER_POD
    )


# -- the API server ---------------------------------------------------------------------------


@dataclass
class Credentials:
    """What a kubeconfig's current context says: server, CA, and a client certificate or a
    bearer token."""

    server: str
    ssl: ssl.SSLContext
    headers: dict[str, str]

    @classmethod
    def load(cls, kubeconfig: Path, workdir: Path) -> Credentials:
        config = yaml.safe_load(kubeconfig.read_text())
        current = config.get("current-context")
        context = next(
            (c["context"] for c in config["contexts"] if c["name"] == current),
            config["contexts"][0]["context"],
        )
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])

        def material(name: str) -> str | None:
            """The PEM of `name` (inline `-data`, or a path relative to the kubeconfig)."""
            if f"{name}-data" in cluster or f"{name}-data" in user:
                data = cluster.get(f"{name}-data") or user.get(f"{name}-data")
                return base64.b64decode(data).decode()
            path = cluster.get(name) or user.get(name)
            return (kubeconfig.parent / path).read_text() if path else None

        context_ssl = ssl.create_default_context(cadata=material("certificate-authority"))
        headers = {}
        certificate, key = material("client-certificate"), material("client-key")
        if certificate and key:
            cert_file, key_file = workdir / "client.crt", workdir / "client.key"
            for path, pem in ((cert_file, certificate), (key_file, key)):
                path.write_text(pem)
                path.chmod(0o600)
            context_ssl.load_cert_chain(str(cert_file), str(key_file))
        elif user.get("token"):
            headers["Authorization"] = f"Bearer {user['token']}"
        return cls(cluster["server"].rstrip("/"), context_ssl, headers)


class RealApi(Api):
    """`Api` on a real kube-apiserver: request counters from its /metrics; resources named
    kubectl's way (`tasks.ecs.operator.dev/status`), so the core `services` and the ECS ones
    stay apart."""

    SETTLE_INTERVAL = 0.5  # a /metrics scrape is a few hundred kB

    def create_key(self, collection: str) -> tuple[str, str]:
        parts = collection.strip("/").split("/")
        group = "" if parts[0] == "api" else parts[1]
        plural = parts[-1]
        return ("create", f"{plural}.{group}" if group else plural)

    async def counters(self) -> Requests:
        async with self.session.get(self.url + "/metrics") as response:
            if response.status != 200:
                raise RuntimeError(f"GET /metrics: {response.status} {await response.text()}")
            text = await response.text()
        counts: Requests = Counter()
        for found in METRIC.finditer(text):
            labels = dict(LABEL.findall(found.group(1)))
            verb = VERBS.get(labels.get("verb", ""), labels.get("verb", "").lower())
            resource = labels.get("resource", "")
            if labels.get("group"):
                resource = f"{resource}.{labels['group']}"
            if labels.get("subresource"):
                resource = f"{resource}/{labels['subresource']}"
            counts[(verb, resource)] += int(float(found.group(2)))
        return counts

    async def foreground_writes(self) -> int:
        requests = await self.counters()
        return writes_of(Counter({k: n for k, n in requests.items() if k[1] not in BACKGROUND}))

    async def settle(self, quiet: float, limit: float) -> bool:
        """Wait until nothing but node heartbeats was written for `quiet` seconds."""
        deadline = time.monotonic() + limit
        last = await self.foreground_writes()
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(self.SETTLE_INTERVAL)
            now = await self.foreground_writes()
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet:
                return True
        return False

    async def request(self, method: str, path: str, body: Body | None = None) -> Body | None:
        """A write that may find nothing (None on 404); merge patches for PATCH."""
        headers = MERGE_PATCH if method == "PATCH" else None
        async with self.session.request(
            method, self.url + path, json=body, headers=headers
        ) as response:
            if response.status == 404:
                return None
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {await response.text()}")
            found: Body = await response.json()
            return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (its threads included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kubectl(kubeconfig: Path, *arguments: str) -> str:
    """kubectl from ECS_OPERATOR_KUBECTL, else the cluster's own build, else PATH."""
    candidates = [
        os.environ.get("ECS_OPERATOR_KUBECTL", ""),
        str(kubeconfig.parent / "bin" / "kubectl"),
        shutil.which("kubectl") or "",
    ]
    binary = next(c for c in candidates if c and Path(c).exists())
    done = subprocess.run(
        [binary, "--kubeconfig", str(kubeconfig), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(arguments)}: {done.stderr.strip()}")
    return done.stdout


# -- nodes --------------------------------------------------------------------------------------


def cluster_tool() -> Any:
    """tools/cluster.py as a module, for its node manifest (one definition of a kwok node)."""
    spec = importlib.util.spec_from_file_location("ecs_cluster_tool", CLUSTER_TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nodes_per_zone(pods: int, zones: int) -> int:
    return max(1, math.ceil(pods / zones / (NODE_PODS * NODE_FILL)))


async def add_nodes(api: RealApi, pods: int) -> list[str]:
    """Enough kwok nodes in every zone for `pods` more pods; the names of those added."""
    tool = cluster_tool()
    wanted = nodes_per_zone(pods, len(tool.ZONES))
    added = []
    for zone in tool.ZONES:
        for index in range(1, wanted + 1):
            manifest = tool.node_manifest(zone, index)
            name = manifest["metadata"]["name"]
            if await api.get(f"/api/v1/nodes/{name}") is not None:
                continue
            capacity = {**tool.NODE_CAPACITY, "pods": str(NODE_PODS)}
            await api.create("/api/v1/nodes", manifest)
            # A Node's status is not taken from the POST: set the capacity kwok copies.
            status = {"status": {"capacity": capacity, "allocatable": capacity}}
            await api.request("PATCH", f"/api/v1/nodes/{name}/status", status)
            added.append(name)

    async def ready() -> bool:
        listing = await api.get("/api/v1/nodes") or {}
        ready = {
            node["metadata"]["name"]
            for node in listing.get("items") or ()
            for condition in (node.get("status") or {}).get("conditions") or ()
            if condition.get("type") == "Ready" and condition.get("status") == "True"
        }
        return set(added) <= ready

    await wait_until(ready, 120, f"{len(added)} added nodes Ready", 0.5)
    return added


# -- phases -------------------------------------------------------------------------------------


def task_definition() -> Body:
    container = {
        "name": "app",
        "image": "busybox:1.36",
        "cpu": TASK_CPU_UNITS,
        "memory": TASK_MEMORY_MIB,
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TaskDefinition",
        "metadata": {"name": FAMILY},
        "spec": {"family": FAMILY, "containerDefinitions": [container]},
    }


async def create_namespace(api: RealApi, namespace: str) -> None:
    """The namespace, once its default ServiceAccount exists (pod admission needs it)."""
    await api.create_namespace(namespace)
    account = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"

    async def exists() -> bool:
        return await api.get(account) is not None

    await wait_until(exists, 60, f"the default ServiceAccount of {namespace}", 0.2)


async def delete_namespace(api: RealApi, namespace: str) -> bool:
    """Delete `namespace`; whether it was gone (and its pods with it) within the timeout."""
    await api.request("DELETE", f"/api/v1/namespaces/{namespace}")

    async def gone() -> bool:
        return await api.get(f"/api/v1/namespaces/{namespace}") is None

    try:
        await wait_until(gone, NAMESPACE_GONE_TIMEOUT, f"namespace {namespace} to go", 1.0)
    except TimeoutError:
        return False
    return True


async def prepare_ecs_namespace(api: RealApi, operator: OperatorProcess, namespace: str) -> None:
    await create_namespace(api, namespace)
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}"
    await api.create(f"{base}/taskdefinitions", task_definition())

    async def registered() -> bool:
        operator.check_alive()
        found = await api.get(f"{base}/taskdefinitions/{FAMILY}") or {}
        return (found.get("status") or {}).get("revision") is not None

    await wait_until(registered, 60, f"the task definition of {namespace} to register", 0.1)


async def standalone_tasks(
    api: RealApi, operator: OperatorProcess, namespace: str, count: int, rate: float
) -> dict[str, Any]:
    """P1 on the real API server: Task create -> its Pod's first event (bench_tasks.launch)."""
    await prepare_ecs_namespace(api, operator, namespace)
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}"
    await api.create(f"{base}/tasks", bench_tasks.task("warm-up"))

    async def warmed_up() -> bool:
        operator.check_alive()
        return task_running("", await api.get(f"{base}/tasks/warm-up") or {})

    await wait_until(warmed_up, 60, "the warm-up task to run", 0.1)
    bodies = [bench_tasks.task(f"task-{index:04d}") for index in range(count)]
    phase = await bench_tasks.launch(
        api, namespace, f"{base}/tasks", bodies, rate, operator, watch_objects=True
    )
    return phase.summary()


async def service_scale_out(
    api: RealApi, operator: OperatorProcess, namespace: str, count: int
) -> dict[str, Any]:
    """P7, P9 and the writes: a Service 0 -> `count` tasks RUNNING."""
    await prepare_ecs_namespace(api, operator, namespace)
    await api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
    tasks = WatchRecorder(api, tasks_path(namespace), {"added": anything, "running": task_running})
    pods = WatchRecorder(api, pods_path(namespace), {"added": anything, "running": pod_running})
    await tasks.start()
    await pods.start()
    assert operator.process is not None
    pid = operator.process.pid
    try:
        before, cpu_before = await api.counters(), cpu_seconds(pid)
        started = time.monotonic()
        await api.create(
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/services", service("scale", count)
        )
        what = f"{count} service tasks RUNNING"
        all_running = await wait_count(tasks, "running", count, CONVERGE_TIMEOUT, what)
        cpu_running = cpu_seconds(pid)
        pods_running = await wait_count(pods, "running", count, CONVERGE_TIMEOUT, "pods Running")
        operator.check_alive()
        settled = await api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
        requests, cpu_after = await api.counters() - before, cpu_seconds(pid)
    finally:
        await tasks.stop()
        await pods.stop()
    requests.pop(("create", f"services.{GROUP}"), None)  # the client's own
    to_pod = [
        (at - tasks.seen["added"][name]) * 1000
        for name, at in pods.seen["added"].items()
        if name in tasks.seen["added"]
    ]
    seconds = all_running - started
    own = controller_writes(requests)
    return {
        "tasks": count,
        "seconds": round(seconds, 3),
        "tasks_per_second": round(count / seconds, 1),
        "pods_running_seconds": round(pods_running - started, 3),
        "task_to_pod_ms": {"p50": percentile(to_pod, 50), "p99": percentile(to_pod, 99)},
        "writes_per_task": round(own / count, 3),
        "all_writes_per_task": round(writes_of(requests) / count, 3),
        "writes": write_breakdown(requests),
        "cpu_seconds": round(cpu_after - cpu_before, 3),
        "cpu_ms_per_task": round((cpu_after - cpu_before) * 1000 / count, 3),
        "cpu_ms_per_task_to_running": round((cpu_running - cpu_before) * 1000 / count, 3),
        # Near 1: the operator was CPU-bound on one core; far below on a loaded machine, it
        # waited for a core (or for the API).
        "cpu_share_of_a_core": round((cpu_running - cpu_before) / seconds, 3),
        "settled": settled,
    }


def deployment(name: str, resources: Body) -> Body:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "busybox:1.36", "resources": resources}
                    ],
                    "automountServiceAccountToken": False,
                },
            },
        },
    }


async def deployment_scale_out(
    api: RealApi, namespace: str, count: int, resources: Body, controller_pid: int | None
) -> dict[str, Any]:
    """The native baseline: a Deployment 0 -> `count` pods Running."""
    await create_namespace(api, namespace)
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    await api.create(base, deployment("native", resources))

    async def observed() -> bool:
        found = await api.get(f"{base}/native") or {}
        return int((found.get("status") or {}).get("observedGeneration") or 0) >= 1

    await wait_until(observed, 60, "the Deployment to be observed", 0.1)
    await api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
    pods = WatchRecorder(api, pods_path(namespace), {"running": pod_running})
    await pods.start()

    def cpu() -> float | None:
        return cpu_seconds(controller_pid) if controller_pid is not None else None

    try:
        before, cpu_before = await api.counters(), cpu()
        started = time.monotonic()
        await api.request("PATCH", f"{base}/native", {"spec": {"replicas": count}})
        running = await wait_count(pods, "running", count, CONVERGE_TIMEOUT, f"{count} pods")
        settled = await api.settle(quiet=SETTLE_QUIET, limit=SETTLE_LIMIT)
        requests, cpu_after = await api.counters() - before, cpu()
    finally:
        await pods.stop()
    requests.pop(("patch", "deployments.apps"), None)  # the client's own
    seconds = running - started
    own = controller_writes(requests)
    spent = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {
        "pods": count,
        "seconds": round(seconds, 3),
        "pods_per_second": round(count / seconds, 1),
        "writes_per_pod": round(own / count, 3),
        "all_writes_per_pod": round(writes_of(requests) / count, 3),
        "writes": write_breakdown(requests),
        "controller_cpu_seconds": None if spent is None else round(spent, 3),
        "controller_cpu_ms_per_pod": None if spent is None else round(spent * 1000 / count, 3),
        "settled": settled,
    }


async def pod_resources(api: RealApi, namespace: str) -> Body:
    """The resources of a pod the operator rendered: the Deployment's pods ask the same."""
    listing = await api.get(pods_path(namespace) + "?limit=1") or {}
    (pod,) = listing["items"]
    resources: Body = pod["spec"]["containers"][0].get("resources") or {}
    return resources


def controller_manager_pid(kubeconfig: Path) -> int | None:
    """kube-controller-manager's pid when the cluster is tools/cluster.py's (its pid files lie
    beside the kubeconfig)."""
    pid_file = kubeconfig.parent / "kube-controller-manager.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    return pid if Path(f"/proc/{pid}").exists() else None


async def one_run(
    api: RealApi,
    kubeconfig: Path,
    workdir: Path,
    index: int,
    tasks: int,
    standalone: int,
    rate: float,
    bg_tasks: int,
) -> dict[str, Any]:
    suffix = f"{index}-{uuid.uuid4().hex[:6]}"
    load_average = os.getloadavg()
    operator = OperatorProcess(
        f"ecs-operator-{index}",
        ["-m", "ecs_operator", "run", "--kubeconfig", str(kubeconfig), "--liveness", ""],
        workdir,
        kubeconfig,
    )
    operator.start()
    namespaces = [f"real-tasks-{suffix}", f"real-service-{suffix}", f"real-bg-{suffix}"]
    try:
        launches = await standalone_tasks(api, operator, namespaces[0], standalone, rate)
        scale = await service_scale_out(api, operator, namespaces[1], tasks)
        resources = await pod_resources(api, namespaces[1])
        blue_green = None
        if bg_tasks:
            await create_namespace(api, namespaces[2])
            bench = BlueGreenBench(api, operator, namespaces[2], controller_writes)
            blue_green = await bench.measure(bg_tasks)
        # Deleted while the operator runs: it releases what it holds of its objects.
        cleaned = [await delete_namespace(api, namespace) for namespace in namespaces]
    finally:
        operator.stop()
    native_namespace = f"real-native-{suffix}"
    native = await deployment_scale_out(
        api, native_namespace, tasks, resources, controller_manager_pid(kubeconfig)
    )
    cleaned.append(await delete_namespace(api, native_namespace))
    cpu_ratio = None
    if native["controller_cpu_ms_per_pod"]:
        cpu_ratio = round(scale["cpu_ms_per_task"] / native["controller_cpu_ms_per_pod"], 3)
    return {
        "standalone": launches,
        "service": scale,
        "blue_green": blue_green,
        "native": native,
        "pod_resources": resources,
        "ratios": {
            "seconds": round(scale["seconds"] / native["seconds"], 3),
            "writes": round(scale["writes_per_task"] / native["writes_per_pod"], 3),
            "cpu": cpu_ratio,
        },
        "namespaces_cleaned": all(cleaned),
        "load_average": [round(load, 2) for load in load_average],
        "cpus": os.cpu_count(),
    }


async def _run(
    workdir: Path,
    kubeconfig: Path,
    tasks: int,
    standalone: int,
    rate: float,
    runs: int,
    bg_tasks: int,
) -> dict[str, Any]:
    started = time.monotonic()
    credentials = Credentials.load(kubeconfig, workdir)
    connector = aiohttp.TCPConnector(ssl=credentials.ssl, limit=200)
    async with aiohttp.ClientSession(connector=connector, headers=credentials.headers) as session:
        api = RealApi(session, credentials.server)
        version = await api.get("/version") or {}
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(CRDS_DIR))
        kubectl(kubeconfig, "wait", "--for=condition=Established", "-f", str(CRDS_DIR))
        added = await add_nodes(api, max(tasks, standalone, 2 * bg_tasks))
        try:
            results = []
            for index in range(runs):
                results.append(
                    await one_run(
                        api, kubeconfig, workdir, index, tasks, standalone, rate, bg_tasks
                    )
                )
                print(f"  real run {index + 1}: {summary_line(results[-1])}", flush=True)
        finally:
            for name in added:
                await api.request("DELETE", f"/api/v1/nodes/{name}")
    return {
        "seconds": round(time.monotonic() - started, 1),
        "server_version": version.get("gitVersion"),
        "tasks": tasks,
        "standalone_tasks": standalone,
        "rate_per_second": rate,
        "bg_tasks": bg_tasks,
        "nodes_added": len(added),
        "runs": results,
    }


@contextlib.contextmanager
def real_cluster(kubeconfig: Path | None) -> Any:
    """The given cluster, or one tools/cluster.py starts (and stops) for the benchmark."""
    if kubeconfig is not None:
        yield kubeconfig
        return
    tool = [sys.executable, str(CLUSTER_TOOL)]
    subprocess.run([*tool, "up"], check=True, cwd=REPO)
    try:
        yield Path(os.environ.get("ECS_OPERATOR_CLUSTER_DIR", REPO / ".cluster")) / "kubeconfig"
    finally:
        subprocess.run([*tool, "down"], check=False, cwd=REPO)


def run(
    tasks: int = 1000,
    *,
    standalone: int = 200,
    rate: float = 40.0,
    runs: int = 1,
    bg_tasks: int = 100,
    kubeconfig: Path | None = None,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """`runs` runs on the cluster of `kubeconfig` (default: a fresh one from tools/cluster.py);
    logs go to `workdir` (default: a temporary directory, removed afterwards)."""
    with real_cluster(kubeconfig) as config:
        return run_in_workdir(
            "bench-real-",
            workdir,
            lambda directory: _run(directory, config, tasks, standalone, rate, runs, bg_tasks),
        )


def summary_line(result: dict[str, Any]) -> str:
    service_result, native = result["service"], result["native"]
    return (
        f"Service 0 -> {service_result['tasks']} RUNNING {service_result['seconds']:.2f} s, "
        f"Deployment {native['seconds']:.2f} s (ratio {result['ratios']['seconds']:.3f})"
    )


def blue_green_lines(result: dict[str, Any] | None) -> list[str]:
    if result is None:
        return []
    controllers = {
        what: n for what, n in result["breakdown"].items() if what.split()[1] not in PER_POD
    }
    return [
        f"    BLUE_GREEN deployment, zero bake: {result['seconds']:.2f} s to COMPLETED, "
        f"{result['writes_per_task']:.2f} controller writes per green task"
        f"{'' if result['settled'] else ' (NOT settled)'}: {controllers}"
    ]


def report(result: dict[str, Any]) -> str:
    lines = [
        f"real control plane {result['server_version']}, {result['runs'].__len__()} run(s), "
        f"{result['nodes_added']} nodes added, {result['seconds']} s"
    ]
    for index, run_result in enumerate(result["runs"], 1):
        launches = run_result["standalone"]
        scale, native = run_result["service"], run_result["native"]
        to_pod = launches["to_pod_ms"] or {}
        lines += [
            f"  run {index}: {launches['objects']} standalone Tasks -> Pod created p50 "
            f"{to_pod.get('p50', 0):.1f} ms, p99 {to_pod.get('p99', 0):.1f} ms",
            f"    Service 0 -> {scale['tasks']} tasks RUNNING {scale['seconds']:.2f} s "
            f"({scale['tasks_per_second']:.0f}/s; pods Running {scale['pods_running_seconds']:.2f}"
            f" s; Task -> Pod p50 {scale['task_to_pod_ms']['p50']:.1f} ms, "
            f"p99 {scale['task_to_pod_ms']['p99']:.1f} ms)",
            *blue_green_lines(run_result["blue_green"]),
            f"    Deployment 0 -> {native['pods']} pods Running {native['seconds']:.2f} s "
            f"({native['pods_per_second']:.0f}/s); ratio {run_result['ratios']['seconds']:.3f}",
            f"    writes per task {scale['writes_per_task']:.2f} "
            f"(all {scale['all_writes_per_task']:.2f}): {scale['writes']}"
            f"{'' if scale['settled'] else ' (NOT settled)'}",
            f"    writes per Deployment pod {native['writes_per_pod']:.2f} "
            f"(all {native['all_writes_per_pod']:.2f}): {native['writes']}",
            f"    operator CPU {scale['cpu_ms_per_task']:.3f} ms per task "
            f"({scale['cpu_seconds']:.2f} s; {scale['cpu_share_of_a_core']:.0%} of a core while "
            f"scaling out); kube-controller-manager {native['controller_cpu_ms_per_pod']} ms per "
            f"pod ({native['controller_cpu_seconds']} s); ratio {run_result['ratios']['cpu']}",
            f"    load average at the start {run_result['load_average']} on "
            f"{run_result['cpus']} CPUs",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, help="a running cluster (default: start one)")
    parser.add_argument("--tasks", type=int, default=1000, help="Service / Deployment size")
    parser.add_argument("--standalone", type=int, default=200, help="standalone Tasks (P1)")
    parser.add_argument("--rate", type=float, default=40.0, help="standalone creates per second")
    parser.add_argument("--bg-tasks", type=int, default=100, help="blue/green tasks (P10)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep the operator logs here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(
        args.tasks,
        standalone=args.standalone,
        rate=args.rate,
        runs=args.runs,
        bg_tasks=args.bg_tasks,
        kubeconfig=args.kubeconfig,
        workdir=args.workdir,
    )
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
