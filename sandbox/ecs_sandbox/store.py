"""The in-memory object store behind the sandbox API server.

CONTRACT (shared by the HTTP layer, the schema module and the cluster simulator; implement
exactly this surface):

- Objects are plain JSON-compatible dicts. The store owns its copies: every method returns a
  copy the caller may mutate, and never keeps a reference to what it was given.
- One global `resourceVersion` counter (an int, a string on the wire) shared by all kinds.
- Every failure raises `ecs_sandbox.errors.ApiError` with the canonical reason.

    store = Store(registry, watch_window=5000)
    store.create(rt, namespace, obj, *, dry_run=False) -> dict
    store.get(rt, namespace, name) -> dict
    store.list(rt, namespace, *, label_selector="", field_selector="",
               limit=None, continue_token=None) -> dict          # a `KindList` object
    store.replace(rt, namespace, name, obj, *, subresource=None) -> dict   # PUT
    store.patch(rt, namespace, name, patch, content_type, *, subresource=None) -> dict
    store.delete(rt, namespace, name, options=None) -> dict       # DeleteOptions dict
    store.delete_collection(rt, namespace, options=None, *, label_selector="",
                            field_selector="") -> dict             # a `KindList` of deleted
    store.watch(rt, namespace, *, resource_version=None, label_selector="",
                field_selector="") -> Watch
    store.resource_version -> str                                 # current global rv

`namespace` is None for cluster-scoped kinds and for all-namespaces list/watch.
`content_type` is one of application/merge-patch+json, application/json-patch+json,
application/strategic-merge-patch+json (the last only for built-in kinds; 415 for CRDs).

`Watch` is an async iterator of `{"type": ADDED|MODIFIED|DELETED, "object": dict}` with
`close()`. With `resource_version` None or "0" it first yields ADDED for every current match,
then live changes; with an rv it replays everything after that rv (410 `Expired` ApiError raised
by `store.watch` itself when the rv is older than the kept window of `watch_window` events per
resource type). Objects that stop matching a label selector arrive as DELETED, objects that
start matching as ADDED, as kube-apiserver does.

DETAILS (added while implementing the contract above):

- `Store(registry=None, *, watch_window=5000)`: a fresh `Registry()` when none is given. The
  namespaces default, kube-system, kube-public and kube-node-lease exist from the start.
- `create` with `namespace=None` on a namespaced kind takes the body's `metadata.namespace`
  (handy in-process); a body namespace that differs from the argument is a 400. Creating in a
  missing namespace is 404, in a terminating one 403 Forbidden.
- `patch` accepts the patch parsed (dict/list) or as raw JSON `str`/`bytes`. Other media types,
  including `application/apply-patch+yaml`, are 415 UnsupportedMediaType: server-side apply is
  `store.apply(rt, namespace, name, config, *, manager, force=False, subresource=None)
  -> (obj, created)`, which creates or merges as `ecs_sandbox.apply` describes and records the
  manager in `metadata.managedFields`. Other writes keep managedFields unless they send them.
- `subresource` is None, "status" or "scale" ("scale" routes to the scale methods below and
  returns a Scale); a subresource the type does not serve is 404.
- Scale (CRDs declaring `subresources.scale`): an `autoscaling/v1` Scale built from
  `specReplicasPath` / `statusReplicasPath` / `labelSelectorPath`:
      store.get_scale(rt, namespace, name) -> dict
      store.replace_scale(rt, namespace, name, scale) -> dict      # writes spec.replicas
      store.patch_scale(rt, namespace, name, patch, content_type) -> dict
- Pod admission at create, as the ServiceAccount admission plugin: a Pod naming no
  ServiceAccount gets `default` (`spec.serviceAccountName` and the deprecated
  `spec.serviceAccount`), and a Pod whose ServiceAccount the namespace does not have is 403
  Forbidden (`pods "P" is forbidden: error looking up service account NS/SA: serviceaccount
  "SA" not found`). Creating a namespace creates its `default` ServiceAccount in the same
  call, and deleting that ServiceAccount creates it again, as kube-controller-manager's
  serviceaccount controller does moments later. Then Pod Security Admission
  (`ecs_sandbox.pod_security`).
- Pods: `store.bind(namespace, pod_name, binding) -> dict` sets `spec.nodeName` from
  `binding["target"]["name"]` and the PodScheduled condition, and returns the updated Pod
  (kube-apiserver answers 201 with a Success Status; that is the HTTP layer's job). 409 when
  already bound or being deleted. `store.evict(namespace, pod_name, eviction) -> dict` deletes
  the pod with `eviction["deleteOptions"]` and returns what `delete` returns. Pod specs are
  immutable after create except what kube-apiserver allows (images, activeDeadlineSeconds,
  added tolerations, terminationGracePeriodSeconds), so schedulers must bind, not patch.
- `delete` returns the removed object (its `resourceVersion` is the deletion's) or, when it is
  not gone yet (finalizers, a graceful Pod on a node that has not terminated), the object
  with `deletionTimestamp`.
  Options: `gracePeriodSeconds`, `preconditions` {uid, resourceVersion}, `propagationPolicy`
  Background (default) / Foreground / Orphan, and the legacy `orphanDependents`.
- Garbage collection and namespace/CRD cleanup run synchronously inside the call that caused
  them, so a test sees the cascade as soon as `delete` returns.
- `store.close_watches(expire=False)` ends every open watch (the "watches dropped" fault);
  with `expire=True` it also forgets the event history, so resuming answers 410 and clients
  re-list.
- `generation` counts changes outside `metadata` (and outside `status` when the type has a
  status subresource), plus the one bump kube-apiserver makes when `deletionTimestamp` is set.
  An update that changes nothing is a no-op: no new resourceVersion, no watch event.
- CustomResourceDefinitions: creating or updating one serves its versions at once (Established
  and NamesAccepted conditions, `acceptedNames`, `storedVersions`); names clashing with another
  served collection give NamesAccepted=False and nothing is served. Deleting a CRD deletes its
  custom objects (honouring their finalizers) and stops serving it once they are gone; creating
  custom objects meanwhile is 405. Custom objects are admitted by the version's
  `SchemaValidator` (defaulting, pruning, validation). Core/v1 and events.k8s.io/v1 Events are
  stored separately (no conversion between them).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import marshal
import random
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ecs_sandbox import pod_security
from ecs_sandbox.apply import apply as server_side_apply
from ecs_sandbox.errors import (
    ApiError,
    Cause,
    already_exists,
    bad_request,
    conflict,
    expired,
    invalid,
    not_found,
)
from ecs_sandbox.patching import apply_patch, deep_copy
from ecs_sandbox.registry import Registry
from ecs_sandbox.resources import ResourceType
from ecs_sandbox.schema import CelError, SchemaValidator, validate_crd
from ecs_sandbox.selectors import Predicate, parse_field_selector, parse_label_selector

Obj = dict[str, Any]
StorageKey = tuple[str, str]  # (group, plural): all versions of a kind share one storage
ObjectKey = tuple[StorageKey, str, str]  # (storage, namespace or "", name)

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
ORPHAN, FOREGROUND = "orphan", "foregroundDeletion"
CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"
NAMESPACE_FINALIZER = "kubernetes"
_CRD_KEY: StorageKey = ("apiextensions.k8s.io", "customresourcedefinitions")
_NAMESPACE_KEY: StorageKey = ("", "namespaces")
_SERVICE_ACCOUNT_KEY: StorageKey = ("", "serviceaccounts")
DEFAULT_SERVICE_ACCOUNT = "default"
_SYSTEM_FIELDS = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "selfLink",
)
_CONFLICT_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # kube's generateName alphabet

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(
    r"^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS_1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_POD_UPDATE_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)"
)


def now_rfc3339(offset_seconds: int = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _storage(rt: ResourceType) -> StorageKey:
    return (rt.group, rt.plural)


def _required(field: str, message: str = "Required value") -> Cause:
    return Cause(field, message, "FieldValueRequired")


def _bad_value(field: str, value: Any, why: str) -> Cause:
    return Cause(field, f"Invalid value: {json.dumps(value)}: {why}", "FieldValueInvalid")


@dataclass(frozen=True)
class _Event:
    rv: int
    type: str
    obj: Obj
    old: Obj | None


class Watch:
    """One watcher's stream; filled by the store at publish time, drained by the consumer."""

    def __init__(
        self,
        store: Store,
        rt: ResourceType,
        namespace: str | None,
        labels: Predicate,
        fields: Predicate,
        after_rv: int,
    ) -> None:
        self._store = store
        self._rt = rt
        self._namespace = namespace
        self._labels = labels
        self._fields = fields
        self._after_rv = after_rv
        self._queue: asyncio.Queue[tuple[str, Obj] | None] = asyncio.Queue()
        self.closed = False

    @property
    def pending(self) -> int:
        """Events queued and not yet consumed."""
        return self._queue.qsize()

    def _matches(self, obj: Obj) -> bool:
        return self._labels(obj) and self._fields(obj)

    def _offer(self, event: _Event) -> None:
        if self.closed or event.rv <= self._after_rv:
            return
        obj = event.obj
        if self._namespace is not None and obj["metadata"].get("namespace") != self._namespace:
            return
        now_matches = self._matches(obj)
        if event.type == MODIFIED and event.old is not None:
            was_matching = self._matches(event.old)
            if was_matching and not now_matches:
                self._queue.put_nowait((DELETED, obj))
            elif now_matches:
                self._queue.put_nowait((MODIFIED if was_matching else ADDED, obj))
        elif now_matches:
            self._queue.put_nowait((event.type, obj))

    def _push(self, kind: str, obj: Obj) -> None:
        self._queue.put_nowait((kind, obj))

    def close(self) -> None:
        """Stop the stream; events not yet consumed are dropped."""
        if self.closed:
            return
        self.closed = True
        self._store._forget_watch(self._rt, self)
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> Obj:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # keep later calls ending too
            raise StopAsyncIteration
        kind, obj = item
        return {"type": kind, "object": self._store._out(self._rt, obj)}


@dataclass(frozen=True)
class _DeleteOptions:
    grace: int | None
    policy: str | None
    uid: str | None
    resource_version: str | None


class Store:
    """Objects by (storage, namespace, name), one rv counter, watch fan-out, GC. See module doc."""

    def __init__(self, registry: Registry | None = None, *, watch_window: int = 5000) -> None:
        self.registry = registry if registry is not None else Registry()
        self.watch_window = watch_window
        self._rv = 0
        self._data: dict[StorageKey, dict[str, dict[str, Obj]]] = {}
        self._uids: dict[str, ObjectKey] = {}
        self._dependents: dict[str, set[ObjectKey]] = {}
        self._history: dict[StorageKey, deque[_Event]] = {}
        self._history_floor: dict[StorageKey, int] = {}
        self._watches: dict[StorageKey, set[Watch]] = {}
        self._gc_queue: deque[tuple[str, Any]] = deque()
        self._next_cluster_ip = 1
        namespaces = self.registry.get("", "v1", "namespaces")
        for name in DEFAULT_NAMESPACES:
            self.create(namespaces, None, {"metadata": {"name": name}})

    # ------------------------------------------------------------------ public: reads

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        return self._out(rt, self._require(rt, namespace, name))

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        labels = parse_label_selector(label_selector)
        fields = self._field_predicate(rt, field_selector)
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise bad_request(f"limit: Invalid value: {limit!r}: must be a non-negative integer")
        list_rv, start = self._decode_continue(continue_token)
        items: list[Obj] = []
        remaining = 0
        last: tuple[str, str] | None = None
        for position, obj in self._scan(rt, namespace, start):
            if not (labels(obj) and fields(obj)):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(self._out(rt, obj))
            last = position
        metadata: Obj = {"resourceVersion": str(list_rv if list_rv is not None else self._rv)}
        if remaining and last is not None:
            metadata["continue"] = self._encode_continue(int(metadata["resourceVersion"]), last)
            metadata["remainingItemCount"] = remaining
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": metadata,
            "items": items,
        }

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        resource_version: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> Watch:
        labels = parse_label_selector(label_selector)
        fields = self._field_predicate(rt, field_selector)
        key = _storage(rt)
        if resource_version in (None, "", "0"):
            watch = Watch(self, rt, namespace, labels, fields, self._rv)
            for _, obj in self._scan(rt, namespace, None):
                if labels(obj) and fields(obj):
                    watch._push(ADDED, obj)
        else:
            since = self._parse_rv(resource_version)
            floor = self._history_floor.get(key, 0)
            if since < floor:
                raise expired(f"too old resource version: {since} ({floor + 1})")
            watch = Watch(self, rt, namespace, labels, fields, since)
            for event in self._history.get(key, ()):
                watch._offer(event)
            watch._after_rv = max(since, self._rv)
        self._watches.setdefault(key, set()).add(watch)
        return watch

    def close_watches(self, *, expire: bool = False) -> None:
        for watches in list(self._watches.values()):
            for watch in list(watches):
                watch.close()
        if expire:
            for key, history in self._history.items():
                history.clear()
                self._history_floor[key] = self._rv

    # ------------------------------------------------------------------ public: writes

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        obj: Obj,
        *,
        dry_run: bool = False,
        strict: bool = False,
        managed_fields: Sequence[Obj] | None = None,
    ) -> Obj:
        body = self._body(rt, obj)
        meta = body["metadata"]
        namespace = self._target_namespace(rt, namespace, meta)
        self._check_namespace_accepts(rt, namespace, meta.get("name") or "")
        if rt.crd_version is not None:
            self._check_crd_accepts(rt)
        for field in _SYSTEM_FIELDS:
            meta.pop(field, None)
        meta.pop("managedFields", None)
        name = self._choose_name(rt, namespace, meta)
        if rt.has_status and rt.kind != "Node":  # kubelets register Nodes with their status
            body.pop("status", None)
        self._default(rt, body, None)
        self._validate(rt, body, None)
        body = self._admit(rt, body, None, strict)
        if rt.group == "" and rt.kind == "Pod":
            self._check_service_account(namespace or "", name, body)
            self._check_pod_security(namespace or "", name, body)
        meta = body["metadata"]
        if managed_fields:
            meta["managedFields"] = [*managed_fields]
        crd_types = self._prepare_crd(body, None) if _storage(rt) == _CRD_KEY else None
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta["generation"] = 1
        if dry_run:
            return self._out(rt, body)
        self._commit(rt, namespace or "", name, body, ADDED, None)
        if crd_types is not None:
            crd_types()
        self._after_write(rt, body, None)
        if _storage(rt) == _NAMESPACE_KEY:
            self._create_default_service_account(name)
        self._drain()
        return self._out(rt, body)

    def _create_default_service_account(self, namespace: str) -> None:
        """kube-controller-manager's serviceaccount controller gives every namespace its
        `default` ServiceAccount; here at once, so a Pod created right after its namespace is
        admitted (the admission plugin waits a moment for `default` on a real cluster)."""
        account = {"metadata": {"name": DEFAULT_SERVICE_ACCOUNT}}
        self.create(self.registry.get("", "v1", "serviceaccounts"), namespace, account)

    def replace(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        obj: Obj,
        *,
        subresource: str | None = None,
        strict: bool = False,
    ) -> Obj:
        if subresource == "scale":
            return self.replace_scale(rt, namespace, name, obj)
        self._check_subresource(rt, subresource)
        old = self._require(rt, namespace, name)
        body = self._body(rt, obj)
        result = self._update(rt, old, body, subresource, strict)
        self._drain()
        return self._out(rt, result)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str,
        *,
        subresource: str | None = None,
        strict: bool = False,
    ) -> Obj:
        if subresource == "scale":
            return self.patch_scale(rt, namespace, name, patch, content_type)
        self._check_subresource(rt, subresource)
        old = self._require(rt, namespace, name)
        patched = apply_patch(old, patch, content_type, strategic=rt.crd_version is None)
        body = self._body(rt, patched)
        result = self._update(rt, old, body, subresource, strict)
        self._drain()
        return self._out(rt, result)

    def apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        config: Any,
        *,
        manager: str,
        force: bool = False,
        subresource: str | None = None,
        strict: bool = False,
    ) -> tuple[Obj, bool]:
        """Server-side apply of `config` by field manager `manager` (see `ecs_sandbox.apply`):
        the object and whether it was created."""
        if subresource == "scale":
            raise ApiError(
                415, "UnsupportedMediaType", "the sandbox serves server-side apply on objects "
                "and their status, not on the scale subresource",
            )  # fmt: skip
        self._check_subresource(rt, subresource)
        if not manager:
            raise invalid(
                "PatchOptions", "meta.k8s.io", "", [_required("fieldManager", "Required value: "
                "is required for apply patch")],
            )  # fmt: skip
        if len(manager) > 128:
            raise invalid(
                "PatchOptions", "meta.k8s.io", "",
                [_bad_value("fieldManager", manager, "must be at most 128 characters")],
            )  # fmt: skip
        body = self._body(rt, config)
        meta = body["metadata"]
        if meta.get("managedFields") is not None:
            raise bad_request("metadata.managedFields must be nil")
        if meta.get("name") not in (None, "", name):
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        meta["name"] = name
        live = self._lookup(_storage(rt), (namespace or "") if rt.namespaced else "", name)
        if live is None and subresource is not None:
            raise not_found(rt.plural, rt.group, name)
        applied = server_side_apply(
            live,
            body,
            manager=manager,
            force=force,
            subresource=subresource,
            has_status=rt.has_status,
            api_version=rt.api_version,
            now=now_rfc3339(),
            kind=rt.plural,
            group=rt.group,
        )
        if live is None:
            created = {
                "apiVersion": rt.api_version,
                "kind": rt.kind,
                **applied.obj,
                "metadata": {**applied.obj.get("metadata", {}), "name": name},
            }
            return (
                self.create(
                    rt, namespace, created, strict=strict, managed_fields=applied.managed_fields
                ),
                True,
            )
        target = self._body(rt, applied.obj)
        result = self._update(
            rt, live, target, subresource, strict, managed_fields=applied.managed_fields
        )
        self._drain()
        return self._out(rt, result), False

    def delete(
        self, rt: ResourceType, namespace: str | None, name: str, options: Obj | None = None
    ) -> Obj:
        opts = self._delete_options(options)
        old = self._require(rt, namespace, name)
        result = self._delete(rt, old, opts)
        self._drain()
        return self._out(rt, result)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        options: Obj | None = None,
        *,
        label_selector: str = "",
        field_selector: str = "",
    ) -> Obj:
        opts = self._delete_options(options)
        labels = parse_label_selector(label_selector)
        fields = self._field_predicate(rt, field_selector)
        chosen = [obj for _, obj in self._scan(rt, namespace, None) if labels(obj) and fields(obj)]
        items = []
        for obj in chosen:
            current = self._lookup(
                _storage(rt), obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
            )
            if current is not None:
                items.append(self._out(rt, self._delete(rt, current, opts)))
        self._drain()
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    # ------------------------------------------------------------------ public: subresources

    def get_scale(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        paths = self._scale_paths(rt)
        return self._scale_of(self._require(rt, namespace, name), paths)

    def replace_scale(self, rt: ResourceType, namespace: str | None, name: str, scale: Obj) -> Obj:
        paths = self._scale_paths(rt)
        old = self._require(rt, namespace, name)
        replicas = self._scale_replicas(rt, old, scale)
        body = deep_copy(old)
        _set_path(body, paths["specReplicasPath"], replicas)
        requested_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if requested_rv:
            body["metadata"]["resourceVersion"] = requested_rv
        result = self._update(rt, old, body, None)
        self._drain()
        return self._scale_of(result, paths)

    def patch_scale(
        self, rt: ResourceType, namespace: str | None, name: str, patch: Any, content_type: str
    ) -> Obj:
        current = self.get_scale(rt, namespace, name)
        patched = apply_patch(current, patch, content_type, strategic=True)
        return self.replace_scale(rt, namespace, name, patched)

    def bind(self, namespace: str, pod_name: str, binding: Obj) -> Obj:
        pods = self.registry.get("", "v1", "pods")
        pod = self._require(pods, namespace, pod_name)
        target = binding.get("target") if isinstance(binding, dict) else None
        node = target.get("name") if isinstance(target, dict) else None
        if not isinstance(node, str) or not node:
            raise invalid("Binding", "", pod_name, [_required("target.name")])
        if pod["metadata"].get("deletionTimestamp"):
            why = f"pod {pod_name} is being deleted, cannot be assigned to a host"
            raise conflict("pods/binding", "", pod_name, why)
        bound_to = pod["spec"].get("nodeName")
        if bound_to:
            why = f'pod {pod_name} is already assigned to node "{bound_to}"'
            raise conflict("pods/binding", "", pod_name, why)
        new = deep_copy(pod)
        new["spec"]["nodeName"] = node
        annotations = (binding.get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict) and annotations:
            new["metadata"].setdefault("annotations", {}).update(
                {k: v for k, v in annotations.items() if isinstance(v, str)}
            )
        status = new.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now_rfc3339(),
            }
        )
        status["conditions"] = conditions
        result = self._store_update(pods, pod, new)
        self._drain()
        return self._out(pods, result)

    def evict(self, namespace: str, pod_name: str, eviction: Obj) -> Obj:
        pods = self.registry.get("", "v1", "pods")
        options = eviction.get("deleteOptions") if isinstance(eviction, dict) else None
        return self.delete(pods, namespace, pod_name, options)

    # ------------------------------------------------------------------ storage primitives

    def _bucket(self, key: StorageKey, namespace: str) -> dict[str, Obj]:
        return self._data.setdefault(key, {}).setdefault(namespace, {})

    def _lookup(self, key: StorageKey, namespace: str, name: str) -> Obj | None:
        return self._data.get(key, {}).get(namespace, {}).get(name)

    def _require(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        found = self._lookup(_storage(rt), (namespace or "") if rt.namespaced else "", name)
        if found is None:
            raise not_found(rt.plural, rt.group, name)
        return found

    def _scan(
        self, rt: ResourceType, namespace: str | None, start: tuple[str, str] | None
    ) -> Iterator[tuple[tuple[str, str], Obj]]:
        """Objects in (namespace, name) order, strictly after `start`."""
        buckets = self._data.get(_storage(rt), {})
        if rt.namespaced and namespace is not None:
            selected = [namespace] if namespace in buckets else []
        else:
            selected = sorted(buckets)
        for ns in selected:
            if start is not None and ns < start[0]:
                continue
            bucket = buckets[ns]
            for name in sorted(bucket):
                if start is not None and (ns, name) <= start:
                    continue
                yield (ns, name), bucket[name]

    def _out(self, rt: ResourceType, obj: Obj) -> Obj:
        # Stored objects hold JSON types only (see _json_copy), which marshal copies fastest.
        out: Obj = marshal.loads(marshal.dumps(obj))
        out["apiVersion"] = rt.api_version
        return out

    def _commit(
        self, rt: ResourceType, namespace: str, name: str, obj: Obj, kind: str, old: Obj | None
    ) -> None:
        """Store `obj` (already validated) under a new rv, index it and tell the watchers."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = _storage(rt)
        self._bucket(key, namespace)[name] = obj
        object_key = (key, namespace, name)
        self._uids[obj["metadata"]["uid"]] = object_key
        self._reindex_owners(object_key, old, obj)
        self._publish(key, _Event(self._rv, kind, obj, old))

    def _remove(self, rt: ResourceType, final: Obj) -> Obj:
        """Remove an object; `final` is its last state (the stored one or an update of it)."""
        key = _storage(rt)
        meta = final["metadata"]
        namespace = meta.get("namespace", "")
        self._rv += 1
        gone = dict(final)
        gone["metadata"] = {**meta, "resourceVersion": str(self._rv)}
        bucket = self._data[key][namespace]
        stored = bucket.pop(meta["name"])
        if not bucket:
            del self._data[key][namespace]
        self._uids.pop(meta["uid"], None)
        self._reindex_owners((key, namespace, meta["name"]), stored, None)
        self._publish(key, _Event(self._rv, DELETED, gone, None))
        self._gc_queue.append(("gone", gone))
        return gone

    def _reindex_owners(self, object_key: ObjectKey, old: Obj | None, new: Obj | None) -> None:
        for obj, add in ((old, False), (new, True)):
            if obj is None:
                continue
            for ref in obj["metadata"].get("ownerReferences") or ():
                owners = self._dependents.setdefault(ref["uid"], set())
                if add:
                    owners.add(object_key)
                else:
                    owners.discard(object_key)
                    if not owners:
                        del self._dependents[ref["uid"]]

    def _publish(self, key: StorageKey, event: _Event) -> None:
        history = self._history.setdefault(key, deque(maxlen=self.watch_window))
        if history.maxlen is not None and len(history) == history.maxlen:
            self._history_floor[key] = history[0].rv
        history.append(event)
        for watch in self._watches.get(key, ()):
            watch._offer(event)

    def _forget_watch(self, rt: ResourceType, watch: Watch) -> None:
        self._watches.get(_storage(rt), set()).discard(watch)

    # ------------------------------------------------------------------ request checks

    def _body(self, rt: ResourceType, obj: Any) -> Obj:
        """A private copy of a request body, with apiVersion/kind checked and filled in."""
        if not isinstance(obj, dict):
            raise bad_request(f"the body of a {rt.kind} must be a JSON object")
        body: Obj = _json_copy(obj, "")
        api_version = body.get("apiVersion")
        if api_version not in (None, "", rt.api_version) and not self._same_kind_version(
            rt, api_version
        ):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        kind = body.get("kind")
        if kind not in (None, "", rt.kind):
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        meta = body.pop("metadata", None)
        if meta is None:
            meta = {}
        _check_metadata_types(rt, meta)
        body.pop("apiVersion", None)
        body.pop("kind", None)
        return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": meta, **body}

    def _same_kind_version(self, rt: ResourceType, api_version: Any) -> bool:
        if not isinstance(api_version, str) or rt.crd_version is None:
            return False
        group, _, version = api_version.rpartition("/")
        if group != rt.group:
            return False
        try:
            return self.registry.get(group, version, rt.plural).kind == rt.kind
        except ApiError:
            return False

    def _target_namespace(self, rt: ResourceType, namespace: str | None, meta: Obj) -> str | None:
        if not rt.namespaced:
            meta.pop("namespace", None)
            return None
        given = meta.get("namespace") or None
        if namespace is None:
            namespace = given
        if namespace is None:
            raise bad_request(f"a namespace is required to create {rt.plural}")
        if given is not None and given != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = namespace
        return namespace

    def _check_namespace_accepts(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        if namespace is None:
            return
        ns = self._lookup(_NAMESPACE_KEY, "", namespace)
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            message = (
                f'{rt.plural} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated"
            )
            raise ApiError(403, "Forbidden", message, rt.plural, name, rt.group)

    def _check_service_account(self, namespace: str, name: str, pod: Obj) -> None:
        """The ServiceAccount admission plugin: a Pod that names no ServiceAccount gets
        `default` (`spec.serviceAccountName`, mirrored into the deprecated
        `spec.serviceAccount` as the v1 conversion does), and a Pod whose ServiceAccount its
        namespace does not have is refused, in the plugin's words."""
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            return
        # v1 conversion: the deprecated `serviceAccount` stands in for a missing name.
        account = spec.get("serviceAccountName") or spec.get("serviceAccount")
        if not account or not isinstance(account, str):
            account = DEFAULT_SERVICE_ACCOUNT
        spec["serviceAccountName"] = spec["serviceAccount"] = account
        if not self.has_service_account(namespace, account):
            message = (
                f'pods "{name}" is forbidden: error looking up service account '
                f'{namespace}/{account}: serviceaccount "{account}" not found'
            )
            raise ApiError(403, "Forbidden", message, "pods", name, "")

    def has_service_account(self, namespace: str, name: str) -> bool:
        return self._lookup(_SERVICE_ACCOUNT_KEY, namespace, name) is not None

    def _check_pod_security(self, namespace: str, name: str, pod: Obj) -> None:
        ns = self._lookup(_NAMESPACE_KEY, "", namespace) or {}
        level = pod_security.enforced_level(ns.get("metadata", {}).get("labels") or {})
        found = pod_security.violations(pod, level)
        if found:
            message = (
                f'pods "{name}" is forbidden: violates PodSecurity "{level}:latest": '
                f"{', '.join(found)}"
            )
            raise ApiError(403, "Forbidden", message, "pods", name, "")

    def _check_crd_accepts(self, rt: ResourceType) -> None:
        crd = self._lookup(_CRD_KEY, "", f"{rt.plural}.{rt.group}")
        if crd is not None and crd["metadata"].get("deletionTimestamp"):
            raise ApiError(
                405,
                "MethodNotAllowed",
                "create not allowed while custom resource definition is terminating",
            )

    def _choose_name(self, rt: ResourceType, namespace: str | None, meta: Obj) -> str:
        bucket = self._data.get(_storage(rt), {}).get(namespace or "", {})
        name = meta.get("name")
        prefix = meta.get("generateName")
        if not name and prefix:
            base = prefix[:58]
            for _ in range(8):
                name = base + "".join(random.choices(_NAME_CHARS, k=5))
                if name not in bucket:
                    break
            meta["name"] = name
        if not name:
            raise invalid(
                rt.kind,
                rt.group,
                "",
                [_required("metadata.name", "Required value: name or generateName is required")],
            )
        if name in bucket:
            raise already_exists(rt.plural, rt.group, name)
        return str(name)

    def _check_subresource(self, rt: ResourceType, subresource: str | None) -> None:
        if subresource is not None and (
            subresource != "status" or subresource not in rt.subresources
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _field_predicate(self, rt: ResourceType, selector: str) -> Predicate:
        selectable: tuple[str, ...] = ()
        if rt.crd_version is not None:
            selectable = tuple(
                str(f.get("jsonPath", "")).lstrip(".")
                for f in rt.crd_version.get("selectableFields") or ()
                if isinstance(f, dict)
            )
        return parse_field_selector(selector, rt.group, rt.kind, selectable)

    @staticmethod
    def _parse_rv(value: Any) -> int:
        try:
            parsed = int(value)
        except (TypeError, ValueError):
            raise bad_request(f'invalid resource version "{value}"') from None
        if parsed < 0:
            raise bad_request(f'invalid resource version "{value}"')
        return parsed

    @staticmethod
    def _encode_continue(rv: int, position: tuple[str, str]) -> str:
        raw = json.dumps({"v": 1, "rv": rv, "start": list(position)}).encode()
        return base64.urlsafe_b64encode(raw).decode()

    @staticmethod
    def _decode_continue(token: str | None) -> tuple[int | None, tuple[str, str] | None]:
        if not token:
            return None, None
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            rv, start = data["rv"], data["start"]
            if not (isinstance(rv, int) and isinstance(start, list) and len(start) == 2):
                raise ValueError("malformed")
            return rv, (str(start[0]), str(start[1]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise bad_request(
                "continue key is not valid: incorrect encoded start position"
            ) from None

    # ------------------------------------------------------------------ defaults & validation

    def _default(self, rt: ResourceType, body: Obj, old: Obj | None) -> None:
        if _storage(rt) == _CRD_KEY:
            _default_crd(body)
        if rt.group != "":
            return
        if rt.kind == "Pod":
            _default_pod(body, creating=old is None)
        elif rt.kind == "Namespace":
            meta = body["metadata"]
            if _DNS_LABEL.match(meta.get("name") or ""):
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            if old is None:
                body["spec"] = {"finalizers": [NAMESPACE_FINALIZER]}
                body["status"] = {"phase": "Active"}
            else:  # spec.finalizers changes only through namespaces/finalize
                body["spec"] = old.get("spec", {})
        elif rt.kind == "Service":
            self._default_service(body, old)

    def _default_service(self, body: Obj, old: Obj | None) -> None:
        spec = body.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            old_ip = (old or {}).get("spec", {}).get("clusterIP")
            if not spec.get("clusterIP"):
                spec["clusterIP"] = old_ip or self._allocate_cluster_ip()
            if spec["clusterIP"] != "None":
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
                spec.setdefault("ipFamilies", ["IPv4"])
                spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or ():
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])
        if old is None:
            body["status"] = {"loadBalancer": {}}

    def _allocate_cluster_ip(self) -> str:
        n = self._next_cluster_ip
        self._next_cluster_ip += 1
        return f"10.96.{(n >> 8) & 255}.{n & 255}"

    def _validate(self, rt: ResourceType, body: Obj, old: Obj | None) -> None:
        meta = body["metadata"]
        name = meta.get("name", "")
        causes = _validate_metadata(rt, meta)
        if rt.group in ("", "apps"):
            causes += _validate_builtin(rt.kind, body, old)
        if old is not None:
            causes += _validate_immutable(rt, body, old)
        if causes:
            raise invalid(rt.kind, rt.group, name, causes)

    def _admit(self, rt: ResourceType, body: Obj, old: Obj | None, strict: bool = False) -> Obj:
        """Schema admission of custom objects; `strict` is `fieldValidation=Strict` (unknown
        fields are a 400 instead of being pruned)."""
        validator = self.registry.validator(rt)
        if validator is None:
            return body
        return validator.admit(body, old, strict=strict)

    # ------------------------------------------------------------------ updates

    def _update(
        self,
        rt: ResourceType,
        old: Obj,
        body: Obj,
        subresource: str | None,
        strict: bool = False,
        *,
        managed_fields: Sequence[Obj] | None = None,
    ) -> Obj:
        """Validate a PUT/PATCH result against `old` and store it (a no-op stores nothing).

        `managed_fields` is what a server-side apply recorded; other writes keep the object's
        managedFields unless they send new ones (`[{}]` clears them), as kube-apiserver does."""
        meta = body["metadata"]
        old_meta = old["metadata"]
        name = old_meta["name"]
        if meta.get("name") not in (None, "", name):
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        if rt.namespaced and meta.get("namespace") not in (None, "", old_meta.get("namespace")):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        requested_rv = meta.get("resourceVersion")
        if requested_rv not in (None, "") and str(requested_rv) != old_meta["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name, _CONFLICT_MESSAGE)
        requested_uid = meta.get("uid")
        if requested_uid not in (None, "") and requested_uid != old_meta["uid"]:
            why = (
                f"Precondition failed: UID in precondition: {requested_uid}, UID in object "
                f"meta: {old_meta['uid']}"
            )
            raise conflict(rt.plural, rt.group, name, why)
        if subresource == "status":
            new = deep_copy(old)
            if "status" in body:
                new["status"] = body["status"]
            else:
                new.pop("status", None)
        else:
            new = body
            for field in (*_SYSTEM_FIELDS, "name", "namespace"):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            if rt.has_status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            self._default(rt, new, old)
        sent = None if subresource == "status" else meta.get("managedFields")
        _set_managed_fields(new["metadata"], old_meta, managed_fields, sent)
        self._validate(rt, new, old)
        new = self._admit(rt, new, old, strict)
        crd_types = self._prepare_crd(new, old) if _storage(rt) == _CRD_KEY else None
        result = self._store_update(rt, old, new)
        if crd_types is not None and result is not old:
            crd_types()
        return result

    def _store_update(self, rt: ResourceType, old: Obj, new: Obj) -> Obj:
        """Commit a validated update: generation, no-op detection, MODIFIED, finalizer removal."""
        meta = new["metadata"]
        old_meta = old["metadata"]
        meta["resourceVersion"] = old_meta["resourceVersion"]
        meta["generation"] = old_meta.get("generation", 1)
        if _spec_part(new, rt) != _spec_part(old, rt):
            meta["generation"] += 1
        if new == old:
            return old
        if _removable(new):  # as kube-apiserver: the update becomes the deletion (no MODIFIED)
            return self._remove(rt, new)
        self._commit(rt, old_meta.get("namespace", ""), old_meta["name"], new, MODIFIED, old)
        self._after_write(rt, new, old)
        return new

    def _after_write(self, rt: ResourceType, new: Obj, old: Obj | None) -> None:
        """Queue the garbage-collector work a write can cause."""
        refs = new["metadata"].get("ownerReferences")
        old_refs = old["metadata"].get("ownerReferences") if old is not None else None
        key: ObjectKey = (
            _storage(rt),
            new["metadata"].get("namespace", ""),
            new["metadata"]["name"],
        )
        if refs and refs != old_refs:
            self._gc_queue.append(("dependent", key))
        if old_refs and refs != old_refs:
            for ref in old_refs:
                self._gc_queue.append(("owner", ref["uid"]))

    # ------------------------------------------------------------------ deletion

    def _delete_options(self, options: Obj | None) -> _DeleteOptions:
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        causes: list[Cause] = []
        grace = options.get("gracePeriodSeconds")
        if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
            causes.append(_bad_value("gracePeriodSeconds", grace, "must be an integer"))
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy not in (None, "Background", "Foreground", "Orphan"):
            causes.append(
                Cause(
                    "propagationPolicy",
                    f'Unsupported value: "{policy}": supported values: "Foreground", "Background", '
                    '"Orphan", "nil"',
                    "FieldValueNotSupported",
                )
            )
        preconditions = options.get("preconditions") or {}
        if not isinstance(preconditions, dict):
            causes.append(_bad_value("preconditions", preconditions, "must be an object"))
            preconditions = {}
        if causes:
            raise invalid("DeleteOptions", "", "", causes)
        if isinstance(grace, int) and grace < 0:
            grace = 1  # kube-apiserver treats a negative grace period as one second
        rv = preconditions.get("resourceVersion")
        uid = preconditions.get("uid")
        return _DeleteOptions(grace, policy, str(uid) if uid else None, str(rv) if rv else None)

    def _delete(self, rt: ResourceType, old: Obj, opts: _DeleteOptions) -> Obj:
        meta = old["metadata"]
        name = meta["name"]
        if opts.uid is not None and opts.uid != meta["uid"]:
            why = (
                f"Precondition failed: UID in precondition: {opts.uid}, UID in object meta: "
                f"{meta['uid']}"
            )
            raise conflict(rt.plural, rt.group, name, why)
        if opts.resource_version is not None and opts.resource_version != meta["resourceVersion"]:
            why = (
                f"Precondition failed: ResourceVersion in precondition: {opts.resource_version}, "
                f"ResourceVersion in object meta: {meta['resourceVersion']}"
            )
            raise conflict(rt.plural, rt.group, name, why)
        finalizers = list(meta.get("finalizers") or [])
        if opts.policy == "Orphan":
            finalizers = [f for f in finalizers if f != FOREGROUND]
            finalizers += [] if ORPHAN in finalizers else [ORPHAN]
        elif opts.policy == "Foreground":
            finalizers = [f for f in finalizers if f != ORPHAN]
            finalizers += [] if FOREGROUND in finalizers else [FOREGROUND]
        elif opts.policy == "Background":
            finalizers = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
        kind = (rt.group, rt.kind)
        if kind == ("", "Namespace") and name in _IMMORTAL_NAMESPACES:
            message = f'namespaces "{name}" is forbidden: this namespace may not be deleted'
            raise ApiError(403, "Forbidden", message, "namespaces", name, "")
        finalizers_pending = bool(finalizers) or (
            kind == ("", "Namespace") and bool(old.get("spec", {}).get("finalizers"))
        )
        grace = 0
        # kube-apiserver deletes at once a Pod never bound to a node or already terminated:
        # no kubelet has anything left to stop.
        terminated = (old.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if kind == ("", "Pod") and old["spec"].get("nodeName") and not terminated:
            default_grace = old["spec"].get("terminationGracePeriodSeconds", 30)
            grace = opts.grace if opts.grace is not None else default_grace
        if meta.get("deletionTimestamp"):
            return self._delete_again(rt, old, finalizers, opts.grace)
        if not finalizers_pending and grace == 0:
            return self._remove(rt, old)
        new = {**old, "metadata": deep_copy(meta)}
        new_meta = new["metadata"]
        new_meta["deletionTimestamp"] = now_rfc3339(grace)
        new_meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            new_meta["finalizers"] = finalizers
        else:
            new_meta.pop("finalizers", None)
        new_meta["generation"] = meta.get("generation", 1) + 1
        if kind == ("", "Namespace"):
            new["status"] = {**old.get("status", {}), "phase": "Terminating"}
        if kind == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            new["status"] = _with_condition(
                old.get("status", {}),
                "Terminating",
                "True",
                "InstanceDeletionInProgress",
                "CustomResource deletion is in progress",
            )
        namespace = meta.get("namespace", "")
        self._commit(rt, namespace, name, new, MODIFIED, old)
        self._gc_queue.append(("deleting", (_storage(rt), namespace, name)))
        return new

    def _delete_again(
        self, rt: ResourceType, old: Obj, finalizers: Sequence[str], grace: int | None
    ) -> Obj:
        """DELETE of an object already being deleted: may shorten the grace or change policy."""
        meta = old["metadata"]
        new_meta = deep_copy(meta)
        current_grace = meta.get("deletionGracePeriodSeconds") or 0
        if grace is not None and grace < current_grace:
            new_meta["deletionGracePeriodSeconds"] = grace
            new_meta["deletionTimestamp"] = now_rfc3339(grace)
        if finalizers:
            new_meta["finalizers"] = finalizers
        else:
            new_meta.pop("finalizers", None)
        if new_meta == meta:
            return old
        new = {**old, "metadata": new_meta}
        result = self._store_update(rt, old, new)
        key = (_storage(rt), meta.get("namespace", ""), meta["name"])
        self._gc_queue.append(("deleting", key))
        return result

    # ------------------------------------------------------------------ garbage collection

    def _drain(self) -> None:
        """Run the GC work the last write queued, and whatever that work queues in turn.

        Tasks: ("gone", obj) after a removal; ("dependent", key) to check a dependent's owners;
        ("deleting", key) when an object got its deletionTimestamp (sweeps namespaces and CRD
        instances, orphans or collects dependents); ("owner", uid) when a dependent of a
        terminating owner went away (finishes the owner without sweeping again).
        """
        while self._gc_queue:
            task, arg = self._gc_queue.popleft()
            if task == "gone":
                self._on_gone(arg)
            elif task == "dependent":
                self._collect_dependent(arg)
            elif task == "deleting":
                self._on_deleting(arg, sweep=True)
            elif task == "owner" and arg in self._uids:
                self._on_deleting(self._uids[arg], sweep=False)

    def _rt_for(self, key: StorageKey, obj: Obj) -> ResourceType | None:
        group, plural = key
        version = obj["apiVersion"].rpartition("/")[2]
        try:
            return self.registry.get(group, version, plural)
        except ApiError:
            return next((rt for rt in self.registry.all() if _storage(rt) == key), None)

    def _obj_at(self, key: ObjectKey) -> tuple[ResourceType, Obj] | None:
        obj = self._lookup(*key)
        if obj is None:
            return None
        rt = self._rt_for(key[0], obj)
        return None if rt is None else (rt, obj)

    def _owner_of(self, ref: Obj, namespace: str) -> Obj | None:
        """The live owner an ownerReference points at (same namespace or cluster-scoped). As
        kube-controller-manager's garbage collector, the owner is the object of the reference's
        kind and name, and only if it has the reference's uid: a reference whose uid belongs to
        another object is dangling."""
        key = self._uids.get(ref["uid"])
        if key is None or key[1] not in ("", namespace):
            return None
        owner = self._lookup(*key)
        if owner is None or (owner.get("kind"), owner["metadata"]["name"]) != (
            ref.get("kind"),
            ref.get("name"),
        ):
            return None
        return owner

    def _on_gone(self, gone: Obj) -> None:
        meta = gone["metadata"]
        for key in list(self._dependents.get(meta["uid"], ())):
            self._gc_queue.append(("dependent", key))
        for ref in meta.get("ownerReferences") or ():
            self._gc_queue.append(("owner", ref["uid"]))
        namespace = meta.get("namespace")
        if namespace:
            ns = self._lookup(_NAMESPACE_KEY, "", namespace)
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                self._gc_queue.append(("owner", ns["metadata"]["uid"]))
            elif ns is not None and _is_default_service_account(gone):
                self._create_default_service_account(namespace)  # the controller restores it
        if gone["apiVersion"].startswith("apiextensions.k8s.io/"):
            self._forget_crd(gone)
            return
        crd = self._crd_for(gone)
        if crd is not None and crd["metadata"].get("deletionTimestamp"):
            self._gc_queue.append(("owner", crd["metadata"]["uid"]))

    def _crd_for(self, obj: Obj) -> Obj | None:
        group = obj["apiVersion"].rpartition("/")[0]
        if "." not in group:
            return None
        for crd in self._data.get(_CRD_KEY, {}).get("", {}).values():
            spec = crd["spec"]
            if spec["group"] == group and spec["names"]["kind"] == obj["kind"]:
                return crd
        return None

    def _on_deleting(self, key: ObjectKey, *, sweep: bool) -> None:
        found = self._obj_at(key)
        if found is None:
            return
        rt, obj = found
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp"):
            return
        finalizers = meta.get("finalizers") or []
        if rt.group == "" and rt.kind == "Namespace":
            self._finish_namespace(rt, obj, sweep=sweep)
        elif _storage(rt) == _CRD_KEY and CRD_CLEANUP in finalizers:
            self._finish_crd(rt, obj, sweep=sweep)
        elif ORPHAN in finalizers:
            self._orphan_dependents(meta["uid"])
            self._drop_finalizer(rt, obj, ORPHAN)
        elif FOREGROUND in finalizers:
            self._finish_foreground(rt, obj, sweep=sweep)

    def _drop_finalizer(self, rt: ResourceType, obj: Obj, finalizer: str) -> None:
        new_meta = deep_copy(obj["metadata"])
        new_meta["finalizers"] = [f for f in new_meta.get("finalizers") or [] if f != finalizer]
        if not new_meta["finalizers"]:
            del new_meta["finalizers"]
        self._store_update(rt, obj, {**obj, "metadata": new_meta})

    def _orphan_dependents(self, uid: str) -> None:
        for key in list(self._dependents.get(uid, ())):
            found = self._obj_at(key)
            if found is not None:
                rt, dependent = found
                self._rewrite_owner_refs(rt, dependent, lambda ref: ref["uid"] != uid)

    def _rewrite_owner_refs(self, rt: ResourceType, obj: Obj, keep: Callable[[Obj], bool]) -> None:
        refs = obj["metadata"].get("ownerReferences") or []
        kept = [ref for ref in refs if keep(ref)]
        if len(kept) == len(refs):
            return
        new_meta = deep_copy(obj["metadata"])
        if kept:
            new_meta["ownerReferences"] = kept
        else:
            new_meta.pop("ownerReferences", None)
        self._store_update(rt, obj, {**obj, "metadata": new_meta})

    def _finish_foreground(self, rt: ResourceType, owner: Obj, *, sweep: bool) -> None:
        """Delete the dependents; drop `foregroundDeletion` once none blocks the owner."""
        uid = owner["metadata"]["uid"]
        if sweep:
            for key in list(self._dependents.get(uid, ())):
                self._collect_dependent(key)
        for key in self._dependents.get(uid, ()):
            found = self._lookup(*key)
            refs = found["metadata"].get("ownerReferences") or () if found else ()
            if any(ref["uid"] == uid and ref.get("blockOwnerDeletion") for ref in refs):
                return
        current = self._lookup(
            _storage(rt), owner["metadata"].get("namespace", ""), owner["metadata"]["name"]
        )
        if current is not None:
            self._drop_finalizer(rt, current, FOREGROUND)

    def _collect_dependent(self, key: ObjectKey) -> None:
        """Delete a dependent none of whose owners remains; drop references to vanished owners."""
        found = self._obj_at(key)
        if found is None:
            return
        rt, obj = found
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or []
        solid, waiting, dangling = [], [], []
        for ref in refs:
            owner = self._owner_of(ref, key[1])
            if owner is None:
                dangling.append(ref["uid"])
            elif owner["metadata"].get("deletionTimestamp") and FOREGROUND in (
                owner["metadata"].get("finalizers") or ()
            ):
                waiting.append(ref["uid"])
            else:
                solid.append(ref["uid"])
        if not refs:
            return
        if solid:
            gone = set(dangling + waiting)
            if gone:
                self._rewrite_owner_refs(rt, obj, lambda ref: ref["uid"] not in gone)
            return
        if meta.get("deletionTimestamp"):
            return
        policy = "Foreground" if waiting and self._dependents.get(meta["uid"]) else "Background"
        self._delete(rt, obj, _DeleteOptions(None, policy, None, None))

    def _holds_objects(self, key: StorageKey, namespace: str) -> bool:
        return bool(self._data.get(key, {}).get(namespace))

    def _finish_namespace(self, rt: ResourceType, namespace_obj: Obj, *, sweep: bool) -> None:
        name = namespace_obj["metadata"]["name"]
        if sweep:
            for key, buckets in list(self._data.items()):
                for obj in list((buckets.get(name) or {}).values()):
                    found_rt = self._rt_for(key, obj)
                    if found_rt is None or obj["metadata"].get("deletionTimestamp"):
                        continue
                    self._delete(found_rt, obj, _DeleteOptions(None, None, None, None))
        if any(self._holds_objects(key, name) for key in self._data if key != _NAMESPACE_KEY):
            return
        current = self._lookup(_NAMESPACE_KEY, "", name)
        if current is None or not current.get("spec", {}).get("finalizers"):
            return
        new = {**current, "spec": {**current["spec"], "finalizers": []}}
        self._store_update(rt, current, new)

    # ------------------------------------------------------------------ CRDs

    def _prepare_crd(self, crd: Obj, old: Obj | None) -> Callable[[], None]:
        """Validate a CRD and set its status; returns the step that (re)serves it after commit."""
        causes = _validate_crd_basics(crd)
        if not causes:
            causes = validate_crd(crd)
        if causes:
            raise invalid(
                "CustomResourceDefinition", "apiextensions.k8s.io", crd["metadata"]["name"], causes
            )
        meta = crd["metadata"]
        if old is None:
            finalizers = meta.setdefault("finalizers", [])
            if CRD_CLEANUP not in finalizers:
                finalizers.append(CRD_CLEANUP)
        spec = crd["spec"]
        storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
        given = crd.get("status")
        status: Obj = given if isinstance(given, dict) else {}
        stored = [v for v in status.get("storedVersions") or [] if isinstance(v, str)]
        if not stored and old is not None:
            stored = list(old.get("status", {}).get("storedVersions") or [])
        if storage not in stored:
            stored.append(storage)
        clash = self.registry.conflicting_names(crd)
        accepted = "False" if clash else "True"
        status = {**status, "storedVersions": stored, "acceptedNames": deep_copy(spec["names"])}
        status["acceptedNames"].setdefault("singular", spec["names"]["kind"].lower())
        if clash:
            status["acceptedNames"] = (old or {}).get("status", {}).get("acceptedNames", {})
        status = _with_condition(
            status,
            "NamesAccepted",
            accepted,
            "NoConflicts" if not clash else "PluralConflict",
            clash or "no conflicts found",
        )
        status = _with_condition(
            status,
            "Established",
            accepted,
            "InitialNamesAccepted" if not clash else "NotAccepted",
            "the initial names have been accepted" if not clash else "not all names are accepted",
        )
        crd["status"] = status
        if clash:
            return lambda: None
        # Building the validators may fail on a bad schema: do it before anything is stored.
        try:
            entries = self.registry.crd_types(crd)
        except CelError as exc:  # validate_crd normally reports these first
            raise invalid(
                "CustomResourceDefinition",
                "apiextensions.k8s.io",
                meta["name"],
                [_bad_value("spec.versions", "", str(exc))],
            ) from None
        return lambda: self._serve_crd(meta["name"], entries)

    def _serve_crd(
        self, name: str, entries: Sequence[tuple[ResourceType, SchemaValidator]]
    ) -> None:
        before = {rt.key for rt in self.registry.all()}
        self.registry.serve_crd(name, entries)
        served = {rt.key for rt in self.registry.all()}
        for watches in self._watches.values():
            for watch in list(watches):
                if watch._rt.key in before - served:
                    watch.close()

    def _finish_crd(self, rt: ResourceType, crd: Obj, *, sweep: bool) -> None:
        spec = crd["spec"]
        key: StorageKey = (spec["group"], spec["names"]["plural"])
        if sweep:
            custom = [o for bucket in self._data.get(key, {}).values() for o in bucket.values()]
            for obj in custom:
                custom_rt = self._rt_for(key, obj)
                if custom_rt is not None and not obj["metadata"].get("deletionTimestamp"):
                    self._delete(custom_rt, obj, _DeleteOptions(None, None, None, None))
        if any(self._data.get(key, {}).values()):
            return
        current = self._lookup(_CRD_KEY, "", crd["metadata"]["name"])
        if current is not None:
            self._drop_finalizer(rt, current, CRD_CLEANUP)

    def _forget_crd(self, crd: Obj) -> None:
        spec = crd["spec"]
        key: StorageKey = (spec["group"], spec["names"]["plural"])
        self.registry.remove_crd(crd["metadata"]["name"])
        for watch in list(self._watches.get(key, ())):
            watch.close()
        for bucket in self._data.pop(key, {}).values():
            for obj in bucket.values():
                self._uids.pop(obj["metadata"]["uid"], None)

    # ------------------------------------------------------------------ scale

    def _scale_paths(self, rt: ResourceType) -> dict[str, str]:
        scale = ((rt.crd_version or {}).get("subresources") or {}).get("scale")
        if "scale" not in rt.subresources or not isinstance(scale, dict):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {
            "specReplicasPath": scale.get("specReplicasPath") or ".spec.replicas",
            "statusReplicasPath": scale.get("statusReplicasPath") or "",
            "labelSelectorPath": scale.get("labelSelectorPath") or "",
        }

    def _scale_of(self, obj: Obj, paths: dict[str, str]) -> Obj:
        meta = obj["metadata"]
        status: Obj = {"replicas": _get_path(obj, paths.get("statusReplicasPath")) or 0}
        selector = _get_path(obj, paths.get("labelSelectorPath"))
        if selector:
            status["selector"] = selector
        scale_meta = {
            key: meta[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in meta
        }
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": scale_meta,
            "spec": {"replicas": _get_path(obj, paths.get("specReplicasPath")) or 0},
            "status": status,
        }

    @staticmethod
    def _scale_replicas(rt: ResourceType, obj: Obj, scale: Any) -> int:
        name = obj["metadata"]["name"]
        spec = scale.get("spec") if isinstance(scale, dict) else None
        replicas = spec.get("replicas") if isinstance(spec, dict) else None
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise invalid(
                "Scale",
                "autoscaling",
                name,
                [_bad_value("spec.replicas", replicas, "must be an integer")],
            )
        if replicas < 0:
            raise invalid(
                "Scale",
                "autoscaling",
                name,
                [_bad_value("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        return replicas


# ---------------------------------------------------------------------- helpers (pure)


def _json_copy(value: Any, path: str) -> Any:
    """Copy a request body, refusing what JSON cannot carry (in-process callers may try)."""
    kind = type(value)
    if kind is dict:
        copied = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise bad_request(f"{path or 'body'}: object keys must be strings, got {key!r}")
            copied[key] = _json_copy(item, f"{path}.{key}" if path else key)
        return copied
    if kind is list or kind is tuple:
        return [_json_copy(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if value is None or kind in (str, int, float, bool):
        return value
    raise bad_request(f"{path or 'body'}: a {kind.__name__} is not a JSON value")


def _removable(obj: Obj) -> bool:
    """Deleted, no finalizer left, grace period over (a namespace also needs spec.finalizers)."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if meta.get("deletionGracePeriodSeconds"):
        return False
    return not (obj["kind"] == "Namespace" and (obj.get("spec") or {}).get("finalizers"))


def _spec_part(obj: Obj, rt: ResourceType) -> Obj:
    skip = ("metadata", "status") if rt.has_status else ("metadata",)
    return {k: v for k, v in obj.items() if k not in skip and k not in ("apiVersion", "kind")}


def _get_path(obj: Obj, path: str | None) -> Any:
    if not path:
        return None
    value: Any = obj
    for part in path.lstrip(".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = path.lstrip(".").split(".")
    target = obj
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    target[parts[-1]] = value


def _with_condition(status: Obj, kind: str, state: str, reason: str, message: str) -> Obj:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    previous = next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)
    since = (
        previous["lastTransitionTime"]
        if previous and previous.get("status") == state and previous.get("lastTransitionTime")
        else now_rfc3339()
    )
    conditions.append(
        {
            "type": kind,
            "status": state,
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        }
    )
    return {**status, "conditions": conditions}


def _set_managed_fields(meta: Obj, old_meta: Obj, applied: Sequence[Obj] | None, sent: Any) -> None:
    """managedFields after an update: what an apply recorded; else what the request sent (a
    list of entries; `[{}]` clears them); else (absent or `[]`) the object's own."""
    if applied is not None:
        chosen: Any = [*applied]
    elif isinstance(sent, list) and sent and sent != [{}]:
        chosen = sent
    elif sent == [{}]:
        chosen = None
    else:
        chosen = old_meta.get("managedFields")
    if chosen:
        meta["managedFields"] = chosen
    else:
        meta.pop("managedFields", None)


def _check_metadata_types(rt: ResourceType, meta: Any) -> None:
    """Shape errors kube-apiserver's decoder rejects with 400 (it names the field)."""
    prefix = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
    if not isinstance(meta, dict):
        raise bad_request(f"{prefix}metadata must be an object")
    wrong = _metadata_type_error(meta)
    if wrong is not None:
        raise bad_request(f"{prefix}metadata.{wrong[0]} must be {wrong[1]}")


def _metadata_type_error(meta: Obj) -> tuple[str, str] | None:
    """(field, expected type) of the first wrongly typed metadata field, if any."""
    for field in ("name", "generateName", "namespace", "uid"):
        if meta.get(field) is not None and not isinstance(meta[field], str):
            return field, "a string"
    if not isinstance(meta.get("resourceVersion") or "", str | int):
        return "resourceVersion", "a string"
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and not isinstance(value, dict):
            return field, "an object of string values"
        for key, item in (value or {}).items():
            if not isinstance(item, str):
                return f"{field}[{key}]", "a string"
    finalizers = meta.get("finalizers")
    if finalizers is not None and (
        not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers)
    ):
        return "finalizers", "a list of strings"
    refs = meta.get("ownerReferences")
    if refs is not None and (
        not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs)
    ):
        return "ownerReferences", "a list of objects"
    for i, ref in enumerate(refs or ()):
        for field in ("apiVersion", "kind", "name", "uid"):
            if ref.get(field) is not None and not isinstance(ref[field], str):
                return f"ownerReferences[{i}].{field}", "a string"
        for field in ("controller", "blockOwnerDeletion"):
            if ref.get(field) is not None and not isinstance(ref[field], bool):
                return f"ownerReferences[{i}].{field}", "a boolean"
    return None


def _validate_name(rt: ResourceType, name: str) -> list[Cause]:
    if rt.group == "" and rt.kind == "Namespace":
        pattern, limit, message = _DNS_LABEL, 63, _LABEL_MESSAGE
    elif rt.group == "" and rt.kind == "Service":
        pattern, limit, message = _DNS_1035, 63, _DNS_1035_MESSAGE
    else:
        pattern, limit, message = _DNS_SUBDOMAIN, 253, _SUBDOMAIN_MESSAGE
    if len(name) > limit:
        return [_bad_value("metadata.name", name, f"must be no more than {limit} characters")]
    if not pattern.match(name):
        return [_bad_value("metadata.name", name, message)]
    return []


def _validate_metadata(rt: ResourceType, meta: Obj) -> list[Cause]:
    causes = _validate_name(rt, meta.get("name") or "")
    for key, value in (meta.get("labels") or {}).items():
        if len(key.rsplit("/", 1)[-1]) > 63 or not _QUALIFIED_NAME.match(key):
            causes.append(
                _bad_value(
                    "metadata.labels",
                    key,
                    "name part must consist of "
                    "alphanumeric characters, '-', '_' or '.', and must start "
                    "and end with an alphanumeric character",
                )
            )
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                _bad_value(
                    "metadata.labels",
                    value,
                    "a valid label must be an empty "
                    "string or consist of alphanumeric characters, '-', '_' or "
                    "'.', and must start and end with an alphanumeric character",
                )
            )
    for key in meta.get("annotations") or {}:
        if not _QUALIFIED_NAME.match(key):
            causes.append(_bad_value("metadata.annotations", key, "must be a qualified name"))
    for i, finalizer in enumerate(meta.get("finalizers") or ()):
        if not _QUALIFIED_NAME.match(finalizer):
            causes.append(
                _bad_value(f"metadata.finalizers[{i}]", finalizer, "must be a qualified name")
            )
    controllers = 0
    for i, ref in enumerate(meta.get("ownerReferences") or ()):
        for field in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(field):
                causes.append(
                    _bad_value(
                        f"metadata.ownerReferences[{i}].{field}", "", f"{field} must not be empty"
                    )
                )
        controllers += bool(ref.get("controller"))
    if controllers > 1:
        causes.append(
            _bad_value(
                "metadata.ownerReferences",
                controllers,
                "Only one reference can have Controller set to true",
            )
        )
    return causes


def _validate_builtin(kind: str, body: Obj, old: Obj | None) -> list[Cause]:
    if kind == "Pod":
        return _validate_pod(body)
    if kind == "Event" and not isinstance(body.get("involvedObject"), dict):
        return [_required("involvedObject")]
    if kind == "Service":
        return _validate_service(body)
    if kind == "ControllerRevision" and body.get("data") is None:
        return [_required("data", "Required value: data is mandatory")]
    return []


def _validate_pod(body: Obj) -> list[Cause]:
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return [_required("spec")]
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append(_required("spec.containers"))
        containers = []
    seen: set[str] = set()
    init = spec.get("initContainers") or []
    if not isinstance(init, list):
        causes.append(_bad_value("spec.initContainers", init, "must be a list"))
        init = []
    for field, items in (("spec.initContainers", init), ("spec.containers", containers)):
        for i, container in enumerate(items):
            path = f"{field}[{i}]"
            if not isinstance(container, dict):
                causes.append(_bad_value(path, container, "must be an object"))
                continue
            name = container.get("name")
            if not isinstance(name, str) or not name:
                causes.append(_required(f"{path}.name"))
            elif not _DNS_LABEL.match(name) or len(name) > 63:
                causes.append(_bad_value(f"{path}.name", name, _LABEL_MESSAGE))
            elif name in seen:
                causes.append(
                    Cause(f"{path}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate")
                )
            else:
                seen.add(name)
            image = container.get("image")
            if not isinstance(image, str) or not image.strip():
                causes.append(_required(f"{path}.image"))
            for j, port in enumerate(container.get("ports") or ()):
                number = port.get("containerPort") if isinstance(port, dict) else None
                if not isinstance(number, int) or not 0 < number < 65536:
                    causes.append(
                        _bad_value(
                            f"{path}.ports[{j}].containerPort",
                            number,
                            "must be between 1 and 65535, inclusive",
                        )
                    )
    policy = spec.get("restartPolicy")
    if policy not in ("Always", "OnFailure", "Never"):
        causes.append(
            Cause(
                "spec.restartPolicy",
                f'Unsupported value: "{policy}": supported values: "Always", "OnFailure", "Never"',
                "FieldValueNotSupported",
            )
        )
    return causes


def _validate_service(body: Obj) -> list[Cause]:
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return [_required("spec")]
    causes: list[Cause] = []
    ports = spec.get("ports") or []
    if not isinstance(ports, list):
        return [_bad_value("spec.ports", ports, "must be a list")]
    for i, port in enumerate(ports):
        number = port.get("port") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            causes.append(
                _bad_value(
                    f"spec.ports[{i}].port", number, "must be between 1 and 65535, inclusive"
                )
            )
    return causes


def _validate_immutable(rt: ResourceType, body: Obj, old: Obj) -> list[Cause]:
    causes: list[Cause] = []
    old_finalizers = set(old["metadata"].get("finalizers") or ())
    if old["metadata"].get("deletionTimestamp"):
        added = [f for f in body["metadata"].get("finalizers") or () if f not in old_finalizers]
        if added:
            causes.append(
                Cause(
                    "metadata.finalizers",
                    f"Forbidden: no new finalizers can be added if the object is "
                    f"being deleted, found new finalizers {json.dumps(added)}",
                    "FieldValueForbidden",
                )
            )
    if rt.group == "" and rt.kind == "Pod" and _frozen_pod_spec(body) != _frozen_pod_spec(old):
        causes.append(Cause("spec", f"Forbidden: {_POD_UPDATE_MESSAGE}", "FieldValueForbidden"))
    if (
        rt.group == "apps"
        and rt.kind == "ControllerRevision"
        and body.get("data") != old.get("data")
    ):
        causes.append(_bad_value("data", body.get("data"), "field is immutable"))
    if rt.group == "" and rt.kind == "Service":
        before = old.get("spec", {}).get("clusterIP")
        after = (body.get("spec") or {}).get("clusterIP")
        if before and after != before:
            causes.append(_bad_value("spec.clusterIPs[0]", after, "field is immutable"))
    return causes


def _frozen_pod_spec(pod: Obj) -> Obj:
    """The part of a pod spec no update may change."""
    spec = {
        k: v
        for k, v in (pod.get("spec") or {}).items()
        if k
        not in (
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
            "schedulingGates",
        )
    }
    for field in ("containers", "initContainers"):
        if isinstance(spec.get(field), list):
            spec[field] = [
                {k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c
                for c in spec[field]
            ]
    return spec


_DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def _tolerates(tolerations: list[Any], key: str) -> bool:
    for toleration in tolerations:
        if not isinstance(toleration, dict) or toleration.get("effect") not in (
            None,
            "",
            "NoExecute",
        ):
            continue
        if toleration.get("key") == key or (
            not toleration.get("key") and toleration.get("operator") == "Exists"
        ):
            return True
    return False


def _is_default_service_account(obj: Obj) -> bool:
    return (obj.get("apiVersion"), obj.get("kind"), obj["metadata"]["name"]) == (
        "v1",
        "ServiceAccount",
        DEFAULT_SERVICE_ACCOUNT,
    )


def _default_pod(body: Obj, *, creating: bool) -> None:
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or ():
            if not isinstance(container, dict):
                continue
            image = container.get("image")
            if isinstance(image, str):
                tag = image.rsplit("/", 1)[-1]
                pinned = (":" in tag and not tag.endswith(":latest")) or "@" in tag
                container.setdefault("imagePullPolicy", "IfNotPresent" if pinned else "Always")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            for port in container.get("ports") or ():
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
    if creating:
        tolerations = spec.get("tolerations")
        if not isinstance(tolerations, list):
            tolerations = []
        for key in _DEFAULT_TOLERATIONS:
            if not _tolerates(tolerations, key):
                tolerations.append(
                    {
                        "key": key,
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": 300,
                    }
                )
        spec["tolerations"] = tolerations
        body["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _qos_class(spec: Obj) -> str:
    resources = [
        c.get("resources") or {} for c in spec.get("containers") or () if isinstance(c, dict)
    ]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k)
        and (r.get("requests") or r.get("limits") or {}).get(k) == (r.get("limits") or {}).get(k)
        for r in resources
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _default_crd(crd: Obj) -> None:
    """kube-apiserver's CRD defaults: singular, listKind, conversion strategy None."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict) and isinstance(names.get("kind"), str) and names["kind"]:
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", f"{names['kind']}List")
    spec.setdefault("conversion", {"strategy": "None"})


def _validate_crd_basics(crd: Obj) -> list[Cause]:
    """What the store itself needs from a CRD before `validate_crd` checks the schemas."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [_required("spec")]
    causes: list[Cause] = []
    group = spec.get("group")
    if not isinstance(group, str) or not group:
        causes.append(_required("spec.group"))
    names = spec.get("names")
    if not isinstance(names, dict):
        causes.append(_required("spec.names"))
        names = {}
    for field in ("plural", "kind"):
        if not isinstance(names.get(field), str) or not names.get(field):
            causes.append(_required(f"spec.names.{field}"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            Cause(
                "spec.scope",
                f"Unsupported value: {json.dumps(spec.get('scope'))}: "
                'supported values: "Cluster", "Namespaced"',
                "FieldValueNotSupported",
            )
        )
    versions = spec.get("versions")
    if (
        not isinstance(versions, list)
        or not versions
        or not all(
            isinstance(v, dict) and isinstance(v.get("name"), str) and v["name"] for v in versions
        )
    ):
        causes.append(
            _required(
                "spec.versions", "Required value: must have at least one version, each with a name"
            )
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            _bad_value(
                "spec.versions",
                [v["name"] for v in versions],
                "must have exactly one version marked as storage version",
            )
        )
    if not causes:
        expected = f"{names['plural']}.{group}"
        if crd["metadata"].get("name") != expected:
            causes.append(
                _bad_value(
                    "metadata.name",
                    crd["metadata"].get("name"),
                    'must be spec.names.plural+"."+spec.group',
                )
            )
    return causes
