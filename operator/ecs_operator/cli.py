"""`ecs-operator` command line: `run`, `crds`.

Each subcommand lives next to what it drives and exposes `add_arguments(parser)` and a function
of the parsed arguments returning the exit code; this module only wires them together and holds
the texts users see (`DESCRIPTION`, `EPILOG`, `SUBCOMMANDS`). The sandbox cluster and the demo
are another distribution's command (`ecs-sandbox serve | demo`): the operator never imports them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ecs_operator import __version__
from ecs_operator.controllers import run as run_cli
from ecs_operator.models import crd as crd_cli

Subcommand = tuple[
    Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str, str
]

DESCRIPTION = """\
Amazon ECS semantics on Kubernetes: the operator that runs the TaskDefinition,
Task, Service and LoadBalancer custom resources (API group ecs.operator.dev)."""

EPILOG = """\
examples:
  ecs-operator crds | kubectl apply --server-side --force-conflicts -f -
  ecs-operator run         # $KUBECONFIG, else ~/.kube/config, else in-cluster
  ecs-operator run --kubeconfig .sandbox/kubeconfig    # on `ecs-sandbox serve`

Run `ecs-operator COMMAND --help` for a command's options."""

RUN_DESCRIPTION = """\
Run the operator until SIGTERM or Ctrl-C: watch the ECS custom resources, Pods
and Nodes, and reconcile them. It connects with --kubeconfig, else $KUBECONFIG,
else ~/.kube/config, else the in-cluster ServiceAccount, and needs the CRDs
installed (ecs-operator crds). One operator runs per cluster: each takes the
Lease ecs-operator (several replicas: --leader-elect)."""

CRDS_DESCRIPTION = """\
Print the CustomResourceDefinitions this operator serves, the same YAML as the
repository's crds/:

  ecs-operator crds | kubectl apply --server-side --force-conflicts -f -"""

SUBCOMMANDS: dict[str, Subcommand] = {
    "run": (
        run_cli.add_arguments,
        run_cli.main,
        "run the operator against a kubeconfig or the in-cluster config",
        RUN_DESCRIPTION,
    ),
    "crds": (
        crd_cli.add_arguments,
        crd_cli.run,
        "print the CustomResourceDefinitions to install (what crds/ holds)",
        CRDS_DESCRIPTION,
    ),
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and epilogs, and shows each option's default when
    it has one to show (not None, False, empty or zero-length) and its help does not say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "(default" in text
            or "%(default)" in text
            or default in (None, False, "", argparse.SUPPRESS)
            or (isinstance(default, list | tuple) and not default)
            or action.option_strings == []
        ):
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecs-operator",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ecs-operator {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", title="commands"
    )
    for name, (add_arguments, handler, summary, description) in SUBCOMMANDS.items():
        sub = commands.add_parser(
            name, help=summary, description=description, formatter_class=HelpFormatter
        )
        add_arguments(sub)
        sub.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
