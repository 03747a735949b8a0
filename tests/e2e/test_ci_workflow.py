"""The CI workflow parses and runs the suites in order with pinned, well-known actions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "ci.yaml"
WELL_KNOWN_ACTIONS = {"actions/checkout", "actions/setup-python"}


def _job() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert set(workflow["jobs"]) == {"test"}
    job: dict[str, Any] = workflow["jobs"]["test"]
    return job


def test_actions_are_well_known_and_pinned_to_a_version() -> None:
    uses = [step["uses"] for step in _job()["steps"] if "uses" in step]
    assert uses
    for use in uses:
        name, _, version = use.partition("@")
        assert name in WELL_KNOWN_ACTIONS, use
        assert re.fullmatch(r"v\d+(\.\d+){0,2}", version), use


def test_make_test_then_pinned_kind_then_make_e2e() -> None:
    job = _job()
    assert job["runs-on"] == "ubuntu-latest"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", job["env"]["KIND_VERSION"])
    python = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["python-version"] == "3.11"
    runs = [step.get("run", "") for step in job["steps"]]
    order = [
        next(i for i, run in enumerate(runs) if marker in run)
        for marker in ("make test", "sha256sum --check", "make e2e")
    ]
    assert order == sorted(order)
