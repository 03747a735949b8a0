"""`plugin.commands` against the in-memory API of `support.fake_kube`, judged by what they send:
objects and their spec as a user writes them, never status; creates that survive a lost
response; waiters that stop at their deadline or at a failure, never sleep past it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from ecs_operator.core.labels import SERVICE_LABEL
from ecs_operator.kube.client import NAMESPACES, PODS, SERVICES, TASK_DEFINITIONS, TASKS
from ecs_operator.plugin import commands
from ecs_operator.plugin.commands import CommandError
from ecs_operator.plugin.translate import InputError
from support.fake_kube import FakeKube

NS = "prod"
ECS = "ecs.operator.dev/v1alpha1"
CONTAINER = {"name": "app", "image": "busybox:1.36", "memory": 64}
REQUEST = {"family": "web", "containerDefinitions": [CONTAINER]}
TASK_ID = "0123456789abcdef0123456789abcdef"


def cluster() -> FakeKube:
    kube = FakeKube()
    kube.seed(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return kube


def registered(kube: FakeKube, family: str = "web", revisions: int = 1) -> dict[str, Any]:
    """A TaskDefinition the operator registered `revisions` revisions of (the last ACTIVE)."""
    history = [
        {"revision": n, "registeredAt": "2026-12-07T00:00:00Z", "status": "ACTIVE"}
        for n in range(1, revisions + 1)
    ]
    return kube.seed(
        TASK_DEFINITIONS,
        {
            "apiVersion": ECS,
            "kind": "TaskDefinition",
            "metadata": {"name": family, "namespace": NS},
            "spec": {"family": family, "containerDefinitions": [CONTAINER]},
            "status": {
                "revision": revisions,
                "taskDefinitionArn": f"{family}:{revisions}",
                "status": "ACTIVE",
                "revisions": history,
                "observedGeneration": 1,
                "conditions": [{"type": "Accepted", "status": "True", "reason": "Registered"}],
            },
        },
    )


class Operator:
    """Stands in for the operator while a command polls: each `sleep` lets it write the
    TaskDefinition's status for the generation it sees (Accepted with `verdict`)."""

    def __init__(self, kube: FakeKube, verdict: str = "True", message: str = "") -> None:
        self.kube = kube
        self.verdict = verdict
        self.message = message
        self.slept: list[float] = []
        self.now = 0.0

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        body = self.kube.stored(TASK_DEFINITIONS, NS, "web")
        generation = body["metadata"]["generation"]
        revision = generation if self.verdict == "True" else None
        body["status"] = {
            **({"revision": revision, "taskDefinitionArn": f"web:{revision}"} if revision else {}),
            "status": "ACTIVE",
            "observedGeneration": generation,
            "conditions": [
                {"type": "Accepted", "status": self.verdict, "reason": "R", "message": self.message}
            ],
        }
        self.kube.put(TASK_DEFINITIONS, body)

    def clock(self) -> float:
        return self.now


# --- register-task-definition -------------------------------------------------------------------


async def test_register_creates_the_family_and_reports_the_operator_s_revision() -> None:
    kube = cluster()
    operator = Operator(kube)
    result = await commands.register_task_definition(
        kube, NS, REQUEST, within=5, sleep=operator.sleep, clock=operator.clock
    )
    [create] = [r for r in kube.written() if r.verb == "create"]
    assert (create.plural, create.body["metadata"]["name"]) == ("taskdefinitions", "web")
    assert result.payload == {
        "taskDefinition": {
            "taskDefinitionArn": "web:1",
            "family": "web",
            "revision": 1,
            "status": "ACTIVE",
            "containerDefinitions": [CONTAINER],
        }
    }
    assert "web:1" in result.text and not result.notes
    assert all(r.subresource != "status" for r in kube.written())


async def test_register_again_replaces_the_spec_and_a_same_spec_registers_nothing() -> None:
    kube = cluster()
    registered(kube)
    operator = Operator(kube)
    changed = {**REQUEST, "containerDefinitions": [{**CONTAINER, "memory": 128}]}
    result = await commands.register_task_definition(
        kube, NS, changed, within=5, sleep=operator.sleep, clock=operator.clock
    )
    assert result.payload is not None and result.payload["taskDefinition"]["revision"] == 2
    [update] = [r for r in kube.written() if r.verb == "update"]
    assert update.body["metadata"]["resourceVersion"]  # a compare-and-swap
    again = await commands.register_task_definition(
        kube, NS, changed, within=5, sleep=operator.sleep, clock=operator.clock
    )
    assert again.payload is not None and again.payload["taskDefinition"]["revision"] == 2
    assert "the spec is unchanged" in again.notes[0]


async def test_register_retries_a_conflict_on_the_fresh_object() -> None:
    kube = cluster()
    registered(kube)
    kube.fail("update", "taskdefinitions", 409, "Conflict", "the object has been modified")
    operator = Operator(kube)
    changed = {**REQUEST, "cpu": "256"}
    result = await commands.register_task_definition(
        kube, NS, changed, within=5, sleep=operator.sleep, clock=operator.clock
    )
    assert result.payload is not None
    assert kube.stored(TASK_DEFINITIONS, NS, "web")["spec"]["cpu"] == "256"


async def test_register_reports_the_operator_s_refusal_as_bad_input() -> None:
    kube = cluster()
    operator = Operator(kube, verdict="False", message="dependsOn forms a cycle")
    with pytest.raises(InputError) as raised:
        await commands.register_task_definition(
            kube, NS, REQUEST, within=5, sleep=operator.sleep, clock=operator.clock
        )
    assert "the operator refused task definition web: dependsOn forms a cycle" in str(raised.value)


async def test_register_times_out_when_no_operator_answers() -> None:
    kube = cluster()
    clock = Clock()
    with pytest.raises(CommandError, match=r"timed out after 3 s .* is ecs-operator running"):
        await commands.register_task_definition(
            kube, NS, REQUEST, within=3, interval=1, sleep=clock.sleep, clock=clock
        )
    assert clock.now == 3


class Clock:
    """A clock that only moves when slept on."""

    def __init__(self, on_sleep: Callable[[], None] = lambda: None) -> None:
        self.now = 0.0
        self.on_sleep = on_sleep

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.on_sleep()

    def __call__(self) -> float:
        return self.now


# --- run-task, stop-task ------------------------------------------------------------------------


async def test_run_task_creates_one_task_per_count_after_checking_the_revision() -> None:
    kube = cluster()
    registered(kube, revisions=2)
    result = await commands.run_task(
        kube, NS, task_definition="web:2", tokens=["aaaaaaaaaa", "bbbbbbbbbb"], started_by="ci"
    )
    assert result.exit_code == 0 and result.payload is not None
    assert [t["name"] for t in result.payload["tasks"]] == ["web-aaaaaaaaaa", "web-bbbbbbbbbb"]
    for name in ("web-aaaaaaaaaa", "web-bbbbbbbbbb"):
        assert kube.stored(TASKS, NS, name)["spec"] == {
            "taskDefinition": "web:2",
            "startedBy": "ci",
        }


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("other", "task definition other not found in cluster prod"),
        ("web:3", r"web:3 is not registered in cluster prod \(latest: web:2\)"),
    ],
)
async def test_run_task_refuses_what_ecs_would_not_run(reference: str, message: str) -> None:
    kube = cluster()
    registered(kube, revisions=2)
    with pytest.raises(CommandError, match=message):
        await commands.run_task(kube, NS, task_definition=reference, tokens=["t"])
    assert kube.written() == []


async def test_run_task_refuses_an_inactive_revision() -> None:
    kube = cluster()
    body = registered(kube, revisions=2)
    body["status"]["revisions"][0]["status"] = "INACTIVE"
    kube.put(TASK_DEFINITIONS, body)
    with pytest.raises(CommandError, match="web:1 is INACTIVE"):
        await commands.run_task(kube, NS, task_definition="web:1", tokens=["t"])


async def test_a_create_whose_response_was_lost_is_not_a_second_task() -> None:
    """The client sends a create again after a 5xx; the name was chosen before the first
    attempt, so the second meets the first's Task (409) and takes it as this launch."""
    kube = cluster()
    registered(kube)
    kube.fail("create", "tasks", 500, "InternalError", "lost", after_commit=True)
    lost = await commands.run_task(kube, NS, task_definition="web", tokens=["aaaaaaaaaa"])
    assert lost.exit_code == 1  # FakeKube runs no retries: the caller sees the 500
    retried = await commands.run_task(kube, NS, task_definition="web", tokens=["aaaaaaaaaa"])
    assert retried.exit_code == 0 and retried.payload is not None
    assert [t["name"] for t in retried.payload["tasks"]] == ["web-aaaaaaaaaa"]
    assert len(kube.all_stored(TASKS)) == 1


async def test_run_task_reports_each_task_it_could_not_create() -> None:
    kube = cluster()
    registered(kube)
    kube.fail("create", "tasks", 403, "Forbidden", "exceeded quota")
    result = await commands.run_task(kube, NS, task_definition="web", tokens=["a" * 10, "b" * 10])
    assert result.exit_code == 1 and result.payload is not None
    assert result.payload["failures"] == [{"arn": "web-aaaaaaaaaa", "reason": "exceeded quota"}]
    assert [t["name"] for t in result.payload["tasks"]] == ["web-bbbbbbbbbb"]


def seeded_task(kube: FakeKube, name: str = "web-1", **status: Any) -> dict[str, Any]:
    return kube.seed(
        TASKS,
        {
            "apiVersion": ECS,
            "kind": "Task",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"taskDefinition": "web"},
            "status": {"taskArn": TASK_ID, "lastStatus": "RUNNING", **status},
        },
    )


async def test_stop_task_sets_the_desired_status_by_name_or_id_and_never_status() -> None:
    kube = cluster()
    seeded_task(kube)
    result = await commands.stop_task(kube, NS, TASK_ID, "maintenance")
    [patch] = kube.written()
    assert (patch.verb, patch.name, patch.subresource) == ("patch", "web-1", "")
    assert patch.body == {"spec": {"desiredStatus": "STOPPED", "stoppedReason": "maintenance"}}
    assert result.payload is not None and result.payload["task"]["desiredStatus"] == "STOPPED"
    again = await commands.stop_task(kube, NS, "web-1", "other")
    assert len(kube.written()) == 1 and "already stopped" in again.notes[0]
    with pytest.raises(CommandError, match="task nope not found in cluster prod"):
        await commands.stop_task(kube, NS, "nope", None)


# --- services -----------------------------------------------------------------------------------


def service_manifest(count: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": ECS,
        "kind": "Service",
        "metadata": {"name": "api"},
        "spec": {"taskDefinition": "web", "desiredCount": count},
    }


async def test_create_service_is_idempotent_for_the_same_settings_only() -> None:
    kube = cluster()
    registered(kube)
    created = await commands.create_service(kube, NS, service_manifest())
    assert created.payload is not None and created.payload["service"]["serviceName"] == "api"
    again = await commands.create_service(kube, NS, service_manifest())
    assert again.payload == created.payload
    with pytest.raises(CommandError, match="already exists in cluster prod with other settings"):
        await commands.create_service(kube, NS, service_manifest(count=5))


async def test_update_service_patches_the_spec_and_forces_a_deployment_with_a_new_token() -> None:
    kube = cluster()
    registered(kube)
    kube.seed(SERVICES, {**service_manifest(), "metadata": {"name": "api", "namespace": NS}})
    now = datetime(2026, 12, 7, tzinfo=UTC)
    await commands.update_service(
        kube, NS, "api", desired_count=4, force_new_deployment=True, now=now
    )
    [patch] = kube.written()
    assert patch.body == {
        "spec": {"desiredCount": 4, "forceNewDeployment": "2026-12-07T00:00:00.000000Z"}
    }
    await commands.update_service(kube, NS, "api", force_new_deployment=True, now=now)
    tokens = [r.body["spec"]["forceNewDeployment"] for r in kube.written()]
    assert tokens[0] != tokens[1]  # the same instant still starts a new deployment
    with pytest.raises(CommandError, match="service nope not found"):
        await commands.update_service(kube, NS, "nope", desired_count=1)


async def test_describe_lists_what_is_missing_as_ecs_does() -> None:
    kube = cluster()
    seeded_task(kube)
    tasks = await commands.describe_tasks(kube, NS, ["web-1", "gone", TASK_ID])
    assert tasks.payload is not None
    assert [t["name"] for t in tasks.payload["tasks"]] == ["web-1", "web-1"]
    assert tasks.payload["failures"] == [{"arn": "gone", "reason": "MISSING"}]
    services = await commands.describe_services(kube, NS, ["api"])
    assert services.payload == {"services": [], "failures": [{"arn": "api", "reason": "MISSING"}]}


def service_task(name: str, last_status: str, service: str = "api") -> dict[str, Any]:
    """A Task of Service `service` (its label and ownerReference), at `last_status`."""
    return {
        "apiVersion": "ecs.operator.dev/v1alpha1",
        "kind": "Task",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {SERVICE_LABEL: service},
            "ownerReferences": [{"kind": "Service", "name": service, "uid": "svc-uid"}],
        },
        "spec": {"taskDefinition": "web"},
        "status": {"lastStatus": last_status},
    }


async def test_a_deleted_service_is_draining_while_its_tasks_drain_then_inactive() -> None:
    """As ECS's DeleteService: DRAINING while a task of it has not reached STOPPING, then
    INACTIVE; MISSING once no task of it is left. A task only labelled as its is not."""
    kube = cluster()
    kube.seed(TASKS, service_task("api-1", "DEACTIVATING"))
    kube.seed(TASKS, service_task("api-2", "STOPPING"))
    forged = service_task("other-1", "RUNNING", service="other")
    forged["metadata"]["labels"] = {SERVICE_LABEL: "api"}
    kube.seed(TASKS, forged)
    draining = await commands.describe_services(kube, NS, ["api"])
    assert draining.payload is not None
    [entry] = draining.payload["services"]
    assert (entry["serviceName"], entry["status"], entry["desiredCount"]) == ("api", "DRAINING", 0)
    assert "DRAINING" in draining.text
    stopping = kube.stored(TASKS, NS, "api-1")
    stopping["status"]["lastStatus"] = "STOPPED"
    kube.put(TASKS, stopping)
    inactive = await commands.describe_services(kube, NS, ["api"])
    assert inactive.payload is not None
    assert inactive.payload["services"][0]["status"] == "INACTIVE"
    for name in ("api-1", "api-2"):
        await kube.delete(TASKS, NS, name)
    missing = await commands.describe_services(kube, NS, ["api"])
    assert missing.payload == {"services": [], "failures": [{"arn": "api", "reason": "MISSING"}]}


# --- wait -----------------------------------------------------------------------------------------


async def test_wait_polls_until_done_and_never_sleeps_past_the_deadline() -> None:
    kube = cluster()
    seeded_task(kube)

    def stop_after_two_polls() -> None:
        if clock.now >= 2:
            body = kube.stored(TASKS, NS, "web-1")
            body["status"]["lastStatus"] = "STOPPED"
            kube.put(TASKS, body)

    clock = Clock(stop_after_two_polls)
    await commands.wait(
        kube, NS, "tasks-stopped", ["web-1"], within=10, interval=1, sleep=clock.sleep, clock=clock
    )
    assert clock.now == 2

    seeded_task(kube, "web-2")
    late = Clock()
    with pytest.raises(CommandError, match=r"timed out after 2.5 s .*: web-2: RUNNING$"):
        await commands.wait(
            kube, NS, "tasks-stopped", ["web-1", "web-2"], within=2.5, interval=1,
            sleep=late.sleep, clock=late,
        )  # fmt: skip
    assert late.now == 2.5


async def test_a_waiter_fails_at_once_when_it_cannot_succeed() -> None:
    kube = cluster()
    seeded_task(kube, lastStatus="STOPPED", stopCode="EssentialContainerExited")
    clock = Clock()
    with pytest.raises(CommandError, match="task web-1 stopped: EssentialContainerExited"):
        await commands.wait(
            kube, NS, "tasks-running", ["web-1"], within=60, sleep=clock.sleep, clock=clock
        )
    with pytest.raises(CommandError, match="service api: MISSING"):
        await commands.wait(
            kube, NS, "services-stable", ["api"], within=60, sleep=clock.sleep, clock=clock
        )
    assert clock.now == 0


# --- logs -----------------------------------------------------------------------------------------


class LogKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.read: list[tuple[str, str | None, int | None]] = []

    async def pod_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
    ) -> str:
        self.read.append((name, container, tail_lines))
        return "hello\n"


def pod(
    kube: FakeKube, task: dict[str, Any], *containers: str, ecs: Mapping[str, str] = {}
) -> None:
    kube.seed(
        PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": task["metadata"]["name"],
                "namespace": NS,
                "ownerReferences": [{"uid": task["metadata"]["uid"], "controller": True}],
                "annotations": {"ecs.operator.dev/containers": json.dumps(ecs)},
            },
            "spec": {"containers": [{"name": c} for c in containers]},
        },
    )


async def test_logs_read_the_task_s_pod_by_ecs_container_name() -> None:
    kube = LogKube()
    kube.seed(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    task = seeded_task(kube)
    pod(kube, task, "app")
    assert await commands.logs(kube, NS, "web-1", tail=5) == "hello\n"
    pod_two = seeded_task(kube, "web-2")
    pod(kube, pod_two, "my-app", "sidecar", ecs={"my-app": "My_App", "sidecar": "sidecar"})
    await commands.logs(kube, NS, "web-2", "My_App")
    assert kube.read == [("web-1", "app", 5), ("web-2", "my-app", None)]
    with pytest.raises(InputError, match="has the containers My_App, sidecar: choose one"):
        await commands.logs(kube, NS, "web-2")
    with pytest.raises(InputError, match="has no container 'nope'"):
        await commands.logs(kube, NS, "web-2", "nope")


async def test_logs_of_a_stopped_task_come_from_its_kept_pod() -> None:
    """A stopped task keeps its (terminated) Pod until the Task is deleted: its logs are read
    as a running task's."""
    kube = LogKube()
    kube.seed(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    task = seeded_task(kube, lastStatus="STOPPED")
    pod(kube, task, "app")
    assert await commands.logs(kube, NS, "web-1") == "hello\n"


async def test_logs_of_a_stopped_task_whose_pod_is_gone_say_so() -> None:
    kube = LogKube()
    kube.seed(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    seeded_task(kube, lastStatus="STOPPED")
    with pytest.raises(CommandError, match="is STOPPED and its Pod web-1 is gone"):
        await commands.logs(kube, NS, "web-1")
    seeded_task(kube, "web-2", lastStatus="PROVISIONING")
    with pytest.raises(CommandError, match="has no Pod yet"):
        await commands.logs(kube, NS, "web-2")
