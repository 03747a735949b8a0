"""In-memory views of the watched objects, fed by Kopf's watch events (informer-style).

Reconcilers read current state from here instead of the API, so a reconcile costs no reads
and a converged resync costs no writes.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
Model = TypeVar("Model", bound=BaseModel)


def object_key(body: Mapping[str, Any]) -> Key:
    metadata = body.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


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
        # The uids of recently deleted objects, with the resourceVersion their deletion was
        # known at (None: unknown), so that an older event of one arriving late (a write's
        # response, an event queued before a relist) never brings it back.
        self._deleted: OrderedDict[str, int | None] = OrderedDict()
        self._tombstone_limit = tombstones

    def record(self, event_type: str | None, body: Mapping[str, Any]) -> Key:
        """Record a watch event (type None is Kopf's initial listing) or the response of our own
        write, and return its key. A version no newer than the one held is ignored: our writes
        update the cache at once, and the watch event of an earlier write may arrive later."""
        key = object_key(body)
        body = _without_managed_fields(body)
        held = self._objects.get(key)
        if event_type == "DELETED":
            if held is None or _uid(held) == _uid(body):
                self._forget(key, body, _version(body))
            else:  # an older object of that name, not the one held (created since)
                self._remember_deleted(body, _version(body))
            return key
        if self._known_gone(body):
            return key
        tombstone = self._tombstones.get(key)
        if tombstone is not None and _not_newer(body, tombstone):
            # The response of the write that deleted it (the last finalizer removed), read
            # after its DELETED event: keeping it would hold a deleted object for ever.
            return key
        self._tombstones.pop(key, None)
        if held is not None and _not_newer(body, held):
            return key
        self._objects[key] = body
        self._by_namespace[key[0]].add(key[1])
        self._parsed.pop(key, None)
        self._file(key, body)
        return key

    def replace(
        self,
        listed: Iterable[Mapping[str, Any]],
        list_version: str,
        *,
        namespace: str | None = None,
    ) -> list[dict[str, Any]]:
        """Bring the cache in line with a fresh LIST (of `namespace`, or of all namespaces),
        as client-go's informer `Replace` does after a relist: every object held that the list
        no longer has (or has under another uid: re-created) was deleted while no watch was
        looking, and is tombstoned. An object newer than the list (our own write answered
        after it was taken) is kept. Returns the last known states of the objects found gone,
        for their owners to be woken."""
        items = list(listed)
        present = {object_key(body): _uid(body) for body in items}
        deleted_at = _int(list_version)
        held = (
            list(self._objects)
            if namespace is None
            else [(namespace, name) for name in self._by_namespace.get(namespace, ())]
        )
        gone = []
        for key in held:
            body = self._objects[key]
            if present.get(key, "") == _uid(body) or _written_after(body, deleted_at):
                continue
            self._forget(key, body, deleted_at)
            gone.append(body)
        for item in items:
            self.record("ADDED", item)
        return gone

    def _forget(self, key: Key, body: dict[str, Any], deleted_at: int | None) -> None:
        if self._objects.pop(key, None) is not None:
            self._by_namespace[key[0]].discard(key[1])
            self._file(key, None)
        self._parsed.pop(key, None)
        self._tombstones[key] = body
        self._tombstones.move_to_end(key)
        while len(self._tombstones) > self._tombstone_limit:
            self._tombstones.popitem(last=False)
        self._remember_deleted(body, deleted_at)

    def _remember_deleted(self, body: Mapping[str, Any], deleted_at: int | None) -> None:
        uid = _uid(body)
        if uid is None:
            return
        self._deleted[uid] = deleted_at
        self._deleted.move_to_end(uid)
        while len(self._deleted) > self._tombstone_limit:
            self._deleted.popitem(last=False)

    def _known_gone(self, body: Mapping[str, Any]) -> bool:
        """Whether `body` is a version of an object already known deleted after it."""
        uid = _uid(body)
        if uid is None or uid not in self._deleted:
            return False
        version, deleted_at = _version(body), self._deleted[uid]
        return version is not None and deleted_at is not None and version <= deleted_at

    def holds(self, body: Mapping[str, Any]) -> bool:
        """Whether this version of the object, or a newer one, is held already (the watch
        event of our own write, whose response was recorded when it was written)."""
        held = self._objects.get(object_key(body))
        return held is not None and _not_newer(body, held)

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


def _uid(body: Mapping[str, Any]) -> str | None:
    uid = (body.get("metadata") or {}).get("uid")
    return str(uid) if uid else None


def _int(version: object) -> int | None:
    """A resourceVersion as the integer every apiserver makes it (etcd revisions, the
    sandbox's counter); None when it is absent or not one (they are opaque strings)."""
    try:
        return int(str(version))
    except ValueError:
        return None


def _version(body: Mapping[str, Any]) -> int | None:
    return _int((body.get("metadata") or {}).get("resourceVersion"))


def _written_after(body: Mapping[str, Any], list_version: int | None) -> bool:
    """Whether `body` is newer than a list taken at `list_version` (unknown: it is not)."""
    version = _version(body)
    return version is not None and list_version is not None and version > list_version


def _not_newer(body: Mapping[str, Any], held: Mapping[str, Any]) -> bool:
    """Whether `body` is the version of the same object already held, or an older one (the
    watch event of our own write, whose response is held already, changes nothing). A
    version that is not an integer is never judged old."""
    if _uid(body) != _uid(held):
        return False
    new, old = _version(body), _version(held)
    return new is not None and new <= (old or 0)


def finalizer_write_event(body: Mapping[str, Any]) -> str:
    """The watch event a finalizer write's response stands for: DELETED when it removed the
    last finalizer of an object being deleted (the API server then deletes it, and a watch
    started after that never reports it), MODIFIED otherwise. Not for Pods, whose deletion
    also waits for the kubelet."""
    metadata = body.get("metadata") or {}
    gone = metadata.get("deletionTimestamp") and not metadata.get("finalizers")
    return "DELETED" if gone else "MODIFIED"
