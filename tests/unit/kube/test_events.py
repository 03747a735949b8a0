"""Event names stay valid object names, however long the named object's is."""

import re

import pytest

from ecs_operator.kube.events import event_name

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@pytest.mark.parametrize("length", [1, 63, 236, 237, 253])
def test_event_names_fit_253_characters(length: int) -> None:
    for base in ("t" * length, ("a-" * length)[:length], ("a." * length)[:length]):
        name = event_name(base)
        assert len(name) <= 253
        assert NAME.match(name), name
        assert name.startswith(base[:200].rstrip(".-"))


def test_event_names_are_unique() -> None:
    assert event_name("web") != event_name("web")
