"""Task definition revisions as the watch cache holds them, each spec validated once; and the
writes of a Service's service revisions.

A registered revision never changes, so the spec a ControllerRevision stores is validated once
and remembered for that version of that object (``ObjectCache.parsed``); a ControllerRevision
deleted and created again under the same name is another version, read anew.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, model_validator

from ecs_operator.controllers.cache import ObjectCache
from ecs_operator.core import labels, service_revisions
from ecs_operator.core.registration import StoredRevision, accepted_condition
from ecs_operator.core.revisions import (
    ResolvedRevision,
    Revision,
    rejection,
    resolve_reference,
    revision_record_from_object,
)
from ecs_operator.kube.client import CONTROLLER_REVISIONS, KubeError
from ecs_operator.models.service import Service, ServiceLoadBalancer, ServiceSpec
from ecs_operator.models.taskdefinition import TaskDefinitionSpec, parse_task_definition_ref

if TYPE_CHECKING:  # the context reads revisions through this module's readers
    from ecs_operator.controllers.context import OperatorContext

logger = logging.getLogger(__name__)


class _StoredSpec(BaseModel):
    """A ControllerRevision, read for the task definition spec it stores."""

    data: TaskDefinitionSpec


class _ParsedServiceRevision(BaseModel):
    """A service revision's ControllerRevision, read once per version (``ObjectCache.parsed``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    stored: service_revisions.StoredRevision

    @model_validator(mode="before")
    @classmethod
    def _read(cls, body: Any) -> Any:
        return {"stored": service_revisions.read_revision(body)}


class RevisionReader:
    """The one reader of stored revisions: a family's, the one a reference resolves to, the
    spec a reference names."""

    def __init__(self, revisions: ObjectCache, task_definitions: ObjectCache) -> None:
        self._revisions = revisions
        self._task_definitions = task_definitions

    def family(self, namespace: str, family: str) -> list[StoredRevision]:
        """The stored revisions of `family` in `namespace`."""
        return [stored for _, stored in self._stored(namespace, family)]

    def resolve(self, namespace: str, reference: str, *, for_new_task: bool) -> ResolvedRevision:
        """The revision `reference` means for its user (`core.revisions.resolve_reference`)."""
        try:
            family, _ = parse_task_definition_ref(reference)
        except ValueError as error:
            return ResolvedRevision(error=str(error))
        stored = self._stored(namespace, family)
        live = self._task_definitions.get((namespace, family))
        resolution = resolve_reference(
            reference,
            [s.record for _, s in stored],
            live["metadata"]["uid"] if live else None,
            for_new_task=for_new_task,
        )
        if resolution.record is None:
            accepted = accepted_condition(live.get("status")) if live else None
            return ResolvedRevision(error=resolution.error, rejection=rejection(family, accepted))
        body = next(body for body, s in stored if s.record is resolution.record)
        return ResolvedRevision(Revision(resolution.record, self._spec(body)))

    def spec(self, namespace: str, reference: str) -> TaskDefinitionSpec | None:
        """The spec of the stored revision `reference` names, whatever its status: the
        revision it pins, else the family's newest."""
        try:
            family, number = parse_task_definition_ref(reference)
        except ValueError:
            return None
        named = [
            (body, s)
            for body, s in self._stored(namespace, family)
            if number is None or s.record.revision == number
        ]
        if not named:
            return None
        newest, _ = max(named, key=lambda pair: pair[1].record.revision)
        return self._spec(newest)

    def _spec(self, body: dict[str, Any]) -> TaskDefinitionSpec:
        return self._revisions.parsed(body, _StoredSpec).data

    def _stored(self, namespace: str, family: str) -> list[tuple[dict[str, Any], StoredRevision]]:
        stored = []
        selector = labels.label_value(family)
        for obj in self._revisions.in_namespace(namespace):
            if obj["metadata"]["labels"].get(labels.FAMILY_LABEL) != selector:
                continue
            try:
                record = revision_record_from_object(obj)
            except ValueError as error:
                logger.warning("ignoring a stored revision: %s", error)
                continue
            created = obj["metadata"].get("creationTimestamp")
            registered = datetime.fromisoformat(created) if created else datetime.now(UTC)
            stored.append((obj, StoredRevision(record, registered)))
        return stored


class ServiceRevisionReader:
    """A Service's stored service revisions, each read (and validated) once per version of its
    ControllerRevision, like the task definition revisions above."""

    def __init__(self, revisions: ObjectCache, by_service: str) -> None:
        self._revisions = revisions
        self._by_service = by_service  # the index of `revisions` by "namespace/service"

    def of(self, service: Service) -> list[service_revisions.StoredRevision]:
        """The service revisions stored for `service` (owned by this very object)."""
        metadata = service.metadata
        found = []
        owned = f"{metadata.namespace or ''}/{metadata.name}"
        for obj in self._revisions.indexed(self._by_service, owned):
            if not service_revisions.is_service_revision(obj) or not any(
                owner.get("uid") == metadata.uid
                for owner in obj["metadata"].get("ownerReferences") or ()
            ):
                continue
            try:
                found.append(self._revisions.parsed(obj, _ParsedServiceRevision).stored)
            except ValueError as error:
                logger.warning("ignoring a stored service revision: %s", error)
        return found

    def running_spec(self, service: Service) -> ServiceSpec:
        """The settings `service` runs with (``service_revisions.running_spec``)."""
        if not any(
            d.rollback for d in (service.status.deployments if service.status else None) or ()
        ):
            # The common case, without reading the revisions.
            return service_revisions.with_load_balancer_roles(service.spec, service.status)
        return service_revisions.running_spec(service.spec, service.status, self.of(service))

    def load_balancers_by_deployment(
        self, service: Service
    ) -> dict[str, list[ServiceLoadBalancer]]:
        """The loadBalancers of each of `service`'s deployments' service revisions."""
        return service_revisions.load_balancers_by_deployment(service.status, self.of(service))

    def task_spec(self, service: Service, deployment_id: str | None) -> ServiceSpec:
        """The settings a task of `service` started by `deployment_id` runs with."""
        stored = self.of(service)
        return service_revisions.task_spec(
            service_revisions.running_spec(service.spec, service.status, stored),
            service_revisions.load_balancers_by_deployment(service.status, stored),
            deployment_id,
        )


async def record_service_revisions(
    context: OperatorContext, namespace: str, manifests: Iterable[dict[str, Any]]
) -> KubeError | None:
    """Store new service revisions (found instead when stored already and the cache had not
    seen it: a revision never changes); the first error, after trying each."""
    first_error = None
    if context.namespace_terminating(namespace):
        return None  # every create would be refused (403) until the namespace is gone
    for manifest in manifests:
        try:
            await context.api.create_or_get(CONTROLLER_REVISIONS, namespace, manifest)
        except KubeError as error:
            first_error = first_error or error
    return first_error


async def delete_service_revision(context: OperatorContext, namespace: str, name: str) -> None:
    try:
        await context.api.delete(CONTROLLER_REVISIONS, namespace, name)
    except KubeError as error:
        if not error.not_found:
            raise
