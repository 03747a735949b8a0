"""The HTTP face of the sandbox: an aiohttp application speaking the Kubernetes REST API.

Routing, request parsing, content negotiation (JSON, Table, PartialObjectMetadata), watch
streaming, Status errors, API fault injection and request counters live here; object semantics
(resourceVersion, selectors, patches, validation, finalizers, GC) live in the Store.

Behaviour worth knowing (as kube-apiserver unless stated):
- Request bodies may be JSON or YAML (`application/yaml`); create and replace also take
  `application/vnd.kubernetes.protobuf` for the kinds kubectl's generators send that way (see
  `protobuf`); anything else is 415. Bodies above `MAX_BODY_BYTES` are 413.
  `fieldValidation=Strict` rejects unknown fields of custom objects with a 400 (as
  kube-apiserver does); `fieldManager` matters to server-side apply only; other query
  parameters are ignored.
- Server-side apply (`application/apply-patch+yaml`, what `kubectl apply --server-side` and
  Helm 4 send): creates or merges, with field managers and conflicts, the subset described in
  `ecs_sandbox.apply` (lists are atomic; only applying managers own fields). CBOR is 415.
- `dryRun=All` is honoured on create; on other writes it is refused (400) rather than applied.
- A watch whose resourceVersion is too old gets HTTP 200 and one `ERROR` event carrying a 410
  `Expired` Status, then the stream closes. Bookmarks carry the resourceVersion of the last
  event the watch delivered.
- Injected faults (`Faults`) hit only resource requests (never discovery, health or the
  `/sandbox/*` debug endpoints) and happen before the request touches the store, except a
  lost create response: the object is created, then the client gets 504 Timeout, as when
  kube-apiserver commits a write but its answer never arrives. By default they are what real
  API servers answer (500, 503, 429 with Retry-After); a 409 or 422 in `codes` hits writes
  only, never a read (no real server answers a GET, LIST or WATCH with a conflict).
- A body nested deeper than `MAX_BODY_DEPTH` levels, or with an integer outside int64, is
  refused with 400 (kube-apiserver cannot decode either), never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any

import yaml
from aiohttp import web

from ecs_sandbox import openapi, protobuf, tables
from ecs_sandbox.errors import ApiError, bad_request
from ecs_sandbox.registry import Registry
from ecs_sandbox.resources import ResourceType
from ecs_sandbox.store import Store, Watch

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY_BYTES = 3 * 1024 * 1024  # etcd's ~1.5 MiB object limit plus a margin for the envelope
# Deeper than any real object, and shallow enough for every recursive step behind (validation,
# copies, CEL) to stay clear of Python's recursion limit. kube-apiserver decodes up to 10,000
# levels: between the two the sandbox refuses (400) what a real server stores.
MAX_BODY_DEPTH = 300
INT64 = range(-(2**63), 2**63)
VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
# Without `timeoutSeconds` kube-apiserver closes a watch after 30 to 60 minutes.
DEFAULT_WATCH_TIMEOUT = 1800.0
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH)
APPLY_YAML = "application/apply-patch+yaml"
APPLY_PATCH_TYPES = (APPLY_YAML, "application/apply-patch+cbor")
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
VERBS = WRITE_VERBS | {"get", "list", "watch", "binding", "eviction"}
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
FAULT_CODES = (500, 503, 429)  # what real API servers answer under load or in trouble
WRITE_ONLY_FAULT_CODES = frozenset({409, 422})  # conflicts and invalid bodies: writes only


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(obj), status=status, content_type="application/json", headers=headers
    )


def status_response(error: ApiError) -> web.Response:
    headers = None
    if error.retry_after_seconds is not None:
        headers = {"Retry-After": str(error.retry_after_seconds)}
    return json_response(error.status(), error.code, headers)


def success_status(code: int, details: Obj | None = None) -> Obj:
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": code,
    }
    if details:
        body["details"] = details
    return body


# --- faults and counters --------------------------------------------------------------------


@dataclass
class Faults:
    """API faults for resilience tests; change the fields at run time, they apply at once.

    error_rate: share of resource requests that fail, with a status from `codes` (409 and 422
      only ever fail writes).
    codes: the statuses injected; 429 carries Retry-After.
    verbs: the verbs `error_rate` applies to (None: every verb but watch; a watch fails only
      when named here, with the status as the response to its request).
    resources: the resources (`plural` or `plural/subresource`) it applies to (None: all).
    lost_create_rate: share of creates committed whose response is lost: the client gets 504
      Timeout for an object that exists.
    watch_drop_interval: seconds after which every open watch is closed (None: never).
    expire_on_resume: answer every watch that resumes from a resourceVersion with 410 Expired.
    expire_rate: share of resumed watches answered 410 Expired (a resume falling out of the
      server's window).
    seed: seeds the RNG choosing which requests fail (reseeded by `reseed()`).
    """

    error_rate: float = 0.0
    codes: tuple[int, ...] = FAULT_CODES
    verbs: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    lost_create_rate: float = 0.0
    watch_drop_interval: float | None = None
    expire_on_resume: bool = False
    expire_rate: float = 0.0
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    @classmethod
    def realistic(cls, error_rate: float = 0.05, seed: int | None = None) -> Faults:
        """The mix a busy production API server gives: 500, 503 and 429 (with Retry-After) on
        `error_rate` of requests, watches dropped every few seconds, and one resume in five
        past the server's window (410 Expired, so clients relist)."""
        return cls(error_rate=error_rate, watch_drop_interval=3.0, expire_rate=0.2, seed=seed)

    def __post_init__(self) -> None:
        self.validate()
        self.reseed()

    def reseed(self) -> None:
        self.rng.seed(self.seed)

    def validate(self) -> None:
        for name in ("error_rate", "lost_create_rate", "expire_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {getattr(self, name)!r}")
        if not self.codes or any(code not in REASONS for code in self.codes):
            known = ", ".join(str(code) for code in sorted(REASONS))
            raise ValueError(f"codes must be a non-empty subset of {known}, not {self.codes!r}")
        if self.verbs is not None and not set(self.verbs) <= VERBS:
            raise ValueError(f"verbs must be among {sorted(VERBS)}, not {list(self.verbs)!r}")
        if self.watch_drop_interval is not None and self.watch_drop_interval <= 0:
            raise ValueError("watch_drop_interval must be positive seconds or None")

    def to_dict(self) -> Obj:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rng"}
        for name in ("codes", "verbs", "resources"):
            data[name] = None if data[name] is None else list(data[name])
        return data

    def update(self, changes: Obj) -> None:
        """Apply a partial update (the `/sandbox/faults` PUT body); all or nothing."""
        allowed = {f.name for f in fields(self)} - {"rng"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValueError(f"unknown fault fields {unknown}; known: {sorted(allowed)}")
        merged = {**self.to_dict(), **changes}
        try:
            candidate = Faults(
                error_rate=float(merged["error_rate"]),
                codes=tuple(int(code) for code in merged["codes"]),
                verbs=_names(merged["verbs"]),
                resources=_names(merged["resources"]),
                lost_create_rate=float(merged["lost_create_rate"]),
                watch_drop_interval=(
                    None
                    if merged["watch_drop_interval"] is None
                    else float(merged["watch_drop_interval"])
                ),
                expire_on_resume=bool(merged["expire_on_resume"]),
                expire_rate=float(merged["expire_rate"]),
                seed=None if merged["seed"] is None else int(merged["seed"]),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid faults: {exc}") from exc
        for name in allowed:
            setattr(self, name, getattr(candidate, name))
        if "seed" in changes:
            self.reseed()

    def injected_error(self, verb: str, resource: str) -> ApiError | None:
        targeted = verb in self.verbs if self.verbs is not None else verb != "watch"
        if not targeted or (self.resources is not None and resource not in self.resources):
            return None
        if self.error_rate <= 0 or self.rng.random() >= self.error_rate:
            return None
        codes = [c for c in self.codes if verb in WRITE_VERBS or c not in WRITE_ONLY_FAULT_CODES]
        if not codes:
            return None
        code = self.rng.choice(codes)
        message = f"injected fault: {verb} {resource} failed with {code}"
        if code == 429:
            return ApiError(429, "TooManyRequests", message, retry_after_seconds=1)
        return ApiError(code, REASONS[code], message)

    def create_response_lost(self, resource: str) -> ApiError | None:
        """The 504 a client gets instead of the response of a create that was committed."""
        if self.lost_create_rate <= 0 or self.rng.random() >= self.lost_create_rate:
            return None
        return ApiError(
            504,
            "Timeout",
            f"injected fault: the response to create {resource} was lost (the object was created)",
        )

    def expires(self, resuming: bool) -> bool:
        """Whether this watch request, resumed or not, is answered 410 Expired."""
        if not resuming:
            return False
        return self.expire_on_resume or (
            self.expire_rate > 0 and self.rng.random() < self.expire_rate
        )


def _names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"expected a list of names or null, not {value!r}")
    return tuple(value)


class RequestCounters:
    """Requests served, per (verb, resource); `resource` is `plural` or `plural/subresource`."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def count(self, verb: str, resource: str) -> None:
        self.counts[(verb, resource)] += 1

    def get(self, verb: str, resource: str) -> int:
        return self.counts[(verb, resource)]

    @property
    def writes(self) -> int:
        return sum(n for (verb, _), n in self.counts.items() if verb in WRITE_VERBS)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def reset(self) -> None:
        self.counts.clear()

    def to_dict(self) -> Obj:
        by_verb: dict[str, dict[str, int]] = {}
        for (verb, resource), n in sorted(self.counts.items()):
            by_verb.setdefault(verb, {})[resource] = n
        return {"total": self.total, "writes": self.writes, "counts": by_verb}


# --- request parsing ------------------------------------------------------------------------


@dataclass
class Target:
    """What a resource URL addresses."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool  # the legacy `/api/v1/watch/...` form

    @property
    def resource(self) -> str:
        return f"{self.rt.plural}/{self.subresource}" if self.subresource else self.rt.plural


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    mime, *params = (part.strip() for part in value.split(";"))
    parsed = {}
    for param in params:
        key, _, val = param.partition("=")
        parsed[key.strip()] = val.strip()
    return mime.lower(), parsed


def negotiate(accept: str) -> str:
    """The representation to send: `json`, `table` or `partial` (PartialObjectMetadata)."""
    if not accept.strip():
        return "json"
    for item in accept.split(","):
        mime, params = parse_media_type(item)
        if mime not in ("application/json", "application/*", "*/*"):
            continue
        as_kind = params.get("as")
        if as_kind is None:
            return "json"
        if params.get("g") != "meta.k8s.io" or params.get("v") not in ("v1", "v1beta1"):
            continue
        if as_kind == "Table" and params.get("v") == "v1":
            return "table"
        if as_kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return "partial"
    raise ApiError(
        406,
        "NotAcceptable",
        f"only application/json (optionally as=Table;v=v1;g=meta.k8s.io) is served, not {accept!r}",
    )


def parse_body(raw: bytes, content_type: str) -> Any:
    """A request body as JSON or YAML; 400 when malformed, too deep or with an integer beyond
    int64, 415 for other media types."""
    mime, _ = parse_media_type(content_type or "application/json")
    try:
        if mime in ("application/json", *PATCH_TYPES):
            return _decodable(json.loads(raw))
        if mime in ("application/yaml", "application/x-yaml", "text/yaml"):
            return _decodable(yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except RecursionError as exc:
        raise _too_deep() from exc
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"the request body is not valid {mime}: {exc}") from exc
    raise ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f'application/json, application/yaml, not "{mime}"',
    )


def _decodable(body: Any) -> Any:
    """`body`, once sure no level is deeper than MAX_BODY_DEPTH and every integer fits int64
    (what kube-apiserver's decoder accepts); walked without recursion. Each entry links to its
    parent's, so a path is only spelled out for the error."""
    pending: list[tuple[Any, int, Any]] = [(body, 0, None)]
    while pending:
        value, depth, link = pending.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_BODY_DEPTH:
                raise _too_deep()
            items = value.items() if isinstance(value, dict) else enumerate(value)
            pending.extend((item, depth + 1, (key, link)) for key, item in items)
        elif isinstance(value, int) and not isinstance(value, bool) and value not in INT64:
            path: list[str] = []
            while link is not None:
                key, link = link
                path.append(str(key))
            where = ".".join(reversed(path)) or "the body"
            raise bad_request(
                f"json: cannot unmarshal number {value} into int64 (at {where}): "
                "integers must fit in 64 bits"
            )
    return body


def _too_deep() -> ApiError:
    return bad_request(
        f"the request body nests objects or arrays more than {MAX_BODY_DEPTH} levels deep"
    )


def query_flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"query parameter {name} must be an integer, not {raw!r}") from None


def delete_options(request: web.Request, body: Any) -> Obj | None:
    """DeleteOptions from the body merged with the query parameters (the query wins); the
    store validates them."""
    if body is not None and not isinstance(body, dict):
        raise bad_request("the body of a delete must be a DeleteOptions object")
    options: Obj = dict(body or {})
    grace = query_int(request, "gracePeriodSeconds")
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    if "propagationPolicy" in request.query:
        options["propagationPolicy"] = request.query["propagationPolicy"]
    if "orphanDependents" in request.query:
        options["orphanDependents"] = query_flag(request, "orphanDependents")
    if options.get("dryRun"):
        raise bad_request("dryRun is supported on create only by the sandbox")
    return options


# --- the application ------------------------------------------------------------------------


class ApiServer:
    """Request handlers bound to one Store and Registry."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        faults: Faults | None = None,
        counters: RequestCounters | None = None,
        bookmark_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.faults = faults or Faults()
        self.counters = counters or RequestCounters()
        self.bookmark_interval = bookmark_interval
        self.watch_streams: set[asyncio.Task[Any]] = set()
        self._openapi_cache: tuple[Any, dict[str, bytes]] | None = None

    def application(self) -> web.Application:
        # The body limit is enforced by `read_body` with a proper Status, so aiohttp's own
        # limit sits above it.
        app = web.Application(
            middlewares=[self.error_middleware], client_max_size=MAX_BODY_BYTES + 1024
        )
        router = app.router
        router.add_get("/version", self.version)
        router.add_get("/version/", self.version)
        for probe in ("/healthz", "/readyz", "/livez"):
            router.add_get(probe, self.health)
        router.add_get("/api", self.core_versions)
        router.add_get("/api/", self.core_versions)
        router.add_get("/apis", self.group_list)
        router.add_get("/apis/", self.group_list)
        router.add_get("/openapi/v3", self.openapi_index)
        router.add_get("/openapi/v3/{path:.+}", self.openapi_document)
        router.add_get("/openapi/v2", self.openapi_v2)
        router.add_route("GET", "/sandbox/faults", self.get_faults)
        router.add_route("PUT", "/sandbox/faults", self.put_faults)
        router.add_route("GET", "/sandbox/counters", self.get_counters)
        router.add_route("*", "/api/{path:.*}", self.resource)
        router.add_route("*", "/apis/{path:.*}", self.resource)
        return app

    # -- middleware ----------------------------------------------------------------------

    @web.middleware
    async def error_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return status_response(error)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            reason = REASONS.get(exc.status, exc.reason.replace(" ", ""))
            message = exc.text or exc.reason
            if exc.status == 404:
                message = "the server could not find the requested resource"
            return status_response(ApiError(exc.status, reason, message))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:
            logger.exception("internal error serving %s %s", request.method, request.path_qs)
            return status_response(
                ApiError(500, "InternalError", f"Internal error occurred: {exc!r}")
            )

    # -- discovery -----------------------------------------------------------------------

    async def version(self, _request: web.Request) -> web.Response:
        return json_response(VERSION_INFO)

    async def health(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def core_versions(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}
                ],
            }
        )

    def _group_entry(self, group: str, versions: list[str]) -> Obj:
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": listed, "preferredVersion": listed[0]}

    async def group_list(self, _request: web.Request) -> web.Response:
        groups = [
            self._group_entry(group, versions)
            for group, versions in sorted(self.registry.groups().items())
            if group
        ]
        return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    def _group_document(self, group: str) -> web.Response:
        versions = self.registry.groups().get(group)
        if not versions:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return json_response(
            {"kind": "APIGroup", "apiVersion": "v1", **self._group_entry(group, versions)}
        )

    def _resource_list(self, group: str, version: str) -> web.Response:
        types = [rt for rt in self.registry.all() if (rt.group, rt.version) == (group, version)]
        if not types:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        resources: list[Obj] = []
        for rt in sorted(types, key=lambda rt: rt.plural):
            resources.extend(discovery_entries(rt))
        group_version = f"{group}/{version}" if group else version
        return json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version,
                "resources": resources,
            }
        )

    # -- OpenAPI -------------------------------------------------------------------------

    def _openapi_documents(self) -> dict[str, bytes]:
        """Every group-version's OpenAPI v3 document, serialized; rebuilt when CRDs change."""
        crd_type = self.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        crds = self.store.list(crd_type, None)["items"]
        key = tuple((crd["metadata"]["name"], crd["metadata"]["resourceVersion"]) for crd in crds)
        if self._openapi_cache is not None and self._openapi_cache[0] == key:
            return self._openapi_cache[1]
        types = self.registry.all()
        documents = {
            f"{group}/{version}" if group else version: openapi.openapi_v3_document(
                f"{group}/{version}" if group else version, types, crds
            )
            for group, versions in self.registry.groups().items()
            for version in versions
        }
        index = openapi.openapi_v3_index(documents)
        serialized = {gv: dumps(document) for gv, document in documents.items()}
        serialized[""] = dumps(index)
        self._openapi_cache = (key, serialized)
        return serialized

    async def openapi_index(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._openapi_documents()[""], content_type="application/json")

    async def openapi_document(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        group_version = path.removeprefix("apis/") if path.startswith("apis/") else path
        if path.startswith("api/"):
            group_version = path.removeprefix("api/")
        document = self._openapi_documents().get(group_version) if group_version else None
        if document is None or not path.startswith(("api/", "apis/")):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        etag = f'"{hash_bytes(document)}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=document,
            content_type="application/json",
            headers={"ETag": etag, "Cache-Control": "public, immutable"},
        )

    async def openapi_v2(self, _request: web.Request) -> web.Response:
        raise ApiError(404, "NotFound", "the sandbox serves OpenAPI v3 only (/openapi/v3)")

    # -- debug endpoints -----------------------------------------------------------------

    async def get_faults(self, _request: web.Request) -> web.Response:
        return json_response(self.faults.to_dict())

    async def put_faults(self, request: web.Request) -> web.Response:
        changes = parse_body(await read_body(request), request.headers.get("Content-Type", ""))
        if not isinstance(changes, dict):
            raise bad_request("the faults body must be a JSON object")
        try:
            self.faults.update(changes)
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        return json_response(self.faults.to_dict())

    async def get_counters(self, _request: web.Request) -> web.Response:
        return json_response(self.counters.to_dict())

    # -- resources -----------------------------------------------------------------------

    def _parse_target(self, parts: list[str]) -> Target | web.Response:
        """Resolve `/api/...` or `/apis/...` (as split parts); discovery answers come back whole."""
        if parts[0] == "api":
            if len(parts) < 2 or parts[1] != "v1":
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            group, version, rest = "", "v1", parts[2:]
        else:
            if len(parts) == 2:
                return self._group_document(parts[1])
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            return self._resource_list(group, version)
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        namespace = None
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and not (group == "" and rest[2] in ("status", "finalize"))
        ):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rt = self.registry.get(group, version, rest[0])
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if (namespace is not None and not rt.namespaced) or (
            rt.namespaced and namespace is None and name is not None
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if subresource is not None and subresource not in rt.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return Target(rt, namespace, name, subresource, watch_path)

    async def resource(self, request: web.Request) -> web.StreamResponse:
        parts = [part for part in request.path.split("/") if part]
        if parts[0] == "apis" and len(parts) > 1 and parts[1] not in self.registry.groups():
            # No API serves the group: kube-apiserver's handler chain falls through to its
            # mux, which answers in plain text rather than with a Status.
            return web.Response(status=404, text="404 page not found\n")
        target = self._parse_target(parts)
        if isinstance(target, web.StreamResponse):
            if request.method != "GET":
                raise _method_not_allowed(request.method, request.path)
            return target
        watch = target.watch_path or query_flag(request, "watch")
        verb = _verb(request.method, target, watch)
        self.counters.count(verb, target.resource)
        fault = self.faults.injected_error(verb, target.resource)
        if fault is not None:
            raise fault
        if verb == "watch":
            return await self.watch(request, target)
        response = await self._dispatch(request, target, verb)
        if verb == "create" and response.status == 201 and "dryRun" not in request.query:
            lost = self.faults.create_response_lost(target.resource)
            if lost is not None:
                raise lost
        return response

    async def _dispatch(self, request: web.Request, target: Target, verb: str) -> web.Response:
        rt, namespace, name = target.rt, target.namespace, target.name
        sub = target.subresource
        if verb == "list":
            representation = negotiate(request.headers.get("Accept", ""))
            return self.render_list(request, rt, self._list(request, target), representation)
        if verb == "get":
            representation = negotiate(request.headers.get("Accept", ""))
            assert name is not None
            if sub == "scale":
                return json_response(self.store.get_scale(rt, namespace, name))
            return self.render_object(
                request, rt, self.store.get(rt, namespace, name), representation
            )
        if verb == "create":
            return await self.create(request, target)
        if verb == "deletecollection":
            body = await self._optional_body(request)
            return json_response(
                self.store.delete_collection(
                    rt,
                    namespace,
                    delete_options(request, body),
                    label_selector=request.query.get("labelSelector", ""),
                    field_selector=request.query.get("fieldSelector", ""),
                )
            )
        assert name is not None
        if verb == "delete":
            body = await self._optional_body(request)
            result = self.store.delete(rt, namespace, name, delete_options(request, body))
            pending = result.get("kind") != "Status" and bool(
                result.get("metadata", {}).get("deletionTimestamp")
            )
            return json_response(result, 202 if pending else 200)
        _refuse_dry_run(request)
        if verb == "update":
            return json_response(await self.update(request, target))
        if verb == "patch":
            return await self.patch(request, target)
        if sub == "binding":
            return await self.bind(request, target)
        return await self.evict(request, target)

    def _list(self, request: web.Request, target: Target) -> Obj:
        return self.store.list(
            target.rt,
            target.namespace,
            label_selector=request.query.get("labelSelector", ""),
            field_selector=request.query.get("fieldSelector", ""),
            limit=query_int(request, "limit") or None,
            continue_token=request.query.get("continue") or None,
        )

    # -- rendering -----------------------------------------------------------------------

    def render_list(
        self, request: web.Request, rt: ResourceType, listed: Obj, representation: str
    ) -> web.Response:
        if representation == "table":
            return json_response(
                tables.build_table(
                    rt,
                    listed["items"],
                    list_metadata=listed.get("metadata"),
                    include_object=_include_object(request),
                )
            )
        if representation == "partial":
            return json_response(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": listed.get("metadata", {}),
                    "items": [_partial(item) for item in listed["items"]],
                }
            )
        return json_response(listed)

    def render_object(
        self,
        request: web.Request,
        rt: ResourceType,
        obj: Obj,
        representation: str,
        status: int = 200,
    ) -> web.Response:
        if representation == "table":
            table = tables.build_table(rt, [obj], include_object=_include_object(request))
            return json_response(table, status)
        if representation == "partial":
            return json_response(_partial(obj), status)
        return json_response(obj, status)

    # -- writes --------------------------------------------------------------------------

    async def _optional_body(self, request: web.Request) -> Any:
        raw = await read_body(request)
        if not raw.strip():
            return None
        content_type = request.headers.get("Content-Type", "")
        if parse_media_type(content_type)[0] == protobuf.MEDIA_TYPE:
            return protobuf.decode_object(raw)
        return parse_body(raw, content_type)

    async def _object_body(self, request: web.Request) -> Obj:
        """The request body as an object; the store checks kind, apiVersion, name, namespace."""
        raw = await read_body(request)
        if not raw.strip():
            raise bad_request("the request body is empty; expected a JSON object")
        content_type = request.headers.get("Content-Type", "")
        if parse_media_type(content_type)[0] == protobuf.MEDIA_TYPE:
            return protobuf.decode_object(raw)
        body = parse_body(raw, content_type)
        if not isinstance(body, dict):
            raise bad_request(f"the request body must be an object, not {type(body).__name__}")
        return body

    async def create(self, request: web.Request, target: Target) -> web.Response:
        body = await self._object_body(request)
        dry_run = request.query.getall("dryRun", [])
        if any(value != "All" for value in dry_run):
            raise bad_request(f'unsupported dryRun value {dry_run}; only "All" is accepted')
        created = self.store.create(
            target.rt, target.namespace, body, dry_run=bool(dry_run), strict=_strict(request)
        )
        representation = negotiate(request.headers.get("Accept", ""))
        return self.render_object(request, target.rt, created, representation, 201)

    async def update(self, request: web.Request, target: Target) -> Obj:
        assert target.name is not None
        body = await self._object_body(request)
        if isinstance(body.get("metadata"), dict):
            body["metadata"].setdefault("name", target.name)
        return self.store.replace(
            target.rt,
            target.namespace,
            target.name,
            body,
            subresource=target.subresource,
            strict=_strict(request),
        )

    async def patch(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        content_type = request.headers.get("Content-Type", "")
        mime, _ = parse_media_type(content_type)
        if mime == APPLY_YAML:
            return await self.server_side_apply(request, target)
        if mime in APPLY_PATCH_TYPES:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the sandbox serves server-side apply as {APPLY_YAML} (YAML or JSON), "
                f'not "{mime}"',
            )
        if mime not in PATCH_TYPES:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f'include: {", ".join(PATCH_TYPES)}, not "{mime}"',
            )
        raw = await read_body(request)
        if not raw.strip():
            raise bad_request("the patch body is empty")
        patch = parse_body(raw, mime)
        patched = self.store.patch(
            target.rt,
            target.namespace,
            target.name,
            patch,
            mime,
            subresource=target.subresource,
            strict=_strict(request),
        )
        return json_response(patched)

    async def server_side_apply(self, request: web.Request, target: Target) -> web.Response:
        """`application/apply-patch+yaml` (see `ecs_sandbox.apply`): 201 when it created the
        object, 200 otherwise."""
        assert target.name is not None
        raw = await read_body(request)
        if not raw.strip():
            raise bad_request("the apply configuration is empty")
        config = parse_body(raw, "application/yaml")
        if not isinstance(config, dict):
            raise bad_request(
                f"the apply configuration must be an object, not {type(config).__name__}"
            )
        force = request.query.get("force", "false")
        if force not in ("true", "false", "1", "0", "True", "False"):
            raise bad_request(f'invalid value for "force": {force!r} (true or false)')
        obj, created = self.store.apply(
            target.rt,
            target.namespace,
            target.name,
            config,
            manager=request.query.get("fieldManager", ""),
            force=force in ("true", "1", "True"),
            subresource=target.subresource,
            strict=_strict(request),
        )
        return json_response(obj, 201 if created else 200)

    async def bind(self, request: web.Request, target: Target) -> web.Response:
        """`pods/binding`: assign a node to an unscheduled pod (the scheduler's path)."""
        assert target.name is not None and target.namespace is not None
        body = await self._object_body(request)
        self.store.bind(target.namespace, target.name, body)
        return json_response(success_status(201), 201)

    async def evict(self, request: web.Request, target: Target) -> web.Response:
        """`pods/eviction`: delete the pod (the sandbox has no PodDisruptionBudgets)."""
        assert target.name is not None and target.namespace is not None
        body = await self._object_body(request)
        self.store.evict(target.namespace, target.name, body)
        return json_response(success_status(201), 201)

    # -- watch ---------------------------------------------------------------------------

    async def watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        representation = negotiate(request.headers.get("Accept", ""))
        field_selector = request.query.get("fieldSelector", "")
        if target.name is not None:
            by_name = f"metadata.name={target.name}"
            field_selector = f"{field_selector},{by_name}" if field_selector else by_name
        resource_version = request.query.get("resourceVersion") or None
        timeout = query_int(request, "timeoutSeconds")
        bookmarks = query_flag(request, "allowWatchBookmarks")
        resuming = resource_version not in (None, "0")
        try:
            if self.faults.expires(resuming):
                raise ApiError(
                    410, "Expired", f"too old resource version: {resource_version} (injected fault)"
                )
            stream = self.store.watch(
                target.rt,
                target.namespace,
                resource_version=resource_version,
                label_selector=request.query.get("labelSelector", ""),
                field_selector=field_selector,
            )
        except ApiError as error:
            if error.code not in (410, 504):
                raise
            response = await _start_stream(request)
            await response.write(dumps({"type": "ERROR", "object": error.status()}) + b"\n")
            await response.write_eof()
            return response
        session = WatchSession(
            request,
            target.rt,
            stream,
            store=self.store,
            faults=self.faults,
            start_rv=str(resource_version if resuming else self.store.resource_version),
            representation=representation,
            bookmark_interval=self.bookmark_interval if bookmarks else None,
            timeout=float(timeout) if timeout and timeout > 0 else DEFAULT_WATCH_TIMEOUT,
        )
        task = asyncio.current_task()
        if task is not None:
            self.watch_streams.add(task)
        try:
            return await session.run()
        finally:
            if task is not None:
                self.watch_streams.discard(task)


class WatchSession:
    """One open watch: events, bookmarks and the deadline, written as JSON lines."""

    # The longest a session sleeps without re-reading `Faults` (watch drops apply at run time).
    FAULT_POLL = 0.5

    def __init__(
        self,
        request: web.Request,
        rt: ResourceType,
        stream: Watch,
        *,
        store: Store,
        faults: Faults,
        start_rv: str,
        representation: str,
        bookmark_interval: float | None,
        timeout: float,
    ) -> None:
        self.request = request
        self.rt = rt
        self.stream = stream
        self.store = store
        self.faults = faults
        self.last_rv = start_rv
        self.representation = representation
        self.include_object = _include_object(request)
        self.bookmark_interval = bookmark_interval
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.queue: asyncio.Queue[Obj | None] = asyncio.Queue()

    async def _pump(self) -> None:
        """Move events from the store's watch into a queue, so waiting on it can time out
        without cancelling the store's iterator mid-step."""
        try:
            async for event in self.stream:
                self.queue.put_nowait(event)
        finally:
            self.queue.put_nowait(None)

    def _encode(self, event: Obj) -> bytes:
        obj = event["object"]
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv:
            self.last_rv = rv
        if self.representation == "table":
            table = tables.build_table(self.rt, [obj], include_object=self.include_object)
            event = {"type": event["type"], "object": table}
        elif self.representation == "partial":
            event = {"type": event["type"], "object": _partial(obj)}
        return dumps(event) + b"\n"

    def _bookmark(self) -> bytes:
        # With nothing queued anywhere this watch has seen every write up to the store's
        # current resourceVersion, so the bookmark may advance past other kinds' writes.
        if self.queue.empty() and self.stream.pending == 0:
            self.last_rv = self.store.resource_version
        obj = {
            "kind": self.rt.kind,
            "apiVersion": self.rt.api_version,
            "metadata": {"resourceVersion": self.last_rv},
        }
        return dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    def _current_deadline(self) -> float:
        drop = self.faults.watch_drop_interval
        return self.deadline if drop is None else min(self.deadline, self.started + drop)

    async def run(self) -> web.StreamResponse:
        response = await _start_stream(self.request)
        pump = asyncio.create_task(self._pump())
        try:
            await self._serve(response)
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the client went away or the server is stopping
        finally:
            self.stream.close()
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    async def _serve(self, response: web.StreamResponse) -> None:
        interval = self.bookmark_interval
        next_bookmark = time.monotonic() + interval if interval else None
        while True:
            now = time.monotonic()
            deadline = self._current_deadline()
            if now >= deadline:
                return
            wake = min(deadline, now + self.FAULT_POLL)
            if next_bookmark is not None:
                wake = min(wake, next_bookmark)
            try:  # not asyncio.wait_for: on 3.11 it may swallow the server's cancellation
                async with asyncio.timeout(max(wake - now, 0)):
                    event = await self.queue.get()
            except TimeoutError:
                if next_bookmark is not None and time.monotonic() >= next_bookmark:
                    await response.write(self._bookmark())
                    next_bookmark = time.monotonic() + (interval or 0)
                continue
            # Send everything already queued in one write: one syscall per burst.
            chunk = bytearray()
            while event is not None:
                chunk += self._encode(event)
                if self.queue.empty():
                    break
                event = self.queue.get_nowait()
            if chunk:
                await response.write(bytes(chunk))
            if event is None:
                return


# --- helpers --------------------------------------------------------------------------------


def discovery_entries(rt: ResourceType) -> list[Obj]:
    """The APIResourceList entries for one type: the collection and its subresources."""
    entries: list[Obj] = [
        {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": [
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            **({"shortNames": list(rt.short_names)} if rt.short_names else {}),
            **({"categories": list(rt.categories)} if rt.categories else {}),
            "storageVersionHash": hash_bytes(f"{rt.group}/{rt.version}/{rt.kind}".encode())[:12],
        }
    ]
    sub_entries = {
        "status": {"kind": rt.kind, "verbs": ["get", "patch", "update"]},
        "scale": {
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        },
        "binding": {"kind": "Binding", "verbs": ["create"]},
        "eviction": {"group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]},
    }
    for sub in sorted(rt.subresources):
        entries.append(
            {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced}
            | sub_entries[sub]
        )
    return entries


def hash_bytes(data: bytes) -> str:

    return hashlib.sha512(data).hexdigest()[:64].upper()


def _verb(method: str, target: Target, watch: bool) -> str:
    collection = target.name is None
    sub = target.subresource
    if method == "GET":
        if watch:
            return "watch"
        if sub in ("binding", "eviction"):
            raise _method_not_allowed(method, target.resource)
        return "list" if collection else "get"
    if method == "POST":
        if collection:
            return "create"
        if sub in ("binding", "eviction"):
            return sub
    elif method in ("PUT", "PATCH") and not collection and sub not in ("binding", "eviction"):
        return "update" if method == "PUT" else "patch"
    elif method == "DELETE" and sub is None:
        return "deletecollection" if collection else "delete"
    raise _method_not_allowed(method, target.resource)


def _method_not_allowed(method: str, resource: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource ({method} {resource})",
    )


def _refuse_dry_run(request: web.Request) -> None:
    if "dryRun" in request.query:
        raise bad_request("dryRun is supported on create only by the sandbox")


def _include_object(request: web.Request) -> str:
    value = request.query.get("includeObject", "Metadata") or "Metadata"
    if value not in tables.INCLUDE_OBJECT_CHOICES:
        raise bad_request(
            f"includeObject must be one of {', '.join(tables.INCLUDE_OBJECT_CHOICES)}, "
            f"not {value!r}"
        )
    return value


def _partial(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


async def read_body(request: web.Request) -> bytes:
    """The request body, or 413 when it exceeds `MAX_BODY_BYTES`."""
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise _too_large(declared)
    # `read(n)` returns what has arrived so far, so read until EOF, stopping past the limit.
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(MAX_BODY_BYTES + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(size)
    return b"".join(chunks)


def _too_large(size: int) -> ApiError:
    return ApiError(
        413,
        "RequestEntityTooLarge",
        f"the request body is too large: {size} bytes, the limit is {MAX_BODY_BYTES}",
    )


async def _start_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    return response


def make_app(
    store: Store,
    registry: Registry,
    *,
    faults: Faults | None = None,
    counters: RequestCounters | None = None,
    bookmark_interval: float = 1.0,
) -> tuple[web.Application, ApiServer]:
    """The aiohttp application serving `store`, and the handler object behind it."""
    server = ApiServer(
        store, registry, faults=faults, counters=counters, bookmark_interval=bookmark_interval
    )
    return server.application(), server


__all__ = [
    "MAX_BODY_BYTES",
    "ApiServer",
    "Faults",
    "RequestCounters",
    "make_app",
]


def _strict(request: web.Request) -> bool:
    """kubectl sends `fieldValidation=Strict` and then skips its own client-side validation."""
    return request.query.get("fieldValidation") == "Strict"
