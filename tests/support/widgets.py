"""The conformance suite's custom resource: `Widget` (conformance.ecs.operator.dev/v1).

Its CRD exercises what the sandbox must honour: a structural schema with bounds, enums and
defaults, a CEL rule, a preserve-unknown-fields subtree, the status and scale subresources
and printer columns. It is created once per cluster target and kept for the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from support.helpers import ClusterTarget, wait_for

GROUP = "conformance.ecs.operator.dev"
CRD_NAME = f"widgets.{GROUP}"
CRDS_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.replicas",
                    "message": "minReplicas must not exceed replicas",
                }
            ],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "replicas": {"type": "integer", "minimum": 0, "default": 1},
                "minReplicas": {"type": "integer", "minimum": 0, "default": 0},
                "color": {"type": "string", "enum": ["red", "green", "blue"], "default": "red"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "phase": {"type": "string"},
                "replicas": {"type": "integer"},
                "selector": {"type": "string"},
            },
        },
    },
}


def crd_manifest(
    group: str = GROUP, plural: str = "widgets", kind: str = "Widget"
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "listKind": f"{kind}List",
                "shortNames": ["wdg"] if plural == "widgets" else [],
                "categories": ["conformance"],
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": WIDGET_SCHEMA},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {
                            "name": "Color",
                            "type": "string",
                            "jsonPath": ".spec.color",
                            "priority": 1,
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


def is_established(crd: dict[str, Any]) -> bool:
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def ensure_crd(cluster: ClusterTarget, manifest: dict[str, Any]) -> None:
    """Create the CRD unless it exists, then wait until it is Established and served."""
    response = cluster.http.post(CRDS_PATH, json=manifest)
    assert response.status_code in (201, 409), response.text
    name = manifest["metadata"]["name"]
    wait_for(
        lambda: is_established(cluster.http.get(f"{CRDS_PATH}/{name}").json()),
        timeout=30,
        message=f"CRD {name} not Established",
    )
    group, version = manifest["spec"]["group"], manifest["spec"]["versions"][0]["name"]
    plural = manifest["spec"]["names"]["plural"]
    wait_for(
        lambda: cluster.http.get(f"/apis/{group}/{version}/{plural}").status_code == 200,
        timeout=30,
        message=f"{plural}.{group} not served",
    )


@dataclass
class Widgets:
    """Paths and bodies for Widget objects on one cluster target."""

    cluster: ClusterTarget
    api_version: str = f"{GROUP}/v1"

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{GROUP}/v1"
        if namespace is not None:
            base += f"/namespaces/{namespace}"
        base += "/widgets"
        if name is not None:
            base += f"/{name}"
        if sub is not None:
            base += f"/{sub}"
        return base

    def body(self, name: str, **spec: Any) -> dict[str, Any]:
        spec.setdefault("size", 3)
        return {
            "apiVersion": self.api_version,
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": spec,
        }

    def create(self, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
        response = self.cluster.http.post(self.path(namespace), json=self.body(name, **spec))
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result
