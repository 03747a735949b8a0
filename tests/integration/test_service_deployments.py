"""Rolling deployments within minimumHealthyPercent / maximumPercent, checked at every Task
watch event of the rollout (not at poll instants)."""

from __future__ import annotations

import pytest

from support.ecs_api import Ecs, container
from support.services import Services, TaskWatch, bounds_check, deployment_configuration

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
