"""What one reconcile of a Task does, decided from what the caches hold.

``plan_task(state)`` composes ``lifecycle.observe`` (the ECS lifecycle read from the Pod) with
the operator's own facts: the revision the task runs (resolved once, then read back from its
status or its Pod), a Pod of the task's name that is not the task's, the grace a missing revision
or an unseen namespace gets, load-balancer registration and draining, how an already deleted Pod
ended, when a progress-only status write waits for the Pod to run (or, once a recorded stop
stopped it, to end), and the time to live.

A launch takes a round trip through the API, so it is planned in steps: the plan names a
``PodLaunch``; the controller checks the Secrets it needs (``secret_failure``), reads the task
role's ServiceAccount, places and renders the Pod (``place_pod``), creates it, and plans again
with the outcome in ``TaskState.launched``.

A Task with ``count`` N is the first task of a run (RunTask's count): its plan also names the
run's other tasks still to create (``RunLaunch``), until all exist, and then records in status
how many were launched, after which none is created again (``_run``).
"""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from ecs_operator.core import events, labels, launches, names, placement
from ecs_operator.core.capacity import reservation, task_requirements
from ecs_operator.core.conditions import set_condition
from ecs_operator.core.lifecycle import (
    STOP_DEADLINE_SECONDS,
    Event,
    Observation,
    StopPod,
    TaskView,
    expires_at,
    is_expired,
    is_on_lost_node,
    observe,
)
from ecs_operator.core.load_balancing import (
    awaiting_registration,
    drained_at,
    readiness_probe,
    task_deregistering,
)
from ecs_operator.core.ownership import left_by_earlier_task, owned_by, owner_description
from ecs_operator.core.placement import ZONE_LABEL, ContainerInstance
from ecs_operator.core.registration import MAX_UNSUPPORTED, unsupported_text
from ecs_operator.core.render import (
    RenderedPod,
    ResolvedTaskDefinition,
    SecretReference,
    TaskRoleAccount,
    effective_spec,
    render_pod,
    secret_references,
    task_role_account,
)
from ecs_operator.core.revisions import ResolvedRevision, Revision, is_new_reference
from ecs_operator.core.security import SecurityPolicy
from ecs_operator.core.validation import task_problems
from ecs_operator.models.common import UnsupportedField
from ecs_operator.models.loadbalancer import LoadBalancer
from ecs_operator.models.service import ServiceSpec
from ecs_operator.models.task import CONDITION_TASKS_LAUNCHED, StopCode, Task, TaskStatus
from ecs_operator.models.taskdefinition import TaskDefinitionSpec, parse_task_definition_ref

PROGRESS_STATES: Final = ("PROVISIONING", "PENDING")
STOP_PROGRESS_STATES: Final = ("STOPPING", "DEPROVISIONING")
PROGRESS_WRITE_WINDOW_SECONDS: Final = 0.5
"""How long after a launch a progress-only status write may wait for the Pod to run, and after
a Pod stop for the Pod to end."""
RESOLVE_RETRY_SECONDS: Final = 1.0
"""How often a task within its resolve grace looks for its revision again."""
NAMESPACE_WAIT_SECONDS: Final = 0.2
PREVIOUS_POD_WAIT_SECONDS: Final = 0.5
"""How often a task looks again while an earlier Task's Pod of its name is on its way out
(``ownership.left_by_earlier_task``)."""


@dataclass(frozen=True)
class Launched:
    """The task's Pod was created (or found already created by this task): ``pod`` and its
    ``node`` as the caches hold them right after, and what the Pod does not honour."""

    pod: Mapping[str, Any] | None
    node: Mapping[str, Any] | None
    unsupported: Sequence[UnsupportedField] = ()


@dataclass(frozen=True)
class NotLaunched:
    """The task cannot start: ``reason`` is its stoppedReason; ``placement_failure`` the
    RunTask failure reason (``RESOURCE:MEMORY``) when no node fits it."""

    reason: str
    placement_failure: str | None = None


LaunchOutcome = Launched | NotLaunched


@dataclass(frozen=True)
class PodLaunch:
    """A Pod to create for the task, and what it needs first: the Secret keys its containers
    read, and the ServiceAccount of its task role."""

    task: Task
    task_uid: str
    revision: Revision
    effective: TaskDefinitionSpec
    """The revision's spec with the task's overrides."""
    group: str
    policy: SecurityPolicy
    service: str | None
    readiness_probes: Mapping[str, dict[str, Any]]
    secrets: Sequence[SecretReference]
    service_account: TaskRoleAccount | None
    placed_node: str | None
    """The node the task's Service placed it on: only that node is considered."""

    @property
    def namespace(self) -> str:
        return self.task.metadata.namespace or ""


@dataclass(frozen=True)
class TaskState:
    """Everything one reconcile of a Task reads, as the caches hold it at ``now``."""

    body: Mapping[str, Any]
    """The Task as stored (its uid and ownerReferences)."""
    task: Task
    resolved: ResolvedRevision
    """The revision ``revision_reference`` names, or why there is none."""
    policy: SecurityPolicy
    """What the task's namespace allows."""
    now: datetime
    operator_started_at: datetime
    resolve_grace_seconds: float
    pod: Mapping[str, Any] | None = None
    """The Pod of the task's name, whoever owns it."""
    node: Mapping[str, Any] | None = None
    """The node that Pod is on."""
    pod_tombstone: Mapping[str, Any] | None = None
    """The last state of the Pod of the task's name, when it was deleted."""
    service: str | None = None
    """The Service its ownerReferences name: a service task."""
    service_spec: ServiceSpec | None = None
    """That Service's spec, when it exists, truly owns the task and can be read."""
    service_gone: bool = False
    """That Service is gone (deleted): garbage collection deletes the task too."""
    load_balancers: Mapping[str, LoadBalancer] = field(default_factory=dict)
    """The namespace's LoadBalancers by name (needed when ``service_spec`` names any)."""
    namespace_seen: bool = True
    """The task's namespace is in the cache (its labels decide what the task may do)."""
    namespace_terminating: bool = False
    """The task's namespace is being deleted: its LoadBalancers go too, nothing drains."""
    since_launch: float | None = None
    """Seconds since this operator created the task's Pod (None: it did not)."""
    since_stop: float | None = None
    """Seconds since this operator first stopped the task's Pod (None: it did not)."""
    launched: LaunchOutcome | None = None
    """The outcome of the launch the previous plan of this reconcile asked for."""
    run_members: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    """For a Task with count above 1: the Task cached under the name of each other task of
    its run (``launches.run_task_names``), None where there is none."""


@dataclass(frozen=True)
class PodStop:
    """Stop the task's Pod (uid ``uid``): its containers get SIGTERM, then SIGKILL after
    ``grace_seconds``. The Pod is kept, terminated, with its logs (its ``activeDeadlineSeconds``
    set to ``deadline_seconds``), unless ``delete`` (see ``lifecycle.StopPod``)."""

    uid: str
    grace_seconds: int
    delete: bool = False
    deadline_seconds: int = STOP_DEADLINE_SECONDS


@dataclass(frozen=True)
class RunLaunch:
    """The first Task of a run gets ``label`` (``labels.RUN_LABEL``; None: it has it), then the
    Tasks ``create`` (``launches.run_task_manifest``) are created, each once: a name found
    taken is judged by the next plan (``launches.existing_verdict``)."""

    label: str | None
    create: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class TaskPlan:
    """What to do, in this order: delete the Task (its time to live is over; garbage
    collection takes its Pod) and nothing else; or create the Pod of ``launch`` and plan again
    with the outcome; or write ``status`` (None: unchanged), stop the Pod, add or remove the
    drain finalizer, launch the other tasks of its ``run``, record ``events``. In every case
    look again after ``requeue_after`` seconds (None: only when something changes)."""

    delete_task: bool = False
    launch: PodLaunch | None = None
    status: TaskStatus | None = None
    stop_pod: PodStop | None = None
    drain_finalizer: bool | None = None
    """Add (True) or remove (False) ``labels.DRAIN_FINALIZER``; None: leave it as it is."""
    run: RunLaunch | None = None
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None


def revision_reference(
    body: Mapping[str, Any], task: Task, pod: Mapping[str, Any] | None, service: str | None
) -> tuple[str, bool]:
    """The reference to resolve for the task, and whether it is a new one (see
    ``revisions.is_new_reference``): resolved once, then read back from status, or from the
    task's Pod should the operator have stopped between launching it and writing status."""
    own_pod = pod if pod is not None and owned_by(pod, body) else None
    annotations = ((own_pod or {}).get("metadata") or {}).get("annotations") or {}
    resolved = (task.status.task_definition_arn if task.status else None) or annotations.get(
        labels.TASK_DEFINITION_ANNOTATION
    )
    reference = str(resolved or task.spec.task_definition)
    return reference, is_new_reference(resolved, launched_by_service=service is not None)


def waits_for_family(task: Mapping[str, Any], family: str) -> bool:
    """Whether Task `task` (a body) names `family` and has not been resolved to a revision
    yet: a revision registered, deactivated or refused may settle it."""
    if (task.get("status") or {}).get("taskDefinitionArn"):
        return False
    try:
        wanted, _ = parse_task_definition_ref(task["spec"]["taskDefinition"])
    except (KeyError, TypeError, ValueError):
        return False
    return wanted == family


@dataclass(frozen=True)
class PodReads:
    """The Pod of the task's name as the caches hold it (``TaskState``'s fields of the same
    meaning)."""

    pod: Mapping[str, Any] | None = None
    node: Mapping[str, Any] | None = None
    tombstone: Mapping[str, Any] | None = None
    since_launch: float | None = None
    since_stop: float | None = None


@dataclass(frozen=True)
class ServiceReads:
    """The Service the task's ownerReferences name, as ``TaskState`` has it: its ``name``,
    its ``spec`` when it exists and truly owns the task, whether it is ``gone``, and the
    namespace's LoadBalancers when the task's targets are looked up (``looks_up_targets``)."""

    name: str | None = None
    spec: ServiceSpec | None = None
    gone: bool = False
    load_balancers: Mapping[str, LoadBalancer] = field(default_factory=dict)


@dataclass(frozen=True)
class NamespaceReads:
    """What the task's namespace says: its ``policy``, whether it is ``seen`` in the cache and
    ``terminating``."""

    policy: SecurityPolicy
    seen: bool = True
    terminating: bool = False


@dataclass(frozen=True)
class Timing:
    """The moment of the reconcile, and the resolve grace after the operator started."""

    now: datetime
    operator_started_at: datetime
    resolve_grace_seconds: float


def looks_up_targets(body: Mapping[str, Any], service_spec: ServiceSpec | None) -> bool:
    """Whether a task's targets are looked up: while its Service (``service_spec``) names a
    LoadBalancer, and while the task (``body``) holds the drain finalizer (its Service may be
    gone)."""
    finalizers = (body.get("metadata") or {}).get("finalizers") or ()
    named = service_spec is not None and bool(service_spec.load_balancers)
    return named or labels.DRAIN_FINALIZER in finalizers


def drain_released_unreadable(body: Mapping[str, Any]) -> bool:
    """Whether a Task the operator cannot read (``validation.unreadable_task_status``) gets its
    drain finalizer removed: once it is being deleted, as nothing to drain can be read."""
    metadata = body.get("metadata") or {}
    finalizers = metadata.get("finalizers") or ()
    return bool(metadata.get("deletionTimestamp")) and labels.DRAIN_FINALIZER in finalizers


def namespace_reads(namespace: Mapping[str, Any] | None, policy: SecurityPolicy) -> NamespaceReads:
    """What the task's namespace (its cached body; None: not seen) says."""
    if namespace is None:
        return NamespaceReads(policy, seen=False)
    deleting = (namespace.get("metadata") or {}).get("deletionTimestamp")
    return NamespaceReads(policy, terminating=bool(deleting))


def task_state(
    body: Mapping[str, Any],
    task: Task,
    resolved: ResolvedRevision,
    pod: PodReads,
    service: ServiceReads,
    namespace: NamespaceReads,
    run_members: Mapping[str, Mapping[str, Any] | None],
    timing: Timing,
) -> TaskState:
    """The ``TaskState`` of these reads (``run_members``: see ``TaskState``)."""
    return TaskState(
        body=body,
        task=task,
        resolved=resolved,
        policy=namespace.policy,
        now=timing.now,
        operator_started_at=timing.operator_started_at,
        resolve_grace_seconds=timing.resolve_grace_seconds,
        pod=pod.pod,
        node=pod.node,
        pod_tombstone=pod.tombstone,
        service=service.name,
        service_spec=service.spec,
        service_gone=service.gone,
        load_balancers=service.load_balancers,
        namespace_seen=namespace.seen,
        namespace_terminating=namespace.terminating,
        since_launch=pod.since_launch,
        since_stop=pod.since_stop,
        run_members=run_members,
    )


def plan_task(state: TaskState) -> TaskPlan:
    """What this reconcile of the task does (see the module docstring and ``TaskPlan``)."""
    task, now = state.task, state.now
    deleting = (task.metadata.model_extra or {}).get("deletionTimestamp") is not None
    if (
        not deleting
        and task.status
        and is_expired(task.status, now, task.spec.ttl_seconds_after_stopped)
    ):
        if _run_still_running(state):
            # Garbage collection would delete them with it: kept until they stopped (their
            # changes wake it).
            return TaskPlan()
        return TaskPlan(delete_task=True)
    pod, failure = state.pod, None
    if pod is not None and not owned_by(pod, state.body):
        if left_by_earlier_task(pod, state.body):
            return TaskPlan(requeue_after=PREVIOUS_POD_WAIT_SECONDS)
        pod, failure = None, events.pod_name_taken(task.metadata.name)
    revision = state.resolved.revision
    waiting = revision is None and failure is None and _within_resolve_grace(state)
    if revision is None and failure is None and not waiting:
        failure = events.client_exception(state.resolved.reason or "")
    view = _view(state, pod, revision, failure)
    observation = _observe(state, view, pod, None if waiting else revision)
    if isinstance(observation, TaskPlan):
        return observation  # a launch, or a wait before it
    observation, run, run_wait = _run(state, observation)
    if _defer_progress(state, observation):
        return TaskPlan(run=run, requeue_after=PROGRESS_WRITE_WINDOW_SECONDS)
    if _defer_stop_progress(state, observation):
        return TaskPlan(
            stop_pod=_pod_stop(pod, observation),
            drain_finalizer=_drain_finalizer(state, view, observation),
            run=run,
            requeue_after=PROGRESS_WRITE_WINDOW_SECONDS,
        )
    return TaskPlan(
        status=None if observation.status == task.status else observation.status,
        stop_pod=_pod_stop(pod, observation),
        drain_finalizer=_drain_finalizer(state, view, observation),
        run=run,
        # A service reports its tasks' starts and stops in its own (ECS) events; its tasks
        # post only their warnings, which keeps a scale-out to a few writes a task.
        events=tuple(e for e in observation.events if state.service is None or e.type != "Normal"),
        requeue_after=min(
            (
                d
                for d in (
                    _follow_up(state, observation, waiting),
                    run_wait,
                    _drain_wait(state, view),
                )
                if d is not None
            ),
            default=None,
        ),
    )


def secret_failure(
    namespace: str, reference: SecretReference, secret: Mapping[str, Any] | None
) -> NotLaunched | None:
    """Why the task cannot start for want of the Secret key ``reference`` reads (``secret``:
    the Secret as found, None when it does not exist); None when the key is there."""
    if secret is None:
        return NotLaunched(
            events.secret_not_found(
                reference.field, reference.value_from, reference.secret, namespace
            )
        )
    if reference.key not in (secret.get("data") or {}) | (secret.get("stringData") or {}):
        return NotLaunched(
            events.secret_key_missing(
                reference.field, reference.value_from, reference.secret, reference.key
            )
        )
    return None


def task_role_failure(identity: TaskRoleAccount, namespace: str) -> NotLaunched:
    """The task cannot start: its task role's ServiceAccount does not exist (found missing
    before the Pod was created, or the API server refused the Pod for it)."""
    return NotLaunched(
        events.task_role_not_found(identity.role, identity.account, identity.field, namespace)
    )


def place_pod(
    launch: PodLaunch,
    service_account: Mapping[str, Any] | None,
    instances: Sequence[ContainerInstance],
    rng: random.Random,
) -> RenderedPod | NotLaunched:
    """Place the task on one of ``instances`` and render its Pod, or say why it cannot start
    (``service_account``: the task role's ServiceAccount as found, None when it is absent)."""
    automount: bool | None = None
    if launch.service_account is not None:
        if service_account is None:
            return task_role_failure(launch.service_account, launch.namespace)
        automount = service_account.get("automountServiceAccountToken")
    task = launch.task
    try:
        requirements = task_requirements(
            launch.effective,
            group=launch.group,
            constraints=task.spec.placement_constraints or (),
            strategies=task.spec.placement_strategy or (),
        )
    except ValueError as error:
        return NotLaunched(events.client_exception(str(error)))
    result = placement.place(requirements, instances, rng)
    if isinstance(result, placement.PlacementFailure):
        reason = events.task_not_placed(result.reason, result.closest, result.detail)
        return NotLaunched(reason, placement_failure=result.reason)
    record = launch.revision.record
    return render_pod(
        task_name=task.metadata.name,
        namespace=launch.namespace,
        task_uid=launch.task_uid,
        task=task.spec,
        task_definition=ResolvedTaskDefinition(
            record.family, record.revision, launch.revision.spec
        ),
        node_name=result.instance,
        group=launch.group,
        policy=launch.policy,
        service=launch.service,
        readiness_probes=launch.readiness_probes,
        service_account_automount=automount,
    )


def requested_stop_code(task: Task) -> StopCode:
    """Who asked the task to stop: a Service's scheduler marks its stops; otherwise StopTask."""
    code = (task.metadata.annotations or {}).get(labels.STOP_CODE_ANNOTATION)
    if code == "ServiceSchedulerInitiated":
        return "ServiceSchedulerInitiated"
    if code == "TerminationNotice":
        return "TerminationNotice"
    return "UserInitiated"


def _observe(
    state: TaskState, view: TaskView, pod: Mapping[str, Any] | None, launchable: Revision | None
) -> Observation | TaskPlan:
    """The lifecycle's observation of the task, or the launch it calls for (``launchable``:
    the revision to launch, None while the task must not launch yet)."""
    if state.launched is not None:
        return _after_launch(state, view, state.launched)
    observation = observe(view, pod, state.now)
    if pod is None:
        observation = _with_final_pod_state(state, view, observation)
    if not observation.wants_pod or launchable is None:
        return observation
    if state.namespace_terminating:
        # The API refuses new content there, and the namespace's deletion takes the Task.
        return observation
    if not state.namespace_seen and _within_resolve_grace(state):
        return TaskPlan(requeue_after=NAMESPACE_WAIT_SECONDS)
    problems = task_problems(launchable.spec, state.task.spec, state.policy)
    if problems:
        refused = events.client_exception("; ".join(str(problem) for problem in problems))
        return _after_launch(state, view, NotLaunched(refused))
    return TaskPlan(launch=_pod_launch(state, launchable))


def _within_resolve_grace(state: TaskState) -> bool:
    """The grace runs from the task's creation, or from this operator's start if later: a
    restarted operator gives its caches the same time to fill."""
    created = (state.task.metadata.model_extra or {}).get("creationTimestamp")
    if not created:
        return True
    since = max(datetime.fromisoformat(created), state.operator_started_at)
    return (state.now - since).total_seconds() < state.resolve_grace_seconds


def _view(
    state: TaskState,
    pod: Mapping[str, Any] | None,
    revision: Revision | None,
    failure: str | None,
) -> TaskView:
    task = state.task
    effective = effective_spec(revision.spec, task.spec.overrides) if revision else None
    node = state.node if pod is not None else None
    stop_code, stopped_reason = requested_stop_code(task), task.spec.stopped_reason
    if state.service_gone:
        # Its Service's deletion stops it (ECS's DeleteService), by garbage collection.
        stop_code = "ServiceSchedulerInitiated"
        stopped_reason = stopped_reason or events.service_deleting(state.service or "")
    view = replace(
        TaskView.of(task, effective.container_definitions if effective else [], state.now),
        requested_stop_code=stop_code,
        stopped_reason=stopped_reason,
        status=_identity(state, revision, effective),
        start_failure=failure,
        node_lost=pod is not None and is_on_lost_node(pod, node),
        availability_zone=_zone(node),
    )
    return _with_load_balancing(state, view)


def _identity(
    state: TaskState, revision: Revision | None, effective: TaskDefinitionSpec | None
) -> TaskStatus:
    """The previous status plus the fields fixed at launch (id, revision, group …)."""
    task = state.task
    status = task.status or TaskStatus()
    update: dict[str, Any] = {
        "task_arn": status.task_arn or str(state.body["metadata"]["uid"]).replace("-", ""),
        "group": status.group or _group(task),
        "started_by": status.started_by or task.spec.started_by,
        "pod_name": task.metadata.name,
    }
    if revision is not None and effective is not None and status.task_definition_arn is None:
        cpu, memory = reservation(effective)
        update |= {
            "task_definition_arn": revision.record.reference,
            "revision": revision.record.revision,
            "cpu": str(cpu),
            "memory": str(memory),
        }
    return status.model_copy(update=update)


def _with_load_balancing(state: TaskState, view: TaskView) -> TaskView:
    """A load-balanced service task is ACTIVATING until its targets are registered and
    DEACTIVATING, once its stop is decided (or its deletion, e.g. with its Service), until they
    have drained (ECS §2.3): the Pod is stopped only then. Its targets drain also once its
    Service is gone. A forced stop (its node is lost) does not wait, nor does a task whose
    namespace is being deleted (its LoadBalancers go with it)."""
    spec, task = state.service_spec, state.task
    stopping = task.spec.desired_status == "STOPPED" or view.deletion_requested
    forced = view.requested_stop_code == "TerminationNotice" or state.namespace_terminating
    name, load_balancers = task.metadata.name, state.load_balancers
    return replace(
        view,
        activating=spec is not None
        and bool(spec.load_balancers)
        and not stopping
        and awaiting_registration(name, spec, load_balancers),
        deactivating=stopping
        and not forced
        and task_deregistering(name, load_balancers.values(), state.now),
    )


def _drain_finalizer(state: TaskState, view: TaskView, observation: Observation) -> bool | None:
    """Whether to add (True) or remove (False) the drain finalizer, None to leave it. A task of
    a load-balanced Service holds it until it stopped, so that its deletion (its Service's
    deletion, say) cannot cut a target off; once deleted, it keeps it only while a target of
    it drains (``view.deactivating``): never when its namespace is being deleted or its
    LoadBalancers are gone."""
    held = labels.DRAIN_FINALIZER in (state.body["metadata"].get("finalizers") or ())
    if view.deletion_requested:
        wanted = view.deactivating
    else:
        balanced = state.service_spec is not None and bool(state.service_spec.load_balancers)
        wanted = observation.status.last_status != "STOPPED" and (held or balanced)
    return None if wanted == held else wanted


def _with_final_pod_state(
    state: TaskState, view: TaskView, observation: Observation
) -> Observation:
    """When the Pod is already gone, first read how it ended (its deleted body): the watch may
    deliver its last update and its deletion before this reconcile runs, and the containers'
    final exit codes must not be lost with it."""
    last = state.pod_tombstone
    already_stopped = view.status is not None and view.status.last_status == "STOPPED"
    if last is None or already_stopped or not owned_by(last, state.body):
        return observation
    if not last["metadata"].get("uid"):
        # Only the Pod we were creating, withdrawn from the cache when its create failed with
        # an unknown outcome: no sign that a Pod ran. The next launch finds out.
        return observation
    ending = observe(view, last, state.now)
    final = observe(replace(view, status=ending.status), None, state.now)
    return replace(final, events=ending.events + final.events, actions=final.actions)


def _pod_launch(state: TaskState, revision: Revision) -> PodLaunch:
    task = state.task
    effective = effective_spec(revision.spec, task.spec.overrides)
    return PodLaunch(
        task=task,
        task_uid=str(state.body["metadata"]["uid"]),
        revision=revision,
        effective=effective,
        group=(task.status.group if task.status else None) or _group(task),
        policy=state.policy,
        service=state.service,
        readiness_probes=_readiness_probes(state),
        secrets=secret_references(effective),
        service_account=task_role_account(effective),
        placed_node=(task.metadata.annotations or {}).get(labels.PLACED_NODE_ANNOTATION) or None,
    )


def _readiness_probes(state: TaskState) -> dict[str, dict[str, Any]]:
    """The health checks of the LoadBalancers a service task is registered with, as the
    readiness probes of the containers they target."""
    probes = {}
    for entry in (state.service_spec.load_balancers if state.service_spec else None) or ():
        lb = state.load_balancers.get(names.load_balancer_of(entry))
        if lb is not None:
            probes[entry.container_name] = readiness_probe(lb.spec, entry.container_port)
    return probes


def _after_launch(state: TaskState, view: TaskView, outcome: LaunchOutcome) -> Observation:
    if isinstance(outcome, NotLaunched):
        return observe(replace(view, start_failure=outcome.reason), None, state.now)
    # Report the new Pod straight away (PENDING) instead of PROVISIONING first: one status
    # write fewer per task launched. Its watch events may already have arrived (bound, even
    # running): its zone is that of the node it is on.
    launched = replace(view, availability_zone=_zone(outcome.node))
    return _with_unsupported(observe(launched, outcome.pod, state.now), outcome.unsupported)


def _with_unsupported(
    observation: Observation, unsupported: Sequence[UnsupportedField]
) -> Observation:
    """Record, once at launch, what the Pod does not honour: in status and as a warning."""
    if not unsupported:
        return observation
    status = observation.status.model_copy(
        update={"unsupported": list(unsupported[:MAX_UNSUPPORTED])}
    )
    warning = Event("Warning", events.REASON_UNSUPPORTED_FIELDS, unsupported_text(unsupported))
    return replace(observation, status=status, events=(*observation.events, warning))


def _run(
    state: TaskState, observation: Observation
) -> tuple[Observation, RunLaunch | None, float | None]:
    """The other tasks of the run this Task is the first of: those to create (and the run
    label, first), or, once every one exists or its name was found taken, the observation
    recording how many were launched (``launchedCount``, the TasksLaunched condition, an event,
    and a warning per name taken). Then, and when the task was stopped (or refused, as ECS
    refuses the whole RunTask) before its run was launched, nothing more is ever created. A
    name still held by a task of an earlier run of this name (garbage collection is removing
    it) is waited for; the third value is when to look again."""
    task, body = state.task, state.body
    if (
        task.spec.count == 1
        or (task.status is not None and task.status.launched_count is not None)
        or task.spec.desired_status == "STOPPED"
        or body["metadata"].get("deletionTimestamp")
        or state.namespace_terminating
    ):
        return observation, None, None
    revision = _run_revision(observation.status)
    if revision is None:
        return observation, None, None
    launched, taken, create, waiting = [task.metadata.name], [], [], False
    for ordinal, name in launches.run_task_names(task.metadata.name, task.spec.count):
        manifest = launches.run_task_manifest(body, ordinal, name, revision)
        holder = state.run_members.get(name)
        if holder is None:
            create.append(manifest)
        elif launches.existing_verdict(holder, manifest) is launches.Existing.SAME_LAUNCH:
            launched.append(name)
        elif left_by_earlier_task(holder, body):
            waiting = True
        else:
            taken.append(events.run_task_name_taken(name, owner_description(holder)))
    if create or waiting:
        label = labels.label_value(task.metadata.name)
        labelled = (task.metadata.labels or {}).get(labels.RUN_LABEL) == label
        run = RunLaunch(None if labelled else label, tuple(create))
        return observation, run, PREVIOUS_POD_WAIT_SECONDS if waiting else None
    message = events.run_tasks_launched(launched, task.spec.count)
    condition = set_condition(
        observation.status.conditions,
        CONDITION_TASKS_LAUNCHED,
        "False" if taken else "True",
        "NameTaken" if taken else "AllLaunched",
        "; ".join((message, *taken)),
        task.metadata.generation or 1,
        state.now,
    )
    others = [c for c in observation.status.conditions or () if c.type != condition.type]
    status = observation.status.model_copy(
        update={"launched_count": len(launched), "conditions": [*others, condition]}
    )
    recorded = (
        Event("Normal", events.REASON_TASKS_LAUNCHED, message),
        *(Event("Warning", events.REASON_TASK_NAME_TAKEN, text) for text in taken),
    )
    return replace(observation, status=status, events=observation.events + recorded), None, None


def _run_revision(status: TaskStatus) -> str | None:
    """The revision the tasks of a run run: the one its first Task resolved (all tasks of one
    RunTask run one revision), as this plan reports it. None until it resolved one, and for
    a first Task refused as RunTask refuses a whole request (a ClientException: no revision,
    an INACTIVE one, invalid overrides): its run launches nothing."""
    refused = status.stop_code == "TaskFailedToStart" and (status.stopped_reason or "").startswith(
        events.CLIENT_EXCEPTION
    )
    return None if refused else status.task_definition_arn


def _run_still_running(state: TaskState) -> bool:
    """Whether a task of the run this Task is the first of has not stopped yet."""
    uid = str(state.body["metadata"]["uid"])
    return any(
        member is not None
        and launches.is_controlled_by(member, uid)
        and (member.get("status") or {}).get("lastStatus") != "STOPPED"
        for member in state.run_members.values()
    )


def _defer_progress(state: TaskState, observation: Observation) -> bool:
    """Whether to hold back a status write that only reports progress (PROVISIONING or
    PENDING) of a task launched moments ago: its Pod usually runs within the window, and
    RUNNING is then the one write. Warnings and actions are never held back; after the window
    a slow Pod shows PENDING as usual."""
    since = 0.0 if isinstance(state.launched, Launched) else state.since_launch
    if since is None or since > PROGRESS_WRITE_WINDOW_SECONDS:
        return False
    before = state.task.status.last_status if state.task.status else None
    return (
        observation.status.last_status in PROGRESS_STATES
        and before in (None, *PROGRESS_STATES)
        and not observation.actions
        and all(event.type == "Normal" for event in observation.events)
    )


def _defer_stop_progress(state: TaskState, observation: Observation) -> bool:
    """Whether to hold back a status write that only reports the progress of a stop already
    recorded (its desiredStatus, stopCode and stoppingAt are in the stored status, written at
    DEACTIVATING or STOPPING): STOPPING or DEPROVISIONING while the Pod this operator stops now,
    or stopped moments ago, ends. It usually ends within the window (a target drained, then the
    Pod stopped: DEACTIVATING -> STOPPED is the one write); after the window a slow stop shows
    STOPPING as usual. The Pod stop itself is never held back, nor a warning."""
    before = state.task.status
    if before is None or before.desired_status != "STOPPED" or before.stop_code is None:
        return False
    stopping_now = any(isinstance(action, StopPod) for action in observation.actions)
    since = state.since_stop if state.since_stop is not None else (0.0 if stopping_now else None)
    if since is None or since > PROGRESS_WRITE_WINDOW_SECONDS:
        return False
    return (
        observation.status.last_status in STOP_PROGRESS_STATES
        and before.last_status in ("DEACTIVATING", *STOP_PROGRESS_STATES)
        and all(event.type == "Normal" for event in observation.events)
    )


def _pod_stop(pod: Mapping[str, Any] | None, observation: Observation) -> PodStop | None:
    stop = next((a for a in observation.actions if isinstance(a, StopPod)), None)
    if stop is None or pod is None:
        return None
    return PodStop(str(pod["metadata"]["uid"]), stop.grace_seconds, stop.delete)


def _follow_up(state: TaskState, observation: Observation, waiting: bool) -> float | None:
    """When to look again: for the revision while within the resolve grace, when a time rule
    of the lifecycle is due, and when the time to live of a stopped task is over."""
    delays = [observation.recheck_after_seconds, RESOLVE_RETRY_SECONDS if waiting else None]
    expiry = expires_at(observation.status, state.task.spec.ttl_seconds_after_stopped)
    if expiry is not None:
        delays.append(max(0.0, (expiry - state.now).total_seconds()))
    return min((delay for delay in delays if delay is not None), default=None)


def _drain_wait(state: TaskState, view: TaskView) -> float | None:
    """While DEACTIVATING: when its targets will have drained, so that its Pod stops right then
    rather than when the LoadBalancer's controller gets to remove them."""
    if not view.deactivating:
        return None
    moment = drained_at(state.task.metadata.name, state.load_balancers.values())
    return None if moment is None else max(0.0, (moment - state.now).total_seconds())


def _group(task: Task) -> str:
    """ECS's default group for a standalone task is `family:NAME`."""
    family, _ = parse_task_definition_ref(task.spec.task_definition)
    return task.spec.group or f"family:{family}"


def _zone(node: Mapping[str, Any] | None) -> str | None:
    zone = ((node or {}).get("metadata", {}).get("labels") or {}).get(ZONE_LABEL)
    return str(zone) if zone else None
