"""Building blocks shared by the custom resources: base models, conditions, tags, ECS number forms.

Every model uses snake_case attributes with the ECS (camelCase) names as aliases, accepts either
spelling on input and serialises by alias, so ``model_dump(mode="json", exclude_none=True)`` is the
object as the API server stores it. Cross-field rules are written as Kubernetes CEL in the JSON
schema (``x-kubernetes-validations``); the CRD generator copies them into the CRDs.
"""

import re
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticUseDefault, core_schema

from ecs_operator import API_GROUP, API_VERSION

__all__ = [
    "API_GROUP",
    "API_GROUP_VERSION",
    "API_VERSION",
    "EMPTY_IS_UNSET",
    "MAX_INT32",
    "MAX_LIST_ITEMS",
    "MAX_OBJECT_NAME_LENGTH",
    "MAX_TAGS",
    "OBJECT_NAME_PATTERN",
    "Condition",
    "EcsModel",
    "KeyValuePair",
    "ObjectMeta",
    "StatusModel",
    "Tag",
    "Text",
    "TextMap",
    "UnsupportedField",
    "cel_rules",
    "parse_cpu_units",
    "parse_memory_mib",
]

API_GROUP_VERSION: Final = f"{API_GROUP}/{API_VERSION}"

MAX_TAGS: Final = 50
MAX_INT32: Final = 2_147_483_647
"""Bound of every count and duration the operator does arithmetic with (ECS's Integer)."""
MAX_OBJECT_NAME_LENGTH: Final = 253
"""A Kubernetes object name (RFC 1123 subdomain), including a name derived from another."""
OBJECT_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
MAX_UNSUPPORTED_ENTRIES: Final = 100
MAX_CONDITION_MESSAGE_LENGTH: Final = 32768
MAX_TEXT_LENGTH: Final = 64 * 1024
"""No single text of a task definition can be longer than ECS allows the whole (64 KiB)."""
MAX_LIST_ITEMS: Final = 1024
"""Bound of the lists and maps ECS documents no limit for (arguments, variables, labels)."""
# ECS: 1,024 CPU units are one vCPU; EC2 tasks may use 128..196,608 units (192 vCPU).
MIN_TASK_CPU_UNITS: Final = 128
MAX_CPU_UNITS: Final = 196_608
# Docker >= 20.10 reserves 6 MiB per container, so ECS says not to go lower. The cap (16 TiB)
# only rejects absurd values; no node is that large.
MIN_MEMORY_MIB: Final = 6
MAX_MEMORY_MIB: Final = 16 * 1024 * 1024

TASK_CPU_PATTERN: Final = r"^([0-9]+|([0-9]+|[0-9]*\.[0-9]+) ?[vV][cC][pP][uU])$"
TASK_MEMORY_PATTERN: Final = r"^([0-9]+|([0-9]+|[0-9]*\.[0-9]+) ?[gG][bB])$"

ConditionStatus = Literal["True", "False", "Unknown"]
Text = Annotated[str, Field(max_length=MAX_TEXT_LENGTH)]
"""A free-form string (an argument, a variable's value, a label), at most 64 KiB."""
TextMap = Annotated[dict[str, Text], Field(max_length=MAX_LIST_ITEMS)]
"""Free-form options or labels: at most 1,024 entries."""
Timestamp = AwareDatetime


RuleReason = Literal["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired"]


def cel_rules(*rules: tuple[str, str, str] | tuple[str, str, str, RuleReason]) -> dict[str, Any]:
    """CEL rules ``(rule, message, fieldPath[, reason])`` as the JSON-schema extension the CRD
    keeps. Every rule names its field: kube-apiserver reports a failed rule at ``fieldPath``
    (relative to the node that holds the rule), and a rule at the root without one would be
    reported as ``<nil>``. ``reason`` defaults to ``FieldValueInvalid``."""
    validations: list[dict[str, str]] = []
    for rule in rules:
        entry = {"rule": rule[0], "message": rule[1], "fieldPath": rule[2]}
        if len(rule) == 4:
            entry["reason"] = rule[3]
        validations.append(entry)
    return {"x-kubernetes-validations": validations}


def _unset_if_empty(value: Any) -> Any:
    if value == "":
        raise PydanticUseDefault()
    return value


def _admit_empty(schema: JsonSchemaValue) -> None:
    for node in [schema, *schema.get("anyOf", ())]:
        if "enum" in node and "" not in node["enum"]:
            node["enum"] = [*node["enum"], ""]


class _EmptyIsUnset:
    """``""`` means the field is not set (its default applies)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_unset_if_empty, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        _admit_empty(json_schema)
        return json_schema


EMPTY_IS_UNSET: Final = _EmptyIsUnset()
"""Annotate an enum field with it (``Annotated[Literal[...] | None, EMPTY_IS_UNSET]``) so that
``""`` means "not set", as exported ECS definitions write an unset enum (``"ipcMode": ""``,
``"launchType": ""``): the schema's enum admits ``""`` and the model reads it as the default."""


class EcsModel(BaseModel):
    """Base of the spec models: ECS camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class StatusModel(BaseModel):
    """Base of the status models: like ``EcsModel``, but tolerant of fields a newer operator
    version wrote, so an upgrade or downgrade never makes an object unreadable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
    )


class ObjectMeta(BaseModel):
    """The parts of Kubernetes object metadata the operator reads; everything else is kept."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="allow",
    )

    name: str = Field(description="Object name, unique in its namespace.")
    namespace: str | None = Field(default=None, description="Namespace (the ECS cluster).")
    uid: str | None = Field(default=None, description="Unique id assigned by the API server.")
    generation: int | None = Field(default=None, description="Incremented on each spec change.")
    resource_version: str | None = Field(default=None, description="Optimistic-lock version.")
    labels: dict[str, str] | None = Field(default=None, description="Object labels.")
    annotations: dict[str, str] | None = Field(default=None, description="Object annotations.")


class KeyValuePair(EcsModel):
    """A name/value pair, as ECS environment entries are written."""

    name: str = Field(
        min_length=1, max_length=1024, description="Variable name; required on Kubernetes."
    )
    value: str | None = Field(
        default=None, max_length=MAX_TEXT_LENGTH, description="Variable value; absent means empty."
    )


class Tag(EcsModel):
    """An ECS resource tag. Keys starting with aws: (any case) are reserved by AWS."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "!self.key.matches('^[aA][wW][sS]:')",
                "tags[].key: the aws: prefix is reserved and cannot be used",
                ".key",
            )
        )
    )

    key: str = Field(min_length=1, max_length=128, description="Tag key, 1-128 characters.")
    value: str | None = Field(
        default=None, max_length=256, description="Tag value, 0-256 characters."
    )


class Condition(StatusModel):
    """A condition shaped like Kubernetes metav1.Condition."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Condition type in PascalCase, e.g. Ready, Stopped or Accepted.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed from."
    )
    last_transition_time: Timestamp = Field(
        description="When the condition last changed status (RFC 3339)."
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase machine-readable reason for the last transition.",
    )
    message: str = Field(
        default="",
        max_length=MAX_CONDITION_MESSAGE_LENGTH,
        description="Human-readable details; may be empty.",
    )


class UnsupportedField(StatusModel):
    """A field the operator accepted but cannot honour on Kubernetes, and why."""

    field: str = Field(
        max_length=512, description="Path of the field, e.g. spec.containerDefinitions[0].ulimits."
    )
    reason: str = Field(max_length=1024, description="Why it is not honoured, in one sentence.")
    read_only: bool | None = Field(
        default=None,
        description=(
            "True for an output field of ECS (describe-task-definition, describe-services) "
            "pasted with the input: accepted and ignored."
        ),
    )


def _decimal_units(number: str, scale: int) -> int:
    """``number`` (digits with an optional fraction) times ``scale``, rounded down."""
    whole, _, fraction = number.partition(".")
    value = int(whole or "0") * scale
    if fraction:
        value += int(fraction) * scale // 10 ** len(fraction)
    return value


def parse_cpu_units(value: int | str) -> int:
    """Task-level ``cpu`` as ECS converts it at registration: ``1024`` / ``"1024"`` are units,
    ``"1 vCPU"`` or ``"0.5 vcpu"`` are vCPUs (1 vCPU = 1024 units). Raises ``ValueError``."""
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(TASK_CPU_PATTERN, text):
        raise ValueError(f"cpu {value!r} is not CPU units ('1024') or vCPUs ('1 vCPU')")
    number = re.sub(r"(?i) ?vcpu$", "", text)
    units = int(text) if text.isdigit() else _decimal_units(number, 1024)
    if not MIN_TASK_CPU_UNITS <= units <= MAX_CPU_UNITS:
        raise ValueError(
            f"cpu {value!r} is {units} units; a task takes {MIN_TASK_CPU_UNITS}-{MAX_CPU_UNITS}"
        )
    return units


def parse_memory_mib(value: int | str) -> int:
    """Task-level ``memory`` as ECS converts it: ``2048`` / ``"2048"`` are MiB, ``"2GB"`` or
    ``"0.5 GB"`` are GiB (ECS's GB is 1,024 MiB). Raises ``ValueError``."""
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(TASK_MEMORY_PATTERN, text):
        raise ValueError(f"memory {value!r} is not MiB ('2048') or GB ('2GB')")
    number = re.sub(r"(?i) ?gb$", "", text)
    mib = int(text) if text.isdigit() else _decimal_units(number, 1024)
    if not MIN_MEMORY_MIB <= mib <= MAX_MEMORY_MIB:
        raise ValueError(
            f"memory {value!r} is {mib} MiB; allowed {MIN_MEMORY_MIB}-{MAX_MEMORY_MIB}"
        )
    return mib


def _check_cpu(value: int | str) -> int | str:
    parse_cpu_units(value)
    return value


def _check_memory(value: int | str) -> int | str:
    parse_memory_mib(value)
    return value


TaskCpu = Annotated[
    Annotated[int, Field(ge=MIN_TASK_CPU_UNITS, le=MAX_CPU_UNITS)]
    | Annotated[str, Field(max_length=32, pattern=TASK_CPU_PATTERN)],
    AfterValidator(_check_cpu),
]
"""Task-level CPU: an integer or a string, as ECS accepts (``1024``, ``"1024"``, ``"1 vCPU"``)."""

TaskMemory = Annotated[
    Annotated[int, Field(ge=MIN_MEMORY_MIB, le=MAX_MEMORY_MIB)]
    | Annotated[str, Field(max_length=32, pattern=TASK_MEMORY_PATTERN)],
    AfterValidator(_check_memory),
]
"""Task-level memory: an integer or a string, as ECS accepts (``2048``, ``"2048"``, ``"2GB"``)."""
