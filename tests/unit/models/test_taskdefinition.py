"""TaskDefinition model: ECS JSON parses as is, defaults, helpers, and the CEL rules' verdicts."""

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from ecs_operator.models.taskdefinition import (
    MAX_FAMILY_LENGTH,
    MAX_TASK_DEFINITION_BYTES,
    ContainerDefinition,
    HealthCheck,
    PortMapping,
    TaskDefinition,
    TaskDefinitionSpec,
    family_name,
    format_task_definition_ref,
    parse_task_definition_ref,
)
from support.crd_rules import evaluate, find_rule, fixture, instances, schemas, walk_rules

WEB = "web-nginx.taskdefinition.json"
BATCH = "nightly-report.taskdefinition.json"


def k8s_object(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ecs.operator.dev/v1alpha1",
        "kind": "TaskDefinition",
        "metadata": {"name": name, "namespace": "default", "generation": 2, "uid": "u-1"},
        "spec": spec,
    }


@pytest.mark.parametrize("name", [WEB, BATCH])
def test_ecs_json_round_trips_unchanged(name: str) -> None:
    raw = fixture(name)
    spec = TaskDefinitionSpec.model_validate(raw)
    assert spec.model_dump(mode="json", exclude_unset=True) == raw


def test_kubernetes_object_parses_with_metadata_and_status() -> None:
    obj = k8s_object(fixture(WEB), "web")
    obj["status"] = {
        "revision": 3,
        "taskDefinitionArn": "web:3",
        "registeredAt": "2024-06-01T10:00:00Z",
        "status": "ACTIVE",
        "revisions": [{"revision": 3, "registeredAt": "2024-06-01T10:00:00Z", "status": "ACTIVE"}],
        "observedGeneration": 2,
        "conditions": [
            {
                "type": "Accepted",
                "status": "True",
                "reason": "Registered",
                "message": "registered revision 3",
                "lastTransitionTime": "2024-06-01T10:00:00Z",
            }
        ],
        "unsupported": [{"field": "spec.taskRoleArn", "reason": "IAM roles do not exist."}],
        "fieldFromANewerOperator": 1,
    }
    td = TaskDefinition.model_validate(obj)
    assert td.family == "web"
    assert td.metadata.generation == 2
    assert td.status is not None and td.status.revision == 3
    assert td.status.conditions is not None and td.status.conditions[0].type == "Accepted"
    dumped = td.model_dump(mode="json", exclude_none=True)
    assert dumped["status"]["registeredAt"] == "2024-06-01T10:00:00Z"
    assert dumped["metadata"]["uid"] == "u-1"


def test_family_may_be_omitted_but_must_match_the_name() -> None:
    spec = fixture(BATCH)
    del spec["family"]
    assert TaskDefinition.model_validate(k8s_object(spec, "nightly-report")).family == (
        "nightly-report"
    )
    with pytest.raises(
        ValidationError,
        match=r"spec\.family 'web' must match metadata\.name: .*; metadata\.name is 'api', "
        r"the family's name is 'web'",
    ):
        TaskDefinition.model_validate(k8s_object(fixture(WEB), "api"))


@pytest.mark.parametrize(
    ("family", "name"),
    [
        ("web", "web"),
        ("consulServer", "consulserver"),
        ("clerk_backend_task", "clerk-backend-task"),
        ("AmazonECS_Sample-App", "amazonecs-sample-app"),
    ],
)
def test_a_family_maps_to_its_name_lower_cased_with_underscores_as_hyphens(
    family: str, name: str
) -> None:
    assert family_name(family) == name
    assert TaskDefinition.model_validate(k8s_object(web_spec(family=family), name)).family == name
    rule = find_rule("TaskDefinition", "", "spec.family must match metadata.name")
    assert evaluate(rule, k8s_object(web_spec(family=family), name)) is True
    assert evaluate(rule, k8s_object(web_spec(family=family), name + "x")) is False
    # A reference to the family, in any spelling ECS accepts, names that TaskDefinition.
    assert parse_task_definition_ref(f"{family}:3") == (name, 3)
    arn = f"arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:3"
    assert parse_task_definition_ref(arn) == (name, 3)


def test_a_family_that_maps_to_no_object_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="the family's name is '-web'"):
        TaskDefinition.model_validate(k8s_object(web_spec(family="_web"), "web"))


def test_ecs_defaults_apply() -> None:
    spec = TaskDefinitionSpec.model_validate(
        {
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": "busybox",
                    "memory": 64,
                    "portMappings": [{"containerPort": 8080}],
                    "healthCheck": {"command": ["CMD", "true"]},
                    "restartPolicy": {"enabled": True},
                }
            ]
        }
    )
    app = spec.container_definitions[0]
    assert spec.network_mode == "bridge"
    assert app.essential is True
    assert app.port_mappings is not None and app.port_mappings[0].protocol == "tcp"
    assert app.health_check == HealthCheck(
        command=["CMD", "true"], interval=30, timeout=5, retries=3
    )
    assert app.restart_policy is not None and app.restart_policy.restart_attempt_period == 300
    assert spec.cpu_units is None and spec.memory_mib is None


def test_snake_case_names_populate_and_dump_as_ecs_names() -> None:
    container = ContainerDefinition(
        name="app", image="busybox", memory_reservation=64, readonly_root_filesystem=True
    )
    assert container.model_dump(exclude_none=True, exclude_defaults=True) == {
        "name": "app",
        "image": "busybox",
        "memoryReservation": 64,
        "readonlyRootFilesystem": True,
    }


def test_helpers() -> None:
    web = TaskDefinitionSpec.model_validate(fixture(WEB))
    assert web.container("migrate") is not None
    assert web.container("nope") is None
    assert [c.name for c in web.essential_containers] == ["nginx"]
    assert (web.cpu_units, web.memory_mib) == (512, 1024)
    batch = TaskDefinitionSpec.model_validate(fixture(BATCH))
    assert (batch.cpu_units, batch.memory_mib) == (1024, 2048)


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("web", ("web", None)),
        ("web:3", ("web", 3)),
        ("Nightly_report-2:1000000", ("nightly-report-2", 1000000)),
        ("arn:aws:ecs:us-east-1:123456789012:task-definition/web:7", ("web", 7)),
        ("arn:aws-cn:ecs:cn-north-1:123456789012:task-definition/web", ("web", None)),
    ],
)
def test_parse_task_definition_ref(ref: str, parsed: tuple[str, int | None]) -> None:
    assert parse_task_definition_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["", "web:", "web:0", "web:x", "web:3:4", "we b", ":3", "a" * 256])
def test_parse_task_definition_ref_refuses_bad_refs(ref: str) -> None:
    with pytest.raises(ValueError, match="is not family, family:revision"):
        parse_task_definition_ref(ref)


def test_format_task_definition_ref() -> None:
    assert format_task_definition_ref("web", 3) == "web:3"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"containerDefinitions": []}, "containerDefinitions"),
        ({"cpu": "2 cores"}, "cpu"),
        ({"cpu": 64}, "cpu"),
        ({"memory": "1TB"}, "memory"),
        ({"networkMode": "nat"}, "networkMode"),
        ({"family": "bad name"}, "family"),
        ({"containerDefinitionz": []}, "containerDefinitionz"),
    ],
)
def test_bad_input_names_the_field(change: dict[str, Any], field: str) -> None:
    raw = fixture(WEB) | change
    with pytest.raises(ValidationError) as error:
        TaskDefinitionSpec.model_validate(raw)
    assert field in str(error.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"memory": 4}, "memory"),
        ({"cpu": 196609}, "cpu"),
        ({"name": "no/slash"}, "name"),
        ({"healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 1}}, "interval"),
        ({"healthCheck": {"command": ["CMD-SHELL", "true"], "retries": 11}}, "retries"),
        ({"dependsOn": [{"containerName": "x", "condition": "READY"}]}, "condition"),
        ({"portMappings": [{"containerPort": 70000}]}, "containerPort"),
        ({"portMappings": [{"containerPort": 80, "protocol": "sctp"}]}, "protocol"),
        ({"portMappings": [{"containerPort": 80, "name": "-http"}]}, "name"),
    ],
)
def test_bad_container_input_names_the_field(change: dict[str, Any], field: str) -> None:
    container = {"name": "app", "image": "busybox", "memory": 64} | change
    with pytest.raises(ValidationError) as error:
        ContainerDefinition.model_validate(container)
    assert field in str(error.value)


def test_port_mapping_shapes() -> None:
    assert PortMapping.model_validate({"containerPortRange": "8000-8010"}).container_port is None


# ---------------------------------------------------------------------------------------------
# CEL rules: each one says yes to a good input and no to a bad one.

SPEC = "spec"
CONTAINER = "spec.containerDefinitions[]"


def web_spec(**changes: Any) -> dict[str, Any]:
    return fixture(WEB) | changes


def web_with(mutate: Any) -> dict[str, Any]:
    spec = fixture(WEB)
    mutate(spec)
    return spec


def _containers(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in spec["containerDefinitions"]}


def _set(container: str, **fields: Any) -> Any:
    def mutate(spec: dict[str, Any]) -> None:
        _containers(spec)[container].update(fields)

    return mutate


def _drop(container: str, field: str) -> Any:
    def mutate(spec: dict[str, Any]) -> None:
        _containers(spec)[container].pop(field, None)

    return mutate


def _bridge_ports_removed(mode: str) -> dict[str, Any]:
    spec = fixture(WEB)
    spec["networkMode"] = mode
    for c in spec["containerDefinitions"]:
        c.pop("portMappings", None)
    return spec


def _awsvpc(host_port: int | None) -> dict[str, Any]:
    spec = fixture(WEB)
    spec["networkMode"] = "awsvpc"
    mapping = _containers(spec)["nginx"]["portMappings"][0]
    mapping.pop("hostPort")
    if host_port is not None:
        mapping["hostPort"] = host_port
    return spec


SPEC_CASES = [
    # (message fragment, good spec, bad spec)
    (
        "container names must be unique",
        fixture(WEB),
        web_with(_set("migrate", name="nginx")),
    ),
    (
        "at least one container must be essential",
        web_with(_drop("nginx", "essential")),
        web_with(_set("nginx", essential=False)),
    ),
    (
        "without a task-level memory",
        web_with(lambda s: s.pop("memory")),
        web_with(
            lambda s: (s.pop("memory"), _containers(s)["log-router"].pop("memoryReservation"))
        ),
    ),
    (
        "dependsOn[].containerName must name a container",
        fixture(WEB),
        web_with(_set("nginx", dependsOn=[{"containerName": "ghost", "condition": "START"}])),
    ),
    (
        "a COMPLETE or SUCCESS dependency cannot target an essential container",
        fixture(WEB),
        web_with(_drop("migrate", "essential")),
    ),
    (
        "a HEALTHY dependency must target a container with a healthCheck",
        web_with(
            _set("log-router", dependsOn=[{"containerName": "nginx", "condition": "HEALTHY"}])
        ),
        web_with(_set("nginx", dependsOn=[{"containerName": "migrate", "condition": "HEALTHY"}])),
    ),
    (
        "volumesFrom[].sourceContainer must name a container",
        web_with(_set("migrate", volumesFrom=[{"sourceContainer": "nginx"}])),
        web_with(_set("migrate", volumesFrom=[{"sourceContainer": "ghost"}])),
    ),
    (
        "mountPoints[].sourceVolume must name one of spec.volumes",
        fixture(WEB),
        web_with(lambda s: s.pop("volumes")),
    ),
    (
        "volume names must be unique",
        web_spec(volumes=[{"name": "logs"}, {"name": "cache"}]),
        web_spec(volumes=[{"name": "logs"}, {"name": "logs", "host": {}}]),
    ),
    (
        "portMappings are not allowed with networkMode none",
        _bridge_ports_removed("none"),
        web_spec(networkMode="none"),
    ),
    (
        "hostPort must be absent or equal to containerPort",
        _awsvpc(80),
        _awsvpc(8080),
    ),
    (
        "links are only allowed with networkMode bridge",
        web_with(_set("nginx", links=["migrate:db"])),
        web_with(lambda s: (_set("nginx", links=["migrate:db"])(s), s.update(networkMode="host"))),
    ),
    (
        "hostname is not allowed with networkMode awsvpc",
        web_with(_set("nginx", hostname="web")),
        web_with(lambda s: (_set("nginx", hostname="web")(s), s.update(networkMode="awsvpc"))),
    ),
    (
        "a task definition only takes memberOf constraints",
        fixture(WEB),
        web_spec(placementConstraints=[{"type": "distinctInstance"}]),
    ),
    (
        "spec.taskRoleServiceAccountName needs spec.taskRoleArn",
        web_spec(taskRoleServiceAccountName="web-task"),
        web_with(lambda s: (s.pop("taskRoleArn"), s.update(taskRoleServiceAccountName="x"))),
    ),
]

BASE_CONTAINER = {"name": "app", "image": "busybox", "memory": 128}

CONTAINER_CASES = [
    (
        CONTAINER,
        "memory must be greater than memoryReservation",
        BASE_CONTAINER | {"memoryReservation": 64},
        BASE_CONTAINER | {"memoryReservation": 128},
    ),
    (
        CONTAINER,
        "a container cannot depend on itself",
        BASE_CONTAINER | {"dependsOn": [{"containerName": "db", "condition": "START"}]},
        BASE_CONTAINER | {"dependsOn": [{"containerName": "app", "condition": "START"}]},
    ),
    (
        CONTAINER,
        "a container cannot mount its own volumes",
        BASE_CONTAINER | {"volumesFrom": [{"sourceContainer": "db"}]},
        BASE_CONTAINER | {"volumesFrom": [{"sourceContainer": "app"}]},
    ),
    (
        CONTAINER,
        "a containerPort is mapped twice for the same protocol",
        BASE_CONTAINER
        | {
            "portMappings": [
                {"containerPort": 53},
                {"containerPort": 53, "protocol": "udp"},
                {"containerPortRange": "8000-8010"},
            ]
        },
        BASE_CONTAINER
        | {"portMappings": [{"containerPort": 53}, {"containerPort": 53, "protocol": "tcp"}]},
    ),
    (
        CONTAINER,
        "portMappings[].name must be unique in the task definition",
        BASE_CONTAINER
        | {
            "portMappings": [
                {"containerPort": 80, "name": "a"},
                {"containerPort": 81},
                {"containerPortRange": "8000-8010"},
            ]
        },
        BASE_CONTAINER
        | {
            "portMappings": [
                {"containerPort": 80, "name": "a"},
                {"containerPort": 81, "name": "a"},
            ]
        },
    ),
    (
        f"{CONTAINER}.portMappings[]",
        "set exactly one of containerPort and containerPortRange",
        {"containerPortRange": "8000-8010"},
        {"containerPort": 80, "containerPortRange": "8000-8010"},
    ),
    (
        f"{CONTAINER}.portMappings[]",
        "hostPort cannot be set with containerPortRange",
        {"containerPortRange": "8000-8010"},
        {"containerPortRange": "8000-8010", "hostPort": 8000},
    ),
    (
        f"{CONTAINER}.ulimits[]",
        "softLimit cannot exceed hardLimit",
        {"name": "nofile", "softLimit": 1024, "hardLimit": 4096},
        {"name": "nofile", "softLimit": 4096, "hardLimit": 1024},
    ),
    (
        f"{CONTAINER}.healthCheck",
        "must start with CMD or CMD-SHELL",
        {"command": ["CMD", "/bin/check"]},
        {"command": ["/bin/check", "now"]},
    ),
    (
        "spec.tags[]",
        "the aws: prefix is reserved",
        {"key": "awsome", "value": "x"},
        {"key": "AWS:cloudformation:stack", "value": "x"},
    ),
]


# The body's rules hold at the spec (a RegisterTaskDefinition request) and, unchanged, inside
# spec.taskDefinition (describe-task-definition's output).
WRAPPED = "spec.taskDefinition"


@pytest.mark.parametrize("at", [SPEC, WRAPPED])
@pytest.mark.parametrize(("message", "good", "bad"), SPEC_CASES, ids=[c[0] for c in SPEC_CASES])
def test_spec_rule(at: str, message: str, good: dict[str, Any], bad: dict[str, Any]) -> None:
    rule = find_rule("TaskDefinition", at, message)
    assert evaluate(rule, good) is True
    assert evaluate(rule, bad) is False


def test_the_name_overrides_are_kubernetes_names_and_need_their_ecs_field() -> None:
    spec = web_spec(taskRoleServiceAccountName="web-task")
    assert TaskDefinitionSpec.model_validate(spec).task_role_service_account_name == "web-task"
    without_role = web_with(
        lambda s: (s.pop("taskRoleArn"), s.update(taskRoleServiceAccountName="web-task"))
    )
    with pytest.raises(ValidationError, match="taskRoleServiceAccountName needs"):
        TaskDefinitionSpec.model_validate(without_role)
    for bad in (
        web_spec(taskRoleServiceAccountName="Web_Task"),
        web_with(
            _set("nginx", secrets=[{"name": "A", "valueFrom": "a", "kubernetesSecretName": "B"}])
        ),
        web_with(
            _set(
                "nginx",
                repositoryCredentials={"credentialsParameter": "a", "kubernetesSecretName": "_"},
            )
        ),
    ):
        with pytest.raises(ValidationError) as error:
            TaskDefinitionSpec.model_validate(bad)
        [problem] = error.value.errors()
        assert problem["loc"][-1] in ("taskRoleServiceAccountName", "kubernetesSecretName")


def test_spec_rules_about_containers_hold_only_when_the_spec_has_them() -> None:
    wrapped = {"taskDefinition": fixture(WEB)}
    for message, _, _ in SPEC_CASES:
        assert evaluate(find_rule("TaskDefinition", SPEC, message), wrapped) is True, message


WRAPPER_CASES = [
    # (message fragment, good spec, bad spec)
    (
        "spec.containerDefinitions is required (or spec.taskDefinition",
        {"taskDefinition": fixture(WEB)},
        web_with(lambda s: s.pop("containerDefinitions")),
    ),
    (
        "spec.taskDefinition holds the whole task definition",
        {"taskDefinition": fixture(WEB), "tags": [{"key": "a"}], "networkMode": "bridge"},
        {"taskDefinition": fixture(WEB), "cpu": "256"},
    ),
    (
        "spec.taskDefinition holds the whole task definition",
        {"taskDefinition": fixture(WEB)},
        {"taskDefinition": fixture(WEB), "networkMode": "awsvpc"},
    ),
]


@pytest.mark.parametrize(
    ("message", "good", "bad"), WRAPPER_CASES, ids=[c[0][:40] for c in WRAPPER_CASES]
)
def test_wrapper_rule(message: str, good: dict[str, Any], bad: dict[str, Any]) -> None:
    rule = find_rule("TaskDefinition", SPEC, message)
    assert evaluate(rule, good) is True
    assert evaluate(rule, bad) is False


@pytest.mark.parametrize("wrapped", [False, True])
@pytest.mark.parametrize(
    ("path", "message", "good", "bad"), CONTAINER_CASES, ids=[c[1] for c in CONTAINER_CASES]
)
def test_nested_rule(
    wrapped: bool, path: str, message: str, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    if wrapped and path.startswith("spec.tags"):
        return  # describe-task-definition's tags are beside taskDefinition, not in it
    if wrapped:
        path = path.replace("spec.", f"{WRAPPED}.", 1)
    rule = find_rule("TaskDefinition", path, message)
    assert evaluate(rule, good) is True
    assert evaluate(rule, bad) is False


def test_family_rule_at_the_root() -> None:
    rule = find_rule("TaskDefinition", "", "spec.family must match metadata.name")
    without_family = fixture(BATCH)
    del without_family["family"]
    assert evaluate(rule, k8s_object(fixture(WEB), "web")) is True
    assert evaluate(rule, k8s_object(without_family, "anything")) is True
    assert evaluate(rule, k8s_object(fixture(WEB), "api")) is False


def test_family_leaves_room_for_the_revision_names() -> None:
    """Revision 1234567 of the longest family is still a valid object name (253 characters)."""
    assert MAX_FAMILY_LENGTH + len("-1234567") == 253
    rule = find_rule("TaskDefinition", "", "ControllerRevision FAMILY-N")
    spec = fixture(BATCH)
    del spec["family"]
    longest, too_long = "f" * MAX_FAMILY_LENGTH, "f" * (MAX_FAMILY_LENGTH + 1)
    assert evaluate(rule, k8s_object(spec, longest)) is True
    assert evaluate(rule, k8s_object(spec, too_long)) is False
    TaskDefinition.model_validate(k8s_object(spec, longest))
    with pytest.raises(ValidationError, match=f"at most {MAX_FAMILY_LENGTH} characters"):
        TaskDefinition.model_validate(k8s_object(spec, too_long))


def test_a_task_definition_is_at_most_64_kib() -> None:
    spec = fixture(BATCH)
    container = spec["containerDefinitions"][0]
    container["environment"] = [{"name": f"V{n}", "value": "x" * 1000} for n in range(70)]
    with pytest.raises(
        ValidationError,
        match=f"ECS allows a task definition of at most {MAX_TASK_DEFINITION_BYTES} bytes",
    ):
        TaskDefinitionSpec.model_validate(spec)
    container["environment"] = container["environment"][:60]
    TaskDefinitionSpec.model_validate(spec)


@pytest.mark.parametrize("name", [WEB, BATCH])
def test_every_rule_accepts_the_ecs_examples(name: str) -> None:
    obj = k8s_object(fixture(name), fixture(name)["family"])
    for path, rule in walk_rules(schemas()["TaskDefinition"]):
        for value in instances(obj, path):
            assert evaluate(rule["rule"], copy.deepcopy(value)), rule["message"]


def test_every_rule_has_a_case() -> None:
    covered = {(SPEC, message) for message, _, _ in SPEC_CASES}
    covered |= {(SPEC, message) for message, _, _ in WRAPPER_CASES}
    covered |= {(path, message) for path, message, _, _ in CONTAINER_CASES}
    covered.add(("", "spec.family must match metadata.name"))
    covered.add(("", "spec.taskDefinition.family must match metadata.name"))
    covered.add(("", "stores revision N as the ControllerRevision FAMILY-N"))
    for path, rule in walk_rules(schemas()["TaskDefinition"]):
        path = path.replace(f"{WRAPPED}.", "spec.").replace(WRAPPED, SPEC)
        if path == "spec.placementConstraints[]":
            continue  # the placement model's own rules, tested with that model
        assert any(p == path and m in rule["message"] for p, m in covered), rule["message"]
