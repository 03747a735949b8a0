"""What the operator watches: one feed per kind, the cache it fills and the labels its objects
must carry to be watched. The watch streams (`kopf_adapter`) and the writer (`writer`) fill the
same caches through `OperatorContext.record`, so a cache holds exactly what its watch would."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecs_operator.core import labels
from ecs_operator.kube.client import (
    CONTROLLER_REVISIONS,
    ENDPOINT_SLICES,
    KUBERNETES_SERVICES,
    LOAD_BALANCERS,
    NAMESPACES,
    NODES,
    PODS,
    SERVICES,
    TASK_DEFINITIONS,
    TASKS,
    Resource,
)

MANAGED: Mapping[str, str | None] = {labels.MANAGED_BY_LABEL: labels.MANAGED_BY}


@dataclass(frozen=True)
class WatchedKind:
    group: str  # "" for the core API
    plural: str


@dataclass(frozen=True)
class Feed:
    """One watched kind: the `OperatorContext` cache it fills (an attribute name), and the
    labels its objects must carry to be watched (a value of None: the label is present)."""

    resource: Resource
    cache: str
    labels: Mapping[str, str | None] | None = None

    @property
    def kind(self) -> WatchedKind:
        return WatchedKind(self.resource.group, self.resource.plural)

    @property
    def name(self) -> str:
        """The resource's name, as `kubectl api-resources` gives it (pods, tasks.<group>)."""
        plural, group = self.resource.plural, self.resource.group
        return f"{plural}.{group}" if group else plural

    @property
    def selector(self) -> str:
        """`labels` as a label selector ("" when every object is watched)."""
        return ",".join(
            key if value is None else f"{key}={value}" for key, value in (self.labels or {}).items()
        )

    def selects(self, body: Mapping[str, Any]) -> bool:
        """Whether the watch would see `body` (it carries the labels)."""
        carried = (body.get("metadata") or {}).get("labels") or {}
        return all(
            key in carried and (value is None or carried[key] == value)
            for key, value in (self.labels or {}).items()
        )

    def namespaces(self, watched: tuple[str, ...]) -> tuple[str | None, ...]:
        """The namespaces it is watched in, given the operator's (None: all, or cluster-scoped)."""
        return (watched or (None,)) if self.resource.namespaced else (None,)


FEEDS: Mapping[WatchedKind, Feed] = {
    feed.kind: feed
    for feed in (
        Feed(TASK_DEFINITIONS, "task_definitions"),
        # Task definition revisions and service revisions.
        Feed(CONTROLLER_REVISIONS, "revisions", MANAGED),
        Feed(TASKS, "tasks"),
        Feed(SERVICES, "services"),
        Feed(PODS, "pods"),
        Feed(LOAD_BALANCERS, "load_balancers"),
        Feed(KUBERNETES_SERVICES, "kubernetes_services", MANAGED),
        Feed(ENDPOINT_SLICES, "endpoint_slices", MANAGED),
        Feed(NODES, "nodes"),
        Feed(NAMESPACES, "namespaces"),
    )
}


def feed_of(resource: Resource) -> Feed | None:
    return FEEDS.get(WatchedKind(resource.group, resource.plural))
