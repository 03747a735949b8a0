"""Fixtures of the install tests (helpers shared with the test modules: support/install.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest

KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def delete_afterwards(kubectl: KubectlRunner) -> Iterator[list[tuple[str, str]]]:
    """(kind, name) of cluster-scoped objects a test creates on the sandbox, deleted afterwards
    (a namespace takes its contents with it).

    CRDs the install tests apply stay: they are the same CRDs every other suite uses, and
    deleting them would delete those suites' objects.
    """
    created: list[tuple[str, str]] = []
    yield created
    for kind, name in created:
        kubectl("delete", kind, name, "--ignore-not-found", "--wait=false")
