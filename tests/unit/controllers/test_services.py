"""`ServiceController`'s wake-ups: the response of its own status write does not reconcile
the Service again (that would retry at once what the reconcile scheduled for later), nor does
that write's watch echo; a change someone else made meanwhile always does."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from ecs_operator.controllers.context import OperatorContext, OperatorOptions
from ecs_operator.controllers.feeds import feed_of
from ecs_operator.controllers.loadbalancers import LoadBalancerController
from ecs_operator.controllers.metrics import OperatorMetrics
from ecs_operator.controllers.services import ServiceController
from ecs_operator.controllers.taskdefinitions import TaskDefinitionController
from ecs_operator.controllers.tasks import TaskController
from ecs_operator.controllers.watches import Controllers
from ecs_operator.kube.client import SERVICES, KubeClient
from ecs_operator.kube.events import EventRecorder
from ecs_operator.models.service import ServiceStatus
from support.fake_kube import FakeKube

FEED = feed_of(SERVICES)


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
    """The keys the Service controller's queue was asked to reconcile."""


def wired(kube: object = None) -> tuple[Controllers, Woken]:
    """The operator's controllers, wired as `ecs-operator run` wires them (none started)."""
    context = OperatorContext(OperatorOptions(), cast(KubeClient, kube))
    metrics, events = cast(OperatorMetrics, Metrics()), cast(EventRecorder, None)
    controllers = Controllers(
        context,
        metrics,
        TaskController(context, events, metrics),
        TaskDefinitionController(context, events, metrics),
        ServiceController(context, events, metrics),
        LoadBalancerController(context, events, metrics),
    )
    woken = Woken()
    controllers.services.queue.add = woken.append  # type: ignore[method-assign]
    return controllers, woken


def test_a_watch_event_wakes_the_service() -> None:
    fed, woken = wired()
    assert FEED is not None
    fed.watch_event(FEED, "ADDED", service(5))
    assert woken == [("ns", "web")]


def test_neither_its_own_write_nor_the_echo_of_it_does() -> None:
    assert FEED is not None
    fed, woken = wired()
    fed.context.services.record("MODIFIED", service(9))  # what the reconcile read
    fed.context.record(SERVICES, "MODIFIED", service(10), written=True)  # our write's response
    fed.watch_event(FEED, "MODIFIED", service(10))  # its watch event
    fed.watch_event(FEED, "MODIFIED", service(9))  # an earlier event, late
    assert not woken
    fed.watch_event(FEED, "MODIFIED", service(11, generation=2))  # someone else's change
    assert woken == [("ns", "web")]


def test_a_deletion_always_wakes_the_service() -> None:
    assert FEED is not None
    fed, woken = wired()
    fed.context.services.record("MODIFIED", service(10))
    fed.watch_event(FEED, "DELETED", service(10))
    assert woken == [("ns", "web")]


def test_a_spec_change_hidden_by_our_write_is_reconciled() -> None:
    """The user changed the spec (generation 2, version 11) after the reconcile read version
    10 and before its status write (version 12): the watch event of version 11 is older than
    what the write left in the cache, so the write itself wakes the Service."""
    assert FEED is not None
    read = service(10)
    quiet, quiet_woken = wired(api_holding(service(11)))  # its write: version 12
    quiet.context.services.record("MODIFIED", read)
    asyncio.run(quiet.services._write_status(read, ServiceStatus()))
    assert not quiet_woken

    changed, changed_woken = wired(api_holding(service(11, generation=2)))
    changed.context.services.record("MODIFIED", read)
    asyncio.run(changed.services._write_status(read, ServiceStatus()))
    assert changed_woken == [("ns", "web")]
    changed.watch_event(FEED, "MODIFIED", service(11, generation=2))
    assert changed_woken == [("ns", "web")]
    assert changed.context.services.get(("ns", "web"))["metadata"]["generation"] == 2
