"""BLUE_GREEN, LINEAR and CANARY deployments as a stage machine (ecs-deployments.md §3).

The new revision (green) starts at the full desired count beside the one serving production
(blue), whatever maximumPercent says (ECS: green scales to 100 %, blue stays until CLEAN_UP).
Once every green task is healthy, production traffic moves to green: BLUE_GREEN all at once,
CANARY ``canaryPercent`` first and the rest after ``canaryBakeTimeInMinutes``, LINEAR by
``stepPercent`` every ``stepBakeTimeInMinutes`` (ceil(100 / stepPercent) steps, the last one
capped at 100 %). Then ``bakeTimeInMinutes`` with both revisions running, then CLEAN_UP stops
blue, and the deployment completes once blue is gone.

The hook stages (RECONCILE_SERVICE, PRE_SCALE_UP, POST_SCALE_UP, POST_TEST_TRAFFIC_SHIFT,
PRE_PRODUCTION_TRAFFIC_SHIFT before every traffic step, POST_PRODUCTION_TRAFFIC_SHIFT) pass
once ``passable`` says so: at once unless a hook (PAUSE or AWS_LAMBDA) holds it there
(``core.lifecycle_hooks``). The traffic stages (TEST_TRAFFIC_SHIFT, and PRODUCTION_TRAFFIC_SHIFT
at every step) take AWS_LAMBDA hooks too (``TRAFFIC_HOOK_STAGES``): *decision*: their hooks
start once the stage's traffic is in place (``traffic_in_place``), and the stage ends only when
it is and ``passable`` too; a step's bake time runs from when its traffic is in place, while
its hooks run.

With an alternate LoadBalancer (``advancedConfiguration``), TEST_TRAFFIC_SHIFT comes between
POST_SCALE_UP and POST_TEST_TRAFFIC_SHIFT: it lasts until every green task is healthy in the
test LoadBalancers (which list green only, ``core.load_balancing``); without one there is no
test traffic and the stage is not entered.

*Decisions*: without test traffic, POST_TEST_TRAFFIC_SHIFT comes right after POST_SCALE_UP;
RECONCILE_SERVICE is entered only when the deployment starts while more than one revision has
tasks (ECS); a service's first deployment (no revision serving production yet) rolls as
ROLLING does; the stages never move backwards, and a deployment that fails (circuit breaker,
alarms, PAUSE hook) rolls back to the revision still serving production, whatever
``rollback`` says, as blue/green always does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ecs_operator.models.service import (
    DeploymentConfiguration,
    DeploymentStrategy,
    LifecycleStage,
    ServiceSpec,
)

STAGED: Final = ("BLUE_GREEN", "LINEAR", "CANARY")
DEFAULT_CANARY_PERCENT: Final = 5.0
DEFAULT_CANARY_BAKE_MINUTES: Final = 10
DEFAULT_STEP_PERCENT: Final = 10.0
DEFAULT_STEP_BAKE_MINUTES: Final = 6
FULL: Final = 100.0


def strategy_of(spec: ServiceSpec) -> DeploymentStrategy:
    configuration = spec.deployment_configuration
    return (configuration.strategy if configuration else None) or "ROLLING"


def is_staged(strategy: str | None) -> bool:
    return strategy in STAGED


def traffic_steps(
    strategy: DeploymentStrategy, configuration: DeploymentConfiguration | None
) -> list[tuple[float, int]]:
    """Each production shift: green's share after it (%), and the minutes to wait before the
    next one (0 after the last)."""
    if strategy == "CANARY":
        canary = configuration.canary_configuration if configuration else None
        share = (canary.canary_percent if canary else None) or DEFAULT_CANARY_PERCENT
        bake = canary.canary_bake_time_in_minutes if canary else None
        if share >= FULL:
            return [(FULL, 0)]
        return [(share, DEFAULT_CANARY_BAKE_MINUTES if bake is None else bake), (FULL, 0)]
    if strategy == "LINEAR":
        linear = configuration.linear_configuration if configuration else None
        step = (linear.step_percent if linear else None) or DEFAULT_STEP_PERCENT
        bake = linear.step_bake_time_in_minutes if linear else None
        wait = DEFAULT_STEP_BAKE_MINUTES if bake is None else bake
        count = math.ceil(FULL / step - 1e-9)
        shares = [min(FULL, round(step * k, 1)) for k in range(1, count + 1)]
        return [(share, 0 if share >= FULL else wait) for share in shares]
    return [(FULL, 0)]


def bake_minutes(configuration: DeploymentConfiguration | None) -> int:
    return (configuration.bake_time_in_minutes if configuration else None) or 0


@dataclass(frozen=True)
class Stage:
    """Where a staged deployment is: its lifecycle stage, green's production share, and since
    when (a stage's, or a traffic step's, start)."""

    name: LifecycleStage
    weight: float
    since: datetime


@dataclass(frozen=True)
class Advance:
    stage: Stage
    passed: tuple[Stage, ...]  # every stage (or step) entered on the way, in order
    wait_seconds: float | None  # until a bake ends (None: it waits for tasks)


# Each hook stage and the stage after it (PRE_PRODUCTION_TRAFFIC_SHIFT's is the next step).
_AFTER_HOOK_STAGE: Final[dict[LifecycleStage, LifecycleStage]] = {
    "RECONCILE_SERVICE": "PRE_SCALE_UP",
    "PRE_SCALE_UP": "SCALE_UP",
    "POST_SCALE_UP": "POST_TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT": "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT": "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT": "BAKE_TIME",
}
HOOK_STAGES: Final = frozenset(_AFTER_HOOK_STAGE)
# The stages that move traffic, where only AWS_LAMBDA hooks may hold a deployment.
TRAFFIC_HOOK_STAGES: Final = frozenset({"TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"})
# Before green starts: no green task is launched while a deployment is at one of these.
BEFORE_SCALE_UP: Final = frozenset({"RECONCILE_SERVICE", "PRE_SCALE_UP"})
# The stages whose entry is told as an event (a hook stage is told only when a hook waits).
ANNOUNCED: Final = frozenset(
    {"SCALE_UP", "TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"}
)


def advance(
    stage: Stage,
    strategy: DeploymentStrategy,
    configuration: DeploymentConfiguration | None,
    green_ready: bool,
    applied_at: Callable[[float], datetime | None],
    now: datetime,
    passable: Callable[[Stage], bool] = lambda _stage: True,
    test_traffic_shifted: Callable[[], bool] | None = None,
) -> Advance:
    """The stage ``stage`` has reached by ``now``: a hook stage waits until ``passable``;
    SCALE_UP waits for ``green_ready`` (every green task healthy); TEST_TRAFFIC_SHIFT, entered
    only with test LoadBalancers (``test_traffic_shifted`` not None), until they list every
    green task; each traffic step waits until the load balancers carry its share
    (``applied_at``: since when, None while they do not), then for its minutes from then;
    BAKE_TIME for its minutes; CLEAN_UP lasts until blue is gone (the planner's to see)."""
    steps = traffic_steps(strategy, configuration)
    passed: list[Stage] = []
    current = stage
    while True:
        if current.name in HOOK_STAGES:
            following: Stage | None = (
                _after_hook(current, steps, now, test_traffic_shifted is not None)
                if passable(current)
                else None
            )
            wait = None
        else:
            following, wait = _next(
                current, steps, configuration, green_ready, applied_at, now, test_traffic_shifted
            )
            if following is not None and current.name in TRAFFIC_HOOK_STAGES:
                following = following if passable(current) else None
        if following is None:
            return Advance(current, tuple(passed), wait)
        current = following
        passed.append(current)


def _after_hook(
    stage: Stage, steps: list[tuple[float, int]], now: datetime, test_traffic: bool
) -> Stage:
    following = _AFTER_HOOK_STAGE[stage.name]
    if stage.name == "POST_SCALE_UP" and test_traffic:
        following = "TEST_TRAFFIC_SHIFT"
    if following == "PRODUCTION_TRAFFIC_SHIFT":
        share = next((s for s, _ in steps if s > stage.weight), FULL)
        return Stage(following, share, now)
    return Stage(following, stage.weight, now)


def traffic_in_place(
    stage: Stage,
    applied_at: Callable[[float], datetime | None],
    test_traffic_shifted: Callable[[], bool] | None,
) -> bool:
    """Whether ``stage``'s traffic is where it sends it (a stage that moves none: True): the
    moment its AWS_LAMBDA hooks start."""
    if stage.name == "TEST_TRAFFIC_SHIFT":
        return test_traffic_shifted is None or test_traffic_shifted()
    if stage.name == "PRODUCTION_TRAFFIC_SHIFT":
        return applied_at(stage.weight) is not None
    return True


def _next(
    stage: Stage,
    steps: list[tuple[float, int]],
    configuration: DeploymentConfiguration | None,
    green_ready: bool,
    applied_at: Callable[[float], datetime | None],
    now: datetime,
    test_traffic_shifted: Callable[[], bool] | None,
) -> tuple[Stage | None, float | None]:
    if stage.name == "SCALE_UP":
        return (Stage("POST_SCALE_UP", 0.0, now) if green_ready else None), None
    if stage.name == "TEST_TRAFFIC_SHIFT":
        # Until the test LoadBalancers list green; their status change wakes the service.
        shifted = traffic_in_place(stage, applied_at, test_traffic_shifted)
        return (Stage("POST_TEST_TRAFFIC_SHIFT", 0.0, now) if shifted else None), None
    if stage.name == "PRODUCTION_TRAFFIC_SHIFT":
        applied = applied_at(stage.weight)
        if applied is None:
            return None, None  # the LoadBalancer's status change wakes the service
        if stage.weight >= FULL:
            return Stage("POST_PRODUCTION_TRAFFIC_SHIFT", FULL, now), None
        index = next((i for i, (share, _) in enumerate(steps) if share > stage.weight), None)
        if index is None:
            return Stage("POST_PRODUCTION_TRAFFIC_SHIFT", FULL, now), None
        since = max(stage.since, applied)
        wait = _remaining(since, steps[index - 1][1] if index else 0, now)
        if wait > 0:
            return None, wait
        return Stage("PRE_PRODUCTION_TRAFFIC_SHIFT", stage.weight, now), None
    if stage.name == "BAKE_TIME":
        wait = _remaining(stage.since, bake_minutes(configuration), now)
        return (None, wait) if wait > 0 else (Stage("CLEAN_UP", FULL, now), None)
    return None, None


def _remaining(since: datetime, minutes: int, now: datetime) -> float:
    return (since + timedelta(minutes=minutes) - now).total_seconds()


def endpoint_mix(green: int, blue: int, weight: float) -> tuple[int, int]:
    """How many of ``green`` and ``blue`` healthy targets to list so that green's share of the
    endpoints is as close to ``weight`` % as they allow, with as many endpoints as possible:
    kube-proxy spreads connections evenly over ready endpoints. A share strictly between 0 and
    100 lists at least one of each side that has one."""
    if weight <= 0 or green == 0:
        return 0, blue
    if weight >= FULL or blue == 0:
        return green, 0
    share = weight / FULL
    wanted_green = round(blue * share / (1 - share))
    if wanted_green <= green:
        return max(1, wanted_green), blue
    wanted_blue = round(green * (1 - share) / share)
    return green, max(1, min(blue, wanted_blue))
