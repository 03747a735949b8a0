"""`ecs-operator` command line: `run`, `sandbox`, `demo`, `crds`.

Each subcommand lives next to what it drives and exposes `add_arguments(parser)` and
`main(args) -> int`; this module only wires them together.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ecs_operator import __version__
from ecs_operator import demo as demo_cli
from ecs_operator.handlers import run as run_cli
from ecs_operator.sandbox import cli as sandbox_cli

SUBCOMMANDS = {
    "run": (run_cli, "run the operator against a kubeconfig or the in-cluster config"),
    "sandbox": (sandbox_cli, "start the sandbox cluster alone (in-memory API server + zone nodes)"),
    "demo": (demo_cli, "the sandbox, the operator and the examples, with a live view of tasks"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecs-operator", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ecs-operator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, summary) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
