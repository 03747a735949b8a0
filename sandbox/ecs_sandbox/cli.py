"""`ecs-sandbox` command line: `serve`, `demo`.

Each subcommand lives next to what it drives and exposes `add_arguments(parser)` and
`main(args) -> int`; this module only wires them together and holds the texts users see
(`DESCRIPTION`, `EPILOG`). The sandbox never imports the operator: the demo runs it
(`ecs-operator run`, `ecs-operator crds`) as a subprocess.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ecs_sandbox import __version__
from ecs_sandbox import demo as demo_cli
from ecs_sandbox import serve as serve_cli

DESCRIPTION = """\
A Kubernetes API server in memory, with simulated zone-labelled nodes, to try
ecs-operator without a cluster. It runs no containers: the simulated kubelet
plays each container's `sleep N` / `exit N` and runs anything else until
stopped."""

EPILOG = """\
examples:
  ecs-sandbox demo      # the sandbox, the operator, the examples and a live view
  ecs-sandbox serve     # the sandbox alone, on http://127.0.0.1:8080; then:
  ecs-operator run --kubeconfig .sandbox/kubeconfig

Run `ecs-sandbox COMMAND --help` for a command's options."""

SUBCOMMANDS = {
    "serve": (serve_cli, "start the sandbox cluster alone (in-memory API server + zone nodes)"),
    "demo": (demo_cli, "the sandbox, the operator and the examples, with a live view of tasks"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecs-sandbox",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ecs-sandbox {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", title="commands"
    )
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
