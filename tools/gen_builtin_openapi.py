"""Regenerate sandbox/ecs_sandbox/openapi_builtin.json (run with the dev venv).

The sandbox publishes OpenAPI v3 for the built-in kinds it serves so that `kubectl explain` and
`kubectl apply` work as against kube-apiserver. The schemas come from the kubernetes-validate
package (a dev dependency; its bundled Kubernetes 1.32 definitions), converted back from its
JSON-Schema form (`type: [x, "null"]`, `#/$defs/` refs) to the OpenAPI v3 form kube-apiserver
serves (`type: x`, `allOf: [{$ref: #/components/schemas/…}]`), and trimmed to the kinds served
and what they reference. Usage: `.venv/bin/python tools/gen_builtin_openapi.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate

KUBERNETES_VERSION = "1.32.0"
KINDS = [
    *(
        f"io.k8s.api.core.v1.{kind}"
        for kind in (
            "Namespace",
            "Node",
            "Pod",
            "Event",
            "Service",
            "Secret",
            "ConfigMap",
            "ServiceAccount",
            "Endpoints",
        )
    ),
    "io.k8s.api.discovery.v1.EndpointSlice",
    "io.k8s.api.apps.v1.ControllerRevision",
    "io.k8s.api.apps.v1.Deployment",
    *(
        f"io.k8s.api.rbac.v1.{kind}"
        for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    ),
    "io.k8s.api.coordination.v1.Lease",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
]
# Always published: what a custom resource's schema and list refer to.
SHARED = [
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
]
OUTPUT = Path(__file__).resolve().parent.parent / "sandbox/ecs_sandbox/openapi_builtin.json"
REF_PREFIX = "#/components/schemas/"


def convert(node: Any) -> Any:
    """kubernetes-validate's JSON Schema back to kube-apiserver's OpenAPI v3 form."""
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            kept = [t for t in value if t != "null"]
            result[key] = kept[0] if len(kept) == 1 else kept
        elif key == "properties":
            result[key] = {name: convert(sub) for name, sub in value.items()}
        else:
            result[key] = convert(value)
    ref = result.pop("$ref", None)
    if isinstance(ref, str):
        target = {"$ref": REF_PREFIX + ref.rsplit("/", 1)[-1]}
        if not result:
            return target
        result["allOf"] = [target]
    return result


def references(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            found |= references(value)
    elif isinstance(node, list):
        for value in node:
            found |= references(value)
    return found


def main() -> None:
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    definitions = json.loads((root / f"v{KUBERNETES_VERSION}-local/_definitions.json").read_text())
    definitions = definitions["$defs"]
    wanted = [*KINDS, *(f"{kind}List" for kind in KINDS), *SHARED]
    schemas: dict[str, Any] = {}
    pending = list(wanted)
    while pending:
        name = pending.pop()
        if name in schemas:
            continue
        schemas[name] = definitions[name]
        pending.extend(references(definitions[name]))
    converted = {name: convert(schemas[name]) for name in sorted(schemas)}
    for schema in converted.values():
        # kubernetes-validate pins apiVersion/kind with an enum; kube-apiserver does not
        for key in ("apiVersion", "kind"):
            schema.get("properties", {}).get(key, {}).pop("enum", None)
    document = {"kubernetesVersion": KUBERNETES_VERSION, "schemas": converted}
    OUTPUT.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes, {len(converted)} schemas)")


if __name__ == "__main__":
    main()
