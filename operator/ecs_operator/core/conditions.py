"""Kubernetes-style conditions: one place that decides when `lastTransitionTime` moves."""

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from ecs_operator.core.events import clip
from ecs_operator.models.common import MAX_CONDITION_MESSAGE_LENGTH, Condition


def set_condition(
    previous: Sequence[Condition] | None,
    kind: str,
    status: Literal["True", "False", "Unknown"],
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> Condition:
    """The condition `kind` as it should now read; its transition time only moves when the
    status flips, so recomputing an unchanged condition changes nothing (no status write).
    The message is made printable and fits the field, whatever text it quotes."""
    before = next((c for c in previous or () if c.type == kind), None)
    flipped = before is None or before.status != status
    return Condition(
        type=kind,
        status=status,
        observed_generation=generation,
        last_transition_time=now if flipped or before is None else before.last_transition_time,
        reason=reason,
        message=clip(message, MAX_CONDITION_MESSAGE_LENGTH),
    )
