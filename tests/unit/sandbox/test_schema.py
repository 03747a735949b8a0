"""CRD admission (prune, default, validate, CEL) and CRD validation, in kube-apiserver's words."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ecs_sandbox.errors import ApiError
from ecs_sandbox.schema import SchemaValidator, validate_crd


def make_crd(spec_schema: dict[str, Any], **version_extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.dev"},
        "spec": {
            "group": "example.dev",
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "listKind": "WidgetList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": spec_schema,
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                    **version_extra,
                }
            ],
        },
    }


def validator(spec_schema: dict[str, Any], structural: bool = True) -> SchemaValidator:
    crd = make_crd(spec_schema)
    if structural:
        assert validate_crd(crd) == []
    return SchemaValidator.from_crd_version(crd, crd["spec"]["versions"][0])


def widget(spec: Any, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w", **metadata},
        "spec": spec,
    }


def causes(v: SchemaValidator, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(ApiError) as caught:
        v.admit(obj, old)
    error = caught.value
    assert error.code == 422 and error.reason == "Invalid"
    return [f"{c.field}: {c.message}" for c in error.causes]


def obj_schema(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


# -- schema validation wording ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_schema", "value", "expected"),
    [
        (
            {"type": "integer"},
            "string",
            'spec.f: Invalid value: "string": spec.f in body must be of type integer: "string"',
        ),
        (
            {"type": "integer"},
            1.5,
            'spec.f: Invalid value: "number": spec.f in body must be of type integer: "number"',
        ),
        (
            {"type": "integer"},
            True,
            'spec.f: Invalid value: "boolean": spec.f in body must be of type integer: "boolean"',
        ),
        (
            {"type": "string"},
            {"a": 1},
            'spec.f: Invalid value: "object": spec.f in body must be of type string: "object"',
        ),
        (
            {"type": "integer", "minimum": 1},
            0,
            "spec.f: Invalid value: 0: spec.f in body should be greater than or equal to 1",
        ),
        (
            {"type": "integer", "minimum": 1, "exclusiveMinimum": True},
            1,
            "spec.f: Invalid value: 1: spec.f in body should be greater than 1",
        ),
        (
            {"type": "number", "maximum": 2.5},
            3,
            "spec.f: Invalid value: 3: spec.f in body should be less than or equal to 2.5",
        ),
        (
            {"type": "integer", "maximum": 5, "exclusiveMaximum": True},
            5,
            "spec.f: Invalid value: 5: spec.f in body should be less than 5",
        ),
        (
            {"type": "integer", "multipleOf": 4},
            6,
            "spec.f: Invalid value: 6: spec.f in body should be a multiple of 4",
        ),
        (
            {"type": "string", "enum": ["a", "b"]},
            "x",
            'spec.f: Unsupported value: "x": supported values: "a", "b"',
        ),
        (
            {"type": "integer", "enum": [1, 2]},
            3,
            'spec.f: Unsupported value: 3: supported values: "1", "2"',
        ),
        (
            {"type": "string", "minLength": 3},
            "ab",
            'spec.f: Invalid value: "ab": spec.f in body should be at least 3 chars long',
        ),
        ({"type": "string", "maxLength": 2}, "abc", "spec.f: Too long: may not be longer than 2"),
        (
            {"type": "string", "pattern": "^[a-z]+$"},
            "A1",
            "spec.f: Invalid value: \"A1\": spec.f in body should match '^[a-z]+$'",
        ),
        (
            {"type": "array", "items": {"type": "string"}, "maxItems": 1},
            ["a", "b"],
            "spec.f: Too many: 2: must have at most 1 items",
        ),
        (
            {"type": "array", "items": {"type": "string"}, "minItems": 2},
            ["a"],
            "spec.f: Invalid value: 1: spec.f in body should have at least 2 items",
        ),
        (
            {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            ["a", "a"],
            'spec.f: Invalid value: "": spec.f in body shouldn\'t contain duplicates',
        ),
        (
            {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 1},
            {"a": "1", "b": "2"},
            "spec.f: Too many: 2: must have at most 1 items",
        ),
        (
            {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1},
            {},
            "spec.f: Invalid value: 0: spec.f in body should have at least 1 properties",
        ),
        (
            {"type": "object", "additionalProperties": {"type": "integer"}},
            {"k": "x"},
            'spec.f.k: Invalid value: "string": spec.f.k in body must be of type integer: "string"',
        ),
        (
            {"type": "string", "format": "date-time"},
            "yesterday",
            'spec.f: Invalid value: "yesterday": spec.f in body must be of type date-time: '
            '"yesterday"',
        ),
        (
            {"type": "integer", "format": "int32"},
            2**31,
            "spec.f: Invalid value: 2147483648: spec.f in body must be of type int32: 2147483648",
        ),
        (
            {"x-kubernetes-int-or-string": True},
            1.5,
            'spec.f: Invalid value: "number": spec.f in body must be of type integer,string: '
            '"number"',
        ),
        (
            {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            ["a", "b", "a"],
            'spec.f[2]: Duplicate value: "a"',
        ),
        (
            {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
            },
            [{"name": "a"}, {"name": "a"}],
            'spec.f[1]: Duplicate value: map[string]interface {}{"name":"a"}',
        ),
    ],
)
def test_each_rule_is_worded_as_kube_apiserver(
    field_schema: dict[str, Any], value: Any, expected: str
) -> None:
    # uniqueItems is valid OpenAPI but kube-apiserver refuses it in a CRD (see below)
    v = validator(obj_schema(f=field_schema), structural="uniqueItems" not in field_schema)
    assert expected in causes(v, widget({"f": value}))


def test_valid_values_pass() -> None:
    v = validator(
        obj_schema(
            i={"type": "integer", "minimum": 1, "format": "int32"},
            n={"type": "number"},
            s={"x-kubernetes-int-or-string": True},
            t={"type": "string", "format": "date-time"},
            z={"type": "string", "nullable": True},
        )
    )
    spec = {"i": 1, "n": 2, "s": "50%", "t": "2024-01-02T03:04:05Z", "z": None}
    assert v.admit(widget(spec), None)["spec"] == spec


def test_every_violation_is_listed_and_message_names_the_object() -> None:
    v = validator(
        {
            "type": "object",
            "required": ["image"],
            "properties": {"cpu": {"type": "integer"}, "image": {"type": "string"}},
        }
    )
    with pytest.raises(ApiError) as caught:
        v.admit(widget({"cpu": "x"}), None)
    assert caught.value.message.startswith(
        'Widget.example.dev "w" is invalid: [spec.image: Required value, spec.cpu: '
    )
    assert len(caught.value.causes) == 2
    assert caught.value.causes[0].reason == "FieldValueRequired"


def test_array_items_are_validated_with_index_in_path() -> None:
    v = validator(
        obj_schema(
            containers={"type": "array", "items": obj_schema(cpu={"type": "integer", "minimum": 0})}
        )
    )
    found = causes(v, widget({"containers": [{"cpu": 1}, {"cpu": -1}]}))
    assert found == [
        "spec.containers[1].cpu: Invalid value: -1: spec.containers[1].cpu in body should be "
        "greater than or equal to 0"
    ]


def test_embedded_resource_requires_kind_and_prunes_metadata() -> None:
    v = validator(
        obj_schema(
            template={
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "x-kubernetes-preserve-unknown-fields": True,
            }
        )
    )
    admitted = v.admit(
        widget(
            {
                "template": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "p", "bogus": 1},
                    "x": 1,
                }
            }
        ),
        None,
    )
    assert admitted["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "x": 1,
    }
    assert "spec.template.kind: Required value: must not be empty" in causes(
        v, widget({"template": {"apiVersion": "v1"}})
    )


# -- pruning and defaulting ---------------------------------------------------------------


def test_unknown_fields_are_pruned_but_preserved_where_declared() -> None:
    v = validator(
        obj_schema(
            known={"type": "string"},
            free={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        )
    )
    obj = widget(
        {"known": "a", "unknown": 1, "free": {"any": {"thing": [1]}}}, labels={"a": "b"}, junk=True
    )
    obj["extra"] = 1
    admitted = v.admit(obj, None)
    assert admitted == {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}},
        "spec": {"known": "a", "free": {"any": {"thing": [1]}}},
    }
    assert v.unknown_fields(obj) == ["metadata.junk", "spec.unknown", "extra"]


def test_admit_returns_a_new_object() -> None:
    v = validator(obj_schema(mode={"type": "string", "default": "a"}))
    obj = widget({})
    before = copy.deepcopy(obj)
    admitted = v.admit(obj, None)
    assert obj == before
    admitted["metadata"]["name"] = "changed"
    assert obj["metadata"]["name"] == "w"


def test_strict_field_validation_rejects_unknown_fields_with_400() -> None:
    v = validator(obj_schema(known={"type": "string"}))
    with pytest.raises(ApiError) as caught:
        v.admit(widget({"known": "a", "colour": "red"}), None, strict=True)
    assert caught.value.code == 400
    assert caught.value.message == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown '
        'field "spec.colour"'
    )


def test_defaults_nested_in_arrays_and_inside_defaulted_objects() -> None:
    v = validator(
        obj_schema(
            mode={"type": "string", "default": "small"},
            ports={
                "type": "array",
                "items": obj_schema(
                    name={"type": "string"}, protocol={"type": "string", "default": "TCP"}
                ),
            },
            strategy={
                "type": "object",
                "default": {},
                "properties": {
                    "type": {"type": "string", "default": "Rolling"},
                    "rolling": {
                        "type": "object",
                        "default": {"max": 2},
                        "properties": {
                            "max": {"type": "integer"},
                            "min": {"type": "integer", "default": 0},
                        },
                    },
                },
            },
            explicit={"type": "string", "default": "d"},
            keep={"type": "string", "nullable": True, "default": "d"},
        )
    )
    admitted = v.admit(
        widget(
            {
                "ports": [{"name": "a"}, {"name": "b", "protocol": "UDP"}],
                "explicit": None,
                "keep": None,
            }
        ),
        None,
    )
    assert admitted["spec"] == {
        "mode": "small",
        "ports": [{"name": "a", "protocol": "TCP"}, {"name": "b", "protocol": "UDP"}],
        "strategy": {"type": "Rolling", "rolling": {"max": 2, "min": 0}},
        "explicit": "d",  # null of a non-nullable field is dropped, then defaulted
        "keep": None,  # nullable keeps its null
    }


def test_null_in_a_non_nullable_field_without_default_is_dropped() -> None:
    v = validator(obj_schema(a={"type": "string"}))
    assert v.admit(widget({"a": None}), None)["spec"] == {}


# -- CEL ----------------------------------------------------------------------------------


def rules(*entries: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "x-kubernetes-validations": list(entries)}


def test_cel_rule_with_message_and_default_message() -> None:
    v = validator(
        rules(
            {"rule": "self.min <= self.max", "message": "min must not exceed max"},
            {"rule": "self.max < 100"},
            min={"type": "integer"},
            max={"type": "integer"},
        )
    )
    assert v.admit(widget({"min": 1, "max": 2}), None)["spec"] == {"min": 1, "max": 2}
    assert causes(v, widget({"min": 300, "max": 200})) == [
        'spec: Invalid value: "object": min must not exceed max',
        'spec: Invalid value: "object": failed rule: self.max < 100',
    ]


def test_cel_macros_functions_and_optional_fields() -> None:
    containers = {
        "type": "array",
        "items": obj_schema(
            name={"type": "string"}, essential={"type": "boolean"}, cpu={"type": "integer"}
        ),
    }
    checks = [
        "self.containers.all(c, c.name.matches('^[a-z]+$'))",
        "self.containers.exists(c, has(c.essential) && c.essential)",
        "self.containers.exists_one(c, c.name == 'web')",
        "size(self.containers.filter(c, has(c.cpu))) == 1",
        "self.containers.map(c, c.name).isSorted()",
        "'web' in self.containers.map(c, c.name)",
        "!has(self.family) || self.family.startsWith('f')",
        "self.containers.map(c, c.name).join(',').lowerAscii().split(',').size() == 2",
        "self.containers[0].name.indexOf('p') == 1 && self.containers[0].name.endsWith('p')",
        "string(self.containers.size()) == '2' && int('2') == self.containers.size()",
    ]
    v = validator(
        rules(
            *({"rule": rule} for rule in checks), containers=containers, family={"type": "string"}
        )
    )
    good = {"containers": [{"name": "app", "essential": True, "cpu": 1}, {"name": "web"}]}
    assert v.admit(widget(good), None)["spec"] == good
    bad = {"containers": [{"name": "zzz"}, {"name": "Web"}, {"name": "Web"}], "family": "x"}
    assert len(causes(v, widget(bad))) == len(checks)


def test_cel_rules_on_items_and_map_values_name_the_element() -> None:
    v = validator(
        obj_schema(
            items={
                "type": "array",
                "items": rules(
                    {"rule": "self.cpu > 0", "message": "cpu must be positive"},
                    cpu={"type": "integer"},
                ),
            },
            labels={
                "type": "object",
                "additionalProperties": {
                    "type": "string",
                    "x-kubernetes-validations": [{"rule": "self.size() <= 3"}],
                },
            },
        )
    )
    found = causes(
        v, widget({"items": [{"cpu": 1}, {"cpu": 0}], "labels": {"ok": "abc", "bad": "abcd"}})
    )
    assert found == [
        'spec.items[1]: Invalid value: "object": cpu must be positive',
        'spec.labels[bad]: Invalid value: "string": failed rule: self.size() <= 3',
    ]


def test_cel_field_path_reason_and_message_expression() -> None:
    v = validator(
        rules(
            {
                "rule": "self.replicas <= self.limit",
                "messageExpression": "'replicas ' + string(self.replicas) + ' over limit ' + "
                "string(self.limit)",
                "fieldPath": ".replicas",
            },
            {
                "rule": "has(self.owner)",
                "message": "an owner is required",
                "reason": "FieldValueRequired",
                "fieldPath": ".owner",
            },
            {"rule": "self.limit != 13", "message": "unlucky", "reason": "FieldValueForbidden"},
            replicas={"type": "integer"},
            limit={"type": "integer"},
            owner={"type": "string"},
        )
    )
    assert causes(v, widget({"replicas": 20, "limit": 13})) == [
        'spec.replicas: Invalid value: "object": replicas 20 over limit 13',
        "spec.owner: Required value: an owner is required",
        "spec: Forbidden: unlucky",
    ]


def test_message_expression_failure_falls_back_to_message() -> None:
    v = validator(
        rules(
            {"rule": "self.a > 1", "message": "a too small", "messageExpression": "self.nope"},
            a={"type": "integer"},
            nope={"type": "string"},  # declared (or the CRD is refused), absent: no such key
        )
    )
    assert causes(v, widget({"a": 0})) == ['spec: Invalid value: "object": a too small']


def test_cel_evaluation_error_is_a_422_naming_the_rule() -> None:
    v = validator(
        rules({"rule": "self.missing > 1"}, a={"type": "integer"}, missing={"type": "integer"})
    )
    found = causes(v, widget({"a": 1}))
    assert found == [
        'spec: Invalid value: "object": no such key: missing evaluating rule: self.missing > 1'
    ]


def test_cel_is_skipped_after_a_type_error() -> None:
    v = validator(rules({"rule": "self.a > 1"}, a={"type": "integer"}))
    found = causes(v, widget({"a": "x"}))
    assert found[-1] == (
        '<nil>: Invalid value: "null": some validation rules were not checked because the object '
        "was invalid; correct the existing errors to complete validation"
    )
    assert len(found) == 2


def test_number_fields_are_doubles_in_cel() -> None:
    v = validator(rules({"rule": "self.ratio > 0.5"}, ratio={"type": "number"}))
    assert v.admit(widget({"ratio": 1}), None)["spec"] == {"ratio": 1}


def test_transition_rule_runs_only_on_update_with_correlated_old_value() -> None:
    v = validator(
        obj_schema(
            name=rules(
                {"rule": "self == oldSelf", "message": "name is immutable"}, x={"type": "string"}
            )
            | {"type": "string"},
            ports={
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": rules(
                    {"rule": "self.port >= oldSelf.port", "message": "port may only grow"},
                    name={"type": "string"},
                    port={"type": "integer"},
                )
                | {"required": ["name"]},
            },
        )
    )
    created = v.admit(widget({"name": "a", "ports": [{"name": "http", "port": 80}]}), None)
    assert created["spec"]["name"] == "a"
    update = widget(
        {"name": "b", "ports": [{"name": "http", "port": 70}, {"name": "new", "port": 1}]}
    )
    assert causes(v, update, created) == [
        'spec.name: Invalid value: "string": name is immutable',
        'spec.ports[0]: Invalid value: "object": port may only grow',
    ]


def test_optional_old_self_rule_runs_on_create() -> None:
    v = validator(
        rules(
            {
                "rule": "!oldSelf.hasValue() || self.size >= oldSelf.value().size",
                "optionalOldSelf": True,
                "message": "cannot shrink",
            },
            {
                "rule": "oldSelf.hasValue() || self.size < 10",
                "optionalOldSelf": True,
                "message": "start small",
            },
            size={"type": "integer"},
        )
    )
    assert causes(v, widget({"size": 20})) == ['spec: Invalid value: "object": start small']
    old = v.admit(widget({"size": 5}), None)
    assert causes(v, widget({"size": 4}), old) == ['spec: Invalid value: "object": cannot shrink']
    assert v.admit(widget({"size": 50}), old)["spec"] == {"size": 50}


def test_root_rule_is_reported_at_nil() -> None:
    crd = make_crd(obj_schema(a={"type": "integer"}))
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] = [
        {"rule": "self.metadata.name.startsWith('w-')", "message": "name must start with w-"}
    ]
    v = SchemaValidator.from_crd_version(crd, crd["spec"]["versions"][0])
    assert causes(v, widget({"a": 1})) == [
        '<nil>: Invalid value: "object": name must start with w-'
    ]


# -- validate_crd -------------------------------------------------------------------------


def test_good_crd_has_no_causes() -> None:
    crd = make_crd(
        rules({"rule": "self.a > 0"}, a={"type": "integer"}, r={"type": "integer"}),
        subresources={
            "status": {},
            "scale": {"specReplicasPath": ".spec.r", "statusReplicasPath": ".status.r"},
        },
        additionalPrinterColumns=[{"name": "A", "type": "integer", "jsonPath": ".spec.a"}],
    )
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"] = obj_schema(
        r={"type": "integer"}
    )
    assert validate_crd(crd) == []


def crd_messages(crd: dict[str, Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate_crd(crd)]


def test_crd_names_scope_and_versions_are_checked() -> None:
    crd = make_crd(obj_schema())
    crd["metadata"]["name"] = "wrong"
    crd["spec"]["scope"] = "Galaxy"
    crd["spec"]["names"]["singular"] = "Widget"
    crd["spec"]["versions"].append({"name": "v2", "served": True, "storage": True})
    found = crd_messages(crd)
    assert (
        'spec.names.singular: Invalid value: "Widget": a lowercase RFC 1123 label must consist '
        "of lower case alphanumeric characters or '-', and must start and end with an "
        "alphanumeric character" in found
    )
    assert (
        'metadata.name: Invalid value: "wrong": must be spec.names.plural+"."+spec.group' in found
    )
    assert (
        'spec.scope: Unsupported value: "Galaxy": supported values: "Cluster", "Namespaced"'
        in found
    )
    assert any(
        m.startswith("spec.versions: Invalid value")
        and "exactly one version marked as storage version" in m
        for m in found
    )
    assert "spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required" in found


def test_crd_missing_group_and_kind() -> None:
    crd = make_crd(obj_schema())
    del crd["spec"]["group"]
    del crd["spec"]["names"]["kind"]
    found = crd_messages(crd)
    assert "spec.group: Required value" in found
    assert "spec.names.kind: Required value" in found


def test_non_structural_schema_is_rejected() -> None:
    crd = make_crd(
        {
            "type": "object",
            "properties": {
                "untyped": {"description": "no type"},
                "list": {"type": "array"},
                "ref": {"$ref": "#/definitions/x", "type": "object"},
                "uniq": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                "closed": {"type": "object", "additionalProperties": False},
                "choice": {"type": "object", "anyOf": [{"type": "object"}]},
            },
        }
    )
    base = "spec.versions[0].schema.openAPIV3Schema.properties[spec]"
    found = crd_messages(crd)
    assert (
        f"{base}.properties[untyped].type: Required value: must not be empty for specified "
        f"object fields" in found
    )
    assert f"{base}.properties[list].items: Required value: must be specified" in found
    assert f"{base}.properties[ref].$ref: Forbidden: $ref is not supported" in found
    assert (
        f"{base}.properties[uniq].uniqueItems: Forbidden: uniqueItems cannot be set to true "
        f"since the runtime complexity becomes quadratic" in found
    )
    assert (
        f"{base}.properties[closed].additionalProperties: Forbidden: additionalProperties cannot "
        f"be set to false" in found
    )
    assert (
        f"{base}.properties[choice].anyOf[0].type: Forbidden: must be empty to be structural"
        in found
    )


def test_cel_compile_error_names_the_rule_entry() -> None:
    crd = make_crd(rules({"rule": "self.a >"}, a={"type": "integer"}))
    (found,) = crd_messages(crd)
    assert found.startswith(
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0]"
        '.rule: Invalid value: "self.a >": compilation failed: ERROR: <input>:1:'
    )


def test_list_map_keys_must_be_required() -> None:
    crd = make_crd(
        obj_schema(
            ports={
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": obj_schema(name={"type": "string"}),
            }
        )
    )
    assert crd_messages(crd) == [
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[ports].items"
        ".properties[name]: Required value: "
        "entries with x-kubernetes-list-type=map must have a default or be required"
    ]


def test_scale_paths_and_printer_columns_are_checked() -> None:
    crd = make_crd(
        obj_schema(r={"type": "string"}),
        subresources={"scale": {"specReplicasPath": ".spec.r", "statusReplicasPath": "status.r"}},
        additionalPrinterColumns=[
            {"name": "A", "type": "float", "jsonPath": "spec.a"},
            {"type": "string", "jsonPath": ".x"},
        ],
    )
    found = crd_messages(crd)
    assert (
        'spec.versions[0].subresources.scale.specReplicasPath: Invalid value: ".spec.r": should '
        "be a json path to an integer field in the schema" in found
    )
    assert (
        'spec.versions[0].subresources.scale.statusReplicasPath: Invalid value: "status.r": '
        "should be a json path under .status" in found
    )
    assert (
        'spec.versions[0].additionalPrinterColumns[0].type: Unsupported value: "float": '
        'supported values: "boolean", "date", "integer", "number", "string"' in found
    )
    assert (
        'spec.versions[0].additionalPrinterColumns[0].jsonPath: Invalid value: "spec.a": must be '
        "a simple json path starting with ." in found
    )
    assert "spec.versions[0].additionalPrinterColumns[1].name: Required value" in found
