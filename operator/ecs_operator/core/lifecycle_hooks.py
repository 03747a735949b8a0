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

AWS_LAMBDA hooks (ecs-deployments.md §4.1): there is no Lambda, so ``hookTargetArn`` is a URL
the operator POSTs ECS's invocation payload to (``payload``; the controller makes the call,
``calls_due`` says which). A run (``hookId`` ``ecs-hook-DIGITS-N``) starts IN_PROGRESS, due at
once; each call's reply moves it (``after_reply``): SUCCEEDED and FAILED end it; IN_PROGRESS
calls again after ``callBackDelay`` seconds (default 30), the answer's ``hookDetails`` merged
into the run's and sent on its next call; a missing or invalid ``hookStatus``, or a call that
failed (unreachable, not 2xx, not JSON), is FAILED, as a Lambda function error is. A run
with no SUCCEEDED or FAILED by ``expiresAt`` is TIMED_OUT. Everything lives in the run's
detail (status, invocation count, next call, merged hookDetails), so an operator restart
calls where it left off. *Decision*: ``executionId`` is the ``hookId``, the same on each call
of a run, so a target can tell the runs apart and recognise a call repeated after a restart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from ecs_operator.core import service_revisions
from ecs_operator.core.strategies import HOOK_STAGES, Stage
from ecs_operator.models.service import (
    MAX_HOOK_DETAILS,
    ContinueServiceDeployment,
    DeploymentConfiguration,
    DeploymentLifecycleHook,
    HookAction,
    HookTargetType,
    LifecycleHookDetail,
    ServiceSpec,
    ServiceStatus,
)

DEFAULT_TIMEOUT_MINUTES: Final = 1440
DEFAULT_TIMEOUT_ACTION: Final[HookAction] = "ROLLBACK"
PASSED: Final = frozenset({"SUCCEEDED", "TIMED_OUT"})  # TIMED_OUT that did not roll back
WAITING: Final = frozenset({"AWAITING_ACTION", "IN_PROGRESS"})
DEFAULT_CALL_BACK_SECONDS: Final = 30.0
# A Lambda invocation lasts at most 15 minutes; a longer callBackDelay is taken as that.
MAX_CALL_BACK_SECONDS: Final = 900.0
_ID_PREFIX: Final[dict[HookTargetType, str]] = {"PAUSE": "ecs-pause", "AWS_LAMBDA": "ecs-hook"}
ANSWERS: Final = frozenset({"SUCCEEDED", "FAILED", "IN_PROGRESS"})


def hooks_at(
    configuration: DeploymentConfiguration | None, stage: str
) -> list[DeploymentLifecycleHook]:
    """The hooks (PAUSE and AWS_LAMBDA) that hold a deployment at ``stage``."""
    hooks = (configuration.lifecycle_hooks if configuration else None) or ()
    return [h for h in hooks if stage in h.lifecycle_stages]


def hook_id(deployment_id: str, number: int, target_type: HookTargetType = "PAUSE") -> str:
    return f"{_ID_PREFIX[target_type]}-{deployment_id.rpartition('/')[2]}-{number}"


def visit(details: Sequence[LifecycleHookDetail], stage: Stage) -> list[LifecycleHookDetail]:
    """The runs started when the deployment reached ``stage`` (this visit of it)."""
    return [d for d in details if d.lifecycle_stage == stage.name and d.started_at == stage.since]


def passable(
    configuration: DeploymentConfiguration | None,
    details: Sequence[LifecycleHookDetail],
    stage: Stage,
) -> bool:
    """Whether a deployment at hook stage ``stage`` may go on: no hook names it, or every run
    of this visit passed."""
    if not hooks_at(configuration, stage.name):
        return True
    runs = visit(details, stage)
    return bool(runs) and all(d.status in PASSED for d in runs)


def start_runs(
    configuration: DeploymentConfiguration | None,
    deployment_id: str,
    details: Sequence[LifecycleHookDetail],
    stage: Stage,
) -> list[LifecycleHookDetail]:
    """The new runs of the hooks at ``stage`` (none if this visit has them already): PAUSE
    ones await action, AWS_LAMBDA ones are in progress and due for their first call."""
    if visit(details, stage) or stage.name not in HOOK_STAGES:
        return []  # hooks at TEST_/PRODUCTION_TRAFFIC_SHIFT are not run (status.unsupported)
    first = max((_number(d.hook_id) for d in details), default=0) + 1
    runs = []
    for offset, hook in enumerate(hooks_at(configuration, stage.name)):
        timeout = hook.timeout_configuration
        minutes = (timeout.timeout_in_minutes if timeout else None) or DEFAULT_TIMEOUT_MINUTES
        target_type = hook.target_type or "AWS_LAMBDA"
        pause = target_type == "PAUSE"
        runs.append(
            LifecycleHookDetail(
                hook_id=hook_id(deployment_id, first + offset, target_type),
                target_type=target_type,
                target_arn=None if pause else hook.hook_target_arn,
                status="AWAITING_ACTION" if pause else "IN_PROGRESS",
                expires_at=stage.since + timedelta(minutes=minutes),
                timeout_action=(timeout.action if timeout else None) or DEFAULT_TIMEOUT_ACTION,
                lifecycle_stage=stage.name,
                started_at=stage.since,
                invocations=None if pause else 0,
                next_invocation_at=None if pause else stage.since,
            )
        )
    return runs


def bounded(details: Sequence[LifecycleHookDetail]) -> list[LifecycleHookDetail]:
    """``details`` within ``MAX_HOOK_DETAILS``: the oldest ended runs go first."""
    kept = list(details)
    while len(kept) > MAX_HOOK_DETAILS:
        oldest = next((d for d in kept if d.status not in WAITING), kept[0])
        kept.remove(oldest)
    return kept


def _number(hook: str) -> int:
    return int(hook.rpartition("-")[2])


@dataclass(frozen=True)
class HookCall:
    """A call of an AWS_LAMBDA run to make now: POST ``payload`` as JSON to ``url``."""

    hook_id: str
    url: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class HookReply:
    """What a call returned: the decoded JSON body of a 2xx answer, or why there is none
    (``error``: the call failed, a Lambda function error)."""

    answer: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Answered:
    """A run that ended in this plan, and whether it rolls the deployment back."""

    detail: LifecycleHookDetail
    rolls_back: bool


@dataclass(frozen=True)
class Answers:
    """The runs after the answers and timeouts, those that ended, and whether any changed."""

    details: list[LifecycleHookDetail]
    ended: list[Answered] = field(default_factory=list)
    changed: bool = False


def answer(
    details: Sequence[LifecycleHookDetail],
    request: ContinueServiceDeployment | None,
    now: datetime,
    replies: Mapping[str, HookReply] | None = None,
) -> Answers:
    """The runs after ``request`` (the spec's answer to PAUSE runs), ``replies`` (the calls of
    AWS_LAMBDA runs made for this plan, by hookId) and the timeouts due at ``now``."""
    updated: list[LifecycleHookDetail] = []
    ended: list[Answered] = []
    for detail in details:
        new = detail
        if detail.status == "AWAITING_ACTION" and request and request.hook_id == detail.hook_id:
            new = detail.model_copy(
                update={"status": "SUCCEEDED" if request.action == "CONTINUE" else "FAILED"}
            )
        elif detail.status == "IN_PROGRESS" and replies and detail.hook_id in replies:
            new = after_reply(detail, replies[detail.hook_id], now)
        if new.status in WAITING and now >= new.expires_at:
            new = new.model_copy(update={"status": "TIMED_OUT", "next_invocation_at": None})
        updated.append(new)
        if new.status != detail.status and new.status not in WAITING:
            rolls_back = new.status == "FAILED" or (
                new.status == "TIMED_OUT" and new.timeout_action == "ROLLBACK"
            )
            ended.append(Answered(new, rolls_back))
    return Answers(updated, ended, updated != list(details))


def after_reply(
    detail: LifecycleHookDetail, reply: HookReply, now: datetime
) -> LifecycleHookDetail:
    """An IN_PROGRESS AWS_LAMBDA run after one call's ``reply`` (ECS's hook response)."""
    calls = (detail.invocations or 0) + 1
    answer = reply.answer if isinstance(reply.answer, dict) else {}
    status = answer.get("hookStatus")
    problem = reply.error
    if problem is None and not isinstance(reply.answer, dict):
        problem = "the answer is not a JSON object"
    elif problem is None and status not in ANSWERS:
        problem = f"the answer's hookStatus {status!r} is not SUCCEEDED, FAILED or IN_PROGRESS"
    if problem is not None:
        return detail.model_copy(
            update={
                "status": "FAILED",
                "status_reason": problem[:1024],
                "invocations": calls,
                "next_invocation_at": None,
            }
        )
    merged = _merged(detail.hook_details, answer.get("hookDetails"))
    delay = call_back_seconds(answer.get("callBackDelay"))
    return detail.model_copy(
        update={
            "status": status,
            "status_reason": f"answered {status}",
            "invocations": calls,
            "hook_details": merged,
            "next_invocation_at": (
                now + timedelta(seconds=delay) if status == "IN_PROGRESS" else None
            ),
        }
    )


def call_back_seconds(value: object) -> float:
    """An answer's callBackDelay: default 30 s when absent or not a number of seconds >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return DEFAULT_CALL_BACK_SECONDS
    if value < 0:
        return DEFAULT_CALL_BACK_SECONDS
    return min(float(value), MAX_CALL_BACK_SECONDS)


def _merged(kept: Any, returned: Any) -> Any:
    """Runtime hookDetails: a returned object is merged over the kept one (key by key)."""
    if returned is None:
        return kept
    if isinstance(kept, dict) and isinstance(returned, dict):
        return {**kept, **returned}
    return returned


def next_wakeup(details: Sequence[LifecycleHookDetail], now: datetime) -> float | None:
    """Seconds until a waiting run expires or an in-progress one is due for its next call
    (None: no run waits)."""
    moments = [d.expires_at for d in details if d.status in WAITING]
    moments += [
        d.next_invocation_at
        for d in details
        if d.status == "IN_PROGRESS" and d.next_invocation_at is not None
    ]
    if not moments:
        return None
    return max(0.0, (min(moments) - now).total_seconds())


def calls_due(
    namespace: str, service: str, spec: ServiceSpec, status: ServiceStatus | None, now: datetime
) -> list[HookCall]:
    """The calls of the PRIMARY deployment's AWS_LAMBDA runs due at ``now`` (each in
    progress, its next call due, not yet expired)."""
    primary = next(
        (d for d in (status.deployments if status else None) or () if d.status == "PRIMARY"), None
    )
    if primary is None or primary.rollout_state != "IN_PROGRESS":
        return []
    calls = []
    for detail in primary.lifecycle_hook_details or ():
        due = detail.next_invocation_at is not None and detail.next_invocation_at <= now
        if detail.status != "IN_PROGRESS" or not due or now >= detail.expires_at:
            continue
        if detail.target_arn is None:
            continue
        weights = {}
        if detail.lifecycle_stage == "PRE_PRODUCTION_TRAFFIC_SHIFT":
            weights = _production_weights(namespace, service, status, primary.id)
        calls.append(
            HookCall(
                detail.hook_id,
                detail.target_arn,
                payload(namespace, service, primary.id, detail, spec, weights),
            )
        )
    return calls


def _production_weights(
    namespace: str, service: str, status: ServiceStatus | None, green_id: str
) -> dict[str, float]:
    """The production weights before a step: green's share, blue (the other deployment with
    tasks) the rest."""
    deployments = (status.deployments if status else None) or ()
    green = next(d for d in deployments if d.id == green_id)
    weight = green.production_traffic_weight or 0.0
    weights = {service_revisions.service_revision_arn(namespace, service, green_id): weight}
    blue = next((d for d in deployments if d.status == "ACTIVE"), None)
    if blue is not None:
        weights[service_revisions.service_revision_arn(namespace, service, blue.id)] = (
            100.0 - weight
        )
    return weights


def payload(
    namespace: str,
    service: str,
    deployment_id: str,
    detail: LifecycleHookDetail,
    spec: ServiceSpec,
    production_weights: Mapping[str, float],
) -> dict[str, Any]:
    """ECS's invocation payload for a call of ``detail`` (ecs-deployments.md §4.1): its
    hookDetails are the hook's configured ones with the run's returned ones merged over."""
    configured = next(
        (
            h.hook_details
            for h in hooks_at(spec.deployment_configuration, detail.lifecycle_stage)
            if h.hook_target_arn == detail.target_arn
        ),
        None,
    )
    return {
        "executionId": detail.hook_id,
        "lifecycleStage": detail.lifecycle_stage,
        "resourceArn": service_revisions.service_deployment_arn(namespace, service, deployment_id),
        "executionDetails": {
            "serviceArn": service_revisions.service_arn(namespace, service),
            "targetServiceRevisionArn": service_revisions.service_revision_arn(
                namespace, service, deployment_id
            ),
            "testTrafficWeights": {},
            "productionTrafficWeights": dict(production_weights),
        },
        "hookDetails": _merged(configured, detail.hook_details),
    }
