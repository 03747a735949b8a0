"""Real ECS JSON pasted under `spec:` with kubectl, end to end: describe-task-definition output
(wrapper, read-only fields, an ARN naming the family) registers and runs; a family that is not
an object name registers under its Kubernetes name; a CreateService body with fields Kubernetes
cannot honour runs and reports them (status, Ready message, one event)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from support.ecs_api import GROUP, VERSION, Body, Ecs, KubectlRunner, condition, container
from support.services import Services, degraded, service

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def apply(kubectl: KubectlRunner, ecs: Ecs, body: Body, tmp_path: Path) -> None:
    manifest = tmp_path / f"{body['metadata']['name']}.yaml"
    manifest.write_text(yaml.safe_dump(body))
    applied = kubectl("apply", "-n", ecs.namespace, "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr


def task_definition(name: str, spec: Body) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TaskDefinition",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_describe_task_definition_output_registers_and_runs(
    ecs: Ecs, kubectl: KubectlRunner, tmp_path: Path
) -> None:
    raw = json.loads(
        (CORPUS / "taskdefinitions" / "describe-task-definition-wrapped.json").read_text()
    )
    apply(kubectl, ecs, task_definition("hello-world", raw), tmp_path)
    status = ecs.wait_accepted("hello-world")
    assert status["taskDefinitionArn"] == "hello-world:1"
    assert condition(status, "Accepted")["reason"] == "RegisteredWithUnsupportedFields"
    read_only = {u["field"] for u in status["unsupported"] if u.get("readOnly")}
    assert {"spec.taskDefinition.revision", "spec.taskDefinition.registeredAt"} <= read_only
    [revision] = ecs.revisions("hello-world").values()
    assert "revision" not in revision["data"] and "taskDefinition" not in revision["data"]

    arn = "arn:aws:ecs:us-west-2:123456789012:task-definition/hello_world:1"
    ecs.create_task("hello", arn)
    running = ecs.wait_last_status("hello", "RUNNING")
    assert running["taskDefinitionArn"] == "hello-world:1"


def test_a_family_that_is_not_an_object_name_registers_under_its_kubernetes_name(
    ecs: Ecs, kubectl: KubectlRunner, tmp_path: Path
) -> None:
    spec = {"family": "consulServer", "ipcMode": "", "containerDefinitions": [container()]}
    apply(kubectl, ecs, task_definition("consulserver", spec), tmp_path)
    assert ecs.wait_accepted("consulserver")["taskDefinitionArn"] == "consulserver:1"
    ecs.create_task("consul", "consulServer")
    assert ecs.wait_last_status("consul", "RUNNING")["taskDefinitionArn"] == "consulserver:1"

    wrong = task_definition("consul", spec)
    manifest = tmp_path / "wrong.yaml"
    manifest.write_text(yaml.safe_dump(wrong))
    refused = kubectl("apply", "-n", ecs.namespace, "-f", str(manifest))
    assert refused.returncode != 0
    assert "spec.family" in refused.stderr and "<nil>" not in refused.stderr


def test_a_create_service_body_runs_and_reports_what_it_does_not_honour(
    ecs: Ecs, kubectl: KubectlRunner, tmp_path: Path
) -> None:
    ecs.create_task_definition("web", container())
    ecs.wait_accepted("web")
    services = Services(ecs)
    body = service(
        "web",
        "web",
        serviceName="web",
        cluster="production",
        desiredCount=2,
        launchType="",
        platformVersion="LATEST",
        enableExecuteCommand=True,
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
    )
    apply(kubectl, ecs, body, tmp_path)
    status = services.wait_steady("web", 2)
    fields = [u["field"] for u in status["unsupported"]]
    assert fields == [
        "spec.cluster",
        "spec.platformVersion",
        "spec.enableExecuteCommand",
        "spec.networkConfiguration",
    ]
    assert (
        "accepted but not honoured on Kubernetes: spec.cluster"
        in condition(status, "Ready")["message"]
    )
    said = [m for m in services.messages("web") if "accepted but not honoured" in m]
    assert len(said) == 1


def test_a_service_whose_task_definition_is_refused_does_not_call_it_pending(ecs: Ecs) -> None:
    """The Service quotes the TaskDefinition's refusal (`ResolvedRevision.reason`)."""
    ecs.create_task_definition("bad", container(memory=4096), memory="1024")
    ecs.wait_accepted("bad", "False")
    services = Services(ecs)
    services.create("web", "bad", desiredCount=1)

    def refusal() -> str | None:
        message = str(degraded(services.status("web")).get("message") or "")
        return message or None

    message = services.wait(refusal, "Degraded says why", "web")
    assert "pending" not in message
    assert 'task definition "bad" is not accepted' in message, message
    assert services.tasks("web") == []
