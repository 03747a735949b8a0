"""The controllers' one way to the API: every response that carries a watched object (a write's,
or a read standing in for a watch event) is recorded into its kind's cache at once, as the
change its watch event will bring later, so the next plan sees it and its triggers wake whom
it concerns. No controller records into a cache by hand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ecs_operator.controllers.cache import finalizer_write_event
from ecs_operator.kube.client import KubeClient, Resource

Body = Mapping[str, Any]


class Recorder(Protocol):
    def __call__(
        self, resource: Resource, event_type: str, body: Body, *, written: bool, wake: bool
    ) -> object: ...


class Writer:
    def __init__(self, kube: KubeClient, record: Recorder) -> None:
        self.kube = kube
        self._record = record

    def _recorded(self, resource: Resource, event_type: str, body: dict[str, Any]) -> None:
        self._record(resource, event_type, body, written=True, wake=True)

    async def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """Read one object; a watched one is cached as its watch would have it."""
        found = await self.kube.get(resource, namespace, name)
        if found is not None:
            self._recorded(resource, "ADDED", found)
        return found

    async def list(
        self, resource: Resource, namespace: str, *, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        """A check against the API itself (not cached: the cache is the watch's)."""
        return await self.kube.list(resource, namespace, label_selector=label_selector)

    async def create(
        self, resource: Resource, namespace: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        created = await self.kube.create(resource, namespace, body)
        self._recorded(resource, "ADDED", created)
        return created

    async def create_or_get(
        self, resource: Resource, namespace: str, body: Mapping[str, Any], *, expect: bool = False
    ) -> tuple[dict[str, Any], bool]:
        """`KubeClient.create_or_get`, the object created or found cached. `expect`: count it in
        the cache before the request is answered (a placement meanwhile must see it), and
        forget it again if the create fails; neither wakes anyone."""
        if expect:
            self._record(resource, "ADDED", body, written=True, wake=False)
        try:
            found, created = await self.kube.create_or_get(resource, namespace, body)
        except BaseException:
            if expect:
                self._record(resource, "DELETED", body, written=True, wake=False)
            raise
        self._recorded(resource, "ADDED", found)
        return found, created

    async def replace(
        self, resource: Resource, namespace: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        replaced = await self.kube.replace(resource, namespace, name, body)
        self._recorded(resource, "MODIFIED", replaced)
        return replaced

    async def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: Any,
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        patched = await self.kube.patch(resource, namespace, name, patch, subresource=subresource)
        self._recorded(resource, "MODIFIED", patched)
        return patched

    async def write_status(
        self, resource: Resource, body: Mapping[str, Any], status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """`KubeClient.write_status`: the object written, or None when it is gone."""
        written = await self.kube.write_status(resource, body, status)
        if written is not None:
            self._recorded(resource, "MODIFIED", written)
        return written

    async def set_finalizer(
        self, resource: Resource, body: Mapping[str, Any], finalizer: str, *, present: bool
    ) -> dict[str, Any] | None:
        """`KubeClient.set_finalizer`. Removing the last finalizer of an object being deleted
        deletes it: it is recorded as DELETED (a watch started after that never says so). Not
        for Pods, whose deletion also waits for their kubelet."""
        written = await self.kube.set_finalizer(resource, body, finalizer, present=present)
        if written is not None:
            self._recorded(resource, finalizer_write_event(written), written)
        return written

    async def delete(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        *,
        grace_seconds: int | None = None,
        uid: str | None = None,
    ) -> bool:
        """Delete: the object is gone (or going) when its watch says so."""
        return await self.kube.delete(
            resource, namespace, name, grace_seconds=grace_seconds, uid=uid
        )
