"""The three PATCH flavours kube-apiserver accepts, applied to plain dicts.

- merge patch (RFC 7386),
- JSON patch (RFC 6902, through `jsonpatch`): an undecodable patch is 400, an operation that
  cannot apply (a failed `test`, a missing path) is 422 Invalid, as kube-apiserver answers;
- strategic merge patch for built-in kinds, with a small table of list merge keys
  (see `_merge_key`) and the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/` and
  `$setElementOrder/` directives. Directives are never stored.

Every function returns a new object and leaves its inputs untouched.
"""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
import jsonpointer

from ecs_sandbox.errors import ApiError, bad_request

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_ELEMENT_ORDER = "$setElementOrder/"


def deep_copy(value: Any) -> Any:
    """Copy a JSON-like value (dicts, lists, scalars); much faster than `copy.deepcopy`."""
    kind = type(value)
    if kind is dict:
        return {key: deep_copy(item) for key, item in value.items()}
    if kind is list:
        return [deep_copy(item) for item in value]
    return value


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH} (got {content_type!r})",
    )


def decode(patch: Any) -> Any:
    """Accept a parsed patch or its raw JSON text/bytes."""
    if isinstance(patch, bytes | bytearray | str):
        try:
            return json.loads(patch)
        except ValueError as exc:
            raise bad_request(f"error decoding patch: {exc}") from None
    return patch


def apply_patch(
    target: dict[str, Any], patch: Any, content_type: str, *, strategic: bool
) -> dict[str, Any]:
    """Apply a patch of `content_type`; `strategic` says whether the kind supports SMP."""
    media = content_type.split(";", 1)[0].strip().lower()
    patch = decode(patch)
    if media == MERGE_PATCH:
        result = merge_patch(target, patch)
    elif media == JSON_PATCH:
        result = json_patch(target, patch)
    elif media == STRATEGIC_MERGE_PATCH and strategic:
        result = strategic_merge_patch(target, patch)
    else:
        raise unsupported_media_type(content_type)
    if not isinstance(result, dict):
        raise unprocessable("the patched object must be a JSON object")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        if not isinstance(target, dict) or patch is not None:
            return deep_copy(patch)
        raise bad_request("a merge patch must be a JSON object")
    result = deep_copy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = merge_patch(result.get(key), value)
        else:
            result[key] = deep_copy(value)
    return result


def json_patch(target: dict[str, Any], patch: Any) -> Any:
    if not isinstance(patch, list) or not all(isinstance(op, dict) for op in patch):
        raise bad_request("a JSON patch must be a JSON array of operation objects")
    try:
        compiled = jsonpatch.JsonPatch(patch)
        return compiled.apply(deep_copy(target))
    except jsonpatch.JsonPatchTestFailed as exc:
        raise unprocessable(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from None
    except (jsonpatch.InvalidJsonPatch, TypeError) as exc:
        raise bad_request(f"invalid JSON patch: {exc}") from None
    except (
        jsonpatch.JsonPatchConflict,
        jsonpatch.JsonPatchException,
        jsonpointer.JsonPointerException,
    ) as exc:
        raise unprocessable(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from None
    except (KeyError, IndexError, ValueError) as exc:
        raise unprocessable(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from None


# ---------------------------------------------------------------------------------------------
# strategic merge patch

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_BY_NAME = (*_CONTAINER_LISTS, "env", "volumes")


def _merge_key(path: tuple[str, ...]) -> str | None:
    """The merge key of the list at `path` (dict keys from the root); None means replace.

    "" marks a list of primitives merged as a set (finalizers).
    """
    last = path[-1]
    parent = path[-2] if len(path) > 1 else ""
    if last in _BY_NAME:
        return "name"
    if last == "ports":
        if parent in _CONTAINER_LISTS:
            return "containerPort"
        if path == ("spec", "ports"):
            return "port"  # a Service's ports
        return None
    if last == "volumeMounts":
        return "mountPath"
    if last == "volumeDevices":
        return "devicePath"
    if last == "conditions":
        return "type"
    if last == "addresses" and parent == "status":
        return "type"
    if last == "ownerReferences":
        return "uid"
    if last == "finalizers" and parent == "metadata":
        return ""
    return None


def strategic_merge_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise bad_request("a strategic merge patch must be a JSON object")
    result = _merge_map(target, patch, ())
    if result is None:
        raise unprocessable("the patch deletes the whole object")
    return result


def _merge_map(
    original: dict[str, Any] | None, patch: dict[str, Any], path: tuple[str, ...]
) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: deep_copy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive is not None:
        raise bad_request(f"unknown patch directive {directive!r} at {'.'.join(path) or '<root>'}")
    result = deep_copy(original) if isinstance(original, dict) else {}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith(_ELEMENT_ORDER):
            orders[key[len(_ELEMENT_ORDER) :]] = value if isinstance(value, list) else []
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE) :]
            if not isinstance(value, list):
                raise bad_request(f"{key} must be a list")
            kept = [v for v in result.get(field) or [] if v not in value]
            result[field] = kept
            continue
        if key.startswith("$"):
            raise bad_request(f"unknown patch directive {key!r}")
        _merge_field(result, key, value, (*path, key))
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _ordered(result[field], order, _merge_key((*path, field)))
    retain = patch.get("$retainKeys")
    if retain is not None:
        if not isinstance(retain, list):
            raise bad_request("$retainKeys must be a list")
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_field(result: dict[str, Any], key: str, value: Any, path: tuple[str, ...]) -> None:
    if value is None:
        result.pop(key, None)
    elif isinstance(value, dict):
        merged = _merge_map(result.get(key), value, path)
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    elif isinstance(value, list):
        merge_key = _merge_key(path)
        if merge_key is None:
            result[key] = [_strip_directives(item) for item in value]
        else:
            result[key] = _merge_list(result.get(key), value, merge_key, path)
    else:
        result[key] = value


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _merge_list(
    original: Any, patch: list[Any], merge_key: str, path: tuple[str, ...]
) -> list[Any]:
    items = deep_copy(original) if isinstance(original, list) else []
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [
            _strip_directives(item)
            for item in patch
            if not (isinstance(item, dict) and item.get("$patch") == "replace")
        ]
    if merge_key == "":  # a set of primitives
        for item in patch:
            if item not in items:
                items.append(deep_copy(item))
        return items
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise bad_request(
                f"{'.'.join(path)}: map: {item!r} does not contain declared merge key: {merge_key}"
            )
        index = next(
            (
                i
                for i, old in enumerate(items)
                if isinstance(old, dict) and old.get(merge_key) == item[merge_key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del items[index]
            continue
        if index is None:
            items.append(_strip_directives(item))
        else:
            merged = _merge_map(items[index], item, path)
            if merged is not None:
                items[index] = merged
    return items


def _ordered(items: list[Any], order: list[Any], merge_key: str | None) -> list[Any]:
    """Apply `$setElementOrder`: listed elements first in that order, the rest after."""

    def identity(item: Any) -> Any:
        if merge_key and isinstance(item, dict):
            return item.get(merge_key)
        return item

    wanted = [identity(entry) if isinstance(entry, dict) else entry for entry in order]
    rank = {json.dumps(w, sort_keys=True): i for i, w in enumerate(wanted)}

    def position(indexed: tuple[int, Any]) -> tuple[int, int]:
        i, item = indexed
        return (rank.get(json.dumps(identity(item), sort_keys=True), len(rank)), i)

    return [item for _, item in sorted(enumerate(items), key=position)]
