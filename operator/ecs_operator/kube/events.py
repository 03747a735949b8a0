"""Kubernetes Events about our objects, aggregated as client-go's recorder does.

The first occurrence of (object, type, reason, message) creates an Event; repeats bump its
`count` and `lastTimestamp` instead of creating new objects, so a flapping condition never
becomes an event storm. Posting is best effort: a failure is logged, never raised, because an
event must not fail a reconcile.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ecs_operator.core.events import clip
from ecs_operator.kube.client import EVENTS, KubeClient, KubeError
from ecs_operator.models.common import MAX_OBJECT_NAME_LENGTH

logger = logging.getLogger(__name__)

COMPONENT = "ecs-operator"
MAX_EVENT_MESSAGE_LENGTH = 1024


def event_name(object_name: str) -> str:
    """``NAME.<16 hex>``, the object's name cut so the Event's own name stays an object name
    (at most 253 characters) however long the object's is."""
    suffix = f".{secrets.token_hex(8)}"
    return object_name[: MAX_OBJECT_NAME_LENGTH - len(suffix)].rstrip(".-") + suffix


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, kube: KubeClient, *, remembered: int = 10_000) -> None:
        self._kube = kube
        self._remembered = remembered
        # (uid, type, reason, message) -> (namespace, event name, count), oldest first.
        self._seen: OrderedDict[tuple[str, str, str, str], tuple[str, str, int]] = OrderedDict()

    async def record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        metadata = obj.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "default")
        key = (str(metadata.get("uid", "")), type_, reason, message)
        now = _now()
        try:
            seen = self._seen.get(key)
            if seen is not None:
                _, name, count = seen
                await self._kube.patch(
                    EVENTS, namespace, name, {"count": count + 1, "lastTimestamp": now}
                )
                self._remember(key, (namespace, name, count + 1))
                return
            name = event_name(str(metadata.get("name", "object")))
            await self._kube.create(
                EVENTS, namespace, self._event(obj, name, type_, reason, message, now)
            )
            self._remember(key, (namespace, name, 1))
        except KubeError as error:
            if error.not_found:  # the aggregated Event expired; start a new one next time
                self._seen.pop(key, None)
            logger.warning("could not post event %s %s: %s", reason, message, error)

    def _remember(self, key: tuple[str, str, str, str], value: tuple[str, str, int]) -> None:
        self._seen[key] = value
        self._seen.move_to_end(key)
        while len(self._seen) > self._remembered:
            self._seen.popitem(last=False)

    @staticmethod
    def _event(
        obj: Mapping[str, Any], name: str, type_: str, reason: str, message: str, now: str
    ) -> dict[str, Any]:
        metadata = obj.get("metadata") or {}
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": metadata.get("namespace") or "default"},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": metadata.get("name"),
                "namespace": metadata.get("namespace"),
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": clip(message, MAX_EVENT_MESSAGE_LENGTH),
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
