"""`ecs-operator --help` and each command's help: written for users, every default shown."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from ecs_operator.cli import SUBCOMMANDS, build_parser


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def help_text(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*argv, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_the_top_level_help_is_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys=capsys)
    assert text.startswith("usage: ecs-operator [-h] [--version] COMMAND ...")
    assert "Amazon ECS semantics on Kubernetes" in text
    for developer_words in ("add_arguments", "this module", "subcommand lives", "imports"):
        assert developer_words not in text
    assert "ecs-operator crds | kubectl apply --server-side --force-conflicts -f -" in text
    assert max(map(len, text.splitlines())) <= 80


def test_every_command_named_exists_and_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    top = help_text(capsys=capsys)
    section = top.split("commands:")[1].split("examples:")[0]
    listed = set(re.findall(r"^ {4}(\S+)", section, re.MULTILINE))
    assert listed == set(SUBCOMMANDS) == {"run", "crds"}
    for command in SUBCOMMANDS:
        text = help_text(command, capsys=capsys)
        assert text.startswith(f"usage: ecs-operator {command}")
        assert max(map(len, text.splitlines())) <= 80, command


def test_every_option_with_a_default_shows_it(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    for name, sub in commands.choices.items():
        text = " ".join(help_text(name, capsys=capsys).split())
        for action in sub._actions:
            if not action.option_strings or action.default in (None, False, [], argparse.SUPPRESS):
                continue
            flag = action.option_strings[0]
            assert "default" in (action.help or "") or f"(default: {action.default})" in text, (
                f"ecs-operator {name} {flag}: default {action.default!r} not shown"
            )
    run = " ".join(help_text("run", capsys=capsys).split())
    assert "--health-port PORT port of the health endpoint (default: 8081)" in run
    assert "(default: all namespaces)" in run


def test_the_console_script_prints_the_same_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ecs_operator", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "Amazon ECS semantics on Kubernetes" in result.stdout
