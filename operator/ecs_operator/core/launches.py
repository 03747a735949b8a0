"""Launches a lost response or a retry can never duplicate.

A service task's name is derived from what is being launched: the Service (its uid), the
deployment and an ordinal, the lowest ordinals of that deployment whose names no known Task
holds. A create retried after its response was lost (by the client, or by the next reconcile
while the watch has not yet shown the first attempt) therefore names the same object, and the
API answers 409 instead of creating a second task. A 409 means "already launched" only when the
object holding the name is ours and is this very launch (`existing_verdict`); anything else is a
conflict: the name is skipped and the clash reported.

The ordinal is recorded on the Task (`LAUNCH_ORDINAL_ANNOTATION`) so it is read, never parsed
back out of a name. A Task's name can be reused only within its deployment once the Task and
its Pod are gone (trimmed or expired); its `taskArn` (the uid) stays unique.

The tasks of a run (RunTask's `count`) follow the same rule: the first Task, which the user
created, is their owner, and the others are named `NAME-2` … `NAME-N` (`run_task_names`), with
their ordinal recorded the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from typing import Any, Final

from ecs_operator.core import labels

MAX_NAME_LENGTH: Final = 253  # a Task's name is its Pod's: a DNS subdomain
_DIGEST_LENGTH: Final = 10
LAUNCH_ORDINAL_ANNOTATION: Final = f"{labels.PREFIX}launch-ordinal"
"""On a service's Task: its ordinal within its deployment (part of what its name derives from);
on a Task of a run, its ordinal in the run (2 … N)."""


def service_task_name(service: str, service_uid: str, deployment_id: str, ordinal: int) -> str:
    """`SERVICE-<10 hex>`, the hex a digest of (service uid, deployment, ordinal): the same
    launch always gets the same name, distinct launches distinct names. A Service name too long
    to keep whole is cut (the digest keeps the name distinct) so the result is a valid DNS
    subdomain of at most 253 characters."""
    digest = hashlib.sha256(f"{service_uid}/{deployment_id}/{ordinal}".encode()).hexdigest()
    prefix = service[: MAX_NAME_LENGTH - _DIGEST_LENGTH - 1].rstrip("-.")
    return f"{prefix}-{digest[:_DIGEST_LENGTH]}" if prefix else digest[:_DIGEST_LENGTH]


def launch_names(
    service: str,
    service_uid: str,
    deployment_id: str,
    count: int,
    taken: Callable[[str], bool],
) -> list[tuple[int, str]]:
    """The `count` lowest ordinals of `deployment_id` whose names are not `taken` (held by
    a Task, or a Pod, known in the namespace), with their names.
    Recomputed after a lost response, before the watch shows the Task, this yields the same
    names again."""
    chosen: list[tuple[int, str]] = []
    for ordinal in _ordinals():
        if len(chosen) == count:
            break
        name = service_task_name(service, service_uid, deployment_id, ordinal)
        if not taken(name):
            chosen.append((ordinal, name))
    return chosen


def run_task_names(first: str, count: int) -> list[tuple[int, str]]:
    """The ordinals 2 … `count` of the run whose first Task is `first`, with their Tasks'
    names: `FIRST-2` … `FIRST-N`. A first name too long for the suffix is cut and followed by a
    digest of it (distinct first Tasks keep distinct runs), so every name is a valid DNS
    subdomain of at most 253 characters."""
    runs = []
    for ordinal in range(2, count + 1):
        suffix = f"-{ordinal}"
        if len(first) + len(suffix) <= MAX_NAME_LENGTH:
            runs.append((ordinal, f"{first}{suffix}"))
            continue
        digest = hashlib.sha256(first.encode()).hexdigest()[:_DIGEST_LENGTH]
        prefix = first[: MAX_NAME_LENGTH - len(suffix) - _DIGEST_LENGTH - 1].rstrip("-.")
        runs.append((ordinal, f"{prefix}-{digest}{suffix}"))
    return runs


def run_task_manifest(
    first: Mapping[str, Any], ordinal: int, name: str, task_definition: str
) -> dict[str, Any]:
    """Task `name`, the `ordinal`th of the run of Task `first` (a body): `first`'s spec on
    revision `task_definition` (the one `first` resolved: the tasks of one RunTask run one
    revision), one task (no `count`), controlled by `first`; what `existing_verdict`
    compares a name's holder with."""
    metadata = first["metadata"]
    spec = {key: value for key, value in first["spec"].items() if key != "count"}
    return {
        "apiVersion": labels.OWNER_API_VERSION,
        "kind": "Task",
        "metadata": {
            "name": name,
            "namespace": metadata.get("namespace") or "",
            "labels": {
                labels.RUN_LABEL: labels.label_value(metadata["name"]),
                labels.MANAGED_BY_LABEL: labels.MANAGED_BY,
            },
            "annotations": {LAUNCH_ORDINAL_ANNOTATION: str(ordinal)},
            "ownerReferences": [
                {
                    "apiVersion": labels.OWNER_API_VERSION,
                    "kind": "Task",
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": spec | {"taskDefinition": task_definition},
    }


def _ordinals() -> Iterator[int]:
    ordinal = 0
    while True:
        yield ordinal
        ordinal += 1


class Existing(Enum):
    """What holds a name a create was refused for (409)."""

    SAME_LAUNCH = "this launch"  # ours, and what we meant to create: already launched
    OTHER_LAUNCH = "another launch of this service"  # ours, another deployment or ordinal
    FOREIGN = "not controlled by this service"  # never adopted (a run: by its first Task)


def is_controlled_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    """Whether `obj`'s controller ownerReference is the object with `owner_uid`."""
    references = (obj.get("metadata") or {}).get("ownerReferences") or ()
    return any(r.get("uid") == owner_uid and r.get("controller") for r in references)


def existing_verdict(existing: Mapping[str, Any], intended: Mapping[str, Any]) -> Existing:
    """Judge the object holding `intended`'s name: the same launch only when the same owner
    controls it, it is managed by this operator, and it carries the same launch identity
    (the deployment that started it and its ordinal), so forged labels never pass."""
    owner = next(
        (
            r["uid"]
            for r in (intended["metadata"].get("ownerReferences") or ())
            if r.get("controller")
        ),
        None,
    )
    metadata = existing.get("metadata") or {}
    ours = (
        owner is not None
        and is_controlled_by(existing, owner)
        and (metadata.get("labels") or {}).get(labels.MANAGED_BY_LABEL) == labels.MANAGED_BY
    )
    if not ours:
        return Existing.FOREIGN
    same = (existing.get("spec") or {}).get("startedBy") == intended["spec"].get("startedBy") and (
        metadata.get("annotations") or {}
    ).get(LAUNCH_ORDINAL_ANNOTATION) == (intended["metadata"].get("annotations") or {}).get(
        LAUNCH_ORDINAL_ANNOTATION
    )
    return Existing.SAME_LAUNCH if same else Existing.OTHER_LAUNCH
