"""The framework's floor: the smallest useful Kopf operator, one Pod per `Floor` object.

The baseline of the task benchmark (reference/targets.md, P1 and P2): whatever ecs-operator
adds on top of Kopf shows as the ratio between the two, measured in the same run. It is the
operator Kopf's own documentation shows — one `@kopf.on.event` handler that creates a Pod with
the `kubernetes` client (the client ecs-operator uses too) and no state of its own — and it
runs exactly like `ecs-operator run`: `kopf.run(standalone=True, clusterwide=True)` in its
own process:

    .venv/bin/python tests/bench/floor_operator.py --kubeconfig KUBECONFIG

Its CRD, `floors.bench.ecs.operator.dev`, is `crd_manifest()`; the benchmark installs it.
The Pod is left to the cluster's scheduler (no placement), named after the object.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import kopf
import kubernetes

GROUP = "bench.ecs.operator.dev"
VERSION = "v1"
PLURAL = "floors"
KIND = "Floor"
IMAGE = "busybox:1.36"


def crd_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "floor", "kind": KIND, "listKind": "FloorList"},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def floor_body(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}}


def pod_manifest(owner: dict[str, Any]) -> dict[str, Any]:
    """The same container as the benchmark's task definition: busybox, 64 MiB, forever."""
    metadata = owner["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": metadata["name"],
            "labels": {f"{GROUP}/floor": metadata["name"]},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": KIND,
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}},
                }
            ],
        },
    }


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.connect_timeout = 10
    memo.core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(memo.configuration))


@kopf.on.event(GROUP, VERSION, PLURAL)
def floor_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    # None is the initial listing, ADDED a new object; later events need nothing.
    if event.get("type") not in (None, "ADDED"):
        return
    body = event["object"]
    try:
        memo.core.create_namespaced_pod(body["metadata"]["namespace"], pod_manifest(body))
    except kubernetes.client.ApiException as error:
        if error.status != 409:  # already created (a restart relisted it)
            raise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    args = parser.parse_args()
    os.environ["KUBECONFIG"] = args.kubeconfig
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(args.kubeconfig, client_configuration=configuration)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    kopf.run(
        standalone=True,
        clusterwide=True,
        liveness_endpoint=None,
        memo=kopf.Memo(configuration=configuration),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
