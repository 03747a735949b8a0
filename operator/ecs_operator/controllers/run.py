"""`ecs-operator run`: the operator against a kubeconfig or the in-cluster config."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.controllers import kopf_adapter, watches
from ecs_operator.controllers.alarms import load_alarms_file
from ecs_operator.controllers.context import OperatorOptions
from ecs_operator.core.alarms import (
    DEFAULT_BAKE_SECONDS,
    DEFAULT_INTERVAL_SECONDS,
    MIN_INTERVAL_SECONDS,
)
from ecs_operator.core.security import InstallPolicy, parse_label, parse_service_account
from ecs_operator.kube.client import KubeClient, KubeError
from ecs_operator.kube.leader import LeaderElection

logger = logging.getLogger("ecs_operator")
T = TypeVar("T")

REQUIRED_PLURALS = ("taskdefinitions", "tasks", "services", "loadbalancers")
# controller-runtime's health-probe port; 8080 is the sandbox's API server (`ecs-sandbox serve`),
# so `ecs-sandbox serve` and `ecs-operator run` start side by side with their defaults.
HEALTH_PORT = 8081


def _flag_value(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from a parser that raises ValueError naming the expected form."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _own_service_account() -> tuple[str, str] | None:
    namespace = os.environ.get("POD_NAMESPACE")
    name = os.environ.get("POD_SERVICE_ACCOUNT")
    return (namespace, name) if namespace and name else None


def liveness_url(
    liveness: str | None, health_address: str, health_port: int = HEALTH_PORT
) -> str | None:
    """Kopf's health endpoint: ``--liveness`` as given ('' disables it), else on
    ``--health-address`` and ``--health-port``."""
    if liveness is not None:
        return liveness or None
    host = f"[{health_address}]" if ":" in health_address else health_address
    return f"http://{host}:{health_port}/healthz"


def _endpoint(url: str) -> tuple[str, int]:
    """(host, port) a URL's server listens on (port 80 when the URL has none)."""
    parts = urlsplit(url)
    return parts.hostname or "0.0.0.0", parts.port or 80


def listen_problem(host: str, port: int) -> str | None:
    """Why nothing could listen on host:port right now (None when it could): the check made
    before the operator starts, so a port in use is one line, not a traceback from inside Kopf.
    Binds the way aiohttp and prometheus-client do (SO_REUSEADDR), then lets go."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return f"cannot resolve {host!r}: {error.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            return error.strerror or str(error)
    return None


def busy_port_message(what: str, host: str, port: int, problem: str, remedy: str) -> str:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"ecs-operator: cannot serve the {what} on {where}: {problem.lower()}; {remedy}"


def endpoint_problems(args: argparse.Namespace) -> list[str]:
    """One line per endpoint the operator could not listen on (health, metrics)."""
    problems = []
    liveness = liveness_url(args.liveness, args.health_address, args.health_port)
    if liveness is not None:
        host, port = _endpoint(liveness)
        problem = listen_problem(host, port)
        if problem is not None:
            remedy = (
                "change the URL of --liveness, or turn the endpoint off with --liveness ''"
                if args.liveness
                else "pick another port with --health-port, or turn the endpoint off with "
                "--liveness ''"
            )
            problems.append(busy_port_message("health endpoint", host, port, problem, remedy))
    if args.metrics_port:
        problem = listen_problem(args.metrics_address, args.metrics_port)
        if problem is not None:
            remedy = "pick another port with --metrics-port (0 turns metrics off)"
            problems.append(
                busy_port_message(
                    "metrics endpoint", args.metrics_address, args.metrics_port, problem, remedy
                )
            )
    return problems


def _seconds_at_least(minimum: float) -> Callable[[str], float]:
    def convert(text: str) -> float:
        value = float(text)
        if not value >= minimum:
            raise argparse.ArgumentTypeError(f"at least {minimum:g} seconds, not {text}")
        return value

    return convert


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `ecs-operator run`; a default is shown by `--help` unless the help text
    says it (ecs_operator.cli.HelpFormatter)."""
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig to connect with (default: $KUBECONFIG, else ~/.kube/config, else the "
        "in-cluster ServiceAccount)",
    )
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="manage only this namespace; repeat for several (default: all namespaces)",
    )
    security = parser.add_argument_group(
        "security",
        "By default a task may do what a plain Pod may: privileged containers, host\n"
        "namespaces, hostPath volumes and added capabilities are refused.",
    )
    security.add_argument(
        "--allow-privileged",
        action="store_true",
        help="permit privileged containers, host namespaces, hostPath volumes and capabilities "
        "beyond the runtime's default set, in every namespace",
    )
    security.add_argument(
        "--allow-privileged-namespace",
        action="append",
        default=[],
        metavar="NS",
        help="permit them in this namespace only; repeat for several",
    )
    security.add_argument(
        "--allow-privileged-label",
        type=_flag_value(parse_label),
        metavar="KEY=VALUE",
        help="permit them in namespaces carrying this label (whoever may label namespaces "
        "grants it)",
    )
    security.add_argument(
        "--operator-service-account",
        type=_flag_value(parse_service_account),
        default=_own_service_account(),
        metavar="NAMESPACE/NAME",
        help="the operator's own ServiceAccount, which no task role may name (default: "
        "$POD_NAMESPACE/$POD_SERVICE_ACCOUNT when both are set)",
    )
    endpoints = parser.add_argument_group("endpoints")
    endpoints.add_argument(
        "--health-address",
        default="127.0.0.1",
        metavar="ADDR",
        help="address of the health endpoint http://ADDR:PORT/healthz; in a Pod, the Pod's IP",
    )
    endpoints.add_argument(
        "--health-port",
        type=_port,
        default=HEALTH_PORT,
        metavar="PORT",
        help="port of the health endpoint",
    )
    endpoints.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="the health endpoint's URL, instead of --health-address and --health-port ('' "
        "turns it off)",
    )
    endpoints.add_argument(
        "--metrics-port",
        type=_port,
        default=0,
        metavar="PORT",
        help="serve Prometheus metrics on this port (default: 0, no metrics endpoint)",
    )
    endpoints.add_argument(
        "--metrics-address",
        default="127.0.0.1",
        metavar="ADDR",
        help="address the metrics endpoint listens on; in a Pod, the Pod's IP",
    )
    election = parser.add_argument_group("leader election")
    election.add_argument(
        "--leader-elect",
        action="store_true",
        help="run as one of several replicas: only the holder of the Lease reconciles, the "
        "others stand by (without it, the operator refuses to start while another holds it)",
    )
    election.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        metavar="NS",
        help="namespace of the Lease ecs-operator every operator takes (default: "
        "$POD_NAMESPACE, else default)",
    )
    election.add_argument(
        "--leader-election-lease-seconds",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how long a silent leader keeps the Lease before a standby takes over",
    )
    alarms = parser.add_argument_group(
        "deployment alarms",
        "deploymentConfiguration.alarms names alarms of the install: Prometheus\n"
        "queries, in ALARM while they return a sample whose value is not zero.",
    )
    alarms.add_argument(
        "--prometheus-url",
        metavar="URL",
        help="the Prometheus server whose HTTP API (URL/api/v1/query) evaluates the alarms",
    )
    alarms.add_argument(
        "--alarms-file",
        metavar="PATH",
        help="YAML file of the alarms: 'alarms: [{name: NAME, query: PROMQL}]'",
    )
    alarms.add_argument(
        "--alarm-interval",
        type=_seconds_at_least(MIN_INTERVAL_SECONDS),
        default=DEFAULT_INTERVAL_SECONDS,
        metavar="SECONDS",
        help="how often a deployment's alarms are evaluated while it is watched",
    )
    alarms.add_argument(
        "--alarm-bake",
        type=_seconds_at_least(0.0),
        default=DEFAULT_BAKE_SECONDS,
        metavar="SECONDS",
        help="how long a ROLLING deployment with alarms stays IN_PROGRESS, watched, after it "
        "reached a steady state (ECS's bake time, which it derives from the alarms)",
    )
    tuning = parser.add_argument_group("tuning")
    tuning.add_argument(
        "--resolve-grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long a Task waits for its task definition to appear before it fails to start",
    )
    tuning.add_argument(
        "--workers", type=int, default=8, metavar="N", help="reconcile workers per kind"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    busy = endpoint_problems(args)
    if busy:
        print("\n".join(busy), file=sys.stderr)
        return 2
    missing = asyncio.run(_missing_crds(args.kubeconfig))
    if missing:
        print(
            f"ecs-operator: the CRDs are not installed (missing: {', '.join(missing)}). "
            "Install them first: kubectl apply --server-side --force-conflicts -f crds/",
            file=sys.stderr,
        )
        return 2
    try:
        alarms = load_alarms_file(args.alarms_file) if args.alarms_file else ()
    except ValueError as error:
        print(f"ecs-operator: {error}", file=sys.stderr)
        return 2
    options = OperatorOptions(
        kubeconfig=args.kubeconfig,
        security=InstallPolicy(
            allow_privileged=args.allow_privileged,
            privileged_namespaces=frozenset(args.allow_privileged_namespace),
            privileged_label=args.allow_privileged_label,
            operator_service_account=args.operator_service_account,
        ),
        resolve_grace_seconds=args.resolve_grace,
        workers=args.workers,
        namespaces=tuple(args.namespace),
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
        leader_election=args.leader_elect,
        leader_election_namespace=args.leader_election_namespace,
        leader_election_lease_seconds=args.leader_election_lease_seconds,
        prometheus_url=args.prometheus_url,
        alarms=alarms,
        alarm_interval_seconds=args.alarm_interval,
        alarm_bake_seconds=args.alarm_bake,
    )
    election = watches.leader_election(options)
    if not options.leader_election:
        refusal = asyncio.run(_claim(election))
        if refusal:
            print(f"ecs-operator: {refusal}", file=sys.stderr)
            election.kube.close()
            return 2
    try:
        kopf_adapter.run(
            options,
            election,
            liveness_endpoint=liveness_url(args.liveness, args.health_address, args.health_port),
            verbose=args.verbose,
        )
    except OSError as error:
        if error.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        # The port was taken between the check above and Kopf's listening on it.
        print(f"ecs-operator: cannot serve an endpoint: {error}", file=sys.stderr)
        return 2
    return 0


async def _claim(election: LeaderElection) -> str | None:
    """Without --leader-elect the operator still takes the Lease, so a second one (two
    replicas without leader election) is refused rather than acting twice. Why not, or None."""
    where = f"{election.namespace}/{election.name}"
    try:
        holder = await election.claim()
    except KubeError as error:
        return (
            f"cannot take the Lease {where} ({error}); the operator needs get, create and patch "
            "on it (see manifests/rbac.yaml)"
        )
    if holder is None:
        return None
    return (
        f"another operator ({holder}) holds the Lease {where} and renews it. Run one replica, "
        "or several with --leader-elect"
    )


async def _missing_crds(kubeconfig: str | None) -> list[str]:
    client = KubeClient.from_kubeconfig(kubeconfig)
    try:
        served = await client.request("GET", f"/apis/{API_GROUP}/{API_VERSION}")
    except KubeError as error:
        if error.not_found:
            return [f"{plural}.{API_GROUP}" for plural in REQUIRED_PLURALS]
        raise
    finally:
        client.close()
    names = {resource.get("name") for resource in served.get("resources", [])}
    return [f"{plural}.{API_GROUP}" for plural in REQUIRED_PLURALS if plural not in names]
