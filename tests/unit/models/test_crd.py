"""The generated CRDs: structural, described, named as designed, and committed up to date."""

from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from ecs_operator import cli as operator_cli
from ecs_operator.models.crd import (
    CUSTOM_RESOURCES,
    SchemaConversionError,
    main,
    openapi_schema,
    render_crds,
    to_structural,
    to_yaml,
)
from ecs_operator.models.taskdefinition import TaskDefinitionStatus
from support.crd_rules import compile_rule, fixture, walk_rules

REPO = Path(__file__).resolve().parents[3]
CRD_DIR = REPO / "crds"
TYPES = {"object", "array", "string", "integer", "number", "boolean"}
FORBIDDEN_KEYWORDS = {"$ref", "$defs", "title", "oneOf", "allOf", "not", "const", "nullable"}


def structural_problems(node: dict[str, Any], path: str, described: bool) -> list[str]:
    """Why ``node`` breaks kube-apiserver's structural schema rules (empty when it does not)."""
    problems = [f"{path}: has {key}" for key in FORBIDDEN_KEYWORDS & set(node)]
    if node.get("x-kubernetes-int-or-string"):
        if "type" in node or node.get("anyOf") != [{"type": "integer"}, {"type": "string"}]:
            problems.append(f"{path}: int-or-string must be anyOf [integer, string] with no type")
    elif node.get("x-kubernetes-preserve-unknown-fields") and "type" not in node:
        pass  # any JSON value (an ECS output timestamp: text or epoch seconds)
    else:
        if node.get("type") not in TYPES:
            problems.append(f"{path}: type {node.get('type')!r}")
        if "anyOf" in node:
            problems.append(f"{path}: anyOf outside int-or-string")
    if "default" in node and node["default"] is None:
        problems.append(f"{path}: default null")
    if described and not node.get("description"):
        problems.append(f"{path}: no description")
    if node.get("type") == "object" and "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: both properties and additionalProperties")
    for name, sub in node.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{name}", described=True)
    for name in node.get("required", []):
        if name not in node.get("properties", {}):
            problems.append(f"{path}: required {name} is not a property")
    if "items" in node:
        problems += structural_problems(node["items"], f"{path}[]", described=False)
    elif node.get("type") == "array":
        problems.append(f"{path}: array without items")
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_problems(node["additionalProperties"], f"{path}.*", False)
    return problems


@pytest.mark.parametrize("resource", CUSTOM_RESOURCES, ids=lambda r: r.kind)
def test_schema_is_structural_and_every_property_is_described(resource: Any) -> None:
    schema = openapi_schema(resource.model)
    root_properties = schema["properties"]
    # kube-apiserver allows declaring metadata.name (and generateName) only: CEL rules at the
    # root name it as their fieldPath.
    assert root_properties["metadata"] == {
        "type": "object",
        "properties": {"name": {"type": "string"}},
    }
    assert {root_properties["spec"]["type"], root_properties["status"]["type"]} == {"object"}
    assert schema["required"] == ["spec"]
    checked = {k: v for k, v in root_properties.items() if k != "metadata"}
    assert all(rule.get("fieldPath") for _, rule in walk_rules(schema)), (
        "every rule names its field"
    )
    problems = structural_problems({**schema, "properties": checked}, resource.kind, False)
    assert problems == []


def unbounded(node: dict[str, Any], path: str) -> list[str]:
    """Spec fields without a maximum: every string, list, map and integer a user writes is
    bounded at admission, so nothing derived from it can overflow (and CEL stays in budget)."""
    kind = node.get("type")
    bounded = (
        (kind == "string" and ("maxLength" in node or "enum" in node))
        or (kind == "array" and "maxItems" in node)
        or (kind == "integer" and "maximum" in node)
        or (kind == "object" and ("properties" in node or "maxProperties" in node))
        or kind in ("boolean", "number")
        # Task.spec.loadBalancers[]: accepted as anything only to be refused with ECS's message.
        or node.get("x-kubernetes-preserve-unknown-fields") is True
        or (node.get("x-kubernetes-int-or-string") and "maximum" in node and "maxLength" in node)
    )
    problems = [] if bounded else [path]
    for name, sub in node.get("properties", {}).items():
        problems += unbounded(sub, f"{path}.{name}")
    if "items" in node:
        problems += unbounded(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += unbounded(node["additionalProperties"], f"{path}.*")
    return problems


@pytest.mark.parametrize("resource", CUSTOM_RESOURCES, ids=lambda r: r.kind)
def test_every_spec_field_is_bounded(resource: Any) -> None:
    spec = openapi_schema(resource.model)["properties"]["spec"]
    assert unbounded(spec, "spec") == []
    assert unbounded({"type": "string"}, "s") == ["s"]


def test_checker_finds_problems() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "title": "A", "description": "x"},
            "b": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "c": {"type": "array", "description": "x"},
        },
        "required": ["d"],
    }
    assert len(structural_problems(bad, "root", described=False)) == 6


def test_conditions_are_a_map_keyed_by_type() -> None:
    for resource in CUSTOM_RESOURCES:
        conditions = openapi_schema(resource.model)["properties"]["status"]["properties"][
            "conditions"
        ]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert "type" in conditions["items"]["required"]


def test_task_cpu_is_int_or_string_with_bounds_and_pattern() -> None:
    spec = openapi_schema(CUSTOM_RESOURCES[0].model)["properties"]["spec"]["properties"]
    assert spec["cpu"]["x-kubernetes-int-or-string"] is True
    assert spec["cpu"]["minimum"] == 128 and spec["cpu"]["maximum"] == 196608
    assert "vCPU" in spec["cpu"]["description"] and "pattern" in spec["memory"]


def test_schema_defaults_are_the_ecs_defaults() -> None:
    td = openapi_schema(CUSTOM_RESOURCES[0].model)["properties"]["spec"]["properties"]
    container = td["containerDefinitions"]["items"]["properties"]
    assert container["essential"]["default"] is True
    assert td["networkMode"]["default"] == "bridge"
    task = openapi_schema(CUSTOM_RESOURCES[1].model)["properties"]["spec"]["properties"]
    assert task["desiredStatus"]["default"] == "RUNNING"
    assert task["ttlSecondsAfterStopped"]["default"] == 3600


def test_names_scope_and_subresources() -> None:
    crds = render_crds()
    assert set(crds) == {
        "taskdefinitions.ecs.operator.dev.yaml",
        "tasks.ecs.operator.dev.yaml",
        "services.ecs.operator.dev.yaml",
        "loadbalancers.ecs.operator.dev.yaml",
    }
    td = crds["taskdefinitions.ecs.operator.dev.yaml"]
    assert td["metadata"]["name"] == "taskdefinitions.ecs.operator.dev"
    assert td["spec"]["names"] == {
        "kind": "TaskDefinition",
        "listKind": "TaskDefinitionList",
        "plural": "taskdefinitions",
        "singular": "taskdefinition",
        "shortNames": ["td"],
        "categories": ["ecs"],
    }
    task = crds["tasks.ecs.operator.dev.yaml"]
    assert task["spec"]["names"]["shortNames"] == ["ecstask"]
    for crd in crds.values():
        assert crd["spec"]["group"] == "ecs.operator.dev"
        assert crd["spec"]["scope"] == "Namespaced"
        [version] = crd["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        assert version["subresources"]["status"] == {}
        if crd["spec"]["names"]["kind"] != "Service":
            assert version["subresources"] == {"status": {}}


def _columns(file_name: str) -> dict[str, dict[str, Any]]:
    [version] = render_crds()[file_name]["spec"]["versions"]
    return {column["name"]: column for column in version["additionalPrinterColumns"]}


def _wide(columns: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, column in columns.items() if column.get("priority")]


def test_printer_columns() -> None:
    td = _columns("taskdefinitions.ecs.operator.dev.yaml")
    assert list(td) == [
        "Revision", "Status", "Accepted", "Age", "Refused Because",
        "Task Definition", "Reason", "Message",
    ]  # fmt: skip
    assert _wide(td) == ["Task Definition", "Reason", "Message"]
    assert td["Accepted"]["jsonPath"] == '.status.conditions[?(@.type=="Accepted")].status'
    task = _columns("tasks.ecs.operator.dev.yaml")
    assert list(task) == [
        "Task Definition",
        "Last Status",
        "Desired",
        "Stop Code",
        "Node",
        "Zone",
        "Age",
        "Health",
        "Group",
        "Stopped Reason",
    ]
    assert task["Stopped Reason"] | {"priority": 1} == task["Stopped Reason"]
    service = _columns("services.ecs.operator.dev.yaml")
    assert list(service) == [
        "Desired", "Running", "Pending", "Ready", "Degraded", "Task Definition", "Rollout",
        "Stage", "Age", "Strategy", "Progress", "Rollout Reason", "Degraded Message",
    ]  # fmt: skip
    assert _wide(service) == ["Strategy", "Progress", "Rollout Reason", "Degraded Message"]
    assert task["Age"] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": "Time since the object was created.",
    }
    assert (task["Health"]["priority"], task["Group"]["priority"]) == (1, 1)
    assert all(c["description"] for c in [*td.values(), *task.values(), *service.values()])


def _cell(column: dict[str, Any], obj: dict[str, Any]) -> list[Any]:
    """What the printer column's JSONPath selects (the sandbox's evaluator, which serves the
    columns to kubectl; kube-apiserver's takes the first value)."""
    from ecs_sandbox.tables import compile_jsonpath, evaluate_jsonpath

    return evaluate_jsonpath(compile_jsonpath(column["jsonPath"]), obj)


def test_the_refusal_column_shows_only_a_refusal() -> None:
    refused = _columns("taskdefinitions.ecs.operator.dev.yaml")["Refused Because"]
    condition = {"type": "Accepted", "reason": "Invalid", "message": "spec.x: no"}
    assert _cell(refused, {"status": {"conditions": [{**condition, "status": "False"}]}}) == [
        "spec.x: no"
    ]
    assert _cell(refused, {"status": {"conditions": [{**condition, "status": "True"}]}}) == []
    # The column relies on Accepted being the TaskDefinition's only condition.
    assert "Accepted" in TaskDefinitionStatus.model_fields["conditions"].description


def test_service_columns_read_its_conditions_and_primary_deployment() -> None:
    columns = _columns("services.ecs.operator.dev.yaml")
    service = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "Progressing", "status": "True", "reason": "RollingBack"},
                {
                    "type": "Degraded",
                    "status": "True",
                    "reason": "DeploymentFailed",
                    "message": "m",
                },
            ],
            "deployments": [
                {
                    "status": "PRIMARY",
                    "rolloutState": "IN_PROGRESS",
                    "rolloutStateReason": "r",
                    "lifecycleStage": "BAKE_TIME",
                },
                {"status": "ACTIVE", "rolloutState": "FAILED", "rolloutStateReason": "old"},
            ],
        }
    }
    cells = {name: _cell(column, service) for name, column in columns.items()}
    assert cells["Ready"] == ["False"]
    assert cells["Degraded"] == ["DeploymentFailed"]
    assert cells["Rollout"] == ["IN_PROGRESS"]
    assert cells["Stage"] == ["BAKE_TIME"]
    assert cells["Progress"] == ["RollingBack"]
    assert cells["Rollout Reason"] == ["r"]
    assert cells["Degraded Message"] == ["m"]


def test_every_cel_rule_compiles_and_explains_itself() -> None:
    for resource in CUSTOM_RESOURCES:
        for path, rule in walk_rules(openapi_schema(resource.model)):
            compile_rule(rule["rule"])
            assert rule["message"], path


@pytest.mark.parametrize(
    ("kind", "spec", "valid"),
    [
        ("TaskDefinition", fixture("web-nginx.taskdefinition.json"), True),
        ("TaskDefinition", fixture("nightly-report.taskdefinition.json"), True),
        (
            "TaskDefinition",
            fixture("nightly-report.taskdefinition.json") | {"cpu": "1 core"},
            False,
        ),
        ("TaskDefinition", fixture("nightly-report.taskdefinition.json") | {"cpu": 64}, False),
        ("TaskDefinition", fixture("nightly-report.taskdefinition.json") | {"memory": "3GB"}, True),
        ("Task", fixture("nightly-report.runtask.json"), True),
        ("Task", {"taskDefinition": "web:three"}, False),
    ],
)
def test_openapi_schema_validates_like_the_api_server(
    kind: str, spec: dict[str, Any], valid: bool
) -> None:
    resource = next(r for r in CUSTOM_RESOURCES if r.kind == kind)
    obj = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": kind, "metadata": {}, "spec": spec}
    errors = list(jsonschema.Draft7Validator(openapi_schema(resource.model)).iter_errors(obj))
    assert (errors == []) is valid, errors


def test_non_structural_models_are_refused() -> None:
    class Either(BaseModel):
        value: int | bool

    class Constant(BaseModel):
        kind: Literal["only"]

    schema = Either.model_json_schema()
    with pytest.raises(SchemaConversionError, match=r"x\.value: unions other than int-or-string"):
        to_structural(schema, {}, "x")
    converted = to_structural(Constant.model_json_schema(), {}, "c")
    assert converted["properties"]["kind"] == {"enum": ["only"], "type": "string"}
    with pytest.raises(SchemaConversionError, match="needs a type"):
        to_structural({"description": "untyped"}, {}, "u")


def test_output_is_deterministic() -> None:
    first = {name: to_yaml(crd) for name, crd in render_crds().items()}
    second = {name: to_yaml(crd) for name, crd in render_crds().items()}
    assert first == second


def test_cli_writes_one_file_per_crd(tmp_path: Path) -> None:
    assert main(["--output", str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(render_crds())
    text = (tmp_path / "out" / "tasks.ecs.operator.dev.yaml").read_text()
    assert yaml.safe_load(text) == render_crds()["tasks.ecs.operator.dev.yaml"]


def test_ecs_operator_crds_prints_the_crds_folder_as_one_stream(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`ecs-operator crds`: what `crds/` holds, in file-name order, for `kubectl apply -f -`
    and for the sandbox's demo (which reads the CRDs from it without importing the operator)."""
    assert operator_cli.main(["crds"]) == 0
    printed = capsys.readouterr().out
    files = sorted(CRD_DIR.glob("*.yaml"))
    assert printed == "---\n".join(path.read_text() for path in files)
    documents = list(yaml.safe_load_all(printed))
    assert documents == [render_crds()[path.name] for path in files]
    assert operator_cli.main(["crds", "--output", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name for path in files]


@pytest.mark.parametrize("file_name", sorted(render_crds()))
def test_committed_crds_are_up_to_date(file_name: str) -> None:
    committed = CRD_DIR / file_name
    expected = to_yaml(render_crds()[file_name])
    assert committed.exists(), f"{committed} is missing: run `make crds`"
    assert committed.read_text() == expected, f"{committed} is stale: run `make crds`"
