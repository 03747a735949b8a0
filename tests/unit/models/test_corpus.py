"""Real ECS JSON pastes unchanged: the corpus in tests/corpus/.

``tests/corpus/taskdefinitions/`` holds task definitions in the shapes AWS documents and tools
export (the ECS developer guide's examples, FireLens, App Mesh, X-Ray, ADOT, the CloudWatch agent,
Datadog, EFS, FSx, secrets, GPU, Inferentia, Elastic Inference, Windows, health-check variants,
ecspresso and Terraform-style exports, and ``aws ecs describe-task-definition`` output with and
without its ``{"taskDefinition": …}`` wrapper); ``tests/corpus/services/`` holds CreateService
requests, ecspresso and Terraform-style service definitions and describe-services fields. Each
file is pasted under ``spec:`` as it is, and:

- validates through the model and through the generated CRD's schema, as kube-apiserver admits it
  with ``fieldValidation=Strict`` (``kubectl apply``'s default): nothing unknown, nothing pruned,
  every CEL rule passes;
- a TaskDefinition registers (with ``--allow-privileged``: host volumes and devices are valid ECS
  that a default installation refuses on purpose), and every field the operator does not honour
  is reported in ``status.unsupported`` — checked against an independent list of such fields
  found in the file, so a field that is silently dropped fails the test;
- a Service reports what it does not honour the same way.
"""

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ecs_operator.core.registration import plan_registration
from ecs_operator.core.security import SecurityPolicy
from ecs_operator.core.service_fields import unsupported_service_fields
from ecs_operator.core.validation import task_definition_unsupported
from ecs_operator.models.crd import render_crds
from ecs_operator.models.service import Service, ServiceSpec
from ecs_operator.models.taskdefinition import (
    READ_ONLY_FIELDS,
    TaskDefinition,
    TaskDefinitionSpec,
    family_name,
)
from ecs_sandbox.schema import SchemaValidator

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
TASK_DEFINITIONS = sorted((CORPUS / "taskdefinitions").glob("*.json"))
SERVICES = sorted((CORPUS / "services").glob("*.json"))
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
PERMISSIVE = SecurityPolicy.from_allow_privileged(True)


def test_the_corpus_is_large_enough() -> None:
    assert len(TASK_DEFINITIONS) >= 30
    assert len(SERVICES) >= 10


@cache
def validator(kind: str) -> SchemaValidator:
    crd = next(c for c in render_crds().values() if c["spec"]["names"]["kind"] == kind)
    [version] = crd["spec"]["versions"]
    return SchemaValidator.from_crd_version(crd, version)


def load(path: Path) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(path.read_text())
    return raw


def k8s_object(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "ecs.operator.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "default", "uid": "uid-1", "generation": 1},
        "spec": spec,
    }


def missing_paths(given: Any, kept: Any, path: str) -> list[str]:
    """Paths of ``given`` absent from ``kept`` (the admitted copy may only add defaults)."""
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [path]
        return [
            missing
            for key, value in given.items()
            for missing in (
                missing_paths(value, kept[key], f"{path}.{key}") if key in kept else [path]
            )
        ]
    if isinstance(given, list):
        if not isinstance(kept, list) or len(kept) != len(given):
            return [path]
        return [m for i, v in enumerate(given) for m in missing_paths(v, kept[i], f"{path}[{i}]")]
    return [] if given == kept else [path]


def admitted(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The object kube-apiserver would store for ``spec`` pasted as it is (strict, as kubectl
    apply asks); nothing the user wrote may be pruned or changed."""
    obj = k8s_object(kind, name, spec)
    stored = validator(kind).admit(obj, None, strict=True)
    assert missing_paths(spec, stored["spec"], "spec") == []
    return stored


# ---------------------------------------------------------------------------------------------
# Task definitions


def task_definition_name(raw: dict[str, Any]) -> str:
    body = raw.get("taskDefinition", raw)
    return family_name(body["family"])


CONTAINER_FIELDS_NOT_HONOURED = (
    "logConfiguration",
    "firelensConfiguration",
    "ulimits",
    "environmentFiles",
    "restartPolicy",
    "startTimeout",
    "dockerSecurityOptions",
    "credentialSpecs",
)


def expected_unsupported(raw: dict[str, Any]) -> set[tuple[str, bool]]:
    """Fields of ``raw`` the operator does not honour, as ``(path, read_only)``, found
    independently of the operator's own rules: a field missing from the report is dropped."""
    wrapped = "taskDefinition" in raw
    body = raw.get("taskDefinition", raw)
    spec = "spec.taskDefinition" if wrapped else "spec"
    found = {(f"{spec}.{name}", True) for name in READ_ONLY_FIELDS if name in body}
    if raw.get("tags"):
        found.add(("spec.tags", False))
    for name in ("executionRoleArn", "proxyConfiguration", "inferenceAccelerators"):
        if body.get(name):
            found.add((f"{spec}.{name}", False))
    if body.get("networkMode") in ("awsvpc", "none"):
        found.add((f"{spec}.networkMode", False))
    for index, volume in enumerate(body.get("volumes") or []):
        found |= _volume_fields(volume, f"{spec}.volumes[{index}]")
    for index, container in enumerate(body["containerDefinitions"]):
        found |= _container_fields(container, f"{spec}.containerDefinitions[{index}]")
    return found


def _volume_fields(volume: dict[str, Any], path: str) -> set[tuple[str, bool]]:
    found = {
        (f"{path}.{name}", False)
        for name in ("efsVolumeConfiguration", "fsxWindowsFileServerVolumeConfiguration")
        if name in volume
    }
    if (volume.get("dockerVolumeConfiguration") or {}).get("scope") == "shared":
        found.add((f"{path}.dockerVolumeConfiguration.scope", False))
    return found


def _container_fields(container: dict[str, Any], path: str) -> set[tuple[str, bool]]:
    found = {
        (f"{path}.{name}", False) for name in CONTAINER_FIELDS_NOT_HONOURED if container.get(name)
    }
    for position, requirement in enumerate(container.get("resourceRequirements") or []):
        if requirement["type"] == "InferenceAccelerator":
            found.add((f"{path}.resourceRequirements[{position}]", False))
    linux = container.get("linuxParameters") or {}
    found |= {
        (f"{path}.linuxParameters.{name}", False)
        for name in ("maxSwap", "swappiness")
        if name in linux
    }
    for position, mapping in enumerate(container.get("portMappings") or []):
        for name in ("appProtocol", "containerPortRange"):
            if mapping.get(name):
                found.add((f"{path}.portMappings[{position}].{name}", False))
    return found


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda p: p.stem)
def test_a_task_definition_pastes_unchanged(path: Path) -> None:
    raw = load(path)
    TaskDefinitionSpec.model_validate(raw)
    name = task_definition_name(raw)
    stored = admitted("TaskDefinition", name, raw)
    definition = TaskDefinition.model_validate(stored)
    assert definition.family == name
    assert definition.spec.wrapped == ("taskDefinition" in raw)

    reported = {(u.field, bool(u.read_only)) for u in task_definition_unsupported(definition.spec)}
    missing = expected_unsupported(raw) - reported
    assert not missing, f"not reported: {sorted(missing)}"
    for field, _ in reported:  # each names a field the user wrote
        assert field.split("[")[0].split(".")[1] in ("taskDefinition", *raw), field

    plan = plan_registration(stored, [], set(), PERMISSIVE, NOW)
    assert plan.status is not None
    [accepted] = plan.status["conditions"]
    assert accepted["status"] == "True", accepted["message"]
    assert plan.register is not None
    stored_spec = plan.register["data"]
    assert not set(READ_ONLY_FIELDS) & set(stored_spec), "read-only fields are never stored"
    assert "taskDefinition" not in stored_spec
    in_status = {
        (u["field"], bool(u.get("readOnly"))) for u in plan.status.get("unsupported") or []
    }
    assert in_status == reported


def test_the_corpus_covers_the_paste_rules() -> None:
    raws = [load(path) for path in TASK_DEFINITIONS]
    bodies = [raw.get("taskDefinition", raw) for raw in raws]
    assert sum("taskDefinition" in raw for raw in raws) >= 2  # the wrapper
    assert any(set(READ_ONLY_FIELDS) & set(raw) for raw in raws)  # read-only, no wrapper
    assert any(body.get("ipcMode") == "" for body in bodies)  # "" means not set
    assert any(body.get("proxyConfiguration") for body in bodies)
    assert any(body.get("inferenceAccelerators") for body in bodies)
    assert any(family_name(body["family"]) != body["family"] for body in bodies)


def test_read_only_fields_are_reported_as_read_only_where_the_user_wrote_them() -> None:
    raw = load(CORPUS / "taskdefinitions" / "describe-task-definition-wrapped.json")
    stored = admitted("TaskDefinition", "hello-world", raw)
    plan = plan_registration(stored, [], set(), PERMISSIVE, NOW)
    assert plan.status is not None
    unsupported = {u["field"]: u for u in plan.status["unsupported"]}
    assert unsupported["spec.taskDefinition.revision"]["readOnly"] is True
    assert unsupported["spec.taskDefinition.registeredBy"]["readOnly"] is True
    assert unsupported["spec.tags"].get("readOnly") is None
    assert "read-only" not in plan.status["conditions"][0]["reason"]


# ---------------------------------------------------------------------------------------------
# Services

SERVICE_FIELDS = {
    # ECS field -> reported when set to something other than these "not used" values
    "cluster": (None,),
    "platformVersion": (None,),
    "platformFamily": (None,),
    "enableExecuteCommand": (None, False),
    "networkConfiguration": (None,),
    "enableECSManagedTags": (None, False),
    "capacityProviderStrategy": (None, []),
    "serviceRegistries": (None, []),
    "serviceConnectConfiguration": (None,),
    "role": (None,),
    "runningCount": (None,),
    "pendingCount": (None,),
}


def service_name(raw: dict[str, Any], path: Path) -> str:
    return family_name(raw.get("serviceName") or path.stem)


def expected_service_unsupported(raw: dict[str, Any]) -> set[str]:
    found = {
        f"spec.{name}" for name, unused in SERVICE_FIELDS.items() if raw.get(name) not in unused
    }
    if raw.get("propagateTags") == "TASK_DEFINITION":
        found.add("spec.propagateTags")
    if (raw.get("deploymentController") or {}).get("type") not in (None, "ECS"):
        found.add("spec.deploymentController")
    return found


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.stem)
def test_a_service_pastes_unchanged(path: Path) -> None:
    raw = load(path)
    ServiceSpec.model_validate(raw)
    name = service_name(raw, path)
    stored = admitted("Service", name, raw)
    service = Service.model_validate(stored)
    reported = {u.field for u in unsupported_service_fields(name, service.spec)}
    assert reported == expected_service_unsupported(raw)


def test_the_service_corpus_names_load_balancers_both_ways() -> None:
    entries = [entry for path in SERVICES for entry in load(path).get("loadBalancers") or ()]
    assert any("targetGroupArn" in entry for entry in entries)
    assert any("loadBalancerName" in entry for entry in entries)


def test_a_service_name_that_is_not_the_objects_is_reported() -> None:
    spec = ServiceSpec.model_validate(
        {"serviceName": "web_API", "taskDefinition": "web"} | {"desiredCount": 1}
    )
    assert unsupported_service_fields("web-api", spec) == []
    [reported] = unsupported_service_fields("web", spec)
    assert reported.field == "spec.serviceName"
