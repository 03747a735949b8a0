"""Service revisions and service deployments as records (ecs-deployments.md §7.3, §7.4, §8).

Every deployment the scheduler starts (``core.deployments``) records:

- an immutable **service revision**: the task definition revision plus the service settings
  that define what runs: ECS ServiceRevision's ``loadBalancers``, ``networkConfiguration``,
  ``launchType``, ``platformVersion``, ``platformFamily``, ``capacityProviderStrategy``,
  ``serviceRegistries``, ``serviceConnectConfiguration``, and (*decision*: here they define what
  runs too, and a rollback must restore them) ``healthCheckGracePeriodSeconds``,
  ``placementConstraints`` and ``placementStrategy``. ``deploymentConfiguration`` is not part
  of it, as in ECS. It is stored as an ``apps/v1`` ControllerRevision owned by the Service
  (deleted with it), named ``SERVICE-svcrev-DIGITS``, labelled ``ecs.operator.dev/service``,
  ``data`` the ECS ServiceRevision, ``revision`` the Service generation that started it;
- a **service deployment** in ``status.serviceDeployments[]`` (newest first, the last
  ``MAX_SERVICE_DEPLOYMENTS``): its source and target service revisions, ECS's status, times,
  statusReason, circuit breaker and rollback.

One id ties them: the digits of the legacy ``deployments[].id`` (``ecs-svc/DIGITS``, derived
from the Service uid, generation, revision and settings, so a plan recomputed after a restart
names the same records). ARNs are ECS-shaped with an empty region and account:
``arn:aws:ecs:::service-deployment/NAMESPACE/SERVICE/DIGITS`` and
``arn:aws:ecs:::service-revision/NAMESPACE/SERVICE/DIGITS``.

Statuses follow the legacy deployment and only ever move forward (``STATUS_RANK``):

- a new PRIMARY deployment is IN_PROGRESS at once (*decision*: the operator starts it in the
  plan that creates it, so PENDING is never observed); COMPLETED makes it SUCCESSFUL;
- the circuit breaker, an alarm or a PAUSE hook (``core.lifecycle_hooks``) failing it with a
  rollback: ROLLBACK_IN_PROGRESS
  (``rollback`` names the service revision rolled back to, the last SUCCESSFUL one, and the
  failed deployment's rolloutStateReason); once that revision is COMPLETED again
  ROLLBACK_SUCCESSFUL, if it fails too ROLLBACK_FAILED (its ``lifecycleHookDetails`` still
  follow the deployment's while listed: the rollback's hook runs may end later);
- failed without rollback: STOPPED (ECS sets ``stoppedAt`` then); replaced by a newer
  deployment before it finished: STOPPED (*decision*, ECS names no status for it).

A rollback creates no service revision: it runs the stored one again, and while the Service
runs a revision it rolled back to, the scheduler, the load balancers and the tasks use that
revision's settings (``running_spec``), not the spec's, until the spec asks for a new
deployment; and each task is registered with the load balancers of its own deployment's
service revision (``task_spec``), as ECS keeps a task in its revision's target groups.

History is bounded: beyond the newest ``KEPT_SERVICE_REVISIONS``, a ControllerRevision is
deleted unless a listed deployment runs it or it is the last successful one.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from ecs_operator.core import events, labels, traffic_roles
from ecs_operator.models.service import (
    MAX_SERVICE_DEPLOYMENTS,
    Deployment,
    Service,
    ServiceDeployment,
    ServiceDeploymentAlarms,
    ServiceDeploymentCircuitBreaker,
    ServiceDeploymentConfiguration,
    ServiceDeploymentRollback,
    ServiceDeploymentStatus,
    ServiceLoadBalancer,
    ServiceRevisionSummary,
    ServiceSpec,
    ServiceStatus,
    StoredServiceRevision,
)

KEPT_SERVICE_REVISIONS: Final = 10
NAME_INFIX: Final = "-svcrev-"

# The ServiceSpec fields a service revision stores (ECS names) besides taskDefinition.
REVISION_FIELDS: Final = (
    "loadBalancers",
    "healthCheckGracePeriodSeconds",
    "placementConstraints",
    "placementStrategy",
    "launchType",
    "platformVersion",
    "platformFamily",
    "networkConfiguration",
    "capacityProviderStrategy",
    "serviceRegistries",
    "serviceConnectConfiguration",
)
# Those the operator runs with (the others are accepted and not honoured).
RUNNING_FIELDS: Final = (
    "load_balancers",
    "health_check_grace_period_seconds",
    "placement_constraints",
    "placement_strategy",
)

# Ongoing statuses rank below completed ones; a status never moves to a lower rank, and a
# completed one never changes.
STATUS_RANK: Final[Mapping[ServiceDeploymentStatus, int]] = {
    "PENDING": 0,
    "IN_PROGRESS": 1,
    "STOP_REQUESTED": 2,
    "ROLLBACK_REQUESTED": 2,
    "ROLLBACK_IN_PROGRESS": 3,
    "SUCCESSFUL": 4,
    "STOPPED": 4,
    "ROLLBACK_SUCCESSFUL": 4,
    "ROLLBACK_FAILED": 4,
}
COMPLETED: Final[frozenset[ServiceDeploymentStatus]] = frozenset(
    {"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"}
)


def _digits(deployment_id: str) -> str:
    return deployment_id.rpartition("/")[2]


def _deployment_id(arn: str) -> str:
    return f"ecs-svc/{arn.rpartition('/')[2]}"


def service_arn(namespace: str, service: str) -> str:
    return f"arn:aws:ecs:::service/{namespace}/{service}"


def service_revision_arn(namespace: str, service: str, deployment_id: str) -> str:
    return f"arn:aws:ecs:::service-revision/{namespace}/{service}/{_digits(deployment_id)}"


def service_deployment_arn(namespace: str, service: str, deployment_id: str) -> str:
    return f"arn:aws:ecs:::service-deployment/{namespace}/{service}/{_digits(deployment_id)}"


def controller_revision_name(service: str, deployment_id: str) -> str:
    return f"{service}{NAME_INFIX}{_digits(deployment_id)}"


def is_service_revision(obj: Mapping[str, Any]) -> bool:
    """Whether a ControllerRevision is a service revision (not a task definition's)."""
    object_labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.SERVICE_LABEL in object_labels and labels.FAMILY_LABEL not in object_labels


def revision_manifest(
    service: Service, deployment_id: str, task_definition: str, now: datetime
) -> dict[str, Any]:
    """The ControllerRevision recording the service revision of deployment ``deployment_id``:
    ``task_definition`` and the service's current settings."""
    metadata = service.metadata
    namespace, name = metadata.namespace or "", metadata.name
    settings = service.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    data = StoredServiceRevision.model_validate(
        {field: settings[field] for field in REVISION_FIELDS if field in settings}
        | {
            "serviceRevisionArn": service_revision_arn(namespace, name, deployment_id),
            "serviceArn": service_arn(namespace, name),
            "clusterArn": f"arn:aws:ecs:::cluster/{namespace}",
            "taskDefinition": task_definition,
            "createdAt": now,
        }
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": controller_revision_name(name, deployment_id),
            "namespace": namespace,
            "labels": {
                labels.SERVICE_LABEL: labels.label_value(name),
                labels.MANAGED_BY_LABEL: labels.MANAGED_BY,
            },
            "annotations": {labels.DEPLOYMENT_ANNOTATION: deployment_id},
            "ownerReferences": [
                {
                    "apiVersion": labels.OWNER_API_VERSION,
                    "kind": "Service",
                    "name": name,
                    "uid": metadata.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": data.model_dump(mode="json", by_alias=True, exclude_none=True),
        "revision": metadata.generation or 1,
    }


@dataclass(frozen=True)
class StoredRevision:
    """A service revision read back from its ControllerRevision."""

    name: str
    deployment_id: str
    revision: int
    data: StoredServiceRevision


def read_revision(obj: Mapping[str, Any]) -> StoredRevision:
    """Parse a ControllerRevision written by ``revision_manifest``. Raises ``ValueError``
    naming the object and the field when it is not one."""
    metadata = obj.get("metadata") or {}
    name = str(metadata.get("name", "<unnamed>"))
    deployment_id = (metadata.get("annotations") or {}).get(labels.DEPLOYMENT_ANNOTATION, "")
    if not name.endswith(NAME_INFIX + _digits(deployment_id)) or "/" not in deployment_id:
        raise ValueError(
            f"ControllerRevision {name}: metadata.annotations[{labels.DEPLOYMENT_ANNOTATION}] "
            f"must be the ecs-svc/ id its name ends with; got {deployment_id!r}"
        )
    revision = obj.get("revision")
    if not isinstance(revision, int):
        raise ValueError(f"ControllerRevision {name}: revision must be an integer")
    try:
        data = StoredServiceRevision.model_validate(obj.get("data"))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"ControllerRevision {name}: data.{where}: {first['msg']}") from None
    return StoredRevision(name, deployment_id, revision, data)


def running_spec(
    spec: ServiceSpec, status: ServiceStatus | None, stored: Iterable[StoredRevision]
) -> ServiceSpec:
    """The settings the Service runs with: the spec's, except while its PRIMARY is a revision
    it rolled back to, whose stored settings apply until the spec asks for a new deployment
    (the rollback restores them, not only the task definition); its load balancers in their
    current production and test roles."""
    primary = next(
        (d for d in (status.deployments if status else None) or () if d.status == "PRIMARY"),
        None,
    )
    revision = (
        next((s.data for s in stored if s.deployment_id == primary.id), None)
        if primary is not None and primary.rollback
        else None
    )
    # Not a rollback, or its revision is not stored (collected by hand): the spec's settings.
    running = (
        spec
        if revision is None
        else spec.model_copy(update={field: getattr(revision, field) for field in RUNNING_FIELDS})
    )
    return with_load_balancer_roles(running, status)


def with_load_balancer_roles(spec: ServiceSpec, status: ServiceStatus | None) -> ServiceSpec:
    """``spec`` with its loadBalancers[] resolved to their production and test LoadBalancers
    (``core.traffic_roles``)."""
    if not spec.load_balancers:
        return spec
    resolved = traffic_roles.resolved_entries(spec.load_balancers, status)
    if resolved == spec.load_balancers:
        return spec
    return spec.model_copy(update={"load_balancers": resolved})


def load_balancers_by_deployment(
    status: ServiceStatus | None, stored: Iterable[StoredRevision]
) -> dict[str, list[ServiceLoadBalancer]]:
    """The loadBalancers of each listed deployment's stored service revision, resolved to
    their production and test LoadBalancers."""
    listed = {d.id for d in (status.deployments if status else None) or ()}
    return {
        s.deployment_id: traffic_roles.resolved_entries(s.data.load_balancers or [], status)
        for s in stored
        if s.deployment_id in listed
    }


def task_spec(
    running: ServiceSpec,
    by_deployment: Mapping[str, Sequence[ServiceLoadBalancer]],
    deployment_id: str | None,
) -> ServiceSpec:
    """The settings a task of deployment ``deployment_id`` runs with: ``running``, with the
    load balancers of its own service revision. As in ECS, a task stays in the target groups
    of its revision while a deployment to other load balancers rolls out (and is judged healthy
    there), and a new task joins those of the new revision."""
    entries = by_deployment.get(deployment_id or "")
    if entries is None or list(entries) == list(running.load_balancers or ()):
        return running
    return running.model_copy(update={"load_balancers": list(entries) or None})


# ---------------------------------------------------------------------------------------------
# Service deployments


def _summary(
    namespace: str, service: str, deployment: Deployment, requested: int | None = None
) -> ServiceRevisionSummary:
    return ServiceRevisionSummary(
        arn=service_revision_arn(namespace, service, deployment.id),
        requested_task_count=deployment.desired_count if requested is None else requested,
        running_task_count=deployment.running_count,
        pending_task_count=deployment.pending_count,
        requested_production_traffic_weight=deployment.production_traffic_weight,
    )


@dataclass(frozen=True)
class RecordInputs:
    """What the service deployment records follow: the legacy deployments after the plan."""

    namespace: str
    service: str
    deployments: Sequence[Deployment]
    breaker_enabled: bool
    threshold: int
    now: datetime
    alarm_names: tuple[str, ...] = ()
    """deploymentConfiguration.alarms' names when enabled (none: DISABLED)."""


def record_deployments(
    previous: Sequence[ServiceDeployment], inputs: RecordInputs
) -> list[ServiceDeployment]:
    """The service deployments after a plan: a record for each new deployment, each ongoing one
    moved on as its legacy deployment says, newest first, at most ``MAX_SERVICE_DEPLOYMENTS``."""
    by_id = {d.id: d for d in inputs.deployments}
    known = {_deployment_id(r.service_deployment_arn) for r in previous}
    records = [_advance(record, by_id, inputs) for record in previous]
    # A rollback runs a recorded deployment again: it gets no new record.
    new = [
        _started(d, inputs)
        for d in inputs.deployments
        if d.status == "PRIMARY" and not d.rollback and d.id not in known
    ]
    ordered = sorted([*new, *records], key=lambda r: r.created_at, reverse=True)
    return ordered[:MAX_SERVICE_DEPLOYMENTS]


def _triggered_alarms(
    deployment: Deployment | None, before: ServiceDeploymentAlarms | None
) -> list[str] | None:
    if deployment is not None:
        return deployment.triggered_alarms
    return before.triggered_alarm_names if before else None


def _alarms(
    inputs: RecordInputs,
    deployment: Deployment | None,
    status: ServiceDeploymentStatus,
    before: ServiceDeploymentAlarms | None = None,
) -> ServiceDeploymentAlarms:
    if not inputs.alarm_names:
        return ServiceDeploymentAlarms(status="DISABLED")
    triggered = _triggered_alarms(deployment, before)
    if triggered:
        state = "TRIGGERED"
    elif status in ("IN_PROGRESS", "PENDING"):
        state = "MONITORING"
    else:
        state = "MONITORING_COMPLETE"
    return ServiceDeploymentAlarms(
        alarm_names=list(inputs.alarm_names), status=state, triggered_alarm_names=triggered
    )


def _breaker(
    inputs: RecordInputs,
    deployment: Deployment | None,
    status: ServiceDeploymentStatus,
    before: ServiceDeploymentCircuitBreaker | None = None,
    alarm_failed: bool = False,
) -> ServiceDeploymentCircuitBreaker:
    if not inputs.breaker_enabled:
        state = "DISABLED"
    elif status == "SUCCESSFUL" or alarm_failed:
        state = "MONITORING_COMPLETE"
    elif status in ("IN_PROGRESS", "PENDING"):
        state = "MONITORING"
    else:
        state = "TRIGGERED"
    if deployment is not None:
        count = deployment.failed_tasks
    else:
        # Dropped from deployments[] (none of its tasks left): its count as last seen, and at
        # least the threshold when the breaker is what ended it.
        count = before.failure_count if before else 0
        if state == "TRIGGERED" and status != "STOPPED":
            count = max(count, inputs.threshold)
    return ServiceDeploymentCircuitBreaker(
        status=state, failure_count=count, threshold=inputs.threshold
    )


def _started(deployment: Deployment, inputs: RecordInputs) -> ServiceDeployment:
    sources = [
        _summary(inputs.namespace, inputs.service, d)
        for d in inputs.deployments
        if d.id != deployment.id and d.status == "ACTIVE"
    ]
    status: ServiceDeploymentStatus = "IN_PROGRESS"
    record = ServiceDeployment(
        service_deployment_arn=service_deployment_arn(
            inputs.namespace, inputs.service, deployment.id
        ),
        target_service_revision=_summary(inputs.namespace, inputs.service, deployment),
        source_service_revisions=sources or None,
        status=status,
        status_reason=events.rollout_in_progress(deployment.id),
        created_at=deployment.created_at,
        started_at=deployment.created_at,
        updated_at=inputs.now,
        lifecycle_stage=deployment.lifecycle_stage,
        deployment_configuration=ServiceDeploymentConfiguration(
            strategy=deployment.strategy or "ROLLING"
        ),
        deployment_circuit_breaker=_breaker(inputs, deployment, status),
        alarms=_alarms(inputs, deployment, status),
    )
    return _advance(record, {d.id: d for d in inputs.deployments}, inputs)


def _advance(
    record: ServiceDeployment, by_id: Mapping[str, Deployment], inputs: RecordInputs
) -> ServiceDeployment:
    deployment_id = _deployment_id(record.service_deployment_arn)
    deployment = by_id.get(deployment_id)
    if record.status in COMPLETED:
        return _hooks_ended(record, deployment, inputs.now)
    changes = _transition(record, deployment, by_id, inputs)
    status = changes.get("status", record.status)
    if STATUS_RANK[status] < STATUS_RANK[record.status]:
        return record  # a status never moves backwards
    if deployment is not None:
        changes["target_service_revision"] = _summary(inputs.namespace, inputs.service, deployment)
        if status in ("IN_PROGRESS", "PENDING"):
            changes["lifecycle_stage"] = deployment.lifecycle_stage
        changes["lifecycle_hook_details"] = deployment.lifecycle_hook_details
    alarm_failed = bool(_triggered_alarms(deployment, record.alarms))
    changes["deployment_circuit_breaker"] = _breaker(
        inputs, deployment, status, record.deployment_circuit_breaker, alarm_failed
    )
    changes["alarms"] = _alarms(inputs, deployment, status, record.alarms)
    moved = record.model_copy(update=changes)
    if moved == record:
        return record
    return moved.model_copy(update={"updated_at": inputs.now})


def _hooks_ended(
    record: ServiceDeployment, deployment: Deployment | None, now: datetime
) -> ServiceDeployment:
    """A completed record takes how its deployment's rollback runs went on (they may outlast
    the rollback): nothing else of it changes."""
    if deployment is None or deployment.lifecycle_hook_details == record.lifecycle_hook_details:
        return record
    return record.model_copy(
        update={"lifecycle_hook_details": deployment.lifecycle_hook_details, "updated_at": now}
    )


def _transition(
    record: ServiceDeployment,
    deployment: Deployment | None,
    by_id: Mapping[str, Deployment],
    inputs: RecordInputs,
) -> dict[str, Any]:
    """What moves an ongoing record on (nothing: it stays as it is)."""
    now = inputs.now
    deployment_id = _deployment_id(record.service_deployment_arn)
    primary = next((d for d in inputs.deployments if d.status == "PRIMARY"), None)
    if record.status == "ROLLBACK_IN_PROGRESS" and record.rollback is not None:
        target = by_id.get(_deployment_id(record.rollback.service_revision_arn))
        return _rollback_outcome(target, primary, now, record.rollback.reason)
    if deployment is not None and deployment.rollout_state == "COMPLETED":
        return _successful(deployment, now)
    replaced = deployment is None or deployment.status != "PRIMARY"
    # Only a failure (circuit breaker, alarms, a lifecycle hook) makes a rollback PRIMARY: what
    # it replaced is what failed (dropped from deployments[] at once when none of its tasks is
    # left).
    rolled_back = primary is not None and primary.rollback and primary.id != deployment_id
    failed = deployment is not None and deployment.rollout_state == "FAILED"
    cause = (
        deployment.rollout_state_reason
        if deployment is not None and failed and deployment.rollout_state_reason
        else events.ROLLOUT_CIRCUIT_BREAKER_FAILED
    )
    if primary is not None and rolled_back and (failed or replaced):
        rollback = ServiceDeploymentRollback(
            reason=cause,
            service_revision_arn=service_revision_arn(inputs.namespace, inputs.service, primary.id),
            started_at=now,
        )
        changes: dict[str, Any] = {
            "status": "ROLLBACK_IN_PROGRESS",
            "status_reason": events.rollout_rolling_back(primary.id, cause),
            "rollback": rollback,
        }
        return changes | _rollback_outcome(primary, primary, now, cause)
    if failed:
        return {"status": "STOPPED", "status_reason": cause, "stopped_at": now}
    return _superseded(primary, now) if replaced else {}


def _superseded(primary: Deployment | None, now: datetime) -> dict[str, Any]:
    return {
        "status": "STOPPED",
        "status_reason": events.service_deployment_superseded(primary.id if primary else None),
        "stopped_at": now,
    }


def _successful(deployment: Deployment, now: datetime) -> dict[str, Any]:
    return {
        "status": "SUCCESSFUL",
        "status_reason": events.rollout_completed(deployment.id),
        "finished_at": now,
    }


def _rollback_outcome(
    target: Deployment | None, primary: Deployment | None, now: datetime, cause: str
) -> dict[str, Any]:
    """How a rollback to ``target`` (for ``cause``) stands: done once it is COMPLETED again,
    failed once it fails too; a newer deployment replacing it before then stops the record."""
    if target is not None and target.rollout_state == "COMPLETED":
        return {
            "status": "ROLLBACK_SUCCESSFUL",
            "status_reason": events.service_deployment_rolled_back(cause),
            "finished_at": now,
        }
    if target is not None and target.rollout_state == "FAILED":
        return {
            "status": "ROLLBACK_FAILED",
            "status_reason": events.service_deployment_rollback_failed(target.id),
            "finished_at": now,
        }
    if target is None or primary is None or target.id != primary.id:
        return _superseded(primary, now)
    return {}


def record_status(
    status: ServiceStatus, previous: ServiceStatus | None, inputs: RecordInputs
) -> ServiceStatus:
    """``status`` (the plan's) with its service deployments and current service revisions."""
    records = record_deployments((previous.service_deployments if previous else None) or (), inputs)
    current = [
        _summary(inputs.namespace, inputs.service, d)
        for d in inputs.deployments
        if d.status in ("PRIMARY", "ACTIVE")
    ]
    return status.model_copy(
        update={
            "service_deployments": records or None,
            "current_service_deployment": records[0].service_deployment_arn if records else None,
            "current_service_revisions": current or None,
        }
    )


# ---------------------------------------------------------------------------------------------
# The ControllerRevisions


@dataclass(frozen=True)
class RevisionPlan:
    """ControllerRevisions to create (manifests) and to delete (names)."""

    create: tuple[dict[str, Any], ...] = ()
    delete: tuple[str, ...] = ()


def last_successful(records: Iterable[ServiceDeployment]) -> str | None:
    """The deployment id whose service revision last deployed successfully: the newest
    SUCCESSFUL record's target (a rollback brings it back, never a new one)."""
    successful = [r for r in records if r.status == "SUCCESSFUL"]
    newest = max(successful, key=lambda r: r.created_at, default=None)
    return _deployment_id(newest.service_deployment_arn) if newest else None


def plan_revisions(
    service: Service,
    resolved: Mapping[str, str],
    status: ServiceStatus,
    stored: Sequence[StoredRevision],
    now: datetime,
    keep: int = KEPT_SERVICE_REVISIONS,
) -> RevisionPlan:
    """The service revisions to record and to collect after a plan whose status is ``status``.

    ``resolved`` maps a new deployment's id to its task definition revision: its service
    revision is recorded from the current spec unless stored already (the plan is recomputed
    after a restart: same id, same record). Beyond the newest ``keep`` (by generation, then
    name), a stored revision is deleted unless a listed deployment runs it or it is the last
    successful one."""
    names = {s.deployment_id for s in stored}
    create = tuple(
        revision_manifest(service, deployment_id, task_definition, now)
        for deployment_id, task_definition in resolved.items()
        if deployment_id not in names
    )
    protected = {d.id for d in status.deployments or ()} | set(resolved)
    successful = last_successful(status.service_deployments or ())
    if successful is not None:
        protected.add(successful)
    newest_first = sorted(stored, key=lambda s: (s.revision, s.name), reverse=True)
    delete = tuple(s.name for s in newest_first[max(keep, 1) :] if s.deployment_id not in protected)
    return RevisionPlan(create, delete)
