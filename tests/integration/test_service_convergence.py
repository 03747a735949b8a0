"""A Service whose outcome does not change writes nothing and says nothing new (issues #12, #13).

A full cluster (tasks that cannot be placed) or a deleted TaskDefinition once made the operator
rewrite the Service's status hundreds of times a second, each write's watch echo waking the next
reconcile, and repeat its events as fast. Here each scenario is brought to the state that used
to spin, then the Service's own writes (the MODIFIED events of a watch on it) and its events
(ECS events in status, Kubernetes Events with their aggregated counts) are counted over a
window: they must stay a small number, not a rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

from support.ecs_api import REVISION_STATUS_LABEL, Body, Ecs, KubectlRunner, container
from support.helpers import watch_lines
from support.services import Services, degraded, is_live, revision_of

WINDOW_SECONDS = 10.0
INACTIVE_WINDOW_SECONDS = 30.0
# A window may hold the end of the reconcile that reached the observed state and one placement
# retry (every 30 s); anything near the old rates (hundreds a second) fails by far.
MAX_WRITES_PER_WINDOW = 3
MAX_EVENTS_PER_WINDOW = 2
UNABLE_TO_PLACE = "was unable to place a task because no container instance met all"


@dataclass
class ServiceWrites:
    """MODIFIED events of one Service, counted by a watch running in a thread."""

    services: Services
    name: str
    modified: int = 0
    errors: list[str] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self, version: str) -> None:
        params = {
            "watch": "1",
            "fieldSelector": f"metadata.name={self.name}",
            "resourceVersion": version,
            "timeoutSeconds": 2,
        }
        path = self.services.ecs.path("services")
        while not self.stopped.is_set():
            try:
                with self.services.http.get(
                    path, params=params, stream=True, timeout=10
                ) as response:
                    for event in watch_lines(response):
                        if event["type"] == "ERROR":
                            self.errors.append(str(event["object"]))
                            return
                        params["resourceVersion"] = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] == "MODIFIED":
                            self.modified += 1
            except requests.RequestException as error:
                self.errors.append(repr(error))


@contextmanager
def counting_writes(services: Services, name: str) -> Iterator[ServiceWrites]:
    version = services.get(name)["metadata"]["resourceVersion"]
    writes = ServiceWrites(services, name)
    thread = threading.Thread(target=writes.run, args=(version,), daemon=True)
    thread.start()
    try:
        yield writes
    finally:
        writes.stopped.set()
        thread.join(15)


def kube_event_count(services: Services, name: str) -> int:
    """Kubernetes Events about the Service, each counted as often as it was posted."""
    return sum(int(event.get("count") or 1) for event in services.kube_events(name))


def ecs_event_ids(services: Services, name: str) -> set[str]:
    return {event["id"] for event in services.status(name).get("events") or ()}


def assert_quiet(services: Services, name: str, seconds: float) -> None:
    """Over `seconds`, the Service is written and tells of itself only a bounded number of
    times (no timing assertion: the window is a fixed count, not a measured speed)."""
    events_before = kube_event_count(services, name)
    ecs_before = ecs_event_ids(services, name)
    with counting_writes(services, name) as writes:
        time.sleep(seconds)  # the window itself: nothing is awaited, writes are counted
    new_ecs_events = [
        event["message"]
        for event in services.status(name).get("events") or ()
        if event["id"] not in ecs_before
    ]
    new_kube_events = kube_event_count(services, name) - events_before
    assert not writes.errors, writes.errors
    assert writes.modified <= MAX_WRITES_PER_WINDOW, (
        f"{writes.modified} status writes in {seconds} s"
    )
    assert len(new_ecs_events) <= MAX_EVENTS_PER_WINDOW, new_ecs_events
    assert new_kube_events <= MAX_EVENTS_PER_WINDOW, f"{new_kube_events} Kubernetes Events"


def placed_and_stuck(services: Services, name: str, placed: int) -> Body:
    """The status once `placed` tasks run and the rest is reported as unplaceable."""

    def check() -> Body | None:
        status = services.status(name)
        running = sum(
            1
            for task in services.live(name)
            if (task.get("status") or {}).get("lastStatus") == "RUNNING"
        )
        condition = next((c for c in status.get("conditions") or () if c["type"] == "Degraded"), {})
        stuck = condition.get("reason") == "TasksCannotBePlaced" and running == placed
        return status if stuck and status.get("runningCount") == placed else None

    result: Body = services.wait(check, f"{placed} placed, the rest unplaceable", name, 30)
    return result


def test_host_port_clash_on_a_full_cluster_converges(ecs: Ecs) -> None:
    """8 tasks with hostPort 8080 on 6 nodes: 6 run, 2 cannot be placed, and then the
    operator stops writing."""
    services = Services(ecs)
    port = {"containerPort": 8080, "hostPort": 8080}
    ecs.create_task_definition("ported", container("app", portMappings=[port]))
    ecs.wait_accepted("ported")
    services.create("ported", "ported", desiredCount=8)
    status = placed_and_stuck(services, "ported", 6)
    assert status["desiredCount"] == 8
    assert "is already using a TCP port required by your task" in degraded(status)["message"]
    placements = [m for m in services.messages("ported") if UNABLE_TO_PLACE in m]
    assert len(placements) == 1, placements
    assert_quiet(services, "ported", WINDOW_SECONDS)
    assert len(services.live("ported")) == 6


def test_memory_too_big_for_any_free_node_converges(ecs: Ecs) -> None:
    """A 6,000 MiB task on 8 GiB nodes: one per node, the rest cannot be placed."""
    services = Services(ecs)
    ecs.create_task_definition("big", container("app", memory=6000))
    ecs.wait_accepted("big")
    services.create("big", "big", desiredCount=8)
    status = placed_and_stuck(services, "big", 6)
    assert "has insufficient memory available" in degraded(status)["message"]
    assert_quiet(services, "big", WINDOW_SECONDS)


def test_service_keeps_scaling_on_its_inactive_revision(ecs: Ecs) -> None:
    """Deleting the TaskDefinition a Service runs neither stops the Service from scaling on
    the revision it already uses nor makes it talk: no new deployment is needed, so nothing is
    refused and nothing is Degraded."""
    services = Services(ecs)
    ecs.create_task_definition("repro")
    ecs.wait_accepted("repro")
    services.create("repro", "repro", desiredCount=2)
    services.wait_steady("repro", 2, "repro:1")
    ecs.delete("taskdefinitions", "repro")
    ecs.wait(
        lambda: (
            {
                r["metadata"]["labels"][REVISION_STATUS_LABEL]
                for r in ecs.revisions("repro").values()
            }
            == {"INACTIVE"}
        ),
        "repro:1 INACTIVE",
        lambda: ecs.revisions("repro"),
    )
    services.update("repro", desiredCount=4)
    status = services.wait_steady("repro", 4, "repro:1")
    assert degraded(status)["status"] == "False", degraded(status)
    assert not [
        t for t in services.tasks("repro") if (t.get("status") or {}).get("lastStatus") == "STOPPED"
    ]
    messages = services.messages("repro")
    assert not [m for m in messages if "unable to start a deployment" in m], messages
    assert_quiet(services, "repro", INACTIVE_WINDOW_SECONDS)


def test_new_deployment_without_active_revision_is_refused_once(
    ecs: Ecs, kubectl: KubectlRunner
) -> None:
    """A new deployment (forceNewDeployment) of a deleted family is refused: Degraded,
    one event, and the Service keeps its tasks of the INACTIVE revision and keeps scaling."""
    services = Services(ecs)
    ecs.create_task_definition("gone")
    ecs.wait_accepted("gone")
    services.create("gone", "gone", desiredCount=1)
    services.wait_steady("gone", 1, "gone:1")
    ecs.delete("taskdefinitions", "gone")
    ecs.wait(lambda: ecs.task_definition("gone") is None, "the TaskDefinition gone", lambda: "")
    generation = services.update("gone", forceNewDeployment="2026-01-01", desiredCount=2)[
        "metadata"
    ]["generation"]

    def refused() -> Body | None:
        status = services.status("gone")
        condition = next((c for c in status.get("conditions") or () if c["type"] == "Degraded"), {})
        current = status.get("observedGeneration") == generation
        unavailable = condition.get("reason") == "TaskDefinitionUnavailable"
        return status if current and unavailable else None

    status = services.wait(refused, "the new deployment refused", "gone")
    assert 'task definition "gone" has no ACTIVE revision' in degraded(status)["message"]
    shown = kubectl("get", "ecssvc", "gone", "-n", ecs.namespace)
    assert shown.returncode == 0, shown.stderr
    assert "DEGRADED" in shown.stdout and "TaskDefinitionUnavailable" in shown.stdout, shown.stdout
    status = services.wait_steady("gone", 2, "gone:1")
    assert all(revision_of(t) == "gone:1" for t in services.live("gone") if is_live(t))
    refusals = [m for m in services.messages("gone") if "unable to start a deployment" in m]
    assert len(refusals) == 1, refusals
    assert_quiet(services, "gone", INACTIVE_WINDOW_SECONDS)
    refusals = [m for m in services.messages("gone") if "unable to start a deployment" in m]
    assert len(refusals) == 1, refusals
