"""Ownership before action: what the operator may treat as its own.

Labels and names can be written by anyone who can create the object, so they only find
candidates; an object is a child of an owner only when it carries an ownerReference with the
owner's uid (a Task's Pod, a Service's Tasks), and the Kubernetes objects the operator keeps for
a LoadBalancer must also carry its managed-by label. Anything else that happens to sit under the
expected name or labels is someone else's: never adopted, changed or deleted.
"""

from collections.abc import Mapping
from typing import Any

from ecs_operator.core import labels

__all__ = ["managed_by_operator", "owned_by", "owner_description"]


def owned_by(child: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """``child`` has an ownerReference to ``owner`` by uid (a name, a kind or labels alone
    prove nothing: an object that merely reuses an owner's name is not its child)."""
    uid = (owner.get("metadata") or {}).get("uid")
    references = (child.get("metadata") or {}).get("ownerReferences") or ()
    return bool(uid) and any(
        isinstance(ref, Mapping) and ref.get("uid") == uid for ref in references
    )


def managed_by_operator(obj: Mapping[str, Any]) -> bool:
    """``obj`` carries the operator's ``app.kubernetes.io/managed-by`` label."""
    object_labels = (obj.get("metadata") or {}).get("labels") or {}
    return object_labels.get(labels.MANAGED_BY_LABEL) == labels.MANAGED_BY


def owner_description(obj: Mapping[str, Any]) -> str:
    """Who ``obj`` belongs to, for a message about a clash: its controller (or first owner)
    as ``Kind/name``, or that it has no owner."""
    references = [
        ref
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or ()
        if isinstance(ref, Mapping)
    ]
    if not references:
        return "it has no owner"
    chosen = next((ref for ref in references if ref.get("controller")), references[0])
    return f"it belongs to {chosen.get('kind')}/{chosen.get('name')}"
