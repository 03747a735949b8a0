"""Test helpers: find the CEL rules of a generated CRD schema and evaluate them with celpy."""

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import celpy
from celpy.adapter import json_to_cel

from ecs_operator.models.crd import openapi_schema
from ecs_operator.models.task import Task
from ecs_operator.models.taskdefinition import TaskDefinition
from ecs_sandbox.schema import _CEL_FUNCTIONS  # kube-apiserver's string and list extensions

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "models" / "fixtures"
_ENV = celpy.Environment()


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of a JSON fixture (tests may mutate it)."""
    result: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return result


@cache
def schemas() -> dict[str, dict[str, Any]]:
    return {"TaskDefinition": openapi_schema(TaskDefinition), "Task": openapi_schema(Task)}


def walk_rules(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, str]]]:
    """Every ``(path, rule)`` below ``node``; paths look like ``spec.containerDefinitions[]``."""
    for rule in node.get("x-kubernetes-validations", []):
        yield path, rule
    for name, sub in node.get("properties", {}).items():
        yield from walk_rules(sub, f"{path}.{name}" if path else name)
    if "items" in node:
        yield from walk_rules(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk_rules(node["additionalProperties"], f"{path}.*")


def find_rule(kind: str, path: str, message_part: str) -> str:
    """The one rule at ``path`` of ``kind``'s schema whose message contains ``message_part``."""
    found = [
        rule["rule"]
        for rule_path, rule in walk_rules(schemas()[kind])
        if rule_path == path and message_part in rule["message"]
    ]
    assert len(found) == 1, f"{len(found)} rules at {path!r} match {message_part!r}"
    return found[0]


@cache
def _program(rule: str) -> celpy.Runner:
    return _ENV.program(_ENV.compile(rule), functions=dict(_CEL_FUNCTIONS))


def compile_rule(rule: str) -> None:
    _program(rule)


def evaluate(rule: str, self: Any, old_self: Any = None) -> bool:
    """The rule's verdict for ``self`` (and ``oldSelf`` for transition rules); errors raise."""
    activation = {"self": json_to_cel(self)}
    if old_self is not None:
        activation["oldSelf"] = json_to_cel(old_self)
    result = _program(rule).evaluate(activation)
    if isinstance(result, Exception):
        raise result
    assert isinstance(result, celpy.celtypes.BoolType), f"{rule!r} gave {result!r}"
    return bool(result)


def instances(obj: Any, path: str) -> list[Any]:
    """The values at ``path`` (as ``walk_rules`` writes it) in ``obj``; absent ones skipped."""
    values = [obj]
    for part in path.replace("[]", ".[]").split(".") if path else []:
        if part == "[]":
            values = [item for value in values for item in value]
        else:
            values = [value[part] for value in values if part in value]
    return values
