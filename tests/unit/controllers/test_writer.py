"""The writer: every response carrying a watched object lands in its kind's cache at once,
as a change that wakes whom the triggers name; what the watch would not see is not cached; an
expected object is counted before its create is answered and forgotten if it fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ecs_operator.controllers.watches import Controllers
from ecs_operator.core import labels
from ecs_operator.kube.client import (
    KUBERNETES_SERVICES,
    LOAD_BALANCERS,
    NAMESPACES,
    PODS,
    SECRETS,
    TASKS,
    KubeError,
)
from support.controllers import Recorder, recording_controllers
from support.fake_kube import FakeKube


def wired() -> tuple[Controllers, dict[str, Recorder], FakeKube]:
    kube = FakeKube()
    kube.seed(NAMESPACES, {"metadata": {"name": "ns"}})
    controllers, recorders = recording_controllers(kube=kube)
    return controllers, recorders, kube


def body(name: str, **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, **metadata}}


def test_a_write_is_cached_and_wakes_at_once_and_its_echo_changes_nothing() -> None:
    controllers, recorders, _ = wired()
    owner = [{"kind": "Service", "name": "web", "uid": "u"}]
    created = asyncio.run(
        controllers.context.api.create(TASKS, "ns", body("t1", ownerReferences=owner))
    )
    assert controllers.context.tasks.get(("ns", "t1")) == created
    assert recorders["tasks"].keys == [("ns", "t1")]
    assert recorders["services"].keys == [("ns", "web")]
    assert controllers.context.record(TASKS, "MODIFIED", created) is None  # the watch's echo
    patched = asyncio.run(controllers.context.api.patch(TASKS, "ns", "t1", {"spec": {"x": 1}}))
    assert controllers.context.tasks.get(("ns", "t1")) == patched
    assert recorders["tasks"].keys == [("ns", "t1"), ("ns", "t1")]


def test_what_the_watch_would_not_see_is_not_cached() -> None:
    controllers, _, kube = wired()
    kube.seed(KUBERNETES_SERVICES, body("theirs"))
    kube.seed(SECRETS, body("db"))
    api = controllers.context.api
    assert asyncio.run(api.get(KUBERNETES_SERVICES, "ns", "theirs")) is not None
    assert asyncio.run(api.get(SECRETS, "ns", "db")) is not None
    assert controllers.context.kubernetes_services.get(("ns", "theirs")) is None
    managed = {labels.MANAGED_BY_LABEL: labels.MANAGED_BY}
    asyncio.run(api.create(KUBERNETES_SERVICES, "ns", body("ours", labels=managed)))
    assert controllers.context.kubernetes_services.get(("ns", "ours")) is not None


def test_an_expected_pod_is_counted_before_the_answer_and_forgotten_when_refused() -> None:
    controllers, recorders, kube = wired()
    seen: list[Any] = []
    answer = kube.request

    async def request(*args: Any, **kwargs: Any) -> Any:
        seen.append(controllers.context.pods.get(("ns", "t1")))
        return await answer(*args, **kwargs)

    kube.request = request  # type: ignore[method-assign]
    manifest = body("t1", ownerReferences=[{"kind": "Task", "name": "t1", "uid": "u"}])
    kube.fail("create", "pods", 403, "Forbidden", "violates PodSecurity")
    with pytest.raises(KubeError):
        asyncio.run(controllers.context.api.create_or_get(PODS, "ns", manifest, expect=True))
    assert seen == [manifest]
    assert controllers.context.pods.get(("ns", "t1")) is None
    assert recorders["tasks"].keys == []  # neither the expectation nor its end wakes anyone


def test_removing_the_last_finalizer_of_a_deleted_object_records_its_deletion() -> None:
    controllers, recorders, kube = wired()
    stored = kube.seed(LOAD_BALANCERS, body("lb", finalizers=[labels.IN_USE_FINALIZER]))
    controllers.context.record(LOAD_BALANCERS, "ADDED", stored, wake=False)
    asyncio.run(kube.delete(LOAD_BALANCERS, "ns", "lb"))
    deleting = kube.stored(LOAD_BALANCERS, "ns", "lb")
    asyncio.run(
        controllers.context.api.set_finalizer(
            LOAD_BALANCERS, deleting, labels.IN_USE_FINALIZER, present=False
        )
    )
    assert controllers.context.load_balancers.get(("ns", "lb")) is None
    assert recorders["services"].keys == []  # no Service in the namespace to tell
    assert recorders["load_balancers"].keys == [("ns", "lb")]
