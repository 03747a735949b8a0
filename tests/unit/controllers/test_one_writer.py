"""Issue #10: the controllers write only through the writer (`context.api`), which records every
response in the caches; none records into a cache by hand or calls the raw client."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ecs_operator.controllers as controllers_package

CONTROLLERS = Path(controllers_package.__file__).parent
# The modules that reconcile; the plumbing (context, writer, watches, the adapter, run) is not.
RECONCILING = [
    "tasks.py",
    "pod_launcher.py",
    "services.py",
    "task_launcher.py",
    "loadbalancers.py",
    "taskdefinitions.py",
]
BY_HAND = re.compile(r"context\.\w+\.(record|replace)\(|context\.kube\b|\bkube\.(get|create|patch)")


@pytest.mark.parametrize("module", RECONCILING)
def test_a_controller_neither_records_by_hand_nor_bypasses_the_writer(module: str) -> None:
    source = (CONTROLLERS / module).read_text()
    assert not BY_HAND.findall(source), [
        line for line in source.splitlines() if BY_HAND.search(line)
    ]


def test_the_check_would_see_a_record_by_hand() -> None:
    assert BY_HAND.search('self.context.tasks.record("MODIFIED", updated)')
    assert BY_HAND.search("await self.context.kube.patch(TASKS, ns, name, patch)")
    assert not BY_HAND.search("await self.context.api.patch(TASKS, ns, name, patch)")
    assert not BY_HAND.search("await self.events.record(body, 'Normal', reason, message)")
