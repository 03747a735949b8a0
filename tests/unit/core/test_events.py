"""Status and event texts: control characters and bidirectional overrides are escaped."""

import copy
import random
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from ecs_operator.core import events
from ecs_operator.core.conditions import set_condition
from ecs_operator.core.deployments import record_events
from ecs_operator.models.service import MAX_SERVICE_EVENT_LENGTH, ServiceStatus

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_control_characters_are_escaped() -> None:
    text = "boom\x1b[2J\x07\n\t\x9b done \u202eevil\u2066 é ☃"
    assert events.printable(text) == (
        "boom\\x1b[2J\\x07\\x0a\\x09\\x9b done \\u202eevil\\u2066 é ☃"
    )


@given(st.text())
def test_printable_text_has_no_control_characters(text: str) -> None:
    shown = events.printable(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert events.printable(shown) == shown
    assert shown == text or len(shown) > len(text)


def test_clip_escapes_then_fits_the_field() -> None:
    assert events.clip("\x1b" * 2000) == "\\x1b" * 255 + "\\" + "..."
    assert len(events.clip("\x1b" * 2000)) == events.MAX_REASON_LENGTH


def test_condition_messages_are_printable() -> None:
    condition = set_condition(None, "Ready", "False", "Invalid", "bad\x1b]0;title\x07", 1, NOW)
    assert condition.message == "bad\\x1b]0;title\\x07"


def test_service_events_are_stored_printable_and_still_deduplicated() -> None:
    rng = random.Random(1)
    message = "(service web) was unable to place a task: \x1b[2J" + "x" * 3000
    status, recorded = record_events(ServiceStatus(), [message], NOW, rng)
    assert status.events is not None
    stored = status.events[0].message
    assert recorded == [stored]
    assert "\x1b" not in stored and "\\x1b[2J" in stored
    assert len(stored) == MAX_SERVICE_EVENT_LENGTH
    again, recorded_again = record_events(status, [message], NOW, rng)
    assert recorded_again == [] and again is status  # a repeat: no new event, no status write


# Every kind of service event, as the scheduler and the load-balancer controller write it.
SERVICE_EVENTS = {
    "steady state": events.service_steady("web"),
    "tasks started (scaling, replacement, AZ rebalancing)": events.service_tasks_started(
        "web", ["web-1"]
    ),
    "tasks stopped (running or pending; AZ rebalancing)": events.service_tasks_stopped(
        "web", ["web-1"]
    ),
    "a task failed its container health checks": events.service_task_unhealthy("web", "web-1"),
    "unable to place a task": events.service_unable_to_place("web", "n1", "is full"),
    "unable to consistently start tasks (throttled)": events.service_throttled("web"),
    "deployment completed": events.deployment_completed("web", "ecs-svc/1"),
    "deployment failed (circuit breaker, alarms)": events.deployment_failed("web", "ecs-svc/1"),
    "rolling back": events.deployment_rolling_back("web", "ecs-svc/1"),
    "deployment blocked by min/max percent": events.deployment_blocked("web"),
    "unable to start a deployment": events.service_task_definition_unusable("web", "no"),
    "a BLUE_GREEN/LINEAR/CANARY deployment's lifecycle stage": events.deployment_stage(
        "web", "ecs-svc/1", "SCALE_UP", 0.0, "web:2", 0
    ),
    "a lifecycle hook awaits action, is in progress, or ended": events.hook_awaiting_action(
        "web", "ecs-svc/1", "ecs-pause-1-1", "POST_SCALE_UP", datetime(2026, 1, 1, tzinfo=UTC)
    ),
    "spec fields accepted but not honoured": events.service_fields_not_honoured(
        "web", "spec.cluster (no clusters)"
    ),
    "AZ balanced": events.az_balance("web", {"a": 1}, True),
    "AZ rebalancing in progress": events.az_balance("web", {"a": 2, "b": 0}, False),
    "targets registered": events.targets_registered("web", 1, "lb"),
    "targets deregistered": events.targets_deregistered("web", 1, "lb"),
    "draining connections": events.draining_connections("web", 1),
    "a target is unhealthy": events.target_unhealthy("web", "web-1", 80, "lb"),
    "a deployment alarm cannot be evaluated": events.alarm_not_evaluated(
        "web", [("errors", "Prometheus is unreachable")]
    ),
}
# The variants of a kind share its reason.
VARIANTS = {
    "tasks started (scaling, replacement, AZ rebalancing)": [
        events.service_tasks_started("web", ["web-1"], "replace_unhealthy"),
        events.service_tasks_started("web", ["web-1"], "rebalance", "a"),
    ],
    "tasks stopped (running or pending; AZ rebalancing)": [
        events.service_tasks_stopped("web", ["web-1"], "a"),
        events.service_pending_stopped("web", 2),
    ],
    "unable to place a task": [events.service_unable_to_place("web", None, "", "a")],
    "a lifecycle hook awaits action, is in progress, or ended": [
        events.hook_answered("web", "ecs-svc/1", "ecs-pause-1-1", status, action)
        for status, action in (("SUCCEEDED", "ROLLBACK"), ("FAILED", "CONTINUE"))
    ]
    + [events.hook_unknown("web", "ecs-pause-1-2")],
    "deployment failed (circuit breaker, alarms)": [
        events.deployment_failed_by_alarms("web", "ecs-svc/1", ["errors"])
    ],
    "a BLUE_GREEN/LINEAR/CANARY deployment's lifecycle stage": [
        events.deployment_stage("web", "ecs-svc/1", stage, 10.0, "web:2", 5)
        for stage in ("PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP")
    ],
}


def test_each_kind_of_service_event_has_a_reason_of_its_own() -> None:
    """`kubectl get events --field-selector reason=…` selects one kind of service event."""
    reasons = events.SERVICE_EVENT_REASONS
    assert set(SERVICE_EVENTS) == set(reasons)
    assert len(set(reasons.values())) == len(reasons)  # distinct per kind
    assert events.REASON_SERVICE_EVENT not in reasons.values()
    for kind, message in SERVICE_EVENTS.items():
        assert events.service_event_kind(message)[1] == reasons[kind], kind
        for variant in VARIANTS.get(kind, ()):
            assert events.service_event_kind(variant)[1] == reasons[kind], variant
    # CamelCase, as Kubernetes reasons are, and none shared with another event of the module
    # (a Task's, a LoadBalancer's).
    names = [n for n in dir(events) if n.startswith("REASON_")]
    assert all(r[0].isupper() and r.isalnum() for r in reasons.values())
    assert len({getattr(events, n) for n in names}) == len(names)


def test_failures_are_warnings_and_progress_is_normal() -> None:
    types = {kind: events.service_event_kind(m)[0] for kind, m in SERVICE_EVENTS.items()}
    assert {kind for kind, kind_type in types.items() if kind_type == "Warning"} == {
        "a task failed its container health checks",
        "unable to place a task",
        "unable to consistently start tasks (throttled)",
        "deployment failed (circuit breaker, alarms)",
        "rolling back",
        "deployment blocked by min/max percent",
        "unable to start a deployment",
        "a target is unhealthy",
        "spec fields accepted but not honoured",
        "a deployment alarm cannot be evaluated",
    }


def test_tasks_are_named_by_their_task_name_in_ecs_form() -> None:
    assert events.service_tasks_started("web", ["web-29a3f359ee", "web-0b1c2d3e4f"]) == (
        "(service web) has started 2 tasks: (task web-29a3f359ee) (task web-0b1c2d3e4f)."
    )
    assert events.service_task_unhealthy("web", "web-29a3f359ee") == (
        "(service web) (task web-29a3f359ee) failed container health checks."
    )


def test_a_service_event_keeps_its_reason_when_clipped_stored_and_copied() -> None:
    message = events.service_tasks_started("web", [f"web-{i:04d}" for i in range(300)])
    clipped = events.clip(message, 100)
    assert len(clipped) == 100 and clipped.endswith("...")
    assert events.service_event_kind(clipped) == ("Normal", "TasksStarted")
    assert events.service_event_kind(copy.deepcopy(message)) == ("Normal", "TasksStarted")
    status, recorded = record_events(ServiceStatus(), [message], NOW, random.Random(1))
    assert [events.service_event_kind(m)[1] for m in recorded] == ["TasksStarted"]
    assert status.events and status.events[0].message == recorded[0]
    # Plain text (none should reach the recorder) falls back to the generic reason.
    assert events.service_event_kind("something") == ("Normal", "ServiceEvent")
