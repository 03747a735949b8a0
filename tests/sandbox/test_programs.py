"""How the simulated kubelet reads a container's command: the rules of `programs.py`."""

from __future__ import annotations

import pytest

from ecs_sandbox.programs import RunPlan, exec_probe_passes, plan_container

FOREVER = RunPlan(seconds=None)


@pytest.mark.parametrize(
    ("command", "args", "plan"),
    [
        (["sh", "-c", "sleep 5; exit 3"], None, RunPlan(5.0, 3)),
        (["/bin/sh", "-c", "exit 3"], None, RunPlan(0.0, 3)),
        (["bash", "-c", "sleep 0.5 && exit 0"], None, RunPlan(0.5, 0)),
        (["sh", "-c"], ["sleep 1\nexit 7"], RunPlan(1.0, 7)),
        (["sh"], ["-c", "sleep 2"], RunPlan(2.0, 0)),
        (["sh", "-c", "echo starting; date; sleep 1; true"], None, RunPlan(1.0, 0)),
        (["sh", "-c", "echo ready > /tmp/ready && sleep 1"], None, RunPlan(1.0, 0)),
        (["sh", "-c", "sleep 1m"], None, RunPlan(60.0, 0)),
        (["sh", "-c", "sleep 1 2"], None, RunPlan(3.0, 0)),
        (["sh", "-c", "exit 300"], None, RunPlan(0.0, 44)),
        (["sh", "-c", "false"], None, RunPlan(0.0, 1)),
        (["sh", "-c", "false || exit 4"], None, RunPlan(0.0, 4)),
        (["sh", "-c", "false && exit 4; exit 5"], None, RunPlan(0.0, 5)),
        (["sh", "-c", "false &&\n exit 4\nexit 5"], None, RunPlan(0.0, 5)),
        (["sh", "-c", "false; exit"], None, RunPlan(0.0, 1)),
        (["sh", "-ec", "false; exit 9"], None, RunPlan(0.0, 1)),
        (["sh", "-c", "set -e; false; exit 9"], None, RunPlan(0.0, 1)),
        (["sh", "-c", "exec sleep 3"], None, RunPlan(3.0, 0)),
        (["sh", "-c", "FOO=bar; export FOO; exit 2"], None, RunPlan(0.0, 2)),
        (["sh", "-c", "# just a comment"], None, RunPlan(0.0, 0)),
        (["sh", "-c", 'echo "unbalanced'], None, RunPlan(0.0, 2)),
        (["sh", "-c", "exit nope"], None, RunPlan(0.0, 2)),
        (["sleep", "2"], None, RunPlan(2.0, 0)),
        (["/bin/sleep"], ["0.25"], RunPlan(0.25, 0)),
        (["false"], None, RunPlan(0.0, 1)),
        (["echo", "hello"], None, RunPlan(0.0, 0)),
    ],
)
def test_commands_with_a_known_outcome(
    command: list[str], args: list[str] | None, plan: RunPlan
) -> None:
    assert plan_container(command, args) == plan


@pytest.mark.parametrize(
    ("command", "args"),
    [
        (None, None),
        ([], []),
        (["nginx", "-g", "daemon off;"], None),
        (["sleep", "infinity"], None),
        (["sh", "-c", "sleep infinity"], None),
        (["sh", "-c", "while true; do sleep 1; done"], None),
        (["sh", "-c", "sleep 1; exec nginx"], None),
        (["sh", "-c", "echo hi | nc -l 8080"], None),
        (["sh", "-c", "sleep 1 &"], None),
        (["sh", "-c", "sleep $DELAY"], None),
        (["sh", "script.sh"], None),
        (["python", "-c", "exit(3)"], None),
    ],
)
def test_everything_else_runs_until_stopped(
    command: list[str] | None, args: list[str] | None
) -> None:
    plan = plan_container(command, args)
    assert plan == FOREVER
    assert plan.forever


def test_the_first_terminating_command_wins_over_a_later_server() -> None:
    assert plan_container(["sh", "-c", "sleep 1; exit 3; nginx"], None) == RunPlan(1.0, 3)


@pytest.mark.parametrize(
    ("command", "passes"),
    [
        (["sh", "-c", "exit 1"], False),
        (["false"], False),
        (["sh", "-c", "test -f /tmp/ready || exit 1"], True),
        (["cat", "/tmp/healthy"], True),
        (["sh", "-c", "exit 0"], True),
        (["curl", "-f", "http://localhost/"], True),
        (None, True),
    ],
)
def test_exec_probes_pass_unless_they_would_fail(command: list[str] | None, passes: bool) -> None:
    assert exec_probe_passes(command) is passes
