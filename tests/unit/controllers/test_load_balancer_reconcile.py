"""The LoadBalancer controller at its surface (`support.fake_kube`)."""

from __future__ import annotations

from typing import Any

from ecs_operator.controllers.loadbalancers import LoadBalancerController
from ecs_operator.core.labels import IN_USE_FINALIZER
from ecs_operator.kube.client import LOAD_BALANCERS, SERVICES
from ecs_operator.kube.events import EventRecorder
from support.controllers import ECS, NAMESPACE, Operator, cluster, service

KEY = (NAMESPACE, "web-lb")


def load_balancer() -> dict[str, Any]:
    return {
        "apiVersion": ECS,
        "kind": "LoadBalancer",
        "metadata": {"name": "web-lb", "namespace": NAMESPACE},
        "spec": {"listeners": [{"port": 80}]},
    }


async def test_a_load_balancer_changed_since_it_was_read_is_planned_again_not_failed() -> None:
    """The in-use finalizer is a compare-and-swap: when someone changed the LoadBalancer since
    the watch showed it, the write is refused (409) and the reconcile ends quietly; the
    change's watch event plans it again, and then the finalizer is set."""
    kube = cluster()
    used = service("web", 1)
    used["spec"]["loadBalancers"] = [
        {"loadBalancerName": "web-lb", "containerName": "app", "containerPort": 80}
    ]
    kube.seed(SERVICES, used)
    kube.seed(LOAD_BALANCERS, load_balancer())
    operator = Operator(kube)
    controller = LoadBalancerController(operator.context, EventRecorder(kube), operator.metrics)
    changed = kube.stored(LOAD_BALANCERS, *KEY)
    changed["metadata"]["labels"] = {"team": "shop"}
    kube.put(LOAD_BALANCERS, changed)  # not yet seen by the watch

    await controller.reconcile(KEY)  # does not raise
    assert IN_USE_FINALIZER not in (
        kube.stored(LOAD_BALANCERS, *KEY)["metadata"].get("finalizers") or ()
    )

    operator.catch_up()
    await controller.reconcile(KEY)
    assert IN_USE_FINALIZER in kube.stored(LOAD_BALANCERS, *KEY)["metadata"]["finalizers"]
