"""Killing the operator at any instant loses nothing and duplicates nothing; a restart against
a converged cluster writes nothing."""

from __future__ import annotations

from collections import Counter

from ecs_sandbox.runtime import SandboxThread
from support.ecs_api import PROBE_WRITES, Ecs, OperatorProcess, container, shell
from support.services import EXIT_ANNOTATION, Services

WATCHED = ("services", "tasks", "taskdefinitions", "pods", "controllerrevisions")
WRITES = ("create", "update", "patch", "delete", "deletecollection")


def writes(sandbox_thread: SandboxThread) -> Counter[tuple[str, str]]:
    """Requests that wrote the watched kinds (status and other subresources included)."""
    counts = sandbox_thread.call(lambda: dict(sandbox_thread.sandbox.counters.counts))
    return Counter(
        {
            (verb, resource): n
            for (verb, resource), n in counts.items()
            if verb in WRITES and resource.split("/")[0] in WATCHED
        }
    )


def versions(ecs: Ecs) -> dict[str, str]:
    found = {}
    for plural, group in (
        ("services", "ecs.operator.dev"),
        ("tasks", "ecs.operator.dev"),
        ("taskdefinitions", "ecs.operator.dev"),
        ("pods", ""),
        ("controllerrevisions", "apps"),
    ):
        for item in ecs.list(plural, group=group):
            found[f"{plural}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return found


def test_sigkill_mid_life_neither_duplicates_nor_loses_the_task(
    ecs: Ecs, default_operator: OperatorProcess
) -> None:
    ecs.create_task_definition("long", container("app", stopTimeout=2))
    ecs.wait_accepted("long")
    ecs.create_task("survivor", "long")
    ecs.wait_last_status("survivor", "PENDING", "RUNNING")
    default_operator.kill()
    assert len(ecs.pods_of("survivor")) == 1

    default_operator.start()
    status = ecs.wait_last_status("survivor", "RUNNING")
    pods = ecs.pods_of("survivor")
    assert len(pods) == 1
    assert status["taskDefinitionArn"] == "long:1"
    assert status["nodeName"] == pods[0]["spec"]["nodeName"]

    ecs.stop_task("survivor")
    stopped = ecs.wait_stopped("survivor")
    assert stopped["stopCode"] == "UserInitiated"
    # Its one Pod stopped and kept (for its logs) until the Task is deleted.
    ecs.wait(
        lambda: [p["status"].get("phase") for p in ecs.pods_of("survivor")] == ["Failed"],
        "its one Pod stopped",
        lambda: ecs.pods_of("survivor"),
    )


def test_sigkill_right_after_creation_launches_exactly_one_pod(
    ecs: Ecs, default_operator: OperatorProcess
) -> None:
    ecs.create_task_definition("quick", container("app"))
    ecs.wait_accepted("quick")
    names = [f"q-{n}" for n in range(4)]
    for name in names:
        ecs.create_task(name, "quick")
    default_operator.kill()  # somewhere between "never seen" and "pod created"
    default_operator.start()
    for name in names:
        ecs.wait_last_status(name, "RUNNING")
        assert len(ecs.pods_of(name)) == 1


def test_restart_against_a_converged_namespace_writes_nothing(
    ecs: Ecs, default_operator: OperatorProcess, sandbox_thread: SandboxThread
) -> None:
    ecs.create_task_definition("steady", container("app"))
    ecs.create_task_definition("done", container("job", shell("exit 0")))
    ecs.wait_accepted("steady")
    ecs.wait_accepted("done")
    ecs.create_task("running", "steady")
    ecs.create_task("finished", "done")
    ecs.wait_last_status("running", "RUNNING")
    ecs.wait_stopped("finished")
    ecs.wait_task(
        "running",
        lambda s: s.get("healthStatus") and s.get("connectivity") == "CONNECTED",
        "fully reported",
    )
    before_versions = versions(ecs)
    default_operator.kill()
    before = writes(sandbox_thread)

    default_operator.start()  # returns once it handled a probe created after its start
    made = writes(sandbox_thread) - before
    made.subtract(PROBE_WRITES)
    assert not +made, f"a restart on a converged cluster wrote {dict(+made)}"

    # A task created now is queued behind every key of the initial listing: once it runs,
    # the restart's reconciles are done, and none of them touched this namespace.
    ecs.create_task("marker", "steady")
    ecs.wait_last_status("marker", "RUNNING")
    after_versions = {k: v for k, v in versions(ecs).items() if not k.endswith("/marker")}
    assert after_versions == before_versions


def test_restart_after_a_service_replaced_a_failed_task_writes_nothing(
    ecs: Ecs, default_operator: OperatorProcess, sandbox_thread: SandboxThread
) -> None:
    """A task that failed soon after starting throttles the service's launches until its
    replacement runs; the cleared throttle must really be gone from the stored status, or a
    restart finds it there and writes again."""
    services = Services(ecs)
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    services.create("web", "web", desiredCount=2)
    services.wait_steady("web", 2)
    victim = sorted(t["metadata"]["name"] for t in services.live("web"))[0]
    services.patch(
        "pods", victim, {"metadata": {"annotations": {EXIT_ANNOTATION: "app:1"}}}, group=""
    )
    ecs.wait_stopped(victim)
    services.wait(
        lambda: (
            victim not in {t["metadata"]["name"] for t in services.live("web")}
            and "lastStartFailureAt" not in (services.status("web").get("scheduler") or {})
        ),
        "the replacement running and the throttle cleared",
        "web",
    )
    services.wait_steady("web", 2)
    before_versions = versions(ecs)
    default_operator.kill()
    before = writes(sandbox_thread)

    default_operator.start()
    made = writes(sandbox_thread) - before
    made.subtract(PROBE_WRITES)
    assert not +made, f"a restart on a converged cluster wrote {dict(+made)}"

    # A Service created now is queued behind every Service of the initial listing: once it is
    # steady, the restart's reconciles of Services are done too.
    services.create("marker", "web", desiredCount=1)
    services.wait_steady("marker", 1)
    after_versions = versions(ecs)
    assert {k: after_versions.get(k) for k in before_versions} == before_versions
