"""`FakeKube`: the operator's real `KubeClient` in front of an in-memory API server, recording
every request, for the controller-level tests (`await controller.reconcile(key)`).

Only `KubeClient.request` is replaced, so every method the controllers call (get, list,
create, create_or_get, replace, patch, write_status, set_finalizer, delete …) runs the client's
own code: a status that did not change is not sent, a create refused with 409 reads the holder
back, a delete whose uid precondition fails answers False. Each request is recorded
(`requests`, the writes among them `written()`) and answered as kube-apiserver answers it:

- a write answers the stored object with a new resourceVersion (one counter for all kinds);
  `metadata.generation` moves when `spec` does; a create sets uid and creationTimestamp;
- a PATCH or PUT of the object leaves its status alone and one of `/status` only its status
  (every kind here has the status subresource); a `metadata.resourceVersion` in the body is a
  precondition (409 Conflict when stale), as are a DELETE's `preconditions.uid`;
- a DELETE of an object with finalizers sets its deletionTimestamp; the write that removes its
  last finalizer deletes it. Without a kubelet, a Pod is deleted at once;
- a create is refused with 409 AlreadyExists when the name is held, 404 in a namespace that is
  not there, 403 in one being deleted (`terminate_namespace`, as the NamespaceLifecycle
  admission plugin does); `remove_namespace` deletes a namespace with all it held;
- `fail` answers the next matching request(s) with an error instead, before or after it is
  carried out (a lost response). The client's retries are not run: a failure reaches the
  caller as if every retry had failed the same way.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jsonpatch

from ecs_operator.kube.client import (
    JSON_PATCH,
    MERGE_PATCH,
    NAMESPACES,
    KubeClient,
    KubeError,
    Resource,
)

READS = ("get", "list")
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
CLUSTER_SCOPED = frozenset({"namespaces", "nodes", "customresourcedefinitions"})
_CORE = ""


@dataclass(frozen=True)
class Request:
    """One request as the API server received it: verb (get, list, create, update, patch,
    delete), the collection (`group` "" for the core API), namespace, name, subresource, and
    the body sent (a patch, a created object, DeleteOptions)."""

    verb: str
    group: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str
    body: Any

    def __str__(self) -> str:
        where = "/".join(part for part in (self.namespace, self.name, self.subresource) if part)
        return f"{self.verb} {self.plural} {where}".rstrip()


@dataclass
class _Fault:
    verb: str
    plural: str | None
    error: KubeError
    times: int
    after_commit: bool


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: `target` with `patch` merged in (null removes a key; lists are replaced)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = apply_merge_patch(merged.get(key), value)
    return merged


def _qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def _not_found(group: str, plural: str, name: str) -> KubeError:
    return KubeError(404, "NotFound", f'{_qualified(group, plural)} "{name}" not found')


def _differs(before: Any, after: Any) -> bool:
    return json.dumps(before, sort_keys=True) != json.dumps(after, sort_keys=True)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeKube(KubeClient):
    """The API server in memory, behind the real client (see the module docstring)."""

    def __init__(self) -> None:
        # Not KubeClient.__init__: no ApiClient and no thread pool, `request` answers here.
        self.writes = 0
        self.fence = None
        self.requests: list[Request] = []
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        # Every object deleted, in order, with its (group, plural).
        self.deleted: list[tuple[tuple[str, str], dict[str, Any]]] = []
        self._faults: list[_Fault] = []
        self._version = 0
        self._uids = itertools.count(1)

    # --- what tests use ------------------------------------------------------------------

    def seed(self, resource: Resource, body: Mapping[str, Any]) -> dict[str, Any]:
        """Store `body` as it is (an object created before the test), filling in what the API
        server would have given it: uid, resourceVersion, creationTimestamp, generation."""
        return self._store(resource.group, resource.plural, body)

    def put(self, resource: Resource, body: Mapping[str, Any]) -> dict[str, Any]:
        """Another client's write (a kubelet's, a user's): `body` stored with a new
        resourceVersion (and generation, when its spec changed), not recorded as a request."""
        written = copy.deepcopy(dict(body))
        metadata = written["metadata"]
        metadata.pop("resourceVersion", None)
        held = self.objects.get(
            self._key(resource.group, resource.plural, metadata.get("namespace"), metadata["name"])
        )
        if held is not None:
            changed = _differs(held.get("spec"), written.get("spec"))
            metadata["generation"] = int(held["metadata"]["generation"]) + changed
        return self._store(resource.group, resource.plural, written)

    def stored(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        """The object as the API holds it now (KeyError when it does not)."""
        key = self._key(resource.group, resource.plural, namespace, name)
        return copy.deepcopy(self.objects[key])

    def remove(self, resource: Resource, namespace: str | None, name: str) -> None:
        """The object is gone (someone else deleted it), as its watchers would see."""
        self._remove(self._key(resource.group, resource.plural, namespace, name))

    def all_stored(self, resource: Resource) -> list[dict[str, Any]]:
        """Every object of `resource` the API holds now."""
        return [
            copy.deepcopy(body)
            for (group, plural, _, _), body in self.objects.items()
            if (group, plural) == (resource.group, resource.plural)
        ]

    def _store(self, group: str, plural: str, body: Mapping[str, Any]) -> dict[str, Any]:
        stored = copy.deepcopy(dict(body))
        metadata = stored.setdefault("metadata", {})
        metadata.setdefault("uid", str(uuid.UUID(int=next(self._uids))))
        metadata.setdefault("creationTimestamp", _now())
        metadata.setdefault("generation", 1)
        if "resourceVersion" in metadata:
            self._version = max(self._version, int(metadata["resourceVersion"]))
        else:
            metadata["resourceVersion"] = self._next_version()
        self.objects[self._key(group, plural, metadata.get("namespace"), metadata["name"])] = stored
        return copy.deepcopy(stored)

    def written(self) -> list[Request]:
        """The writes received, in order (reads left out)."""
        return [request for request in self.requests if request.verb not in READS]

    def fail(
        self,
        verb: str,
        plural: str | None,
        code: int,
        reason: str,
        message: str,
        *,
        times: int = 1,
        after_commit: bool = False,
    ) -> None:
        """Answer the next `times` requests of `verb` on `plural` (None: any) with this error;
        `after_commit`: carry the request out first (its response is lost)."""
        error = KubeError(code, reason, message)
        self._faults.append(_Fault(verb, plural, error, times, after_commit))

    def terminate_namespace(self, namespace: str) -> None:
        """`kubectl delete namespace`, still under way: creates in it are refused (403), its
        objects are still there."""
        key = self._key(_CORE, NAMESPACES.plural, None, namespace)
        self.objects[key]["metadata"]["deletionTimestamp"] = _now()
        self.objects[key]["metadata"]["resourceVersion"] = self._next_version()

    def remove_namespace(self, namespace: str) -> None:
        """The namespace and everything in it are gone (the namespace controller finished)."""
        home = self._key(_CORE, NAMESPACES.plural, None, namespace)
        for key in [key for key in self.objects if key[2] == namespace] + [home]:
            self._remove(key)

    # --- the API server ---------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        group, plural, namespace, name, subresource = _route(path)
        verb = VERBS[method] if name is not None or method != "GET" else "list"
        self.requests.append(
            Request(verb, group, plural, namespace, name, subresource, copy.deepcopy(body))
        )
        if verb not in READS:
            self.writes += 1
        fault = self._fault(verb, plural)
        if fault is not None and not fault.after_commit:
            raise fault.error
        if verb == "list":
            answer = self._list(group, plural, namespace, (query or {}).get("labelSelector", ""))
        elif verb == "get":
            answer = copy.deepcopy(self._held(group, plural, namespace, str(name)))
        elif verb == "create":
            answer = self._create(group, plural, namespace, body)
        elif verb == "update":
            answer = self._update(group, plural, namespace, str(name), subresource, body)
        elif verb == "patch":
            patched = self._patched(group, plural, namespace, str(name), body, content_type)
            answer = self._update(group, plural, namespace, str(name), subresource, patched)
        else:
            answer = self._delete(group, plural, namespace, str(name), body or {})
        if fault is not None:
            raise fault.error
        return answer

    def _fault(self, verb: str, plural: str) -> _Fault | None:
        for fault in self._faults:
            if fault.verb == verb and fault.plural in (None, plural):
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _key(
        self, group: str, plural: str, namespace: str | None, name: str
    ) -> tuple[str, str, str, str]:
        return (group, plural, "" if plural in CLUSTER_SCOPED else namespace or "", name)

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _held(self, group: str, plural: str, namespace: str | None, name: str) -> dict[str, Any]:
        held = self.objects.get(self._key(group, plural, namespace, name))
        if held is None:
            raise _not_found(group, plural, name)
        return held

    def _list(
        self, group: str, plural: str, namespace: str | None, selector: str
    ) -> dict[str, Any]:
        wanted = dict(term.split("=", 1) for term in selector.split(",") if term)
        items = [
            copy.deepcopy(body)
            for (g, p, ns, _), body in self.objects.items()
            if (g, p) == (group, plural)
            and namespace in (None, ns)
            and wanted.items() <= ((body["metadata"].get("labels") or {}).items())
        ]
        return {"items": items, "metadata": {"resourceVersion": str(self._version)}}

    def _create(
        self, group: str, plural: str, namespace: str | None, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if plural not in CLUSTER_SCOPED:
            home = self.objects.get(self._key(_CORE, NAMESPACES.plural, None, str(namespace)))
            if home is None:
                raise KubeError(404, "NotFound", f'namespaces "{namespace}" not found')
            if home["metadata"].get("deletionTimestamp"):
                raise KubeError(
                    403,
                    "Forbidden",
                    f'{_qualified(group, plural)} "{name}" is forbidden: unable to create new '
                    f"content in namespace {namespace} because it is being terminated",
                )
        key = self._key(group, plural, namespace, name)
        if key in self.objects:
            raise KubeError(
                409, "AlreadyExists", f'{_qualified(group, plural)} "{name}" already exists'
            )
        created = copy.deepcopy(dict(body))
        created["metadata"].pop("resourceVersion", None)
        created["metadata"].pop("uid", None)
        created["metadata"].pop("creationTimestamp", None)
        return self._store(group, plural, created)

    def _patched(
        self,
        group: str,
        plural: str,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str,
    ) -> dict[str, Any]:
        """The object with `patch` applied; a resourceVersion the patch names is kept, so
        `_update` checks it as a precondition."""
        held = self._held(group, plural, namespace, name)
        if content_type == MERGE_PATCH:
            patched: dict[str, Any] = apply_merge_patch(held, patch)
        elif content_type == JSON_PATCH:
            patched = jsonpatch.apply_patch(held, patch)
        else:
            raise KubeError(415, "UnsupportedMediaType", f"{content_type} is not served here")
        named = ((patch.get("metadata") or {}) if isinstance(patch, Mapping) else {}).get(
            "resourceVersion"
        )
        patched["metadata"]["resourceVersion"] = named or held["metadata"]["resourceVersion"]
        return patched

    def _update(
        self,
        group: str,
        plural: str,
        namespace: str | None,
        name: str,
        subresource: str,
        body: Mapping[str, Any],
    ) -> dict[str, Any]:
        held = self._held(group, plural, namespace, name)
        sent_version = (body.get("metadata") or {}).get("resourceVersion")
        if sent_version is not None and str(sent_version) != held["metadata"]["resourceVersion"]:
            raise KubeError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": the '
                "object has been modified; please apply your changes to the latest version "
                "and try again",
            )
        if subresource == "status":
            updated = {**copy.deepcopy(held), "status": copy.deepcopy(body.get("status"))}
        else:
            updated = {**copy.deepcopy(dict(body)), "status": copy.deepcopy(held.get("status"))}
            kept = ("uid", "creationTimestamp", "generation", "deletionTimestamp")
            updated["metadata"] |= {k: held["metadata"][k] for k in kept if k in held["metadata"]}
            if _differs(held.get("spec"), updated.get("spec")):
                updated["metadata"]["generation"] = int(held["metadata"]["generation"]) + 1
        if updated.get("status") is None:
            updated.pop("status", None)
        updated["metadata"]["resourceVersion"] = self._next_version()
        key = self._key(group, plural, namespace, name)
        if updated["metadata"].get("deletionTimestamp") and not updated["metadata"].get(
            "finalizers"
        ):
            self._remove(key)
        else:
            self.objects[key] = updated
        return copy.deepcopy(updated)

    def _delete(
        self, group: str, plural: str, namespace: str | None, name: str, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        held = self._held(group, plural, namespace, name)
        uid = (options.get("preconditions") or {}).get("uid")
        if uid is not None and uid != held["metadata"]["uid"]:
            raise KubeError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {uid}, "
                f"UID in object meta: {held['metadata']['uid']}",
            )
        key = self._key(group, plural, namespace, name)
        if held["metadata"].get("finalizers"):
            if not held["metadata"].get("deletionTimestamp"):
                held["metadata"]["deletionTimestamp"] = _now()
                held["metadata"]["resourceVersion"] = self._next_version()
            return copy.deepcopy(held)
        self._remove(key)
        return {"kind": "Status", "apiVersion": "v1", "status": "Success"}

    def _remove(self, key: tuple[str, str, str, str]) -> None:
        self.deleted.append(((key[0], key[1]), self.objects.pop(key)))


def _route(path: str) -> tuple[str, str, str | None, str | None, str]:
    """(group, plural, namespace, name, subresource) of a `Resource.path`."""
    parts = path.strip("/").split("/")
    group, rest = (_CORE, parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    plural, name, subresource = rest[0], (rest[1:2] or [None])[0], "/".join(rest[2:])
    return group, plural, namespace, name, subresource
