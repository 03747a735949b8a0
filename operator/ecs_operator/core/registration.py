"""What one reconcile of a TaskDefinition family should do, as a plan over plain data.

The handler feeds in the TaskDefinition object (None once deleted), the family's stored
revisions and the revisions still referenced by Tasks; it applies the plan and writes nothing
when the plan says nothing changed (a converged family costs no API writes).
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ecs_operator.core import revisions
from ecs_operator.core.conditions import set_condition
from ecs_operator.core.events import NOT_HONOURED_PREFIX, REASON_UNSUPPORTED_FIELDS
from ecs_operator.core.revisions import RevisionRecord
from ecs_operator.core.security import SecurityPolicy
from ecs_operator.core.validation import (
    task_definition_problems,
    task_definition_unsupported,
    validation_problems,
)
from ecs_operator.models.common import Condition, UnsupportedField
from ecs_operator.models.taskdefinition import (
    RevisionSummary,
    TaskDefinition,
    TaskDefinitionStatus,
    format_task_definition_ref,
    is_wrapped,
)

ACCEPTED = "Accepted"
MAX_SUMMARISED_REVISIONS = 100
MAX_UNSUPPORTED = 100


@dataclass(frozen=True)
class StoredRevision:
    """A stored revision and when its ControllerRevision was created."""

    record: RevisionRecord
    registered_at: datetime


@dataclass(frozen=True)
class RegistrationPlan:
    register: dict[str, Any] | None = None  # the ControllerRevision to create
    deactivate: list[int] = field(default_factory=list)
    collect: list[int] = field(default_factory=list)
    status: dict[str, Any] | None = None  # the new status, None to leave it alone
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def plan_registration(
    body: Mapping[str, Any] | None,
    stored: Sequence[StoredRevision],
    referenced: set[int],
    policy: SecurityPolicy,
    now: datetime,
    taken: Collection[int] = (),
) -> RegistrationPlan:
    """`taken`: revision numbers whose ControllerRevision name another object holds (skipped)."""
    records = [s.record for s in stored]
    live_uid = str(body["metadata"]["uid"]) if body else None
    deactivate = revisions.revisions_to_deactivate(records, live_uid)
    collect = revisions.revisions_to_collect(records, referenced)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return RegistrationPlan(deactivate=deactivate, collect=collect)

    metadata = body["metadata"]
    generation = int(metadata.get("generation") or 1)
    previous = TaskDefinitionStatus.model_validate(body.get("status") or {})
    try:
        definition = TaskDefinition.model_validate(body)
    except ValidationError as error:
        problems = validation_problems(error, wrapped=is_wrapped(body.get("spec")))
    else:
        problems = "; ".join(str(v) for v in task_definition_problems(definition.spec, policy))
    if problems:
        status = previous.model_copy(
            update={
                "observed_generation": generation,
                "conditions": [
                    set_condition(
                        previous.conditions, ACCEPTED, "False", "Invalid", problems, generation, now
                    )
                ],
            }
        )
        return _plan(
            previous, status, deactivate, collect, None, [("Warning", "Invalid", problems)]
        )

    family = definition.family
    register = None
    summaries = {s.record.revision: (s.registered_at, s.record) for s in stored}
    latest = revisions.current_revision(live_uid or "", records)
    if revisions.needs_new_revision(live_uid or "", generation, records):
        number = revisions.next_revision_number(records, taken)
        register = revisions.controller_revision_manifest(
            family,
            str(metadata.get("namespace") or ""),
            live_uid or "",
            generation,
            number,
            definition.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        )
        latest_number, registered_at = number, now
    else:
        assert latest is not None  # needs_new_revision is False only when one exists
        latest_number, registered_at = latest.revision, summaries[latest.revision][0]
    reference = format_task_definition_ref(family, latest_number)
    history = [
        RevisionSummary(
            revision=number,
            registered_at=when,
            status="INACTIVE" if number in deactivate else record.status,
        )
        for number, (when, record) in sorted(summaries.items())
        if number not in collect
    ]
    if register is not None:
        history.append(RevisionSummary(revision=latest_number, registered_at=now, status="ACTIVE"))
    unsupported = task_definition_unsupported(definition.spec)
    accepted_message = f"registered as revision {reference}"
    if unsupported:
        accepted_message += "; " + NOT_HONOURED_PREFIX + unsupported_text(unsupported)
    status = TaskDefinitionStatus(
        revision=latest_number,
        task_definition_arn=reference,
        registered_at=registered_at,
        status="ACTIVE",
        revisions=history[-MAX_SUMMARISED_REVISIONS:],
        observed_generation=generation,
        conditions=[
            set_condition(
                previous.conditions,
                ACCEPTED,
                "True",
                "RegisteredWithUnsupportedFields" if unsupported else "Registered",
                accepted_message,
                generation,
                now,
            )
        ],
        unsupported=unsupported[:MAX_UNSUPPORTED] or None,
    )
    events: list[tuple[str, str, str]] = []
    if register is not None:
        events.append(("Normal", "Registered", f"registered task definition {reference}"))
        if unsupported:
            events.append(("Warning", REASON_UNSUPPORTED_FIELDS, accepted_message))
    return _plan(previous, status, deactivate, collect, register, events)


def _plan(
    previous: TaskDefinitionStatus,
    status: TaskDefinitionStatus,
    deactivate: list[int],
    collect: list[int],
    register: dict[str, Any] | None,
    events: list[tuple[str, str, str]],
) -> RegistrationPlan:
    changed = status != previous
    return RegistrationPlan(
        register=register,
        deactivate=deactivate,
        collect=collect,
        status=status.model_dump(mode="json", by_alias=True, exclude_none=True)
        if changed
        else None,
        events=events if changed else [],
    )


def unsupported_text(unsupported: Sequence[UnsupportedField]) -> str:
    """One line naming what is accepted but not honoured, and why."""
    return "; ".join(f"{u.field} ({u.reason})" for u in unsupported)


def accepted_condition(status: Mapping[str, Any] | None) -> Condition | None:
    """The TaskDefinition's Accepted condition, if it has one."""
    parsed = TaskDefinitionStatus.model_validate(status or {})
    return next((c for c in parsed.conditions or () if c.type == ACCEPTED), None)
