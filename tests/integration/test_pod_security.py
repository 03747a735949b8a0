"""Pod security on the sandbox, which enforces Pod Security Admission's baseline and restricted
standards as a real API server does (a Pod that breaks them is refused at create): Pods meet
the namespace's standard or the task fails first, naming the rule; privilege granted per
namespace; task roles and their ServiceAccounts."""

from __future__ import annotations

from typing import Any

from support.ecs_api import MERGE_PATCH, Ecs, OperatorProcess, condition, container
from support.helpers import ClusterTarget

ENFORCE = "pod-security.kubernetes.io/enforce"
GRANT_LABEL = "ecs.operator.dev/allow-privileged"


def label_namespace(ecs: Ecs, labels: dict[str, str | None]) -> None:
    response = ecs.http.patch(
        f"/api/v1/namespaces/{ecs.namespace}",
        json={"metadata": {"labels": labels}},
        headers=MERGE_PATCH,
    )
    assert response.status_code == 200, response.text


def create_service_account(ecs: Ecs, name: str, **fields: Any) -> None:
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}, **fields}
    response = ecs.http.post(ecs.path("serviceaccounts", group=""), json=body)
    assert response.status_code == 201, response.text


def accepted_message(ecs: Ecs, family: str, value: str) -> str:
    message: str = condition(ecs.wait_accepted(family, value), "Accepted").get("message") or ""
    return message


def test_a_task_runs_in_a_namespace_enforcing_restricted(ecs: Ecs) -> None:
    label_namespace(ecs, {ENFORCE: "restricted"})
    ecs.create_task_definition(
        "web",
        container("app", user="1000", portMappings=[{"containerPort": 8080}]),
        container("side", user="1000:1000", essential=False),
    )
    ecs.wait_accepted("web")
    ecs.create_task("web-1", "web")
    ecs.wait_last_status("web-1", "RUNNING")
    pod = ecs.pod("web-1")
    assert pod is not None
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for rendered in pod["spec"]["containers"]:
        context = rendered["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == 1000
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}


def test_a_task_that_cannot_meet_restricted_fails_naming_the_rule(ecs: Ecs) -> None:
    ecs.create_task_definition("rooted", container("app"))
    ecs.wait_accepted("rooted")
    # The namespace's label is watched: the family is judged again at once.
    label_namespace(ecs, {ENFORCE: "restricted"})
    message = accepted_message(ecs, "rooted", "False")
    assert "spec.containerDefinitions[0].user" in message
    assert 'enforces the "restricted" Pod Security Standard (runAsNonRoot)' in message

    ecs.create_task("rooted-1", "rooted")
    stopped = ecs.wait_stopped("rooted-1")
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert "runAsNonRoot" in stopped["stoppedReason"]
    assert not ecs.pods_of("rooted-1")
    ecs.wait_warning("rooted-1", "TaskFailedToStart")

    label_namespace(ecs, {ENFORCE: None})
    ecs.wait_accepted("rooted")


def test_privileged_is_granted_per_namespace_and_never_beyond_its_standard(
    ecs: Ecs, default_operator: OperatorProcess, sandbox_target: ClusterTarget
) -> None:
    default_operator.restart(
        extra_args=(
            "--allow-privileged-namespace",
            ecs.namespace,
            "--allow-privileged-label",
            f"{GRANT_LABEL}=true",
        )
    )
    agent = container("agent", privileged=True)
    ecs.create_task_definition("agent", agent)
    ecs.wait_accepted("agent")
    ecs.create_task("agent-1", "agent")
    ecs.wait_last_status("agent-1", "RUNNING")
    pod = ecs.pod("agent-1")
    assert pod is not None
    assert pod["spec"]["containers"][0]["securityContext"] == {"privileged": True}

    other = Ecs(sandbox_target, sandbox_target.create_namespace(), ecs.log_tail)
    try:
        other.create_task_definition("agent", agent)
        message = accepted_message(other, "agent", "False")
        assert "spec.containerDefinitions[0].privileged: privileged containers are refused" in (
            message
        )
        assert "--allow-privileged-namespace" in message
        label_namespace(other, {GRANT_LABEL: "true"})
        other.wait_accepted("agent")
        # The grant never overrides what the namespace enforces.
        label_namespace(other, {ENFORCE: "baseline"})
        message = accepted_message(other, "agent", "False")
        assert 'enforces the "baseline" Pod Security Standard (privileged)' in message
    finally:
        sandbox_target.delete_namespace(other.namespace)


def test_a_task_role_naming_the_operators_service_account_is_refused(
    ecs: Ecs, default_operator: OperatorProcess
) -> None:
    default_operator.restart(
        extra_args=("--operator-service-account", f"{ecs.namespace}/ecs-operator")
    )
    create_service_account(ecs, "ecs-operator")
    ecs.create_task_definition(
        "steal", container("app"), taskRoleArn="arn:aws:iam::123456789012:role/ecs-operator"
    )
    message = accepted_message(ecs, "steal", "False")
    assert "spec.taskRoleArn" in message
    assert "the operator's own" in message

    ecs.create_task_definition("plain", container("app"))
    ecs.wait_accepted("plain")
    ecs.create_task("steal-1", "plain", overrides={"taskRoleArn": "ecs-operator"})
    stopped = ecs.wait_stopped("steal-1")
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert "spec.taskRoleArn" in stopped["stoppedReason"]
    assert not ecs.pods_of("steal-1")


def test_the_token_follows_the_service_account_of_the_task_role(ecs: Ecs) -> None:
    create_service_account(ecs, "reader")
    create_service_account(ecs, "quiet", automountServiceAccountToken=False)
    ecs.create_task_definition(
        "reader", container("app"), taskRoleArn="arn:aws:iam::123456789012:role/reader"
    )
    ecs.create_task_definition("quiet", container("app"), taskRoleArn="quiet")
    ecs.create_task_definition("ghost", container("app"), taskRoleArn="ghost")
    for family in ("reader", "quiet", "ghost"):
        ecs.wait_accepted(family)
        ecs.create_task(f"{family}-1", family)

    ecs.wait_last_status("reader-1", "RUNNING")
    ecs.wait_last_status("quiet-1", "RUNNING")
    reader, quiet = ecs.pod("reader-1"), ecs.pod("quiet-1")
    assert reader is not None and quiet is not None
    assert reader["spec"]["serviceAccountName"] == "reader"
    assert reader["spec"]["automountServiceAccountToken"] is True
    assert quiet["spec"]["serviceAccountName"] == "quiet"
    assert quiet["spec"]["automountServiceAccountToken"] is False

    stopped = ecs.wait_stopped("ghost-1")
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert stopped["stoppedReason"] == (
        'ResourceInitializationError: unable to assume the task role "ghost" (spec.taskRoleArn): '
        f'ServiceAccount "ghost" not found in namespace {ecs.namespace}'
    )
    assert not ecs.pods_of("ghost-1")
