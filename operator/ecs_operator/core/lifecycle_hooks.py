"""PAUSE lifecycle hooks of BLUE_GREEN, LINEAR and CANARY deployments (ecs-deployments.md
§4.2, §4.3): pure decisions on a deployment's ``lifecycleHookDetails``.

When a deployment reaches a hook stage (``core.strategies.HOOK_STAGES``) that PAUSE hooks name,
each of them gets a run (``start_runs``): ``hookId`` ``ecs-pause-DIGITS-N`` (the deployment's
digits and the run's number in it, so a plan recomputed after a restart mints the same one),
AWAITING_ACTION, ``expiresAt`` = now + ``timeoutInMinutes`` (default 1440), ``timeoutAction``
(default ROLLBACK). The stage passes once every run of that visit (the runs of the stage
started when the deployment reached it: LINEAR's PRE_PRODUCTION_TRAFFIC_SHIFT before each
step gets fresh runs) SUCCEEDED or TIMED_OUT with CONTINUE (``passable``).

A run is answered by ``spec.continueServiceDeployment {hookId, action}`` (ECS
ContinueServiceDeployment as a declaration; ``answer``): CONTINUE makes it SUCCEEDED, ROLLBACK
FAILED, and a FAILED run rolls the deployment back. Only a run AWAITING_ACTION is answered; the
same field naming it already answered does nothing. *Decision*: the field is read when the
operator looks, so an answer present at the expiry wins over the timeout (the operator may have
been down when it was given); past ``expiresAt`` with no answer, the run is TIMED_OUT and its
``timeoutAction`` applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ecs_operator.core.strategies import Stage
from ecs_operator.models.service import (
    MAX_HOOK_DETAILS,
    ContinueServiceDeployment,
    DeploymentConfiguration,
    DeploymentLifecycleHook,
    HookAction,
    LifecycleHookDetail,
)

DEFAULT_TIMEOUT_MINUTES: Final = 1440
DEFAULT_TIMEOUT_ACTION: Final[HookAction] = "ROLLBACK"
PASSED: Final = frozenset({"SUCCEEDED", "TIMED_OUT"})  # TIMED_OUT that did not roll back


def pause_hooks_at(
    configuration: DeploymentConfiguration | None, stage: str
) -> list[DeploymentLifecycleHook]:
    """The PAUSE hooks that hold a deployment at ``stage``."""
    hooks = (configuration.lifecycle_hooks if configuration else None) or ()
    return [h for h in hooks if h.target_type == "PAUSE" and stage in h.lifecycle_stages]


def hook_id(deployment_id: str, number: int) -> str:
    return f"ecs-pause-{deployment_id.rpartition('/')[2]}-{number}"


def visit(details: Sequence[LifecycleHookDetail], stage: Stage) -> list[LifecycleHookDetail]:
    """The runs started when the deployment reached ``stage`` (this visit of it)."""
    return [d for d in details if d.lifecycle_stage == stage.name and d.started_at == stage.since]


def passable(
    configuration: DeploymentConfiguration | None,
    details: Sequence[LifecycleHookDetail],
    stage: Stage,
) -> bool:
    """Whether a deployment at hook stage ``stage`` may go on: no PAUSE hook names it, or every
    run of this visit passed."""
    if not pause_hooks_at(configuration, stage.name):
        return True
    runs = visit(details, stage)
    return bool(runs) and all(d.status in PASSED for d in runs)


def start_runs(
    configuration: DeploymentConfiguration | None,
    deployment_id: str,
    details: Sequence[LifecycleHookDetail],
    stage: Stage,
) -> list[LifecycleHookDetail]:
    """The new runs of the PAUSE hooks at ``stage`` (none if this visit has them already)."""
    if visit(details, stage):
        return []
    first = max((_number(d.hook_id) for d in details), default=0) + 1
    runs = []
    for offset, hook in enumerate(pause_hooks_at(configuration, stage.name)):
        timeout = hook.timeout_configuration
        minutes = (timeout.timeout_in_minutes if timeout else None) or DEFAULT_TIMEOUT_MINUTES
        runs.append(
            LifecycleHookDetail(
                hook_id=hook_id(deployment_id, first + offset),
                target_type="PAUSE",
                status="AWAITING_ACTION",
                expires_at=stage.since + timedelta(minutes=minutes),
                timeout_action=(timeout.action if timeout else None) or DEFAULT_TIMEOUT_ACTION,
                lifecycle_stage=stage.name,
                started_at=stage.since,
            )
        )
    return runs


def bounded(details: Sequence[LifecycleHookDetail]) -> list[LifecycleHookDetail]:
    """``details`` within ``MAX_HOOK_DETAILS``: the oldest answered runs go first."""
    kept = list(details)
    while len(kept) > MAX_HOOK_DETAILS:
        oldest = next((d for d in kept if d.status != "AWAITING_ACTION"), kept[0])
        kept.remove(oldest)
    return kept


def _number(hook: str) -> int:
    return int(hook.rpartition("-")[2])


@dataclass(frozen=True)
class Answered:
    """A run that stopped awaiting in this plan, and whether it rolls the deployment back."""

    detail: LifecycleHookDetail
    rolls_back: bool


def answer(
    details: Sequence[LifecycleHookDetail],
    request: ContinueServiceDeployment | None,
    now: datetime,
) -> tuple[list[LifecycleHookDetail], list[Answered]]:
    """The runs after ``request`` (the spec's answer) and the timeouts due at ``now``, and
    those that changed."""
    updated: list[LifecycleHookDetail] = []
    answered: list[Answered] = []
    for detail in details:
        if detail.status != "AWAITING_ACTION":
            updated.append(detail)
            continue
        if request is not None and request.hook_id == detail.hook_id:
            status = "SUCCEEDED" if request.action == "CONTINUE" else "FAILED"
        elif now >= detail.expires_at:
            status = "TIMED_OUT"
        else:
            updated.append(detail)
            continue
        new = detail.model_copy(update={"status": status})
        rolls_back = status == "FAILED" or (
            status == "TIMED_OUT" and detail.timeout_action == "ROLLBACK"
        )
        updated.append(new)
        answered.append(Answered(new, rolls_back))
    return updated, answered


def next_expiry(details: Sequence[LifecycleHookDetail], now: datetime) -> float | None:
    """Seconds until the first run awaiting action expires (None: none awaits)."""
    waiting = [d.expires_at for d in details if d.status == "AWAITING_ACTION"]
    if not waiting:
        return None
    return max(0.0, (min(waiting) - now).total_seconds())
