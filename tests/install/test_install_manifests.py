"""manifests/ (the Kustomize install) and the copies it shares with the chart."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import kubernetes_validate
import pytest
import yaml

from support.install import (
    CHART,
    CRDS,
    KUBERNETES_VERSION,
    MANIFESTS,
    ROOT,
    of_kind,
    only,
    render,
)
from support.install import (
    kustomize_build as build,
)

NAMESPACE = "ecs-operator-system"


def load_sync_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "sync_chart_crds", ROOT / "tools" / "sync_chart_crds.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def crd_sources() -> list[Path]:
    sources = sorted(CRDS.glob("*.yaml"))
    assert sources, "crds/ is empty"
    return sources


def test_copies_are_current() -> None:
    """Chart crds/, manifests/crds/ (and its kustomization), manifests/rbac.yaml: all fresh."""
    sync = load_sync_tool()
    stale = sync.stale_files(sync.expected_files())
    assert not stale, f"stale copies {[str(p.relative_to(ROOT)) for p in stale]}: make chart-crds"


@pytest.mark.parametrize("folder", [CHART / "crds", MANIFESTS / "crds"], ids=["chart", "manifests"])
def test_crd_copies_are_identical_to_crds(folder: Path) -> None:
    copies = sorted(
        path.name for path in folder.glob("*.yaml") if path.name != "kustomization.yaml"
    )
    assert copies == [path.name for path in crd_sources()]
    for source in crd_sources():
        assert (folder / source.name).read_bytes() == source.read_bytes(), source.name


def test_stale_copy_is_detected(tmp_path: Path) -> None:
    """The freshness check can fail: an edited copy and an orphan copy are both reported."""
    sync = load_sync_tool()
    wanted = sync.expected_files()
    copy = CHART / "crds" / crd_sources()[0].name
    edited = {**wanted, copy: wanted[copy] + "# edited\n"}
    assert copy in sync.stale_files(edited)
    orphan = {path: text for path, text in wanted.items() if path != copy}
    assert copy in sync.stale_files(orphan)


def test_kustomization_lists_every_crd() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "crds" / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [path.name for path in crd_sources()]
    top = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert "crds" in top["resources"]
    for resource in top["resources"]:
        assert (MANIFESTS / resource).exists(), resource


def test_kustomize_builds_the_whole_install() -> None:
    objects = build()
    crds = {obj["metadata"]["name"]: obj for obj in of_kind(objects, "CustomResourceDefinition")}
    expected = {}
    for path in crd_sources():
        crd = yaml.safe_load(path.read_text())
        expected[crd["metadata"]["name"]] = crd
    assert crds == expected, "kustomize must not alter the CRDs (e.g. the image transformer)"
    only(objects, "Namespace", NAMESPACE)
    only(objects, "ServiceAccount", "ecs-operator")
    only(objects, "ClusterRole", "ecs-operator")
    only(objects, "ClusterRoleBinding", "ecs-operator")
    for role in ("admin", "edit", "view"):
        only(objects, "ClusterRole", f"ecs-operator-{role}")
    deployment = only(objects, "Deployment", "ecs-operator")
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/ecs-operator/ecs-operator:0.1.0"


def test_built_in_objects_are_valid() -> None:
    for obj in build():  # every kind here is built in, CustomResourceDefinition included
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_manifests_run_the_same_pod_as_the_chart_defaults() -> None:
    manifests = only(build(), "Deployment", "ecs-operator")["spec"]["template"]["spec"]
    chart = only(render(), "Deployment", "ecs-operator")["spec"]["template"]["spec"]
    assert manifests == chart
