"""Resilience scenarios (targets R1, R2): the integration fixtures, on a cluster of their own.

The fixtures are the integration suite's and the shared ones (imported, not copied), declared
again here so that pytest gives this folder fresh instances: its own sandbox (same fast
timings), its own `ecs-operator run` process and CRDs. API faults and SIGKILLs therefore never
reach the cluster the integration suite uses, and two operators never share one sandbox.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TESTS = Path(__file__).resolve().parents[1]


def _conftest(relative: str) -> ModuleType:
    """A conftest module, under the name pytest's importlib mode gives it (imported once)."""
    name = "tests." + relative.removesuffix(".py").replace("/", ".")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / relative)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_shared = _conftest("conftest.py")
_integration = _conftest("integration/conftest.py")

sandbox_thread = _shared.sandbox_thread
sandbox = _shared.sandbox
kubeconfig = _shared.kubeconfig
sandbox_target = _shared.sandbox_target
target = _shared.target
namespace = _shared.namespace
kubectl = _shared.kubectl
crds = _integration.crds
operator = _integration.operator
default_operator = _integration.default_operator
ecs = _integration.ecs
pytest_runtest_makereport = _integration.pytest_runtest_makereport
