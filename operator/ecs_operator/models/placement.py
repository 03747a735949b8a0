"""Placement constraints and strategies, exactly as the ECS API spells them.

``PlacementConstraint`` and ``PlacementStrategy`` appear in a Task's and a Service's spec (and a
TaskDefinition's ``placementConstraints``). The cross-field rules are declared once as CEL
(``x-kubernetes-validations`` in the JSON schema, so the API server rejects bad input at
admission with the field named) and mirrored by a pydantic validator with the same messages, so
the operator gives the same answer when it validates an object itself.
"""

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

MAX_EXPRESSION_LENGTH: Final = 2000
MAX_EXPRESSION_NESTING: Final = 32
"""Levels of parentheses and ``not`` the query parser accepts (``core.query``); admission
bounds the expression's '(' to the same number."""
TOO_MANY_PARENTHESES: Final = (
    f"placementConstraints[].expression: at most {MAX_EXPRESSION_NESTING} '(' (the nesting of "
    "an expression is bounded)"
)
BINPACK_FIELDS: Final = ("cpu", "memory")
SPREAD_INSTANCE_FIELDS: Final = ("instanceId", "host")
ATTRIBUTE_PREFIX: Final = "attribute:"
MAX_ATTRIBUTE_NAME_LENGTH: Final = 128

CONSTRAINT_RULES: Final[tuple[dict[str, str], ...]] = (
    {
        "rule": "self.type != 'memberOf' || has(self.expression)",
        "message": "a memberOf constraint requires an expression",
        "fieldPath": ".expression",
        "reason": "FieldValueRequired",
    },
    {
        "rule": "self.type != 'distinctInstance' || !has(self.expression)",
        "message": "a distinctInstance constraint takes no expression",
        "fieldPath": ".expression",
        "reason": "FieldValueForbidden",
    },
    {
        "rule": (
            "!has(self.expression) || "
            f"self.expression.matches('^[^(]*([(][^(]*){{0,{MAX_EXPRESSION_NESTING}}}$')"
        ),
        "message": TOO_MANY_PARENTHESES,
        "fieldPath": ".expression",
    },
)

STRATEGY_RULES: Final[tuple[dict[str, str], ...]] = (
    {
        "rule": "self.type != 'random' || !has(self.field)",
        "message": "a random strategy takes no field",
        "fieldPath": ".field",
        "reason": "FieldValueForbidden",
    },
    {
        "rule": "self.type != 'binpack' || (has(self.field) && self.field in ['cpu', 'memory'])",
        "message": "a binpack strategy requires field cpu or memory",
        "fieldPath": ".field",
    },
    {
        "rule": (
            "self.type != 'spread' || (has(self.field) && (self.field in ['instanceId', 'host']"
            " || (self.field.startsWith('attribute:') && size(self.field) > 10)))"
        ),
        "message": "a spread strategy requires field instanceId, host or attribute:NAME",
        "fieldPath": ".field",
    },
)


def _validations(rules: tuple[dict[str, str], ...]) -> dict[str, Any]:
    """The CEL rules as the JSON-schema extension the CRD generator copies into the CRD."""
    return {"x-kubernetes-validations": [dict(rule) for rule in rules]}


class PlacementConstraint(BaseModel):
    """A rule every candidate container instance (node) must satisfy; binding, unlike strategies."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra=_validations(CONSTRAINT_RULES),
    )

    type: Literal["distinctInstance", "memberOf"] = Field(
        description=(
            "distinctInstance: no two tasks of the same group on one node. "
            "memberOf: the node must satisfy the cluster query language expression."
        )
    )
    expression: str | None = Field(
        default=None,
        max_length=MAX_EXPRESSION_LENGTH,
        description=(
            "Cluster query language expression, required for memberOf and not allowed for "
            "distinctInstance, e.g. 'attribute:ecs.availability-zone in [zone-a, zone-b]'."
        ),
    )

    @model_validator(mode="after")
    def _expression_matches_type(self) -> "PlacementConstraint":
        if self.type == "memberOf" and self.expression is None:
            raise ValueError(CONSTRAINT_RULES[0]["message"])
        if self.type == "distinctInstance" and self.expression is not None:
            raise ValueError(CONSTRAINT_RULES[1]["message"])
        if self.expression is not None and self.expression.count("(") > MAX_EXPRESSION_NESTING:
            raise ValueError(TOO_MANY_PARENTHESES)
        return self


class PlacementStrategy(BaseModel):
    """How to rank the candidate nodes; best effort, applied in list order (first = primary)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra=_validations(STRATEGY_RULES),
    )

    type: Literal["random", "spread", "binpack"] = Field(
        description=(
            "random: any candidate node. spread: fewest tasks of the same group per value of "
            "field. binpack: the node with the least remaining field that still fits."
        )
    )
    field: str | None = Field(
        default=None,
        max_length=len(ATTRIBUTE_PREFIX) + MAX_ATTRIBUTE_NAME_LENGTH,
        description=(
            "binpack: cpu or memory. spread: instanceId (or host, the same) or attribute:NAME, "
            "e.g. attribute:ecs.availability-zone. random: not allowed."
        ),
    )

    @model_validator(mode="after")
    def _field_matches_type(self) -> "PlacementStrategy":
        if self.type == "random" and self.field is not None:
            raise ValueError(STRATEGY_RULES[0]["message"])
        if self.type == "binpack" and self.field not in BINPACK_FIELDS:
            raise ValueError(STRATEGY_RULES[1]["message"])
        if self.type == "spread" and not _is_spread_field(self.field):
            raise ValueError(STRATEGY_RULES[2]["message"])
        return self


def _is_spread_field(field: str | None) -> bool:
    if field is None:
        return False
    if field in SPREAD_INSTANCE_FIELDS:
        return True
    return field.startswith(ATTRIBUTE_PREFIX) and len(field) > len(ATTRIBUTE_PREFIX)
