"""The Dockerfile's rules, checked by parsing it (no Docker engine here to build it)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from support.install import ROOT

DOCKERFILE = ROOT / "Dockerfile"
PINNED_IMAGE = re.compile(r"^[\w./-]+(:[\w.-]*\d[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        values = [value for key, value in self.instructions if key == keyword]
        return values[-1] if values else None


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Build args declared before the first FROM, and the stages with images resolved."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, rest in instructions(text):
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            image, _, alias = re.sub(r"^--platform=\S+\s+", "", rest).partition(" AS ")
            resolved = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m[1] or m[2]], image.strip())
            stages.append(Stage(resolved, alias.strip() or None))
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def exec_form(value: str | None) -> list[str] | None:
    """The JSON array of an exec-form ENTRYPOINT/CMD; None for the shell form or absence."""
    try:
        parsed = json.loads(value or "")
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, list) else None


def problems(text: str) -> list[str]:
    _, stages = parse(text)
    found = []
    if len(stages) < 2:
        found.append("not multi-stage: build in one stage, run in another")
    names = {stage.name for stage in stages if stage.name}
    for stage in stages:
        if stage.image in names:
            continue
        if stage.image.split("/")[-1].split("@")[0].endswith(":latest"):
            found.append(f"FROM {stage.image}: no latest tags")
        elif not PINNED_IMAGE.match(stage.image) or ":" not in stage.image.split("/")[-1]:
            found.append(f"FROM {stage.image}: pin a version or digest")
    if not stages:
        return found
    final = stages[-1]
    user = final.last("USER")
    if user is None or not re.fullmatch(r"[1-9]\d*(:\d+)?", user):
        found.append(f"USER {user}: the final stage needs a numeric non-root USER")
    entrypoint = final.last("ENTRYPOINT")
    if exec_form(entrypoint) != ["ecs-operator", "run"]:
        found.append(f'ENTRYPOINT {entrypoint}: must be ["ecs-operator", "run"] (exec form)')
    command = final.last("CMD")
    if "--health-address=0.0.0.0" not in (exec_form(command) or []):
        found.append(f"CMD {command}: must pass --health-address=0.0.0.0 (the kubelet probes it)")
    environment = " ".join(value for key, value in final.instructions if key == "ENV")
    if "PYTHONUNBUFFERED=1" not in environment:
        found.append("ENV PYTHONUNBUFFERED=1 missing in the final stage")
    return found


def test_dockerfile_follows_the_rules() -> None:
    assert problems(DOCKERFILE.read_text()) == []


def test_runtime_stage_installs_the_built_wheel() -> None:
    _, stages = parse(DOCKERFILE.read_text())
    builder, runtime = stages[0], stages[-1]
    assert "pip wheel" in (builder.last("RUN") or "")
    install = runtime.last("RUN") or ""
    assert f"from={builder.name}" in install
    assert "pip install --no-index" in install


def test_rule_violations_are_reported() -> None:
    bad = "FROM python:latest\nUSER app\nENTRYPOINT ecs-operator run\nCMD []\n"
    assert problems(bad) == [
        "not multi-stage: build in one stage, run in another",
        "FROM python:latest: no latest tags",
        "USER app: the final stage needs a numeric non-root USER",
        'ENTRYPOINT ecs-operator run: must be ["ecs-operator", "run"] (exec form)',
        "CMD []: must pass --health-address=0.0.0.0 (the kubelet probes it)",
        "ENV PYTHONUNBUFFERED=1 missing in the final stage",
    ]
    assert (
        problems("FROM python AS b\nFROM b\nUSER 0\n")[0] == "FROM python: pin a version or digest"
    )


def test_dockerignore_sends_only_what_the_build_needs() -> None:
    rules = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*", "exclude everything, then allow what the wheel needs"
    allowed = {line[1:] for line in rules if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "requirements/lock.txt", "operator/"}
