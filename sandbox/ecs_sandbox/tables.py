"""`meta.k8s.io/v1` Table rendering, as kube-apiserver serves it to `kubectl get`.

Custom resources use their CRD version's `additionalPrinterColumns` (JSONPath cells, `date`
columns rendered as ages, priority kept so `-o wide` shows the extra columns). Built-in kinds
get the columns kubectl users know (pods, nodes, namespaces, events); any other kind gets
Name and Age.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from ecs_sandbox.resources import ResourceType

Obj = dict[str, Any]
CellFn = Callable[[Obj, datetime], Any]

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT_CHOICES = ("None", "Object", "Metadata")


def human_duration(seconds: float) -> str:
    """Kubernetes' `duration.HumanDuration`: the AGE column text (`45s`, `3m20s`, `5h`, `2d3h`)."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any, now: datetime) -> str | None:
    if not isinstance(timestamp, str) or not timestamp:
        return None
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return human_duration((now - then).total_seconds())


# --- JSONPath subset used by additionalPrinterColumns --------------------------------------

_STEP = re.compile(
    r"""\.(?P<key>[A-Za-z0-9_\-$]+)
      | \[(?P<index>-?\d+)\]
      | \[['"](?P<quoted>[^'"]+)['"]\]
      | \[\?\(@\.(?P<fkey>[A-Za-z0-9_.\-]+)\s*==\s*(?P<fval>"[^"]*"|'[^']*'|[^)\s]+)\)\]
      | \[\*\]
    """,
    re.VERBOSE,
)


def compile_jsonpath(path: str) -> list[tuple[str, Any]]:
    """Parse `.a.b[0].c`, `.a['x.y']`, `.a[*].b` and `.a[?(@.type=="Ready")].status`.

    Raises ValueError for anything else, so a bad column is reported instead of guessed.
    """
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if text.startswith("$"):
        text = text[1:]
    steps: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise ValueError(f"unsupported JSONPath {path!r} at {text[position:]!r}")
        if match.group("key") is not None:
            steps.append(("key", match.group("key")))
        elif match.group("quoted") is not None:
            steps.append(("key", match.group("quoted")))
        elif match.group("index") is not None:
            steps.append(("index", int(match.group("index"))))
        elif match.group("fkey") is not None:
            value = match.group("fval").strip("\"'")
            steps.append(("filter", (match.group("fkey").split("."), value)))
        else:
            steps.append(("all", None))
        position = match.end()
    return steps


def _dig(value: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def evaluate_jsonpath(steps: list[tuple[str, Any]], obj: Any) -> list[Any]:
    """All values the path selects (empty when the path leads nowhere)."""
    current = [obj]
    for kind, arg in steps:
        found: list[Any] = []
        for value in current:
            if (kind == "key" and isinstance(value, dict) and arg in value) or (
                kind == "index" and isinstance(value, list) and -len(value) <= arg < len(value)
            ):
                found.append(value[arg])
            elif kind == "all" and isinstance(value, list):
                found.extend(value)
            elif kind == "filter" and isinstance(value, list):
                keys, expected = arg
                found.extend(
                    item
                    for item in value
                    if str(_dig(item, keys)) == expected
                    or (
                        isinstance(_dig(item, keys), bool)
                        and str(_dig(item, keys)).lower() == expected
                    )
                )
        current = found
    return current


# --- columns --------------------------------------------------------------------------------


class Column:
    def __init__(
        self,
        name: str,
        cell: CellFn,
        *,
        type_: str = "string",
        format_: str = "",
        description: str = "",
        priority: int = 0,
    ) -> None:
        self.name = name
        self.cell = cell
        self.definition = {
            "name": name,
            "type": type_,
            "format": format_,
            "description": description,
            "priority": priority,
        }


def _name(obj: Obj, _now: datetime) -> Any:
    return obj.get("metadata", {}).get("name")


def _age(obj: Obj, now: datetime) -> Any:
    return age(obj.get("metadata", {}).get("creationTimestamp"), now)


NAME_COLUMN = Column(
    "Name",
    _name,
    format_="name",
    description="Name must be unique within a namespace.",
)
AGE_COLUMN = Column(
    "Age",
    _age,
    description="CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
)


def _printer_cell(path: str, type_: str) -> CellFn:
    try:
        steps = compile_jsonpath(path)
    except ValueError:
        return lambda _obj, _now: None

    def cell(obj: Obj, now: datetime) -> Any:
        values = evaluate_jsonpath(steps, obj)
        if not values:
            return None
        value = values[0] if len(values) == 1 else values
        if type_ == "date":
            return age(value, now)
        if isinstance(value, dict | list):
            return json.dumps(value, separators=(",", ":"))
        return value

    return cell


def crd_columns(crd_version: dict[str, Any]) -> list[Column]:
    columns = [NAME_COLUMN]
    printer_columns = crd_version.get("additionalPrinterColumns")
    if not printer_columns:
        return [*columns, AGE_COLUMN]
    for spec in printer_columns:
        type_ = spec.get("type", "string")
        columns.append(
            Column(
                spec.get("name", ""),
                _printer_cell(spec.get("jsonPath", ""), type_),
                type_=type_,
                format_=spec.get("format", ""),
                description=spec.get("description", ""),
                priority=int(spec.get("priority", 0)),
            )
        )
    return columns


# --- built-in kinds -------------------------------------------------------------------------


def _pod_statuses(obj: Obj) -> list[Obj]:
    return list(obj.get("status", {}).get("containerStatuses") or [])


def _pod_ready(obj: Obj, _now: datetime) -> str:
    containers = obj.get("spec", {}).get("containers") or []
    ready = sum(1 for status in _pod_statuses(obj) if status.get("ready"))
    return f"{ready}/{len(containers)}"


def _pod_status(obj: Obj, _now: datetime) -> str:
    """The STATUS column: waiting/terminated reasons beat the phase, as kubectl prints."""
    status = obj.get("status", {})
    reason = status.get("reason") or status.get("phase") or "Pending"
    for init_status in status.get("initContainerStatuses") or []:
        state = init_status.get("state", {})
        terminated = state.get("terminated")
        if terminated and terminated.get("exitCode", 0) != 0:
            reason = f"Init:{terminated.get('reason') or 'Error'}"
            break
        waiting = state.get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing"):
            reason = f"Init:{waiting['reason']}"
            break
    else:
        for container_status in _pod_statuses(obj):
            state = container_status.get("state", {})
            if state.get("waiting", {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated"):
                terminated = state["terminated"]
                reason = terminated.get("reason") or (f"ExitCode:{terminated.get('exitCode', 0)}")
    if obj.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_restarts(obj: Obj, _now: datetime) -> int:
    return sum(int(status.get("restartCount", 0)) for status in _pod_statuses(obj))


def _pod_ip(obj: Obj, _now: datetime) -> str:
    return str(obj.get("status", {}).get("podIP") or "<none>")


def _pod_node(obj: Obj, _now: datetime) -> str:
    return str(obj.get("spec", {}).get("nodeName") or "<none>")


def _node_status(obj: Obj, _now: datetime) -> str:
    ready = "Unknown"
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            ready = {"True": "Ready", "False": "NotReady"}.get(condition.get("status"), "Unknown")
    if obj.get("spec", {}).get("unschedulable"):
        ready += ",SchedulingDisabled"
    return ready


def _node_roles(obj: Obj, _now: datetime) -> str:
    prefix = "node-role.kubernetes.io/"
    labels = obj.get("metadata", {}).get("labels") or {}
    roles = sorted(key[len(prefix) :] for key in labels if key.startswith(prefix))
    return ",".join(role for role in roles if role) or "<none>"


def _node_version(obj: Obj, _now: datetime) -> str:
    return str(obj.get("status", {}).get("nodeInfo", {}).get("kubeletVersion") or "")


def _node_internal_ip(obj: Obj, _now: datetime) -> str:
    for address in obj.get("status", {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address"))
    return "<none>"


def _namespace_status(obj: Obj, _now: datetime) -> str:
    return str(obj.get("status", {}).get("phase") or "Active")


def _event_last_seen(obj: Obj, now: datetime) -> Any:
    return age(obj.get("lastTimestamp") or obj.get("eventTime") or "", now) or age(
        obj.get("metadata", {}).get("creationTimestamp"), now
    )


def _event_object(obj: Obj, _now: datetime) -> str:
    involved = obj.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


def _field(*keys: str) -> CellFn:
    return lambda obj, _now: _dig(obj, list(keys))


BUILTIN_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "pods"): [
        NAME_COLUMN,
        Column("Ready", _pod_ready, description="The aggregate readiness state of this pod."),
        Column("Status", _pod_status, description="The aggregate status of the containers."),
        Column("Restarts", _pod_restarts, type_="string", description="Container restarts."),
        AGE_COLUMN,
        Column("IP", _pod_ip, priority=1, description="IP address allocated to the pod."),
        Column("Node", _pod_node, priority=1, description="Name of the node the pod runs on."),
    ],
    ("", "nodes"): [
        NAME_COLUMN,
        Column("Status", _node_status, description="The status of the node."),
        Column("Roles", _node_roles, description="The roles of the node."),
        AGE_COLUMN,
        Column("Version", _node_version, description="Kubelet version."),
        Column("Internal-IP", _node_internal_ip, priority=1, description="Internal IP."),
    ],
    ("", "namespaces"): [
        NAME_COLUMN,
        Column("Status", _namespace_status, description="The status of the namespace."),
        AGE_COLUMN,
    ],
    ("", "events"): [
        Column("Last Seen", _event_last_seen, description="Time of the last occurrence."),
        Column("Type", _field("type"), description="Type of this event."),
        Column("Reason", _field("reason"), description="Why the event happened."),
        Column("Object", _event_object, description="The object the event is about."),
        Column("Message", _field("message"), description="Human-readable description."),
        Column("Name", _name, format_="name", priority=1, description="Name of the event."),
    ],
}


def columns_for(rt: ResourceType) -> list[Column]:
    if rt.crd_version is not None:
        return crd_columns(rt.crd_version)
    return BUILTIN_COLUMNS.get((rt.group, rt.plural), [NAME_COLUMN, AGE_COLUMN])


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": TABLE_API_VERSION,
        "metadata": obj.get("metadata", {}),
    }


def build_table(
    rt: ResourceType,
    objects: Iterable[Obj],
    *,
    list_metadata: Obj | None = None,
    include_object: str = "Metadata",
    now: datetime | None = None,
) -> Obj:
    """A `Table` of `objects`; `list_metadata` carries resourceVersion and continue."""
    moment = now or datetime.now(UTC)
    columns = columns_for(rt)
    rows = []
    for obj in objects:
        row: Obj = {"cells": [column.cell(obj, moment) for column in columns]}
        included = _row_object(obj, include_object)
        if included is not None:
            row["object"] = included
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": list_metadata or {},
        "columnDefinitions": [column.definition for column in columns],
        "rows": rows,
    }
