"""The operator's shared state: options, the API client and the watch caches."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from ecs_operator.controllers.cache import ObjectCache, object_key
from ecs_operator.controllers.feeds import feed_of
from ecs_operator.controllers.revisions import RevisionReader, ServiceRevisionReader
from ecs_operator.controllers.triggers import Body, Change
from ecs_operator.controllers.writer import Writer
from ecs_operator.core.alarms import (
    DEFAULT_BAKE_SECONDS,
    DEFAULT_INTERVAL_SECONDS,
    AlarmDefinition,
)
from ecs_operator.core.capacity import (
    cluster_instances,
    occupied_node,
    placed_node,
    stand_in_pods,
)
from ecs_operator.core.ownership import owned_by, service_of_task
from ecs_operator.core.placement import ContainerInstance, Footprints
from ecs_operator.core.security import InstallPolicy, SecurityPolicy
from ecs_operator.kube.client import KubeClient, Resource
from ecs_operator.models.loadbalancer import LoadBalancer

logger = logging.getLogger(__name__)


class _NodeInstance:
    """A node's container instance, the versions it was built from, and its views by cluster
    (reused while the node is unchanged)."""

    def __init__(self, stamp: tuple[object, ...], instance: ContainerInstance) -> None:
        self.stamp = stamp
        self.instance = instance
        self._views: dict[str, ContainerInstance] = {}

    def in_cluster(self, cluster: str) -> ContainerInstance:
        view = self._views.get(cluster)
        if view is None:
            view = self._views[cluster] = self.instance.in_cluster(cluster)
        return view


@dataclass(frozen=True)
class OperatorOptions:
    kubeconfig: str | None = None
    security: InstallPolicy = field(default_factory=InstallPolicy)
    resolve_grace_seconds: float = 10.0
    workers: int = 8
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    metrics_port: int = 0  # 0: no metrics endpoint
    metrics_address: str = "127.0.0.1"
    leader_election: bool = False
    leader_election_namespace: str = "default"
    leader_election_lease_seconds: float = 15.0
    prometheus_url: str | None = None  # where deployment alarms are queried
    alarms: tuple[AlarmDefinition, ...] = ()  # the install's alarms (--alarms-file)
    alarm_interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    alarm_bake_seconds: float = DEFAULT_BAKE_SECONDS


# Pods by the node whose capacity they hold (not once terminated); tasks by the node placed on.
NODE_INDEX = "node"
# Tasks and service revisions by "namespace/service" of the Service that owns them.
SERVICE_INDEX = "service"


def _owning_service(owned: Mapping[str, Any]) -> str | None:
    """Its Service's "namespace/name" (``service_of_task``)."""
    service = service_of_task(owned)
    return f"{owned['metadata'].get('namespace', '')}/{service}" if service else None


@dataclass
class OperatorContext:
    """Created once at start-up; every controller reads the cluster through these caches."""

    options: OperatorOptions
    kube: KubeClient
    tasks: ObjectCache = field(
        default_factory=lambda: ObjectCache(
            indexes={NODE_INDEX: placed_node, SERVICE_INDEX: _owning_service}
        )
    )
    services: ObjectCache = field(default_factory=ObjectCache)
    load_balancers: ObjectCache = field(default_factory=ObjectCache)
    # The Kubernetes Services and EndpointSlices the operator keeps for its LoadBalancers.
    kubernetes_services: ObjectCache = field(default_factory=ObjectCache)
    endpoint_slices: ObjectCache = field(default_factory=ObjectCache)
    footprints: Footprints = field(default_factory=Footprints)  # pods' requests, by uid
    task_definitions: ObjectCache = field(default_factory=ObjectCache)
    revisions: ObjectCache = field(
        default_factory=lambda: ObjectCache(indexes={SERVICE_INDEX: _owning_service})
    )
    pods: ObjectCache = field(
        default_factory=lambda: ObjectCache(indexes={NODE_INDEX: occupied_node})
    )
    nodes: ObjectCache = field(default_factory=ObjectCache)
    # Their labels say which Pod Security Standard they enforce and what the install grants.
    namespaces: ObjectCache = field(default_factory=ObjectCache)
    # Each node's container instance, with the versions of what it was built from.
    _instances: dict[str, _NodeInstance] = field(default_factory=dict, init=False, repr=False)
    # Told every change recorded (the watches wake the controllers its triggers name).
    on_change: Callable[[Change], None] = field(default=lambda _change: None, repr=False)

    @cached_property
    def api(self) -> Writer:
        """What the controllers read and write the API through (see `writer`)."""
        return Writer(self.kube, self.record)

    def record(
        self,
        resource: Resource,
        event_type: str | None,
        body: Body,
        *,
        written: bool = False,
        wake: bool = True,
    ) -> Change | None:
        """Record a watch event (type None: a listing's), or the response of our own write, in
        its kind's cache, and tell `on_change` what it changed (unless not `wake`). An object
        the watch would not see is not recorded. A version no newer than the one held changes
        nothing: the watch event of our own write, recorded when it was answered, or a late
        one; a listing's objects are told all the same (a relist is a resync)."""
        feed = feed_of(resource)
        if feed is None or (event_type != "DELETED" and not feed.selects(body)):
            return None
        cache: ObjectCache = getattr(self, feed.cache)
        key = object_key(body)
        before = cache.get(key)
        cache.record(event_type, body)
        now = cache.get(key)
        if event_type == "DELETED":
            change = Change(resource, "DELETED", body, before, written)
        elif now is None or (now is before and event_type is not None):
            return None
        else:
            change = Change(resource, event_type or "ADDED", now, before, written)
        if wake:
            self.on_change(change)
        return change

    def namespace_terminating(self, namespace: str) -> bool:
        """Whether `namespace` is being deleted (nothing new can be created in it)."""
        body = self.namespaces.get(("", namespace)) or {}
        return bool((body.get("metadata") or {}).get("deletionTimestamp"))

    def security_policy(self, namespace: str) -> SecurityPolicy:
        """What a task in `namespace` may ask for (a namespace not seen yet: no labels)."""
        body = self.namespaces.get(("", namespace)) or {"metadata": {"name": namespace}}
        return self.security_policy_of(body)

    def security_policy_of(self, namespace: Body) -> SecurityPolicy:
        """What a task in the namespace `namespace` (its body) may ask for."""
        metadata = namespace.get("metadata") or {}
        return self.options.security.for_namespace(metadata["name"], metadata.get("labels") or {})

    def node_of(self, pod: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The node `pod` is bound to, if it is and the node is known."""
        node_name = (pod or {}).get("spec", {}).get("nodeName")
        return self.nodes.get(("", node_name)) if node_name else None

    def service_tasks(self, service: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """The Task objects `service` (a Service body) owns."""
        metadata = service["metadata"]
        named = f"{metadata.get('namespace', '')}/{metadata['name']}"
        for task in self.tasks.indexed(SERVICE_INDEX, named):
            if owned_by(task, service):  # an ownerReference by name alone may be forged
                yield task

    def container_instances(self, cluster: str) -> list[ContainerInstance]:
        """Every node as a container instance of the ECS `cluster` (a namespace: the node's
        resources are shared by every namespace, its task groups are the cluster's own),
        counting what runs or will run there: its pods that have not terminated (a stopped
        task's Pod stays for its logs and holds nothing), and the service tasks placed there
        whose Pod does not exist yet (just created, or the operator restarted in between), or
        the next launches would pile up where they seem absent. A node's instance is rebuilt
        only when the node, its pods or its tasks changed: a placement costs the nodes, not
        every pod of the cluster."""
        instances: dict[str, _NodeInstance] = {}
        for node in self.nodes.values():
            name = node["metadata"]["name"]
            stamp = (
                node["metadata"].get("resourceVersion"),
                self.pods.index_version(NODE_INDEX, name),
                self.tasks.index_version(NODE_INDEX, name),
            )
            known = self._instances.get(name)
            if known is None or known.stamp != stamp:
                placed = self.tasks.indexed(NODE_INDEX, name)
                pods = [*self.pods.indexed(NODE_INDEX, name), *stand_in_pods(placed, self._has_pod)]
                known = _NodeInstance(stamp, cluster_instances([node], pods, self.footprints)[0])
            instances[name] = known
        self._instances = instances
        return [known.in_cluster(cluster) for known in instances.values()]

    def _has_pod(self, task: Mapping[str, Any]) -> bool:
        return self.pods.get(object_key(task)) is not None

    def load_balancers_in(self, namespace: str) -> dict[str, LoadBalancer]:
        """The LoadBalancers of `namespace` by name (those the operator can read)."""
        found = {}
        for body in self.load_balancers.in_namespace(namespace):
            try:
                lb = self.load_balancers.parsed(body, LoadBalancer)
            except ValidationError as error:
                logger.warning("ignoring LoadBalancer %s: %s", body["metadata"]["name"], error)
                continue
            found[lb.metadata.name] = lb
        return found

    @cached_property
    def revision_reader(self) -> RevisionReader:
        """Task definition revisions: a family's, resolved, and their specs parsed once."""
        return RevisionReader(self.revisions, self.task_definitions)

    @cached_property
    def service_revisions(self) -> ServiceRevisionReader:
        """Service revisions: a Service's, and the settings it runs with."""
        return ServiceRevisionReader(self.revisions, SERVICE_INDEX)
