"""The task budget split (core.render) against ECS's task-wide cap, and placement
(core.capacity) counting what the rendered Pod asks for; runtimePlatform, GPUs and links."""

from typing import Any

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ecs_operator.core.capacity import cluster_instances, task_requirements
from ecs_operator.core.quantity import cpu_millicores, cpu_units_to_millicores, memory_bytes
from ecs_operator.core.render import (
    NOT_HONOURED,
    ResolvedTaskDefinition,
    container_roles,
    dependency_order,
    inspect_task,
    render_pod,
)
from ecs_operator.core.security import SecurityPolicy
from ecs_operator.models.task import TaskSpec
from ecs_operator.models.taskdefinition import ResourceRequirement, TaskDefinitionSpec

POLICY = SecurityPolicy.from_allow_privileged(True)
MIB = 2**20


def render(spec: TaskDefinitionSpec) -> dict[str, Any]:
    manifest: dict[str, Any] = render_pod(
        task_name="t",
        namespace="ns",
        task_uid="u",
        task=TaskSpec.model_validate({"taskDefinition": "web"}),
        task_definition=ResolvedTaskDefinition("web", 1, spec),
        node_name="n1",
        group="family:web",
        policy=POLICY,
    ).manifest
    return manifest


@st.composite
def task_definitions(draw: st.DrawFn) -> TaskDefinitionSpec:
    """Valid task definitions (ECS's sums respected) with sidecars and init containers."""
    task_cpu = draw(st.none() | st.integers(128, 4096))
    task_memory = draw(st.none() | st.integers(128, 8192))
    count = draw(st.integers(1, 5))
    containers: list[dict[str, Any]] = []
    for index in range(count):
        body: dict[str, Any] = {"name": f"c{index}", "image": "nginx"}
        if draw(st.booleans()):
            body["cpu"] = draw(st.integers(0, 1024))
        hard = draw(st.none() | st.integers(7, 2048))
        if hard is not None:
            body["memory"] = hard
        if draw(st.booleans()) or (task_memory is None and hard is None):
            body["memoryReservation"] = draw(st.integers(6, (hard - 1) if hard else 2048))
        if index and draw(st.booleans()):
            dependency = draw(st.integers(0, index - 1))
            condition = draw(st.sampled_from(("START", "SUCCESS", "HEALTHY")))
            body["dependsOn"] = [{"containerName": f"c{dependency}", "condition": condition}]
            if condition == "SUCCESS":
                containers[dependency]["essential"] = False
            if condition == "HEALTHY":
                form = draw(st.sampled_from((["CMD-SHELL", "exit 0"], ["CMD", "true"])))
                containers[dependency]["healthCheck"] = {"command": form}
        containers.append(body)
    containers[-1]["essential"] = True
    reserved_cpu = sum(c.get("cpu", 0) for c in containers)
    reserved_memory = sum(c.get("memoryReservation") or c.get("memory") or 0 for c in containers)
    assume(task_cpu is None or reserved_cpu <= task_cpu)
    assume(task_memory is None or reserved_memory <= task_memory)
    assume(task_memory is None or all(c.get("memory", 0) <= task_memory for c in containers))
    fields: dict[str, Any] = {"containerDefinitions": containers}
    if task_cpu is not None:
        fields["cpu"] = str(task_cpu)
    if task_memory is not None:
        fields["memory"] = str(task_memory)
    try:
        return TaskDefinitionSpec.model_validate(fields)
    except ValidationError:
        assume(False)
        raise


def amounts(container: dict[str, Any], kind: str) -> tuple[int, int]:
    """(request, limit) of CPU in millicores or memory in MiB; 0 when absent."""
    resources = container.get("resources") or {}
    parse = cpu_millicores if kind == "cpu" else (lambda v: memory_bytes(v) // MIB)
    request = (resources.get("requests") or {}).get(kind)
    limit = (resources.get("limits") or {}).get(kind)
    return (parse(request) if request else 0), (parse(limit) if limit else 0)


# Found by hypothesis: an init container's own hard limit (123) beside a sidecar's minimum
# share (6) went over the task's 128 MiB.
INIT_BESIDE_A_SIDECAR = TaskDefinitionSpec.model_validate(
    {
        "memory": "128",
        "containerDefinitions": [
            {"name": "c0", "image": "nginx"},
            {
                "name": "c1",
                "image": "nginx",
                "memory": 123,
                "essential": False,
                "dependsOn": [{"containerName": "c0", "condition": "START"}],
            },
            {
                "name": "c2",
                "image": "nginx",
                "dependsOn": [{"containerName": "c1", "condition": "SUCCESS"}],
            },
        ],
    }
)


@settings(max_examples=150, deadline=None)
@given(task_definitions())
@example(INIT_BESIDE_A_SIDECAR)
def test_the_pods_limits_never_exceed_the_task_and_every_container_is_capped(
    spec: TaskDefinitionSpec,
) -> None:
    pod = render(spec)["spec"]
    init = {c["name"]: c for c in pod.get("initContainers", [])}
    running = [*pod["containers"], *(c for c in init.values() if c.get("restartPolicy"))]
    roles = container_roles(spec)
    order = dependency_order(spec)
    for kind, task_amount in (
        ("cpu", None if spec.cpu_units is None else cpu_units_to_millicores(spec.cpu_units)),
        ("memory", spec.memory_mib),
    ):
        for container in [*running, *init.values()]:
            request, limit = amounts(container, kind)
            assert not limit or request <= limit
            if task_amount is not None:
                assert limit > 0, f"{container['name']} has no {kind} limit"
        if task_amount is None:
            continue
        assert sum(amounts(c, kind)[1] for c in running) <= task_amount
        # An init container runs beside the sidecars started before it.
        sidecars = 0
        for name in order:
            if roles[name] == "sidecar":
                sidecars += amounts(init[name], kind)[1]
            elif roles[name] == "init":
                assert sidecars + amounts(init[name], kind)[1] <= task_amount
    for definition in spec.container_definitions:
        rendered = next(c for c in [*running, *init.values()] if c["name"] == definition.name)
        if definition.memory is not None:
            assert amounts(rendered, "memory")[1] <= definition.memory


@settings(max_examples=150, deadline=None)
@given(task_definitions())
def test_dependencies_start_first_and_only_what_must_be_is_a_reported_sidecar(
    spec: TaskDefinitionSpec,
) -> None:
    rendered = render_pod(
        task_name="t",
        namespace="ns",
        task_uid="u",
        task=TaskSpec.model_validate({"taskDefinition": "web"}),
        task_definition=ResolvedTaskDefinition("web", 1, spec),
        node_name="n1",
        group="family:web",
        policy=POLICY,
    )
    pod = rendered.manifest["spec"]
    init = pod.get("initContainers", [])
    regular = pod["containers"]
    # The kubelet starts init containers, then regular ones, in list order.
    started = [c["name"] for c in [*init, *regular]]
    definitions = {d.name: d for d in spec.container_definitions}
    healthy_gated = {
        dependency.container_name
        for d in spec.container_definitions
        for dependency in d.depends_on or []
        if dependency.condition == "HEALTHY"
    }
    for definition in spec.container_definitions:
        for dependency in definition.depends_on or []:
            assert started.index(dependency.container_name) < started.index(definition.name)
    sidecars = {c["name"] for c in init if c.get("restartPolicy") == "Always"}
    for name in sidecars:
        check = definitions[name].health_check
        cmd_check = name in healthy_gated and check is not None and check.command[0] == "CMD"
        waited_for_by_init = any(
            dependency.container_name == name
            for c in init
            for dependency in definitions[c["name"]].depends_on or []
        )
        assert cmd_check or waited_for_by_init, f"{name} need not be a sidecar"
    for container in regular:
        assert "restartPolicy" not in container
        assert ("lifecycle" in container) == (container["name"] in healthy_gated)
    reason = NOT_HONOURED["containerDefinitions[].essential false of a START/HEALTHY dependency"]
    assert {u.field for u in rendered.unsupported if u.reason == reason} == {
        f"spec.containerDefinitions[{index}].essential"
        for index, d in enumerate(spec.container_definitions)
        if d.name in sidecars and not d.essential
    }


@settings(max_examples=100, deadline=None)
@given(task_definitions(), st.integers(0, 2))
def test_placement_counts_what_the_pod_requests(spec: TaskDefinitionSpec, gpus: int) -> None:
    """With the whole task memory given out (else it is reported), a node loses exactly what
    placement reserved. Without task-level values ECS also reserves what init containers ask
    (the scheduler only their peak), so placement stays on the safe side there."""
    roles = container_roles(spec)
    assume(
        (spec.cpu_units is not None and spec.memory_mib is not None)
        or all(roles[name] != "init" for name in roles)
    )
    if gpus:
        first = spec.container_definitions[0].model_copy(
            update={"resource_requirements": [ResourceRequirement(type="GPU", value=str(gpus))]}
        )
        spec = spec.model_copy(
            update={"container_definitions": [first, *spec.container_definitions[1:]]}
        )
    inspection = inspect_task(spec, None, POLICY)
    assume(
        not any(
            entry.reason == NOT_HONOURED["memory (task level)"] for entry in inspection.unsupported
        )
    )
    pod = render(spec)
    pod["spec"]["nodeName"] = "n1"
    pod["status"] = {"phase": "Pending"}
    node = {
        "metadata": {"name": "n1", "labels": {}},
        "status": {
            "allocatable": {"cpu": "64", "memory": "64Gi", "nvidia.com/gpu": "4"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    [empty] = cluster_instances([node], [])
    [used] = cluster_instances([node], [pod])
    requirements = task_requirements(spec, group="family:web")
    assert empty.remaining_cpu_millicores - used.remaining_cpu_millicores == (
        requirements.cpu_millicores
    )
    assert empty.remaining_memory_mib - used.remaining_memory_mib == requirements.memory_mib
    assert empty.remaining_gpus - used.remaining_gpus == requirements.gpus == gpus


def definition(**fields: Any) -> TaskDefinitionSpec:
    containers = fields.pop("containers", [{"name": "app", "image": "nginx", "memory": 128}])
    return TaskDefinitionSpec.model_validate({"containerDefinitions": containers, **fields})


def test_runtime_platform_is_a_node_selector_and_a_placement_requirement() -> None:
    spec = definition(
        runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"}
    )
    assert render(spec)["spec"]["nodeSelector"] == {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "arm64",
    }
    requirements = task_requirements(spec, group="family:web")
    assert dict(requirements.required_attributes) == {
        "ecs.os-type": "linux",
        "ecs.cpu-architecture": "arm64",
    }
    windows = definition(runtimePlatform={"operatingSystemFamily": "WINDOWS_SERVER_2019_FULL"})
    assert render(windows)["spec"]["nodeSelector"] == {
        "kubernetes.io/os": "windows",
        "node.kubernetes.io/windows-build": "10.0.17763",
    }
    assert dict(task_requirements(windows, group="family:web").required_attributes) == {
        "ecs.os-type": "windows",
        "ecs.windows-build": "10.0.17763",
    }
    assert "nodeSelector" not in render(definition())["spec"]


def test_an_unknown_operating_system_family_is_refused_naming_the_field() -> None:
    inspection = inspect_task(
        definition(runtimePlatform={"operatingSystemFamily": "MACOS"}), None, POLICY
    )
    assert [v.field for v in inspection.violations] == [
        "spec.runtimePlatform.operatingSystemFamily"
    ]
    [violation] = inspection.violations
    assert "'MACOS' is not an ECS operating system family: LINUX or one of" in violation.message
    assert "WINDOWS_SERVER_20H2_CORE" in violation.message


def test_a_gpu_count_that_is_not_a_number_is_refused_naming_the_field() -> None:
    spec = definition(
        containers=[
            {
                "name": "app",
                "image": "nginx",
                "memory": 128,
                "resourceRequirements": [{"type": "GPU", "value": "two"}],
            }
        ]
    )
    inspection = inspect_task(spec, None, POLICY)
    assert [v.field for v in inspection.violations] == [
        "spec.containerDefinitions[0].resourceRequirements[0].value"
    ]


def test_links_resolve_to_the_pod_itself_merged_with_extra_hosts() -> None:
    spec = definition(
        networkMode="bridge",
        containers=[
            {
                "name": "web",
                "image": "nginx",
                "memory": 128,
                "links": ["mysql", "redis:cache", "Legacy_DB:legacy_db"],
                "extraHosts": [
                    {"hostname": "api", "ipAddress": "10.0.0.9"},
                    {"hostname": "local", "ipAddress": "127.0.0.1"},
                ],
            },
            {"name": "mysql", "image": "mysql", "memory": 256},
            {"name": "redis", "image": "redis", "memory": 64},
        ],
    )
    pod = render(spec)["spec"]
    assert pod["hostAliases"] == [
        {"ip": "10.0.0.9", "hostnames": ["api"]},
        {"ip": "127.0.0.1", "hostnames": ["local", "mysql", "cache"]},
    ]
    unsupported = inspect_task(spec, None, POLICY).unsupported
    assert [(u.field, u.reason) for u in unsupported] == [
        ("spec.containerDefinitions[0].links[2]", NOT_HONOURED["containerDefinitions[].links"])
    ]
