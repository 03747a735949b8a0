"""Label, annotation and finalizer names every layer shares.

Everything the operator writes lives under the product prefix ``ecs.operator.dev/``. Labels hold
what selectors need (label values are at most 63 characters of ``[A-Za-z0-9_.-]``, so values go
through ``label_value``); everything else, such as a task group (which contains ``:``), is an
annotation.
"""

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

from ecs_operator import API_GROUP, API_VERSION

PREFIX: Final = f"{API_GROUP}/"
OWNER_API_VERSION: Final = f"{API_GROUP}/{API_VERSION}"

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "ecs-operator"

FINALIZER: Final = f"{PREFIX}finalizer"
"""Kopf's own marker (the operator registers no deletion handler, so Kopf never keeps it)."""
DRAIN_FINALIZER: Final = f"{PREFIX}drain-targets"
"""On a load-balanced service's Task: its deletion (garbage collection after its Service's
deletion, say) waits until its targets drained. Earlier versions set it on the Service, whose
deletion then waited: it is removed from Services."""
IN_USE_FINALIZER: Final = f"{PREFIX}in-use"
"""On a LoadBalancer a Service names: its deletion waits until no Service does."""

# Labels (selectable).
TASK_LABEL: Final = f"{PREFIX}task"
FAMILY_LABEL: Final = f"{PREFIX}family"
REVISION_LABEL: Final = f"{PREFIX}revision"
SERVICE_LABEL: Final = f"{PREFIX}service"
RUN_LABEL: Final = f"{PREFIX}run"
"""On every Task of a run (a Task with spec.count above 1, and the Tasks it created): the first
Task's name, so ``kubectl get ecstask -l ecs.operator.dev/run=NAME`` lists the run."""
REVISION_STATUS_LABEL: Final = f"{PREFIX}revision-status"
HOOK_LABEL: Final = f"{PREFIX}lifecycle-hook"
"""On the Task a lifecycle hook runs: its hookId. Owned by the Service (deleted with it), yet
a standalone task: not one of the Service's tasks."""


def is_hook_task(task: Mapping[str, Any]) -> bool:
    return HOOK_LABEL in ((task.get("metadata") or {}).get("labels") or {})


# Annotations.
GROUP_ANNOTATION: Final = f"{PREFIX}group"
TASK_DEFINITION_ANNOTATION: Final = f"{PREFIX}task-definition"
"""The resolved ``family:revision`` a Pod runs."""
PLACED_NODE_ANNOTATION: Final = f"{PREFIX}placed-node"
"""On a service's Task: the node its Service placed it on (the task still checks it fits)."""
STOP_CODE_ANNOTATION: Final = f"{PREFIX}stop-code"
"""On a Task a Service stops: the ECS stopCode to report (ServiceSchedulerInitiated, …)."""
FAILED_HEALTH_CHECKS_ANNOTATION: Final = f"{PREFIX}failed-health-checks"
"""On a Task a Service stops for failed container or ELB health checks ("true"): its circuit
breaker counts the task as failed (the ECS stopCode, ServiceSchedulerInitiated, cannot say so)."""
CONTAINERS_ANNOTATION: Final = f"{PREFIX}containers"
"""JSON map of Kubernetes container name -> ECS container name."""
DEPLOYMENT_ANNOTATION: Final = f"{PREFIX}deployment-id"
"""On a service revision's ControllerRevision: the ``ecs-svc/`` id of the deployment that
recorded it."""
SOURCE_UID_ANNOTATION: Final = f"{PREFIX}source-uid"
"""On a ControllerRevision: the uid of the TaskDefinition that registered it."""
SOURCE_GENERATION_ANNOTATION: Final = f"{PREFIX}source-generation"
"""On a ControllerRevision: the TaskDefinition ``metadata.generation`` it was registered from."""

ACTIVE: Final = "ACTIVE"
INACTIVE: Final = "INACTIVE"

MAX_LABEL_VALUE_LENGTH: Final = 63
_LABEL_VALUE: Final = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_LABEL_VALUE_INVALID_CHARS: Final = re.compile(r"[^-A-Za-z0-9_.]+")
_HASH_LENGTH: Final = 10


def label_value(text: str) -> str:
    """``text`` as a valid label value, deterministically: itself when it already is one,
    otherwise a sanitised prefix plus a hash of the whole text, so that distinct inputs stay
    distinct and a selector built from the same text always matches."""
    if len(text) <= MAX_LABEL_VALUE_LENGTH and _LABEL_VALUE.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:_HASH_LENGTH]
    prefix = _LABEL_VALUE_INVALID_CHARS.sub("-", text)[: MAX_LABEL_VALUE_LENGTH - _HASH_LENGTH - 1]
    prefix = prefix.strip("-_.")
    return f"{prefix}-{digest}" if prefix else digest
