"""Helpers shared by the test suites (the fixtures that use them are in tests/conftest.py).

- `wait_for(predicate, timeout)`: poll until a predicate holds (never a fixed sleep).
- `ClusterTarget`: one cluster reached through a kubeconfig — the sandbox or a real cluster —
  with a raw HTTP session (`target.http.get("/api/v1/namespaces")`), a `kubernetes` ApiClient
  and a kubectl runner, so one test body runs unchanged against both.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

T = TypeVar("T")

KUBECTL = os.environ.get("ECS_OPERATOR_KUBECTL", "/usr/bin/kubectl")
REAL_CLUSTER_ENV = "ECS_OPERATOR_TEST_KUBECONFIG"
TARGET_ENV = "ECS_OPERATOR_TEST_TARGET"


def real_target_selected() -> bool:
    """True in the real-cluster pass (ECS_OPERATOR_TEST_TARGET=real)."""
    return os.environ.get(TARGET_ENV) == "real"


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str | Callable[[], str] = "condition not met",
) -> T:
    """Call `predicate` until it returns something truthy and return that; AssertionError after
    `timeout` seconds (the message may be a callable, to describe the last state seen)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout} s: {text}")
        time.sleep(interval)


def holds_for(violation: Callable[[], str | None], seconds: float, interval: float = 0.1) -> None:
    """Poll `violation` (None while all is well, else what is wrong) until `seconds` have
    passed: AssertionError with its text at the first violation seen. For what must *not*
    happen within a bounded time, such as a follow-up the operator would start by itself."""
    deadline = time.monotonic() + seconds
    while True:
        found = violation()
        assert found is None, found
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


def unique_name(prefix: str = "t") -> str:
    """A DNS-1123 name unlikely to collide with anything else in the cluster."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class ApiSession(requests.Session):
    """A requests session that prefixes paths with the API server URL and carries its auth."""

    def __init__(self, base_url: str, configuration: k8s_client.Configuration) -> None:
        super().__init__()
        # The kubeconfig alone decides TLS: with trust_env, REQUESTS_CA_BUNDLE would replace
        # the cluster's CA for every request.
        self.trust_env = False
        self.base_url = base_url.rstrip("/")
        token = (configuration.api_key or {}).get("authorization") or (
            configuration.api_key or {}
        ).get("BearerToken")
        if token:
            prefix = (configuration.api_key_prefix or {}).get("authorization", "")
            self.headers["Authorization"] = f"{prefix} {token}".strip()
        if configuration.cert_file and configuration.key_file:
            self.cert = (configuration.cert_file, configuration.key_file)
        self.verify = configuration.ssl_ca_cert or configuration.verify_ssl

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if isinstance(url, str) and url.startswith("/"):
            url = self.base_url + url
        kwargs.setdefault("timeout", 30)
        # Per request: requests prefers REQUESTS_CA_BUNDLE to a session's own CA file.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


def watch_lines(response: requests.Response) -> Iterator[dict[str, Any]]:
    """Decode a streaming watch response (`stream=True`) into events, one per line."""
    for line in response.iter_lines():
        if line:
            yield json.loads(line)


@dataclass
class ClusterTarget:
    """A cluster reachable through `kubeconfig`; `sandbox` is the SandboxThread when local."""

    name: str
    kubeconfig: Path
    sandbox: Any = None
    configuration: k8s_client.Configuration = field(init=False)
    http: ApiSession = field(init=False)

    def __post_init__(self) -> None:
        self.configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(
            config_file=str(self.kubeconfig), client_configuration=self.configuration
        )
        self.http = ApiSession(self.configuration.host, self.configuration)

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox is not None

    @property
    def slowness(self) -> float:
        """How much longer than on the sandbox a cluster-side step may take here: a real node is
        declared lost after kube-controller-manager's grace period, and kwok moves pods through
        its stages with real API round trips."""
        return 1.0 if self.is_sandbox else 4.0

    def api_client(self) -> k8s_client.ApiClient:
        return k8s_client.ApiClient(self.configuration)

    def kubectl(
        self,
        *args: str,
        cache_dir: Path,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        return run_kubectl(self.kubeconfig, cache_dir, *args, input=input, timeout=timeout)

    def create_namespace(self, prefix: str = "t") -> str:
        name = unique_name(prefix)
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        response = self.http.post("/api/v1/namespaces", json=body)
        assert response.status_code == 201, response.text
        return name

    def delete_namespace(self, name: str) -> None:
        self.http.delete(f"/api/v1/namespaces/{name}")


def run_kubectl(
    kubeconfig: Path,
    cache_dir: Path,
    *args: str,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl against `kubeconfig` with a private discovery cache."""
    command = [KUBECTL, f"--kubeconfig={kubeconfig}", f"--cache-dir={cache_dir}", *args]
    return subprocess.run(
        command, input=input, capture_output=True, text=True, timeout=timeout, check=False
    )


def service_account_kubeconfig(
    target: ClusterTarget,
    namespace: str,
    account: str,
    path: Path,
    cache_dir: Path,
    server: str | None = None,
) -> Path:
    """A kubeconfig that acts as ServiceAccount `namespace/account` with a token from the
    TokenRequest API (`kubectl create token`), so RBAC judges it as it would the real Pod;
    `server` (plain http) instead of the target's address: a proxy in front of it."""
    result = run_kubectl(
        target.kubeconfig, cache_dir, "create", "token", account, "-n", namespace,
        "--duration=24h",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cluster = (
        {"server": server}
        if server is not None
        else {
            "server": target.configuration.host,
            "certificate-authority": target.configuration.ssl_ca_cert,
        }
    )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": result.stdout.strip()}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": account}}],
        "current-context": "c",
    }
    path.write_text(json.dumps(config))
    return path
