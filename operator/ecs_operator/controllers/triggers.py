"""What wakes a controller, declared by the controller itself (as controller-runtime's
`SetupWithManager` does with For/Owns/Watches): each `Trigger` maps a change of one watched
kind to the keys the controller reconciles.

A change is a watch event, or the response of the operator's own write (recorded at once by the
writer, so the watch event that follows it changes nothing and wakes nobody again). Key maps are
pure: they read the change and the caches, and never write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecs_operator.controllers.cache import Key, object_key
from ecs_operator.core.ownership import owner_name
from ecs_operator.kube.client import Resource

if TYPE_CHECKING:
    from ecs_operator.controllers.context import OperatorContext

Body = Mapping[str, Any]


@dataclass(frozen=True)
class Change:
    """What one watch event or one write's response changed in a cache."""

    resource: Resource
    type: str  # ADDED, MODIFIED or DELETED
    body: Body  # as it is now (DELETED: its last state)
    before: Body | None  # as the cache held it before (None: it did not)
    written: bool = False  # the response of the operator's own write, not a watch event

    @property
    def key(self) -> Key:
        return object_key(self.body)

    @property
    def namespace(self) -> str:
        return self.key[0]

    def differs(self, read: Callable[[Body], object]) -> bool:
        """Whether `read` gives another value before and after (always, for an object that
        appears or goes)."""
        if self.before is None or self.type == "DELETED":
            return True
        return read(self.before) != read(self.body)


KeyMap = Callable[[Change, "OperatorContext"], Iterable[Key]]


@dataclass(frozen=True)
class Trigger:
    """A change of `resource` wakes the keys `keys` maps it to."""

    resource: Resource
    keys: KeyMap


def itself(change: Change, _context: OperatorContext) -> Iterable[Key]:
    return (change.key,)


def owner(kind: str) -> KeyMap:
    """The object's owner of `kind` (a Pod's Task, a Task's Service), if it has one."""

    def owning(change: Change, _context: OperatorContext) -> Iterable[Key]:
        name = owner_name(change.body, kind)
        return ((change.namespace, name),) if name else ()

    owning.__name__ = f"owning_{kind.lower()}"
    return owning


def every_object(cache: str, namespace: Callable[[Change], str | None]) -> KeyMap:
    """Every object of an `OperatorContext` cache, in the change's namespace (None: all)."""

    def objects(change: Change, context: OperatorContext) -> Iterable[Key]:
        held = getattr(context, cache)
        where = namespace(change)
        bodies = held.values() if where is None else held.in_namespace(where)
        return [object_key(body) for body in bodies]

    return objects


def its_namespace(change: Change) -> str:
    return change.namespace
