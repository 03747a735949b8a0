"""Argo CD health checks (manifests/argocd/health/) and the manifests that ship them.

Every case of every `health_test.yaml` runs through the Lua script as Argo CD runs it (see
`argocd_health`); the test data must also be objects the CRDs admit, so a renamed status field
cannot leave a health check reading a field that no longer exists.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from lupa.lua51 import LuaError

from ecs_sandbox.schema import SchemaValidator
from support.argocd_health import (
    ROOT,
    HealthCase,
    health_cases,
    kind_dirs,
    load_yaml,
    run_health,
)

KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]

ARGOCD_DIR = ROOT / "manifests" / "argocd"
KINDS = {"TaskDefinition", "Task", "Service", "LoadBalancer"}
CASES = health_cases()


@cache
def crd_validators() -> dict[str, SchemaValidator]:
    """kind -> admission of its served version, for every CRD in crds/."""
    validators = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
        validators[crd["spec"]["names"]["kind"]] = SchemaValidator.from_crd_version(crd, version)
    return validators


def admit(obj: dict[str, Any]) -> None:
    """Admit `obj` as kube-apiserver does with fieldValidation=Strict; skip kinds without a CRD."""
    validator = crd_validators().get(obj["kind"])
    if validator is None:
        pytest.skip(f"crds/ has no CRD for {obj['kind']} yet")
    validator.admit(obj, None, strict=True)


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_argocd_cm", ROOT / "tools/gen_argocd_cm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the health checks -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_health_check(case: HealthCase) -> None:
    expected = {"status": case.expected["status"], "message": case.expected.get("message", "")}
    assert case.run() == expected


def test_every_kind_has_a_health_check() -> None:
    assert {d.name for d in kind_dirs()} == KINDS
    assert {d.parent.name for d in kind_dirs()} == {"ecs.operator.dev"}


@pytest.mark.parametrize("kind_dir", kind_dirs(), ids=lambda d: d.name)
def test_cases_cover_every_outcome(kind_dir: Path) -> None:
    cases = [c for c in CASES if c.kind_dir == kind_dir]
    assert {c.expected["status"] for c in cases} >= {"Healthy", "Progressing", "Degraded"}
    no_status = [c for c in cases if "status" not in load_yaml(kind_dir / c.input_path)]
    assert [c.expected["status"] for c in no_status] == ["Progressing"]
    assert any(
        c.expected["message"].startswith("Waiting for the operator to observe generation")
        for c in cases
    )


@pytest.mark.parametrize("kind_dir", kind_dirs(), ids=lambda d: d.name)
def test_every_testdata_file_is_a_case(kind_dir: Path) -> None:
    inputs = {c.input_path for c in CASES if c.kind_dir == kind_dir}
    on_disk = {f"testdata/{p.name}" for p in (kind_dir / "testdata").glob("*.yaml")}
    assert inputs == on_disk


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_testdata_is_admitted_by_the_crd(case: HealthCase) -> None:
    obj = load_yaml(case.kind_dir / case.input_path)
    assert obj["kind"] == case.kind_dir.name
    admit(obj)


def _code(script: str) -> str:
    """The script without its comments."""
    return "\n".join(line.split("--", 1)[0] for line in script.splitlines())


@pytest.mark.parametrize("kind_dir", kind_dirs(), ids=lambda d: d.name)
def test_scripts_use_only_what_argo_cd_loads(kind_dir: Path) -> None:
    code = _code((kind_dir / "health.lua").read_text())
    assert not re.findall(r"\b(?:string|math|io|os|debug|coroutine|require)\b", code)
    assert not re.findall(r":[A-Za-z_]+\(", code), "method calls need the string library"
    assert code.rstrip().endswith("return hs")


# --- the harness itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        'return {status = string.upper("healthy")}',
        'return {status = ("Healthy"):lower()}',
        'return {status = "Healthy", message = tostring(os.time())}',
        'return {status = "Healthy", message = tostring(math.floor(1.5))}',
    ],
)
def test_harness_refuses_libraries_argo_cd_does_not_load(script: str) -> None:
    with pytest.raises(LuaError):
        run_health(script, {})


def test_harness_maps_an_invalid_status_to_unknown() -> None:
    result = run_health('return {status = "Fine"}', {})
    assert result == {"status": "Unknown", "message": "Lua returned an invalid health status"}


def test_harness_converts_yaml_as_argo_cd_decodes_json(tmp_path: Path) -> None:
    path = tmp_path / "obj.yaml"
    path.write_text(
        "a: [1, {b: true}, x]\nc: null\nwhen: 2025-01-06T10:00:00Z\nn: {deep: {er: 2.5}}\n"
    )
    script = """
    local ok = obj.a[1] == 1 and obj.a[2].b == true and obj.a[3] == "x" and #obj.a == 3
      and obj.c == nil and obj.missing == nil and type(obj.when) == "string"
      and obj.n.deep.er == 2.5
    if ok then return {status = "Healthy", message = obj.when} end
    return {status = "Degraded"}
    """
    assert run_health(script, load_yaml(path)) == {
        "status": "Healthy",
        "message": "2025-01-06T10:00:00Z",
    }


# --- argocd-cm snippet and Helm values --------------------------------------------------------


def test_generated_snippets_are_up_to_date() -> None:
    for path, text in load_generator().render().items():
        assert path.read_text() == text, f"{path} is stale: run tools/gen_argocd_cm.py"


def test_snippets_carry_every_script_verbatim() -> None:
    scripts = {
        f"resource.customizations.health.ecs.operator.dev_{d.name}": (d / "health.lua").read_text()
        for d in kind_dirs()
    }
    patch = yaml.safe_load((ARGOCD_DIR / "argocd-cm-health.yaml").read_text())
    values = yaml.safe_load((ARGOCD_DIR / "argo-cd-values-health.yaml").read_text())
    assert (patch["kind"], patch["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert patch["data"] == scripts
    assert values["configs"]["cm"] == scripts


def test_generator_check_mode_reports_staleness(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = load_generator()
    assert generator.main(["--check"]) == 0
    monkeypatch.setattr(generator, "render", lambda: {generator.CM_PATCH: "stale\n"})
    assert generator.main(["--check"]) == 1


def test_kubectl_patch_merges_the_health_checks_into_argocd_cm(
    kubectl: KubectlRunner, namespace: str
) -> None:
    existing = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"}}
    existing["data"] = {"url": "https://argo.test"}
    created = kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(existing))
    assert created.returncode == 0, created.stderr
    patch_file = str(ARGOCD_DIR / "argocd-cm-health.yaml")
    patched = kubectl(
        "patch", "configmap", "argocd-cm", "-n", namespace, "--patch-file", patch_file
    )
    assert patched.returncode == 0, patched.stderr
    got = kubectl("get", "configmap", "argocd-cm", "-n", namespace, "-o", "json")
    data = json.loads(got.stdout)["data"]
    assert data.pop("url") == "https://argo.test"
    assert data == yaml.safe_load(Path(patch_file).read_text())["data"]


# --- Applications and the sample app -----------------------------------------------------------


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


SAMPLE_OBJECTS = [
    (path.name, doc)
    for path in sorted((ARGOCD_DIR / "sample-app").glob("*.yaml"))
    for doc in _documents(path)
]


@pytest.mark.parametrize("obj", [o for _, o in SAMPLE_OBJECTS], ids=[n for n, _ in SAMPLE_OBJECTS])
def test_sample_app_objects_are_admitted_by_the_crds(obj: dict[str, Any]) -> None:
    annotations = obj["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/sync-options"] == "SkipDryRunOnMissingResource=true"
    admit(obj)


def test_sample_app_has_one_of_each_kind_and_the_service_syncs_last() -> None:
    waves = {
        obj["kind"]: int(obj["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        for _, obj in SAMPLE_OBJECTS
    }
    assert set(waves) == {"TaskDefinition", "Service", "LoadBalancer"}
    assert waves["Service"] > max(waves["TaskDefinition"], waves["LoadBalancer"])


@pytest.mark.parametrize("name", ["application-ecs-operator.yaml", "application-sample-app.yaml"])
def test_applications_point_at_paths_in_this_repository(name: str) -> None:
    (app,) = _documents(ARGOCD_DIR / name)
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    assert (ROOT / app["spec"]["source"]["path"]).is_dir()
    assert app["spec"]["source"]["repoURL"] == "https://github.com/your-org/ecs-operator.git"


def test_sample_app_ignores_desired_count_and_keeps_it_on_sync() -> None:
    (app,) = _documents(ARGOCD_DIR / "application-sample-app.yaml")
    assert app["spec"]["ignoreDifferences"] == [
        {"group": "ecs.operator.dev", "kind": "Service", "jsonPointers": ["/spec/desiredCount"]}
    ]
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]
