"""`make bench`: every benchmark, medians over several runs, the floor beside, a verdict each.

    .venv/bin/python tests/bench/run.py [--runs 5] [--tasks 200] [--rate 40] [--task-runs N]
    .venv/bin/python tests/bench/run.py --target real [--kubeconfig PATH] [--real-tasks 1000]
        [--real-runs 3]

`--target sandbox` (the default, `make bench`):

- placement of one task among 1,000 nodes (bench_placement.py): median of the per-run medians
  of `--runs` runs, per scenario; target <= 1 ms (reference/targets.md P6);
- the sandbox API server (bench_sandbox.py): pods created while watched, objects/s (>= 1,000),
  and a label-selected list over 10,000 pods (<= 50 ms), `--runs` runs each;
- standalone Task launch (bench_tasks.py), ecs-operator and the Kopf floor in the same run:
  Task -> Pod created p50 <= 30 ms and p99 <= 100 ms (P1), Task -> RUNNING, API writes per
  task launched, writes when the operator restarts on a converged cluster (P5: none). Three
  runs when one takes under 30 s, else one (its p50/p99 are already over `--tasks` tasks).
  A ratio is ecs-operator / floor within one run; the table shows the median of those ratios.
- Services (bench_services.py), one run (its latencies are already over many tasks): Service
  0 -> 100 and 0 -> 1,000 tasks RUNNING against the floor creating as many Pods (P2), a failed
  task's replacement Pod p50/p99 (P3), node loss until its tasks run elsewhere, median of the
  node-loss runs (P4), API writes per service task launched and by a restart on a converged
  cluster of services (P5).
- Scale (bench_scale.py), one run: 1,000 Services of 10 tasks each on one operator; once all
  10,000 tasks are RUNNING and the cluster settled, the operator's RSS (<= 500 MB) and its idle
  CPU over 30 s (<= 5 % of a core), and its writes meanwhile (none) (P6).
- Full cluster (bench_unplaceable.py), one run: two Services of 8 tasks that can place only 6
  (host port clash, memory); once they report it, the operator's CPU over `--unplaceable-window`
  s (<= 1 % of a core) and its API writes meanwhile (none: the README's bound, issue #13).
- LoadBalancers (bench_load_balancers.py), one run of a Service of `--lb-targets` tasks: task
  RUNNING -> endpoint ready in the EndpointSlice (two health checks 5 s apart included) and
  container ready -> endpoint ready (the operator's own share), stop decided -> endpoint not
  ready, EndpointSlice writes per target change. Informative: reference/targets.md sets no
  figure (R5, the correctness side, is an integration test).
- Blue/green (bench_blue_green.py), `--bg-runs` BLUE_GREEN deployments of `--bg-tasks` tasks
  with zero bake behind a LoadBalancer: new revision registered -> the new deployment alone and
  COMPLETED, and the API writes until settled per green task; medians. Informative (issue #11
  sets no figure).

`--target real` (`make bench-real`, or `make bench TARGET=real`): the real control plane
benchmark alone (bench_real.py), `--real-runs` runs on one cluster (`--kubeconfig`, else one
tools/cluster.py starts and stops), the native Deployment as the baseline: Task -> Pod created
p50/p99, Service 0 -> `--real-tasks` tasks RUNNING against the Deployment 0 -> as many Pods
Running (P7: <= 5 s and faster), tasks/s, controller writes per task, operator CPU per task
against kube-controller-manager's per pod (P9: <= 2 ms), and a BLUE_GREEN deployment of
`--bg-tasks` tasks with zero bake: new revision -> COMPLETED (P10: <= 15 s) and the controllers'
writes per green task (<= 4); P10 has no native baseline.

Prints one table (metric, median, target, baseline median, ratio, verdict) and writes every raw
number to bench-results/results.json (results-real.json for the real target). Benchmarks never
run in `make test`; timings are only ever judged here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as a script, Python sees only this folder: the benchmarks and the test support are
# imported from tests/, as pytest imports them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import (
    bench_blue_green,
    bench_load_balancers,
    bench_placement,
    bench_real,
    bench_sandbox,
    bench_scale,
    bench_services,
    bench_tasks,
    bench_unplaceable,
)
from support.harness import REPO

RESULTS = REPO / "bench-results" / "results.json"
REAL_RESULTS = REPO / "bench-results" / "results-real.json"
SLOW_TASK_RUN_SECONDS = 30.0


@dataclass
class Row:
    """One line of the table. `limit` and `at_most` encode the target (None: informative);
    `worst` judges the worst run instead of the median (for "must never happen" targets)."""

    metric: str
    unit: str
    runs: list[float]
    target: str = "-"
    limit: float | None = None
    at_most: bool = True
    baseline_runs: list[float] = field(default_factory=list)
    ratio_runs: list[float] = field(default_factory=list)
    worst: bool = False

    @property
    def value(self) -> float:
        if self.worst:
            return max(self.runs) if self.at_most else min(self.runs)
        return statistics.median(self.runs)

    @property
    def baseline(self) -> float | None:
        return statistics.median(self.baseline_runs) if self.baseline_runs else None

    @property
    def ratio(self) -> float | None:
        return statistics.median(self.ratio_runs) if self.ratio_runs else None

    @property
    def verdict(self) -> str:
        if self.limit is None:
            return "-"
        meets = self.value <= self.limit if self.at_most else self.value >= self.limit
        return "meets" if meets else "MISSES"

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "value": self.value,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "verdict": self.verdict,
        }


def placement_rows(runs: int) -> list[Row]:
    per_run = [bench_placement.medians() for _ in range(runs)]
    return [
        Row(
            f"placement 1 task / 1,000 nodes: {scenario}",
            "ms",
            [medians[scenario] / 1000 for medians in per_run],
            "<= 1",
            1.0,
        )
        for scenario in bench_placement.SCENARIOS
    ]


def sandbox_rows(runs: int) -> list[Row]:
    rates, lists = bench_sandbox.measure(runs=runs)
    return [
        Row(
            f"sandbox: {bench_sandbox.DEFAULT_PODS:,} pods created while watched",
            "objects/s",
            rates,
            ">= 1,000",
            1000.0,
            at_most=False,
        ),
        Row(
            f"sandbox: list 1 % of {bench_sandbox.DEFAULT_LIST_PODS:,} pods by label",
            "ms",
            lists,
            "<= 50",
            50.0,
        ),
    ]


def task_runs(tasks: int, rate: float, count: int | None) -> list[dict[str, Any]]:
    results = [bench_tasks.run(tasks, rate)]
    print(f"  task run 1: {results[0]['seconds']} s", flush=True)
    wanted = count or (3 if results[0]["seconds"] < SLOW_TASK_RUN_SECONDS else 1)
    while len(results) < wanted:
        results.append(bench_tasks.run(tasks, rate))
        print(f"  task run {len(results)}: {results[-1]['seconds']} s", flush=True)
    return results


def task_rows(results: list[dict[str, Any]]) -> list[Row]:
    def series(pick: Callable[[dict[str, Any]], float | None]) -> list[float]:
        return [value for value in map(pick, results) if value is not None]

    def latency(phase: str, metric: str, stat: str) -> Callable[[dict[str, Any]], float | None]:
        return lambda result: (result[phase][metric] or {}).get(stat)

    rows = []
    targets = {"p50": ("<= 30", 30.0), "p99": ("<= 100", 100.0)}
    for stat in ("p50", "p99"):
        target, limit = targets[stat]
        rows.append(
            Row(
                f"Task -> Pod created, {stat}",
                "ms",
                series(latency("ecs_operator", "to_pod_ms", stat)),
                target,
                limit,
                baseline_runs=series(latency("floor", "to_pod_ms", stat)),
                ratio_runs=series(lambda result, s=stat: result["ratios"][f"to_pod_{s}"]),
            )
        )
    for stat in ("p50", "p99"):
        rows.append(
            Row(
                f"Task -> lastStatus RUNNING, {stat} (floor: Pod Running)",
                "ms",
                series(latency("ecs_operator", "to_running_ms", stat)),
                baseline_runs=series(latency("floor", "to_running_ms", stat)),
                ratio_runs=series(lambda result, s=stat: result["ratios"][f"to_running_{s}"]),
            )
        )
    rows.append(
        Row(
            "API writes per standalone task launched",
            "writes",
            series(lambda result: result["ecs_operator"]["writes_per_object"]),
            "<= 4 (P5, service tasks)",
            4.0,
            baseline_runs=series(lambda result: result["floor"]["writes_per_object"]),
            ratio_runs=series(
                lambda result: (
                    result["ecs_operator"]["writes_per_object"]
                    / result["floor"]["writes_per_object"]
                )
            ),
        )
    )
    rows.append(
        Row(
            "writes by a restart on a converged cluster (worst run)",
            "writes",
            series(lambda result: result["restart"]["writes"]),
            "0",
            0.0,
            worst=True,
        )
    )
    return rows


def service_rows(result: dict[str, Any]) -> list[Row]:
    targets = {100: (5.0, 20.0), 1000: (20.0, 50.0)}
    rows = []
    for scale in result["scale_out"]:
        count, floor = scale["tasks"], scale["floor"]
        seconds, rate = targets.get(count, (None, None))
        rows.append(
            Row(
                f"Service 0 -> {count:,} tasks RUNNING (floor: {count:,} Pods Running)",
                "s",
                [scale["seconds"]],
                "-" if seconds is None else f"<= {seconds:g}",
                seconds,
                baseline_runs=[floor["seconds"]],
                ratio_runs=[scale["ratio"]],
            )
        )
        rows.append(
            Row(
                f"Service 0 -> {count:,}: tasks RUNNING per second",
                "tasks/s",
                [scale["tasks_per_second"]],
                "-" if rate is None else f">= {rate:g}",
                rate,
                at_most=False,
                baseline_runs=[floor["objects_per_second"]],
                ratio_runs=[scale["tasks_per_second"] / floor["objects_per_second"]],
            )
        )
    replacement = result["replacement"]
    for stat, target in (("p50", None), ("p99", 500.0)):
        rows.append(
            Row(
                f"failed service task -> replacement Pod created, {stat}",
                "ms",
                [replacement[f"{stat}_ms"]],
                "-" if target is None else f"<= {target:g}",
                target,
            )
        )
    rows.append(
        Row(
            "node NotReady -> its service tasks RUNNING elsewhere",
            "s",
            [loss["seconds"] for loss in result["node_loss"]],
            "<= 10",
            10.0,
        )
    )
    first = result["scale_out"][0]
    rows.append(
        Row(
            f"API writes per service task launched (0 -> {first['tasks']:,})",
            "writes",
            [first["writes_per_task"]],
            "<= 4",
            4.0,
            baseline_runs=[first["floor"]["writes_per_object"]],
            ratio_runs=[first["writes_per_task"] / first["floor"]["writes_per_object"]],
        )
    )
    rows.append(
        Row(
            "writes by a restart on a converged cluster of services",
            "writes",
            [result["restart"]["writes"]],
            "0",
            0.0,
            worst=True,
        )
    )
    return rows


def scale_rows(result: dict[str, Any]) -> list[Row]:
    what = f"{result['services']:,} Services / {result['tasks']:,} tasks"
    return [
        Row(f"{what}: all RUNNING after", "s", [result["converged_seconds"]]),
        Row(f"{what}: operator RSS", "MB", [result["rss_mb"]], "<= 500", 500.0),
        Row(
            f"{what}: operator idle CPU",
            "% of a core",
            [result["idle_cpu_percent"]],
            "<= 5",
            5.0,
        ),
        Row(f"{what}: writes while idle", "writes", [result["idle_writes"]], "0", 0.0, worst=True),
    ]


def unplaceable_rows(result: dict[str, Any]) -> list[Row]:
    what = f"full cluster, {len(result['services'])} Services at 6 of 8 tasks"
    return [
        Row(f"{what}: operator CPU", "% of a core", [result["cpu_percent"]], "<= 1", 1.0),
        Row(
            f"{what}: API writes per second",
            "writes/s",
            [result["writes_per_second"]],
            "0",
            0.0,
            worst=True,
        ),
    ]


def load_balancer_rows(result: dict[str, Any]) -> list[Row]:
    out, down, count = result["scale_out"], result["scale_in"], result["targets"]
    latencies = (
        ("task RUNNING -> endpoint ready (incl. health checks)", out["running_to_listed_ms"]),
        ("container ready -> endpoint ready", out["container_ready_to_listed_ms"]),
        ("stop decided -> endpoint not ready", down["stop_to_unlisted_ms"]),
    )
    rows = [
        Row(f"LB {count} targets: {what}, {stat}", "ms", [values[stat]])
        for what, values in latencies
        for stat in ("p50", "p99")
    ]
    rows.append(
        Row(
            f"LB {count} targets: EndpointSlice writes per target listed",
            "writes",
            [out["slice_writes_per_change"]],
        )
    )
    rows.append(
        Row(
            f"LB {count} targets: EndpointSlice writes per target drained or removed",
            "writes",
            [down["slice_writes_per_change"]],
        )
    )
    return rows


def blue_green_rows(result: dict[str, Any]) -> list[Row]:
    what = f"BLUE_GREEN {result['tasks']} tasks, zero bake"
    runs = result["runs"]
    return [
        Row(f"{what}: revision -> COMPLETED", "s", [run["seconds"] for run in runs]),
        Row(
            f"{what}: API writes per green task", "writes", [run["writes_per_task"] for run in runs]
        ),
    ]


def real_rows(result: dict[str, Any]) -> list[Row]:
    runs, count = result["runs"], result["tasks"]

    def series(pick: Callable[[dict[str, Any]], float | None]) -> list[float]:
        return [value for value in map(pick, runs) if value is not None]

    rows = [
        Row(
            f"real: Task -> Pod created ({result['standalone_tasks']} standalone), {stat}",
            "ms",
            series(lambda run, s=stat: (run["standalone"]["to_pod_ms"] or {}).get(s)),
        )
        for stat in ("p50", "p99")
    ]
    rows.append(
        Row(
            f"real: Service 0 -> {count:,} tasks RUNNING (baseline: Deployment 0 -> {count:,} "
            "Pods Running)",
            "s",
            series(lambda run: run["service"]["seconds"]),
            "<= 5",
            5.0,
            baseline_runs=series(lambda run: run["native"]["seconds"]),
            ratio_runs=series(lambda run: run["ratios"]["seconds"]),
        )
    )
    rows.append(
        Row(
            f"real: Service 0 -> {count:,} time / the Deployment's (faster: below 1)",
            "ratio",
            series(lambda run: run["ratios"]["seconds"]),
            "< 1",
            1.0,
        )
    )
    rows.append(
        Row(
            f"real: Service 0 -> {count:,}: tasks RUNNING per second",
            "tasks/s",
            series(lambda run: run["service"]["tasks_per_second"]),
            ">= 200",
            200.0,
            at_most=False,
            baseline_runs=series(lambda run: run["native"]["pods_per_second"]),
            ratio_runs=series(
                lambda run: run["service"]["tasks_per_second"] / run["native"]["pods_per_second"]
            ),
        )
    )
    for stat in ("p50", "p99"):
        rows.append(
            Row(
                f"real: service Task -> its Pod created during the scale-out, {stat}",
                "ms",
                series(lambda run, s=stat: run["service"]["task_to_pod_ms"][s]),
            )
        )
    rows.append(
        Row(
            "real: controller API writes per task (baseline: per Deployment pod)",
            "writes",
            series(lambda run: run["service"]["writes_per_task"]),
            "<= 4 (P5)",
            4.0,
            baseline_runs=series(lambda run: run["native"]["writes_per_pod"]),
            ratio_runs=series(lambda run: run["ratios"]["writes"]),
        )
    )
    rows.append(
        Row(
            "real: operator CPU per task launched (baseline: kube-controller-manager per pod)",
            "ms",
            series(lambda run: run["service"]["cpu_ms_per_task"]),
            "<= 2",
            2.0,
            baseline_runs=series(lambda run: run["native"]["controller_cpu_ms_per_pod"]),
            ratio_runs=series(lambda run: run["ratios"]["cpu"]),
        )
    )
    rows += real_blue_green_rows(result)
    return rows


def real_blue_green_rows(result: dict[str, Any]) -> list[Row]:
    """P10, when the run measured it (`--bg-tasks`)."""
    runs = [run["blue_green"] for run in result["runs"] if run.get("blue_green")]
    if not runs:
        return []
    what = f"real: BLUE_GREEN {result['bg_tasks']} tasks, zero bake"
    return [
        Row(f"{what}: revision -> COMPLETED", "s", [run["seconds"] for run in runs], "<= 15", 15.0),
        Row(
            f"{what}: controller API writes per green task",
            "writes",
            [run["writes_per_task"] for run in runs],
            "<= 4 (P10)",
            4.0,
        ),
    ]


def table(rows: list[Row], baseline: str = "floor") -> str:
    def number(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"

    header = ("metric", "unit", "value", "target", f"{baseline} median", "ratio", "verdict", "runs")
    lines = [
        (
            row.metric,
            row.unit,
            number(row.value),
            row.target,
            number(row.baseline),
            "-" if row.ratio is None else f"{row.ratio:.2f}x",
            row.verdict,
            str(len(row.runs)),
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    rule = "  ".join("-" * width for width in widths)

    def render(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(width) if i in (0, 1, 3, 6) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    note = (
        "value: the median over runs (the worst run where marked); "
        f"ratio: ecs-operator/{baseline}, the median of the per-run ratios"
    )
    return "\n".join([render(header), rule, *(render(line) for line in lines), note])


def environment() -> dict[str, Any]:
    def git(*arguments: str) -> str:
        done = subprocess.run(["git", *arguments], capture_output=True, text=True, cwd=REPO)
        return done.stdout.strip()

    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted_operator_changes": bool(git("status", "--porcelain", "operator")),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each micro benchmark")
    parser.add_argument("--tasks", type=int, default=200, help="tasks per task-benchmark run")
    parser.add_argument("--rate", type=float, default=40.0, help="task creations per second")
    parser.add_argument("--task-runs", type=int, help="task-benchmark runs (default 3; 1 if slow)")
    parser.add_argument(
        "--service-scales", default="100,1000", help="Service sizes to scale out to (P2)"
    )
    parser.add_argument("--lb-targets", type=int, default=100, help="load-balanced tasks")
    parser.add_argument("--bg-tasks", type=int, default=100, help="blue/green deployment tasks")
    parser.add_argument("--bg-runs", type=int, default=3, help="blue/green deployments measured")
    parser.add_argument("--scale-services", type=int, default=1000, help="Services (P6)")
    parser.add_argument("--scale-tasks", type=int, default=10, help="tasks per Service (P6)")
    parser.add_argument(
        "--unplaceable-window", type=float, default=60.0, help="seconds measured on a full cluster"
    )
    parser.add_argument("--output", type=Path, help="default: bench-results/results[-real].json")
    parser.add_argument("--target", choices=["sandbox", "real"], default="sandbox")
    parser.add_argument("--kubeconfig", type=Path, help="real target: a running cluster")
    parser.add_argument("--real-tasks", type=int, default=1000, help="real target: tasks (P7)")
    parser.add_argument("--real-runs", type=int, default=3, help="real target: runs")
    args = parser.parse_args()
    if args.target == "real":
        return main_real(args)
    args.output = args.output or RESULTS
    started = time.monotonic()
    print(f"placement ({args.runs} runs) …", flush=True)
    rows = placement_rows(args.runs)
    print(f"sandbox API server ({args.runs} runs) …", flush=True)
    rows += sandbox_rows(args.runs)
    print(f"standalone tasks ({args.tasks} at {args.rate:g}/s, ecs-operator and floor) …")
    tasks = task_runs(args.tasks, args.rate, args.task_runs)
    rows += task_rows(tasks)
    scales = [int(size) for size in args.service_scales.split(",")]
    print(f"services (0 -> {', '.join(map(str, scales))} tasks, replacement, node loss) …")
    services = bench_services.run(scales)
    rows += service_rows(services)
    print(f"scale ({args.scale_services} Services of {args.scale_tasks} tasks) …", flush=True)
    scale = bench_scale.run(args.scale_services, args.scale_tasks)
    rows += scale_rows(scale)
    print(f"full cluster (unplaceable tasks, {args.unplaceable_window:g} s window) …", flush=True)
    unplaceable = bench_unplaceable.run(args.unplaceable_window)
    rows += unplaceable_rows(unplaceable)
    print(f"load balancer ({args.lb_targets} targets: registration, deregistration) …")
    load_balancers = bench_load_balancers.run(args.lb_targets)
    rows += load_balancer_rows(load_balancers)
    print(f"blue/green ({args.bg_runs} deployments of {args.bg_tasks} tasks, zero bake) …")
    blue_green = bench_blue_green.run(args.bg_tasks, args.bg_runs)
    rows += blue_green_rows(blue_green)
    seconds = time.monotonic() - started
    print()
    print(table(rows))
    for index, result in enumerate(tasks, 1):
        print(f"\ntask run {index}:\n{bench_tasks.report(result)}")
    print(f"\n{bench_services.report(services)}")
    print(f"\n{bench_scale.report(scale)}")
    print(f"\n{bench_unplaceable.report(unplaceable)}")
    print(f"\n{bench_load_balancers.report(load_balancers)}")
    print(f"\n{bench_blue_green.report(blue_green)}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "environment": environment(),
        "seconds": round(seconds, 1),
        "rows": [row.to_dict() for row in rows],
        "task_runs": tasks,
        "services": services,
        "scale": scale,
        "unplaceable": unplaceable,
        "load_balancers": load_balancers,
        "blue_green": blue_green,
    }
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\n{len(rows)} metrics in {seconds:.0f} s; written to {args.output}")
    return 0


def main_real(args: argparse.Namespace) -> int:
    started = time.monotonic()
    print(
        f"real control plane ({args.real_runs} runs: Service 0 -> {args.real_tasks} tasks and "
        f"the native Deployment; {args.tasks} standalone Tasks at {args.rate:g}/s) …",
        flush=True,
    )
    result = bench_real.run(
        args.real_tasks,
        standalone=args.tasks,
        rate=args.rate,
        runs=args.real_runs,
        bg_tasks=args.bg_tasks,
        kubeconfig=args.kubeconfig,
    )
    rows = real_rows(result)
    seconds = time.monotonic() - started
    print()
    print(table(rows, baseline="Deployment"))
    print(f"\n{bench_real.report(result)}")
    output = args.output or REAL_RESULTS
    output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "environment": environment(),
        "seconds": round(seconds, 1),
        "rows": [row.to_dict() for row in rows],
        "real": result,
    }
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\n{len(rows)} metrics in {seconds:.0f} s; written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
