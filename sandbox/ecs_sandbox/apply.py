"""Server-side apply (`PATCH` with `application/apply-patch+yaml`): the subset the sandbox serves.

What `kubectl apply --server-side` and Helm 4 (which installs and upgrades with server-side
apply by default) need, as kube-apiserver does it:

- the applied configuration creates the object when it does not exist (201), else is merged into
  it: maps merge key by key, every other value (lists included) replaces what is there;
- each field manager (`fieldManager`, required) owns the fields of its last applied configuration,
  recorded in `metadata.managedFields` (`operation: Apply`, `fieldsType: FieldsV1`); a field it
  applied before and leaves out now is removed, unless another manager owns it too;
- changing a field another *applying* manager owns is a 409 Conflict naming the manager and the
  field (`details.causes[].reason: FieldManagerConflict`), unless `force=true`, which takes the
  field over;
- an apply that changes nothing keeps the entry's timestamp, so the object is not written.

Simplifications, on purpose: lists are atomic (kube-apiserver merges `listType=map`/`set` and
the built-in kinds' keyed lists item by item); only applying managers are recorded, so writes
by update, merge, JSON or strategic merge patch neither own fields nor cause conflicts; `null`
in an applied configuration means "not given". This module is pure: the Store validates and
stores what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ecs_sandbox.errors import ApiError, Cause
from ecs_sandbox.patching import deep_copy

Obj = dict[str, Any]
Path = tuple[str, ...]

APPLY_PATCH = "application/apply-patch+yaml"
FIELDS_V1 = "FieldsV1"
# Set by the server, never owned by a manager.
_SERVER_METADATA = frozenset(
    {
        "name",
        "namespace",
        "generateName",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    }
)
_MISSING = object()


@dataclass(frozen=True)
class Applied:
    """The outcome of an apply: the object to store and its new `managedFields`."""

    obj: Obj
    managed_fields: list[Obj]


def without_nulls(value: Any) -> Any:
    """`value` with every null map entry left out: in an applied configuration null means the
    field is not given."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def applied_part(config: Obj, *, subresource: str | None, has_status: bool) -> Obj:
    """The fields of an applied configuration that the request may set: on the main resource
    everything but apiVersion, kind, server-set metadata and (with a status subresource) status;
    on `/status` the status only."""
    config = without_nulls(config)
    if subresource == "status":
        return {"status": config["status"]} if "status" in config else {}
    part: Obj = {}
    for key, value in config.items():
        if key in ("apiVersion", "kind") or (key == "status" and has_status):
            continue
        if key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _SERVER_METADATA}
            if not value:
                continue
        part[key] = value
    return part


def leaves(value: Any, prefix: Path = ()) -> set[Path]:
    """The paths of the values a configuration sets: every non-empty map is walked, anything
    else (a scalar, a list, an empty map) is one field."""
    if isinstance(value, dict) and value:
        found: set[Path] = set()
        for key, item in value.items():
            found |= leaves(item, (*prefix, key))
        return found
    return {prefix} if prefix else set()


def to_fields_v1(paths: Iterable[Path]) -> Obj:
    """Paths as a FieldsV1 set: `{"f:spec": {"f:replicas": {}}}`."""
    root: Obj = {}
    for path in sorted(paths):
        node = root
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return root


def from_fields_v1(fields: Any, prefix: Path = ()) -> set[Path]:
    """The paths of a FieldsV1 set. A node listing list items (`k:`, `v:`, `i:`, as a real API
    server writes them) counts as owning the whole list."""
    if not isinstance(fields, dict):
        return {prefix} if prefix else set()
    children = {key[2:]: value for key, value in fields.items() if key.startswith("f:")}
    items = [key for key in fields if key != "." and not key.startswith("f:")]
    if items or not children:
        return {prefix} if prefix else set()
    found: set[Path] = set()
    for key, value in children.items():
        found |= from_fields_v1(value, (*prefix, key))
    return found


def merge(live: Any, applied: Any) -> Any:
    """`applied` over `live`: maps merge key by key, anything else replaces."""
    if isinstance(live, dict) and isinstance(applied, dict):
        merged = deep_copy(live)
        for key, value in applied.items():
            merged[key] = merge(live[key], value) if key in live else deep_copy(value)
        return merged
    return deep_copy(applied)


def value_at(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _overlap(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _remove(obj: Obj, path: Path, kept: set[Path]) -> None:
    """Remove the field at `path`, then the maps it leaves empty (never `metadata` or a
    top-level field, nor a map someone owns)."""
    parents: list[tuple[Obj, str]] = []
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        parents.append((node, key))
        node = node[key]
    if not isinstance(node, dict):
        return
    node.pop(path[-1], None)
    for depth in range(len(parents) - 1, 0, -1):
        parent, key = parents[depth]
        child_path = path[: depth + 1]
        if parent[key] or child_path in kept or child_path == ("metadata",):
            break
        del parent[key]


def _entry_key(entry: Mapping[str, Any]) -> tuple[str, str]:
    return str(entry.get("manager") or ""), str(entry.get("subresource") or "")


def field_path(path: Path) -> str:
    """A path as kube-apiserver names it in conflicts: `.spec.replicas`."""
    return "".join(f".{key}" for key in path)


def conflict_error(kind: str, group: str, name: str, found: list[tuple[str, Path]]) -> ApiError:
    """409 Conflict as kube-apiserver words it, one cause per field."""
    causes = [
        Cause(field_path(path), f'conflict with "{manager}"', "FieldManagerConflict")
        for manager, path in found
    ]
    count = f"{len(found)} conflict{'' if len(found) == 1 else 's'}"
    listed = "\n".join(f"- {cause.message}: {cause.field}" for cause in causes)
    message = f"Apply failed with {count}: " + (
        f"{causes[0].message}: {causes[0].field}" if len(causes) == 1 else f"\n{listed}"
    )
    return ApiError(409, "Conflict", message, kind, name, group, causes)


def apply(
    live: Obj | None,
    config: Obj,
    *,
    manager: str,
    force: bool,
    subresource: str | None,
    has_status: bool,
    api_version: str,
    now: str,
    kind: str = "",
    group: str = "",
) -> Applied:
    """Apply `config` (the request body) by `manager` to `live` (None: the object is created).

    Returns the object to store (live's metadata kept, ready for the Store's update checks) and
    its managedFields; raises the 409 conflict described in the module docstring."""
    part = applied_part(config, subresource=subresource, has_status=has_status)
    base: Obj = live if live is not None else {}
    entries: list[Obj] = [
        entry
        for entry in (base.get("metadata") or {}).get("managedFields") or ()
        if isinstance(entry, dict)
    ]
    mine = (manager, subresource or "")
    owned = {
        _entry_key(entry): from_fields_v1(entry.get("fieldsV1"))
        for entry in entries
        if entry.get("operation") == "Apply"
    }
    before = owned.pop(mine, set())
    applying = leaves(part)
    merged: Obj = merge(base, part)

    taken = _conflicts(base, merged, owned, applying)
    if taken and not force:
        found = [(key[0], path) for key, paths in taken.items() for path in sorted(paths)]
        name = str(value_at(base, ("metadata", "name")) or "")
        raise conflict_error(kind, group, name, found)
    for key, paths in taken.items():
        owned[key] -= paths

    others: set[Path] = set().union(*owned.values()) if owned else set()
    for path in sorted(before - applying, key=len, reverse=True):
        if not any(_overlap(path, other) for other in (*applying, *others)):
            _remove(merged, path, applying | others)

    entry = {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now,
        "fieldsType": FIELDS_V1,
        "fieldsV1": to_fields_v1(applying),
    }
    if subresource:
        entry["subresource"] = subresource
    return Applied(merged, _new_entries(entries, mine, entry if applying else None, owned, taken))


def _conflicts(
    live: Obj, merged: Obj, owned: dict[tuple[str, str], set[Path]], applying: set[Path]
) -> dict[tuple[str, str], set[Path]]:
    """The fields of other applying managers this apply would change, by manager. A map that
    only gains keys is no conflict."""
    taken: dict[tuple[str, str], set[Path]] = {}
    for key, paths in owned.items():
        for path in paths:
            if not any(_overlap(path, mine) for mine in applying):
                continue
            old, new = value_at(live, path), value_at(merged, path)
            if old != new and not (isinstance(old, dict) and isinstance(new, dict)):
                taken.setdefault(key, set()).add(path)
    return taken


def _new_entries(
    entries: list[Obj],
    mine: tuple[str, str],
    entry: Obj | None,
    owned: dict[tuple[str, str], set[Path]],
    taken: dict[tuple[str, str], set[Path]],
) -> list[Obj]:
    """managedFields after the apply: others' entries (less what was forced away from them, an
    emptied one dropped), then this manager's, unchanged (time included) when its fields are."""
    result: list[Obj] = []
    previous: Obj | None = None
    for old in entries:
        key = _entry_key(old)
        if old.get("operation") != "Apply":
            result.append(old)
        elif key == mine:
            previous = old
        elif key not in taken:
            result.append(old)
        elif owned[key]:
            result.append({**old, "fieldsV1": to_fields_v1(owned[key])})
    if entry is not None:
        unchanged = previous is not None and previous.get("fieldsV1") == entry["fieldsV1"]
        result.append(previous if unchanged and previous is not None else entry)
    return result
