"""ECS-worded status strings and Kubernetes Event reasons, in one place.

ECS users search for the exact texts ECS writes (``Essential container in task exited``,
``CannotPullContainerError: ...``), so the operator writes them verbatim; the texts ECS has no
counterpart for follow the same style and are marked below. Event reasons are CamelCase, unique
and specific, as the Kubernetes API conventions ask.
"""

from typing import Final, Literal

MAX_REASON_LENGTH: Final = 1024
"""ECS caps ``stoppedReason`` and a container's ``reason`` at 1,024 characters."""

# stoppedReason texts written by ECS itself.
ESSENTIAL_CONTAINER_EXITED: Final = "Essential container in task exited"
TASK_STOPPED_BY_USER: Final = "Task stopped by user"
OUT_OF_MEMORY: Final = "OutOfMemoryError: Container killed due to memory usage"

# Category prefixes ECS puts in front of a start failure (``<prefix>: <detail>``).
CANNOT_PULL_CONTAINER: Final = "CannotPullContainerError"
RESOURCE_INITIALIZATION: Final = "ResourceInitializationError"
CANNOT_START_CONTAINER: Final = "CannotStartContainerError"
TASK_FAILED_TO_START: Final = "TaskFailedToStart"

# Operator wording (ECS has no such case): the Pod was removed by someone other than the operator.
POD_DELETED: Final = "Task stopped: its pod was deleted"
POD_DELETED_BEFORE_START: Final = "TaskFailedToStart: its pod was deleted before the task started"

EventType = Literal["Normal", "Warning"]

# Kubernetes Event reasons.
REASON_PENDING: Final = "TaskPending"
REASON_ACTIVATING: Final = "TaskActivating"
REASON_RUNNING: Final = "TaskRunning"
REASON_DEACTIVATING: Final = "TaskDeactivating"
REASON_STOPPING: Final = "TaskStopping"
REASON_STOPPED: Final = "TaskStopped"
REASON_ESSENTIAL_EXITED: Final = "EssentialContainerExited"
REASON_FAILED_TO_START: Final = "TaskFailedToStart"
REASON_INTERRUPTED: Final = "TaskInterrupted"
REASON_CONTAINER_EXITED: Final = "ContainerExited"
REASON_UNHEALTHY: Final = "TaskUnhealthy"
REASON_HEALTHY: Final = "TaskHealthy"
REASON_NODE_LOST: Final = "TaskNodeLost"


def clip(text: str, limit: int = MAX_REASON_LENGTH) -> str:
    """``text`` cut to ``limit`` characters, ending in ``...`` when cut (ECS's field limit)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def start_failure(prefix: str, detail: str) -> str:
    """A start failure in ECS's ``<Category>Error: <detail>`` form, clipped to the field limit."""
    detail = " ".join(detail.split())
    return clip(f"{prefix}: {detail}" if detail else prefix)


def dependency_not_successful(dependency: str, target: str) -> str:
    """The ECS agent's reason for a container whose SUCCESS dependency exited non-zero."""
    return (
        f"dependency graph: failed to resolve container ordering dependency [{dependency}] "
        f"for target [{target}] as dependency did not exit successfully."
    )


def dependency_never_started(dependency: str, target: str) -> str:
    """The ECS agent's reason for a container whose dependency can never start."""
    return (
        f"dependency graph: failed to resolve container ordering dependency [{dependency}] "
        f"for target [{target}] because dependency will never start"
    )


def unschedulable(detail: str) -> str:
    """stoppedReason of a task whose pod no node accepted (operator wording, ECS's prefix)."""
    return start_failure(TASK_FAILED_TO_START, detail or "no node can run the task")


def node_lost(node: str) -> str:
    """stoppedReason of a task whose node stopped answering (modelled on ECS's
    ``Host EC2 (instance {id}) stopped/terminated``)."""
    return f"Task stopped: its node (node {node}) was lost"


def pod_disrupted(cause: str, detail: str) -> str:
    """stoppedReason of a task whose pod Kubernetes removed (eviction, preemption, pod GC)."""
    detail = " ".join(detail.split())
    return clip(f"Task stopped: its pod was {cause}" + (f": {detail}" if detail else ""))


def pod_failed(detail: str) -> str:
    """stoppedReason of a task whose pod ended without an essential container exiting."""
    return clip("Task stopped: its pod failed: " + " ".join(detail.split()))


def container_exited(name: str, exit_code: int | None, reason: str | None = None) -> str:
    """Event message for a container that stopped, e.g. ``Container log exited with code 1``."""
    code = "without running" if exit_code is None else f"with code {exit_code}"
    return f"Container {name} exited {code}" + (f": {reason}" if reason else "")


def status_message(task: str, last_status: str, node: str | None) -> str:
    """Event message for a lifecycle step, e.g. ``Task web-1 is RUNNING on node (node n1)``."""
    where = f" on node (node {node})" if node else ""
    return f"Task {task} is {last_status}{where}"
