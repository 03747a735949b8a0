"""Custom-resource admission as kube-apiserver does it: prune, default, validate, run CEL rules.

`SchemaValidator.from_crd_version(crd, version)` compiles one served version's
`openAPIV3Schema` (and every CEL rule in it) once; `admit(obj, old)` then returns a pruned,
defaulted copy of `obj` or raises a 422 `Invalid` ApiError listing every violation, worded as
kube-apiserver words them (`spec.cpu: Invalid value: "string": spec.cpu in body must be of type
integer: "string"`). `validate_crd(crd)` returns the causes kube-apiserver would reject a
CustomResourceDefinition with.

Order, as in kube-apiserver: prune unknown fields (unless `x-kubernetes-preserve-unknown-fields`;
`apiVersion`, `kind`, `metadata` always kept, metadata cut to ObjectMeta fields), drop nulls of
non-nullable fields, apply defaults (recursively, also inside array items and inside defaults),
validate the OpenAPI v3 structural subset, then evaluate `x-kubernetes-validations`. As in
kube-apiserver, CEL rules are skipped when the schema check found a type or enum error (one
extra cause says so). Transition rules (those using `oldSelf`) run only on update and only where
the old value correlates: object fields, map values, and `x-kubernetes-list-type: map` items by
key; `optionalOldSelf: true` rules also run on create with `oldSelf` an empty optional.

Not modelled: validation ratcheting (unchanged invalid fields are rejected too), CEL cost
limits, and status/scale handling (the Store decides which parts of an object a write touches).

CEL runs on cel-python's `CompiledRunner`: each rule is transpiled to Python once and only
executed per request. Two cel-python 0.5 quirks are worked around: `!has(x)` (its `has()`
yields a Python bool) and custom functions (generated code names them by module, so each
program runs in its own namespace that binds them). Beyond core CEL (`has`, `all`, `exists`,
`exists_one`, `map`, `filter`, `in`, `size`, `matches`, `startsWith`, `endsWith`, `contains`,
`int`/`uint`/`double`/`string`/`bool`/`duration`/`timestamp`), these Kubernetes library
functions are provided: strings `charAt indexOf lastIndexOf lowerAscii upperAscii replace split
substring trim join`; lists `isSorted sum min max indexOf lastIndexOf`; regex `find findAll`;
optionals for `oldSelf` (`hasValue value orValue`). NOT supported (a rule using them compiles
but reports an evaluation error): the `url`, `ip`/`cidr`, `quantity`, `semver`, `format`,
`authz`, `sets` and `base64` libraries, the `self.?field` optional syntax and `optional.of`,
and CEL's static type check (a misspelt field is caught when the rule runs, not at CRD create).
Fields with `format: date-time` are plain strings in CEL (not timestamps).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import celpy
import celpy.evaluation
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from ecs_sandbox.errors import Cause, bad_request, invalid

# --------------------------------------------------------------------------------------------
# CEL
# --------------------------------------------------------------------------------------------


class CelError(Exception):
    """A rule failed to compile or to evaluate; the message is CEL's explanation."""


class _Optional:
    """`oldSelf` of an `optionalOldSelf` rule: a value or none."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _cel_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"no such overload: expected string, got {type(value).__name__}")
    return value


def _char_at(text: Any, index: Any) -> celtypes.StringType:
    position = int(index)
    if not 0 <= position <= len(_cel_str(text)):
        raise ValueError(f"index out of range: {position}")
    return celtypes.StringType(text[position : position + 1])


def _index_of(target: Any, item: Any, start: Any = 0) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(target.find(item, int(start)))
    return celtypes.IntType(next((i for i, x in enumerate(target) if x == item), -1))


def _last_index_of(target: Any, item: Any) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(target.rfind(item))
    found = [i for i, x in enumerate(target) if x == item]
    return celtypes.IntType(found[-1] if found else -1)


def _lower_ascii(text: Any) -> celtypes.StringType:
    return celtypes.StringType(_cel_str(text).lower())


def _upper_ascii(text: Any) -> celtypes.StringType:
    return celtypes.StringType(_cel_str(text).upper())


def _replace(text: Any, old: Any, new: Any, count: Any = -1) -> celtypes.StringType:
    return celtypes.StringType(_cel_str(text).replace(old, new, int(count)))


def _split(text: Any, separator: Any, limit: Any = -1) -> celtypes.ListType:
    if int(limit) == 0:
        return celtypes.ListType([])
    parts = _cel_str(text).split(separator, int(limit) - 1 if int(limit) > 0 else -1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _substring(text: Any, start: Any, end: Any = None) -> celtypes.StringType:
    stop = len(_cel_str(text)) if end is None else int(end)
    if not 0 <= int(start) <= stop <= len(text):
        raise ValueError(f"index out of range: {start}..{stop}")
    return celtypes.StringType(text[int(start) : stop])


def _trim(text: Any) -> celtypes.StringType:
    return celtypes.StringType(_cel_str(text).strip())


def _join(items: Any, separator: Any = "") -> celtypes.StringType:
    return celtypes.StringType(str(separator).join(_cel_str(x) for x in items))


def _is_sorted(items: Any) -> celtypes.BoolType:
    return celtypes.BoolType(all(items[i] <= items[i + 1] for i in range(len(items) - 1)))


def _sum(items: Any) -> Any:
    if not items:
        return celtypes.IntType(0)
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


def _min(items: Any) -> Any:
    if not items:
        raise ValueError("min called on an empty list")
    return min(items)


def _max(items: Any) -> Any:
    if not items:
        raise ValueError("max called on an empty list")
    return max(items)


def _find(text: Any, pattern: Any) -> celtypes.StringType:
    match = re.search(pattern, _cel_str(text))
    return celtypes.StringType(match.group(0) if match else "")


def _find_all(text: Any, pattern: Any, limit: Any = -1) -> celtypes.ListType:
    found = [celtypes.StringType(m.group(0)) for m in re.finditer(pattern, _cel_str(text))]
    return celtypes.ListType(found if int(limit) < 0 else found[: int(limit)])


def _has_value(optional: Any) -> celtypes.BoolType:
    return celtypes.BoolType(isinstance(optional, _Optional) and optional.value is not None)


def _value(optional: Any) -> Any:
    if not isinstance(optional, _Optional) or optional.value is None:
        raise ValueError("optional.none() dereference")
    return optional.value


def _or_value(optional: Any, fallback: Any) -> Any:
    if isinstance(optional, _Optional) and optional.value is not None:
        return optional.value
    return fallback


_CEL_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "charAt": _char_at,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": _lower_ascii,
    "upperAscii": _upper_ascii,
    "replace": _replace,
    "split": _split,
    "substring": _substring,
    "trim": _trim,
    "join": _join,
    "isSorted": _is_sorted,
    "sum": _sum,
    "min": _min,
    "max": _max,
    "find": _find,
    "findAll": _find_all,
    "hasValue": _has_value,
    "value": _value,
    "orValue": _or_value,
}
_CEL_MODULE = "k8s_cel"  # the name the transpiled code uses to reach _CEL_FUNCTIONS
for _name, _function in _CEL_FUNCTIONS.items():
    _function.__module__ = _CEL_MODULE
    _function.__qualname__ = _name
_CEL_NAMESPACE = {
    **celpy.evaluation.result.__globals__,
    _CEL_MODULE: SimpleNamespace(**_CEL_FUNCTIONS),
}
_CEL_ENVIRONMENT = celpy.Environment(runner_class=celpy.CompiledRunner)
_HAS_AS_PYTHON_BOOL = re.compile(
    r"not isinstance\((celpy\.evaluation\.result\(activation, ex_\d+_h\)), CELEvalError\)"
)


# The escapes a CEL string or bytes literal may hold (cel-spec's ESCAPE); cel-python takes any.
_CEL_ESCAPE = re.compile(
    r"\\(?:[abfnrtv\"'`\\?]|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[0-3][0-7]{2})"
)


def _unknown_escape(literal: str) -> int | None:
    """Where in a STRING_LIT or BYTES_LIT token the first escape CEL does not know starts (a
    raw literal has none); None when there is none."""
    prefix = len(literal) - len(literal.lstrip("bB"))
    if literal[prefix : prefix + 1] in ("r", "R"):
        return None
    start = literal.find("\\")
    while start != -1:
        escape = _CEL_ESCAPE.match(literal, start)
        if escape is None:
            return start
        start = literal.find("\\", escape.end())
    return None


def _check_escapes(ast: Any) -> None:
    """Refuse what cel-go's lexer refuses and cel-python lets through: `'\\s'` and the like."""
    literals = ast.scan_values(lambda v: getattr(v, "type", "") in ("STRING_LIT", "BYTES_LIT"))
    for token in literals:
        offset = _unknown_escape(str(token))
        if offset is not None:
            where = f"<input>:{token.line}:{token.column}"
            bad = str(token)[: offset + 2]
            raise CelError(f"ERROR: {where}: Syntax error: token recognition error at: '{bad}'")


class CelProgram:
    """One CEL expression, compiled once and evaluated many times."""

    def __init__(self, source: str) -> None:
        try:
            ast = _CEL_ENVIRONMENT.compile(source)
            runner = celpy.CompiledRunner(_CEL_ENVIRONMENT, ast, dict(_CEL_FUNCTIONS))  # type: ignore[arg-type]
        except CELParseError as exc:
            first_line = str(exc.args[0]).splitlines()[0] if exc.args else source
            where = f"<input>:{exc.line or 1}:{exc.column or 1}"
            raise CelError(f"ERROR: {where}: Syntax error: {first_line!r}") from None
        except Exception as exc:  # cel-python raises assorted errors for unsupported syntax
            raise CelError(f"ERROR: <input>: unsupported expression: {exc}") from None
        _check_escapes(ast)
        self.source = source
        self.identifiers = {
            str(token) for token in ast.scan_values(lambda v: getattr(v, "type", "") == "IDENT")
        }
        text = _HAS_AS_PYTHON_BOOL.sub(
            r"celpy.celtypes.BoolType(not isinstance(\1, CELEvalError))", runner.tp.source_text
        )
        self._code = compile(text, "<cel>", "exec")
        self._activation = runner.tp.base_activation
        self._namespace = dict(_CEL_NAMESPACE)

    def evaluate(self, variables: dict[str, Any]) -> Any:
        activation = self._activation.clone()
        activation.identifiers.load_values(variables)
        self._namespace["base_activation"] = activation
        try:
            exec(self._code, self._namespace)
        except Exception as exc:  # anything the transpiled code raises is the rule's failure
            raise CelError(_describe_cel_error(exc)) from None
        value = self._namespace.pop("CEL")
        if isinstance(value, Exception):
            raise CelError(_describe_cel_error(value))
        return value


def _describe_cel_error(exc: BaseException) -> str:
    """cel-python nests the cause in `args`; dig out the most specific words."""
    args = exc.args
    while len(args) >= 3 and isinstance(args[2], tuple) and args[1] is CELEvalError:
        args = args[2]
    if len(args) >= 3 and isinstance(args[2], tuple) and args[2]:
        if args[1] is KeyError:
            return f"no such key: {args[2][0]}"
        return str(args[2][0])
    if isinstance(exc, KeyError):
        return f"no such key: {args[0]}"
    return str(args[0]) if args else type(exc).__name__


# --------------------------------------------------------------------------------------------
# Field errors, worded as k8s.io/apimachinery/pkg/util/validation/field does
# --------------------------------------------------------------------------------------------


def _go_value(value: Any) -> str:
    """A bad value as Go's field.Error prints it (%q for strings, %v for numbers)."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return _go_number(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _go_number(number: float) -> str:
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    return str(number)


def _required(path: str, detail: str = "") -> Cause:
    return Cause(
        path, f"Required value: {detail}" if detail else "Required value", "FieldValueRequired"
    )


def _forbidden(path: str, detail: str) -> Cause:
    return Cause(path, f"Forbidden: {detail}", "FieldValueForbidden")


def _invalid(path: str, value: Any, detail: str, reason: str = "FieldValueInvalid") -> Cause:
    return Cause(path, f"Invalid value: {_go_value(value)}: {detail}", reason)


def _not_supported(path: str, value: Any, allowed: list[Any]) -> Cause:
    quoted = ", ".join(
        json.dumps(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
        for v in allowed
    )
    return Cause(
        path,
        f"Unsupported value: {_go_value(value)}: supported values: {quoted}",
        "FieldValueNotSupported",
    )


def _duplicate(path: str, value: Any) -> Cause:
    return Cause(path, f"Duplicate value: {_go_value(value)}", "FieldValueDuplicate")


def _go_map(keys: dict[str, Any]) -> str:
    """A list-map key as Go prints `map[string]interface {}` with %#v."""
    inner = ", ".join(f"{json.dumps(k)}:{_go_value(v)}" for k, v in sorted(keys.items()))
    return f"map[string]interface {{}}{{{inner}}}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --------------------------------------------------------------------------------------------
# The compiled schema
# --------------------------------------------------------------------------------------------

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_TYPE_ERROR_REASONS = frozenset({"FieldValueTypeInvalid", "FieldValueNotSupported"})
_RULE_REASONS = {
    "FieldValueInvalid",
    "FieldValueForbidden",
    "FieldValueRequired",
    "FieldValueDuplicate",
}
_MISSING: Any = object()


@dataclass
class _Rule:
    program: CelProgram
    message: str
    message_expression: CelProgram | None
    field_path: str
    reason: str
    transition: bool
    optional_old_self: bool


@dataclass
class _Node:
    """One schema node with everything admit() needs precomputed."""

    type: str = ""
    nullable: bool = False
    int_or_string: bool = False
    preserve_unknown: bool = False
    embedded: bool = False
    properties: dict[str, _Node] = field(default_factory=dict)
    additional: _Node | bool | None = None
    items: _Node | None = None
    required: tuple[str, ...] = ()
    enum: list[Any] | None = None
    has_default: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    multiple_of: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    pattern_text: str = ""
    min_items: int | None = None
    max_items: int | None = None
    unique_items: bool = False
    min_properties: int | None = None
    max_properties: int | None = None
    format: str = ""
    list_type: str = ""
    list_map_keys: tuple[str, ...] = ()
    all_of: list[_Node] = field(default_factory=list)
    any_of: list[_Node] = field(default_factory=list)
    one_of: list[_Node] = field(default_factory=list)
    not_: _Node | None = None
    rules: list[_Rule] = field(default_factory=list)
    rules_below: bool = False  # this node or a descendant carries CEL rules

    def child(self, key: str) -> _Node | None:
        found = self.properties.get(key)
        if found is not None:
            return found
        return self.additional if isinstance(self.additional, _Node) else None


def _compile_rules(raw: list[dict[str, Any]]) -> list[_Rule]:
    rules = []
    for entry in raw:
        program = CelProgram(entry["rule"])
        message_expression = entry.get("messageExpression")
        rules.append(
            _Rule(
                program=program,
                message=entry.get("message") or "",
                message_expression=CelProgram(message_expression) if message_expression else None,
                field_path=entry.get("fieldPath") or "",
                reason=entry.get("reason") or "FieldValueInvalid",
                transition="oldSelf" in program.identifiers,
                optional_old_self=bool(entry.get("optionalOldSelf")),
            )
        )
    return rules


def _compile(schema: dict[str, Any]) -> _Node:
    node = _Node(
        type=schema.get("type") or "",
        nullable=bool(schema.get("nullable")),
        int_or_string=bool(schema.get("x-kubernetes-int-or-string")),
        preserve_unknown=bool(schema.get("x-kubernetes-preserve-unknown-fields")),
        embedded=bool(schema.get("x-kubernetes-embedded-resource")),
        required=tuple(schema.get("required") or ()),
        enum=schema.get("enum"),
        has_default="default" in schema,
        default=schema.get("default"),
        minimum=schema.get("minimum"),
        maximum=schema.get("maximum"),
        exclusive_minimum=bool(schema.get("exclusiveMinimum")),
        exclusive_maximum=bool(schema.get("exclusiveMaximum")),
        multiple_of=schema.get("multipleOf"),
        min_length=schema.get("minLength"),
        max_length=schema.get("maxLength"),
        pattern=re.compile(schema["pattern"]) if schema.get("pattern") else None,
        pattern_text=schema.get("pattern") or "",
        min_items=schema.get("minItems"),
        max_items=schema.get("maxItems"),
        unique_items=bool(schema.get("uniqueItems")),
        min_properties=schema.get("minProperties"),
        max_properties=schema.get("maxProperties"),
        format=schema.get("format") or "",
        list_type=schema.get("x-kubernetes-list-type") or "",
        list_map_keys=tuple(schema.get("x-kubernetes-list-map-keys") or ()),
        rules=_compile_rules(schema.get("x-kubernetes-validations") or []),
    )
    node.properties = {k: _compile(v) for k, v in (schema.get("properties") or {}).items()}
    additional = schema.get("additionalProperties")
    node.additional = _compile(additional) if isinstance(additional, dict) else additional
    if isinstance(schema.get("items"), dict):
        node.items = _compile(schema["items"])
    node.all_of = [_compile(s) for s in schema.get("allOf") or ()]
    node.any_of = [_compile(s) for s in schema.get("anyOf") or ()]
    node.one_of = [_compile(s) for s in schema.get("oneOf") or ()]
    if isinstance(schema.get("not"), dict):
        node.not_ = _compile(schema["not"])
    children = [*node.properties.values(), node.items, node.additional]
    node.rules_below = bool(node.rules) or any(
        isinstance(c, _Node) and c.rules_below for c in children
    )
    return node


# --------------------------------------------------------------------------------------------
# Pruning and defaulting (one pass that builds the new object)
# --------------------------------------------------------------------------------------------


def _prune_object_meta(value: Any, path: str, dropped: list[str]) -> Any:
    if not isinstance(value, dict):
        return copy.deepcopy(value)
    kept = {}
    for key, item in value.items():
        if key in OBJECT_META_FIELDS:
            kept[key] = copy.deepcopy(item)
        else:
            dropped.append(_child(path, key))
    return kept


def _shape(value: Any, node: _Node | None, path: str, dropped: list[str], root: bool) -> Any:
    """A pruned, defaulted deep copy of `value` (`node` None: keep as is, unknown schema)."""
    if node is None:
        return copy.deepcopy(value)
    if isinstance(value, list):
        return [
            _shape(item, node.items, f"{path}[{i}]", dropped, False) for i, item in enumerate(value)
        ]
    if not isinstance(value, dict):
        return value
    resource = root or node.embedded
    shaped: dict[str, Any] = {}
    for key, item in value.items():
        child_path = _child(path, key)
        if resource and key == "metadata":
            shaped[key] = _prune_object_meta(item, child_path, dropped)
            continue
        child = node.child(key)
        if child is None:
            if node.preserve_unknown or (resource and key in ("apiVersion", "kind")):
                shaped[key] = copy.deepcopy(item)
            else:
                dropped.append(child_path)
            continue
        if item is None and not child.nullable:
            # kube-apiserver drops nulls of non-nullable fields, then defaults them
            continue
        shaped[key] = _shape(item, child, child_path, dropped, False)
    for key, child in node.properties.items():
        if child.has_default and key not in shaped:
            shaped[key] = _shape(child.default, child, _child(path, key), [], False)
    return shaped


# --------------------------------------------------------------------------------------------
# Schema validation (the OpenAPI v3 structural subset, kube-openapi wording)
# --------------------------------------------------------------------------------------------


def _type_error(path: str, value: Any, expected: str) -> Cause:
    actual = _json_type(value)
    detail = f'{path} in body must be of type {expected}: "{actual}"'
    return _invalid(path, actual, detail, "FieldValueTypeInvalid")


def _type_matches(value: Any, node: _Node) -> bool:
    if node.int_or_string:
        return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)
    expected = node.type
    if not expected:
        return True
    actual = _json_type(value)
    return actual == expected or (expected == "number" and actual == "integer")


def _check_format(value: Any, node: _Node, path: str) -> Cause | None:
    fmt = node.format
    ok = True
    if fmt in ("int32", "int64") and isinstance(value, int):
        bits = 31 if fmt == "int32" else 63
        ok = -(2**bits) <= value < 2**bits
    elif not isinstance(value, str):
        return None
    elif fmt == "date-time":
        ok = _is_date_time(value)
    elif fmt == "date":
        ok = re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None
    elif fmt == "uuid":
        ok = re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", value) is not None
    elif fmt == "byte":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            ok = False
    if ok:
        return None
    return _invalid(
        path,
        value,
        f"{path} in body must be of type {fmt}: {_go_value(value)}",
        "FieldValueTypeInvalid",
    )


def _is_date_time(text: str) -> bool:
    if not re.fullmatch(
        r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", text
    ):
        return False
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _check_number(value: float, node: _Node, path: str, causes: list[Cause]) -> None:
    if node.minimum is not None:
        low = node.minimum
        if value < low or (node.exclusive_minimum and value == low):
            words = "greater than" if node.exclusive_minimum else "greater than or equal to"
            causes.append(
                _invalid(path, value, f"{path} in body should be {words} {_go_number(low)}")
            )
    if node.maximum is not None:
        high = node.maximum
        if value > high or (node.exclusive_maximum and value == high):
            words = "less than" if node.exclusive_maximum else "less than or equal to"
            causes.append(
                _invalid(path, value, f"{path} in body should be {words} {_go_number(high)}")
            )
    if node.multiple_of and not math.isclose(
        value / node.multiple_of, round(value / node.multiple_of)
    ):
        causes.append(
            _invalid(
                path,
                value,
                f"{path} in body should be a multiple of {_go_number(node.multiple_of)}",
            )
        )


def _check_string(value: str, node: _Node, path: str, causes: list[Cause]) -> None:
    if node.max_length is not None and len(value) > node.max_length:
        causes.append(
            Cause(path, f"Too long: may not be longer than {node.max_length}", "FieldValueTooLong")
        )
    if node.min_length is not None and len(value) < node.min_length:
        detail = f"{path} in body should be at least {node.min_length} chars long"
        causes.append(_invalid(path, value, detail))
    if node.pattern is not None and node.pattern.search(value) is None:
        causes.append(_invalid(path, value, f"{path} in body should match '{node.pattern_text}'"))


def _check_list(value: list[Any], node: _Node, path: str, causes: list[Cause]) -> None:
    if node.max_items is not None and len(value) > node.max_items:
        causes.append(
            Cause(
                path,
                f"Too many: {len(value)}: must have at most {node.max_items} items",
                "FieldValueTooMany",
            )
        )
    if node.min_items is not None and len(value) < node.min_items:
        detail = f"{path} in body should have at least {node.min_items} items"
        causes.append(_invalid(path, len(value), detail))
    if node.unique_items and len({json.dumps(v, sort_keys=True) for v in value}) < len(value):
        causes.append(_invalid(path, "", f"{path} in body shouldn't contain duplicates"))
    if node.list_type == "set":
        seen: set[str] = set()
        for i, item in enumerate(value):
            marker = json.dumps(item, sort_keys=True)
            if marker in seen:
                causes.append(_duplicate(f"{path}[{i}]", item))
            seen.add(marker)
    elif node.list_type == "map" and node.list_map_keys:
        seen_keys: set[str] = set()
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            keys = {k: item.get(k) for k in node.list_map_keys if k in item}
            marker = json.dumps(keys, sort_keys=True)
            if marker in seen_keys:
                causes.append(
                    Cause(
                        f"{path}[{i}]", f"Duplicate value: {_go_map(keys)}", "FieldValueDuplicate"
                    )
                )
            seen_keys.add(marker)


def _check_object(value: dict[str, Any], node: _Node, path: str, causes: list[Cause]) -> None:
    for name in node.required:
        if name not in value:
            causes.append(_required(_child(path, name)))
    if node.max_properties is not None and len(value) > node.max_properties:
        causes.append(
            Cause(
                path,
                f"Too many: {len(value)}: must have at most {node.max_properties} items",
                "FieldValueTooMany",
            )
        )
    if node.min_properties is not None and len(value) < node.min_properties:
        detail = f"{path} in body should have at least {node.min_properties} properties"
        causes.append(_invalid(path, len(value), detail))
    if node.embedded:
        for name in ("apiVersion", "kind"):
            if not value.get(name):
                causes.append(_required(_child(path, name), "must not be empty"))


def _check_combinators(value: Any, node: _Node, path: str, causes: list[Cause]) -> None:
    for sub in node.all_of:
        _validate(value, sub, path, causes, False)
    if node.any_of and not any(_passes(value, sub, path) for sub in node.any_of):
        causes.append(_invalid(path, value, f'"{path}" must validate at least one schema (anyOf)'))
    if node.one_of and sum(_passes(value, sub, path) for sub in node.one_of) != 1:
        causes.append(
            _invalid(path, value, f'"{path}" must validate one and only one schema (oneOf)')
        )
    if node.not_ is not None and _passes(value, node.not_, path):
        causes.append(_invalid(path, value, f'"{path}" must not validate the schema (not)'))


def _passes(value: Any, node: _Node, path: str) -> bool:
    trial: list[Cause] = []
    _validate(value, node, path, trial, False)
    return not trial


def _validate_by_type(value: Any, node: _Node, path: str, causes: list[Cause], root: bool) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        _check_number(value, node, path, causes)
    elif isinstance(value, str):
        _check_string(value, node, path, causes)
    elif isinstance(value, list):
        _check_list(value, node, path, causes)
        if node.items is not None:
            for i, item in enumerate(value):
                _validate(item, node.items, f"{path}[{i}]", causes, False)
    elif isinstance(value, dict):
        _check_object(value, node, path, causes)
        resource = root or node.embedded
        for key, item in value.items():
            if resource and key in ("apiVersion", "kind"):
                continue
            child = node.child(key)
            if child is not None:
                _validate(item, child, _child(path, key), causes, False)


def _validate(value: Any, node: _Node, path: str, causes: list[Cause], root: bool) -> None:
    if value is None:
        if not node.nullable and (node.type or node.int_or_string):
            causes.append(_type_error(path, value, node.type or "integer,string"))
        return
    if not _type_matches(value, node):
        causes.append(_type_error(path, value, node.type or "integer,string"))
        return
    if node.enum is not None and value not in node.enum:
        causes.append(_not_supported(path, value, node.enum))
    if node.format:
        bad_format = _check_format(value, node, path)
        if bad_format is not None:
            causes.append(bad_format)
    _validate_by_type(value, node, path, causes, root)
    if node.all_of or node.any_of or node.one_of or node.not_ is not None:
        _check_combinators(value, node, path, causes)


# --------------------------------------------------------------------------------------------
# CEL rules over the object (and the correlated old object)
# --------------------------------------------------------------------------------------------


class _CelValues:
    """JSON values as CEL values, converted once per admit() even when many rules share them."""

    def __init__(self) -> None:
        self._cache: dict[int, Any] = {}

    def convert(self, value: Any, node: _Node | None) -> Any:
        if isinstance(value, dict):
            cached = self._cache.get(id(value))
            if cached is None:
                cached = celtypes.MapType()
                # dict.update skips MapType's per-item checks: keys are JSON strings, unique
                dict.update(
                    cached,
                    (
                        (_cel_string(k), self.convert(v, node.child(k) if node else None))
                        for k, v in value.items()
                    ),
                )
                self._cache[id(value)] = cached
            return cached
        if isinstance(value, list):
            cached = self._cache.get(id(value))
            if cached is None:
                item_node = node.items if node else None
                cached = celtypes.ListType([self.convert(v, item_node) for v in value])
                self._cache[id(value)] = cached
            return cached
        if isinstance(value, str):
            return _cel_string(value)
        if isinstance(value, bool):
            return celtypes.BoolType(value)
        if isinstance(value, int):
            number = node is not None and node.type == "number"
            return celtypes.DoubleType(value) if number else celtypes.IntType(value)
        if isinstance(value, float):
            return celtypes.DoubleType(value)
        return None


def _cel_string(text: str) -> celtypes.StringType:
    return str.__new__(celtypes.StringType, text)


def _rule_path(path: str, field_path: str) -> str:
    """`spec` + `.limits['cpu'].max` -> `spec.limits[cpu].max` (field.Path wording)."""
    if not field_path:
        return path or "<nil>"
    tail = re.sub(r"\[['\"]([^'\"]*)['\"]\]", r"[\1]", field_path).lstrip(".")
    if tail.startswith("["):
        return f"{path}{tail}"
    return f"{path}.{tail}" if path else tail


def _list_map_index(old: Any, node: _Node) -> dict[str, Any] | None:
    if node.list_type != "map" or not node.list_map_keys or not isinstance(old, list):
        return None
    return {
        json.dumps([item.get(k) for k in node.list_map_keys]): item
        for item in old
        if isinstance(item, dict)
    }


class _CelRun:
    def __init__(self, causes: list[Cause]) -> None:
        self.causes = causes
        self.values = _CelValues()

    def walk(self, value: Any, old: Any, node: _Node, path: str) -> None:
        if node.rules:
            self.rules(value, old, node, path)
        if isinstance(value, dict):
            for key, item in value.items():
                child = node.child(key)
                if child is None or not child.rules_below or item is None:
                    continue
                old_item = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
                separator = f"[{key}]" if key not in node.properties else ""
                child_path = f"{path}{separator}" if separator else _child(path, key)
                self.walk(item, old_item, child, child_path)
        elif isinstance(value, list) and node.items is not None and node.items.rules_below:
            old_by_key = _list_map_index(old, node)
            for i, item in enumerate(value):
                old_item = _MISSING
                if old_by_key is not None and isinstance(item, dict):
                    marker = json.dumps([item.get(k) for k in node.list_map_keys])
                    old_item = old_by_key.get(marker, _MISSING)
                self.walk(item, old_item, node.items, f"{path}[{i}]")

    def rules(self, value: Any, old: Any, node: _Node, path: str) -> None:
        variables: dict[str, Any] = {"self": self.values.convert(value, node)}
        for rule in node.rules:
            if rule.transition:
                if rule.optional_old_self:
                    old_value = None if old is _MISSING else self.values.convert(old, node)
                    variables["oldSelf"] = _Optional(old_value)
                elif old is _MISSING:
                    continue
                else:
                    variables["oldSelf"] = self.values.convert(old, node)
            self.check(rule, variables, node, path)

    def check(self, rule: _Rule, variables: dict[str, Any], node: _Node, path: str) -> None:
        shown = node.type or "object"
        try:
            outcome = rule.program.evaluate(variables)
        except CelError as exc:
            detail = f"{exc} evaluating rule: {rule.program.source}"
            self.causes.append(_invalid(path or "<nil>", shown, detail))
            return
        if not isinstance(outcome, celtypes.BoolType | bool):
            got = _json_type(outcome)
            detail = f"rule did not evaluate to a bool (got {got}): {rule.program.source}"
            self.causes.append(_invalid(path or "<nil>", shown, detail))
            return
        if outcome:
            return
        message = self.message(rule, variables)
        where = _rule_path(path, rule.field_path)
        if rule.reason == "FieldValueForbidden":
            self.causes.append(_forbidden(where, message))
        elif rule.reason == "FieldValueRequired":
            self.causes.append(_required(where, message))
        elif rule.reason == "FieldValueDuplicate":
            self.causes.append(_duplicate(where, shown))
        else:
            self.causes.append(_invalid(where, shown, message))

    @staticmethod
    def message(rule: _Rule, variables: dict[str, Any]) -> str:
        if rule.message_expression is not None:
            try:
                text = rule.message_expression.evaluate(variables)
            except CelError:
                text = None
            if isinstance(text, str) and text.strip() and "\n" not in text:
                return str(text)
        return rule.message or f"failed rule: {rule.program.source}"


# --------------------------------------------------------------------------------------------
# The public API
# --------------------------------------------------------------------------------------------

_BLOCKED_CEL = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


class SchemaValidator:
    """Admission of one CRD version's custom objects (see the module docstring)."""

    def __init__(self, kind: str, group: str, version: str, root: _Node) -> None:
        self.kind = kind
        self.group = group
        self.version = version
        self._root = root

    @classmethod
    def from_crd_version(cls, crd: dict[str, Any], version: dict[str, Any]) -> SchemaValidator:
        """Compile `version` (an entry of `crd.spec.versions`); raises CelError on a bad rule."""
        spec = crd.get("spec") or {}
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
        kind = (spec.get("names") or {}).get("kind", "")
        return cls(kind, spec.get("group", ""), version.get("name", ""), _compile(schema))

    def admit(
        self, obj: dict[str, Any], old: dict[str, Any] | None, *, strict: bool = False
    ) -> dict[str, Any]:
        """Return a pruned, defaulted copy of `obj`, or raise 422 Invalid listing every error.

        `old` is the stored object on update (None on create); transition rules need it.
        `strict` is `fieldValidation=Strict`: fields pruning would drop are a 400 instead.
        """
        dropped: list[str] = []
        admitted: dict[str, Any] = _shape(obj, self._root, "", dropped, root=True)
        name = (obj.get("metadata") or {}).get("name") or ""
        if strict and dropped:
            listed = ", ".join(f'unknown field "{path}"' for path in dropped)
            raise bad_request(
                f'{self.kind} in version "{self.version}" cannot be handled as a {self.kind}: '
                f"strict decoding error: {listed}"
            )
        causes: list[Cause] = []
        _validate(admitted, self._root, "", causes, root=True)
        if self._root.rules_below:
            if any(c.reason in _TYPE_ERROR_REASONS for c in causes):
                causes.append(_invalid("<nil>", None, _BLOCKED_CEL))
            else:
                _CelRun(causes).walk(admitted, old if old is not None else _MISSING, self._root, "")
        if causes:
            raise invalid(self.kind, self.group, name, causes)
        return admitted

    def unknown_fields(self, obj: dict[str, Any]) -> list[str]:
        """Paths pruning would drop (for `fieldValidation=Warn` warnings)."""
        dropped: list[str] = []
        _shape(obj, self._root, "", dropped, root=True)
        return dropped


# --------------------------------------------------------------------------------------------
# CustomResourceDefinition validation
# --------------------------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_KIND = re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SCHEMA_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_PRINTER_TYPES = ["boolean", "date", "integer", "number", "string"]
_PRINTER_FORMATS = ["int32", "int64", "float", "double", "byte", "date", "date-time", "password"]
_VALUE_VALIDATION_FORBIDDEN = (
    "type",
    "default",
    "nullable",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-validations",
)
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)


def validate_crd(crd: dict[str, Any]) -> list[Cause]:
    """Every reason kube-apiserver would refuse this CustomResourceDefinition (empty: fine)."""
    causes: list[Cause] = []
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [_required("spec")]
    group = spec.get("group") or ""
    names: dict[str, Any] = spec["names"] if isinstance(spec.get("names"), dict) else {}
    causes += _check_group(group)
    causes += _check_names(names)
    name = (crd.get("metadata") or {}).get("name") or ""
    plural = names.get("plural") or ""
    if name != f"{plural}.{group}":
        causes.append(_invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    scope = spec.get("scope") or ""
    if not scope:
        causes.append(_required("spec.scope"))
    elif scope not in ("Namespaced", "Cluster"):
        causes.append(_not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))
    causes += _check_versions(spec.get("versions"))
    return causes


def _check_group(group: str) -> list[Cause]:
    if not group:
        return [_required("spec.group")]
    if "." not in group:
        return [_invalid("spec.group", group, "should be a domain with at least one dot")]
    if not _DNS_SUBDOMAIN.fullmatch(group) or len(group) > 253:
        detail = (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.'"
        )
        return [_invalid("spec.group", group, detail)]
    return []


def _check_names(names: dict[str, Any]) -> list[Cause]:
    causes = []
    for key in ("plural", "singular"):
        value = names.get(key) or ""
        path = f"spec.names.{key}"
        if not value and key == "plural":
            causes.append(_required(path))
        elif value and not _DNS_LABEL.fullmatch(value):
            causes.append(_invalid(path, value, _LABEL_MESSAGE))
    for key in ("kind", "listKind"):
        value = names.get(key) or ""
        path = f"spec.names.{key}"
        if not value:
            causes.append(_required(path))
        elif not _KIND.fullmatch(value):
            detail = "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?"
            causes.append(_invalid(path, value, detail))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        causes.append(
            _invalid(
                "spec.names.listKind", names["listKind"], "kind and listKind cannot be the same"
            )
        )
    for i, short in enumerate(names.get("shortNames") or []):
        if not _DNS_LABEL.fullmatch(str(short)):
            causes.append(_invalid(f"spec.names.shortNames[{i}]", short, _LABEL_MESSAGE))
    return causes


def _check_versions(versions: Any) -> list[Cause]:
    if not isinstance(versions, list) or not versions:
        return [_required("spec.versions", "must have at least one version")]
    causes = []
    storage = sum(1 for v in versions if isinstance(v, dict) and v.get("storage"))
    if storage != 1:
        causes.append(
            _invalid(
                "spec.versions",
                f"{storage} storage versions",
                "must have exactly one version marked as storage version",
            )
        )
    seen: set[str] = set()
    for i, version in enumerate(versions):
        path = f"spec.versions[{i}]"
        if not isinstance(version, dict):
            causes.append(_type_error(path, version, "object"))
            continue
        name = version.get("name") or ""
        if not name:
            causes.append(_required(f"{path}.name"))
        elif not _DNS_1035.fullmatch(name):
            causes.append(
                _invalid(
                    f"{path}.name",
                    name,
                    "a DNS-1035 label must consist of lower case alphanumeric characters or "
                    "'-', start with an alphabetic character, and end with an alphanumeric "
                    "character",
                )
            )
        elif name in seen:
            causes.append(_duplicate(f"{path}.name", name))
        seen.add(name)
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        schema_path = f"{path}.schema.openAPIV3Schema"
        if schema is None:
            if version.get("served", True):
                causes.append(_required(schema_path, "schemas are required"))
        else:
            causes += _check_schema(schema, schema_path, "root")
        causes += _check_subresources(version.get("subresources"), schema, f"{path}.subresources")
        causes += _check_printer_columns(
            version.get("additionalPrinterColumns"), f"{path}.additionalPrinterColumns"
        )
    return causes


def _check_schema(schema: Any, path: str, level: str) -> list[Cause]:
    """Structural-schema rules (level: root, field, item, value = inside anyOf/allOf/oneOf/not)."""
    if not isinstance(schema, dict):
        return [_type_error(path, schema, "object")]
    causes: list[Cause] = []
    if "$ref" in schema:
        causes.append(_forbidden(f"{path}.$ref", "$ref is not supported"))
    if level == "value":
        for key in _VALUE_VALIDATION_FORBIDDEN:
            if key in schema:
                causes.append(_forbidden(f"{path}.{key}", "must be empty to be structural"))
    else:
        causes += _check_node_type(schema, path, level)
    if schema.get("uniqueItems") is True:
        causes.append(
            _forbidden(
                f"{path}.uniqueItems",
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    if schema.get("additionalProperties") is False:
        causes.append(
            _forbidden(
                f"{path}.additionalProperties", "additionalProperties cannot be set to false"
            )
        )
    elif isinstance(schema.get("additionalProperties"), dict):
        if schema.get("properties"):
            causes.append(
                _forbidden(
                    f"{path}.additionalProperties",
                    "additionalProperties and properties are mutual exclusive",
                )
            )
        causes += _check_schema(
            schema["additionalProperties"], f"{path}.additionalProperties", _sub(level, "field")
        )
    causes += _check_children(schema, path, level)
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except re.error as exc:
            causes.append(
                _invalid(
                    f"{path}.pattern",
                    schema["pattern"],
                    f"must be a valid regular expression, but isn't: {exc}",
                )
            )
    causes += _check_list_type(schema, path)
    causes += _check_rules(schema, path)
    return causes


def _check_children(schema: dict[str, Any], path: str, level: str) -> list[Cause]:
    causes: list[Cause] = []
    for key, child in (schema.get("properties") or {}).items():
        causes += _check_schema(child, f"{path}.properties[{key}]", _sub(level, "field"))
    if "items" in schema:
        causes += _check_schema(schema["items"], f"{path}.items", _sub(level, "item"))
    for key in ("allOf", "anyOf", "oneOf"):
        if key == "anyOf" and _is_int_or_string_any_of(schema):
            continue
        for i, child in enumerate(schema.get(key) or []):
            causes += _check_schema(child, f"{path}.{key}[{i}]", "value")
    if "not" in schema:
        causes += _check_schema(schema["not"], f"{path}.not", "value")
    return causes


def _is_int_or_string_any_of(schema: dict[str, Any]) -> bool:
    """kube-apiserver lets an int-or-string node spell out its two types in `anyOf`."""
    return bool(schema.get("x-kubernetes-int-or-string")) and schema.get("anyOf") == [
        {"type": "integer"},
        {"type": "string"},
    ]


def _sub(level: str, child_level: str) -> str:
    return "value" if level == "value" else child_level


def _check_node_type(schema: dict[str, Any], path: str, level: str) -> list[Cause]:
    causes: list[Cause] = []
    kind = schema.get("type")
    special = schema.get("x-kubernetes-int-or-string") or schema.get(
        "x-kubernetes-preserve-unknown-fields"
    )
    if not kind and not special:
        where = {
            "root": "at the root",
            "field": "for specified object fields",
            "item": "for specified array items",
        }
        causes.append(_required(f"{path}.type", f"must not be empty {where[level]}"))
    elif kind and kind not in _SCHEMA_TYPES:
        causes.append(_not_supported(f"{path}.type", kind, list(_SCHEMA_TYPES)))
    if level == "root":
        if kind and kind != "object":
            causes.append(_invalid(f"{path}.type", kind, "must be object at the root"))
        if "default" in schema:
            causes.append(_forbidden(f"{path}.default", "must not be set at the root"))
    if kind == "array" and not isinstance(schema.get("items"), dict):
        causes.append(_required(f"{path}.items", "must be specified"))
    if schema.get("x-kubernetes-embedded-resource") and kind != "object":
        causes.append(
            _invalid(
                f"{path}.type",
                kind or "",
                "must be object if x-kubernetes-embedded-resource is true",
            )
        )
    if schema.get("x-kubernetes-int-or-string") and kind:
        causes.append(
            _invalid(f"{path}.type", kind, "must be empty if x-kubernetes-int-or-string is true")
        )
    return causes


def _check_list_type(schema: dict[str, Any], path: str) -> list[Cause]:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type is None:
        return []
    where = f"{path}.x-kubernetes-list-type"
    if list_type not in ("atomic", "set", "map"):
        return [_not_supported(where, list_type, ["atomic", "set", "map"])]
    if schema.get("type") != "array":
        return [_invalid(where, list_type, "must only be used if type is array")]
    items: dict[str, Any] = schema["items"] if isinstance(schema.get("items"), dict) else {}
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if list_type == "map":
        if not keys:
            return [
                _required(
                    f"{path}.x-kubernetes-list-map-keys",
                    "must not be empty if x-kubernetes-list-type is map",
                )
            ]
        if items.get("type") != "object":
            return [
                _invalid(
                    f"{path}.items.type",
                    items.get("type") or "",
                    "must be object if parent array's x-kubernetes-list-type is map",
                )
            ]
        properties = items.get("properties") or {}
        required = set(items.get("required") or [])
        return [
            _required(
                f"{path}.items.properties[{key}]",
                "entries with x-kubernetes-list-type=map must have a default or be required",
            )
            for key in keys
            if key not in properties or (key not in required and "default" not in properties[key])
        ]
    if list_type == "set" and items.get("type") == "object":
        return [
            _invalid(
                f"{path}.items.type",
                "object",
                "must be a scalar type if parent array's x-kubernetes-list-type is set",
            )
        ]
    return []


def _check_rules(schema: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, entry in enumerate(schema.get("x-kubernetes-validations") or []):
        where = f"{path}.x-kubernetes-validations[{i}]"
        if not isinstance(entry, dict) or not entry.get("rule"):
            causes.append(_required(f"{where}.rule"))
            continue
        for key in ("rule", "messageExpression"):
            if entry.get(key):
                try:
                    CelProgram(entry[key])
                except CelError as exc:
                    causes.append(
                        _invalid(f"{where}.{key}", entry[key], f"compilation failed: {exc}")
                    )
                    continue
                undefined = _undefined_fields(schema, entry[key])
                if undefined:
                    errors = "; ".join(f"ERROR: undefined field '{name}'" for name in undefined)
                    causes.append(
                        _invalid(f"{where}.{key}", entry[key], f"compilation failed: {errors}")
                    )
        reason = entry.get("reason")
        if reason is not None and reason not in _RULE_REASONS:
            causes.append(_not_supported(f"{where}.reason", reason, sorted(_RULE_REASONS)))
        field_path = entry.get("fieldPath")
        if field_path and not re.fullmatch(
            r"(\.[A-Za-z_][A-Za-z0-9_-]*|\[('[^']*'|\"[^\"]*\"|\d+)\])+", field_path
        ):
            causes.append(
                _invalid(f"{where}.fieldPath", field_path, "fieldPath must be a valid path")
            )
        message = entry.get("message")
        if message is not None and (not str(message).strip() or "\n" in str(message)):
            causes.append(
                _invalid(
                    f"{where}.message",
                    message,
                    "message must be non-empty and may not contain line breaks",
                )
            )
    return causes


_FIELD_SELECTION = re.compile(r"\bself\.([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")


def _undefined_fields(schema: dict[str, Any], rule: str) -> list[str]:
    """The fields of ``self`` a rule selects that its CEL type does not declare, as
    kube-apiserver compiles rules against the schema: a property without a type (only
    ``x-kubernetes-preserve-unknown-fields``) is not part of that type, nor is a property the
    object does not list (unless it keeps unknown fields)."""
    properties = schema.get("properties")
    if schema.get("type") != "object" or not properties:
        return []
    keeps_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True
    undefined = []
    for name in dict.fromkeys(_FIELD_SELECTION.findall(rule)):
        found = properties.get(name)
        if found is None:
            if not keeps_unknown:
                undefined.append(name)
        elif "type" not in found and not found.get("x-kubernetes-int-or-string"):
            undefined.append(name)
    return undefined


def _schema_at(schema: Any, json_path: str) -> dict[str, Any] | None:
    node = schema
    for part in json_path.strip(".").split("."):
        if not isinstance(node, dict):
            return None
        node = (node.get("properties") or {}).get(part)
    return node if isinstance(node, dict) else None


def _check_subresources(subresources: Any, schema: Any, path: str) -> list[Cause]:
    if not isinstance(subresources, dict) or not isinstance(subresources.get("scale"), dict):
        return []
    scale = subresources["scale"]
    causes = []
    for key, prefix, mandatory in (
        ("specReplicasPath", ".spec.", True),
        ("statusReplicasPath", ".status.", True),
        ("labelSelectorPath", ".status.", False),
    ):
        where = f"{path}.scale.{key}"
        value = scale.get(key)
        if not value:
            if mandatory:
                causes.append(_required(where))
            continue
        if not re.fullmatch(r"(\.[A-Za-z_][A-Za-z0-9_]*)+", value) or not value.startswith(prefix):
            causes.append(
                _invalid(where, value, f"should be a json path under {prefix.rstrip('.')}")
            )
            continue
        target = _schema_at(schema, value) if schema is not None else None
        if (
            schema is not None
            and key != "labelSelectorPath"
            and (target is None or target.get("type") != "integer")
        ):
            causes.append(
                _invalid(where, value, "should be a json path to an integer field in the schema")
            )
    return causes


def _check_printer_columns(columns: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, column in enumerate(columns or []):
        where = f"{path}[{i}]"
        if not isinstance(column, dict):
            causes.append(_type_error(where, column, "object"))
            continue
        if not column.get("name"):
            causes.append(_required(f"{where}.name"))
        kind = column.get("type")
        if not kind:
            causes.append(_required(f"{where}.type"))
        elif kind not in _PRINTER_TYPES:
            causes.append(_not_supported(f"{where}.type", kind, _PRINTER_TYPES))
        fmt = column.get("format")
        if fmt and fmt not in _PRINTER_FORMATS:
            causes.append(_not_supported(f"{where}.format", fmt, _PRINTER_FORMATS))
        json_path = column.get("jsonPath")
        if not json_path:
            causes.append(_required(f"{where}.jsonPath"))
        elif not str(json_path).startswith("."):
            causes.append(
                _invalid(
                    f"{where}.jsonPath", json_path, "must be a simple json path starting with ."
                )
            )
        if (column.get("priority") or 0) < 0:
            causes.append(
                _invalid(
                    f"{where}.priority", column["priority"], "must be greater than or equal to 0"
                )
            )
    return causes


__all__ = ["CelError", "SchemaValidator", "validate_crd"]
