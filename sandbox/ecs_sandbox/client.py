"""A small async JSON client of the Kubernetes API, for the demo (aiohttp, no kubernetes).

The demo talks to the sandbox it started, by URL (plain HTTP, no credentials: the sandbox
accepts any token, or none). Transient failures (429, 5xx, a broken connection: what the
sandbox's `--fault-*` flags inject) are retried with capped exponential backoff, or after the
server's Retry-After, as the operator's own client does; other error responses raise
`RequestError` with the API's reason and message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from ecs_sandbox.contract import API_GROUP, API_VERSION

logger = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 6
MAX_BACKOFF = 2.0
MAX_RETRY_AFTER = 10.0  # a server asking for longer is waited this long, then asked again
REQUEST_TIMEOUT = 60.0

Obj = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    """A REST collection: `Resource("", "v1", "pods")`, `Resource("ecs.operator.dev", …)`."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name)}"
        return base


PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
TASK_DEFINITIONS = Resource(API_GROUP, API_VERSION, "taskdefinitions")
TASKS = Resource(API_GROUP, API_VERSION, "tasks")
SERVICES = Resource(API_GROUP, API_VERSION, "services")


class RequestError(Exception):
    """An API error response: `code` is the HTTP status, `reason` the Status reason."""

    def __init__(
        self, code: int, reason: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    @property
    def not_found(self) -> bool:
        return self.code == 404


class ApiClient:
    """Async JSON access to the API server at `url`; objects in and out are plain dicts.

    Open it in the event loop that uses it; `close()` when done."""

    def __init__(self, url: str, *, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.url = url.rstrip("/")
        self._max_attempts = max_attempts
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            headers={"Accept": "application/json"},
        )

    async def close(self) -> None:
        await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """Send one request, retrying transient failures; the decoded JSON body."""
        for attempt in range(1, self._max_attempts + 1):
            try:
                return await self._send(method, path, body, query, content_type)
            except RequestError as error:
                if error.code not in TRANSIENT_CODES or attempt == self._max_attempts:
                    raise
                reason = f"{error.code} {error.reason}"
                retry_after = error.retry_after
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                if attempt == self._max_attempts:
                    raise RequestError(503, "ServiceUnavailable", str(error)) from error
                reason = type(error).__name__
                retry_after = None
            delay = min(MAX_BACKOFF, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
            if retry_after is not None:
                delay = min(MAX_RETRY_AFTER, retry_after)
            logger.debug(
                "%s %s failed (%s); retry %d in %.2fs", method, path, reason, attempt, delay
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _send(
        self,
        method: str,
        path: str,
        body: Any,
        query: Mapping[str, str] | None,
        content_type: str,
    ) -> Any:
        headers = {"Content-Type": content_type} if body is not None else {}
        payload = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        async with self._session.request(
            method, self.url + path, params=dict(query or {}), data=payload, headers=headers
        ) as response:
            raw = await response.read()
            data = json.loads(raw) if raw else None
            if response.status >= 400:
                status = data if isinstance(data, dict) else {}
                raise RequestError(
                    response.status,
                    str(status.get("reason") or "Unknown"),
                    str(status.get("message") or raw[:200].decode(errors="replace")),
                    retry_after=_seconds(response.headers.get("Retry-After")),
                )
            return data

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        """The object, or None when there is none."""
        try:
            result: Obj = await self.request("GET", resource.path(namespace, name))
        except RequestError as error:
            if error.not_found:
                return None
            raise
        return result

    async def list(
        self, resource: Resource, namespace: str | None = None, *, label_selector: str = ""
    ) -> list[Obj]:
        query = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", resource.path(namespace), query=query)
        items: list[Obj] = result.get("items") or []
        return items

    async def create(
        self, resource: Resource, namespace: str | None, body: Mapping[str, Any]
    ) -> Obj:
        result: Obj = await self.request("POST", resource.path(namespace), body=body)
        return result

    async def patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> Obj:
        """A JSON merge patch."""
        result: Obj = await self.request(
            "PATCH", resource.path(namespace, name), body=patch, content_type=MERGE_PATCH
        )
        return result


def _seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds (an HTTP date or anything else is ignored)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
