"""ECS names pasted unchanged, end to end: a task role ARN and a Secrets Manager ARN name the
ServiceAccount and Secret they map to (README "Names of roles, secrets and load balancers"),
an override names them outright, a missing ServiceAccount stops the task naming both names,
and a Service's targetGroupArn names a LoadBalancer by the target group's name.

The mapped names are written out here: they are what users create, so they must not change."""

from __future__ import annotations

import base64

from support.ecs_api import Ecs, container
from support.load_balancers import LoadBalancers, load_balancer, web_definition
from support.services import Services

ROLE = "arn:aws:iam::123456789012:role/ecsTaskRole"
ROLE_ACCOUNT = "ecstaskrole-1fb102bd"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf:password::"
SECRET_NAME = "prod-db-96e5a54a"
TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/73e2d6bc24d8"


def create(ecs: Ecs, kind: str, body: dict[str, object]) -> None:
    response = ecs.http.post(ecs.path(kind, group=""), json={"apiVersion": "v1"} | body)
    assert response.status_code == 201, response.text


def service_account(ecs: Ecs, name: str) -> None:
    create(ecs, "serviceaccounts", {"kind": "ServiceAccount", "metadata": {"name": name}})


def secret(ecs: Ecs, name: str) -> None:
    data = {"password": base64.b64encode(b"hunter2").decode()}
    create(ecs, "secrets", {"kind": "Secret", "metadata": {"name": name}, "data": data})


def app(**fields: object) -> dict[str, object]:
    return container("app", secrets=[{"name": "DB_PASSWORD", "valueFrom": SECRET, **fields}])


def test_a_role_arn_and_a_secret_arn_run_as_the_objects_they_map_to(ecs: Ecs) -> None:
    service_account(ecs, ROLE_ACCOUNT)
    secret(ecs, SECRET_NAME)
    ecs.create_task_definition("mapped", app(), taskRoleArn=ROLE)
    ecs.wait_accepted("mapped")
    ecs.create_task("mapped-1", "mapped")
    ecs.wait_last_status("mapped-1", "RUNNING")
    pod = ecs.pod("mapped-1")
    assert pod is not None
    assert pod["spec"]["serviceAccountName"] == ROLE_ACCOUNT
    [env] = pod["spec"]["containers"][0]["env"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": SECRET_NAME, "key": "password"}


def test_the_overrides_name_the_service_account_and_the_secret(ecs: Ecs) -> None:
    service_account(ecs, "task-role")
    secret(ecs, "db")
    ecs.create_task_definition(
        "named",
        app(kubernetesSecretName="db"),
        taskRoleArn=ROLE,
        taskRoleServiceAccountName="task-role",
    )
    ecs.wait_accepted("named")
    ecs.create_task("named-1", "named")
    ecs.wait_last_status("named-1", "RUNNING")
    pod = ecs.pod("named-1")
    assert pod is not None
    assert pod["spec"]["serviceAccountName"] == "task-role"
    [env] = pod["spec"]["containers"][0]["env"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "password"}


def test_a_missing_service_account_stops_the_task_naming_the_role_and_the_account(
    ecs: Ecs,
) -> None:
    ecs.create_task_definition("roleless", container("app"), taskRoleArn=ROLE)
    ecs.wait_accepted("roleless")
    ecs.create_task("roleless-1", "roleless")
    stopped = ecs.wait_stopped("roleless-1")
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert stopped["stoppedReason"] == (
        f'ResourceInitializationError: unable to assume the task role "{ROLE}" '
        f'(spec.taskRoleArn): ServiceAccount "{ROLE_ACCOUNT}" not found in namespace '
        f"{ecs.namespace}"
    )
    assert not ecs.pods_of("roleless-1")


def test_a_missing_secret_stops_the_task_naming_the_arn_and_the_secret(ecs: Ecs) -> None:
    ecs.create_task_definition("secretless", app())
    ecs.wait_accepted("secretless")
    ecs.create_task("secretless-1", "secretless")
    stopped = ecs.wait_stopped("secretless-1")
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert stopped["stoppedReason"] == (
        f'ResourceInitializationError: unable to retrieve secret "{SECRET}" '
        "(spec.containerDefinitions[0].secrets[0].valueFrom): "
        f'Secret "{SECRET_NAME}" not found in namespace {ecs.namespace}'
    )


def test_a_target_group_arn_names_the_load_balancer_after_the_target_group(ecs: Ecs) -> None:
    services = Services(ecs)
    services.create_body(web_definition("web"))
    ecs.wait_accepted("web")
    entry = {"targetGroupArn": TARGET_GROUP, "containerName": "web", "containerPort": 8080}
    services.create("web", "web", desiredCount=1, loadBalancers=[entry])
    field = "spec.loadBalancers[0].targetGroupArn"

    def messages() -> str:
        conditions = services.status("web").get("conditions") or []
        return " ".join(str(c.get("message")) for c in conditions)

    ecs.wait(lambda: field in messages(), f"the Service names {field}", messages)
    assert "no LoadBalancer named 'web-tg'" in messages()

    lbs = LoadBalancers(services)
    lbs.create(load_balancer("web-tg"))
    ecs.wait(
        lambda: any(t.get("state") == "healthy" for t in lbs.targets("web-tg")),
        "a task of web registered and healthy in web-tg",
        lambda: lbs.status("web-tg"),
        30,
    )
