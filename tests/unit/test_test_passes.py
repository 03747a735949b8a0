"""`make test`'s lanes (tools/test_passes.py): every test runs on the sandbox exactly once, the
operator suites again on the real control plane, and whatever touches the real cluster only in
the real lane, after the real pass."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def passes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("test_passes", REPO / "tools" / "test_passes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_the_sandbox_lanes_split_the_suites_and_never_reach_the_real_cluster(
    passes: ModuleType, tmp_path: Path
) -> None:
    lanes = {lane.name: lane for lane in passes.lanes([], tmp_path / "kubeconfig")}
    sandbox = [step for name, lane in lanes.items() if name != "real" for step in lane.steps]
    for step in sandbox:
        assert passes.REAL_CLUSTER_ENV not in step.env
        assert "ECS_OPERATOR_TEST_TARGET" not in step.env
        assert step.command[-2:] == ["-m", "not realcluster"]
    # One lane takes a folder, the other everything but it: together, every test once.
    (folder,) = sandbox[0].command[3:-2]
    assert sandbox[1].command[3:-2] == [f"--ignore={folder}"]


def test_the_real_lane_runs_every_real_cluster_test_after_the_real_pass(
    passes: ModuleType, tmp_path: Path
) -> None:
    real = next(lane for lane in passes.lanes([], tmp_path) if lane.name == "real")
    real_pass, variants = real.steps
    assert real_pass.env["ECS_OPERATOR_TEST_TARGET"] == "real"
    assert variants.env[passes.REAL_CLUSTER_ENV] == str(tmp_path)
    assert "ECS_OPERATOR_TEST_TARGET" not in variants.env
    tests = collected(variants.command[3:], variants.env)
    assert any(test.startswith("tests/install/test_install_real.py::") for test in tests)
    assert any(test.startswith("tests/sandbox/test_conformance_") for test in tests)
    assert all("[real" in test or "_real" in test for test in tests), tests


def collected(arguments: list[str], env: dict[str, Any]) -> list[str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            *arguments,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return [line for line in result.stdout.splitlines() if "::" in line]
