"""The benchmarks' harness works end to end, at toy size (timings are never judged here:
`make bench` measures, tests only prove the measuring machinery)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import (
    bench_blue_green,
    bench_real,
    bench_scale,
    bench_services,
    bench_tasks,
    bench_unplaceable,
)
from bench import run as bench_run
from support.helpers import REAL_CLUSTER_ENV

TASKS = 5
SERVICE_TASKS = 5


def test_task_benchmark_measures_every_object_of_both_operators() -> None:
    result = bench_tasks.run(tasks=TASKS, rate=20.0)

    for phase in ("ecs_operator", "floor"):
        summary = result[phase]
        assert summary["missing_pods"] == [], f"{phase}: objects without a pod"
        for metric in ("to_pod_ms", "to_pod_running_ms", "to_running_ms"):
            assert set(summary[metric]) == {"p50", "p99"}, f"{phase}: no {metric}"
        assert summary["writes"].get("create pods") == TASKS, summary["writes"]
    assert "create tasks" not in result["ecs_operator"]["writes"]  # the client's own writes
    assert all(value is not None for value in result["ratios"].values()), result["ratios"]
    restart = result["restart"]
    assert isinstance(restart["writes"], int)
    assert restart["writes"] == sum(restart["breakdown"].values())

    rows = bench_run.task_rows([result])
    metrics = [row.metric for row in rows]
    assert metrics[:2] == ["Task -> Pod created, p50", "Task -> Pod created, p99"]
    assert all(row.runs for row in rows)
    assert "Task -> Pod created, p50" in bench_run.table(rows)


@pytest.mark.timeout(300)  # the replacement phase waits until its tasks ran for 30 s
def test_service_benchmark_measures_every_phase() -> None:
    result = bench_services.run(
        scales=[SERVICE_TASKS],
        replace_tasks=SERVICE_TASKS,
        failures=2,
        node_loss_tasks=SERVICE_TASKS,
        node_loss_runs=1,
        nodes_per_zone=2,
    )

    (scale,) = result["scale_out"]
    assert scale["tasks"] == SERVICE_TASKS
    assert scale["writes"].get("create tasks") == SERVICE_TASKS, scale["writes"]
    assert scale["writes"].get("create pods") == SERVICE_TASKS, scale["writes"]
    assert "create services" not in scale["writes"]  # the client's own write
    assert scale["floor"]["objects"] == SERVICE_TASKS
    assert scale["floor"]["writes_per_object"] >= 1
    assert result["replacement"]["failures"] == 2
    (loss,) = result["node_loss"]
    assert loss["tasks_on_node"] >= 1
    assert loss["replacements_on_lost_node"] == 0
    restart = result["restart"]
    assert restart["writes"] == sum(restart["breakdown"].values())

    rows = bench_run.service_rows(result)
    assert all(row.runs for row in rows)
    assert f"Service 0 -> {SERVICE_TASKS} tasks RUNNING" in bench_run.table(rows)


@pytest.mark.timeout(300)  # about 10 s alone; it timed out at 120 s in 2 of 3 loaded full runs
def test_scale_benchmark_measures_memory_and_idle_cpu() -> None:
    result = bench_scale.run(services=3, tasks_per_service=2, idle_seconds=1.0)

    assert result["tasks"] == 6
    assert result["settled"]
    assert 0 < result["rss_mb"] <= result["peak_rss_mb"]
    assert result["idle_cpu_percent"] >= 0
    assert result["idle_writes"] == sum(result["idle_write_breakdown"].values())
    rows = bench_run.scale_rows(result)
    assert [row.unit for row in rows] == ["s", "MB", "% of a core", "writes"]
    assert "operator RSS" in bench_run.table(rows)


def test_unplaceable_benchmark_measures_cpu_and_writes_of_a_full_cluster() -> None:
    result = bench_unplaceable.run(window=1.0)

    assert result["placeable"] == 6 and result["desired"] == 8
    assert result["cpu_seconds"] >= 0
    assert result["writes"] == sum(result["write_breakdown"].values())
    rows = bench_run.unplaceable_rows(result)
    assert [row.unit for row in rows] == ["% of a core", "writes/s"]
    assert "full cluster" in bench_run.table(rows)


@pytest.mark.realcluster
@pytest.mark.timeout(600)
@pytest.mark.skipif(
    not os.environ.get(REAL_CLUSTER_ENV),
    reason=f"needs a real control plane: {REAL_CLUSTER_ENV} names its kubeconfig (make test)",
)
def test_real_benchmark_measures_both_sides_on_one_cluster() -> None:
    result = bench_real.run(
        SERVICE_TASKS,
        standalone=TASKS,
        bg_tasks=SERVICE_TASKS,
        kubeconfig=Path(os.environ[REAL_CLUSTER_ENV]),
    )

    (run,) = result["runs"]
    service, native = run["service"], run["native"]
    assert run["standalone"]["missing_pods"] == []
    assert service["tasks"] == SERVICE_TASKS and native["pods"] == SERVICE_TASKS
    # Real counters from kube-apiserver's /metrics, the client's own writes left out.
    assert service["writes"].get("create pods") == SERVICE_TASKS, service["writes"]
    assert service["writes"].get("create tasks.ecs.operator.dev") == SERVICE_TASKS
    assert "create services.ecs.operator.dev" not in service["writes"]
    assert native["writes"].get("create pods") == SERVICE_TASKS, native["writes"]
    assert "patch deployments.apps" not in native["writes"]
    assert service["writes_per_task"] >= 2  # its Task and its Pod at least
    assert native["writes_per_pod"] >= 1
    assert service["cpu_seconds"] > 0
    assert run["namespaces_cleaned"]
    # P10: green's Tasks and Pods created, blue's stopped; kwok's and the scheduler's
    # per-pod writes not counted as the controllers'.
    blue_green = run["blue_green"]
    assert blue_green["settled"] and blue_green["seconds"] > 0
    green = blue_green["breakdown"].get("create tasks.ecs.operator.dev", 0)
    assert green >= SERVICE_TASKS, blue_green["breakdown"]
    assert blue_green["breakdown"].get("patch tasks.ecs.operator.dev", 0) >= SERVICE_TASKS
    assert "patch taskdefinitions.ecs.operator.dev" not in blue_green["breakdown"]
    assert blue_green["writes"] < sum(blue_green["breakdown"].values())  # bindings left out

    rows = bench_run.real_rows(result)
    assert all(row.runs for row in rows)
    assert any("BLUE_GREEN" in row.metric and row.limit == 15.0 for row in rows)
    assert "Deployment median" in bench_run.table(rows, baseline="Deployment")


BLUE_GREEN_TASKS = 10


@pytest.mark.timeout(300)  # setup waits for blue's targets to pass two 5 s health checks
def test_blue_green_benchmark_measures_time_and_writes_of_a_deployment() -> None:
    result = bench_blue_green.run(BLUE_GREEN_TASKS, runs=1, nodes_per_zone=2)

    (run,) = result["runs"]
    assert run["seconds"] > 0
    assert run["settled"]
    assert run["writes"] == sum(run["breakdown"].values())
    # Green: a Task and its Pod per task (more when the scheduler replaced or rebalanced
    # one: counted, as any write; no duplicate launch is the resilience suite's to prove);
    # blue: each of its tasks stopped.
    created = run["breakdown"].get("create tasks", 0)
    assert created >= BLUE_GREEN_TASKS, run["breakdown"]
    assert run["breakdown"].get("create pods") == created, run["breakdown"]
    assert run["breakdown"].get("patch tasks", 0) >= BLUE_GREEN_TASKS, run["breakdown"]
    assert "patch taskdefinitions" not in run["breakdown"]  # the client's own edit
    rows = bench_run.blue_green_rows(result)
    assert [row.unit for row in rows] == ["s", "writes"]
    assert f"BLUE_GREEN {BLUE_GREEN_TASKS} tasks" in bench_run.table(rows)
