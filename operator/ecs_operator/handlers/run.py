"""`ecs-operator run`: the operator against a kubeconfig or the in-cluster config."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

import kopf

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.handlers.context import OperatorOptions
from ecs_operator.kube.client import KubeClient, KubeError
from ecs_operator.kube.leader import LeaderElection

logger = logging.getLogger("ecs_operator")

REQUIRED_PLURALS = ("taskdefinitions", "tasks", "services", "loadbalancers")


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
        help="permit privileged containers, host namespaces, hostPath volumes, added capabilities",
    )
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="Kopf health endpoint URL ('' to disable)",
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
    if not args.verbose:
        # Kopf logs every handled watch event at INFO ("Handler … succeeded"): one line per
        # event of every pod and node, which costs time and buries what matters.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    missing = asyncio.run(_missing_crds(args.kubeconfig))
    if missing:
        print(
            f"ecs-operator: the CRDs are not installed (missing: {', '.join(missing)}). "
            "Install them first: kubectl apply -f crds/",
            file=sys.stderr,
        )
        return 2
    options = OperatorOptions(
        kubeconfig=args.kubeconfig,
        allow_privileged=args.allow_privileged,
        resolve_grace_seconds=args.resolve_grace,
        workers=args.workers,
        namespaces=tuple(args.namespace),
        metrics_port=args.metrics_port,
        leader_election=args.leader_elect,
        leader_election_namespace=args.leader_election_namespace,
        leader_election_lease_seconds=args.leader_election_lease_seconds,
    )
    from ecs_operator.handlers import watches  # registers the Kopf handlers

    election = watches.leader_election(options)
    if not options.leader_election:
        refusal = asyncio.run(_claim(election))
        if refusal:
            print(f"ecs-operator: {refusal}", file=sys.stderr)
            election.kube.close()
            return 2
    kopf.run(
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness or None,
        memo=kopf.Memo(options=options, election=election),
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
