"""Pod rendering: every mapped field, overrides, resource splitting, dependsOn, names, reports."""

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from ecs_operator.core import labels
from ecs_operator.core.names import kubernetes_name, service_account_name
from ecs_operator.core.quantity import cpu_millicores, memory_bytes
from ecs_operator.core.render import (
    DEFAULT_CONTAINER_ANNOTATION,
    DOCKER_LABELS_ANNOTATION,
    NOT_HONOURED,
    RenderedPod,
    RenderError,
    ResolvedTaskDefinition,
    container_names,
    container_roles,
    dependency_order,
    dns_labels,
    effective_spec,
    render_pod,
    secret_references,
)
from ecs_operator.core.security import PodSecurityLevel, SecurityPolicy
from ecs_operator.models.task import TaskSpec
from ecs_operator.models.taskdefinition import TaskDefinitionSpec
from ecs_sandbox import pod_security

ALLOW_ALL = SecurityPolicy.from_allow_privileged(True)
# What every container that asks for nothing else gets.
SECURE_DEFAULTS = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def container(name: str = "app", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "nginx:1.27", **fields}


def definition(*containers: dict[str, Any], **fields: Any) -> TaskDefinitionSpec:
    return TaskDefinitionSpec.model_validate(
        {"containerDefinitions": list(containers) or [container(memory=128)], **fields}
    )


def render(
    spec: TaskDefinitionSpec,
    task: dict[str, Any] | None = None,
    policy: SecurityPolicy = ALLOW_ALL,
) -> RenderedPod:
    return render_pod(
        task_name="web-1",
        namespace="prod",
        task_uid="uid-1",
        task=TaskSpec.model_validate({"taskDefinition": "web", **(task or {})}),
        task_definition=ResolvedTaskDefinition(family="web", revision=3, spec=spec),
        node_name="node-a",
        group="family:web",
        policy=policy,
    )


def pod_spec(spec: TaskDefinitionSpec, task: dict[str, Any] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = render(spec, task).manifest["spec"]
    return result


def only(pod: dict[str, Any], name: str = "app") -> dict[str, Any]:
    every = [*pod.get("initContainers", []), *pod["containers"]]
    return next(c for c in every if c["name"] == name)


def reported(rendered: RenderedPod) -> dict[str, str]:
    return {entry.field: entry.reason for entry in rendered.unsupported}


# ---------------------------------------------------------------------------------------------
# Metadata and pod-level basics


def test_pod_is_named_owned_labelled_and_annotated() -> None:
    metadata = render(definition()).manifest["metadata"]
    assert metadata["name"] == "web-1"
    assert metadata["namespace"] == "prod"
    assert metadata["ownerReferences"] == [
        {
            "apiVersion": "ecs.operator.dev/v1alpha1",
            "kind": "Task",
            "name": "web-1",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert metadata["labels"] == {
        labels.TASK_LABEL: "web-1",
        labels.FAMILY_LABEL: "web",
        labels.REVISION_LABEL: "3",
        labels.MANAGED_BY_LABEL: "ecs-operator",
    }
    annotations = metadata["annotations"]
    assert annotations[labels.GROUP_ANNOTATION] == "family:web"
    assert annotations[labels.TASK_DEFINITION_ANNOTATION] == "web:3"
    assert json.loads(annotations[labels.CONTAINERS_ANNOTATION]) == {"app": "app"}


def test_pod_never_restarts_and_is_pinned_by_required_affinity() -> None:
    pod = pod_spec(definition())
    assert pod["restartPolicy"] == "Never"
    assert pod["enableServiceLinks"] is False
    assert pod["automountServiceAccountToken"] is False
    assert "nodeName" not in pod and "serviceAccountName" not in pod
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-a"]}
            ]
        }
    ]


def test_grace_period_is_the_longest_stop_timeout_with_30_as_default() -> None:
    assert pod_spec(definition())["terminationGracePeriodSeconds"] == 30
    spec = definition(container("a", memory=64, stopTimeout=10), container("b", memory=64))
    assert pod_spec(spec)["terminationGracePeriodSeconds"] == 30
    spec = definition(container("a", memory=64, stopTimeout=90), container("b", memory=64))
    assert pod_spec(spec)["terminationGracePeriodSeconds"] == 90
    spec = definition(container("a", memory=64, stopTimeout=5))
    assert pod_spec(spec)["terminationGracePeriodSeconds"] == 5


@pytest.mark.parametrize(
    ("role", "account"),
    [
        ("arn:aws:iam::123456789012:role/web-role", "web-role"),
        ("arn:aws:iam::123456789012:role/team/app/web", "web"),
        ("arn:aws:iam::123456789012:role/service-role/x", "x"),
        ("web-runner", "web-runner"),
        ("arn:aws:iam::123456789012:role/ecsTaskRole", kubernetes_name("ecsTaskRole")),
        ("arn:aws:iam::1:role/ecs_task_iam_role", kubernetes_name("ecs_task_iam_role")),
        (
            "arn:aws:iam::1:role/AmazonECS_OpenTelemetryXrayRole",
            kubernetes_name("AmazonECS_OpenTelemetryXrayRole"),
        ),
    ],
)
def test_task_role_names_the_service_account(role: str, account: str) -> None:
    assert service_account_name(role) == account
    pod = pod_spec(definition(taskRoleArn=role))
    assert pod["serviceAccountName"] == account
    assert pod["automountServiceAccountToken"] is True


def test_the_token_follows_the_service_account_of_the_task_role() -> None:
    def automount(opt_in: bool | None) -> bool:
        return bool(
            render_pod(
                task_name="web-1",
                namespace="prod",
                task_uid="uid-1",
                task=TaskSpec.model_validate({"taskDefinition": "web"}),
                task_definition=ResolvedTaskDefinition("web", 3, definition(taskRoleArn="web")),
                node_name="node-a",
                group="family:web",
                policy=ALLOW_ALL,
                service_account_automount=opt_in,
            ).manifest["spec"]["automountServiceAccountToken"]
        )

    assert automount(None) is True
    assert automount(True) is True
    assert automount(False) is False


def test_a_task_role_naming_the_operators_service_account_is_refused() -> None:
    own = SecurityPolicy(operator_service_account="ecs-operator")
    for role in ("ecs-operator", "arn:aws:iam::123456789012:role/ecs-operator"):
        with pytest.raises(RenderError) as caught:
            render(definition(taskRoleArn=role), policy=own)
        [violation] = caught.value.violations
        assert violation.field == "spec.taskRoleArn"
        assert "the operator's own" in violation.message
        with pytest.raises(RenderError):
            render(definition(), {"overrides": {"taskRoleArn": role}}, policy=own)
    assert render(definition(taskRoleArn="web"), policy=own).manifest["spec"][
        "serviceAccountName"
    ] == ("web")


def test_the_overridden_task_role_wins() -> None:
    pod = pod_spec(definition(taskRoleArn="a"), {"overrides": {"taskRoleArn": "b"}})
    assert pod["serviceAccountName"] == "b"


def test_a_task_role_that_is_no_kubernetes_name_maps_to_one() -> None:
    pod = pod_spec(definition(taskRoleArn="arn:aws:iam::1:role/Web_Role"))
    assert pod["serviceAccountName"] == kubernetes_name("Web_Role")
    assert pod["serviceAccountName"].startswith("web-role-")


def test_the_service_account_override_names_the_roles_account() -> None:
    spec = definition(
        taskRoleArn="arn:aws:iam::1:role/ecsTaskRole", taskRoleServiceAccountName="task-role"
    )
    assert pod_spec(spec)["serviceAccountName"] == "task-role"
    # A Task's own role maps by the rule: the override belongs to the definition's role.
    overridden = pod_spec(spec, {"overrides": {"taskRoleArn": "arn:aws:iam::1:role/Other"}})
    assert overridden["serviceAccountName"] == kubernetes_name("Other")


def test_the_service_account_override_is_never_the_operators_own() -> None:
    own = SecurityPolicy(operator_service_account="ecs-operator")
    spec = definition(taskRoleArn="ecsTaskRole", taskRoleServiceAccountName="ecs-operator")
    with pytest.raises(RenderError) as caught:
        render(spec, policy=own)
    [violation] = caught.value.violations
    assert violation.field == "spec.taskRoleServiceAccountName"
    assert "the operator's own" in violation.message


# ---------------------------------------------------------------------------------------------
# Container basics and overrides


def test_entry_point_command_working_dir_and_terminal() -> None:
    spec = definition(
        container(
            memory=64,
            entryPoint=["/bin/app"],
            command=["--port", "80"],
            workingDirectory="/srv",
            interactive=True,
            pseudoTerminal=True,
        )
    )
    rendered = only(pod_spec(spec))
    assert rendered["image"] == "nginx:1.27"
    assert rendered["command"] == ["/bin/app"]
    assert rendered["args"] == ["--port", "80"]
    assert rendered["workingDir"] == "/srv"
    assert rendered["stdin"] is True and rendered["tty"] is True


def test_command_override_replaces_args_but_not_the_entry_point() -> None:
    spec = definition(container(memory=64, entryPoint=["/bin/app"], command=["a"]))
    task = {"overrides": {"containerOverrides": [{"name": "app", "command": ["b", "c"]}]}}
    rendered = only(pod_spec(spec, task))
    assert rendered["command"] == ["/bin/app"]
    assert rendered["args"] == ["b", "c"]


def test_environment_override_merges_by_name_and_secrets_win() -> None:
    spec = definition(
        container(
            memory=64,
            environment=[
                {"name": "A", "value": "1"},
                {"name": "B", "value": "2"},
                {"name": "TOKEN", "value": "plain"},
                {"name": "EMPTY"},
            ],
            secrets=[{"name": "TOKEN", "valueFrom": "api:token"}],
        )
    )
    task = {
        "overrides": {
            "containerOverrides": [
                {"name": "app", "environment": [{"name": "B", "value": "3"}, {"name": "C"}]}
            ]
        }
    }
    env = only(pod_spec(spec, task))["env"]
    assert env == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "EMPTY", "value": ""},
        {"name": "C", "value": ""},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
    ]


SM = "arn:aws:secretsmanager:eu-west-1:123456789012:secret"
SSM = "arn:aws:ssm:eu-west-1:123456789012:parameter"


@pytest.mark.parametrize(
    ("value_from", "secret", "key"),
    [
        ("db-creds:password", "db-creds", "password"),
        ("db-creds", "db-creds", "DB_PASSWORD"),
        ("DbCreds:password", kubernetes_name("DbCreds"), "password"),
        ("/prod/app/db-creds", kubernetes_name("/prod/app/db-creds"), "DB_PASSWORD"),
        ("db_password", kubernetes_name("db_password"), "DB_PASSWORD"),
        (f"{SM}:db-creds", "db-creds", "DB_PASSWORD"),
        (f"{SM}:db-credentials-AbCdEf", "db-credentials", "DB_PASSWORD"),
        (f"{SM}:prod/db-AbCdEf", kubernetes_name("prod/db"), "DB_PASSWORD"),
        (f"{SM}:prod/db-AbCdEf:password::", kubernetes_name("prod/db"), "password"),
        (f"{SM}:prod/db-creds:pass::", kubernetes_name("prod/db-creds"), "pass"),
        (f"{SSM}/prod/db-creds", kubernetes_name("/prod/db-creds"), "DB_PASSWORD"),
        (f"{SSM}/db_password", kubernetes_name("db_password"), "DB_PASSWORD"),
        (f"{SSM}/db-password", "db-password", "DB_PASSWORD"),
    ],
)
def test_secret_value_from_forms(value_from: str, secret: str, key: str) -> None:
    spec = definition(
        container(memory=64, secrets=[{"name": "DB_PASSWORD", "valueFrom": value_from}])
    )
    references = secret_references(spec)
    assert [(r.secret, r.key, r.field) for r in references] == [
        (secret, key, "spec.containerDefinitions[0].secrets[0].valueFrom")
    ]
    env = only(pod_spec(spec))["env"]
    assert env == [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
    ]


def test_secrets_in_different_paths_are_different_secrets() -> None:
    spec = definition(
        container(
            memory=64,
            secrets=[
                {"name": "A", "valueFrom": f"{SM}:prod/db-AbCdEf"},
                {"name": "B", "valueFrom": f"{SM}:staging/db-XyZ123"},
                {"name": "C", "valueFrom": "/prod/db"},
                {"name": "D", "valueFrom": f"{SSM}/prod/db"},
            ],
        )
    )
    a, b, c, d = (reference.secret for reference in secret_references(spec))
    assert len({a, b, c}) == 3
    assert c == d  # the same SSM parameter, by name or by ARN


def test_the_secret_override_names_the_secret_and_keeps_the_key() -> None:
    secret = {"name": "DB", "valueFrom": f"{SM}:prod/db-AbCdEf:password::"}
    spec = definition(container(memory=64, secrets=[secret | {"kubernetesSecretName": "db"}]))
    [reference] = secret_references(spec)
    assert (reference.secret, reference.key, reference.value_from) == (
        "db",
        "password",
        secret["valueFrom"],
    )
    credentials = {"credentialsParameter": f"{SM}:Registry-AbCdEf"}
    pulled = definition(
        container("a", memory=64, repositoryCredentials=credentials),
        container(
            "b", memory=64, repositoryCredentials=credentials | {"kubernetesSecretName": "r"}
        ),
    )
    assert render(pulled).manifest["spec"]["imagePullSecrets"] == [
        {"name": kubernetes_name("Registry")},
        {"name": "r"},
    ]


@pytest.mark.parametrize(
    ("value_from", "problem"),
    [
        ("arn:aws:kms:eu-west-1:1:key/abc", "neither a Secrets Manager secret ARN"),
        ("db:bad key", "Secret key 'bad key'"),
        ("db-creds/password", "write SECRET:KEY"),
    ],
)
def test_unreadable_secret_references_are_refused_naming_the_field(
    value_from: str, problem: str
) -> None:
    spec = definition(
        container(memory=64),
        container("b", memory=64, secrets=[{"name": "X", "valueFrom": value_from}]),
    )
    with pytest.raises(RenderError) as caught:
        secret_references(spec)
    assert [v.field for v in caught.value.violations] == [
        "spec.containerDefinitions[1].secrets[0].valueFrom"
    ]
    assert problem in str(caught.value)
    with pytest.raises(RenderError, match=r"containerDefinitions\[1\]\.secrets\[0\]"):
        render(spec)


def test_effective_spec_without_overrides_is_the_spec() -> None:
    spec = definition()
    assert effective_spec(spec, None) is spec


# ---------------------------------------------------------------------------------------------
# Ports


def test_ports_in_bridge_mode() -> None:
    spec = definition(
        container(
            memory=64,
            portMappings=[
                {"containerPort": 80, "hostPort": 8080, "name": "http"},
                {"containerPort": 81, "hostPort": 0},
                {"containerPort": 53, "protocol": "udp", "name": "dns_port"},
            ],
        )
    )
    rendered = render(spec)
    assert only(rendered.manifest["spec"])["ports"] == [
        {"containerPort": 80, "protocol": "TCP", "name": "http", "hostPort": 8080},
        {"containerPort": 81, "protocol": "TCP"},
        {"containerPort": 53, "protocol": "UDP"},
    ]
    assert reported(rendered) == {
        "spec.containerDefinitions[0].portMappings[2].name": NOT_HONOURED[
            "containerDefinitions[].portMappings[].name"
        ]
    }


def test_host_mode_uses_the_host_network_and_binds_host_ports() -> None:
    spec = definition(
        container(memory=64, portMappings=[{"containerPort": 80}]), networkMode="host"
    )
    pod = pod_spec(spec)
    assert pod["hostNetwork"] is True
    assert only(pod)["ports"] == [{"containerPort": 80, "protocol": "TCP", "hostPort": 80}]


def test_awsvpc_gets_the_pod_network_and_is_reported() -> None:
    spec = definition(
        container(memory=64, portMappings=[{"containerPort": 80, "hostPort": 80}]),
        networkMode="awsvpc",
    )
    rendered = render(spec)
    assert only(rendered.manifest["spec"])["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert "hostNetwork" not in rendered.manifest["spec"]
    assert reported(rendered) == {"spec.networkMode": NOT_HONOURED["networkMode awsvpc"]}


def test_port_ranges_and_app_protocols_are_reported() -> None:
    spec = definition(
        container(
            memory=64,
            portMappings=[
                {"containerPortRange": "8000-8010"},
                {"containerPort": 80, "appProtocol": "http"},
            ],
        )
    )
    rendered = render(spec)
    assert only(rendered.manifest["spec"])["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert set(reported(rendered)) == {
        "spec.containerDefinitions[0].portMappings[0].containerPortRange",
        "spec.containerDefinitions[0].portMappings[1].appProtocol",
    }


# ---------------------------------------------------------------------------------------------
# Resources


def resources(pod: dict[str, Any], name: str = "app") -> dict[str, Any]:
    result: dict[str, Any] = only(pod, name).get("resources", {})
    return result


def test_container_level_cpu_and_memory() -> None:
    spec = definition(
        container("a", cpu=512, memory=256),
        container("b", cpu=0, memoryReservation=128, memory=512),
        container("c", memoryReservation=64),
    )
    pod = pod_spec(spec)
    assert resources(pod, "a") == {
        "requests": {"cpu": "500m", "memory": "256Mi"},
        "limits": {"memory": "256Mi"},
    }
    assert resources(pod, "b") == {"requests": {"memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    assert resources(pod, "c") == {"requests": {"memory": "64Mi"}}


def test_task_level_resources_are_split_among_containers_without_values() -> None:
    # ECS caps the task as a whole; Kubernetes caps containers: the task's 1 vCPU / 2 GiB is
    # split so that the limits add up to it, never to 3 vCPU / 6 GiB.
    spec = definition(
        container("a", cpu=256, memoryReservation=512),
        container("b"),
        container("c"),
        cpu="1 vCPU",
        memory="2GB",
    )
    pod = pod_spec(spec)
    assert resources(pod, "a") == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "250m", "memory": "512Mi"},
    }
    for name in ("b", "c"):
        assert resources(pod, name) == {
            "requests": {"cpu": "375m", "memory": "768Mi"},
            "limits": {"cpu": "375m", "memory": "768Mi"},
        }


def test_three_containers_of_a_fargate_task_share_its_limits() -> None:
    spec = definition(container("a"), container("b"), container("c"), cpu="1024", memory="2048")
    pod = pod_spec(spec)
    limits = [resources(pod, name)["limits"] for name in "abc"]
    assert sum(int(limit["cpu"].removesuffix("m")) for limit in limits) == 1000
    assert sum(int(limit["memory"].removesuffix("Mi")) for limit in limits) == 2048


def test_uneven_split_still_sums_to_the_task_reservation() -> None:
    spec = definition(container("a"), container("b"), container("c"), cpu=1024, memory=1000)
    pod = pod_spec(spec)
    cpu = [int(resources(pod, n)["requests"]["cpu"].removesuffix("m")) for n in "abc"]
    memory = [int(resources(pod, n)["requests"]["memory"].removesuffix("Mi")) for n in "abc"]
    assert sum(cpu) == 1000 and max(cpu) - min(cpu) <= 1
    assert sum(memory) == 1000 and max(memory) - min(memory) <= 1


def test_cpu_is_rounded_so_the_shares_never_exceed_the_task() -> None:
    # 341 units are 333.008m each: rounded up one by one, three would ask 1002m of 1000m.
    spec = definition(
        *(container(name, cpu=341, memory=64) for name in "abc"), cpu=1024, memory=1024
    )
    pod = pod_spec(spec)
    cpu = [int(resources(pod, n)["limits"]["cpu"].removesuffix("m")) for n in "abc"]
    assert sum(cpu) == 1000
    assert max(cpu) - min(cpu) <= 1


def test_a_container_left_nothing_of_the_task_gets_a_minimum_share() -> None:
    # Common in real task definitions: the app asks for the whole task, a sidecar for nothing.
    spec = definition(container("app", cpu=256), container("log-router"), cpu=256, memory=512)
    rendered = render(spec)
    pod = rendered.manifest["spec"]
    assert resources(pod, "log-router")["limits"]["cpu"] == "10m"
    assert resources(pod, "app")["limits"]["cpu"] == "240m"
    assert reported(rendered) == {"spec.cpu": NOT_HONOURED["cpu (task level) minimum share"]}


def test_when_every_container_has_a_value_the_rest_is_spread_within_limits() -> None:
    spec = definition(
        container("a", cpu=128, memory=300),
        container("b", cpu=128, memoryReservation=100),
        cpu=512,
        memory=1024,
    )
    pod = pod_spec(spec)
    # 1024 - 300 - 100 = 624 MiB: a is capped by its 300 MiB hard limit, b takes the rest.
    assert resources(pod, "a")["requests"] == {"cpu": "250m", "memory": "300Mi"}
    assert resources(pod, "b")["requests"] == {"cpu": "250m", "memory": "724Mi"}
    assert resources(pod, "b")["limits"]["memory"] == "724Mi"


def test_memory_that_fits_no_container_is_reported() -> None:
    spec = definition(container("a", memory=100), container("b", memory=100), memory=1024)
    rendered = render(spec)
    pod = rendered.manifest["spec"]
    assert resources(pod, "a")["requests"]["memory"] == "100Mi"
    assert reported(rendered) == {"spec.memory": NOT_HONOURED["memory (task level)"]}


def test_run_to_completion_init_containers_take_no_share_of_the_task() -> None:
    spec = definition(
        container("migrate", essential=False),
        container("app", dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}]),
        cpu=512,
        memory=512,
    )
    pod = pod_spec(spec)
    assert resources(pod, "migrate") == {"limits": {"cpu": "500m", "memory": "512Mi"}}
    assert resources(pod, "app")["requests"] == {"cpu": "500m", "memory": "512Mi"}


def test_resource_overrides_replace_container_and_task_values() -> None:
    spec = definition(container("a", cpu=128, memory=128), container("b"), cpu=512, memory=512)
    task = {
        "overrides": {
            "cpu": "2048",
            "memory": "4GB",
            "containerOverrides": [
                {"name": "a", "cpu": 1024, "memory": 2048, "memoryReservation": 1024}
            ],
        }
    }
    pod = pod_spec(spec, task)
    assert resources(pod, "a") == {
        "requests": {"cpu": "1000m", "memory": "1024Mi"},
        "limits": {"cpu": "1000m", "memory": "1024Mi"},
    }
    assert resources(pod, "b")["requests"] == {"cpu": "1000m", "memory": "3072Mi"}


def test_gpus_and_ephemeral_storage() -> None:
    spec = definition(
        container("a", memory=64, resourceRequirements=[{"type": "GPU", "value": "2"}]),
        container("b", memory=64),
        ephemeralStorage={"sizeInGiB": 21},
    )
    pod = pod_spec(spec)
    assert resources(pod, "a")["limits"]["nvidia.com/gpu"] == "2"
    assert resources(pod, "a")["requests"]["nvidia.com/gpu"] == "2"
    assert "nvidia.com/gpu" not in resources(pod, "b")["limits"]
    assert resources(pod, "a")["requests"]["ephemeral-storage"] == "10752Mi"
    assert resources(pod, "b")["requests"]["ephemeral-storage"] == "10752Mi"


# ---------------------------------------------------------------------------------------------
# Health checks and dependsOn


def test_health_check_is_a_readiness_probe_never_a_liveness_probe() -> None:
    spec = definition(
        container(
            memory=64,
            healthCheck={
                "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                "interval": 10,
                "timeout": 3,
                "retries": 5,
                "startPeriod": 20,
            },
        ),
        container("b", memory=64, healthCheck={"command": ["CMD", "/bin/check", "--quick"]}),
    )
    pod = pod_spec(spec)
    assert only(pod)["readinessProbe"] == {
        "exec": {"command": ["sh", "-c", "curl -f http://localhost/ || exit 1"]},
        "periodSeconds": 10,
        "timeoutSeconds": 3,
        "failureThreshold": 5,
        "successThreshold": 1,
        "initialDelaySeconds": 20,
    }
    assert only(pod, "b")["readinessProbe"] == {
        "exec": {"command": ["/bin/check", "--quick"]},
        "periodSeconds": 30,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
        "successThreshold": 1,
    }
    for rendered in pod["containers"]:
        assert "livenessProbe" not in rendered and "startupProbe" not in rendered


def test_depends_on_makes_init_containers_and_sidecars_in_dependency_order() -> None:
    check = {"command": ["CMD", "true"], "interval": 10, "startPeriod": 25, "retries": 2}
    spec = definition(
        container(
            "app",
            memory=64,
            dependsOn=[
                {"containerName": "proxy", "condition": "HEALTHY"},
                {"containerName": "logger", "condition": "START"},
            ],
        ),
        container(
            "proxy",
            memory=64,
            healthCheck=check,
            dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}],
        ),
        container(
            "migrate",
            memory=64,
            essential=False,
            dependsOn=[{"containerName": "logger", "condition": "START"}],
        ),
        container("logger", memory=64),
        container("worker", memory=64),
    )
    assert dependency_order(spec) == ["logger", "migrate", "proxy", "app", "worker"]
    pod = pod_spec(spec)
    assert [c["name"] for c in pod["initContainers"]] == ["logger", "migrate", "proxy"]
    assert [c["name"] for c in pod["containers"]] == ["app", "worker"]
    logger, migrate, proxy = pod["initContainers"]
    assert logger["restartPolicy"] == "Always" and "startupProbe" not in logger
    assert "restartPolicy" not in migrate
    assert proxy["restartPolicy"] == "Always"
    assert proxy["startupProbe"] == {
        "exec": {"command": ["true"]},
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        "failureThreshold": 5,  # ceil(25 / 10) checks inside startPeriod + 2 retries
        "successThreshold": 1,
    }
    assert "readinessProbe" in proxy


def test_a_start_dependency_is_a_regular_container_listed_before_its_dependents() -> None:
    spec = definition(
        container("app", memory=64, dependsOn=[{"containerName": "logger", "condition": "START"}]),
        container("worker", memory=64),
        container("logger", memory=64, essential=False),
    )
    rendered = render(spec)
    pod = rendered.manifest["spec"]
    assert "initContainers" not in pod
    # The kubelet starts regular containers in list order: the dependency comes first.
    assert [c["name"] for c in pod["containers"]] == ["logger", "app", "worker"]
    logger = only(pod, "logger")
    assert "restartPolicy" not in logger and "lifecycle" not in logger
    assert pod["restartPolicy"] == "Never"
    assert reported(rendered) == {}  # nothing restarts it: ECS behaviour, not reported


def test_kubectl_picks_the_application_not_a_dependency_listed_before_it() -> None:
    spec = definition(
        container("logger", memory=64, essential=False),
        container("app", memory=64, dependsOn=[{"containerName": "logger", "condition": "START"}]),
        container("worker", memory=64),
    )
    annotations = render(spec).manifest["metadata"]["annotations"]
    assert annotations[DEFAULT_CONTAINER_ANNOTATION] == "app"


def test_an_awaited_essential_container_is_the_default_before_a_non_essential_one() -> None:
    spec = definition(
        container(
            "tail",
            memory=64,
            essential=False,
            dependsOn=[{"containerName": "web", "condition": "START"}],
        ),
        container("web", memory=64),
    )
    annotations = render(spec).manifest["metadata"]["annotations"]
    assert annotations[DEFAULT_CONTAINER_ANNOTATION] == "web"


HEALTH_CHECK = {
    "command": ["CMD-SHELL", "curl -f http://localhost:9901/ready || exit 1"],
    "interval": 10,
    "timeout": 3,
    "retries": 2,
    "startPeriod": 25,
}


def test_a_healthy_dependency_with_a_shell_check_waits_in_a_post_start_hook() -> None:
    spec = definition(
        container("app", memory=64, dependsOn=[{"containerName": "proxy", "condition": "HEALTHY"}]),
        container("proxy", memory=64, essential=False, healthCheck=HEALTH_CHECK),
    )
    rendered = render(spec)
    pod = rendered.manifest["spec"]
    assert [c["name"] for c in pod["containers"]] == ["proxy", "app"]
    proxy = only(pod, "proxy")
    assert "restartPolicy" not in proxy and "startupProbe" not in proxy
    command = proxy["lifecycle"]["postStart"]["exec"]["command"]
    shell, option, script, name, check = command
    assert (shell, option, name) == ("/bin/sh", "-c", "healthy-gate")
    # The health check is an argument, never quoted into the script.
    assert check == "curl -f http://localhost:9901/ready || exit 1"
    assert 'until $bound /bin/sh -c "$1"; do' in script
    # ceil(25 / 10) checks inside startPeriod + 2 retries, 10 s apart, each within 3 s.
    assert '[ "$checks" -lt 5 ] || exit 1' in script
    assert "sleep 10;" in script and 'bound="timeout 3"' in script
    assert proxy["readinessProbe"]["exec"]["command"] == ["sh", "-c", check]
    assert "lifecycle" not in only(pod, "app")
    assert reported(rendered) == {}
    assert kubernetes_validate.validate(rendered.manifest, "1.32.0", strict=True)


def run_gate(
    tmp_path: Path, check: str, *, usable_timeout: bool = True
) -> tuple[int, list[str], int]:
    """Run the HEALTHY wait of a container whose health check is ``check`` with /bin/sh, a
    ``sleep`` that only records its operand (and a ``timeout`` that always fails, as an old
    busybox's does for ``timeout N``, unless ``usable_timeout``): (exit status, sleeps, checks
    run)."""
    spec = definition(
        container("app", memory=64, dependsOn=[{"containerName": "proxy", "condition": "HEALTHY"}]),
        container(
            "proxy", memory=64, healthCheck={**HEALTH_CHECK, "command": ["CMD-SHELL", check]}
        ),
    )
    command = only(pod_spec(spec), "proxy")["lifecycle"]["postStart"]["exec"]["command"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_sleep = bin_dir / "sleep"
    fake_sleep.write_text(f'#!/bin/sh\necho "$1" >> {tmp_path}/sleeps\n')
    fake_sleep.chmod(0o755)
    if not usable_timeout:
        fake_timeout = bin_dir / "timeout"
        fake_timeout.write_text("#!/bin/sh\nexit 1\n")
        fake_timeout.chmod(0o755)
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DIR": str(tmp_path)}
    result = subprocess.run(command, env=environment, check=False, timeout=30)
    sleeps = (tmp_path / "sleeps").read_text().split() if (tmp_path / "sleeps").exists() else []
    checks = (tmp_path / "checks").read_text().count("x") if (tmp_path / "checks").exists() else 0
    return result.returncode, sleeps, checks


def test_the_post_start_wait_gives_up_after_the_start_period_and_retries(tmp_path: Path) -> None:
    status, sleeps, checks = run_gate(tmp_path, 'echo x >> "$DIR/checks"; exit 1')
    assert (status, checks) == (1, 5)  # ceil(25 / 10) + 2 checks, then the container is killed
    assert sleeps == ["10"] * 4


@pytest.mark.parametrize("usable_timeout", [True, False])
def test_the_post_start_wait_ends_at_the_first_passing_check(
    tmp_path: Path, usable_timeout: bool
) -> None:
    # Fails twice, then passes; without a usable timeout the checks still run, unbounded.
    check = 'echo x >> "$DIR/checks"; [ "$(grep -c x "$DIR/checks")" -ge 3 ]'
    status, sleeps, checks = run_gate(tmp_path, check, usable_timeout=usable_timeout)
    assert (status, checks, sleeps) == (0, 3, ["10", "10"])


def test_a_healthy_dependency_with_a_cmd_check_stays_a_sidecar_and_is_reported() -> None:
    spec = definition(
        container("app", memory=64, dependsOn=[{"containerName": "proxy", "condition": "HEALTHY"}]),
        container(
            "proxy",
            memory=64,
            essential=False,
            healthCheck={**HEALTH_CHECK, "command": ["CMD", "/bin/ready"]},
        ),
    )
    rendered = render(spec)
    pod = rendered.manifest["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["proxy"]
    assert [c["name"] for c in pod["containers"]] == ["app"]
    proxy = only(pod, "proxy")
    assert proxy["restartPolicy"] == "Always" and "lifecycle" not in proxy
    assert proxy["startupProbe"]["exec"]["command"] == ["/bin/ready"]
    assert proxy["startupProbe"]["failureThreshold"] == 5
    assert reported(rendered) == {
        "spec.containerDefinitions[1].essential": NOT_HONOURED[
            "containerDefinitions[].essential false of a START/HEALTHY dependency"
        ]
    }


def test_what_an_init_container_waits_for_stays_a_sidecar_and_is_reported() -> None:
    spec = definition(
        container(
            "app", memory=64, dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}]
        ),
        container(
            "migrate",
            memory=64,
            essential=False,
            dependsOn=[{"containerName": "proxy", "condition": "HEALTHY"}],
        ),
        # A shell check, but the init container runs before any regular container could.
        container(
            "proxy",
            memory=64,
            essential=False,
            healthCheck=HEALTH_CHECK,
            dependsOn=[{"containerName": "vault", "condition": "START"}],
        ),
        container("vault", memory=64, essential=False),
        container("logger", memory=64, essential=False),
        container(
            "worker", memory=64, dependsOn=[{"containerName": "logger", "condition": "START"}]
        ),
    )
    assert container_roles(spec) == {
        "app": "main",
        "migrate": "init",
        "proxy": "sidecar",
        "vault": "sidecar",  # through proxy, which starts before the init container
        "logger": "main",
        "worker": "main",
    }
    rendered = render(spec)
    pod = rendered.manifest["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["vault", "proxy", "migrate"]
    assert [c["name"] for c in pod["containers"]] == ["app", "logger", "worker"]
    assert only(pod, "proxy")["startupProbe"]["failureThreshold"] == 5
    assert "lifecycle" not in only(pod, "proxy")
    reason = NOT_HONOURED["containerDefinitions[].essential false of a START/HEALTHY dependency"]
    assert reported(rendered) == {
        "spec.containerDefinitions[2].essential": reason,
        "spec.containerDefinitions[3].essential": reason,
    }


def test_a_regular_dependency_takes_its_share_of_the_task_like_any_container() -> None:
    spec = definition(
        container("app", dependsOn=[{"containerName": "proxy", "condition": "HEALTHY"}]),
        container("proxy", essential=False, cpu=256, memory=128, healthCheck=HEALTH_CHECK),
        container("logger", essential=False),
        cpu="1024",
        memory="1024",
    )
    pod = pod_spec(spec)
    limits = [c["resources"]["limits"] for c in pod["containers"]]
    assert [c["name"] for c in pod["containers"]] == ["proxy", "app", "logger"]
    assert sum(cpu_millicores(limit["cpu"]) for limit in limits) == 1000
    assert sum(memory_bytes(limit["memory"]) for limit in limits) == 1024 * 2**20
    assert only(pod, "proxy")["resources"]["limits"] == {"cpu": "250m", "memory": "128Mi"}


def test_complete_wins_over_start_and_is_reported_with_init_health_checks() -> None:
    spec = definition(
        container(
            "setup",
            memory=64,
            essential=False,
            healthCheck={"command": ["CMD", "true"]},
        ),
        container("a", memory=64, dependsOn=[{"containerName": "setup", "condition": "START"}]),
        container("b", memory=64, dependsOn=[{"containerName": "setup", "condition": "COMPLETE"}]),
    )
    rendered = render(spec)
    setup = rendered.manifest["spec"]["initContainers"][0]
    assert setup["name"] == "setup"
    assert "restartPolicy" not in setup and "readinessProbe" not in setup
    assert reported(rendered) == {
        "spec.containerDefinitions[0].healthCheck": NOT_HONOURED[
            "containerDefinitions[].healthCheck of an init container"
        ],
        "spec.containerDefinitions[2].dependsOn[0]": NOT_HONOURED[
            "containerDefinitions[].dependsOn COMPLETE"
        ],
    }


@pytest.mark.parametrize(
    ("dependencies", "cycle"),
    [
        ({"a": ["b"], "b": ["a"]}, "dependsOn cycle: a -> b -> a"),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, "dependsOn cycle: a -> b -> c -> a"),
        ({"a": [], "b": ["c"], "c": ["b"]}, "dependsOn cycle: b -> c -> b"),
    ],
)
def test_dependency_cycles_are_named(dependencies: dict[str, list[str]], cycle: str) -> None:
    spec = definition(
        *(
            container(
                name,
                memory=64,
                dependsOn=[{"containerName": target, "condition": "START"} for target in targets],
            )
            for name, targets in dependencies.items()
        )
    )
    with pytest.raises(RenderError) as caught:
        dependency_order(spec)
    assert str(caught.value).endswith(cycle)
    assert caught.value.violations[0].field.endswith("].dependsOn")
    with pytest.raises(RenderError, match=cycle):
        render(spec)


def test_an_unknown_dependency_is_named() -> None:
    spec = definition(
        container(memory=64, dependsOn=[{"containerName": "ghost", "condition": "START"}])
    )
    with pytest.raises(RenderError, match=r"dependsOn\[0\]\.containerName: no container named"):
        dependency_order(spec)


# ---------------------------------------------------------------------------------------------
# Names


def test_container_names_become_distinct_dns_labels() -> None:
    long_name = "x" * 70 + "_Y"
    spec = definition(
        container("app", memory=64),
        container("App", memory=64),
        container("my_app", memory=64),
        container("my-app", memory=64),
        container("Worker_1", memory=64),
        container(long_name, memory=64),
    )
    names = container_names(spec)
    assert names["app"] == "app"
    assert names["my-app"] == "my-app"
    assert names["Worker_1"] == "worker-1"
    assert names["App"].startswith("app-") and names["my_app"].startswith("my-app-")
    assert len(set(names.values())) == len(names)
    for name in names.values():
        assert len(name) <= 63
        assert kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}},
            "1.32.0",
            strict=True,
        )
    assert container_names(spec) == names  # deterministic
    rendered = render(spec)
    mapping = json.loads(rendered.manifest["metadata"]["annotations"][labels.CONTAINERS_ANNOTATION])
    assert mapping == {k8s: ecs for ecs, k8s in names.items()}


def test_dns_labels_resist_a_name_that_looks_like_a_hashed_one() -> None:
    first = dns_labels(["A", "a"])
    assert len(set(dns_labels(["A", "a", first["A"]]).values())) == 3


# ---------------------------------------------------------------------------------------------
# Security context


def test_security_context() -> None:
    spec = definition(
        container(
            memory=64,
            user="1000:2000",
            readonlyRootFilesystem=True,
            privileged=True,
            linuxParameters={"capabilities": {"add": ["cap_net_admin"], "drop": ["ALL"]}},
        ),
        container("b", memory=64, user="nginx"),
        container("c", memory=64, user="1000:www"),
    )
    rendered = render(spec)
    pod = rendered.manifest["spec"]
    assert only(pod)["securityContext"] == {
        "runAsUser": 1000,
        "runAsNonRoot": True,
        "runAsGroup": 2000,
        "readOnlyRootFilesystem": True,
        "privileged": True,
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
    }
    assert only(pod, "b")["securityContext"] == SECURE_DEFAULTS
    assert only(pod, "c")["securityContext"] == {
        "runAsUser": 1000,
        "runAsNonRoot": True,
        **SECURE_DEFAULTS,
    }
    assert set(reported(rendered)) == {
        "spec.containerDefinitions[1].user",
        "spec.containerDefinitions[2].user",
    }


def test_every_pod_gets_seccomp_and_every_container_drops_what_it_does_not_add() -> None:
    spec = definition(
        container(memory=64, linuxParameters={"capabilities": {"add": ["chown", "CAP_SETUID"]}}),
        container("admin", memory=64, linuxParameters={"capabilities": {"add": ["SYS_ADMIN"]}}),
        container("init", memory=64, essential=False),
        container("main", memory=64, dependsOn=[{"containerName": "init", "condition": "SUCCESS"}]),
    )
    pod = render(spec).manifest["spec"]
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert only(pod)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["CHOWN", "SETUID"], "drop": ["ALL"]},
    }
    # Kubernetes refuses allowPrivilegeEscalation false together with an added SYS_ADMIN.
    assert only(pod, "admin")["securityContext"] == {
        "capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}
    }
    assert only(pod, "init")["securityContext"] == SECURE_DEFAULTS
    assert only(pod, "main")["securityContext"] == SECURE_DEFAULTS


def test_a_drop_list_of_the_task_definition_replaces_drop_all_outside_restricted() -> None:
    spec = definition(
        container(memory=64, linuxParameters={"capabilities": {"drop": ["net_raw"]}}),
        container("defaults", memory=64, linuxParameters={"capabilities": {"drop": []}}),
    )
    pod = render(spec, policy=SecurityPolicy()).manifest["spec"]
    assert only(pod)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["NET_RAW"]},
    }
    assert only(pod, "defaults")["securityContext"] == {"allowPrivilegeEscalation": False}
    restricted = SecurityPolicy(pod_security="restricted")
    spec = definition(
        container(memory=64, user="1000", linuxParameters={"capabilities": {"drop": []}}),
    )
    pod = render(spec, policy=restricted).manifest["spec"]
    assert only(pod)["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_a_restricted_namespace_gets_a_pod_that_meets_the_standard() -> None:
    spec = definition(
        container(
            memory=64,
            user="1000:1000",
            linuxParameters={"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["NET_RAW"]}},
            portMappings=[{"containerPort": 80}],
            systemControls=[{"namespace": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
        ),
        container("side", memory=64, user="65532", essential=False),
        volumes=[{"name": "scratch"}],
    )
    pod = render(spec, policy=SecurityPolicy(pod_security="restricted")).manifest
    assert pod_security.violations(pod, "restricted") == []
    assert only(pod["spec"])["securityContext"] == {
        "runAsUser": 1000,
        "runAsNonRoot": True,
        "runAsGroup": 1000,
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
    }


@pytest.mark.parametrize("name", ["sidecars-and-init", "privileged-host"])
@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_a_pod_rendered_for_a_standard_meets_it_or_is_refused_naming_the_rule(
    name: str, level: PodSecurityLevel
) -> None:
    """Whatever the installation allows, the namespace's standard decides, before any create:
    the Pod meets it (Pod Security Admission would admit it), or rendering is refused naming
    the standard."""
    spec = TaskDefinitionSpec.model_validate(REALISTIC[name])
    policy = replace(ALLOW_ALL, pod_security=level)
    try:
        pod = render(spec, policy=policy).manifest
    except RenderError as error:
        assert error.violations
        for violation in error.violations:
            assert f'enforces the "{level}" Pod Security Standard' in violation.message
        assert pod_security.violations(render(spec).manifest, level)
    else:
        assert pod_security.violations(pod, level) == []


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"user": None}, "spec.containerDefinitions[0].user", "runAsNonRoot"),
        ({"user": "0:1000"}, "spec.containerDefinitions[0].user", "runAsNonRoot"),
        ({"user": "nginx"}, "spec.containerDefinitions[0].user", "runAsNonRoot"),
        ({"privileged": True}, "spec.containerDefinitions[0].privileged", "privileged"),
        (
            {"linuxParameters": {"capabilities": {"add": ["CHOWN"]}}},
            "spec.containerDefinitions[0].linuxParameters.capabilities.add",
            "capabilities",
        ),
        (
            {"portMappings": [{"containerPort": 80, "hostPort": 8080}]},
            "spec.containerDefinitions[0].portMappings[0].hostPort",
            "hostPorts",
        ),
        (
            {"systemControls": [{"namespace": "kernel.msgmax", "value": "65536"}]},
            "spec.containerDefinitions[0].systemControls[0]",
            "sysctls",
        ),
    ],
)
def test_what_cannot_meet_the_restricted_standard_is_refused_naming_the_rule(
    fields: dict[str, Any], field: str, rule: str
) -> None:
    spec = definition(container(memory=64, **{"user": "1000", **fields}), networkMode="bridge")
    with pytest.raises(RenderError) as caught:
        render(spec, policy=replace(ALLOW_ALL, pod_security="restricted"))
    [violation] = caught.value.violations
    assert violation.field == field
    assert f'enforces the "restricted" Pod Security Standard ({rule})' in violation.message


def test_the_install_refusal_comes_first_and_alone_for_one_field() -> None:
    spec = definition(container(memory=64, user="1000", privileged=True))
    with pytest.raises(RenderError) as caught:
        render(spec, policy=SecurityPolicy(pod_security="restricted"))
    [violation] = caught.value.violations
    assert violation.field == "spec.containerDefinitions[0].privileged"
    assert violation.message.startswith("privileged containers are refused")


def test_refused_fields_stop_rendering_under_the_default_policy() -> None:
    spec = definition(container(memory=64, privileged=True), networkMode="host")
    with pytest.raises(RenderError) as caught:
        render(spec, policy=SecurityPolicy())
    assert [v.field for v in caught.value.violations] == [
        "spec.networkMode",
        "spec.containerDefinitions[0].privileged",
    ]


# ---------------------------------------------------------------------------------------------
# Volumes


def test_volumes_and_mounts() -> None:
    spec = definition(
        container(
            "writer",
            memory=64,
            mountPoints=[
                {"sourceVolume": "scratch", "containerPath": "/scratch"},
                {"sourceVolume": "Host_Logs", "containerPath": "/logs", "readOnly": True},
            ],
        ),
        container(
            "middle",
            memory=64,
            mountPoints=[{"sourceVolume": "docker", "containerPath": "/d"}],
            volumesFrom=[{"sourceContainer": "writer"}],
        ),
        container(
            "reader",
            memory=64,
            mountPoints=[{"sourceVolume": "scratch", "containerPath": "/d"}],
            volumesFrom=[{"sourceContainer": "middle", "readOnly": True}],
        ),
        volumes=[
            {"name": "scratch"},
            {"name": "Host_Logs", "host": {"sourcePath": "/var/log"}},
            {"name": "docker", "dockerVolumeConfiguration": {"scope": "task"}},
            {"name": "empty-host", "host": {}},
        ],
    )
    pod = pod_spec(spec)
    assert pod["volumes"] == [
        {"name": "scratch", "emptyDir": {}},
        {"name": "host-logs", "hostPath": {"path": "/var/log"}},
        {"name": "docker", "emptyDir": {}},
        {"name": "empty-host", "emptyDir": {}},
    ]
    assert only(pod, "middle")["volumeMounts"] == [
        {"name": "docker", "mountPath": "/d"},
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "host-logs", "mountPath": "/logs", "readOnly": True},
    ]
    assert only(pod, "reader")["volumeMounts"] == [
        {"name": "scratch", "mountPath": "/d"},
        {"name": "scratch", "mountPath": "/scratch", "readOnly": True},
        {"name": "host-logs", "mountPath": "/logs", "readOnly": True},
    ]


def test_unavailable_volume_kinds_become_empty_dirs_and_are_reported() -> None:
    spec = definition(
        container(memory=64),
        volumes=[
            {
                "name": "shared",
                "dockerVolumeConfiguration": {"scope": "shared", "driver": "rexray"},
            },
            {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}},
            {"name": "later", "configuredAtLaunch": True},
        ],
    )
    rendered = render(spec)
    assert all("emptyDir" in v for v in rendered.manifest["spec"]["volumes"])
    assert set(reported(rendered)) == {
        "spec.volumes[0].dockerVolumeConfiguration.scope",
        "spec.volumes[0].dockerVolumeConfiguration.driver",
        "spec.volumes[1].efsVolumeConfiguration",
        "spec.volumes[2].configuredAtLaunch",
    }


def test_shared_memory_tmpfs_and_devices() -> None:
    spec = definition(
        container(
            memory=64,
            linuxParameters={
                "sharedMemorySize": 256,
                "tmpfs": [
                    {"containerPath": "/run", "size": 16, "mountOptions": ["noexec"]},
                    {"containerPath": "/data", "size": 16},
                ],
                "devices": [{"hostPath": "/dev/fuse", "permissions": ["read"]}],
                "maxSwap": 0,
            },
            mountPoints=[{"sourceVolume": "shm-app", "containerPath": "/data"}],
        ),
        volumes=[{"name": "shm-app"}],
    )
    rendered = render(spec)
    pod = rendered.manifest["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["shm-app"] == {"name": "shm-app", "emptyDir": {}}
    mounts = {m["mountPath"]: m["name"] for m in only(pod)["volumeMounts"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Mi"}
    assert volumes[mounts["/run"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Mi"}
    assert volumes[mounts["/dev/fuse"]]["hostPath"] == {"path": "/dev/fuse"}
    assert mounts["/data"] == "shm-app"  # the task definition's own mount wins the path
    assert len(only(pod)["volumeMounts"]) == 4
    assert set(reported(rendered)) == {
        "spec.containerDefinitions[0].linuxParameters.tmpfs[0].mountOptions",
        "spec.containerDefinitions[0].linuxParameters.devices[0].permissions",
        "spec.containerDefinitions[0].linuxParameters.maxSwap",
    }


# ---------------------------------------------------------------------------------------------
# Settings that are per pod on Kubernetes


def test_namespaces() -> None:
    assert pod_spec(definition(pidMode="task"))["shareProcessNamespace"] is True
    host = pod_spec(definition(pidMode="host", ipcMode="host", networkMode="host"))
    assert host["hostPID"] is True and host["hostIPC"] is True and host["hostNetwork"] is True
    assert "shareProcessNamespace" not in host
    init = definition(container(memory=64, linuxParameters={"initProcessEnabled": True}))
    assert pod_spec(init)["shareProcessNamespace"] is True
    rendered = render(definition(ipcMode="none", networkMode="none"))
    assert set(reported(rendered)) == {"spec.ipcMode", "spec.networkMode"}


def test_dns_hosts_hostname_and_sysctls() -> None:
    spec = definition(
        container(
            "a",
            memory=64,
            dnsServers=["10.0.0.2", "10.0.0.3"],
            dnsSearchDomains=["svc.local"],
            extraHosts=[
                {"hostname": "db", "ipAddress": "10.1.1.1"},
                {"hostname": "cache", "ipAddress": "10.1.1.2"},
            ],
            hostname="web",
            systemControls=[
                {"namespace": "net.core.somaxconn", "value": "1024"},
                {"namespace": "vm.swappiness", "value": "10"},
            ],
        ),
        container(
            "b",
            memory=64,
            dnsServers=["10.0.0.3", "10.0.0.4", "10.0.0.5"],
            dnsSearchDomains=["svc.local", "corp"],
            extraHosts=[{"hostname": "db-primary", "ipAddress": "10.1.1.1"}],
            hostname="other",
            systemControls=[
                {"namespace": "net.core.somaxconn", "value": "2048"},
                {"namespace": "kernel.shmmax", "value": "68719476736"},
            ],
        ),
    )
    rendered = render(spec)
    pod = rendered.manifest["spec"]
    assert pod["dnsPolicy"] == "None"
    assert pod["dnsConfig"] == {
        "nameservers": ["10.0.0.2", "10.0.0.3", "10.0.0.4"],
        "searches": ["svc.local", "corp"],
    }
    assert pod["hostAliases"] == [
        {"ip": "10.1.1.1", "hostnames": ["db", "db-primary"]},
        {"ip": "10.1.1.2", "hostnames": ["cache"]},
    ]
    assert pod["hostname"] == "web"
    assert pod["securityContext"]["sysctls"] == [
        {"name": "net.core.somaxconn", "value": "1024"},
        {"name": "kernel.shmmax", "value": "68719476736"},
    ]
    assert set(reported(rendered)) == {
        "spec.containerDefinitions[1].dnsServers",
        "spec.containerDefinitions[1].hostname",
        "spec.containerDefinitions[0].systemControls[1]",
        "spec.containerDefinitions[1].systemControls[0]",
    }


def test_search_domains_alone_keep_cluster_dns() -> None:
    pod = pod_spec(definition(container(memory=64, dnsSearchDomains=["corp"])))
    assert "dnsPolicy" not in pod
    assert pod["dnsConfig"] == {"searches": ["corp"]}


def test_net_sysctls_are_not_namespaced_with_host_networking() -> None:
    spec = definition(
        container(memory=64, systemControls=[{"namespace": "net.ipv4.ip_forward", "value": "1"}]),
        networkMode="host",
    )
    rendered = render(spec)
    assert "sysctls" not in rendered.manifest["spec"]["securityContext"]
    assert set(reported(rendered)) == {"spec.containerDefinitions[0].systemControls[0]"}


def test_registry_credentials_and_docker_labels() -> None:
    credentials = "arn:aws:secretsmanager:eu-west-1:1:secret:registry-auth"
    spec = definition(
        container(
            "a",
            memory=64,
            repositoryCredentials={"credentialsParameter": credentials},
            dockerLabels={"com.example.team": "web"},
        ),
        container("b", memory=64, repositoryCredentials={"credentialsParameter": "registry-auth"}),
    )
    manifest = render(spec).manifest
    assert manifest["spec"]["imagePullSecrets"] == [{"name": "registry-auth"}]
    annotation = manifest["metadata"]["annotations"][DOCKER_LABELS_ANNOTATION]
    assert json.loads(annotation) == {"a": {"com.example.team": "web"}}


# ---------------------------------------------------------------------------------------------
# Reports


def test_unsupported_container_and_task_fields_are_reported() -> None:
    spec = definition(
        container(
            memory=64,
            logConfiguration={"logDriver": "awslogs", "options": {"awslogs-group": "web"}},
            firelensConfiguration={"type": "fluentbit"},
            ulimits=[{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
            environmentFiles=[{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}],
            disableNetworking=True,
            restartPolicy={"enabled": True},
            startTimeout=30,
            dockerSecurityOptions=["no-new-privileges"],
            credentialSpecs=["credentialspec:file://x.json"],
            links=["db:the_database"],
            versionConsistency="enabled",
            resourceRequirements=[{"type": "InferenceAccelerator", "value": "x"}],
        ),
        executionRoleArn="arn:aws:iam::1:role/exec",
        enableFaultInjection=True,
    )
    task = {
        "enableExecuteCommand": True,
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s-1"]}},
        "propagateTags": "TASK_DEFINITION",
        "enableECSManagedTags": True,
    }
    rendered = render(spec, task)
    prefix = "spec.containerDefinitions[0]."
    assert set(reported(rendered)) == {
        *(
            prefix + field
            for field in (
                "logConfiguration",
                "firelensConfiguration",
                "ulimits",
                "environmentFiles",
                "disableNetworking",
                "restartPolicy",
                "startTimeout",
                "dockerSecurityOptions",
                "credentialSpecs",
                "links[0]",
                "versionConsistency",
                "resourceRequirements[0]",
            )
        ),
        "spec.executionRoleArn",
        "spec.enableFaultInjection",
        "spec.enableExecuteCommand",
        "spec.networkConfiguration",
        "spec.propagateTags",
        "spec.enableECSManagedTags",
    }
    assert all(entry.reason in NOT_HONOURED.values() for entry in rendered.unsupported)


# ---------------------------------------------------------------------------------------------
# Realistic task definitions pass Kubernetes' own schema


REALISTIC: dict[str, dict[str, Any]] = {
    "fargate-web": {
        "family": "web",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "512",
        "memory": "1GB",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "taskRoleArn": "arn:aws:iam::123456789012:role/web",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "public.ecr.aws/nginx/nginx:1.27",
                "essential": True,
                "portMappings": [{"containerPort": 80, "protocol": "tcp", "name": "web-80-tcp"}],
                "environment": [{"name": "MODE", "value": "prod"}],
                "secrets": [
                    {
                        "name": "API_KEY",
                        "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api",
                    }
                ],
                "healthCheck": {
                    "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                    "interval": 15,
                    "startPeriod": 30,
                },
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/w"}},
            }
        ],
    },
    "sidecars-and-init": {
        "family": "app",
        "memory": "2048",
        "cpu": "1024",
        "volumes": [{"name": "shared"}, {"name": "config", "host": {}}],
        "containerDefinitions": [
            {
                "name": "config_fetch",
                "image": "busybox:1.36",
                "essential": False,
                "command": ["sh", "-c", "echo ok > /config/ready"],
                "mountPoints": [{"sourceVolume": "config", "containerPath": "/config"}],
            },
            {
                "name": "Envoy",
                "image": "envoyproxy/envoy:v1.31",
                "cpu": 256,
                "memoryReservation": 256,
                "portMappings": [{"containerPort": 9901}, {"containerPort": 8080, "hostPort": 0}],
                "healthCheck": {"command": ["CMD", "curl", "-f", "localhost:9901/ready"]},
                "dependsOn": [{"containerName": "config_fetch", "condition": "COMPLETE"}],
                "user": "101",
            },
            {
                "name": "app",
                "image": "example/app:2",
                "dependsOn": [{"containerName": "Envoy", "condition": "HEALTHY"}],
                "mountPoints": [{"sourceVolume": "shared", "containerPath": "/data"}],
                "volumesFrom": [{"sourceContainer": "config_fetch", "readOnly": True}],
                "linuxParameters": {
                    "initProcessEnabled": True,
                    "sharedMemorySize": 128,
                    "tmpfs": [{"containerPath": "/tmp", "size": 64}],
                    "capabilities": {"drop": ["ALL"]},
                },
                "readonlyRootFilesystem": True,
                "stopTimeout": 45,
                "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.10"}],
                "dnsSearchDomains": ["corp.example"],
                "systemControls": [{"namespace": "net.core.somaxconn", "value": "4096"}],
            },
            {
                "name": "log_router",
                "image": "fluent/fluent-bit:3",
                "essential": False,
                "memory": 128,
                "interactive": True,
                "pseudoTerminal": True,
            },
        ],
    },
    "privileged-host": {
        "family": "agent",
        "networkMode": "host",
        "pidMode": "host",
        "ipcMode": "host",
        "volumes": [{"name": "proc", "host": {"sourcePath": "/proc"}}],
        "containerDefinitions": [
            {
                "name": "agent",
                "image": "datadog/agent:7",
                "memory": 512,
                "privileged": True,
                "portMappings": [{"containerPort": 8125, "protocol": "udp"}],
                "mountPoints": [
                    {"sourceVolume": "proc", "containerPath": "/host/proc", "readOnly": True}
                ],
                "linuxParameters": {
                    "capabilities": {"add": ["SYS_ADMIN"]},
                    "devices": [{"hostPath": "/dev/fuse", "containerPath": "/dev/fuse"}],
                },
                "dnsServers": ["1.1.1.1"],
                "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
            }
        ],
    },
}


@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_realistic_task_definitions_render_valid_pods(name: str) -> None:
    spec = TaskDefinitionSpec.model_validate(REALISTIC[name])
    task = {"overrides": {"containerOverrides": [{"name": spec.container_definitions[0].name}]}}
    rendered = render(spec, task)
    assert kubernetes_validate.validate(rendered.manifest, "1.32.0", strict=True)


def test_a_task_role_that_names_no_iam_role_is_refused() -> None:
    with pytest.raises(RenderError) as caught:
        render(definition(taskRoleArn="arn:aws:iam::1:role/" + "R" * 300))
    [violation] = caught.value.violations
    assert violation.field == "spec.taskRoleArn"
    assert "does not name an IAM role" in violation.message
