"""Task -> Pod: what the operator renders for one task, read back from the API."""

from __future__ import annotations

import base64

from ecs_operator.core.quantity import cpu_millicores, memory_bytes
from support.ecs_api import TASK_LABEL, Ecs, container, shell

MIB = 2**20


def resources(pod_container: dict) -> dict[str, int]:  # type: ignore[type-arg]
    """cpu request in millicores, memory request and limit in MiB (quantities are compared by
    value: an API server may canonicalise "1000m" to "1")."""
    requests, limits = pod_container["resources"]["requests"], pod_container["resources"]["limits"]
    return {
        "cpu": cpu_millicores(requests["cpu"]),
        "memory_request": memory_bytes(requests["memory"]) // MIB,
        "memory_limit": memory_bytes(limits["memory"]) // MIB,
    }


def env_of(pod_container: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {item["name"]: item for item in pod_container.get("env") or ()}


def test_pod_is_rendered_from_the_task_definition_and_overrides(ecs: Ecs) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "data": {"password": base64.b64encode(b"hunter2").decode()},
    }
    assert ecs.http.post(ecs.path("secrets", group=""), json=secret).status_code == 201
    ecs.create_task_definition(
        "web",
        container(
            "app",
            cpu=512,
            memory=256,
            memoryReservation=128,
            environment=[{"name": "MODE", "value": "prod"}, {"name": "KEEP", "value": "yes"}],
            secrets=[{"name": "DB_PASSWORD", "valueFrom": "db:password"}],
            healthCheck={"command": ["CMD-SHELL", "true"], "interval": 5, "retries": 2},
            stopTimeout=12,
        ),
        container("side", cpu=256, memory=64, essential=False, stopTimeout=3),
    )
    ecs.wait_accepted("web")
    overrides = {
        "containerOverrides": [
            {
                "name": "app",
                "command": ["sleep", "3600"],
                "environment": [{"name": "MODE", "value": "test"}],
                "cpu": 1024,
                "memory": 512,
            }
        ]
    }
    task = ecs.create_task("web-1", "web", overrides=overrides)
    ecs.wait_last_status("web-1", "RUNNING")

    pod = ecs.pod("web-1")
    assert pod is not None
    metadata, spec = pod["metadata"], pod["spec"]
    owner = metadata["ownerReferences"]
    assert [(o["kind"], o["name"], o["uid"], o["controller"]) for o in owner] == [
        ("Task", "web-1", task["metadata"]["uid"], True)
    ]
    assert metadata["labels"][TASK_LABEL] == "web-1"
    assert metadata["labels"]["ecs.operator.dev/family"] == "web"
    assert metadata["labels"]["ecs.operator.dev/revision"] == "1"
    assert metadata["annotations"]["ecs.operator.dev/task-definition"] == "web:1"
    assert metadata["annotations"]["ecs.operator.dev/group"] == "family:web"
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["terminationGracePeriodSeconds"] == 12  # the longest stopTimeout
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    [term] = terms["nodeSelectorTerms"]
    [expression] = term["matchExpressions"]
    assert expression["key"] == "kubernetes.io/hostname"
    assert expression["values"] == [spec["nodeName"]]
    status = ecs.status("web-1")
    assert status["nodeName"] == spec["nodeName"]

    containers = {c["name"]: c for c in spec["containers"]}
    app, side = containers["app"], containers["side"]
    assert app["image"] == "busybox:1.36"
    assert app["args"] == ["sleep", "3600"]
    # cpu units -> millicores (1024 = 1 core); memory -> limit; memoryReservation -> request.
    assert resources(app) == {"cpu": 1000, "memory_request": 128, "memory_limit": 512}
    assert resources(side) == {"cpu": 250, "memory_request": 64, "memory_limit": 64}
    assert "cpu" not in app["resources"]["limits"]
    env = env_of(app)
    assert env["MODE"]["value"] == "test"
    assert env["KEEP"]["value"] == "yes"
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "password"}
    probe = app["readinessProbe"]
    assert probe["exec"]["command"] == ["sh", "-c", "true"]
    assert probe["periodSeconds"] == 5
    assert probe["failureThreshold"] == 2
    assert "readinessProbe" not in side
    assert status["containers"] and {c["name"] for c in status["containers"]} == {"app", "side"}
    assert status["healthStatus"] == "HEALTHY"


def test_missing_secret_fails_the_task_naming_it(ecs: Ecs) -> None:
    ecs.create_task_definition(
        "needs-secret",
        container("app", secrets=[{"name": "TOKEN", "valueFrom": "absent:token"}]),
    )
    ecs.wait_accepted("needs-secret")
    ecs.create_task("t", "needs-secret")
    stopped = ecs.wait_stopped("t")
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert stopped["stoppedReason"].startswith("ResourceInitializationError")
    assert '"absent"' in stopped["stoppedReason"]
    assert "secrets[0].valueFrom" in stopped["stoppedReason"]
    assert not ecs.pods_of("t")
    ecs.wait_warning("t", "TaskFailedToStart")


def test_no_service_account_token_unless_a_task_role_is_set(ecs: Ecs) -> None:
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"}}
    assert ecs.http.post(ecs.path("serviceaccounts", group=""), json=account).status_code == 201
    ecs.create_task_definition("plain", container("app"))
    ecs.create_task_definition(
        "with-role", container("app"), taskRoleArn="arn:aws:iam::123456789012:role/app"
    )
    ecs.wait_accepted("plain")
    ecs.wait_accepted("with-role")
    ecs.create_task("plain-1", "plain")
    ecs.create_task("role-1", "with-role")
    ecs.wait_last_status("plain-1", "RUNNING")
    ecs.wait_last_status("role-1", "RUNNING")
    plain, with_role = ecs.pod("plain-1"), ecs.pod("role-1")
    assert plain is not None and with_role is not None
    assert plain["spec"]["automountServiceAccountToken"] is False
    assert with_role["spec"].get("automountServiceAccountToken") is not False


def test_shell_command_runs_as_args(ecs: Ecs) -> None:
    ecs.create_task_definition("cmd", container("app", shell("sleep 30")))
    ecs.wait_accepted("cmd")
    ecs.create_task("cmd-1", "cmd")
    pod = ecs.wait_pod("cmd-1", lambda p: p["spec"].get("nodeName"), "bound")
    assert pod["spec"]["containers"][0]["args"] == ["sh", "-c", "sleep 30"]
    assert "command" not in pod["spec"]["containers"][0]
