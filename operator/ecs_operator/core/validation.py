"""Checks of a task definition (and of a Task's changes to it) that the CRD cannot express.

The CRD rejects at admission what needs no arithmetic and no other object. The operator checks
the rest, with the same clarity (each problem names its field):

- a container's ``memoryReservation`` below its ``memory`` once a Task's overrides are applied
  (the CRD checks each object alone);
- port names unique across containers (the CRD checks each container alone: across containers
  the rule costs more than kube-apiserver's CEL budget allows);
- memory and CPU sums against the task-level values, which ECS writes as unit strings
  (``"2GB"``, ``"1 vCPU"``): every container's ``memory`` at most the task's, the containers'
  reservations (``memoryReservation``, else ``memory``) and ``cpu`` summed at most the task's;
- everything that stops a pod from being rendered (``core/render.py``): dependency cycles,
  secret references and task roles that are not Kubernetes names, and what the security policy
  refuses (``core/security.py``);
- for a Task: the same with its overrides, its overrides' size (at most 8,192 characters of
  JSON, as ECS's RunTask), and its placement constraints counted together with the task
  definition's (at most 10).

What is accepted but not honoured is reported by ``unsupported_fields`` (the rules live in
``core/render.py``); a TaskDefinition also reports the read-only fields of
describe-task-definition's output and its tags (``task_definition_unsupported``). Every path is
where the user wrote the field: inside ``spec.taskDefinition`` when the spec is
describe-task-definition's output.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from ecs_operator.core import events
from ecs_operator.core.conditions import set_condition
from ecs_operator.core.render import NOT_HONOURED, effective_spec, inspect_task
from ecs_operator.core.security import SecurityPolicy, Violation
from ecs_operator.models.common import Condition, UnsupportedField
from ecs_operator.models.task import (
    CONDITION_READY,
    CONDITION_STOPPED,
    MAX_OVERRIDES_JSON_CHARS,
    TaskSpec,
)
from ecs_operator.models.taskdefinition import TaskDefinitionSpec, user_path

MAX_PLACEMENT_CONSTRAINTS: Final = 10


def field_path(location: Sequence[int | str]) -> str:
    """A pydantic error location as the field path users write: ``spec.volumes[0].name``."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def validation_problems(error: ValidationError, *, wrapped: bool = False) -> str:
    """Every problem of a model validation, each naming its field, on one line. ``wrapped``:
    the TaskDefinition's spec was describe-task-definition's output, whose fields the model
    read from ``spec.taskDefinition``."""
    problems = []
    for issue in error.errors():
        path = user_path(field_path(issue["loc"]), wrapped=wrapped)
        message = issue["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {message}" if path and not message.startswith(path) else message)
    return "; ".join(problems)


def unreadable_task_status(
    status: Mapping[str, Any] | None, error: ValidationError, generation: int, now: datetime
) -> dict[str, Any] | None:
    """The status of a Task the CRD admitted but the operator cannot read (a stricter rule, or a
    CRD of another version): STOPPED with ``TaskFailedToStart`` and ECS's ``ClientException``
    naming each field, and the Ready and Stopped conditions saying so. None when the status
    already says it (one write, however often the Task is reconciled)."""
    reason = events.clip(events.client_exception(validation_problems(error)))
    if (status or {}).get("stoppedReason") == reason:
        return None
    try:
        previous = [Condition.model_validate(c) for c in (status or {}).get("conditions") or ()]
    except ValidationError:
        previous = []  # the conditions are rewritten below either way
    conditions = [
        set_condition(
            previous, CONDITION_READY, "False", "Stopped", "The task is STOPPED", generation, now
        ),
        set_condition(
            previous, CONDITION_STOPPED, "True", "TaskFailedToStart", reason, generation, now
        ),
    ]
    return {
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stopCode": "TaskFailedToStart",
        "stoppedReason": reason,
        "stoppedAt": now.isoformat(),
        "observedGeneration": generation,
        "conditions": [c.model_dump(mode="json", exclude_none=True) for c in conditions],
    }


def _resource_problems(spec: TaskDefinitionSpec, task: TaskSpec | None) -> list[Violation]:
    effective = effective_spec(spec, task.overrides if task else None)
    with_overrides = " with the task's overrides" if task and task.overrides else ""
    task_memory = effective.memory_mib
    task_cpu = effective.cpu_units
    problems: list[Violation] = []
    for index, container in enumerate(effective.container_definitions):
        hard, soft = container.memory, container.memory_reservation
        if hard is not None and soft is not None and soft >= hard:
            problems.append(
                Violation(
                    f"spec.containerDefinitions[{index}].memoryReservation",
                    f"memoryReservation ({soft} MiB) must be less than memory ({hard} MiB)"
                    f"{with_overrides}",
                )
            )
        if (
            task_memory is not None
            and container.memory is not None
            and container.memory > task_memory
        ):
            problems.append(
                Violation(
                    f"spec.containerDefinitions[{index}].memory",
                    f"the container's memory ({container.memory} MiB) is greater than the "
                    f"task's ({task_memory} MiB){with_overrides}",
                )
            )
    reserved = sum(c.memory_reservation or c.memory or 0 for c in effective.container_definitions)
    if task_memory is not None and reserved > task_memory:
        problems.append(
            Violation(
                "spec.containerDefinitions",
                f"the containers reserve {reserved} MiB of memory (memoryReservation, else "
                f"memory), more than the task's {task_memory} MiB{with_overrides}",
            )
        )
    cpu = sum(c.cpu or 0 for c in effective.container_definitions)
    if task_cpu is not None and cpu > task_cpu:
        problems.append(
            Violation(
                "spec.containerDefinitions",
                f"the containers reserve {cpu} CPU units, more than the task's "
                f"{task_cpu}{with_overrides}",
            )
        )
    return problems


def _port_name_problems(spec: TaskDefinitionSpec) -> list[Violation]:
    """Port names are unique in the task definition (the CRD checks each container alone)."""
    owners: dict[str, str] = {}
    problems = []
    for index, container in enumerate(spec.container_definitions):
        names = {mapping.name for mapping in container.port_mappings or () if mapping.name}
        for position, mapping in enumerate(container.port_mappings or ()):
            if mapping.name in owners and owners[mapping.name] != container.name:
                problems.append(
                    Violation(
                        f"spec.containerDefinitions[{index}].portMappings[{position}].name",
                        f"port name {mapping.name!r} is also used by container "
                        f"{owners[mapping.name]!r}; port names must be unique in the task "
                        "definition",
                    )
                )
        for name in names:
            owners.setdefault(name, container.name)
    return problems


def task_definition_problems(spec: TaskDefinitionSpec, policy: SecurityPolicy) -> list[Violation]:
    """Why ``spec`` cannot run under ``policy``; empty when it can. Each names its field where
    the user wrote it."""
    return [
        Violation(spec.user_path(problem.field), problem.message)
        for problem in (
            *_resource_problems(spec, None),
            *_port_name_problems(spec),
            *inspect_task(spec, None, policy).violations,
        )
    ]


def task_problems(
    spec: TaskDefinitionSpec, task: TaskSpec, policy: SecurityPolicy
) -> list[Violation]:
    """Why ``task`` cannot run revision ``spec`` under ``policy``; empty when it can."""
    problems = [*_resource_problems(spec, task), *inspect_task(spec, task, policy).violations]
    if task.overrides is not None:
        size = len(task.overrides.model_dump_json(exclude_none=True))
        if size > MAX_OVERRIDES_JSON_CHARS:
            problems.append(
                Violation(
                    "spec.overrides",
                    f"{size} characters of JSON; ECS allows at most {MAX_OVERRIDES_JSON_CHARS}",
                )
            )
    names = {container.name for container in spec.container_definitions}
    overrides = task.overrides.container_overrides if task.overrides else None
    for index, override in enumerate(overrides or []):
        if override.name not in names:
            problems.append(
                Violation(
                    f"spec.overrides.containerOverrides[{index}].name",
                    f"no container named {override.name!r} in the task definition "
                    f"(containers: {', '.join(sorted(names))})",
                )
            )
    constraints: Sequence[object] = [
        *(spec.placement_constraints or []),
        *(task.placement_constraints or []),
    ]
    if len(constraints) > MAX_PLACEMENT_CONSTRAINTS:
        problems.append(
            Violation(
                "spec.placementConstraints",
                f"{len(constraints)} placement constraints together with the task "
                f"definition's; at most {MAX_PLACEMENT_CONSTRAINTS}",
            )
        )
    return problems


def unsupported_fields(
    spec: TaskDefinitionSpec, task: TaskSpec | None = None
) -> list[UnsupportedField]:
    """What running ``spec`` (with ``task``'s changes) accepts but does not honour."""
    return inspect_task(spec, task, SecurityPolicy.from_allow_privileged(True)).unsupported


def task_definition_unsupported(spec: TaskDefinitionSpec) -> list[UnsupportedField]:
    """What registering ``spec`` accepts but does not honour, each at the path the user wrote:
    describe-task-definition's read-only output fields (``read_only``), the tags, then what
    running it would not honour (``unsupported_fields``)."""
    found = [
        UnsupportedField(
            field=spec.user_path(f"spec.{name}"),
            reason=NOT_HONOURED["read-only fields of describe-task-definition"],
            read_only=True,
        )
        for name in spec.read_only_fields
    ]
    if spec.tags:
        found.append(
            UnsupportedField(field="spec.tags", reason=NOT_HONOURED["tags (task definition)"])
        )
    found += [
        unsupported.model_copy(update={"field": spec.user_path(unsupported.field)})
        for unsupported in unsupported_fields(spec)
    ]
    return found
