"""What the sandbox serves: one `ResourceType` per REST collection (built-in kinds and CRDs)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResourceType:
    """A served collection, e.g. core/v1 `pods` or `ecs.operator.dev/v1alpha1` `tasks`."""

    group: str  # "" for the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Subresources served under the object: "status", "scale", "binding", "eviction".
    subresources: frozenset[str] = field(default_factory=frozenset)
    # Set for custom resources: the served version's CRD definition (schema, scale paths …).
    crd_version: dict | None = field(default=None, compare=False, hash=False)  # type: ignore[type-arg]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources
