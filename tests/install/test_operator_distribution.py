"""The operator's distribution carries the operator only: the sandbox cluster and the demo are
the `ecs-sandbox` distribution (sandbox/), and none of their dependencies (cel-python and its
lark, rich and its pygments, jsonschema) is the operator's or is loaded by `ecs-operator`."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys
import textwrap
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from support.install import ROOT

# Distributions, and the top-level modules they install.
SANDBOX_ONLY_DISTRIBUTIONS = {"ecs-sandbox", "cel-python", "lark", "rich", "pygments", "jsonschema"}
SANDBOX_ONLY_MODULES = {"ecs_sandbox", "celpy", "lark", "rich", "pygments", "jsonschema"}

# Imports `ecs_operator.cli` as `ecs-operator` does, in an environment reduced to what the
# operator's wheel brings: every installed distribution outside the closure of its runtime
# requirements (the test tools, the sandbox) is hidden, so an optional import of one fails as
# it would in the image. (It matters: `kubernetes` tries `kubernetes_validate`, a test tool here,
# which would load jsonschema.) Prints the loaded modules as JSON.
PRODUCTION_IMPORT = textwrap.dedent(
    """
    import importlib.metadata as metadata, json, sys
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    def closure(name):
        seen, todo = set(), [name]
        while todo:
            dist = canonicalize_name(todo.pop())
            if dist in seen:
                continue
            seen.add(dist)
            try:
                requirements = metadata.requires(dist) or []
            except metadata.PackageNotFoundError:
                continue
            for text in requirements:
                requirement = Requirement(text)
                if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                    todo.append(requirement.name)
        return seen

    runtime = closure("ecs-operator")
    hidden = {
        module
        for module, dists in metadata.packages_distributions().items()
        if not any(canonicalize_name(dist) in runtime for dist in dists)
    }

    class Hide:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in hidden:
                raise ModuleNotFoundError(f"No module named {name!r} (hidden)", name=name)
            return None

    sys.meta_path.insert(0, Hide())
    import ecs_operator.cli
    print(json.dumps(sorted(sys.modules)))
    """
)


def _top_level(modules: list[str]) -> set[str]:
    return {module.partition(".")[0] for module in modules}


def test_importing_the_operator_cli_loads_no_sandbox_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import ecs_operator.cli, sys; print(sorted(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    loaded = _top_level(ast.literal_eval(result.stdout))
    # jsonschema is not asserted here: in the test environment `kubernetes` finds the test
    # tool kubernetes_validate, which imports it; the next test checks it as the image runs.
    assert loaded & (SANDBOX_ONLY_MODULES - {"jsonschema"}) == set()


def test_in_the_operator_alone_its_cli_loads_no_sandbox_dependency() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_IMPORT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    loaded = _top_level(json.loads(result.stdout))
    assert "ecs_operator" in loaded and "kopf" in loaded
    assert loaded & SANDBOX_ONLY_MODULES == set()


def _requirements(distribution: str) -> list[Requirement]:
    """The runtime requirements of an installed distribution (extras left out)."""
    found = [Requirement(text) for text in importlib.metadata.requires(distribution) or ()]
    return [r for r in found if r.marker is None or r.marker.evaluate({"extra": ""})]


def test_the_operator_distribution_requires_nothing_of_the_sandbox() -> None:
    names = {canonicalize_name(r.name) for r in _requirements("ecs-operator")}
    assert {"kopf", "kubernetes", "pydantic"} <= names
    assert names & SANDBOX_ONLY_DISTRIBUTIONS == set()


def test_nor_do_the_operator_dependencies_bring_it() -> None:
    seen: set[str] = set()
    todo = ["ecs-operator"]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            todo.extend(r.name for r in _requirements(name))
        except importlib.metadata.PackageNotFoundError:
            continue
    assert seen & SANDBOX_ONLY_DISTRIBUTIONS == set()


def test_the_sandbox_is_another_distribution_that_does_not_require_the_operator() -> None:
    names = {canonicalize_name(r.name) for r in _requirements("ecs-sandbox")}
    assert {"aiohttp", "cel-python", "rich"} <= names
    assert "ecs-operator" not in names
    files = importlib.metadata.files("ecs-operator") or []
    assert not any("ecs_sandbox" in str(path) for path in files)


def test_the_operator_wheel_packs_only_the_operator_folder() -> None:
    """The root pyproject builds ecs_operator alone (the Dockerfile's wheel); sandbox/ has its
    own pyproject."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert root["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        "operator/ecs_operator"
    ]
    assert not (ROOT / "operator" / "ecs_operator" / "sandbox").exists()
    assert not (ROOT / "operator" / "ecs_operator" / "demo.py").exists()
    sandbox = tomllib.loads((ROOT / "sandbox" / "pyproject.toml").read_text())
    assert sandbox["project"]["name"] == "ecs-sandbox"
    assert sandbox["project"]["scripts"] == {"ecs-sandbox": "ecs_sandbox.__main__:main"}
