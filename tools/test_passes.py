"""`make test`: the whole suite on the sandbox, then again on a real control plane.

1. `tools/cluster.py up` (binaries built once and cached by version, see build_cluster.sh).
2. Pass 1, the sandbox: every suite; the conformance tests' real-cluster variants run too
   (ECS_OPERATOR_TEST_KUBECONFIG names the real cluster).
3. Pass 2, the real control plane: the integration and resilience suites with
   ECS_OPERATOR_TEST_TARGET=real (the operator under its own ServiceAccount and the shipped RBAC).
4. `tools/cluster.py down`, whatever happened.

Extra arguments go to both pytest runs. Exit status: non-zero when either pass failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
REAL_PASS_SUITES = ["tests/integration", "tests/resilience"]


def run(command: list[str], env: dict[str, str]) -> int:
    started = time.monotonic()
    print(f"\n=== {' '.join(command)}", flush=True)
    code = subprocess.run(command, cwd=REPO, env=env, check=False).returncode
    print(f"=== exit {code} after {time.monotonic() - started:.0f} s", flush=True)
    return code


def main() -> int:
    args = sys.argv[1:]
    cluster = [PYTHON, str(REPO / "tools" / "cluster.py")]
    if run([*cluster, "up"], dict(os.environ)) != 0:
        return 1
    try:
        env = dict(os.environ, ECS_OPERATOR_TEST_KUBECONFIG=str(REPO / ".cluster" / "kubeconfig"))
        env.pop("ECS_OPERATOR_TEST_TARGET", None)
        sandbox_pass = run([PYTHON, "-m", "pytest", *args], env)
        real_pass = run(
            [PYTHON, "-m", "pytest", *REAL_PASS_SUITES, *args],
            dict(env, ECS_OPERATOR_TEST_TARGET="real"),
        )
    finally:
        run([*cluster, "down"], dict(os.environ))
    return 1 if sandbox_pass or real_pass else 0


if __name__ == "__main__":
    sys.exit(main())
