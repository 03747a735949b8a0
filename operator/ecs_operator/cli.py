"""`ecs-operator` command line: `run`, `crds`.

Each subcommand lives next to what it drives and exposes `add_arguments(parser)` and a function
of the parsed arguments returning the exit code; this module only wires them together. The
sandbox cluster and the demo are another distribution's command (`ecs-sandbox serve | demo`):
the operator never imports them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ecs_operator import __version__
from ecs_operator.controllers import run as run_cli
from ecs_operator.models import crd as crd_cli

Subcommand = tuple[
    Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str
]

SUBCOMMANDS: dict[str, Subcommand] = {
    "run": (
        run_cli.add_arguments,
        run_cli.main,
        "run the operator against a kubeconfig or the in-cluster config",
    ),
    "crds": (
        crd_cli.add_arguments,
        crd_cli.run,
        "print the CustomResourceDefinitions this operator serves (what crds/ holds)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecs-operator", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ecs-operator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, handler, summary) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        add_arguments(sub)
        sub.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
