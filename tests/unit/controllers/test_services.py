"""`ServiceController`'s wake-ups: the watch echo of its own status write does not reconcile
the Service again (that would retry at once what the reconcile scheduled for later), but a
change someone else made meanwhile always does."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from ecs_operator.controllers.context import OperatorContext, OperatorOptions
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.services import ServiceController
from ecs_operator.kube.client import SERVICES, KubeClient
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.service import ServiceStatus
from support.fake_kube import FakeKube


def service(rv: int, generation: int = 1, uid: str = "u1") -> dict[str, Any]:
    return {
        "apiVersion": "ecs.operator.dev/v1alpha1",
        "kind": "Service",
        "metadata": {
            "namespace": "ns",
            "name": "web",
            "uid": uid,
            "resourceVersion": str(rv),
            "generation": generation,
        },
        "spec": {"taskDefinition": "web", "desiredCount": 1},
    }


def api_holding(stored: dict[str, Any]) -> FakeKube:
    """An API server whose Service is `stored`: a status write answers it at the next
    resourceVersion."""
    kube = FakeKube()
    kube.seed(SERVICES, stored)
    return kube


class Metrics:
    def observe_reconcile(self, _queue: str, _seconds: float, _ok: bool) -> None:
        pass


class Woken(list[Any]):
    """The keys a controller's queue was asked to reconcile."""


def controller(kube: object = None) -> tuple[ServiceController, Woken]:
    context = OperatorContext(OperatorOptions(), cast(KubeClient, kube))
    services = ServiceController(
        context, cast(EventRecorder, None), cast(OperatorMetrics, Metrics())
    )
    woken = Woken()
    services.queue.add = woken.append  # type: ignore[method-assign]
    return services, woken


def test_a_watch_event_wakes_the_service() -> None:
    services, woken = controller()
    services.handle_event("ADDED", service(5))
    assert woken


def test_the_echo_of_its_own_write_does_not() -> None:
    services, woken = controller()
    services.context.services.record("MODIFIED", service(10))  # our write's response
    services.handle_event("MODIFIED", service(10))  # its watch event
    services.handle_event("MODIFIED", service(9))  # an earlier event, late
    assert not woken
    services.handle_event("MODIFIED", service(11, generation=2))  # someone else's change
    assert woken


def test_a_deletion_always_wakes_the_service() -> None:
    services, woken = controller()
    services.context.services.record("MODIFIED", service(10))
    services.handle_event("DELETED", service(10))
    assert woken


def test_a_spec_change_hidden_by_our_write_is_reconciled() -> None:
    """The user changed the spec (generation 2, version 11) after the reconcile read version
    10 and before its status write (version 12): the watch event of version 11 is older than
    what the write left in the cache, so the write itself wakes the Service."""
    read = service(10)
    quiet, quiet_woken = controller(api_holding(service(11)))  # its write: version 12
    quiet.context.services.record("MODIFIED", read)
    asyncio.run(quiet._write_status(read, ServiceStatus()))
    assert not quiet_woken

    changed, changed_woken = controller(api_holding(service(11, generation=2)))
    changed.context.services.record("MODIFIED", read)
    asyncio.run(changed._write_status(read, ServiceStatus()))
    changed.handle_event("MODIFIED", service(11, generation=2))
    assert changed_woken
    assert changed.context.services.get(("ns", "web"))["metadata"]["generation"] == 2
