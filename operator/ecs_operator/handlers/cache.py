"""In-memory views of the watched objects, fed by Kopf's watch events (informer-style).

Reconcilers read current state from here instead of the API, so a reconcile costs no reads
and a converged resync costs no writes.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
Model = TypeVar("Model", bound=BaseModel)


def object_key(body: Mapping[str, Any]) -> Key:
    metadata = body.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def owner_name(body: Mapping[str, Any], kind: str) -> str | None:
    """The name of the object's owner of `kind` (a Task's Service, a Pod's Task), if any."""
    owners = (body.get("metadata") or {}).get("ownerReferences") or ()
    return next((ref["name"] for ref in owners if ref.get("kind") == kind), None)


class ObjectCache:
    """The latest body of every object of one kind, indexed by key and by namespace."""

    def __init__(
        self,
        *,
        tombstones: int = 10_000,
        parsed: int = 2_000,
        indexes: Mapping[str, Callable[[Mapping[str, Any]], str | None]] | None = None,
    ) -> None:
        self._objects: dict[Key, dict[str, Any]] = {}
        self._by_namespace: dict[str, set[str]] = defaultdict(set)
        # Each index files every object under one value (a Pod under its node), so a reconcile
        # reads the few objects of that value instead of scanning them all; a value's version
        # moves whenever one of its objects does, so what was derived from them can be reused.
        self._indexes = dict(indexes or {})
        self._indexed: dict[str, defaultdict[str, set[Key]]] = {
            name: defaultdict(set) for name in self._indexes
        }
        self._index_of: dict[str, dict[Key, str]] = {name: {} for name in self._indexes}
        self._versions: dict[str, Counter[str]] = {name: Counter() for name in self._indexes}
        # The latest versions validated, each once: a Service's reconcile reads all its Tasks.
        # Bounded, as a model weighs about as much as its body again.
        self._parsed: OrderedDict[Key, tuple[str, BaseModel]] = OrderedDict()
        self._parsed_limit = parsed
        # The last state of recently deleted objects: a reconcile that runs after an object
        # is gone still sees how it ended (a pod's final container exit codes).
        self._tombstones: OrderedDict[Key, dict[str, Any]] = OrderedDict()
        self._tombstone_limit = tombstones

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> Key:
        """Record a watch event (type None is Kopf's initial listing) or the response of our own
        write, and return its key. A version no newer than the one held is ignored: our writes
        update the cache at once, and the watch event of an earlier write may arrive later."""
        key = object_key(body)
        body = _without_managed_fields(body)
        if event_type == "DELETED":
            self._objects.pop(key, None)
            self._by_namespace[key[0]].discard(key[1])
            self._file(key, None)
            self._parsed.pop(key, None)
            self._tombstones[key] = body
            self._tombstones.move_to_end(key)
            while len(self._tombstones) > self._tombstone_limit:
                self._tombstones.popitem(last=False)
            return key
        tombstone = self._tombstones.get(key)
        if tombstone is not None and _not_newer(body, tombstone):
            # The response of the write that deleted it (the last finalizer removed), read
            # after its DELETED event: keeping it would hold a deleted object for ever.
            return key
        self._tombstones.pop(key, None)
        held = self._objects.get(key)
        if held is not None and _not_newer(body, held):
            return key
        self._objects[key] = body
        self._by_namespace[key[0]].add(key[1])
        self._parsed.pop(key, None)
        self._file(key, body)
        return key

    def _file(self, key: Key, body: Mapping[str, Any] | None) -> None:
        """(Re)file `key` in every index (`body` None: it was deleted)."""
        for name, index in self._indexes.items():
            filed, versions = self._indexed[name], self._versions[name]
            previous = self._index_of[name].pop(key, None)
            if previous is not None:
                versions[previous] += 1
                filed[previous].discard(key)
                if not filed[previous]:
                    del filed[previous]
            value = index(body) if body is not None else None
            if value is not None:
                versions[value] += 1
                self._index_of[name][key] = value
                filed[value].add(key)

    def indexed(self, index: str, value: str) -> Iterator[dict[str, Any]]:
        """The objects `index` files under `value`."""
        for key in self._indexed[index].get(value, ()):
            yield self._objects[key]

    def index_version(self, index: str, value: str) -> int:
        """Moves whenever an object filed under `value` is added, changed or removed."""
        return self._versions[index][value]

    def parsed(self, body: Mapping[str, Any], model: type[Model]) -> Model:
        """`model.model_validate(body)`, remembered for this version of a cached object (so
        never mutate the result) while it is among the `parsed` most recently read. Raises
        pydantic's ValidationError as model_validate does."""
        key = object_key(body)
        version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        known = self._parsed.get(key)
        if known is not None and known[0] == version and isinstance(known[1], model):
            self._parsed.move_to_end(key)
            return known[1]
        parsed = model.model_validate(body)
        if version and self._objects.get(key) is body:
            self._parsed[key] = (version, parsed)
            self._parsed.move_to_end(key)
            while len(self._parsed) > self._parsed_limit:
                self._parsed.popitem(last=False)
        return parsed

    def get(self, key: Key) -> dict[str, Any] | None:
        return self._objects.get(key)

    def tombstone(self, key: Key) -> dict[str, Any] | None:
        """The last state of the object at `key` if it was deleted (and not re-created)."""
        return self._tombstones.get(key)

    def in_namespace(self, namespace: str) -> Iterator[dict[str, Any]]:
        for name in self._by_namespace.get(namespace, ()):
            yield self._objects[(namespace, name)]

    def values(self) -> Iterator[dict[str, Any]]:
        return iter(self._objects.values())

    def __len__(self) -> int:
        return len(self._objects)


def _without_managed_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy of `body` without `metadata.managedFields`, as client-go informers are
    commonly told to: nothing here reads them, and on a real cluster they can outweigh the
    rest of the object."""
    stored = dict(body)
    metadata = stored.get("metadata")
    if metadata and "managedFields" in metadata:
        stored["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return stored


def _not_newer(body: Mapping[str, Any], held: Mapping[str, Any]) -> bool:
    """Whether `body` is the version of the same object already held, or an older one (the
    watch event of our own write, whose response is held already, changes nothing).
    resourceVersions are opaque strings, but every apiserver (etcd revisions, the sandbox's
    counter) makes them integers; anything else is never judged old."""
    new, old = body.get("metadata") or {}, held.get("metadata") or {}
    if new.get("uid") != old.get("uid") or not new.get("resourceVersion"):
        return False
    try:
        return int(new["resourceVersion"]) <= int(old.get("resourceVersion") or 0)
    except ValueError:
        return False


def finalizer_write_event(body: Mapping[str, Any]) -> str:
    """The watch event a finalizer write's response stands for: DELETED when it removed the
    last finalizer of an object being deleted (the API server then deletes it, and a watch
    started after that never reports it), MODIFIED otherwise. Not for Pods, whose deletion
    also waits for the kubelet."""
    metadata = body.get("metadata") or {}
    gone = metadata.get("deletionTimestamp") and not metadata.get("finalizers")
    return "DELETED" if gone else "MODIFIED"
