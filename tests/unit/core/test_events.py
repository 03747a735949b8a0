"""Status and event texts: control characters and bidirectional overrides are escaped."""

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
