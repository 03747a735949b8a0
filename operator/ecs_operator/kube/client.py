"""A small async facade over the `kubernetes` client for the objects the operator touches.

Every call goes through `KubeClient.request`: one place for retries of transient failures
(429, 5xx, connection errors) with capped exponential backoff, or after the server's
Retry-After when it gives one (as client-go does), and for turning error responses into
`KubeError`s with the API's own reason. The synchronous `kubernetes` client
runs in a dedicated thread pool so the Kopf event loop never blocks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import kubernetes.client
import kubernetes.config
import urllib3

from ecs_operator import API_GROUP, API_VERSION

logger = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 10.0  # a server asking for longer is waited this long, then asked again


_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def go_json(body: Any) -> bytes:
    """`body` encoded byte for byte as Go's encoding/json encodes a map: sorted keys, no spaces,
    <, >, & and U+2028/9 escaped. The API server keeps a RawExtension (a ControllerRevision's
    `data`) as the bytes it received, and re-encodes it the Go way when a patch or update
    touches the object; with any other bytes it then sees `data` as changed and refuses the
    write ("field is immutable")."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Outside strings JSON has none of these characters, so translating the whole text only
    # touches string contents.
    return text.translate(_GO_ESCAPES).encode()


@dataclass(frozen=True)
class Resource:
    """A REST collection: `Resource("", "v1", "pods")`, `Resource("ecs.operator.dev", …)`."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name)}"
        if sub:
            base += f"/{sub}"
        return base


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`: changed values, nested
    objects patched in turn, null for every key `new` no longer has. Lists are replaced whole."""
    patch: dict[str, Any] = {key: None for key in old if new.get(key) is None}
    for key, value in new.items():
        before = old.get(key)
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif value != before:
            patch[key] = value
    return patch


PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
EVENTS = Resource("", "v1", "events")
SECRETS = Resource("", "v1", "secrets")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
CONTROLLER_REVISIONS = Resource("apps", "v1", "controllerrevisions")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
LEASES = Resource("coordination.k8s.io", "v1", "leases")
TASK_DEFINITIONS = Resource(API_GROUP, API_VERSION, "taskdefinitions")
TASKS = Resource(API_GROUP, API_VERSION, "tasks")
SERVICES = Resource(API_GROUP, API_VERSION, "services")
LOAD_BALANCERS = Resource(API_GROUP, API_VERSION, "loadbalancers")
KUBERNETES_SERVICES = Resource("", "v1", "services")
ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
HTTP_ROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")


class KubeError(Exception):
    """An API error response: `code` is the HTTP status, `reason` the Status reason."""

    def __init__(
        self, code: int, reason: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after  # seconds, from the response's Retry-After header

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409

    @property
    def outcome_unknown(self) -> bool:
        """A write that failed this way may still have been carried out (the server erred or
        the connection broke after the request went out); a 429 or a 4xx was refused."""
        return self.code >= 500

    @property
    def refused(self) -> bool:
        """Refused for good (bad request, forbidden, invalid): the same request gets the same
        answer until a person changes something, so it is reported, not retried."""
        return self.code in (400, 403, 422)

    @property
    def namespace_gone(self) -> bool:
        """Refused because the object's namespace is being deleted or is gone: whatever was
        being done there has nothing left to do."""
        terminating = self.code == 403 and "being terminated" in self.message
        return terminating or (self.code == 404 and self.message.startswith('namespaces "'))


class KubeClient:
    """Async JSON access to the API; objects in and out are plain dicts."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        threads: int = 16,
        max_attempts: int = 6,
        max_backoff: float = 2.0,
    ) -> None:
        self._api = api_client
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")
        self._max_attempts = max_attempts
        self._max_backoff = max_backoff
        self.writes = 0  # API writes issued, for benchmarks and the "resync writes nothing" check
        # Awaited before every write: the leader's check of its Lease (no write on a stale one).
        self.fence: Callable[[], Awaitable[None]] | None = None

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, *, context: str | None = None, **options: Any
    ) -> KubeClient:
        """The kubeconfig at `path` (or $KUBECONFIG / ~/.kube/config; its current context, or
        `context`), else in-cluster config. `options` go to the constructor."""
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_kube_config(
                config_file=path, context=context, client_configuration=configuration
            )
        except kubernetes.config.ConfigException:
            if path or context:
                raise
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        configuration.connection_pool_maxsize = 32
        return cls(kubernetes.client.ApiClient(configuration), **options)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._api.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """Send one request, retrying transient failures; return the decoded JSON body."""
        url_path = f"{path}?{urlencode(query)}" if query else path
        return await self._retrying(
            method, path, lambda: self._send(method, url_path, body, content_type)
        )

    async def _retrying(self, method: str, path: str, send: Callable[[], Any]) -> Any:
        """`send()` in the pool, again after each transient failure (see the module)."""
        if method != "GET":
            if self.fence is not None:
                await self.fence()
            self.writes += 1
        for attempt in range(1, self._max_attempts + 1):
            try:
                return await asyncio.get_running_loop().run_in_executor(self._pool, send)
            except KubeError as error:
                if error.code not in TRANSIENT_CODES or attempt == self._max_attempts:
                    raise
                reason = f"{error.code} {error.reason}"
                retry_after = error.retry_after
            except (urllib3.exceptions.HTTPError, OSError) as error:
                if attempt == self._max_attempts:
                    raise KubeError(503, "ServiceUnavailable", str(error)) from error
                reason = type(error).__name__
                retry_after = None
            delay = min(self._max_backoff, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
            if retry_after is not None:
                delay = min(MAX_RETRY_AFTER, retry_after)
            logger.debug(
                "%s %s failed (%s); retry %d in %.2fs", method, path, reason, attempt, delay
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _send(self, method: str, url_path: str, body: Any, content_type: str) -> Any:
        raw = self._exchange(method, url_path, body, content_type, "application/json")
        return json.loads(raw) if raw else None

    def _exchange(
        self, method: str, url_path: str, body: Any, content_type: str, accept: str
    ) -> bytes:
        """One request; the response body's bytes, or a `KubeError` for an error status."""
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        _, url, headers, _, _ = self._api.param_serialize(
            method=method,
            resource_path=url_path,
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        # The body is encoded here, not by the client (which would add spaces): see go_json.
        payload = go_json(body) if body is not None else None
        response = self._api.rest_client.pool_manager.request(
            method, url, body=payload, headers=headers, preload_content=True
        )
        raw: bytes = response.data
        if response.status >= 400:
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = None  # a plain-text error (an API group nobody serves, a proxy)
            status = data if isinstance(data, dict) else {}
            raise KubeError(
                response.status,
                str(status.get("reason") or "Unknown"),
                str(status.get("message") or raw[:200].decode(errors="replace")),
                retry_after=_seconds(response.headers.get("Retry-After")),
            )
        return raw

    async def pod_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
    ) -> str:
        """The log of one container of a Pod (the `log` subresource, plain text), as
        `kubectl logs` reads it; a `KubeError` when the API server cannot give it."""
        query: dict[str, str] = {}
        if container is not None:
            query["container"] = container
        if tail_lines is not None:
            query["tailLines"] = str(tail_lines)
        path = PODS.path(namespace, name, "log")
        url_path = f"{path}?{urlencode(query)}" if query else path
        raw = await self._retrying(
            "GET", path, lambda: self._exchange("GET", url_path, None, "", "text/plain, */*")
        )
        return bytes(raw).decode(errors="replace")

    async def get(
        self, resource: Resource, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.request("GET", resource.path(namespace, name))
        except KubeError as error:
            if error.not_found:
                return None
            raise
        return result

    async def list_with_version(
        self, resource: Resource, namespace: str | None = None, *, label_selector: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        """The objects, and the resourceVersion the list was taken at."""
        query = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", resource.path(namespace), query=query)
        items: list[dict[str, Any]] = result.get("items") or []
        return items, str((result.get("metadata") or {}).get("resourceVersion") or "")

    async def list(
        self, resource: Resource, namespace: str | None = None, *, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        items, _ = await self.list_with_version(resource, namespace, label_selector=label_selector)
        return items

    async def create(
        self, resource: Resource, namespace: str | None, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", resource.path(namespace), body=body)
        return result

    async def create_or_get(
        self, resource: Resource, namespace: str | None, body: Mapping[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Create `body`: `(created, True)`; when its name is taken, `(the object holding it,
        False)`. A create retried after its response was lost meets itself this way; whether
        the holder is the caller's own is for the caller to judge. A 409 while the name is free
        (a conflict of another kind) is raised."""
        try:
            return await self.create(resource, namespace, body), True
        except KubeError as error:
            if not error.conflict:
                raise
            existing = await self.get(resource, namespace, body["metadata"]["name"])
            if existing is None:
                raise
            return existing, False

    async def replace(
        self, resource: Resource, namespace: str | None, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PUT; with `metadata.resourceVersion` in `body`, a stale write is a 409 conflict."""
        result: dict[str, Any] = await self.request(
            "PUT", resource.path(namespace, name), body=body
        )
        return result

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str = "",
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        path = resource.path(namespace, name, subresource)
        result: dict[str, Any] = await self.request(
            "PATCH", path, body=patch, content_type=content_type
        )
        return result

    async def write_status(
        self, resource: Resource, body: Mapping[str, Any], status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Make `body`'s status `status`: one merge patch of what differs (a field gone is sent
        as null, or the server would keep it), none when nothing does. The updated object
        (`body` itself when nothing was written), or None when it is gone."""
        patch = merge_patch(body.get("status") or {}, status)
        if not patch:
            return dict(body)
        metadata = body["metadata"]
        try:
            return await self.patch(
                resource,
                metadata.get("namespace"),
                metadata["name"],
                {"status": patch},
                subresource="status",
            )
        except KubeError as error:
            if error.not_found:
                return None
            raise

    async def set_finalizer(
        self, resource: Resource, body: Mapping[str, Any], finalizer: str, *, present: bool
    ) -> dict[str, Any] | None:
        """Add or remove one finalizer; the updated object, or None when it is gone. The
        resourceVersion makes it a compare-and-swap: a finalizer someone else adds meanwhile is
        never lost (a conflict raises and the reconcile retries)."""
        metadata = body["metadata"]
        finalizers = [f for f in metadata.get("finalizers") or () if f != finalizer]
        if present:
            finalizers.append(finalizer)
        patch = {
            "metadata": {"finalizers": finalizers, "resourceVersion": metadata["resourceVersion"]}
        }
        try:
            return await self.patch(resource, metadata.get("namespace"), metadata["name"], patch)
        except KubeError as error:
            if error.not_found:
                return None
            raise

    async def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        grace_seconds: int | None = None,
        uid: str | None = None,
    ) -> bool:
        """Delete; False when it was already gone (or replaced by an object with another uid)."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", resource.path(namespace, name), body=options)
        except KubeError as error:
            if error.not_found or (uid is not None and error.conflict):
                return False
            raise
        return True


def _seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds (kube-apiserver sends whole seconds; an HTTP date or
    anything else is ignored)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


ConfigError = kubernetes.config.ConfigException
"""A kubeconfig that cannot be read or used (missing file, unknown context, bad entry)."""


def kubeconfig_namespace(path: str | None = None, context: str | None = None) -> str | None:
    """The namespace of `context` (default: the current context) in the kubeconfig at `path`
    (or $KUBECONFIG / ~/.kube/config), as kubectl picks it; None when the context names none
    or there is no kubeconfig at all (in a Pod: that Pod's namespace, as kubectl does)."""
    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(config_file=path)
    except (kubernetes.config.ConfigException, OSError):
        if path or context:
            raise
        return _in_cluster_namespace()
    chosen = (
        current
        if context is None
        else next((c for c in contexts or () if c.get("name") == context), None)
    )
    if chosen is None:
        raise kubernetes.config.ConfigException(f"context {context!r} not found in the kubeconfig")
    namespace = (chosen.get("context") or {}).get("namespace")
    return str(namespace) if namespace else None


_SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _in_cluster_namespace() -> str | None:
    try:
        with open(_SERVICE_ACCOUNT_NAMESPACE) as file:
            return file.read().strip() or None
    except OSError:
        return None


@dataclass(frozen=True)
class Credentials:
    """How to reach the API server, read from a kubeconfig (for Kopf's own client)."""

    server: str
    ca_path: str | None
    insecure: bool
    scheme: str | None
    token: str | None
    certificate_path: str | None
    private_key_path: str | None
    username: str | None
    password: str | None


def kubeconfig_credentials(path: str) -> Credentials:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=path, client_configuration=configuration)
    header = configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")
    scheme, _, token = (header or "").rpartition(" ")
    return Credentials(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        username=configuration.username or None,
        password=configuration.password or None,
    )
