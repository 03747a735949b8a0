"""Deployment alarms (``deploymentConfiguration.alarms``, ecs-deployments.md §7.2), decided from
the alarm states the controller read; no I/O.

An alarm is a named Prometheus instant query, defined in the operator's install
(``--alarms-file``: ``alarms: [{name, query}]``; ``parse_alarms``). It is in ALARM while the
query returns at least one sample whose value is not zero (``in_alarm``): as a Prometheus
alerting rule fires while its expression returns any sample, so a filter such as
``rate(errors_total[1m]) > 0.5`` works; and a 0 sample does not fire, so a boolean comparison
such as ``errors > bool 10`` (always one sample, 0 or 1) works too. An empty result is OK.

A deployment is watched (``monitoring``) while it rolls out: ROLLING until it is COMPLETED,
which with alarms waits a bake time after it first reaches a steady state (ECS derives one from
the alarms; here the operator's ``--alarm-bake``, *decision*); BLUE_GREEN, LINEAR and
CANARY through BAKE_TIME (not CLEAN_UP). A rollback is not watched (*decision*: it restores the
last revision that succeeded, and the alarms that failed the deployment are likely still in
ALARM). Each alarm's first reading for a deployment is its baseline (``check``): already in
ALARM, it is ignored for the whole deployment (ECS); else it is armed, and an armed alarm in
ALARM fails the deployment. An alarm that cannot be read (unknown name, Prometheus unreachable
or answering an error) is reported and neither fails nor passes anything; it gets its baseline
once it can be read (*decision*).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ecs_operator.models.service import Deployment, ServiceSpec, ServiceStatus

DEFAULT_INTERVAL_SECONDS: Final = 15.0
DEFAULT_BAKE_SECONDS: Final = 180.0
MIN_INTERVAL_SECONDS: Final = 1.0
NOT_READ: Final = "not evaluated: the operator has no --prometheus-url"


@dataclass(frozen=True)
class AlarmDefinition:
    name: str
    query: str


def parse_alarms(document: object, source: str = "alarms file") -> list[AlarmDefinition]:
    """The alarms of an alarms file's parsed YAML (``alarms: [{name, query}]``; other keys of
    an entry, e.g. a description, are allowed). Raises ``ValueError`` naming the field."""
    if not isinstance(document, Mapping) or not isinstance(document.get("alarms"), list):
        raise ValueError(f"{source}: alarms: must be a list of {{name, query}}")
    found: list[AlarmDefinition] = []
    seen: set[str] = set()
    for index, entry in enumerate(document["alarms"]):
        where = f"{source}: alarms[{index}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: must be a mapping with name and query")
        name, query = entry.get("name"), entry.get("query")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ValueError(f"{where}.name: must be a non-empty string of at most 255 characters")
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"{where}.query: must be a non-empty PromQL expression")
        if name in seen:
            raise ValueError(f"{where}.name: {name!r} is defined twice")
        seen.add(name)
        found.append(AlarmDefinition(name, query))
    return found


def in_alarm(response: Mapping[str, Any]) -> bool:
    """Whether a Prometheus ``/api/v1/query`` answer is in ALARM: a sample whose value is not
    zero (NaN is not zero). Raises ``ValueError`` with Prometheus's error, or when the answer is
    not one."""
    if response.get("status") != "success":
        raise ValueError(
            f"Prometheus answered {response.get('errorType') or 'an error'}: "
            f"{response.get('error') or response.get('status')}"
        )
    data = response.get("data")
    if not isinstance(data, Mapping):
        raise ValueError("Prometheus answered without data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector" and isinstance(result, list):
        values = [sample.get("value") for sample in result if isinstance(sample, Mapping)]
    elif kind == "matrix" and isinstance(result, list):
        values = [
            pair
            for series in result
            if isinstance(series, Mapping)
            for pair in (series.get("values") or ())[-1:]
        ]
    elif kind == "scalar":
        values = [result]
    else:
        raise ValueError(f"Prometheus answered a {kind} result; an alarm needs a number")
    return any(_non_zero(value) for value in values)


def _non_zero(value: object) -> bool:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"Prometheus answered a sample that is not [time, value]: {value!r}")
    try:
        number = float(value[1])
    except (TypeError, ValueError):
        problem = f"Prometheus answered a value that is not a number: {value[1]!r}"
        raise ValueError(problem) from None
    return math.isnan(number) or number != 0.0


@dataclass(frozen=True)
class AlarmReadings:
    """What the controller read for a reconcile: per alarm, in ALARM or not, or why it could
    not be read; and the operator's evaluation interval and ROLLING bake time."""

    in_alarm: Mapping[str, bool] = field(default_factory=dict)
    problems: Mapping[str, str] = field(default_factory=dict)
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    bake_seconds: float = DEFAULT_BAKE_SECONDS


def watched_names(spec: ServiceSpec) -> tuple[str, ...]:
    """The alarms a deployment of ``spec`` is watched with (none unless enabled)."""
    configuration = spec.deployment_configuration
    alarms = configuration.alarms if configuration else None
    if alarms is None or not alarms.enable:
        return ()
    return tuple(dict.fromkeys(alarms.alarm_names))


def names_to_read(
    spec: ServiceSpec, status: ServiceStatus | None, generation: int
) -> tuple[str, ...]:
    """The alarms a reconcile reads before planning: ``spec``'s while a deployment is watched
    or may start (the spec changed since the status was written, or nothing runs yet); none
    in a settled service, which Prometheus need not hear about."""
    names = watched_names(spec)
    if not names or status is None or status.observed_generation != generation:
        return names
    primary = next((d for d in status.deployments or () if d.status == "PRIMARY"), None)
    return names if primary is None or monitoring(primary) else ()


def rollback_wanted(spec: ServiceSpec) -> bool:
    configuration = spec.deployment_configuration
    return bool(configuration and configuration.alarms and configuration.alarms.rollback)


def monitoring(deployment: Deployment) -> bool:
    """Whether alarms watch ``deployment`` now (see the module docstring)."""
    return (
        deployment.status == "PRIMARY"
        and deployment.rollout_state == "IN_PROGRESS"
        and not deployment.rollback
        and deployment.lifecycle_stage != "CLEAN_UP"
    )


@dataclass(frozen=True)
class AlarmCheck:
    armed: tuple[str, ...]
    ignored: tuple[str, ...]
    triggered: tuple[str, ...]
    problems: tuple[tuple[str, str], ...]
    """(alarm, why it could not be read)."""


def check(
    names: Sequence[str],
    armed: Iterable[str],
    ignored: Iterable[str],
    readings: AlarmReadings,
) -> AlarmCheck:
    """The deployment's alarms after ``readings``: the first reading of each sets its baseline
    (in ALARM: ignored, else armed); an armed one in ALARM is triggered."""
    now_armed, now_ignored = list(armed), list(ignored)
    triggered: list[str] = []
    problems: list[tuple[str, str]] = []
    for name in names:
        if name in now_ignored:
            continue
        firing = readings.in_alarm.get(name)
        if firing is None:
            problems.append((name, readings.problems.get(name, NOT_READ)))
        elif name in now_armed:
            if firing:
                triggered.append(name)
        elif firing:
            now_ignored.append(name)
        else:
            now_armed.append(name)
    return AlarmCheck(tuple(now_armed), tuple(now_ignored), tuple(triggered), tuple(problems))
