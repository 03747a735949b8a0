"""Fixtures of the conformance suite: the session's Widget CRD on each cluster target."""

from __future__ import annotations

import pytest

from support.helpers import ClusterTarget
from support.widgets import Widgets, crd_manifest, ensure_crd


@pytest.fixture(scope="session")
def widget_crd(cluster: ClusterTarget) -> None:
    ensure_crd(cluster, crd_manifest())


@pytest.fixture
def widgets(cluster: ClusterTarget, widget_crd: None) -> Widgets:
    return Widgets(cluster)
