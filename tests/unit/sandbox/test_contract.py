"""The sandbox's copies of the operator's API strings (it never imports the operator) and its
command line (`ecs-sandbox serve | demo`, the operator's `ecs-operator run | crds`)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import ecs_operator
from ecs_operator import cli as operator_cli
from ecs_operator.core.labels import SERVICE_LABEL
from ecs_operator.core.placement import ZONE_LABEL
from ecs_sandbox import cli as sandbox_cli
from ecs_sandbox import client, cluster, contract, serve


def test_the_copied_api_strings_match_the_operator() -> None:
    assert contract.API_GROUP == ecs_operator.API_GROUP
    assert contract.API_VERSION == ecs_operator.API_VERSION
    assert contract.SERVICE_LABEL == SERVICE_LABEL
    assert cluster.ZONE_LABEL == ZONE_LABEL
    assert client.TASKS.group == ecs_operator.API_GROUP


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_each_distribution_has_its_own_commands() -> None:
    assert set(_subcommands(operator_cli.build_parser())) == {"run", "crds"}
    assert set(_subcommands(sandbox_cli.build_parser())) == {"serve", "demo"}


def test_the_demo_takes_every_flag_of_serve() -> None:
    commands = _subcommands(sandbox_cli.build_parser())
    standalone = argparse.ArgumentParser()
    serve.add_arguments(standalone)
    assert _options(commands["serve"]) == _options(standalone)
    assert _options(commands["serve"]) < _options(commands["demo"])
    assert _options(commands["demo"]) - _options(commands["serve"]) == {
        "--examples",
        "--no-scenes",
        "--no-live",
        "--duration",
    }


def test_the_sandbox_runs_without_the_operator() -> None:
    """Every module of ecs_sandbox imports with `ecs_operator` unimportable (as where only the
    ecs-sandbox distribution is installed)."""
    script = (
        "import importlib, pkgutil, sys\n"
        "sys.modules['ecs_operator'] = None\n"
        "import ecs_sandbox\n"
        "for module in pkgutil.iter_modules(ecs_sandbox.__path__):\n"
        "    importlib.import_module('ecs_sandbox.' + module.name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('ecs_operator.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
