"""Label and field selectors, parsed once and matched against plain object dicts.

Label syntax is kube's: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`,
`a>1`, `a<1`; commas AND the requirements. Field selectors accept `=`, `==` and `!=` on the
fields kube-apiserver supports for the kind; anything else is a 400 naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ecs_sandbox.errors import ApiError, bad_request

Predicate = Callable[[dict[str, Any]], bool]

_KEY = re.compile(
    r"^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_TOKEN = re.compile(r"\s*(!=|==|=|>|<|\(|\)|,|!|[^\s!=<>(),]+)")


def _always(_obj: dict[str, Any]) -> bool:
    return True


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def _parse_error(selector: str, why: str) -> ApiError:
    return bad_request(f'unable to parse requirement: invalid label selector "{selector}": {why}')


def _tokens(selector: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = selector.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:  # only whitespace remains
            break
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _check_key(selector: str, key: str) -> str:
    if len(key.rsplit("/", 1)[-1]) > 63 or not _KEY.match(key):
        raise _parse_error(selector, f'"{key}" is not a valid label key')
    return key


def _check_value(selector: str, value: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise _parse_error(selector, f'"{value}" is not a valid label value')
    return value


class _Parser:
    def __init__(self, selector: str) -> None:
        self.selector = selector
        self.tokens = _tokens(selector)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise _parse_error(self.selector, "unexpected end of selector")
        self.pos += 1
        return token

    def parse(self) -> list[Predicate]:
        requirements: list[Predicate] = []
        while self.peek() is not None:
            requirements.append(self.requirement())
            token = self.peek()
            if token is None:
                break
            if token != ",":
                raise _parse_error(self.selector, f"found '{token}', expected: ','")
            self.take()
            if self.peek() is None:
                raise _parse_error(self.selector, "found trailing ','")
        return requirements

    def requirement(self) -> Predicate:
        token = self.take()
        if token == "!":
            key = _check_key(self.selector, self.take())
            return lambda obj: key not in _labels(obj)
        key = _check_key(self.selector, token)
        op = self.peek()
        if op is None or op == ",":
            return lambda obj: key in _labels(obj)
        self.take()
        if op in ("=", "=="):
            value = _check_value(self.selector, self.value())
            return lambda obj: _labels(obj).get(key) == value
        if op == "!=":
            value = _check_value(self.selector, self.value())
            return lambda obj: _labels(obj).get(key) != value
        if op in ("in", "notin"):
            values = self.value_set()
            if op == "in":
                return lambda obj: _labels(obj).get(key) in values
            return lambda obj: _labels(obj).get(key) not in values
        if op in (">", "<"):
            return self.numeric(key, op)
        raise _parse_error(self.selector, f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")

    def value(self) -> str:
        token = self.peek()
        if token is None or token == ",":
            return ""
        if token in ("(", ")", "!", "=", "==", "!=", "<", ">"):
            raise _parse_error(self.selector, f"found '{token}', expected: identifier")
        return self.take()

    def value_set(self) -> frozenset[str]:
        if self.take() != "(":
            raise _parse_error(self.selector, "expected: '(' after in/notin")
        values: set[str] = set()
        while True:
            token = self.take()
            if token == ")" and not values:
                raise _parse_error(
                    self.selector, "for 'in', 'notin' operators, values set can't be empty"
                )
            if token in (",", ")"):
                raise _parse_error(self.selector, f"found '{token}', expected: identifier")
            values.add(_check_value(self.selector, token))
            token = self.take()
            if token == ")":
                return frozenset(values)
            if token != ",":
                raise _parse_error(self.selector, f"found '{token}', expected: ',' or ')'")

    def numeric(self, key: str, op: str) -> Predicate:
        raw = self.take()
        try:
            bound = int(raw)
        except ValueError:
            raise _parse_error(
                self.selector, f"for 'gt', 'lt' operators, '{raw}' must be an integer"
            ) from None

        def matches(obj: dict[str, Any]) -> bool:
            try:
                actual = int(_labels(obj)[key])
            except (KeyError, ValueError):
                return False
            return actual > bound if op == ">" else actual < bound

        return matches


def _all_of(requirements: list[Predicate]) -> Predicate:
    if not requirements:
        return _always
    if len(requirements) == 1:
        return requirements[0]
    return lambda obj: all(requirement(obj) for requirement in requirements)


def parse_label_selector(selector: str | None) -> Predicate:
    """A predicate on objects; "" or None selects everything. 400 BadRequest on bad syntax."""
    if not selector or not selector.strip():
        return _always
    return _all_of(_Parser(selector).parse())


# Field selectors kube-apiserver supports beyond metadata.name/metadata.namespace, per kind.
_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    ("", "Event"): (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    ("events.k8s.io", "Event"): (
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "regarding.apiVersion",
        "regarding.resourceVersion",
        "regarding.fieldPath",
        "reason",
        "reportingController",
        "type",
    ),
    ("", "Node"): ("spec.unschedulable",),
    ("", "Namespace"): ("status.phase",),
    ("", "Secret"): ("type",),
    ("", "Service"): ("spec.clusterIP", "spec.type"),
}
# Event `source` is filtered by its component, as kube-apiserver does.
_ALIASES = {"source": "source.component"}


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in _ALIASES.get(path, path).split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def supported_fields(group: str, kind: str, selectable: tuple[str, ...] = ()) -> tuple[str, ...]:
    return ("metadata.name", "metadata.namespace", *_FIELDS.get((group, kind), ()), *selectable)


def parse_field_selector(
    selector: str | None, group: str, kind: str, selectable: tuple[str, ...] = ()
) -> Predicate:
    """A predicate for `fieldSelector`; `selectable` adds a CRD version's selectableFields."""
    if not selector or not selector.strip():
        return _always
    allowed = supported_fields(group, kind, selectable)
    requirements: list[Predicate] = []
    for term in selector.split(","):
        term = term.strip()
        for op in ("!=", "==", "="):
            if op in term:
                field, value = (part.strip() for part in term.split(op, 1))
                break
        else:
            raise bad_request(f'invalid field selector "{selector}": "{term}" has no operator')
        if field not in allowed:
            raise bad_request(f"field label not supported: {field}")
        requirements.append(_field_requirement(field, op, value))
    return _all_of(requirements)


def _field_requirement(field: str, op: str, value: str) -> Predicate:
    if op == "!=":
        return lambda obj: _field_value(obj, field) != value
    return lambda obj: _field_value(obj, field) == value
