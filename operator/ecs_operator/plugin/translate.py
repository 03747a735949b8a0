"""ECS requests and `kubectl ecs` flags -> the manifests and patches to send (pure: no I/O, no
clock, no randomness; what varies is passed in).

Field names and validation are the models' own: a request is validated by its ECS (camelCase)
names only, so a key ECS does not know (or `container_definitions`) is refused naming it, as the
AWS CLI refuses an unknown parameter, instead of being pruned by the API server without a word.
What is sent is the validated model dumped with the fields the user gave, so the object reads
like the request. The rest of the checks (CEL rules, the operator's own) stay where they are:
the API server refuses at admission with the field named, the operator reports a condition.

Request-level keys that are not part of an object's spec: CreateService's `serviceName` (the
Service's name), `cluster` (its namespace, unless `--cluster` is given) and `clientToken`
(ECS's idempotency token; creating an object by name is idempotent already, so it is ignored);
RegisterTaskDefinition's `family` is the TaskDefinition's name and stays in its spec.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from ecs_operator.core.validation import field_path
from ecs_operator.models.common import (
    API_GROUP_VERSION,
    MAX_OBJECT_NAME_LENGTH,
    OBJECT_NAME_PATTERN,
)
from ecs_operator.models.service import MAX_SERVICE_NAME_LENGTH, ServiceSpec
from ecs_operator.models.task import (
    MAX_OVERRIDES_JSON_CHARS,
    MAX_RUN_TASK_COUNT,
    MAX_STOPPED_REASON_SPEC,
    TaskSpec,
)
from ecs_operator.models.taskdefinition import (
    MAX_FAMILY_LENGTH,
    TaskDefinitionSpec,
    parse_task_definition_ref,
)

TASK_NAME_TOKEN_LENGTH: Final = 10
MAX_NAMESPACE_LENGTH: Final = 63
NAMESPACE_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A family is a TaskDefinition's name: ECS allows letters, digits, - and _, a Kubernetes
# object name lowercase letters, digits, - and . (and no . in a family): what both allow.
FAMILY_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_TASK_ID: Final = re.compile(r"^[0-9a-f]{32}$")

# Flags that set a request field, for messages: "--started-by: ..." rather than "startedBy".
RUN_TASK_FLAGS: Final = {
    "taskDefinition": "--task-definition",
    "overrides": "--overrides",
    "startedBy": "--started-by",
    "group": "--group",
    "placementConstraints": "--placement-constraints",
    "placementStrategy": "--placement-strategy",
}
UPDATE_SERVICE_FLAGS: Final = {
    "desiredCount": "--desired-count",
    "taskDefinition": "--task-definition",
    "forceNewDeployment": "--force-new-deployment",
}

M = TypeVar("M", bound=BaseModel)


class InputError(ValueError):
    """Bad input: each problem names its field or flag (`kubectl ecs` exits with 2)."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


# --- parsing and validation -------------------------------------------------------------------


def parse_json(text: str, what: str) -> Any:
    """`text` decoded as JSON; an `InputError` naming `what` and where the JSON breaks."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"{what}: not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{what}: expected a JSON object, got {_type_name(value)}")
    return value


def _message(issue: Mapping[str, Any]) -> str:
    kind = issue["type"]
    if kind == "extra_forbidden":
        return "unknown field (not a field of this ECS request, or one ecs-operator does not take)"
    if kind == "missing":
        return "required"
    return str(issue["msg"]).removeprefix("Value error, ")


def _location(loc: Sequence[int | str]) -> list[int | str]:
    """A pydantic location without the names of union members and validators pydantic adds
    (`function-after[...]`, `int`, `str`): the path as the user wrote it."""
    return [part for part in loc if isinstance(part, int) or re.fullmatch(r"[A-Za-z]\w*", part)]


def problems(error: ValidationError, prefix: str = "", flags: Mapping[str, str] = {}) -> list[str]:
    """Every problem of `error`, each naming its field: `prefix.path: message`; a path that
    starts with a key in `flags` is named after the flag (`--started-by: ...`). The messages of
    one field (the members of a union) are joined."""
    found: dict[str, list[str]] = {}
    for issue in error.errors():
        loc = _location(issue["loc"])
        message = _message(issue)
        if not loc:  # a rule across fields: its message names them (as the CRD's does)
            path = ""
            message = message.removeprefix("spec.")
        elif (flag := flags.get(str(loc[0]))) is not None:
            rest = field_path(loc[1:])
            path = f"{flag}: {rest}" if rest else flag
        else:
            path = field_path([prefix, *loc] if prefix else loc)
        messages = found.setdefault(path, [])
        if message not in messages:
            messages.append(message)
    return [
        f"{path}: {' or '.join(messages)}" if path else "; ".join(messages)
        for path, messages in found.items()
    ]


def validate(model: type[M], data: Any, what: str = "input", flags: Mapping[str, str] = {}) -> M:
    """`data` as `model`, by the ECS (alias) names only; an `InputError` naming each field."""
    try:
        return model.model_validate(_object(data, what), by_alias=True, by_name=False)
    except ValidationError as error:
        prefix = "" if what == "input" else what
        raise InputError(problems(error, prefix, flags)) from None


def dump(model: BaseModel) -> dict[str, Any]:
    """The fields the user gave, by their ECS names (what is sent)."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _check_name(name: str, field: str, pattern: str, limit: int, why: str) -> None:
    if len(name) > limit or not re.fullmatch(pattern, name):
        raise InputError(
            f"{field}: {name!r} cannot name a Kubernetes object ({why}): use at most {limit} "
            "lowercase letters, digits and '-', starting and ending with a letter or digit"
        )


# --- cluster and references ---------------------------------------------------------------------


def cluster_namespace(cluster: str) -> str:
    """The namespace an ECS cluster name (or cluster ARN) means."""
    name = cluster.rsplit("/", 1)[-1] if cluster.startswith("arn:") else cluster
    if len(name) > MAX_NAMESPACE_LENGTH or not re.fullmatch(NAMESPACE_PATTERN, name):
        raise InputError(
            f"--cluster: {cluster!r} is not a namespace name (a cluster is a Kubernetes "
            f"namespace: at most {MAX_NAMESPACE_LENGTH} lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return name


def object_reference(reference: str) -> str:
    """A name from a name or an ECS ARN (`arn:aws:ecs:…:task/CLUSTER/ID`, `…:service/…/NAME`)."""
    return reference.rsplit("/", 1)[-1] if reference.startswith("arn:") else reference


def check_task_definition_reference(reference: Any, field: str) -> None:
    """That `reference` is family, family:revision or a task definition ARN, said in words
    rather than as the pattern."""
    try:
        parse_task_definition_ref(reference)
    except ValueError as error:
        raise InputError(f"{field}: {error}") from None


def is_task_id(reference: str) -> bool:
    """Whether `reference` may be a task's id (its `status.taskArn`, 32 hex characters)."""
    return _TASK_ID.fullmatch(reference) is not None


# --- register-task-definition -------------------------------------------------------------------


def task_definition_manifest(request: Any) -> dict[str, Any]:
    """The TaskDefinition a RegisterTaskDefinition request registers: named after its family,
    the request as its spec (`family` included, as the CRD allows when it equals the name)."""
    body = _object(request, "input")
    spec = validate(TaskDefinitionSpec, body)
    family = body.get("family")
    if family is None:
        raise InputError("family: required (the TaskDefinition is named after its family)")
    _check_name(
        str(family),
        "family",
        FAMILY_NAME_PATTERN,
        MAX_FAMILY_LENGTH,
        "a TaskDefinition is named after its family",
    )
    return {
        "apiVersion": API_GROUP_VERSION,
        "kind": "TaskDefinition",
        "metadata": {"name": family},
        "spec": dump(spec),
    }


def replace_spec(existing: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """`existing` with `manifest`'s spec (a PUT: metadata and its resourceVersion kept, so a
    concurrent change is a conflict rather than lost)."""
    return {
        "apiVersion": manifest["apiVersion"],
        "kind": manifest["kind"],
        "metadata": dict(existing["metadata"]),
        "spec": manifest["spec"],
    }


# --- run-task and stop-task ---------------------------------------------------------------------


def task_name(family: str, token: str) -> str:
    """`FAMILY-TOKEN`, cut to a valid object name (the Task's Pod has the same name)."""
    room = MAX_OBJECT_NAME_LENGTH - len(token) - 1
    return f"{family[:room].rstrip('-.')}-{token}"


def run_task_manifests(
    task_definition: str,
    tokens: Sequence[str],
    *,
    overrides: Any = None,
    started_by: str | None = None,
    group: str | None = None,
    placement_constraints: Any = None,
    placement_strategy: Any = None,
) -> list[dict[str, Any]]:
    """One Task per token (RunTask's `count`), named `FAMILY-TOKEN`, all with the same spec:
    the plugin answers with every task at once, as RunTask does, rather than one Task with
    `spec.count` whose other tasks the operator creates later."""
    if not 1 <= len(tokens) <= MAX_RUN_TASK_COUNT:
        raise InputError(
            f"--count: {len(tokens)} is out of range: ECS runs 1-{MAX_RUN_TASK_COUNT} tasks "
            "per call"
        )
    check_task_definition_reference(task_definition, "--task-definition")
    request = {
        "taskDefinition": task_definition,
        "overrides": overrides,
        "startedBy": started_by,
        "group": group,
        "placementConstraints": placement_constraints,
        "placementStrategy": placement_strategy,
    }
    spec = validate(
        TaskSpec, {k: v for k, v in request.items() if v is not None}, flags=RUN_TASK_FLAGS
    )
    if spec.overrides is not None:
        size = len(spec.overrides.model_dump_json(exclude_none=True))
        if size > MAX_OVERRIDES_JSON_CHARS:
            raise InputError(
                f"--overrides: {size} characters of JSON; ECS allows at most "
                f"{MAX_OVERRIDES_JSON_CHARS}"
            )
    family, _ = parse_task_definition_ref(task_definition)
    body = dump(spec)
    return [
        {
            "apiVersion": API_GROUP_VERSION,
            "kind": "Task",
            "metadata": {"name": task_name(family, token)},
            "spec": dict(body),
        }
        for token in tokens
    ]


def stop_task_patch(reason: str | None) -> dict[str, Any]:
    """StopTask as a user writes it: `spec.desiredStatus: STOPPED` and the reason, which the
    operator reports as `stoppedReason` (default 'Task stopped by user'), stopCode
    UserInitiated (ServiceSchedulerInitiated for a service's task)."""
    spec: dict[str, Any] = {"desiredStatus": "STOPPED"}
    if reason:
        if len(reason) > MAX_STOPPED_REASON_SPEC:
            raise InputError(
                f"--reason: {len(reason)} characters; at most {MAX_STOPPED_REASON_SPEC}"
            )
        spec["stoppedReason"] = reason
    return {"spec": spec}


# --- create-service and update-service ----------------------------------------------------------


def service_manifest(
    request: Any,
    *,
    service_name: str | None = None,
    task_definition: str | None = None,
    desired_count: int | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The Service a CreateService request creates, and the request's `cluster` (None when it
    names none). Flags given on the command line replace the request's fields, as the AWS CLI
    lets them."""
    body = dict(_object(request, "input"))
    for key, value in (
        ("serviceName", service_name),
        ("taskDefinition", task_definition),
        ("desiredCount", desired_count),
    ):
        if value is not None:
            body[key] = value
    name = body.pop("serviceName", None)
    cluster = body.pop("cluster", None)
    body.pop("clientToken", None)
    if cluster is not None and not isinstance(cluster, str):
        raise InputError(f"cluster: expected a string, got {_type_name(cluster)}")
    if "taskDefinition" in body:
        check_task_definition_reference(body["taskDefinition"], "taskDefinition")
    spec = validate(ServiceSpec, body)
    if name is None:
        raise InputError("serviceName: required (the Service is named after it)")
    if not isinstance(name, str):
        raise InputError(f"serviceName: expected a string, got {_type_name(name)}")
    _check_name(
        name,
        "serviceName",
        OBJECT_NAME_PATTERN,
        MAX_SERVICE_NAME_LENGTH,
        "the Service is named after it, and its tasks after the Service",
    )
    manifest = {
        "apiVersion": API_GROUP_VERSION,
        "kind": "Service",
        "metadata": {"name": name},
        "spec": dump(spec),
    }
    return manifest, cluster


def deployment_token(now: datetime, previous: str | None) -> str:
    """A new `forceNewDeployment` token (the spec's stand-in for the one-shot flag): the time,
    made different from the previous token if it ever equals it."""
    token = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return token if token != previous else f"{token}-1"


def update_service_patch(
    spec: Mapping[str, Any],
    *,
    desired_count: int | None = None,
    task_definition: str | None = None,
    force_token: str | None = None,
) -> dict[str, Any]:
    """UpdateService as a merge patch of the Service's spec; the updated spec is validated
    (a DAEMON service takes no desiredCount, counts are 0-5000, …) before anything is sent."""
    changes: dict[str, Any] = {}
    if desired_count is not None:
        changes["desiredCount"] = desired_count
    if task_definition is not None:
        check_task_definition_reference(task_definition, "--task-definition")
        changes["taskDefinition"] = task_definition
    if force_token is not None:
        changes["forceNewDeployment"] = force_token
    if not changes:
        raise InputError(
            "update-service: give at least one of --desired-count, --task-definition and "
            "--force-new-deployment"
        )
    validate(ServiceSpec, {**spec, **changes}, flags=UPDATE_SERVICE_FLAGS)
    return {"spec": changes}
