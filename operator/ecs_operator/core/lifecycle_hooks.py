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

AWS_LAMBDA hooks also run at the traffic stages (``strategies.TRAFFIC_HOOK_STAGES``):
TEST_TRAFFIC_SHIFT once, PRODUCTION_TRAFFIC_SHIFT once per traffic step (BLUE_GREEN's one step,
each LINEAR or CANARY step: a fresh run each). *Decision*: a run starts once the stage's traffic
is in place, its timeout counting from then, and the stage waits for it as a hook stage does.
The payload's weights are those of the stage: ``testTrafficWeights`` green 100 (blue 0) at
TEST_TRAFFIC_SHIFT, ``productionTrafficWeights`` the step's at PRODUCTION_TRAFFIC_SHIFT (the
current ones before it at PRE_PRODUCTION_TRAFFIC_SHIFT), empty elsewhere.

A rollback has no stage of its own: ECS calls the traffic stages' hooks again as the weights
move back to blue (ecs-deployments.md §4.1). When a staged deployment rolls back (whatever the
cause), each AWS_LAMBDA hook at a traffic stage it had reached (``rollback_stages``:
TEST_TRAFFIC_SHIFT once the service has test traffic and the deployment got that far,
PRODUCTION_TRAFFIC_SHIFT once it got there or green had a production share) gets one fresh run
(``rollback_runs``, ``rollback`` set) in the failed deployment's ``lifecycleHookDetails``, its
timeout counting from the rollback's start. *Decisions*: its first call is due once its own
stage's traffic is back (``release``): PRODUCTION_TRAFFIC_SHIFT's once the load balancers carry
production on blue again, TEST_TRAFFIC_SHIFT's once the test LoadBalancers no longer register
green (``load_balancing.test_traffic_withdrawn``); only the run waits, never the rollback. The
payload's ``targetServiceRevisionArn`` still names green, ``productionTrafficWeights`` are green
0 and the revision rolled back to 100, and a TEST_TRAFFIC_SHIFT run gets the same
``testTrafficWeights``.
It is called on as any run (IN_PROGRESS after callBackDelay, until its timeout), but its end
(SUCCEEDED, FAILED, TIMED_OUT, whatever the action) is only recorded and told: the rollback
never waits for it, nor does its answer change anything (blue already serves). The deployment
rolled back stays listed while such a run waits (so a restart calls on), and is dropped once
its service deployment recorded how they ended.

An AWS_LAMBDA hook may instead name a task definition (``task-definition/FAMILY[:REVISION]`` or
its ECS ARN): its run is one standalone Task (``hook_task_manifest``: named after the hookId,
so creating it again after a restart meets the one that exists; owned by the Service; the
payload in ``ECS_LIFECYCLE_HOOK_PAYLOAD``), started when the run is (``task_runs_due``), then
watched (``task_reply``): its essential containers all exiting 0 is SUCCEEDED, any other stop
FAILED. It is not polled: the Task's changes wake the Service. A run that times out (whatever
its action) stops its Task (``timed_out_tasks``; ``service_planning.hook_task_stops``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, get_args

from ecs_operator.core import labels, service_revisions
from ecs_operator.core.strategies import FULL, HOOK_STAGES, TRAFFIC_HOOK_STAGES, Stage
from ecs_operator.models.service import (
    HOOK_TASK_PATTERN,
    MAX_HOOK_DETAILS,
    ContinueServiceDeployment,
    DeploymentConfiguration,
    DeploymentLifecycleHook,
    HookAction,
    HookTargetType,
    LifecycleHookDetail,
    LifecycleStage,
    ServiceSpec,
    ServiceStatus,
)
from ecs_operator.models.task import Task

DEFAULT_TIMEOUT_MINUTES: Final = 1440
DEFAULT_TIMEOUT_ACTION: Final[HookAction] = "ROLLBACK"
PASSED: Final = frozenset({"SUCCEEDED", "TIMED_OUT"})  # TIMED_OUT that did not roll back
WAITING: Final = frozenset({"AWAITING_ACTION", "IN_PROGRESS"})
DEFAULT_CALL_BACK_SECONDS: Final = 30.0
# A Lambda invocation lasts at most 15 minutes; a longer callBackDelay is taken as that.
MAX_CALL_BACK_SECONDS: Final = 900.0
_ID_PREFIX: Final[dict[HookTargetType, str]] = {"PAUSE": "ecs-pause", "AWS_LAMBDA": "ecs-hook"}
ANSWERS: Final = frozenset({"SUCCEEDED", "FAILED", "IN_PROGRESS"})
PAYLOAD_VARIABLE: Final = "ECS_LIFECYCLE_HOOK_PAYLOAD"
_TASK_TARGET: Final = re.compile(HOOK_TASK_PATTERN)
_STAGE_ORDER: Final[tuple[str, ...]] = get_args(LifecycleStage)


def task_definition_of(target_arn: str | None) -> str | None:
    """``FAMILY[:REVISION]`` when ``target_arn`` names a task definition (None: a URL)."""
    match = _TASK_TARGET.match(target_arn or "")
    return match.group(2) if match else None


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
    started: datetime | None = None,
) -> list[LifecycleHookDetail]:
    """The new runs of the hooks at ``stage`` (none if this visit has them already): PAUSE
    ones await action, AWS_LAMBDA ones are in progress and due for their first call. Their
    timeouts count from ``started`` (default: the stage's start); a traffic stage's hooks
    start once its traffic is in place, later than the stage."""
    if visit(details, stage) or stage.name not in HOOK_STAGES | TRAFFIC_HOOK_STAGES:
        return []
    start = started or stage.since
    first = _next_number(details)
    return [
        _run(
            hook,
            hook_id(deployment_id, first + offset, hook.target_type or "AWS_LAMBDA"),
            stage,
            start,
        )
        for offset, hook in enumerate(hooks_at(configuration, stage.name))
    ]


def _next_number(details: Sequence[LifecycleHookDetail]) -> int:
    return max((_number(d.hook_id) for d in details), default=0) + 1


def _expiry(hook: DeploymentLifecycleHook, start: datetime) -> datetime:
    timeout = hook.timeout_configuration
    minutes = (timeout.timeout_in_minutes if timeout else None) or DEFAULT_TIMEOUT_MINUTES
    return start + timedelta(minutes=minutes)


def _run(
    hook: DeploymentLifecycleHook,
    run_id: str,
    stage: Stage,
    start: datetime,
    rollback: bool = False,
) -> LifecycleHookDetail:
    """A new run of ``hook`` at ``stage``, its timeout counting from ``start``; an AWS_LAMBDA
    one is due then, unless it is a ``rollback`` run (``release``)."""
    timeout = hook.timeout_configuration
    target_type = hook.target_type or "AWS_LAMBDA"
    pause = target_type == "PAUSE"
    return LifecycleHookDetail(
        hook_id=run_id,
        target_type=target_type,
        target_arn=None if pause else hook.hook_target_arn,
        status="AWAITING_ACTION" if pause else "IN_PROGRESS",
        expires_at=_expiry(hook, start),
        timeout_action=(timeout.action if timeout else None) or DEFAULT_TIMEOUT_ACTION,
        lifecycle_stage=stage.name,
        started_at=stage.since,  # the visit it belongs to
        invocations=None if pause else 0,
        next_invocation_at=None if pause or rollback else start,
        rollback=rollback or None,
    )


def rollback_stages(
    stage: str | None, weight: float | None, test_traffic: bool
) -> list[LifecycleStage]:
    """The traffic stages a deployment failing at ``stage`` (green's production ``weight``) had
    reached, whose hooks its rollback calls again: TEST_TRAFFIC_SHIFT from that stage on when
    the service has test traffic, PRODUCTION_TRAFFIC_SHIFT from that stage on or once green had
    a production share (a LINEAR or CANARY deployment failing before a later step)."""
    if stage is None:
        return []
    reached = _STAGE_ORDER.index(stage)
    found: list[LifecycleStage] = []
    if test_traffic and reached >= _STAGE_ORDER.index("TEST_TRAFFIC_SHIFT"):
        found.append("TEST_TRAFFIC_SHIFT")
    if reached >= _STAGE_ORDER.index("PRODUCTION_TRAFFIC_SHIFT") or (weight or 0.0) > 0:
        found.append("PRODUCTION_TRAFFIC_SHIFT")
    return found


def rollback_runs(
    configuration: DeploymentConfiguration | None,
    deployment_id: str,
    details: Sequence[LifecycleHookDetail],
    stages: Sequence[LifecycleStage],
    now: datetime,
) -> list[LifecycleHookDetail]:
    """The runs of a rollback that begins at ``now``: one fresh run of each AWS_LAMBDA hook at
    each of ``stages`` (``rollback_stages``), in progress, its timeout counting from ``now``,
    its first call due once production is back on the previous revision (``release``)."""
    first = _next_number(details)
    hooks = [
        (stage, hook)
        for stage in stages
        for hook in hooks_at(configuration, stage)
        if hook.target_type != "PAUSE"
    ]
    return [
        _run(
            hook,
            hook_id(deployment_id, first + offset, "AWS_LAMBDA"),
            Stage(stage, 0.0, now),
            now,
            rollback=True,
        )
        for offset, (stage, hook) in enumerate(hooks)
    ]


def release(
    details: Sequence[LifecycleHookDetail], now: datetime, stages: Collection[str]
) -> list[LifecycleHookDetail]:
    """``details`` with the rollback runs at ``stages`` (those whose traffic is back on the
    previous revision) not yet called due at ``now``."""
    return [
        d.model_copy(update={"next_invocation_at": now})
        if _unreleased(d) and d.lifecycle_stage in stages
        else d
        for d in details
    ]


def _unreleased(detail: LifecycleHookDetail) -> bool:
    return (
        bool(detail.rollback)
        and detail.status == "IN_PROGRESS"
        and not detail.invocations
        and detail.next_invocation_at is None
    )


def rollback_waiting(details: Sequence[LifecycleHookDetail] | None) -> bool:
    """Whether a rollback run of ``details`` has not ended yet."""
    return any(d.rollback and d.status in WAITING for d in details or ())


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
    (``error``: the call failed, a Lambda function error). A task target's replies say what
    its Task did: ``counted`` is False for its end (one run, one invocation), ``reason`` is
    the run's statusReason."""

    answer: Any = None
    error: str | None = None
    counted: bool = True
    reason: str | None = None


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
    *,
    rollback_only: bool = False,
) -> Answers:
    """The runs after ``request`` (the spec's answer to PAUSE runs), ``replies`` (the calls of
    AWS_LAMBDA runs made for this plan, by hookId) and the timeouts due at ``now``; with
    ``rollback_only``, only the rollback runs (those of a deployment rolled back). A rollback
    run's end rolls nothing back."""
    updated: list[LifecycleHookDetail] = []
    ended: list[Answered] = []
    for detail in details:
        new = detail
        if rollback_only and not detail.rollback:
            updated.append(detail)
            continue
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
            rolls_back = not new.rollback and (
                new.status == "FAILED"
                or (new.status == "TIMED_OUT" and new.timeout_action == "ROLLBACK")
            )
            ended.append(Answered(new, rolls_back))
    return Answers(updated, ended, updated != list(details))


def after_reply(
    detail: LifecycleHookDetail, reply: HookReply, now: datetime
) -> LifecycleHookDetail:
    """An IN_PROGRESS AWS_LAMBDA run after one call's ``reply`` (ECS's hook response)."""
    calls = (detail.invocations or 0) + (1 if reply.counted else 0)
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
    # A task target is not called again: its Task's changes wake the Service.
    again = status == "IN_PROGRESS" and task_definition_of(detail.target_arn) is None
    return detail.model_copy(
        update={
            "status": status,
            "status_reason": reply.reason or f"answered {status}",
            "invocations": calls,
            "hook_details": merged,
            "next_invocation_at": now + timedelta(seconds=delay) if again else None,
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


def _running(status: ServiceStatus | None, now: datetime) -> list[tuple[str, LifecycleHookDetail]]:
    """The AWS_LAMBDA runs in progress, not yet expired, with their deployment's id: those of
    the PRIMARY deployment rolling out, and the rollback runs (of any deployment) released."""
    found = []
    for deployment in (status.deployments if status else None) or ():
        rolling_out = deployment.status == "PRIMARY" and deployment.rollout_state == "IN_PROGRESS"
        for detail in deployment.lifecycle_hook_details or ():
            wanted = not _unreleased(detail) if detail.rollback else rolling_out
            if (
                wanted
                and detail.status == "IN_PROGRESS"
                and detail.target_arn is not None
                and now < detail.expires_at
            ):
                found.append((deployment.id, detail))
    return found


def calls_due(
    namespace: str, service: str, spec: ServiceSpec, status: ServiceStatus | None, now: datetime
) -> list[HookCall]:
    """The calls of the URL runs due at ``now`` (``_running``, the next call due)."""
    calls = []
    for deployment_id, detail in _running(status, now):
        due = detail.next_invocation_at is not None and detail.next_invocation_at <= now
        if not due or detail.target_arn is None or task_definition_of(detail.target_arn):
            continue
        calls.append(
            HookCall(
                detail.hook_id,
                detail.target_arn,
                _payload(namespace, service, status, deployment_id, detail, spec),
            )
        )
    return calls


@dataclass(frozen=True)
class HookTaskRun:
    """A task target's run in progress: its Task is created if ``started`` is False, read
    otherwise."""

    hook_id: str
    task_name: str
    task_definition: str
    payload: dict[str, Any]
    started: bool


def task_runs_due(
    namespace: str, service: str, spec: ServiceSpec, status: ServiceStatus | None, now: datetime
) -> list[HookTaskRun]:
    """The task target runs in progress (``_running``)."""
    found = []
    for deployment_id, detail in _running(status, now):
        reference = task_definition_of(detail.target_arn)
        if reference is None:
            continue
        found.append(
            HookTaskRun(
                detail.hook_id,
                hook_task_name(detail.hook_id),
                reference,
                _payload(namespace, service, status, deployment_id, detail, spec),
                started=bool(detail.invocations),
            )
        )
    return found


def hook_task_name(hook: str) -> str:
    """The name of the Task a run starts: its hookId (unique in the namespace, and the same
    after a restart)."""
    return hook


def hook_task_manifest(
    run: HookTaskRun,
    namespace: str,
    service: str,
    service_uid: str,
    containers: Sequence[str],
) -> dict[str, Any]:
    """The Task of ``run``: its task definition once, owned by the Service (so deleted with
    it), the payload in ``PAYLOAD_VARIABLE`` of each of ``containers``."""
    variable = {"name": PAYLOAD_VARIABLE, "value": json.dumps(run.payload, sort_keys=True)}
    return {
        "apiVersion": labels.OWNER_API_VERSION,
        "kind": "Task",
        "metadata": {
            "name": run.task_name,
            "namespace": namespace,
            "labels": {
                labels.HOOK_LABEL: labels.label_value(run.hook_id),
                labels.MANAGED_BY_LABEL: labels.MANAGED_BY,
            },
            "ownerReferences": [
                {
                    "apiVersion": labels.OWNER_API_VERSION,
                    "kind": "Service",
                    "name": service,
                    "uid": service_uid,
                }
            ],
        },
        "spec": {
            "taskDefinition": run.task_definition,
            "startedBy": run.hook_id,
            "overrides": {
                "containerOverrides": [
                    {"name": name, "environment": [variable]} for name in containers
                ]
            },
        },
    }


def timed_out_tasks(status: ServiceStatus | None) -> list[str]:
    """The hookIds of the task target runs that TIMED_OUT, in any deployment or service
    deployment (so also once the failed deployment is gone): their Tasks are stopped."""
    records = [
        *((status.deployments if status else None) or ()),
        *((status.service_deployments if status else None) or ()),
    ]
    found = [
        detail.hook_id
        for record in records
        for detail in record.lifecycle_hook_details or ()
        if detail.status == "TIMED_OUT" and task_definition_of(detail.target_arn) is not None
    ]
    return list(dict.fromkeys(found))


def task_started(run: HookTaskRun) -> HookReply:
    return HookReply(
        answer={"hookStatus": "IN_PROGRESS"}, reason=f"its task {run.task_name} was started"
    )


def task_gone(run: HookTaskRun) -> HookReply:
    return HookReply(error=f"its task {run.task_name} was deleted", counted=False)


def task_reply(run: HookTaskRun, task: Task, essential: Sequence[str]) -> HookReply | None:
    """What a run's Task says: nothing while it has not stopped; SUCCEEDED when each of its
    ``essential`` containers exited 0; FAILED for any other stop, saying how it stopped."""
    status = task.status
    if status is None or status.last_status != "STOPPED":
        return None
    codes = {c.name: c.exit_code for c in status.containers or ()}
    if essential and all(codes.get(name) == 0 for name in essential):
        return HookReply(
            answer={"hookStatus": "SUCCEEDED"},
            counted=False,
            reason=f"its task {run.task_name} exited 0",
        )
    exits = ", ".join(f"{name} exit code {codes.get(name)}" for name in essential)
    return HookReply(
        error=f"its task {run.task_name} stopped: {status.stopped_reason or status.stop_code}"
        + (f" ({exits})" if exits else ""),
        counted=False,
    )


def _payload(
    namespace: str,
    service: str,
    status: ServiceStatus | None,
    deployment_id: str,
    detail: LifecycleHookDetail,
    spec: ServiceSpec,
) -> dict[str, Any]:
    test: dict[str, float] = {}
    production: dict[str, float] = {}
    stage = detail.lifecycle_stage
    if detail.rollback:
        production = _rollback_weights(namespace, service, status, deployment_id)
        test = production if stage == "TEST_TRAFFIC_SHIFT" else {}
    elif stage in ("PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"):
        # Before a step: the current weights; at a step: the ones it set (the status's).
        production = _weights(namespace, service, status, deployment_id, None)
    elif stage == "TEST_TRAFFIC_SHIFT":
        test = _weights(namespace, service, status, deployment_id, FULL)
    return payload(namespace, service, deployment_id, detail, spec, production, test)


def _weights(
    namespace: str,
    service: str,
    status: ServiceStatus | None,
    green_id: str,
    green_weight: float | None,
) -> dict[str, float]:
    """Green's share (``green_weight``, or its production weight), blue (the other deployment
    with tasks) the rest."""
    deployments = (status.deployments if status else None) or ()
    green = next(d for d in deployments if d.id == green_id)
    weight = (green.production_traffic_weight or 0.0) if green_weight is None else green_weight
    weights = {service_revisions.service_revision_arn(namespace, service, green_id): weight}
    blue = next((d for d in deployments if d.status == "ACTIVE"), None)
    if blue is not None:
        weights[service_revisions.service_revision_arn(namespace, service, blue.id)] = FULL - weight
    return weights


def _rollback_weights(
    namespace: str, service: str, status: ServiceStatus | None, green_id: str
) -> dict[str, float]:
    """Green 0, the revision its rollback returns to 100 (what tells a hook it is a rollback):
    the one its service deployment's ``rollback`` names, else the PRIMARY."""
    arn = service_revisions.service_deployment_arn(namespace, service, green_id)
    records = (status.service_deployments if status else None) or ()
    record = next((r for r in records if r.service_deployment_arn == arn), None)
    back_to = record.rollback.service_revision_arn if record and record.rollback else None
    primary = next(
        (d for d in (status.deployments if status else None) or () if d.status == "PRIMARY"), None
    )
    if back_to is None and primary is not None and primary.id != green_id:
        back_to = service_revisions.service_revision_arn(namespace, service, primary.id)
    weights = {service_revisions.service_revision_arn(namespace, service, green_id): 0.0}
    if back_to is not None:
        weights[back_to] = FULL
    return weights


def payload(
    namespace: str,
    service: str,
    deployment_id: str,
    detail: LifecycleHookDetail,
    spec: ServiceSpec,
    production_weights: Mapping[str, float],
    test_weights: Mapping[str, float] | None = None,
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
            "testTrafficWeights": dict(test_weights or {}),
            "productionTrafficWeights": dict(production_weights),
        },
        "hookDetails": _merged(configured, detail.hook_details),
    }
