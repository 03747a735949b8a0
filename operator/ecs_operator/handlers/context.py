"""The operator's shared state: options, the API client and the watch caches."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from ecs_operator.core import labels
from ecs_operator.core.capacity import planned_node
from ecs_operator.core.placement import Footprints
from ecs_operator.core.registration import StoredRevision
from ecs_operator.core.revisions import revision_record_from_object
from ecs_operator.handlers.cache import ObjectCache
from ecs_operator.kube.client import KubeClient
from ecs_operator.models.loadbalancer import LoadBalancer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperatorOptions:
    kubeconfig: str | None = None
    allow_privileged: bool = False
    resolve_grace_seconds: float = 10.0
    workers: int = 8
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    metrics_port: int = 0  # 0: no metrics endpoint
    leader_election: bool = False
    leader_election_namespace: str = "default"
    leader_election_lease_seconds: float = 15.0


@dataclass
class OperatorContext:
    """Created once at start-up; every controller reads the cluster through these caches."""

    options: OperatorOptions
    kube: KubeClient
    tasks: ObjectCache = field(default_factory=ObjectCache)
    services: ObjectCache = field(default_factory=ObjectCache)
    load_balancers: ObjectCache = field(default_factory=ObjectCache)
    # The Kubernetes Services and EndpointSlices the operator keeps for its LoadBalancers.
    kubernetes_services: ObjectCache = field(default_factory=ObjectCache)
    endpoint_slices: ObjectCache = field(default_factory=ObjectCache)
    footprints: Footprints = field(default_factory=Footprints)  # pods' requests, by uid
    task_definitions: ObjectCache = field(default_factory=ObjectCache)
    revisions: ObjectCache = field(default_factory=ObjectCache)
    pods: ObjectCache = field(default_factory=lambda: ObjectCache(index=planned_node))
    nodes: ObjectCache = field(default_factory=ObjectCache)

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

    def family_revisions(self, namespace: str, family: str) -> list[StoredRevision]:
        """The stored revisions of `family` in `namespace`, as the watch cache has them."""
        stored = []
        selector = labels.label_value(family)
        for obj in self.revisions.in_namespace(namespace):
            if obj["metadata"]["labels"].get(labels.FAMILY_LABEL) != selector:
                continue
            try:
                record = revision_record_from_object(obj)
            except ValueError as error:
                logger.warning("ignoring a stored revision: %s", error)
                continue
            created = obj["metadata"].get("creationTimestamp")
            registered = datetime.fromisoformat(created) if created else datetime.now(UTC)
            stored.append(StoredRevision(record, registered))
        return stored
