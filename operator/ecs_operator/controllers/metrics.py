"""Prometheus metrics: reconcile counts and durations, and gauges read from the watch caches.

The gauges are computed at scrape time from what the operator already holds in memory, so
metrics cost nothing between scrapes and can never drift from the objects they describe.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ecs_operator.controllers.context import OperatorContext
from ecs_operator.core import labels


class OperatorMetrics:
    def __init__(self, context: OperatorContext) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "ecs_operator_reconcile_total",
            "Reconciles by kind and result (ok or error).",
            ["kind", "result"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "ecs_operator_reconcile_duration_seconds",
            "Time spent in one reconcile, by kind.",
            ["kind"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.placement_failures = Counter(
            "ecs_operator_placement_failures_total",
            "Tasks that could not be placed, by ECS reason (RESOURCE:MEMORY, …).",
            ["reason"],
            registry=self.registry,
        )
        self.watch_failures = Counter(
            "ecs_operator_watch_failures_total",
            "Watch streams that failed and were started again after a back-off, by resource.",
            ["resource"],
            registry=self.registry,
        )
        self.relist_deletions = Counter(
            "ecs_operator_relist_deletions_total",
            "Objects a relist found deleted with no watch event to say so, by resource.",
            ["resource"],
            registry=self.registry,
        )
        self.registry.register(_CacheCollector(context))

    def observe_reconcile(self, kind: str, seconds: float, ok: bool) -> None:
        self.reconciles.labels(kind, "ok" if ok else "error").inc()
        self.reconcile_seconds.labels(kind).observe(seconds)

    def serve(self, port: int, address: str) -> None:
        start_http_server(port, address, registry=self.registry)


class _CacheCollector(Collector):
    def __init__(self, context: OperatorContext) -> None:
        self.context = context

    def collect(self) -> Iterator[GaugeMetricFamily]:
        tasks = GaugeMetricFamily(
            "ecs_operator_tasks",
            "Tasks by namespace and ECS lastStatus.",
            labels=["namespace", "last_status"],
        )
        counts = Tally(
            (
                task["metadata"].get("namespace", ""),
                (task.get("status") or {}).get("lastStatus") or "NONE",
            )
            for task in self.context.tasks.values()
        )
        for (namespace, last_status), count in sorted(counts.items()):
            tasks.add_metric([namespace, last_status], count)
        yield tasks
        revisions = GaugeMetricFamily(
            "ecs_operator_task_definition_revisions",
            "Stored task definition revisions by status.",
            labels=["status"],
        )
        by_status = Tally(
            (obj["metadata"].get("labels") or {}).get(labels.REVISION_STATUS_LABEL, "UNKNOWN")
            for obj in self.context.revisions.values()
            if labels.FAMILY_LABEL in (obj["metadata"].get("labels") or {})
        )
        for status, count in sorted(by_status.items()):
            revisions.add_metric([status], count)
        yield revisions
        yield from self._services()
        yield from self._targets()

    def _services(self) -> Iterator[GaugeMetricFamily]:
        counts = GaugeMetricFamily(
            "ecs_operator_service_tasks",
            "Tasks of each Service: desired, running and pending (ECS's counts).",
            labels=["namespace", "service", "count"],
        )
        rollouts: Tally[str] = Tally()
        outcomes: Tally[tuple[str, str]] = Tally()
        for body in self.context.services.values():
            status = body.get("status") or {}
            where = [body["metadata"].get("namespace", ""), body["metadata"]["name"]]
            for field, label in (
                ("desiredCount", "desired"),
                ("runningCount", "running"),
                ("pendingCount", "pending"),
            ):
                counts.add_metric([*where, label], status.get(field) or 0)
            for deployment in status.get("deployments") or ():
                rollouts[deployment.get("rolloutState") or "UNKNOWN"] += 1
            for record in status.get("serviceDeployments") or ():
                configuration = record.get("deploymentConfiguration") or {}
                strategy = configuration.get("strategy") or "UNKNOWN"
                outcomes[strategy, record.get("status") or "UNKNOWN"] += 1
        yield counts
        deployments = GaugeMetricFamily(
            "ecs_operator_deployments",
            "Service deployments by rolloutState.",
            labels=["rollout_state"],
        )
        for state, count in sorted(rollouts.items()):
            deployments.add_metric([state], count)
        yield deployments
        service_deployments = GaugeMetricFamily(
            "ecs_operator_service_deployments",
            "Service deployments kept in status (the last 10 per Service) by strategy and "
            "status: IN_PROGRESS, SUCCESSFUL, STOPPED, ROLLBACK_IN_PROGRESS, "
            "ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED.",
            labels=["strategy", "status"],
        )
        for (strategy, outcome), count in sorted(outcomes.items()):
            service_deployments.add_metric([strategy, outcome], count)
        yield service_deployments

    def _targets(self) -> Iterator[GaugeMetricFamily]:
        targets = GaugeMetricFamily(
            "ecs_operator_load_balancer_targets",
            "Load-balancer targets by state (initial, healthy, unhealthy, draining).",
            labels=["namespace", "load_balancer", "state"],
        )
        for body in self.context.load_balancers.values():
            where = [body["metadata"].get("namespace", ""), body["metadata"]["name"]]
            states = Tally(
                t.get("state") or "unknown" for t in (body.get("status") or {}).get("targets") or ()
            )
            for state, count in sorted(states.items()):
                targets.add_metric([*where, state], count)
        yield targets
