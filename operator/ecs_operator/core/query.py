"""The ECS cluster query language, used by ``memberOf`` placement constraints.

An expression is ``subject operator [argument]`` combined with ``&&``/``and``, ``||``/``or``,
``!``/``not`` and parentheses (``not`` binds tightest, then ``and``, then ``or``)::

    attribute:ecs.availability-zone in [zone-a, zone-b]
    attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != zone-d
    not(task:group == service:database)

Subjects, as they read a Kubernetes node (see ``core.placement.ContainerInstance``):
``attribute:NAME`` (a node attribute), ``agentConnected`` (the node is Ready: ``true``/``false``),
``agentVersion`` (the kubelet version without its leading ``v``), ``ec2InstanceId`` (the node
name), ``registeredAt`` (the node's creationTimestamp), ``runningTasksCount`` (ECS tasks on the
node) and ``task:group`` (the groups of the tasks on the node).

Operators: ``==``/``equals``, ``!=``/``not_equals``, ``>``/``greater_than``,
``>=``/``greater_than_equal``, ``<``/``less_than``, ``<=``/``less_than_equal``, ``exists``,
``!exists``/``not_exists``, ``in [a, b]``, ``!in``/``not_in``, ``=~``/``matches``,
``!~``/``not_matches``. Word forms are case-insensitive. Values are bare words or quoted with
``'`` or ``"``.

Decisions where ECS documents nothing:

- Comparison: numeric when both sides are numbers (``"1.0" == 1``), a version comparison for
  ``agentVersion`` (``1.30`` == ``1.30.0`` < ``1.30.10``), a date comparison for ``registeredAt``
  (a date argument such as ``2018-02-13`` compares the UTC calendar day, a timestamp compares the
  instant), else a string comparison.
- Regular expressions use RE2's syntax (Java's and Python's, without backreferences or
  lookaround) and must match the **whole** value, as Java's ``String.matches`` does: ``t2.*``
  matches ``t2.micro`` but ``t2`` does not. RE2 matches in time linear in the value, so no
  pattern can stall the event loop (a backtracking engine takes exponential time on
  ``no(.*.*.*)*Z``); a backreference or lookaround is refused with a message saying so.
- An expression nests at most ``MAX_NESTING`` levels of parentheses and ``not``: deeper ones are
  refused by the parser (the CRD also bounds the expression's length and its parentheses).
- A missing attribute satisfies no positive operator (``==``, ``>``, ``in``, ``=~`` …); the
  negated forms (``!=``, ``not_in``, ``!~``, ``not_exists``) are exact negations, so they hold.
- ``task:group == X`` holds when the node runs at least one task of group ``X``; ``in`` when it
  runs one of the listed groups; ``=~`` when one of its groups matches; ``exists`` when it runs
  any task. Ordering operators are rejected for ``task:group`` and ``agentConnected``.
"""

import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Final, Protocol, TypeVar

import re2

from ecs_operator.models.placement import MAX_EXPRESSION_NESTING

SUBJECTS: Final = (
    "attribute:NAME",
    "agentConnected",
    "agentVersion",
    "ec2InstanceId",
    "registeredAt",
    "runningTasksCount",
    "task:group",
)

_OPERATOR_ALIASES: Final = {
    "==": "==",
    "equals": "==",
    "!=": "!=",
    "not_equals": "!=",
    ">": ">",
    "greater_than": ">",
    ">=": ">=",
    "greater_than_equal": ">=",
    "<": "<",
    "less_than": "<",
    "<=": "<=",
    "less_than_equal": "<=",
    "exists": "exists",
    "!exists": "not_exists",
    "not_exists": "not_exists",
    "in": "in",
    "!in": "not_in",
    "not_in": "not_in",
    "=~": "=~",
    "matches": "=~",
    "!~": "!~",
    "not_matches": "!~",
}
_NEGATED: Final = {"!=": "==", "not_exists": "exists", "not_in": "in", "!~": "=~"}
_ORDERING: Final = {
    "==": lambda sign: sign == 0,
    ">": lambda sign: sign > 0,
    ">=": lambda sign: sign >= 0,
    "<": lambda sign: sign < 0,
    "<=": lambda sign: sign <= 0,
}
_OPERATOR_TOKEN: Final = re.compile(r"==|!=|>=|<=|=~|!~|>|<|!?[A-Za-z_]+")
_SUBJECT_TOKEN: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z0-9_.\-/\\]*)?")
_ATTRIBUTE_NAME: Final = re.compile(r"[A-Za-z0-9_.\-/\\]{1,128}")
_IDENTIFIER_CHAR: Final = re.compile(r"[A-Za-z0-9_:.\-/\\]")
_DATE_ONLY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_VERSION: Final = re.compile(r"[vV]?(\d+(?:\.\d+)*)(?:[-+].*)?")
_MAX_TOKEN_SHOWN: Final = 30
_MAX_TEXT_SHOWN: Final = 200
MAX_NESTING: Final = MAX_EXPRESSION_NESTING
"""Levels of parentheses and ``not`` an expression may nest (recursion stays shallow)."""
_PARSED_CACHE_SIZE: Final = 256
_MATCHES_CACHE_SIZE: Final = 16384
# RE2 reports errors itself on stderr unless told not to; the QueryError carries the message.
_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False
# What RE2 says of a backreference (\1, (?P=name)) or a lookaround ((?=, (?!, (?<=, (?<!).
_RE2_UNSUPPORTED: Final = re.compile(
    r"invalid escape sequence: \\[1-9]|invalid perl operator: \(\?(=|!|<=|<!|P)"
)


class QueryTarget(Protocol):
    """What an expression reads of a container instance (``core.placement.ContainerInstance``)."""

    @property
    def name(self) -> str: ...

    @property
    def attributes(self) -> Mapping[str, str]: ...

    @property
    def agent_connected(self) -> bool: ...

    @property
    def agent_version(self) -> str: ...

    @property
    def registered_at(self) -> datetime | None: ...

    @property
    def running_tasks_count(self) -> int: ...


class _Pattern(Protocol):
    """A compiled RE2 pattern (the binding ships no type hints)."""

    def fullmatch(self, text: str) -> object | None: ...

    def __hash__(self) -> int: ...


Predicate = Callable[[QueryTarget, Mapping[str, int]], bool]
"""(instance, task counts by group on that instance) -> whether the instance matches."""

_Value = str | int | datetime | None
_Compare = Callable[[_Value], int | None]
"""Sign of (instance value - argument), or None when the two cannot be compared."""


class QueryError(ValueError):
    """An expression that does not parse; the message says what is wrong and where."""

    def __init__(self, message: str, text: str, position: int) -> None:
        self.column = position + 1
        self.text = text
        shown = text if len(text) <= _MAX_TEXT_SHOWN else text[:_MAX_TEXT_SHOWN] + "..."
        super().__init__(f"{message} (column {self.column} of {shown!r})")


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression; parse once with ``parse_expression`` and evaluate many times."""

    text: str
    predicate: Predicate = field(repr=False, compare=False)

    def matches(self, instance: QueryTarget, group_counts: Mapping[str, int]) -> bool:
        """Whether ``instance`` (running ``group_counts`` tasks per group) satisfies the rule."""
        return self.predicate(instance, group_counts)


@functools.lru_cache(maxsize=_PARSED_CACHE_SIZE)
def parse_expression(text: str) -> Expression:
    """Parse a cluster query language expression; raise ``QueryError`` if it is malformed.

    Parsed expressions are immutable, so the same text is parsed (and its patterns compiled)
    once, however often reconciles ask for it."""
    return Expression(text, _Parser(text).parse())


def version_key(version: str) -> tuple[int, ...] | None:
    """``"v1.30.2-eks"`` -> ``(1, 30, 2)``, trailing zeros dropped so 1.30 == 1.30.0."""
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        return None
    numbers = [int(part) for part in match[1].split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


_Comparable = TypeVar("_Comparable", float, str, tuple[int, ...], date, datetime)


def _sign(left: _Comparable, right: _Comparable) -> int:
    return (left > right) - (left < right)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Subject:
    text: str
    kind: str  # string | number | boolean | version | date | group
    read: Callable[[QueryTarget], _Value]


def _read_boolean(target: QueryTarget) -> str:
    return "true" if target.agent_connected else "false"


def _read_version(target: QueryTarget) -> str | None:
    return target.agent_version or None


def _read_name(target: QueryTarget) -> str:
    return target.name


def _read_registered_at(target: QueryTarget) -> datetime | None:
    return target.registered_at


def _read_running_tasks(target: QueryTarget) -> int:
    return target.running_tasks_count


def _read_nothing(target: QueryTarget) -> None:
    """task:group reads the group counts passed beside the instance, not the instance."""
    return None


_FIXED_SUBJECTS: Final = {
    "agentConnected": ("boolean", _read_boolean),
    "agentVersion": ("version", _read_version),
    "ec2InstanceId": ("string", _read_name),
    "registeredAt": ("date", _read_registered_at),
    "runningTasksCount": ("number", _read_running_tasks),
    "task:group": ("group", _read_nothing),
}


def _attribute_reader(name: str) -> Callable[[QueryTarget], str | None]:
    def read(target: QueryTarget) -> str | None:
        return target.attributes.get(name)

    return read


def _as_text(value: _Value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class _Parser:
    """Recursive descent: or := and (OR and)*; and := unary (AND unary)*;
    unary := NOT unary | '(' or ')' | condition."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    # -- errors and scanning -------------------------------------------------------------------

    def _fail(self, message: str, position: int | None = None) -> QueryError:
        return QueryError(message, self.text, self.pos if position is None else position)

    def _found(self) -> str:
        if self.pos >= len(self.text):
            return "the end of the expression"
        token = re.match(r"\S+", self.text[self.pos :])
        shown = token[0] if token else self.text[self.pos]
        return repr(shown[:_MAX_TOKEN_SHOWN])

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _at_end(self) -> bool:
        self._skip_space()
        return self.pos >= len(self.text)

    def _take_symbol(self, symbol: str) -> bool:
        self._skip_space()
        if self.text.startswith(symbol, self.pos):
            self.pos += len(symbol)
            return True
        return False

    def _take_word(self, word: str) -> bool:
        self._skip_space()
        end = self.pos + len(word)
        if self.text[self.pos : end].lower() != word:
            return False
        if end < len(self.text) and _IDENTIFIER_CHAR.match(self.text[end]):
            return False
        self.pos = end
        return True

    # -- grammar --------------------------------------------------------------------------------

    def parse(self) -> Predicate:
        if self._at_end():
            raise self._fail("empty expression")
        predicate = self._or()
        if not self._at_end():
            raise self._fail(f"expected 'and', 'or' or the end, found {self._found()}")
        return predicate

    def _or(self) -> Predicate:
        operands = [self._and()]
        while self._take_symbol("||") or self._take_word("or"):
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else _any_of(tuple(operands))

    def _and(self) -> Predicate:
        operands = [self._unary()]
        while self._take_symbol("&&") or self._take_word("and"):
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else _all_of(tuple(operands))

    def _unary(self) -> Predicate:
        if self._at_end():
            raise self._fail("expected a condition, found the end of the expression")
        start = self.pos
        if self._take_symbol("!") or self._take_word("not"):
            with self._nested(start):
                return _negation(self._unary())
        if self._take_symbol("("):
            opened = self.pos - 1
            with self._nested(start):
                inner = self._or()
            if not self._take_symbol(")"):
                raise self._fail(
                    f"expected ')' to close the '(' at column {opened + 1}, found {self._found()}"
                )
            return inner
        return self._condition()

    @contextlib.contextmanager
    def _nested(self, start: int) -> Iterator[None]:
        """One more level of parentheses or ``not``; refused beyond ``MAX_NESTING``."""
        if self.depth >= MAX_NESTING:
            raise self._fail(
                f"nested deeper than {MAX_NESTING} levels of parentheses and 'not'", start
            )
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def _condition(self) -> Predicate:
        subject = self._subject()
        self._skip_space()
        start = self.pos
        token = _OPERATOR_TOKEN.match(self.text, self.pos)
        operator = _OPERATOR_ALIASES.get(token[0].lower()) if token else None
        if token is None or operator is None:
            raise self._fail(f"expected an operator after {subject.text!r}, found {self._found()}")
        self.pos = token.end()
        positive = _NEGATED.get(operator, operator)
        predicate = self._operation(subject, positive, token[0], start)
        return _negation(predicate) if operator in _NEGATED else predicate

    def _subject(self) -> _Subject:
        self._skip_space()
        token = _SUBJECT_TOKEN.match(self.text, self.pos)
        known = ", ".join(SUBJECTS)
        if token is None:
            raise self._fail(f"expected a subject ({known}), found {self._found()}")
        text = token[0]
        if text.startswith("attribute:"):
            name = text.removeprefix("attribute:")
            if not _ATTRIBUTE_NAME.fullmatch(name):
                raise self._fail(
                    f"invalid attribute name {name!r}: 1-128 letters, digits, '-', '_', '.', "
                    "'/' or '\\'"
                )
            self.pos = token.end()
            return _Subject(text, "string", _attribute_reader(name))
        if text not in _FIXED_SUBJECTS:
            raise self._fail(f"unknown subject {text!r}; expected one of {known}")
        self.pos = token.end()
        kind, read = _FIXED_SUBJECTS[text]
        return _Subject(text, kind, read)

    def _operation(self, subject: _Subject, operator: str, spelled: str, at: int) -> Predicate:
        if operator == "exists":
            return _exists(subject)
        if operator == "in":
            return self._membership(subject, spelled)
        position = self._value_start(spelled)
        argument = self._value(in_list=False)
        if operator == "=~":
            return _regex(subject, self._compile_regex(argument, position))
        if subject.kind == "group":
            if operator != "==":
                raise self._fail(
                    f"operator {spelled!r} does not apply to task:group; use ==, !=, in, not_in, "
                    "exists, not_exists, =~ or !~",
                    at,
                )
            return _runs_group(argument)
        if subject.kind == "boolean" and operator != "==":
            raise self._fail(
                f"operator {spelled!r} does not apply to {subject.text}; use == or !=", at
            )
        compare = self._comparison(subject, argument, position)
        return _ordered(subject.read, compare, _ORDERING[operator])

    def _membership(self, subject: _Subject, spelled: str) -> Predicate:
        self._value_start(spelled)
        if not self._take_symbol("["):
            raise self._fail(
                f"expected '[' to open the list after {spelled!r}, found {self._found()}"
            )
        entries: list[tuple[str, int]] = []
        while True:
            entries.append((self._value(in_list=True), self.pos))
            if self._take_symbol("]"):
                break
            if not self._take_symbol(","):
                raise self._fail(f"expected ',' or ']' in the list, found {self._found()}")
        if subject.kind == "group":
            return _runs_any_group(frozenset(value for value, _ in entries))
        compares = tuple(self._comparison(subject, value, at) for value, at in entries)
        return _member(subject.read, compares)

    def _value_start(self, spelled: str) -> int:
        if self._at_end():
            raise self._fail(f"expected a value after {spelled!r}, found the end of the expression")
        return self.pos

    def _value(self, *, in_list: bool) -> str:
        self._skip_space()
        start = self.pos
        if start < len(self.text) and self.text[start] in "'\"":
            end = self.text.find(self.text[start], start + 1)
            if end < 0:
                raise self._fail(f"unterminated quoted value starting with {self.text[start]}")
            self.pos = end + 1
            return self.text[start + 1 : end]
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char.isspace() or (in_list and char in ",]"):
                break
            if self.text.startswith(("&&", "||"), self.pos):
                break
            if char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break  # closes a parenthesised condition, e.g. not(task:group == db)
                depth -= 1
            self.pos += 1
        if self.pos == start:
            raise self._fail(f"expected a value, found {self._found()}")
        return self.text[start : self.pos]

    def _compile_regex(self, pattern: str, position: int) -> _Pattern:
        try:
            compiled: _Pattern = re2.compile(pattern, _RE2_OPTIONS)
        except re2.error as error:
            detail = _re2_message(error)
            if _RE2_UNSUPPORTED.match(detail):
                detail += " (RE2 syntax: backreferences and lookaround are not supported)"
            message = f"invalid regular expression {pattern!r}: {detail}"
            raise self._fail(message, position) from None
        return compiled

    def _comparison(self, subject: _Subject, argument: str, position: int) -> _Compare:
        kind = subject.kind
        if kind == "number":
            number = _number(argument)
            if number is None:
                raise self._fail(
                    f"{subject.text} compares with a number, not {argument!r}", position
                )
            return _compare_number(number)
        if kind == "boolean":
            if argument.lower() not in ("true", "false"):
                raise self._fail(f"{subject.text} is true or false, not {argument!r}", position)
            return _compare_text(argument.lower())
        if kind == "version":
            key = version_key(argument)
            if key is None:
                raise self._fail(f"{argument!r} is not a version such as 1.30.2", position)
            return _compare_version(key)
        if kind == "date":
            return self._date_comparison(subject, argument, position)
        number = _number(argument)
        return (
            _compare_text(argument) if number is None else _compare_text_or_number(argument, number)
        )

    def _date_comparison(self, subject: _Subject, argument: str, position: int) -> _Compare:
        try:
            if _DATE_ONLY.fullmatch(argument):
                return _compare_day(date.fromisoformat(argument))
            instant = datetime.fromisoformat(argument)
        except ValueError:
            raise self._fail(
                f"{subject.text} compares with a date such as 2018-02-13 or "
                f"2018-02-13T10:00:00Z, not {argument!r}",
                position,
            ) from None
        return _compare_instant(instant if instant.tzinfo else instant.replace(tzinfo=UTC))


# -- compiled predicates (closures are several times faster to evaluate than walking a tree) ------


def _any_of(operands: Sequence[Predicate]) -> Predicate:
    def predicate(target: QueryTarget, groups: Mapping[str, int]) -> bool:
        return any(operand(target, groups) for operand in operands)

    return predicate


def _all_of(operands: Sequence[Predicate]) -> Predicate:
    def predicate(target: QueryTarget, groups: Mapping[str, int]) -> bool:
        return all(operand(target, groups) for operand in operands)

    return predicate


def _negation(operand: Predicate) -> Predicate:
    def predicate(target: QueryTarget, groups: Mapping[str, int]) -> bool:
        return not operand(target, groups)

    return predicate


def _exists(subject: _Subject) -> Predicate:
    read = subject.read
    if subject.kind == "group":

        def runs_any(target: QueryTarget, groups: Mapping[str, int]) -> bool:
            return any(count > 0 for count in groups.values())

        return runs_any

    def present(target: QueryTarget, groups: Mapping[str, int]) -> bool:
        return read(target) is not None

    return present


def _runs_group(group: str) -> Predicate:
    def predicate(target: QueryTarget, groups: Mapping[str, int]) -> bool:
        return groups.get(group, 0) > 0

    return predicate


def _runs_any_group(wanted: frozenset[str]) -> Predicate:
    def predicate(target: QueryTarget, groups: Mapping[str, int]) -> bool:
        return any(groups.get(group, 0) > 0 for group in wanted)

    return predicate


def _re2_message(error: Exception) -> str:
    detail = error.args[0] if error.args else error
    return detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)


@functools.lru_cache(maxsize=_MATCHES_CACHE_SIZE)
def _full_match(pattern: _Pattern, text: str) -> bool:
    """Whether ``pattern`` matches all of ``text``, remembered (one bounded cache for every
    pattern): a call into RE2 costs microseconds, and a cluster's attribute values (zones,
    instance types, node names) repeat across every node and every placement."""
    return pattern.fullmatch(text) is not None


def _regex(subject: _Subject, pattern: _Pattern) -> Predicate:
    read = subject.read
    matches = functools.partial(_full_match, pattern)
    if subject.kind == "group":

        def any_group(target: QueryTarget, groups: Mapping[str, int]) -> bool:
            return any(n > 0 and matches(group) for group, n in groups.items())

        return any_group

    def predicate(target: QueryTarget, groups: Mapping[str, int]) -> bool:
        text = _as_text(read(target))
        return text is not None and matches(text)

    return predicate


def _ordered(
    read: Callable[[QueryTarget], _Value], compare: _Compare, accept: Callable[[int], bool]
) -> Predicate:
    def predicate(target: QueryTarget, groups: Mapping[str, int]) -> bool:
        sign = compare(read(target))
        return sign is not None and accept(sign)

    return predicate


def _member(read: Callable[[QueryTarget], _Value], compares: Sequence[_Compare]) -> Predicate:
    def predicate(target: QueryTarget, groups: Mapping[str, int]) -> bool:
        value = read(target)
        return any(compare(value) == 0 for compare in compares)

    return predicate


def _compare_text(argument: str) -> _Compare:
    def compare(value: _Value) -> int | None:
        return None if value is None else _sign(str(value), argument)

    return compare


def _compare_text_or_number(argument: str, number: float) -> _Compare:
    def compare(value: _Value) -> int | None:
        if value is None:
            return None
        text = str(value)
        own = _number(text)
        return _sign(text, argument) if own is None else _sign(own, number)

    return compare


def _compare_number(number: float) -> _Compare:
    def compare(value: _Value) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return _sign(float(value), number)
        return None

    return compare


def _compare_version(key: tuple[int, ...]) -> _Compare:
    def compare(value: _Value) -> int | None:
        own = version_key(value) if isinstance(value, str) else None
        return None if own is None else _sign(own, key)

    return compare


def _compare_day(day: date) -> _Compare:
    def compare(value: _Value) -> int | None:
        if not isinstance(value, datetime):
            return None
        return _sign(value.astimezone(UTC).date(), day)

    return compare


def _compare_instant(instant: datetime) -> _Compare:
    def compare(value: _Value) -> int | None:
        if not isinstance(value, datetime):
            return None
        return _sign(value, instant)

    return compare
