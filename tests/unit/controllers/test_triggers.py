"""What wakes each controller: every watched kind's changes, mapped by the triggers the
controllers declare, through the same path as the running operator (`Controllers`), whether the
change is a watch event or our own write's response."""

from __future__ import annotations

from typing import Any

from ecs_operator.controllers.feeds import FEEDS, feed_of
from ecs_operator.core import labels
from ecs_operator.kube.client import (
    CONTROLLER_REVISIONS,
    ENDPOINT_SLICES,
    KUBERNETES_SERVICES,
    LOAD_BALANCERS,
    NAMESPACES,
    NODES,
    PODS,
    SERVICES,
    TASK_DEFINITIONS,
    TASKS,
    Resource,
)
from support.controllers import recording_controllers

_rv = iter(range(100, 10_000))


class Wired:
    def __init__(self) -> None:
        self.controllers, self.recorders = recording_controllers()
        self.context = self.controllers.context

    def seed(self, resource: Resource, body: dict[str, Any]) -> None:
        """Cached without waking anyone (as a listing at start)."""
        self.context.record(resource, "ADDED", body, wake=False)

    def event(self, resource: Resource, event_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """A watch event of a new version of `body`; what each controller was asked to
        reconcile (and forget it)."""
        feed = feed_of(resource)
        assert feed is not None
        if event_type != "DELETED":
            body = {**body, "metadata": {**body["metadata"], "resourceVersion": str(next(_rv))}}
        self.controllers.watch_event(feed, event_type, body)
        return self.woken()

    def woken(self) -> dict[str, Any]:
        found = {name: sorted(r.keys) for name, r in self.recorders.items() if r.keys}
        for recorder in self.recorders.values():
            recorder.keys.clear()
        return found


def obj(name: str, namespace: str = "ns", **fields: Any) -> dict[str, Any]:
    metadata = {"name": name, "uid": f"uid-{name}", "resourceVersion": "1"}
    if namespace:
        metadata["namespace"] = namespace
    metadata.update(fields.pop("metadata", {}))
    return {"metadata": metadata, **fields}


def owned(name: str, kind: str, owner: str, **fields: Any) -> dict[str, Any]:
    refs = [{"kind": kind, "name": owner, "uid": f"uid-{owner}"}]
    return obj(name, metadata={"ownerReferences": refs, **fields.pop("metadata", {})}, **fields)


def test_every_watched_kind_wakes_someone() -> None:
    wired = Wired()
    triggered = {route for route in wired.controllers._routes}
    assert triggered == {feed.resource for feed in FEEDS.values()}


def test_a_pod_wakes_its_task_and_a_service_pod_the_load_balancers() -> None:
    wired = Wired()
    wired.seed(LOAD_BALANCERS, obj("lb"))
    assert wired.event(PODS, "MODIFIED", owned("t1", "Task", "t1")) == {"tasks": [("ns", "t1")]}
    service_pod = owned("t2", "Task", "t2", metadata={"labels": {labels.SERVICE_LABEL: "web"}})
    assert wired.event(PODS, "MODIFIED", service_pod) == {
        "tasks": [("ns", "t2")],
        "load_balancers": [("ns", "lb")],
    }
    assert wired.event(PODS, "MODIFIED", obj("stray")) == {}


def test_a_task_wakes_itself_its_service_and_then_the_load_balancers() -> None:
    wired = Wired()
    wired.seed(LOAD_BALANCERS, obj("lb"))
    assert wired.event(TASKS, "ADDED", obj("t1")) == {"tasks": [("ns", "t1")]}
    assert wired.event(TASKS, "MODIFIED", owned("t2", "Service", "web")) == {
        "tasks": [("ns", "t2")],
        "services": [("ns", "web")],
        "load_balancers": [("ns", "lb")],
    }


def test_the_watch_echo_of_our_own_write_wakes_nobody_again() -> None:
    wired = Wired()
    task = owned("t2", "Service", "web", metadata={"resourceVersion": "7"})
    wired.context.record(TASKS, "MODIFIED", task, written=True)
    assert wired.woken() == {"tasks": [("ns", "t2")], "services": [("ns", "web")]}
    feed = feed_of(TASKS)
    assert feed is not None
    wired.controllers.watch_event(feed, "MODIFIED", task)  # its echo
    assert wired.woken() == {}
    wired.controllers.watch_event(feed, None, task)  # a relist's: a resync wakes all the same
    assert wired.woken() == {"tasks": [("ns", "t2")], "services": [("ns", "web")]}


def test_a_node_wakes_every_service_only_when_placement_would_see_it() -> None:
    wired = Wired()
    for namespace in ("a", "b"):
        wired.seed(SERVICES, obj("web", namespace))
    ready = obj("n1", "", status={"conditions": [{"type": "Ready", "status": "True"}]}, spec={})
    assert wired.event(NODES, "ADDED", ready) == {"services": [("a", "web"), ("b", "web")]}
    heartbeat = {**ready, "status": {**ready["status"], "heartbeat": "later"}}
    assert wired.event(NODES, "MODIFIED", heartbeat) == {}
    cordoned = {**ready, "spec": {"unschedulable": True}}
    assert wired.event(NODES, "MODIFIED", cordoned) == {"services": [("a", "web"), ("b", "web")]}
    assert wired.event(NODES, "DELETED", cordoned) == {"services": [("a", "web"), ("b", "web")]}


def test_a_revision_wakes_its_family_the_services_and_the_tasks_waiting_for_it() -> None:
    wired = Wired()
    wired.seed(SERVICES, obj("web-service"))
    wired.seed(TASKS, obj("waits", spec={"taskDefinition": "web"}))
    wired.seed(TASKS, obj("other", spec={"taskDefinition": "batch:3"}))
    resolved = obj("ran", spec={"taskDefinition": "web"}, status={"taskDefinitionArn": "web:1"})
    wired.seed(TASKS, resolved)
    annotation = {labels.TASK_DEFINITION_ANNOTATION: "web:2"}
    revision = obj(
        "web-2",
        metadata={
            "labels": {labels.FAMILY_LABEL: "web", labels.MANAGED_BY_LABEL: labels.MANAGED_BY},
            "annotations": annotation,
        },
    )
    assert wired.event(CONTROLLER_REVISIONS, "ADDED", revision) == {
        "task_definitions": [("ns", "web")],
        "services": [("ns", "web-service")],
        "tasks": [("ns", "waits")],
    }
    assert wired.event(TASK_DEFINITIONS, "MODIFIED", obj("web")) == {
        "task_definitions": [("ns", "web")],
        "services": [("ns", "web-service")],
        "tasks": [("ns", "waits")],
    }


def test_a_load_balancer_wakes_the_tasks_whose_targets_moved_and_the_services() -> None:
    wired = Wired()
    wired.seed(SERVICES, obj("web"))
    targets = [{"task": "t1", "state": "initial"}, {"task": "t2", "state": "healthy"}]
    lb = obj("lb", status={"targets": targets})
    wired.seed(LOAD_BALANCERS, lb)
    moved = [{"task": "t1", "state": "healthy"}, {"task": "t2", "state": "healthy"}]
    assert wired.event(LOAD_BALANCERS, "MODIFIED", {**lb, "status": {"targets": moved}}) == {
        "load_balancers": [("ns", "lb")],
        "tasks": [("ns", "t1")],
        "services": [("ns", "web")],
    }
    spec_only = {**lb, "status": {"targets": moved}, "spec": {"changed": True}}
    assert wired.event(LOAD_BALANCERS, "MODIFIED", spec_only) == {"load_balancers": [("ns", "lb")]}
    assert wired.event(LOAD_BALANCERS, "DELETED", spec_only) == {
        "load_balancers": [("ns", "lb")],
        "tasks": [("ns", "t1"), ("ns", "t2")],
        "services": [("ns", "web")],
    }


def test_what_a_load_balancer_owns_wakes_it() -> None:
    wired = Wired()
    managed = {labels.MANAGED_BY_LABEL: labels.MANAGED_BY}
    assert wired.event(
        KUBERNETES_SERVICES, "MODIFIED", obj("lb", metadata={"labels": managed})
    ) == {"load_balancers": [("ns", "lb")]}
    slice_labels = {**managed, "kubernetes.io/service-name": "lb"}
    endpoint_slice = obj("lb-1", metadata={"labels": slice_labels})
    assert wired.event(ENDPOINT_SLICES, "MODIFIED", endpoint_slice) == {
        "load_balancers": [("ns", "lb")]
    }
    # Not the operator's: its watch never sees it, nor does its cache.
    assert wired.event(KUBERNETES_SERVICES, "MODIFIED", obj("theirs")) == {}
    assert wired.context.kubernetes_services.get(("ns", "theirs")) is None


def test_a_service_wakes_itself_and_the_load_balancers_of_its_namespace() -> None:
    wired = Wired()
    wired.seed(LOAD_BALANCERS, obj("lb"))
    assert wired.event(SERVICES, "MODIFIED", obj("web")) == {
        "services": [("ns", "web")],
        "load_balancers": [("ns", "lb")],
    }


def test_a_namespace_wakes_its_families_when_what_it_allows_changes() -> None:
    wired = Wired()
    wired.seed(TASK_DEFINITIONS, obj("web", "team"))
    namespace = obj("team", "")
    wired.seed(NAMESPACES, namespace)
    assert wired.event(NAMESPACES, "MODIFIED", obj("team", "", metadata={"labels": {}})) == {}
    restricted = {"pod-security.kubernetes.io/enforce": "restricted"}
    assert wired.event(
        NAMESPACES, "MODIFIED", obj("team", "", metadata={"labels": restricted})
    ) == {"task_definitions": [("team", "web")]}
