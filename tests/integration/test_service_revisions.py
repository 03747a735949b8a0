"""Service revisions and service deployments through the real operator: a deployment that
changes the revision, the load balancer and the health-check grace period together fails,
rolls back to the last successful service revision with its settings, and the records are
readable with kubectl and survive an operator restart."""

from __future__ import annotations

import json

from support.ecs_api import Body, Ecs, KubectlRunner, OperatorProcess, container, shell
from support.load_balancers import (
    WEB_CONTAINER,
    WEB_PORT,
    LoadBalancers,
    lb_entry,
    load_balancer,
    web_definition,
)
from support.services import Services, revision_of

SERVICE = "web"
FAMILY = "web"
CONVERGE = 60
# The web container waits for a setup container that exits 1: web:2's tasks never run.
FAILING_WEB = [
    container("setup", shell("exit 1"), essential=False),
    container(
        WEB_CONTAINER,
        shell("while true; do sleep 5; done"),
        portMappings=[{"containerPort": WEB_PORT}],
        dependsOn=[{"containerName": "setup", "condition": "SUCCESS"}],
    ),
]
BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}


def service_deployments(services: Services) -> list[Body]:
    records: list[Body] = services.status(SERVICE).get("serviceDeployments") or []
    return records


def stored_revisions(ecs: Ecs, kubectl: KubectlRunner) -> list[Body]:
    """The Service's service revisions, as a user lists them."""
    listed = kubectl(
        "get",
        "controllerrevisions",
        "-n",
        ecs.namespace,
        "-l",
        f"ecs.operator.dev/service={SERVICE}",
        "-o",
        "json",
    )
    assert listed.returncode == 0, listed.stderr
    items: list[Body] = json.loads(listed.stdout)["items"]
    return sorted(items, key=lambda item: item["revision"])


def test_a_failed_deployment_rolls_back_to_the_last_successful_service_revision(
    ecs: Ecs, kubectl: KubectlRunner, default_operator: OperatorProcess
) -> None:
    services = Services(ecs)
    lbs = LoadBalancers(services)
    lbs.create(load_balancer("lb-one"))
    lbs.create(load_balancer("lb-two"))
    services.create_body(web_definition(FAMILY))
    ecs.wait_accepted(FAMILY)
    services.create(
        SERVICE,
        f"{FAMILY}:1",
        desiredCount=2,
        loadBalancers=[lb_entry("lb-one")],
        healthCheckGracePeriodSeconds=30,
        deploymentConfiguration=BREAKER,
    )
    services.wait(
        lambda: lbs.serving_all_running(SERVICE, 2, "lb-one"), "web:1 serving", SERVICE, CONVERGE
    )
    first = services.wait(
        lambda: (r := service_deployments(services)) and r[0]["status"] == "SUCCESSFUL" and r[0],
        "the first service deployment SUCCESSFUL",
        SERVICE,
    )
    originals = {t["metadata"]["name"] for t in services.live(SERVICE)}

    # web:2 cannot start; the same update moves the service to lb-two with a 5 s grace period.
    services.update_task_definition(FAMILY, {"containerDefinitions": FAILING_WEB})
    services.update(
        SERVICE,
        taskDefinition=f"{FAMILY}:2",
        loadBalancers=[lb_entry("lb-two")],
        healthCheckGracePeriodSeconds=5,
    )
    records = services.wait(
        lambda: (
            (r := service_deployments(services)) and r[0]["status"] == "ROLLBACK_SUCCESSFUL" and r
        ),
        "the rollback SUCCESSFUL",
        SERVICE,
        CONVERGE,
    )
    failed, succeeded = records
    assert succeeded == first  # a completed service deployment never changes
    assert failed["statusReason"] == (
        "Service deployment rolled back because the circuit breaker threshold was exceeded."
    )
    assert failed["rollback"]["serviceRevisionArn"] == first["targetServiceRevision"]["arn"]
    assert failed["rollback"]["reason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert failed["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert failed["deploymentCircuitBreaker"]["failureCount"] >= 3
    assert [s["arn"] for s in failed["sourceServiceRevisions"]] == [
        first["targetServiceRevision"]["arn"]
    ]
    assert failed["finishedAt"] and failed["createdAt"] > first["createdAt"]

    # The rollback restored revision 1's settings: its tasks serve in lb-one again, not lb-two.
    services.wait(
        lambda: lbs.serving_all_running(SERVICE, 2, "lb-one"),
        "web:1 serving in lb-one again",
        SERVICE,
        CONVERGE,
    )
    assert lbs.targets("lb-two") == [] or all(
        t["state"] == "draining" for t in lbs.targets("lb-two")
    )
    assert {revision_of(t) for t in services.live(SERVICE)} == {f"{FAMILY}:1"}
    assert {t["metadata"]["name"] for t in services.live(SERVICE)} == originals
    status = services.status(SERVICE)
    assert status["currentServiceDeployment"] == failed["serviceDeploymentArn"]
    assert [r["arn"] for r in status["currentServiceRevisions"]] == [
        first["targetServiceRevision"]["arn"]
    ]

    # No service revision was created for the rollback; both are readable with kubectl.
    revisions = stored_revisions(ecs, kubectl)
    assert [r["data"]["serviceRevisionArn"] for r in revisions] == [
        first["targetServiceRevision"]["arn"],
        failed["targetServiceRevision"]["arn"],
    ]
    one, two = (r["data"] for r in revisions)
    assert (one["taskDefinition"], one["healthCheckGracePeriodSeconds"]) == ("web:1", 30)
    assert [e["loadBalancerName"] for e in one["loadBalancers"]] == ["lb-one"]
    assert (two["taskDefinition"], two["healthCheckGracePeriodSeconds"]) == ("web:2", 5)
    assert [e["loadBalancerName"] for e in two["loadBalancers"]] == ["lb-two"]
    assert all(r["metadata"]["ownerReferences"][0]["kind"] == "Service" for r in revisions)

    # A restart derives everything from the API objects: the records stay as they are.
    versions = {r["metadata"]["name"]: r["metadata"]["resourceVersion"] for r in revisions}
    default_operator.kill()
    default_operator.start()
    ecs.create_task_definition("marker", container())
    ecs.wait_accepted("marker")
    ecs.create_task("marker", "marker")
    ecs.wait_last_status("marker", "RUNNING")  # queued behind the restart's reconciles
    assert service_deployments(services) == records
    after = stored_revisions(ecs, kubectl)
    assert {r["metadata"]["name"]: r["metadata"]["resourceVersion"] for r in after} == versions
    assert lbs.serving_all_running(SERVICE, 2, "lb-one")

    # Deleting the Service deletes its service revisions (ECS: with the service).
    ecs.delete("services", SERVICE)
    path = ecs.path("controllerrevisions", group="apps", version="v1")
    selector = {"labelSelector": f"ecs.operator.dev/service={SERVICE}"}

    def left() -> list[Body]:
        items: list[Body] = services.json("GET", path, (200,), params=selector)["items"]
        return items

    ecs.wait(lambda: not left(), "the service revisions collected with the Service", left, CONVERGE)
