"""`ecs-operator run`: the operator against a kubeconfig or the in-cluster config."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.controllers import kopf_adapter, watches
from ecs_operator.controllers.context import OperatorOptions
from ecs_operator.core.security import InstallPolicy, parse_label, parse_service_account
from ecs_operator.kube.client import KubeClient, KubeError
from ecs_operator.kube.leader import LeaderElection

logger = logging.getLogger("ecs_operator")
T = TypeVar("T")

REQUIRED_PLURALS = ("taskdefinitions", "tasks", "services", "loadbalancers")
HEALTH_PORT = 8080


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


def liveness_url(liveness: str | None, health_address: str) -> str | None:
    """Kopf's health endpoint: ``--liveness`` as given ('' disables it), else on
    ``--health-address``."""
    if liveness is not None:
        return liveness or None
    host = f"[{health_address}]" if ":" in health_address else health_address
    return f"http://{host}:{HEALTH_PORT}/healthz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument(
        "--allow-privileged",
        action="store_true",
        help="permit privileged containers, host namespaces, hostPath volumes and capabilities "
        "beyond the runtime's default set, in every namespace",
    )
    parser.add_argument(
        "--allow-privileged-namespace",
        action="append",
        default=[],
        metavar="NS",
        help="permit them in this namespace only (repeatable)",
    )
    parser.add_argument(
        "--allow-privileged-label",
        type=_flag_value(parse_label),
        metavar="KEY=VALUE",
        help="permit them in namespaces carrying this label (whoever may label namespaces "
        "grants it)",
    )
    parser.add_argument(
        "--operator-service-account",
        type=_flag_value(parse_service_account),
        default=_own_service_account(),
        metavar="NAMESPACE/NAME",
        help="the operator's own ServiceAccount, which no task role may name (default: "
        "$POD_NAMESPACE/$POD_SERVICE_ACCOUNT when both are set)",
    )
    parser.add_argument(
        "--health-address",
        default="127.0.0.1",
        metavar="ADDR",
        help=f"address of the health endpoint, http://ADDR:{HEALTH_PORT}/healthz "
        "(default 127.0.0.1: this host only; in a Pod, the Pod's IP)",
    )
    parser.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="health endpoint URL, instead of --health-address ('' to disable)",
    )
    parser.add_argument(
        "--resolve-grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long a Task waits for its task definition to appear before it fails to start",
    )
    parser.add_argument("--workers", type=int, default=8, help="reconcile workers per kind")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        metavar="PORT",
        help="serve Prometheus metrics on this port (default 0: off)",
    )
    parser.add_argument(
        "--metrics-address",
        default="127.0.0.1",
        metavar="ADDR",
        help="address the metrics endpoint listens on (default 127.0.0.1: this host only; in a "
        "Pod, the Pod's IP)",
    )
    parser.add_argument(
        "--leader-elect",
        action="store_true",
        help="run as one of several replicas: only the holder of the Lease reconciles, the "
        "others stand by (without it, the operator refuses to start while another holds it)",
    )
    parser.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        metavar="NS",
        help="namespace of the Lease every operator takes (default: $POD_NAMESPACE, else default)",
    )
    parser.add_argument(
        "--leader-election-lease-seconds",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how long a silent leader keeps the Lease before a standby takes over",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    missing = asyncio.run(_missing_crds(args.kubeconfig))
    if missing:
        print(
            f"ecs-operator: the CRDs are not installed (missing: {', '.join(missing)}). "
            "Install them first: kubectl apply --server-side --force-conflicts -f crds/",
            file=sys.stderr,
        )
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
    )
    election = watches.leader_election(options)
    if not options.leader_election:
        refusal = asyncio.run(_claim(election))
        if refusal:
            print(f"ecs-operator: {refusal}", file=sys.stderr)
            election.kube.close()
            return 2
    kopf_adapter.run(
        options,
        election,
        liveness_endpoint=liveness_url(args.liveness, args.health_address),
        verbose=args.verbose,
    )
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
