"""Task definition revisions: registration, resolution, deactivation and garbage collection.

ECS registers an immutable revision (1, 2, 3 ...) for every RegisterTaskDefinition call and never
reuses a number. Here a ``TaskDefinition`` object is named after its family, and every spec change
(a new ``metadata.generation``) registers a revision, stored as an ``apps/v1`` ControllerRevision:

- named ``{family}-{revision}`` in the TaskDefinition's namespace, ``revision`` = N, ``data`` = the
  spec as JSON with the ECS (camelCase) field names;
- labelled with the family, the revision number, ``revision-status: ACTIVE|INACTIVE`` and
  ``app.kubernetes.io/managed-by: ecs-operator``; annotated with the ``family:revision`` and the
  uid and generation of the TaskDefinition that registered it;
- **not** owned by the TaskDefinition, because a revision outlives it: ECS lets tasks and services
  that reference a revision keep using it after the family is deleted (the revision is INACTIVE).

Rules (all functions below work on plain data, so they are the same on every restart):

- A revision per (TaskDefinition uid, generation): registering is idempotent across operator
  restarts, and deleting and recreating a TaskDefinition registers a new revision even when the
  spec is identical (as a new RegisterTaskDefinition call would).
- The next number is the highest stored number + 1. Garbage collection never removes the newest
  revision, so numbers are never reused.
- A revision is ACTIVE while the TaskDefinition that registered it exists (same uid). When it is
  deleted (or replaced by a new object of the same name) its revisions become INACTIVE. Earlier
  revisions of a live TaskDefinition stay ACTIVE, as in ECS.
- ``family`` means the latest ACTIVE revision; ``family:N`` (or the ECS ARN
  ``arn:aws:ecs:REGION:ACCOUNT:task-definition/family:N``) pins revision N, which may be INACTIVE
  for an existing user (a service scaling its deployment) but not for a new reference (a new Task,
  a new deployment).
- History is bounded: beyond the newest ``keep`` revisions, revisions nobody references are
  collected.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ecs_operator.core import events, labels
from ecs_operator.models.common import Condition
from ecs_operator.models.taskdefinition import (
    TaskDefinitionSpec,
    format_task_definition_ref,
    parse_task_definition_ref,
)

RevisionStatus = Literal["ACTIVE", "INACTIVE"]

DEFAULT_KEPT_REVISIONS: Final = 10


@dataclass(frozen=True)
class RevisionRecord:
    """One stored revision, as read back from its ControllerRevision."""

    family: str
    revision: int
    status: RevisionStatus
    source_uid: str
    source_generation: int
    spec: Mapping[str, Any]

    @property
    def reference(self) -> str:
        """``family:revision``, as ECS names a revision."""
        return format_task_definition_ref(self.family, self.revision)


@dataclass(frozen=True)
class Resolution:
    """The outcome of resolving a task definition reference: a revision or an error text."""

    record: RevisionRecord | None = None
    error: str | None = None


@dataclass(frozen=True)
class Revision:
    """A stored revision with its spec validated."""

    record: RevisionRecord
    spec: TaskDefinitionSpec


@dataclass(frozen=True)
class ResolvedRevision:
    """What a reference resolves to for its user: the revision, or why there is none
    (``error``, as ``resolve_reference`` says; ``rejection`` when the family's TaskDefinition
    exists and is refused, which says more than that it has no revision yet)."""

    revision: Revision | None = None
    error: str | None = None
    rejection: str | None = None

    @property
    def reason(self) -> str | None:
        """Why nothing resolves, the most telling first: the refusal of the family's
        TaskDefinition (``rejection``), else the resolution ``error``; None when it resolves."""
        return self.rejection or self.error


def controller_revision_name(family: str, revision: int) -> str:
    return f"{family}-{revision}"


def controller_revision_manifest(
    td_name: str,
    namespace: str,
    uid: str,
    generation: int,
    revision: int,
    spec_json: Mapping[str, Any],
) -> dict[str, Any]:
    """The ControllerRevision that stores revision ``revision`` of family ``td_name``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": controller_revision_name(td_name, revision),
            "namespace": namespace,
            "labels": {
                labels.FAMILY_LABEL: labels.label_value(td_name),
                labels.REVISION_LABEL: str(revision),
                labels.REVISION_STATUS_LABEL: labels.ACTIVE,
                labels.MANAGED_BY_LABEL: labels.MANAGED_BY,
            },
            "annotations": {
                labels.TASK_DEFINITION_ANNOTATION: format_task_definition_ref(td_name, revision),
                labels.SOURCE_UID_ANNOTATION: uid,
                labels.SOURCE_GENERATION_ANNOTATION: str(generation),
            },
        },
        "data": dict(spec_json),
        "revision": revision,
    }


def family_selector(family: str) -> str:
    """The label selector listing every stored revision of ``family``."""
    return (
        f"{labels.FAMILY_LABEL}={labels.label_value(family)},"
        f"{labels.MANAGED_BY_LABEL}={labels.MANAGED_BY}"
    )


def status_patch(status: RevisionStatus) -> dict[str, Any]:
    """The metadata merge patch that marks a stored revision ACTIVE or INACTIVE."""
    return {"metadata": {"labels": {labels.REVISION_STATUS_LABEL: status}}}


def annotated_family(obj: Mapping[str, Any]) -> str | None:
    """The family a ControllerRevision's task-definition annotation names, if any."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    reference = annotations.get(labels.TASK_DEFINITION_ANNOTATION, "")
    return reference.rpartition(":")[0] or None


def is_family_revision(obj: Mapping[str, Any], family: str) -> bool:
    """Whether ControllerRevision `obj` is one this operator wrote for `family`: labelled for
    it, managed by the operator, and readable as a revision of that family."""
    object_labels = (obj.get("metadata") or {}).get("labels") or {}
    if object_labels.get(labels.FAMILY_LABEL) != labels.label_value(family):
        return False
    if object_labels.get(labels.MANAGED_BY_LABEL) != labels.MANAGED_BY:
        return False
    try:
        record = revision_record_from_object(obj)
    except ValueError:
        return False
    return record.family == family


def revision_record_from_object(obj: Mapping[str, Any]) -> RevisionRecord:
    """Parse a ControllerRevision written by ``controller_revision_manifest``.

    Raises ``ValueError`` naming the object and the field when it is not one.
    """
    metadata = obj.get("metadata") or {}
    name = metadata.get("name", "<unnamed>")
    annotations = metadata.get("annotations") or {}
    object_labels = metadata.get("labels") or {}

    def fail(field: str, problem: str) -> ValueError:
        return ValueError(f"ControllerRevision {name}: {field} {problem}")

    reference = annotations.get(labels.TASK_DEFINITION_ANNOTATION, "")
    family, _, number = reference.rpartition(":")
    revision = obj.get("revision")
    if not family or not isinstance(revision, int) or number != str(revision):
        raise fail(
            f"metadata.annotations[{labels.TASK_DEFINITION_ANNOTATION}]",
            f"must be FAMILY:REVISION matching revision {revision!r}; got {reference!r}",
        )
    status = object_labels.get(labels.REVISION_STATUS_LABEL)
    if status not in (labels.ACTIVE, labels.INACTIVE):
        raise fail(
            f"metadata.labels[{labels.REVISION_STATUS_LABEL}]",
            f"must be ACTIVE or INACTIVE; got {status!r}",
        )
    source_uid = annotations.get(labels.SOURCE_UID_ANNOTATION)
    if not source_uid:
        raise fail(f"metadata.annotations[{labels.SOURCE_UID_ANNOTATION}]", "is missing")
    generation = annotations.get(labels.SOURCE_GENERATION_ANNOTATION, "")
    if not generation.isdigit():
        raise fail(
            f"metadata.annotations[{labels.SOURCE_GENERATION_ANNOTATION}]",
            f"must be a generation number; got {generation!r}",
        )
    data = obj.get("data")
    if not isinstance(data, Mapping):
        raise fail("data", "must be the task definition spec as a JSON object")
    return RevisionRecord(
        family=family,
        revision=revision,
        status="ACTIVE" if status == labels.ACTIVE else "INACTIVE",
        source_uid=source_uid,
        source_generation=int(generation),
        spec=data,
    )


def needs_new_revision(
    td_uid: str, td_generation: int, revisions: Iterable[RevisionRecord]
) -> bool:
    """True when no revision was registered yet from this TaskDefinition object and generation."""
    return not any(
        record.source_uid == td_uid and record.source_generation == td_generation
        for record in revisions
    )


def next_revision_number(revisions: Iterable[RevisionRecord], taken: Iterable[int] = ()) -> int:
    """The number the next registration gets: one more than any stored number (1 for the
    first), skipping the `taken` numbers whose ControllerRevision name another object holds."""
    number = max((record.revision for record in revisions), default=0) + 1
    unusable = set(taken)
    while number in unusable:
        number += 1
    return number


def current_revision(td_uid: str, revisions: Iterable[RevisionRecord]) -> RevisionRecord | None:
    """The newest revision registered by this TaskDefinition object, if any yet."""
    own = [record for record in revisions if record.source_uid == td_uid]
    return max(own, key=lambda record: record.revision, default=None)


def _is_active(record: RevisionRecord, live_uid: str | None) -> bool:
    # Until the operator has relabelled them, revisions of a deleted TaskDefinition are still
    # labelled ACTIVE; the live uid is the authority, so resolution never lags behind a delete.
    return record.status == "ACTIVE" and record.source_uid == live_uid


def resolve_reference(
    ref: str,
    revisions: Iterable[RevisionRecord],
    live_uid: str | None,
    *,
    for_new_task: bool,
) -> Resolution:
    """Resolve ``ref`` against the stored revisions of its family.

    ``live_uid`` is the uid of the TaskDefinition object of that family, None when there is none.
    ``for_new_task`` is True for a new reference (a Task being started, a new service
    deployment), which ECS refuses for an INACTIVE revision; False for an existing user, such as
    a service deployment that keeps scaling on its revision.
    """
    try:
        family, number = parse_task_definition_ref(ref)
    except ValueError as error:
        return Resolution(error=str(error))
    own = sorted(
        (record for record in revisions if record.family == family),
        key=lambda record: record.revision,
    )
    if number is None:
        active = [record for record in own if _is_active(record, live_uid)]
        if active:
            return Resolution(record=active[-1])
        if live_uid is not None:
            return Resolution(error=events.family_pending(family))
        if own:
            return Resolution(error=events.family_deleted(family))
        return Resolution(error=events.family_missing(family))
    record = next((record for record in own if record.revision == number), None)
    if record is None:
        latest = own[-1].reference if own else None
        return Resolution(error=events.revision_missing(f"{family}:{number}", latest))
    if for_new_task and not _is_active(record, live_uid):
        return Resolution(error=events.revision_inactive(record.reference))
    return Resolution(record=record)


def rejection(family: str, accepted: Condition | None) -> str | None:
    """Why no revision of `family` resolves when its TaskDefinition is refused (``accepted``:
    its Accepted condition): more telling than that it has no revision yet."""
    if accepted is None or accepted.status != "False":
        return None
    return events.family_not_accepted(family, accepted.message)


def names_revision(ref: str, revision: str) -> bool:
    """Whether ``ref`` (``family``, ``family:N`` or an ARN) can mean ``revision``
    (``family:N``): the same family and, when ``ref`` pins a number, the same number. A service
    whose reference no longer resolves (its family deleted) still names the revision it runs,
    so it needs no new deployment."""
    try:
        family, number = parse_task_definition_ref(ref)
        running_family, running_number = parse_task_definition_ref(revision)
    except ValueError:
        return False
    return family == running_family and number in (None, running_number)


def is_new_reference(resolved: str | None, launched_by_service: bool) -> bool:
    """Whether a Task's reference is a new one (refused for an INACTIVE revision): not when the
    Task already resolved it, nor when a Service's deployment launched it, since the deployment
    resolved the revision when it started and ECS lets a service keep launching (replacements,
    scale-out) on its INACTIVE revision."""
    return resolved is None and not launched_by_service


def revisions_to_deactivate(revisions: Iterable[RevisionRecord], live_uid: str | None) -> list[int]:
    """Revisions still labelled ACTIVE whose TaskDefinition object is gone (deleted, or replaced
    by a new object with another uid); ``live_uid`` is None when there is no TaskDefinition."""
    return sorted(
        record.revision
        for record in revisions
        if record.status == "ACTIVE" and record.source_uid != live_uid
    )


def revisions_to_collect(
    revisions: Iterable[RevisionRecord],
    referenced: set[int],
    keep: int = DEFAULT_KEPT_REVISIONS,
) -> list[int]:
    """Revision numbers to delete: older than the newest ``keep`` (at least 1, so the newest
    number is always kept and never reused) and referenced by no task or deployment."""
    numbers = sorted((record.revision for record in revisions), reverse=True)
    kept = max(keep, 1)
    return sorted(number for number in numbers[kept:] if number not in referenced)
