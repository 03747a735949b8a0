"""What the kubectl plugin asks of `kube.client`: the namespace and context a kubeconfig
names (as kubectl picks them), and a Pod's log (the `log` subresource, plain text)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from ecs_operator.kube.client import ConfigError, KubeClient, KubeError, kubeconfig_namespace


def write_kubeconfig(path: Path) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "one", "cluster": {"server": "http://127.0.0.1:1111"}},
            {"name": "two", "cluster": {"server": "http://127.0.0.1:2222"}},
        ],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": "a", "context": {"cluster": "one", "user": "u", "namespace": "team"}},
            {"name": "b", "context": {"cluster": "two", "user": "u"}},
        ],
        "current-context": "a",
    }
    path.write_text(json.dumps(config))
    return str(path)


def test_the_namespace_is_the_chosen_context_s(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config")
    assert kubeconfig_namespace(path) == "team"
    assert kubeconfig_namespace(path, "b") is None
    with pytest.raises(ConfigError, match="context 'c' not found"):
        kubeconfig_namespace(path, "c")
    with pytest.raises(ConfigError):
        kubeconfig_namespace(str(tmp_path / "absent"))


def test_a_client_for_another_context_talks_to_its_cluster(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config")
    client = KubeClient.from_kubeconfig(path, context="b", threads=1)
    try:
        assert client._api.configuration.host == "http://127.0.0.1:2222"
    finally:
        client.close()


class Answer:
    def __init__(self, status: int, data: bytes) -> None:
        self.status = status
        self.data = data
        self.headers: dict[str, str] = {}


def client_answering(*answers: Answer) -> tuple[KubeClient, mock.MagicMock]:
    api = mock.MagicMock()
    api.param_serialize.side_effect = lambda **kw: (
        kw["method"],
        "http://api" + kw["resource_path"],
        kw["header_params"],
        None,
        None,
    )
    api.rest_client.pool_manager.request.side_effect = list(answers)
    return KubeClient(api, threads=1, max_attempts=2, max_backoff=0.0), api


def test_a_pod_log_is_read_as_text_with_the_container_and_tail() -> None:
    client, api = client_answering(Answer(200, "line 1\nline \xe9\n".encode()))
    try:
        text = asyncio.run(client.pod_log("ns", "web-1", container="app", tail_lines=5))
    finally:
        client.close()
    assert text == "line 1\nline \xe9\n"
    [call] = api.rest_client.pool_manager.request.call_args_list
    method, url = call.args
    assert method == "GET"
    assert url == "http://api/api/v1/namespaces/ns/pods/web-1/log?container=app&tailLines=5"
    assert call.kwargs["headers"]["Accept"].startswith("text/plain")
    assert client.writes == 0


def test_a_log_the_server_cannot_give_is_a_kube_error_with_its_message() -> None:
    status: dict[str, Any] = {"kind": "Status", "reason": "BadRequest", "message": "no kubelet"}
    client, _ = client_answering(Answer(400, json.dumps(status).encode()))
    try:
        with pytest.raises(KubeError) as raised:
            asyncio.run(client.pod_log("ns", "web-1"))
    finally:
        client.close()
    assert (raised.value.code, raised.value.message) == (400, "no kubelet")


def test_a_plain_text_error_body_is_kept_as_the_message() -> None:
    client, _ = client_answering(Answer(404, b"404 page not found\n"))
    try:
        with pytest.raises(KubeError) as raised:
            asyncio.run(client.request("GET", "/apis/nothing/v1"))
    finally:
        client.close()
    assert raised.value.message == "404 page not found\n"


def test_json_requests_still_decode_and_retry() -> None:
    client, api = client_answering(
        Answer(503, b'{"reason": "ServiceUnavailable", "message": "busy"}'),
        Answer(200, b'{"kind": "Pod"}'),
    )
    try:
        assert asyncio.run(client.request("GET", "/api/v1/namespaces/ns/pods/p")) == {"kind": "Pod"}
    finally:
        client.close()
    assert api.rest_client.pool_manager.request.call_count == 2
