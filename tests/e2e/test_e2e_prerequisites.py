"""Why the kind suite skips: the reasons `make test` shows where Docker or kind is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.kind_cluster import missing_prerequisite


def _tool(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_no_docker(bin_dir: Path) -> None:
    assert missing_prerequisite.__wrapped__() == "docker is not on PATH"


def test_docker_without_a_daemon(bin_dir: Path) -> None:
    _tool(
        bin_dir, "docker", 'echo "Server:" ; echo "Cannot connect to the Docker daemon" >&2; exit 1'
    )
    assert missing_prerequisite.__wrapped__() == (
        "`docker info` failed: Cannot connect to the Docker daemon"
    )


def test_docker_without_kind(bin_dir: Path) -> None:
    _tool(bin_dir, "docker", "exit 0")
    assert missing_prerequisite.__wrapped__() == "kind is not on PATH"
