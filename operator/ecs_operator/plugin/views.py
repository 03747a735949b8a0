"""What `kubectl ecs` shows (pure): ECS's describe output from the objects, plain-text tables,
and the waiters' verdicts.

The JSON has ECS's shape and names (`{"tasks": [...], "failures": [...]}`, `lastStatus`,
`stopCode`, `containers[].exitCode`, `deployments[]`, `events[]`), built from the objects'
`status` (which is ECS's description already) and their `spec`. Where Kubernetes has no ARN the
value is what names the thing here: `clusterArn` is the namespace, `taskArn` the task's id
(32 hex characters), `taskDefinitionArn` `family:revision`; a task also carries `name`, its
object's name (what the other commands take). The operator's own bookkeeping (conditions,
`observedGeneration`, the scheduler's state, `specHash`) is left out. A deployment also lists
its lifecycle hook runs (`lifecycleHookDetails`, ECS's detail plus the operator's
`lifecycleStage`, `rollback` …), the table in a LIFECYCLE HOOKS section whose ROLLBACK column
marks the runs of a rollback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ecs_operator.core.events import printable

MISSING: Final = "MISSING"
TABLE_EVENTS: Final = 10
"""Events a service table shows (the newest); `--output json` has them all (up to 100)."""
_TASK_BOOKKEEPING: Final = frozenset(
    {"conditions", "observedGeneration", "unsupported", "revision"}
)
_TASK_SPEC_FIELDS: Final = ("overrides", "tags", "launchType", "enableExecuteCommand")
_DEPLOYMENT_FIELDS: Final = (
    "id",
    "status",
    "taskDefinition",
    "desiredCount",
    "pendingCount",
    "runningCount",
    "failedTasks",
    "createdAt",
    "updatedAt",
    "rolloutState",
    "rolloutStateReason",
    # Not a member of ECS's Deployment (ECS lists a service deployment's): each deployment's
    # lifecycle hook runs as its status has them, a rollback's with `rollback: true`.
    "lifecycleHookDetails",
)
_SERVICE_SPEC_SKIPPED: Final = frozenset({"taskDefinition", "desiredCount", "forceNewDeployment"})


def _parts(obj: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    return (
        dict(obj.get("metadata") or {}),
        dict(obj.get("spec") or {}),
        dict(obj.get("status") or {}),
    )


def _present(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def failure(reference: str) -> dict[str, str]:
    """ECS's entry for a name that names nothing: `{"arn": …, "reason": "MISSING"}`."""
    return {"arn": reference, "reason": MISSING}


# --- descriptions --------------------------------------------------------------------------------


def describe_task_definition(obj: Mapping[str, Any]) -> dict[str, Any]:
    """RegisterTaskDefinition's / DescribeTaskDefinition's `taskDefinition`: the spec with
    the latest revision's number, reference and state."""
    metadata, spec, status = _parts(obj)
    described = _present(
        {
            "taskDefinitionArn": status.get("taskDefinitionArn"),
            "family": metadata.get("name"),
            "revision": status.get("revision"),
            "status": status.get("status"),
        }
    )
    described.update({key: value for key, value in spec.items() if key != "family"})
    described.update(_present({"registeredAt": status.get("registeredAt")}))
    return described


def describe_task(obj: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeTasks' entry for one Task."""
    metadata, spec, status = _parts(obj)
    described = _present(
        {
            "name": metadata.get("name"),
            "taskArn": status.get("taskArn"),
            "clusterArn": metadata.get("namespace"),
            "taskDefinitionArn": status.get("taskDefinitionArn") or spec.get("taskDefinition"),
            "lastStatus": status.get("lastStatus"),
            # A StopTask is the spec's desiredStatus: shown at once, as ECS does.
            "desiredStatus": "STOPPED"
            if "STOPPED" in (spec.get("desiredStatus"), status.get("desiredStatus"))
            else "RUNNING",
            "startedBy": status.get("startedBy") or spec.get("startedBy"),
            "group": status.get("group") or spec.get("group"),
            "createdAt": status.get("createdAt") or metadata.get("creationTimestamp"),
        }
    )
    for key, value in status.items():
        if key not in _TASK_BOOKKEEPING and key not in described:
            described[key] = value
    for key in _TASK_SPEC_FIELDS:
        if key in spec:
            described[key] = spec[key]
    return described


def describe_service(obj: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeServices' entry for one Service. `desiredCount` is the spec's (ECS shows an
    UpdateService's count at once); a DAEMON service's is the operator's count of nodes."""
    metadata, spec, status = _parts(obj)
    desired = spec.get("desiredCount")
    described = _present(
        {
            "serviceName": metadata.get("name"),
            "clusterArn": metadata.get("namespace"),
            "status": "DRAINING" if metadata.get("deletionTimestamp") else "ACTIVE",
            "taskDefinition": status.get("taskDefinition") or spec.get("taskDefinition"),
            "desiredCount": desired if desired is not None else status.get("desiredCount"),
            "runningCount": status.get("runningCount", 0),
            "pendingCount": status.get("pendingCount", 0),
            "schedulingStrategy": spec.get("schedulingStrategy", "REPLICA"),
        }
    )
    for key, value in spec.items():
        if key not in _SERVICE_SPEC_SKIPPED and key not in described:
            described[key] = value
    described["deployments"] = [
        {key: d[key] for key in _DEPLOYMENT_FIELDS if d.get(key) is not None}
        for d in status.get("deployments") or ()
    ]
    described["events"] = list(status.get("events") or ())
    described.update(_present({"createdAt": metadata.get("creationTimestamp")}))
    return described


_STOPPING_OR_STOPPED: Final = frozenset({"STOPPING", "DEPROVISIONING", "STOPPED"})


def departed_service(
    name: str, namespace: str, tasks: Iterable[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """DescribeServices' entry for Service `name`, deleted while tasks of it (Task bodies) are
    still there: garbage collection deletes them, a load-balanced one once its targets drained.
    As ECS's DeleteService: DRAINING while one of them is not yet STOPPING or STOPPED, then
    INACTIVE. None when no task of it is left: nothing remembers it (MISSING)."""
    statuses = [
        (task.get("status") or {}).get("lastStatus")
        for task in tasks
        if any(
            r.get("kind") == "Service" and r.get("name") == name
            for r in (task.get("metadata") or {}).get("ownerReferences") or ()
        )
    ]
    if not statuses:
        return None
    draining = any(status not in _STOPPING_OR_STOPPED for status in statuses)
    return {
        "serviceName": name,
        "clusterArn": namespace,
        "status": "DRAINING" if draining else "INACTIVE",
        "desiredCount": 0,
        "runningCount": statuses.count("RUNNING"),
        "pendingCount": sum(status in ("PROVISIONING", "PENDING") for status in statuses),
        "deployments": [],
        "events": [],
    }


# --- tables --------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return printable(" ".join(str(value).split()))


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns as kubectl aligns them (3 spaces apart); absent values are `-`; control
    characters are shown escaped, so a cell cannot drive the terminal."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)
    ]
    lines = [list(headers), *cells]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _failures_text(failures: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"{f['reason']}: {f['arn']}" for f in failures]


def task_definitions_text(definitions: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        (d.get("family"), d.get("revision"), d.get("taskDefinitionArn"), d.get("status"))
        for d in definitions
    ]
    return render_table(("FAMILY", "REVISION", "TASK DEFINITION", "STATUS"), rows)


def tasks_text(
    tasks: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]] = ()
) -> str:
    """The tasks, then their containers (exit codes, reasons), then the names not found."""
    rows = [
        (
            t.get("name"),
            t.get("taskDefinitionArn"),
            t.get("lastStatus"),
            t.get("desiredStatus"),
            t.get("healthStatus"),
            t.get("availabilityZone"),
            t.get("stopCode"),
            t.get("stoppedReason"),
        )
        for t in tasks
    ]
    headers = (
        "NAME",
        "TASK DEFINITION",
        "LAST STATUS",
        "DESIRED",
        "HEALTH",
        "ZONE",
        "STOP CODE",
        "STOPPED REASON",
    )
    sections = [render_table(headers, rows)] if tasks else []
    containers = [
        (
            t.get("name"),
            c.get("name"),
            c.get("lastStatus"),
            c.get("exitCode"),
            c.get("healthStatus"),
            c.get("reason"),
        )
        for t in tasks
        for c in t.get("containers") or ()
    ]
    if containers:
        container_headers = ("TASK", "CONTAINER", "LAST STATUS", "EXIT CODE", "HEALTH", "REASON")
        sections.append(render_table(container_headers, containers))
    if failures:
        sections.append("\n".join(_failures_text(failures)))
    return "\n\n".join(sections)


def services_text(
    services: Sequence[Mapping[str, Any]],
    failures: Sequence[Mapping[str, Any]] = (),
    events: int = TABLE_EVENTS,
) -> str:
    """The services, their deployments, their lifecycle hook runs, their newest `events`
    events, the names not found."""
    rows = [
        (
            s.get("serviceName"),
            s.get("status"),
            s.get("taskDefinition"),
            s.get("desiredCount"),
            s.get("runningCount"),
            s.get("pendingCount"),
        )
        for s in services
    ]
    headers = ("NAME", "STATUS", "TASK DEFINITION", "DESIRED", "RUNNING", "PENDING")
    sections = [render_table(headers, rows)] if services else []
    deployments = [
        (
            s.get("serviceName"),
            d.get("id"),
            d.get("status"),
            d.get("taskDefinition"),
            d.get("desiredCount"),
            d.get("runningCount"),
            d.get("pendingCount"),
            d.get("failedTasks"),
            d.get("rolloutState"),
        )
        for s in services
        for d in s.get("deployments") or ()
    ]
    if deployments:
        deployment_headers = (
            "SERVICE",
            "DEPLOYMENT",
            "STATUS",
            "TASK DEFINITION",
            "DESIRED",
            "RUNNING",
            "PENDING",
            "FAILED",
            "ROLLOUT",
        )
        sections.append(render_table(deployment_headers, deployments))
    hooks = [
        (
            s.get("serviceName"),
            d.get("id"),
            h.get("hookId"),
            h.get("lifecycleStage"),
            h.get("targetArn") or h.get("targetType"),
            h.get("status"),
            "true" if h.get("rollback") else None,
            h.get("expiresAt"),
        )
        for s in services
        for d in s.get("deployments") or ()
        for h in d.get("lifecycleHookDetails") or ()
    ]
    if hooks:
        hook_headers = (
            "SERVICE",
            "DEPLOYMENT",
            "HOOK",
            "STAGE",
            "TARGET",
            "STATUS",
            "ROLLBACK",
            "EXPIRES",
        )
        sections.append("LIFECYCLE HOOKS\n" + render_table(hook_headers, hooks))
    for s in services:
        listed = list(s.get("events") or ())
        if not listed:
            continue
        shown = [(e.get("createdAt"), e.get("message")) for e in listed[:events]]
        title = f"EVENTS of {s.get('serviceName')} (newest first"
        title += (
            f", {len(listed) - events} more with --output json)" if len(listed) > events else ")"
        )
        sections.append(title + "\n" + render_table(("CREATED", "MESSAGE"), shown))
    if failures:
        sections.append("\n".join(_failures_text(failures)))
    return "\n\n".join(sections)


# --- waiters -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Where one object stands for a waiter: `done`, or `failed` (it can no longer get there:
    the waiter stops at once), and `progress`, what the timeout message says about it."""

    done: bool
    progress: str
    failed: str | None = None


def service_stable(name: str, obj: Mapping[str, Any] | None) -> Verdict:
    """ECS's services-stable: one deployment, and as many tasks RUNNING as desired; here also
    once the operator has seen the latest spec (`observedGeneration`), so that a change just
    made is not reported stable before it is acted on."""
    if obj is None:
        return Verdict(False, f"{name}: {MISSING}", failed=f"service {name}: {MISSING}")
    metadata, _, status = _parts(obj)
    if metadata.get("deletionTimestamp"):
        return Verdict(False, f"{name}: DRAINING", failed=f"service {name} is being deleted")
    described = describe_service(obj)
    deployments = described["deployments"]
    desired = status.get("desiredCount")
    running = status.get("runningCount", 0)
    progress = (
        f"{name}: {running} of {described.get('desiredCount')} running, "
        f"{len(deployments)} deployment(s)"
    )
    observed = status.get("observedGeneration")
    if observed is None or int(observed) < int(metadata.get("generation") or 1):
        return Verdict(False, progress + ", the operator has not seen the latest spec yet")
    stable = len(deployments) == 1 and desired is not None and running == desired
    return Verdict(stable, progress)


def task_stopped(name: str, obj: Mapping[str, Any] | None) -> Verdict:
    """ECS's tasks-stopped: lastStatus STOPPED."""
    if obj is None:
        return Verdict(False, f"{name}: {MISSING}", failed=f"task {name}: {MISSING}")
    last = (obj.get("status") or {}).get("lastStatus")
    return Verdict(last == "STOPPED", f"{name}: {last or 'not yet reported'}")


def task_running(name: str, obj: Mapping[str, Any] | None) -> Verdict:
    """ECS's tasks-running: lastStatus RUNNING; a task that stopped never will."""
    if obj is None:
        return Verdict(False, f"{name}: {MISSING}", failed=f"task {name}: {MISSING}")
    status = obj.get("status") or {}
    last = status.get("lastStatus")
    progress = f"{name}: {last or 'not yet reported'}"
    if last == "STOPPED":
        why = " ".join(str(status.get(k)) for k in ("stopCode", "stoppedReason") if status.get(k))
        return Verdict(False, progress, failed=f"task {name} stopped: {why or 'STOPPED'}")
    return Verdict(last == "RUNNING", progress)
