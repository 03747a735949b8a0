"""The Service controller's creates: a name already taken is adopted only when it is this very
launch; a create of unknown outcome is read back before the next plan."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from ecs_operator.controllers.context import OperatorContext, OperatorOptions
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.services import ServiceController
from ecs_operator.core import labels
from ecs_operator.core.deployments import LaunchRequest
from ecs_operator.core.launches import LAUNCH_ORDINAL_ANNOTATION, launch_names
from ecs_operator.kube.client import NAMESPACES, TASKS, KubeError
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.service import Service
from support.fake_kube import FakeKube

NAMESPACE = "ns"
LAUNCH = LaunchRequest("ecs-svc/1", "web:1", 1)


def lose_next_create(kube: FakeKube, *, committed: bool) -> None:
    """The next Task create fails with a 503 (the connection reset), carried out or not."""
    kube.fail(
        "create",
        TASKS.plural,
        503,
        "ServiceUnavailable",
        "connection reset",
        after_commit=committed,
    )


class FakeEvents:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, str]] = []

    async def record(self, _obj: Any, type_: str, reason: str, message: str) -> None:
        self.recorded.append((type_, reason, message))


def service_body() -> dict[str, Any]:
    return {
        "apiVersion": "ecs.operator.dev/v1alpha1",
        "kind": "Service",
        "metadata": {"namespace": NAMESPACE, "name": "web", "uid": "svc-uid"},
        "spec": {"taskDefinition": "web", "desiredCount": 1},
    }


@pytest.fixture
def controller() -> ServiceController:
    kube = FakeKube()
    kube.seed(NAMESPACES, {"metadata": {"name": NAMESPACE}})
    context = OperatorContext(OperatorOptions(), kube)
    metrics = cast(OperatorMetrics, SimpleNamespace(observe_reconcile=None))
    return ServiceController(context, cast(EventRecorder, FakeEvents()), metrics)


def kube_of(controller: ServiceController) -> FakeKube:
    return cast(FakeKube, controller.context.kube)


def events_of(controller: ServiceController) -> FakeEvents:
    return cast(FakeEvents, controller.events)


def next_name(controller: ServiceController) -> tuple[int, str]:
    (chosen,) = launch_names(
        "web",
        "svc-uid",
        LAUNCH.deployment_id,
        1,
        lambda name: controller.context.tasks.get((NAMESPACE, name)) is not None,
    )
    return chosen


async def create(controller: ServiceController) -> dict[str, Any] | None:
    body = service_body()
    ordinal, name = next_name(controller)
    service = Service.model_validate(body)
    return await controller.launcher._create_task(body, service, LAUNCH, "node-1", ordinal, name)


async def test_a_create_retried_after_its_lost_response_adopts_the_same_task(
    controller: ServiceController,
) -> None:
    kube = kube_of(controller)
    first = await create(controller)
    assert first is not None
    # As if the cache never saw it: a fresh (empty) Task cache.
    controller.context.tasks = OperatorContext(OperatorOptions(), kube).tasks
    again = await create(controller)
    assert again is not None and again["metadata"]["uid"] == first["metadata"]["uid"]
    assert len(kube.all_stored(TASKS)) == 1
    assert controller.context.tasks.get((NAMESPACE, first["metadata"]["name"])) is not None


async def test_a_create_of_unknown_outcome_is_read_back_before_the_next_plan(
    controller: ServiceController,
) -> None:
    kube = kube_of(controller)
    lose_next_create(kube, committed=True)
    ordinal, name = next_name(controller)
    with pytest.raises(KubeError):
        await create(controller)
    assert controller.context.tasks.get((NAMESPACE, name)) is None
    await controller.launcher.settle_in_flight((NAMESPACE, "web"))
    # Created after all: counted now, and the next launch takes the next ordinal.
    assert controller.context.tasks.get((NAMESPACE, name)) is not None
    assert next_name(controller)[0] == ordinal + 1
    assert not controller.launcher._in_flight


async def test_a_create_that_did_not_happen_is_forgotten_when_read_back(
    controller: ServiceController,
) -> None:
    kube = kube_of(controller)
    lose_next_create(kube, committed=False)  # the API never carried it out
    _, name = next_name(controller)
    with pytest.raises(KubeError):
        await create(controller)
    await controller.launcher.settle_in_flight((NAMESPACE, "web"))
    assert controller.context.tasks.get((NAMESPACE, name)) is None
    assert not controller.launcher._in_flight


@pytest.mark.parametrize(
    ("owner", "started_by", "expected"),
    [
        ("someone-else", "ecs-svc/1", "not controlled by this service"),
        ("svc-uid", "ecs-svc/0", "another launch of this service"),
    ],
)
async def test_a_name_held_by_anything_but_this_launch_is_a_conflict(
    controller: ServiceController, owner: str, started_by: str, expected: str
) -> None:
    kube = kube_of(controller)
    _, name = next_name(controller)
    kube.seed(
        TASKS,
        {
            "apiVersion": "ecs.operator.dev/v1alpha1",
            "kind": "Task",
            "metadata": {
                "namespace": NAMESPACE,
                "name": name,
                "uid": "other",
                "resourceVersion": "1",
                "labels": {labels.MANAGED_BY_LABEL: labels.MANAGED_BY},
                "annotations": {LAUNCH_ORDINAL_ANNOTATION: "0"},
                "ownerReferences": [
                    {"kind": "Service", "name": "web", "uid": owner, "controller": True}
                ],
            },
            "spec": {"taskDefinition": "web:1", "startedBy": started_by},
        },
    )
    assert await create(controller) is None
    ((type_, reason, message),) = events_of(controller).recorded
    assert (type_, reason) == ("Warning", "TaskNameTaken")
    assert name in message and expected in message
    # The holder is known now: the launch is made again under another name.
    assert next_name(controller)[1] != name
    created = await create(controller)
    assert created is not None and created["metadata"]["name"] != name


async def test_nothing_is_launched_into_a_namespace_being_deleted(
    controller: ServiceController,
) -> None:
    """Every create would be refused (403 until the namespace is gone): none is sent."""
    deleting = {"metadata": {"name": NAMESPACE, "resourceVersion": "1", "deletionTimestamp": "x"}}
    controller.context.namespaces.record("ADDED", deleting)
    body = service_body()
    service = Service.model_validate(body)
    tried: list[LaunchRequest] = []

    async def launch(*args: Any) -> tuple[list[str], None, None]:
        tried.append(args[-1])
        return [], None, None

    controller.launcher._launch = launch  # type: ignore[method-assign]
    launched, failures, error = await controller.launcher.launch_all(body, service, [LAUNCH])
    assert (launched, failures, error, tried) == ({}, [], None, [])
    controller.context.namespaces.record(
        "MODIFIED", {"metadata": {"name": NAMESPACE, "resourceVersion": "2"}}
    )
    await controller.launcher.launch_all(body, service, [LAUNCH])
    assert tried == [LAUNCH]
