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

__all__ = [
    "left_by_earlier_task",
    "managed_by_operator",
    "owned_by",
    "owner_description",
    "owner_name",
    "service_of_task",
]


def owned_by(child: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """``child`` has an ownerReference to ``owner`` by uid (a name, a kind or labels alone
    prove nothing: an object that merely reuses an owner's name is not its child)."""
    uid = (owner.get("metadata") or {}).get("uid")
    references = (child.get("metadata") or {}).get("ownerReferences") or ()
    return bool(uid) and any(
        isinstance(ref, Mapping) and ref.get("uid") == uid for ref in references
    )


def owner_name(body: Mapping[str, Any], kind: str) -> str | None:
    """The name of the object's owner of `kind` (a Task's Service, a Pod's Task), if any."""
    owners = (body.get("metadata") or {}).get("ownerReferences") or ()
    return next((ref["name"] for ref in owners if ref.get("kind") == kind), None)


def service_of_task(task: Mapping[str, Any]) -> str | None:
    """The Service whose task ``task`` (a body) is, by its ownerReferences: None for a
    lifecycle hook's Task, which its Service owns (to delete it) without counting it among
    its tasks: the hook's Task is standalone."""
    return None if labels.is_hook_task(task) else owner_name(task, "Service")


def left_by_earlier_task(pod: Mapping[str, Any], task: Mapping[str, Any]) -> bool:
    """Whether ``pod``, which holds the name of Task ``task`` (a body) and is not its own, is
    the Pod of an earlier Task of that name on its way out: being deleted, or owned only by a
    Task of that name with another uid. That Task is gone (the name is now another's) and a
    stopped task keeps its Pod until its Task is deleted, so garbage collection is removing
    the Pod (it deletes a dependent once none of its owners exists): wait for it."""
    metadata = pod.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return True
    task_metadata = task.get("metadata") or {}
    references = metadata.get("ownerReferences") or ()
    return bool(references) and all(
        isinstance(ref, Mapping)
        and ref.get("kind") == "Task"
        and ref.get("apiVersion") == labels.OWNER_API_VERSION
        and ref.get("name") == task_metadata.get("name")
        and ref.get("uid") != task_metadata.get("uid")
        for ref in references
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
