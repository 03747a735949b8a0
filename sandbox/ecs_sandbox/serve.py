"""`ecs-sandbox serve`: serve the sandbox cluster until Ctrl-C or SIGTERM.

The default port is 8080, the plain-HTTP port kube-apiserver used to serve on localhost
(`--port 0` picks a free one). The kubeconfig goes to `.sandbox/kubeconfig` unless
`--kubeconfig` says otherwise; once the server answers, ONE line is printed:

    sandbox ready: http://127.0.0.1:8080 kubeconfig=.sandbox/kubeconfig (export KUBECONFIG=…)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from ecs_sandbox.cluster import ClusterConfig
from ecs_sandbox.runtime import Sandbox
from ecs_sandbox.server import FAULT_CODES, Faults

DEFAULT_PORT = 8080
DEFAULT_KUBECONFIG = Path(".sandbox/kubeconfig")


def _zones(text: str) -> list[str]:
    zones = [zone.strip() for zone in text.split(",") if zone.strip()]
    if not zones:
        raise argparse.ArgumentTypeError("give at least one zone, e.g. zone-a,zone-b,zone-c")
    return zones


def _codes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(code) for code in text.split(",") if code.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"HTTP codes separated by commas, not {text!r}") from None


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ClusterConfig()
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=_non_negative_int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}, kubectl's fallback server; 0 picks a "
        "free port)",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=DEFAULT_KUBECONFIG,
        help=f"where to write the kubeconfig (default {DEFAULT_KUBECONFIG})",
    )
    nodes = parser.add_argument_group("simulated nodes")
    nodes.add_argument(
        "--zones",
        type=_zones,
        default=defaults.zones,
        help=f"comma-separated zone names (default {','.join(defaults.zones)})",
    )
    nodes.add_argument(
        "--nodes-per-zone",
        type=_non_negative_int,
        default=defaults.nodes_per_zone,
        help=f"nodes in each zone (default {defaults.nodes_per_zone})",
    )
    nodes.add_argument(
        "--node-cpu",
        default=defaults.cpu,
        help=f"allocatable CPU of each node (default {defaults.cpu})",
    )
    nodes.add_argument(
        "--node-memory",
        default=defaults.memory,
        help=f"allocatable memory of each node (default {defaults.memory})",
    )
    faults = parser.add_argument_group("API fault injection (resilience testing)")
    faults.add_argument(
        "--fault-error-rate",
        type=float,
        default=0.0,
        help="share of non-watch requests that fail, 0..1 (default 0)",
    )
    faults.add_argument(
        "--fault-codes",
        type=_codes,
        default=FAULT_CODES,
        help=f"HTTP codes injected failures use (default {','.join(map(str, FAULT_CODES))})",
    )
    faults.add_argument(
        "--fault-lost-create-rate",
        type=float,
        default=0.0,
        help="share of creates committed whose response is lost (504 Timeout), 0..1 (default 0)",
    )
    faults.add_argument(
        "--fault-watch-drop-seconds",
        type=float,
        default=None,
        help="close every watch after this many seconds (default never)",
    )
    faults.add_argument(
        "--fault-expire-on-resume",
        action="store_true",
        help="answer every watch resumed from a resourceVersion with 410 Expired",
    )
    faults.add_argument(
        "--fault-expire-rate",
        type=float,
        default=0.0,
        help="share of resumed watches answered 410 Expired, 0..1 (default 0)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault RNG")
    parser.add_argument(
        "--access-log", action="store_true", help="log every HTTP request to stderr"
    )


def sandbox_from_args(args: argparse.Namespace) -> Sandbox:
    """The Sandbox the flags of `add_arguments` describe; ValueError on a bad combination."""
    return Sandbox(
        host=args.host,
        port=args.port,
        kubeconfig_path=args.kubeconfig,
        cluster=ClusterConfig(
            zones=args.zones,
            nodes_per_zone=args.nodes_per_zone,
            cpu=args.node_cpu,
            memory=args.node_memory,
        ),
        faults=Faults(
            error_rate=args.fault_error_rate,
            codes=args.fault_codes,
            lost_create_rate=args.fault_lost_create_rate,
            watch_drop_interval=args.fault_watch_drop_seconds,
            expire_on_resume=args.fault_expire_on_resume,
            expire_rate=args.fault_expire_rate,
            seed=args.seed,
        ),
        access_log=args.access_log,
    )


def main(args: argparse.Namespace) -> int:
    try:
        sandbox = sandbox_from_args(args)
    except ValueError as exc:
        print(f"ecs-sandbox serve: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(sandbox))
    except OSError as exc:
        print(f"ecs-sandbox serve: error: cannot serve: {exc} (try --port 0)", file=sys.stderr)
        return 1
    return 0


async def _serve(sandbox: Sandbox) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await sandbox.start()
    try:
        path = sandbox.kubeconfig_path
        print(
            f"sandbox ready: {sandbox.url} kubeconfig={path} "
            f"(export KUBECONFIG={path.resolve()}; kubectl get nodes)",
            flush=True,
        )
        await stop.wait()
    finally:
        await sandbox.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
