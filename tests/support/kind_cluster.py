"""The kind cluster the e2e suite drives, and why the suite cannot run here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
KIND_CONFIG = ROOT / "tests" / "e2e" / "kind-config.yaml"
HELM = Path(os.environ.get("ECS_E2E_HELM", ROOT / ".tools" / "helm"))
KUBECTL = os.environ.get("ECS_OPERATOR_KUBECTL", shutil.which("kubectl") or "kubectl")
IMAGE_REPOSITORY = "ecs-operator"
IMAGE_TAG = "e2e"
RELEASE = "ecs-operator"
RELEASE_NAMESPACE = "ecs-operator-system"
GROUP = "ecs.operator.dev"

# kubectl(*args, input=None, timeout=120) -> stdout; fails the test on a non-zero exit.
KubectlRunner = Callable[..., str]


def run(*command: str | Path, timeout: float = 600, input: str | None = None) -> str:
    """Run a command; its stdout, or a failure naming the command and its stderr."""
    result = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


@cache
def missing_prerequisite() -> str | None:
    """Why the e2e suite cannot run here, or None."""
    if shutil.which("docker") is None:
        return "docker is not on PATH"
    try:
        info = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=20, check=False
        )
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if info.returncode != 0:
        lines = (info.stderr or info.stdout).strip().splitlines()
        return f"`docker info` failed: {lines[-1] if lines else 'no output'}"
    if shutil.which("kind") is None:
        return "kind is not on PATH"
    if not HELM.is_file():
        return f"helm not found at {HELM}: run `make helm`"
    return None


@dataclass(frozen=True)
class KindCluster:
    name: str
    kubeconfig: Path

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        return run(KUBECTL, f"--kubeconfig={self.kubeconfig}", *args, input=input, timeout=timeout)

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def serves(self, kind: str) -> bool:
        """Whether discovery lists `kind` of the ecs.operator.dev group now (plural = kind + s)."""
        names = self.kubectl("api-resources", f"--api-group={GROUP}", "-o", "name").split()
        return f"{kind.lower()}s.{GROUP}" in names
