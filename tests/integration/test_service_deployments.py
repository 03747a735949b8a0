"""Rolling deployments within minimumHealthyPercent / maximumPercent, checked at every Task
watch event of the rollout (not at poll instants); an old task failing mid-deployment is
replaced from its own revision (ECS since 2025-11)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from support.ecs_api import MERGE_PATCH, Ecs, container
from support.helpers import ClusterTarget
from support.services import (
    EXIT_ANNOTATION,
    NODES,
    Services,
    TaskWatch,
    bounds_check,
    deployment_configuration,
    is_live,
    revision_of,
    task_status,
)

DESIRED = 4


@pytest.mark.parametrize(
    ("minimum", "maximum"), [(100, 200), (50, 100), (0, 100), (100, 150)], ids=str
)
def test_rolling_deployment_stays_within_its_bounds(ecs: Ecs, minimum: int, maximum: int) -> None:
    services = Services(ecs)
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    services.create(
        "web",
        "web",
        desiredCount=DESIRED,
        deploymentConfiguration=deployment_configuration(minimum, maximum),
    )
    services.wait_steady("web", DESIRED, "web:1")
    first = services.primary("web")["id"]
    check = bounds_check("web", lambda: DESIRED, minimum, maximum)
    with TaskWatch(services, check) as watch:
        services.update_task_definition(
            "web",
            {"containerDefinitions": [container("app", environment=[{"name": "V", "value": "2"}])]},
        )
        status = services.wait_steady("web", DESIRED, "web:2")
    watch.assert_clean()
    primary = status["deployments"][0]
    assert primary["id"] != first
    assert (primary["status"], primary["taskDefinition"]) == ("PRIMARY", "web:2")
    assert primary["rolloutState"] == "COMPLETED"
    messages = services.messages("web")
    assert f"(service web) (deployment {primary['id']}) deployment completed." in messages
    # Every old task was stopped by the scheduler for the new deployment.
    old = [t for t in watch.snapshot().values() if t["spec"]["taskDefinition"] == "web:1"]
    assert len(old) == DESIRED
    reasons = {(t.get("status") or {}).get("stoppedReason") for t in old}
    assert reasons == {f"Scaling activity initiated by (deployment {primary['id']})"}, reasons


GATE_LABEL = "attribute.ecs.operator.dev/rollout-gate"


@contextmanager
def node_attribute(target: ClusterTarget, label: str, value: str) -> Iterator[None]:
    """Every node carries the custom attribute inside the block; it is gone after it (even on
    failure)."""

    def label_nodes(label_value: str | None) -> None:
        for node in NODES:
            response = target.http.patch(
                f"/api/v1/nodes/{node}",
                json={"metadata": {"labels": {label: label_value}}},
                headers=MERGE_PATCH,
            )
            assert response.ok, response.text

    label_nodes(value)
    try:
        yield
    finally:
        label_nodes(None)


def test_an_old_task_failing_mid_deployment_is_replaced_from_its_own_revision(
    ecs: Ecs, target: ClusterTarget
) -> None:
    services = Services(ecs)
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    services.create(
        "web",
        "web",
        desiredCount=DESIRED,
        deploymentConfiguration=deployment_configuration(100, 200),
    )
    services.wait_steady("web", DESIRED, "web:1")
    old = services.primary("web")["id"]
    # web:2 runs only on nodes carrying this namespace's gate: none yet, so the deployment
    # stays in progress with every web:1 task still serving until the gate opens.
    gate = {"type": "memberOf", "expression": f"attribute:rollout-gate == {ecs.namespace}"}
    check = bounds_check("web", lambda: DESIRED, 100, 200, serving_floor=False)
    with TaskWatch(services, check) as watch:
        services.update_task_definition(
            "web",
            {
                "containerDefinitions": [
                    container("app", environment=[{"name": "V", "value": "2"}])
                ],
                "placementConstraints": [gate],
            },
        )
        services.wait(
            lambda: services.primary("web").get("taskDefinition") == "web:2",
            "the deployment of web:2 started",
            "web",
            20 * target.slowness,
        )
        before = {t["metadata"]["name"] for t in services.live("web")}
        victim = min(
            t["metadata"]["name"] for t in services.live("web") if revision_of(t) == "web:1"
        )
        services.patch(
            "pods", victim, {"metadata": {"annotations": {EXIT_ANNOTATION: "app:3"}}}, group=""
        )
        stopped_victim = ecs.wait_stopped(victim, timeout=20 * target.slowness)
        assert stopped_victim["stopCode"] == "EssentialContainerExited"

        def replacement() -> dict | None:
            fresh = [t for t in services.live("web") if t["metadata"]["name"] not in before]
            running = [t for t in fresh if task_status(t).get("lastStatus") == "RUNNING"]
            return running[0] if running else None

        task = services.wait(
            replacement, "the failed web:1 task's replacement", "web", 20 * target.slowness
        )
        assert (task["spec"]["startedBy"], revision_of(task)) == (old, "web:1")
        held = next(d for d in services.status("web")["deployments"] if d["id"] == old)
        assert (held["status"], held["desiredCount"]) == ("ACTIVE", DESIRED)
        assert services.primary("web")["rolloutState"] == "IN_PROGRESS"
        with node_attribute(target, GATE_LABEL, ecs.namespace):
            status = services.wait_steady("web", DESIRED, "web:2", timeout=40 * target.slowness)
    watch.assert_clean()
    assert [d["id"] for d in status["deployments"]] == [status["deployments"][0]["id"]]
    assert all(revision_of(t) == "web:2" for t in services.live("web"))
    # The replacement was stopped by the scheduler for the new deployment, like the others.
    stopped = ecs.task(task["metadata"]["name"])
    assert not is_live(stopped)
    new = status["deployments"][0]["id"]
    assert task_status(stopped).get("stoppedReason") == (
        f"Scaling activity initiated by (deployment {new})"
    )
