"""Which collections the sandbox serves: the built-in kinds plus the served CRD versions.

The Store keeps the registry in step with CustomResourceDefinition objects (`add_crd` on create
and update, `remove_crd` once a CRD is gone), so discovery and routing read one source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ecs_sandbox.errors import ApiError
from ecs_sandbox.resources import ResourceType
from ecs_sandbox.schema import SchemaValidator


def _builtin(
    group: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    subresources: tuple[str, ...] = (),
    version: str = "v1",
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        subresources=frozenset(subresources),
    )


BUILTINS: tuple[ResourceType, ...] = (
    _builtin(
        "", "namespaces", "Namespace", namespaced=False, short=("ns",), subresources=("status",)
    ),
    _builtin("", "nodes", "Node", namespaced=False, short=("no",), subresources=("status",)),
    _builtin(
        "",
        "pods",
        "Pod",
        short=("po",),
        categories=("all",),
        subresources=("status", "binding", "eviction"),
    ),
    _builtin("", "events", "Event", short=("ev",)),
    _builtin(
        "", "services", "Service", short=("svc",), categories=("all",), subresources=("status",)
    ),
    _builtin("", "secrets", "Secret"),
    _builtin("", "configmaps", "ConfigMap", short=("cm",)),
    _builtin("", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _builtin("", "endpoints", "Endpoints", short=("ep",)),
    _builtin("discovery.k8s.io", "endpointslices", "EndpointSlice"),
    _builtin("apps", "controllerrevisions", "ControllerRevision"),
    # Stored only (no controller runs them): so the operator's own install applies cleanly.
    _builtin(
        "apps",
        "deployments",
        "Deployment",
        short=("deploy",),
        categories=("all",),
        subresources=("status",),
    ),
    _builtin("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", namespaced=False),
    _builtin(
        "rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
    ),
    _builtin("rbac.authorization.k8s.io", "roles", "Role"),
    _builtin("rbac.authorization.k8s.io", "rolebindings", "RoleBinding"),
    _builtin("coordination.k8s.io", "leases", "Lease"),
    _builtin("events.k8s.io", "events", "Event", short=("ev",)),
    _builtin(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short=("crd", "crds"),
        categories=("api-extensions",),
        subresources=("status",),
    ),
)

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key putting versions in kube order: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > other."""
    match = _VERSION.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    stage_rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (stage_rank, -int(major), -int(minor or 0), version)


class Registry:
    """Served resource types keyed by (group, version, plural)."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {rt.key: rt for rt in BUILTINS}
        self._validators: dict[tuple[str, str, str], SchemaValidator] = {}
        # CRD name -> the keys it registered, so an update or delete removes exactly those.
        self._crd_keys: dict[str, list[tuple[str, str, str]]] = {}

    def get(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self._types.get((group, version, plural))
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rt

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType:
        for rt in self._types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        raise ApiError(
            404, "NotFound", f'no matches for kind "{kind}" in version "{group}/{version}"'
        )

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def groups(self) -> dict[str, list[str]]:
        """Group -> served versions, preferred version first (the core group is "")."""
        versions: dict[str, set[str]] = {}
        for rt in self._types.values():
            versions.setdefault(rt.group, set()).add(rt.version)
        return {group: sorted(found, key=version_priority) for group, found in versions.items()}

    def validator(self, rt: ResourceType) -> SchemaValidator | None:
        """The schema validator of a served CRD version; None for built-in kinds."""
        return self._validators.get(rt.key)

    def conflicting_names(self, crd: dict[str, Any]) -> str | None:
        """Why a CRD's names clash with a collection someone else serves (None when they don't)."""
        spec = crd["spec"]
        names = spec["names"]
        own = set(self._crd_keys.get(crd["metadata"]["name"], ()))
        for rt in self._types.values():
            if rt.group != spec["group"] or rt.key in own:
                continue
            if rt.plural == names["plural"]:
                return f'"{rt.plural}" is already in use'
            if rt.kind == names["kind"]:
                return f'"{rt.kind}" is already in use'
        return None

    def crd_types(self, crd: dict[str, Any]) -> list[tuple[ResourceType, SchemaValidator]]:
        """The collections an accepted CRD serves, with their validators; changes nothing."""
        spec = crd["spec"]
        names = spec["names"]
        built: list[tuple[ResourceType, SchemaValidator]] = []
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            subresources = version.get("subresources") or {}
            rt = ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                kind=names["kind"],
                namespaced=spec["scope"] == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(k for k in ("status", "scale") if k in subresources),
                crd_version=version,
            )
            built.append((rt, SchemaValidator.from_crd_version(crd, version)))
        return built

    def serve_crd(
        self, crd_name: str, entries: Sequence[tuple[ResourceType, SchemaValidator]]
    ) -> None:
        """Serve what `crd_types` built, replacing whatever the CRD served before."""
        self.remove_crd(crd_name)
        for rt, validator in entries:
            self._types[rt.key] = rt
            self._validators[rt.key] = validator
        self._crd_keys[crd_name] = [rt.key for rt, _ in entries]

    def add_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        """Serve every `served: true` version of an accepted CRD (replacing earlier entries)."""
        entries = self.crd_types(crd)
        self.serve_crd(crd["metadata"]["name"], entries)
        return [rt for rt, _ in entries]

    def remove_crd(self, crd_name: str) -> None:
        for key in self._crd_keys.pop(crd_name, []):
            self._types.pop(key, None)
            self._validators.pop(key, None)
