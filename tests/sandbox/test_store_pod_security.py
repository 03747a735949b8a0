"""Store (no HTTP): Pod Security Admission for namespaces labelled
`pod-security.kubernetes.io/enforce`, refusing at create as the API server does."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_sandbox.errors import ApiError
from ecs_sandbox.store import Store

ENFORCE = "pod-security.kubernetes.io/enforce"
HARDENED = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


@pytest.fixture
def store() -> Store:
    return Store()


def namespace(store: Store, name: str, level: str | None) -> str:
    labels = {ENFORCE: level} if level else {}
    namespaces = store.registry.get("", "v1", "namespaces")
    store.create(namespaces, None, {"metadata": {"name": name, "labels": labels}})
    return name


def pod(name: str, context: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "main", "image": "busybox", "securityContext": context}],
            **spec,
        },
    }


def create(store: Store, where: str, body: dict[str, Any]) -> None:
    store.create(store.registry.get("", "v1", "pods"), where, body)


def refusal(store: Store, where: str, body: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as caught:
        create(store, where, body)
    assert caught.value.code == 403
    return str(caught.value.message)


def test_restricted_admits_a_hardened_pod_and_refuses_the_rest(store: Store) -> None:
    where = namespace(store, "locked", "restricted")
    create(store, where, pod("ok", HARDENED))
    message = refusal(store, where, pod("root", {**HARDENED, "runAsNonRoot": None}))
    assert message.startswith('pods "root" is forbidden: violates PodSecurity "restricted:latest"')
    assert "runAsNonRoot != true (containers ['main'])" in message
    escalating = {**HARDENED, "allowPrivilegeEscalation": True}
    assert "allowPrivilegeEscalation != false" in refusal(store, where, pod("esc", escalating))
    keeping = {**HARDENED, "capabilities": {"add": ["CHOWN"]}}
    message = refusal(store, where, pod("caps", keeping))
    assert 'must drop "ALL"' in message and "only NET_BIND_SERVICE may be added" in message
    unconfined = pod("seccomp", HARDENED, securityContext={})
    assert "seccompProfile" in refusal(store, where, unconfined)


def test_baseline_refuses_only_what_escapes_the_pod(store: Store) -> None:
    where = namespace(store, "base", "baseline")
    create(store, where, pod("plain", {}))
    assert "privileged" in refusal(store, where, pod("priv", {"privileged": True}))
    assert "host namespaces (hostNetwork=true)" in refusal(
        store, where, pod("host", {}, hostNetwork=True)
    )
    volumes = [{"name": "root", "hostPath": {"path": "/"}}]
    assert "hostPath volumes ['root']" in refusal(store, where, pod("hp", {}, volumes=volumes))


def test_an_unlabelled_namespace_enforces_nothing_and_a_bad_level_enforces_restricted(
    store: Store,
) -> None:
    create(store, namespace(store, "open", None), pod("priv", {"privileged": True}))
    where = namespace(store, "typo", "Restricted")
    assert 'violates PodSecurity "restricted:latest"' in refusal(store, where, pod("p", {}))
