"""What a release publishes, checked against every place that names it.

The release workflow (.github/workflows/release.yaml) runs this on a tag before it publishes
anything: `python tools/release_version.py --tag v0.1.0` prints

    version=0.1.0
    image=ghcr.io/ecs-operator/ecs-operator
    chart_repository=oci://ghcr.io/ecs-operator/charts

(and appends the same lines to `--github-output FILE`) and exits 0 when the tag, the operator's
distribution (pyproject.toml and `ecs_operator.__version__`), the sandbox's, the chart
(`version` and `appVersion`, the default image tag) and the kubectl install's image tag
(manifests/kustomization.yaml) all agree, and the chart and the kubectl install name the same
image repository, on ghcr.io; otherwise it lists each disagreement and exits 1. So the image
pushed is exactly the one the published chart and manifests/ install. Without `--tag` it checks
the files among themselves.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "ghcr.io"
TAG = re.compile(r"^v(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$")


def versions(root: Path = ROOT) -> dict[str, str]:
    """Where each version is written, and what it says."""
    found: dict[str, str] = {}
    for label, path in (
        ("pyproject.toml", root / "pyproject.toml"),
        ("sandbox/pyproject.toml", root / "sandbox" / "pyproject.toml"),
    ):
        found[label] = str(tomllib.loads(path.read_text())["project"]["version"])
    init = (root / "operator" / "ecs_operator" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', init, re.MULTILINE)
    found["ecs_operator.__version__"] = match[1] if match else "(missing)"
    chart = yaml.safe_load((root / "charts" / "ecs-operator" / "Chart.yaml").read_text())
    found["Chart.yaml version"] = str(chart["version"])
    found["Chart.yaml appVersion"] = str(chart["appVersion"])
    image = image_repository(root)
    kustomization = yaml.safe_load((root / "manifests" / "kustomization.yaml").read_text())
    tags = [i.get("newTag") for i in kustomization.get("images") or () if i.get("name") == image]
    found["manifests/kustomization.yaml newTag"] = str(tags[0]) if tags else "(missing)"
    return found


def image_repository(root: Path = ROOT) -> str:
    """The chart's default image repository (values.yaml `image.repository`)."""
    values = yaml.safe_load((root / "charts" / "ecs-operator" / "values.yaml").read_text())
    return str(values["image"]["repository"])


def chart_repository(image: str) -> str:
    """Where the chart goes: `charts` beside the image, `oci://ghcr.io/OWNER/charts`."""
    return "oci://" + image.rsplit("/", 1)[0] + "/charts"


def image_problems(root: Path = ROOT) -> list[str]:
    image = image_repository(root)
    wrong = []
    if not image.startswith(f"{REGISTRY}/") or image.count("/") != 2:
        wrong.append(f"values.yaml image.repository {image!r} is not {REGISTRY}/OWNER/NAME")
    kustomization = yaml.safe_load((root / "manifests" / "kustomization.yaml").read_text())
    names = [i.get("name") for i in kustomization.get("images") or ()]
    if image not in names:
        wrong.append(f"manifests/kustomization.yaml images name {names}, not {image!r}")
    return wrong


def problems(found: dict[str, str], tag: str | None) -> tuple[str, list[str]]:
    """The release version and what disagrees with it (empty when all agree)."""
    wrong: list[str] = []
    if tag is not None:
        match = TAG.match(tag)
        if match is None:
            return "", [f"tag {tag!r} is not vMAJOR.MINOR.PATCH[-PRERELEASE]"]
        version = match[1]
    else:
        version = found["pyproject.toml"]
    for where, value in found.items():
        if value != version:
            wrong.append(f"{where} says {value!r}, the release is {version!r}")
    return version, wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the release version after checking every file that names it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--tag", help="the git tag being released, e.g. v0.1.0")
    parser.add_argument(
        "--github-output", type=Path, help="also append the key=value lines to this file"
    )
    args = parser.parse_args(argv)
    version, wrong = problems(versions(), args.tag)
    wrong += image_problems()
    if wrong:
        for line in wrong:
            print(f"release_version: {line}", file=sys.stderr)
        return 1
    image = image_repository()
    lines = f"version={version}\nimage={image}\nchart_repository={chart_repository(image)}\n"
    print(lines, end="")
    if args.github_output is not None:
        with args.github_output.open("a") as output:
            output.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
