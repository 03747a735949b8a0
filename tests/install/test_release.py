"""The release workflow publishes the image and the chart the install paths name, on a tag.

It cannot run here (no Docker, no registry): its shape is checked by parsing it, and the tool it
trusts for the version (tools/release_version.py) is run for real.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from support.install import CHART, MANIFESTS, ROOT, run_helm

WORKFLOW = ROOT / ".github" / "workflows" / "release.yaml"
TOOL = ROOT / "tools" / "release_version.py"
WELL_KNOWN_ACTIONS = {
    "actions/checkout",
    "actions/setup-python",
    "docker/setup-qemu-action",
    "docker/setup-buildx-action",
    "docker/login-action",
    "docker/build-push-action",
}


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release_version", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def workflow() -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def steps(job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow()["jobs"][job]["steps"]
    return found


def runs(job: str) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def test_it_runs_on_version_tags_only_with_least_privilege() -> None:
    flow = workflow()
    assert flow["on"] == {"push": {"tags": ["v*"]}}
    assert flow["permissions"] == {"contents": "read"}
    writers = {
        name for name, job in flow["jobs"].items() if job.get("permissions", {}).get("packages")
    }
    assert writers == {"image", "chart"}
    for name in writers:
        assert flow["jobs"][name]["permissions"] == {"contents": "read", "packages": "write"}


def test_actions_are_well_known_and_pinned_to_a_version() -> None:
    for job in workflow()["jobs"]:
        for step in steps(job):
            if "uses" in step:
                name, _, version = step["uses"].partition("@")
                assert name in WELL_KNOWN_ACTIONS, step["uses"]
                assert re.fullmatch(r"v\d+(\.\d+){0,2}", version), step["uses"]


def test_the_version_is_checked_before_anything_is_published() -> None:
    flow = workflow()
    assert "tools/release_version.py --tag" in runs("check")
    assert "make helm" in runs("check")  # the pinned helm, not whatever the runner has
    assert "helm lint --strict" in runs("check")
    assert flow["jobs"]["image"]["needs"] == "check"
    # The chart waits for the image: a published chart never names a missing image.
    assert flow["jobs"]["chart"]["needs"] == ["check", "image"]


def test_the_image_is_built_from_the_dockerfile_and_pushed_under_the_charts_name() -> None:
    job = workflow()["jobs"]["image"]
    assert job["env"]["IMAGE"] == "${{ needs.check.outputs.image }}"
    build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push"))
    assert build["with"]["file"] == "Dockerfile"
    assert build["with"]["push"] is True
    assert build["with"]["tags"] == "${{ env.IMAGE }}:${{ env.VERSION }}"
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    login = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/login"))
    assert login["with"]["registry"] == "ghcr.io"


def test_the_chart_is_packaged_and_pushed_as_an_oci_artifact() -> None:
    job = workflow()["jobs"]["chart"]
    assert job["env"]["CHART_REPOSITORY"] == "${{ needs.check.outputs.chart_repository }}"
    commands = runs("chart")
    assert ".tools/helm package charts/ecs-operator" in commands
    assert "helm registry login ghcr.io" in commands and "--password-stdin" in commands
    assert '.tools/helm push "dist/ecs-operator-${VERSION}.tgz" "${CHART_REPOSITORY}"' in commands


def test_the_tool_names_what_the_chart_and_manifests_install(tmp_path: Path) -> None:
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    output = tmp_path / "github-output"
    result = subprocess.run(
        [sys.executable, str(TOOL), "--tag", f"v{version}", "--github-output", str(output)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    published = dict(line.split("=", 1) for line in output.read_text().splitlines())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert published == {
        "version": version,
        "image": values["image"]["repository"],
        "chart_repository": "oci://ghcr.io/ecs-operator/charts",
    }
    assert result.stdout == output.read_text()
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert {"name": published["image"], "newTag": version} in kustomization["images"]


@pytest.mark.parametrize("tag", ["v9.9.9", "0.1.0", "v0.1", "release-1"])
def test_the_tool_refuses_a_tag_the_files_do_not_name(tag: str) -> None:
    result = subprocess.run(
        [sys.executable, str(TOOL), "--tag", tag], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "release_version:" in result.stderr


def test_the_tool_lists_each_file_that_disagrees(tmp_path: Path) -> None:
    tool = load_tool()
    for relative in (
        "pyproject.toml",
        "sandbox/pyproject.toml",
        "operator/ecs_operator/__init__.py",
        "charts/ecs-operator/Chart.yaml",
        "charts/ecs-operator/values.yaml",
        "manifests/kustomization.yaml",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    chart = tmp_path / "charts/ecs-operator/Chart.yaml"
    chart.write_text(re.sub(r'appVersion: "[^"]*"', 'appVersion: "0.0.9"', chart.read_text()))
    version, wrong = tool.problems(tool.versions(tmp_path), None)
    assert wrong == [f"Chart.yaml appVersion says '0.0.9', the release is '{version}'"]
    assert tool.image_problems(tmp_path) == []

    values = tmp_path / "charts/ecs-operator/values.yaml"
    values.write_text(values.read_text().replace("ghcr.io/ecs-operator/", "docker.io/someone/"))
    image_wrong = tool.image_problems(tmp_path)
    assert len(image_wrong) == 2
    assert "is not ghcr.io/OWNER/NAME" in image_wrong[0]


def test_the_packaged_chart_carries_the_release_version(tmp_path: Path) -> None:
    result = run_helm(
        "package", str(CHART), "--version", "9.8.7", "--app-version", "9.8.7",
        "--destination", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = run_helm("show", "chart", str(tmp_path / "ecs-operator-9.8.7.tgz"))
    chart = yaml.safe_load(shown.stdout)
    assert (chart["version"], chart["appVersion"]) == ("9.8.7", "9.8.7")
