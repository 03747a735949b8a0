"""`ecs-sandbox` command line: `serve`, `demo`.

Each subcommand lives next to what it drives and exposes `add_arguments(parser)` and
`main(args) -> int`; this module only wires them together. The sandbox never imports the
operator: the demo runs it (`ecs-operator run`, `ecs-operator crds`) as a subprocess.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ecs_sandbox import __version__
from ecs_sandbox import demo as demo_cli
from ecs_sandbox import serve as serve_cli

SUBCOMMANDS = {
    "serve": (serve_cli, "start the sandbox cluster alone (in-memory API server + zone nodes)"),
    "demo": (demo_cli, "the sandbox, the operator and the examples, with a live view of tasks"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecs-sandbox", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ecs-sandbox {__version__}")
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
