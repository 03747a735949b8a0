"""`make test`: the whole suite on the sandbox, then again on a real control plane.

1. `tools/cluster.py up` (binaries built once and cached by version, see build_cluster.sh).
2. Three lanes at once, since the suites mostly wait on clusters (one pytest keeps about half
   a core busy) and the lanes share none:
   - the integration suite on the sandbox (its own sandbox and operator);
   - every other suite on the sandbox (unit, sandbox, resilience, install, Argo CD, bench
     smoke, e2e), one after the other in one pytest;
   - the real control plane: the integration and resilience suites with
     ECS_OPERATOR_TEST_TARGET=real (the operator under its own ServiceAccount and the shipped
     RBAC), then the tests marked `realcluster` (the conformance tests' real variants, the
     install paths, the real benchmark). Those replace the ECS CRDs and run operators of their
     own cluster-wide, so they wait for the real pass rather than pull its CRDs from under it.
3. `tools/cluster.py down`, whatever happened.

Each lane writes to its own log, printed whole when the lane ends. Extra arguments go to every
pytest run. Exit status: non-zero when any lane failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
REAL_CLUSTER_ENV = "ECS_OPERATOR_TEST_KUBECONFIG"
OPERATOR_SUITES = ["tests/integration", "tests/resilience"]
PYTEST = [PYTHON, "-m", "pytest"]
_print_lock = threading.Lock()


@dataclass
class Step:
    name: str
    command: list[str]
    env: dict[str, str]


@dataclass
class Lane:
    name: str
    steps: list[Step]
    codes: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return any(self.codes)


def say(text: str) -> None:
    with _print_lock:
        print(text, flush=True)


def run(command: list[str], env: dict[str, str]) -> int:
    started = time.monotonic()
    say(f"\n=== {' '.join(command)}")
    code = subprocess.run(command, cwd=REPO, env=env, check=False).returncode
    say(f"=== exit {code} after {time.monotonic() - started:.0f} s")
    return code


def run_lane(lane: Lane, logs: Path) -> None:
    """The lane's steps one after the other (every step runs, a failure or not), into a log
    that is printed whole at the end, so lanes never interleave."""
    started = time.monotonic()
    log = logs / f"{lane.name}.log"
    with log.open("w") as out:
        for step in lane.steps:
            out.write(f"\n=== {step.name}: {' '.join(step.command)}\n")
            out.flush()
            step_started = time.monotonic()
            code = subprocess.run(
                step.command, cwd=REPO, env=step.env, stdout=out, stderr=subprocess.STDOUT
            ).returncode
            out.write(f"=== exit {code} after {time.monotonic() - step_started:.0f} s\n")
            lane.codes.append(code)
    lane.seconds = time.monotonic() - started
    say(f"\n{'=' * 30} lane {lane.name} {'=' * 30}\n{log.read_text()}")


def lanes(args: list[str], kubeconfig: Path) -> list[Lane]:
    sandbox = dict(os.environ)
    sandbox.pop("ECS_OPERATOR_TEST_TARGET", None)
    sandbox.pop(REAL_CLUSTER_ENV, None)
    real = dict(sandbox, **{REAL_CLUSTER_ENV: str(kubeconfig)})
    not_real = ["-m", "not realcluster"]
    integration = "tests/integration"
    return [
        Lane(
            "sandbox-integration",
            [Step("sandbox pass: integration", [*PYTEST, integration, *not_real, *args], sandbox)],
        ),
        Lane(
            "sandbox-others",
            [
                Step(
                    "sandbox pass: every other suite",
                    [*PYTEST, f"--ignore={integration}", *not_real, *args],
                    sandbox,
                )
            ],
        ),
        Lane(
            "real",
            [
                Step(
                    "real pass",
                    [*PYTEST, *OPERATOR_SUITES, *not_real, *args],
                    dict(real, ECS_OPERATOR_TEST_TARGET="real"),
                ),
                Step("real-cluster variants", [*PYTEST, "-m", "realcluster", *args], real),
            ],
        ),
    ]


def main() -> int:
    args = sys.argv[1:]
    cluster = [PYTHON, str(REPO / "tools" / "cluster.py")]
    if run([*cluster, "up"], dict(os.environ)) != 0:
        return 1
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="make-test-") as logs:
            all_lanes = lanes(args, REPO / ".cluster" / "kubeconfig")
            threads = [
                threading.Thread(target=run_lane, args=(lane, Path(logs)), name=lane.name)
                for lane in all_lanes
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        run([*cluster, "down"], dict(os.environ))
    say(f"\n=== make test: {time.monotonic() - started:.0f} s for the lanes")
    for lane in all_lanes:
        verdict = "FAILED" if lane.failed else "passed"
        say(f"    {lane.name}: {verdict} in {lane.seconds:.0f} s (exit codes {lane.codes})")
    return 1 if any(lane.failed for lane in all_lanes) else 0


if __name__ == "__main__":
    sys.exit(main())
