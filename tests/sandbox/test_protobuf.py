"""Kubernetes protobuf request bodies: the decoder on hand-encoded messages, and the real kubectl
generators (`kubectl create secret|configmap|namespace|serviceaccount`) against the sandbox."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecs_sandbox.errors import ApiError
from ecs_sandbox.protobuf import MAGIC, MEDIA_TYPE, decode_object
from support.helpers import ClusterTarget, wait_for

pytestmark = pytest.mark.sandbox_only

# -- a tiny protobuf encoder (wire format only), enough to build what kubectl sends ------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers are ten-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def vint(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def ld(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return key(number, 2) + varint(len(data)) + data


def fixed64(number: int, value: int) -> bytes:
    return key(number, 1) + value.to_bytes(8, "little")


def fixed32(number: int, value: int) -> bytes:
    return key(number, 5) + value.to_bytes(4, "little")


def entries(number: int, mapping: dict[str, Any]) -> bytes:
    return b"".join(ld(number, ld(1, k) + ld(2, v)) for k, v in mapping.items())


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    unknown = ld(1, ld(1, api_version) + ld(2, kind)) + ld(2, raw) + ld(3, encoding) + ld(4, "")
    return MAGIC + unknown


def go_meta(name: str, **extra: bytes) -> bytes:
    """ObjectMeta as Go's marshaller writes it: every non-pointer field, zero or not."""
    return (
        ld(1, name)
        + ld(2, "")
        + ld(3, "")
        + ld(4, "")
        + ld(5, "")
        + ld(6, "")
        + vint(7, 0)
        + ld(8, vint(1, 0) + vint(2, 0))
        + b"".join(extra.values())
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- decoder ---------------------------------------------------------------------------------


def test_secret_with_full_metadata() -> None:
    owner = ld(5, "v1") + ld(1, "ConfigMap") + ld(3, "owner") + ld(4, "u-1") + vint(6, 1)
    meta = (
        ld(1, "s")
        + ld(3, "team")
        + ld(5, "uid-1")
        + ld(6, "42")
        + vint(7, 3)
        + ld(8, vint(1, 1_700_000_000) + vint(2, 5))
        + entries(11, {"app": "web", "tier": ""})
        + entries(12, {"note": "hi"})
        + ld(13, owner + vint(7, 0))
        + ld(14, "a/b")
        + ld(14, "c/d")
        + ld(17, ld(1, "kubectl"))  # managedFields: skipped
    )
    raw = (
        ld(1, meta)
        + entries(2, {"bin": b"\x00\xff\x10", "empty": b""})
        + ld(3, "Opaque")
        + entries(4, {"plain": "text"})
        + vint(5, 0)
    )
    assert decode_object(envelope("v1", "Secret", raw)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "namespace": "team",
            "uid": "uid-1",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "labels": {"app": "web", "tier": ""},
            "annotations": {"note": "hi"},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": "u-1",
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
            "finalizers": ["a/b", "c/d"],
        },
        "data": {"bin": b64(b"\x00\xff\x10"), "empty": ""},
        "type": "Opaque",
        "stringData": {"plain": "text"},
        "immutable": False,
    }


def test_go_zero_values_are_omitted_like_json() -> None:
    raw = ld(1, go_meta("", generate=ld(2, "gen-"))) + ld(3, "")
    assert decode_object(envelope("v1", "Secret", raw)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"generateName": "gen-"},
    }


def test_configmap() -> None:
    raw = (
        ld(1, go_meta("c"))
        + entries(2, {"a": "1", "f.txt": "hi\n"})
        + entries(3, {"blob": b"\x89PNG"})
        + vint(4, 1)
    )
    assert decode_object(envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "1", "f.txt": "hi\n"},
        "binaryData": {"blob": b64(b"\x89PNG")},
        "immutable": True,
    }


def test_namespace() -> None:
    raw = ld(1, go_meta("n")) + ld(2, ld(1, "kubernetes")) + ld(3, ld(1, "Active"))
    assert decode_object(envelope("v1", "Namespace", raw)) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "n"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def test_serviceaccount() -> None:
    secret_ref = ld(1, "Secret") + ld(2, "ns") + ld(3, "token") + ld(7, "")
    raw = (
        ld(1, go_meta("sa"))
        + ld(2, secret_ref)
        + ld(3, ld(1, "pull-a"))
        + ld(3, ld(1, "pull-b"))
        + vint(4, 0)
    )
    assert decode_object(envelope("v1", "ServiceAccount", raw)) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa"},
        "secrets": [{"kind": "Secret", "namespace": "ns", "name": "token"}],
        "imagePullSecrets": [{"name": "pull-a"}, {"name": "pull-b"}],
        "automountServiceAccountToken": False,
    }


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    noise = vint(90, 7) + fixed64(91, 1) + ld(92, b"\x01\x02") + fixed32(93, 9)
    meta = noise + ld(1, "x") + noise
    raw = noise + ld(1, meta) + entries(2, {"k": "v"}) + noise
    unknown = noise + ld(1, ld(1, "v1") + ld(2, "ConfigMap") + noise) + ld(2, raw) + noise
    assert decode_object(MAGIC + unknown) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
        "data": {"k": "v"},
    }


def test_negative_varints_and_last_value_wins() -> None:
    meta = ld(1, "first") + vint(7, -2) + ld(1, "second")
    decoded = decode_object(envelope("v1", "ConfigMap", ld(1, meta)))
    assert decoded["metadata"] == {"name": "second", "generation": -2}


def bad_secret(meta: bytes) -> bytes:
    return envelope("v1", "Secret", ld(1, meta))


MALFORMED: list[tuple[str, bytes, str]] = [
    ("no-magic", b"\x0a\x00", "magic bytes"),
    ("json-sent-as-protobuf", b'{"kind": "Secret"}', "magic bytes"),
    ("truncated-envelope", MAGIC + b"\x0a\x10\x0a", "runtime.Unknown field 1 is truncated"),
    ("varint-ends-early", MAGIC + b"\x08\xff", "runtime.Unknown field 1 ends inside a varint"),
    ("varint-too-long", MAGIC + b"\x08" + b"\xff" * 11, "varint longer than 10 bytes"),
    ("group-wire-type", MAGIC + key(1, 3), "groups"),
    ("wire-type-7", MAGIC + key(1, 7), "wire type 7"),
    ("field-zero", MAGIC + b"\x02\x00", "numbered 0"),
    ("envelope-raw-as-varint", MAGIC + vint(2, 5), "runtime.Unknown field 2 has wire type 0"),
    ("name-as-varint", bad_secret(vint(1, 5)), "Secret.metadata.name (field 1) has wire type 0"),
    ("generation-as-bytes", bad_secret(ld(7, "x")), "Secret.metadata.generation"),
    ("label-not-utf8", bad_secret(entries(11, {"k": b"\xff\xfe"})), "metadata.labels['k']"),
    ("label-key-as-varint", bad_secret(ld(11, vint(1, 3))), "Secret.metadata.labels entry"),
    (
        "truncated-metadata",
        envelope("v1", "Secret", b"\x0a\x05\x0a"),
        "Secret.metadata (field 1) is truncated",
    ),
    ("time-out-of-range", bad_secret(ld(8, vint(1, 10**15))), "creationTimestamp"),
]


@pytest.mark.parametrize(
    ("body", "text"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_bodies_are_400_naming_the_problem(body: bytes, text: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode_object(body)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    assert text in caught.value.message


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (envelope("apps/v1", "Deployment", b""), "not apps/v1 Deployment"),
        (envelope("v1", "Pod", b""), "not v1 Pod"),
        (MAGIC, "not (no apiVersion) (no kind)"),
        (envelope("v1", "Secret", b"", encoding="gzip"), "contentEncoding 'gzip'"),
    ],
    ids=["deployment", "pod", "no-type-meta", "content-encoding"],
)
def test_other_kinds_are_415_saying_what_is_supported(body: bytes, text: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode_object(body)
    assert (caught.value.code, caught.value.reason) == (415, "UnsupportedMediaType")
    assert text in caught.value.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["Secret", "ConfigMap", "Namespace"]))
def test_arbitrary_bytes_give_a_status_never_a_crash(raw: bytes, kind: str) -> None:
    for body in (MAGIC + raw, envelope("v1", kind, raw)):
        try:
            decoded = decode_object(body)
        except ApiError as error:
            assert error.code in (400, 415)
        else:
            json.dumps(decoded)  # always a JSON-serialisable object


# -- the real kubectl against the sandbox ----------------------------------------------------


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"kubectl failed: {result.stderr or result.stdout}"
    return result.stdout


def test_kubectl_create_secret_generic(kubectl: Any, namespace: str) -> None:
    ok(
        kubectl(
            "create", "secret", "generic", "s", "--from-literal=password=s3cret", "-n", namespace
        )
    )
    password = ok(kubectl("get", "secret", "s", "-n", namespace, "-o", "jsonpath={.data.password}"))
    assert password == b64(b"s3cret")


def test_kubectl_create_secret_tls_and_docker_registry(
    kubectl: Any, namespace: str, tmp_path: Path
) -> None:
    # kubectl checks that the pair matches, so it has to be a real one.
    cert, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a certificate for `kubectl create secret tls`")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=test", "-keyout", str(key_file), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    ok(
        kubectl(
            "create", "secret", "tls", "t", f"--cert={cert}", f"--key={key_file}", "-n", namespace
        )
    )
    tls = json.loads(ok(kubectl("get", "secret", "t", "-n", namespace, "-o", "json")))
    assert tls["type"] == "kubernetes.io/tls"
    assert base64.b64decode(tls["data"]["tls.crt"]) == cert.read_bytes()

    ok(
        kubectl(
            "create", "secret", "docker-registry", "d", "--docker-server=registry.example",
            "--docker-username=u", "--docker-password=p", "-n", namespace,
        )
    )  # fmt: skip
    docker = json.loads(ok(kubectl("get", "secret", "d", "-n", namespace, "-o", "json")))
    assert docker["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(docker["data"][".dockerconfigjson"]))
    assert config["auths"]["registry.example"]["username"] == "u"


def test_kubectl_create_configmap_from_literal_and_file(
    kubectl: Any, namespace: str, tmp_path: Path
) -> None:
    settings_file = tmp_path / "app.properties"
    settings_file.write_text("color=blue\nsize=3\n")
    ok(
        kubectl(
            "create", "configmap", "c", "--from-literal=a=1", f"--from-file={settings_file}",
            "-n", namespace,
        )
    )  # fmt: skip
    created = json.loads(ok(kubectl("get", "configmap", "c", "-n", namespace, "-o", "json")))
    assert created["data"] == {"a": "1", "app.properties": "color=blue\nsize=3\n"}


def test_kubectl_create_and_delete_namespace(
    kubectl: Any, sandbox_target: ClusterTarget, namespace: str
) -> None:
    name = f"{namespace}-pb"
    ok(kubectl("create", "namespace", name))
    created = json.loads(ok(kubectl("get", "namespace", name, "-o", "json")))
    assert created["metadata"]["name"] == name
    assert created["status"]["phase"] == "Active"
    ok(kubectl("delete", "namespace", name))
    wait_for(
        lambda: sandbox_target.http.get(f"/api/v1/namespaces/{name}").status_code == 404,
        message=f"namespace {name} still exists",
    )


def test_kubectl_create_serviceaccount(kubectl: Any, namespace: str) -> None:
    ok(kubectl("create", "serviceaccount", "robot", "-n", namespace))
    created = json.loads(
        ok(kubectl("get", "serviceaccount", "robot", "-n", namespace, "-o", "json"))
    )
    assert (created["kind"], created["metadata"]["name"]) == ("ServiceAccount", "robot")


def test_kubectl_create_deployment_is_refused_with_advice(kubectl: Any, namespace: str) -> None:
    result = kubectl("create", "deployment", "web", "--image=nginx", "-n", namespace)
    assert result.returncode != 0
    assert "not apps/v1 Deployment" in result.stderr
    assert "application/json" in result.stderr


def post_protobuf(target: ClusterTarget, path: str, body: bytes, method: str = "POST") -> Any:
    return target.http.request(method, path, data=body, headers={"Content-Type": MEDIA_TYPE})


def test_malformed_protobuf_over_http_is_400(sandbox_target: ClusterTarget, namespace: str) -> None:
    body = envelope("v1", "Secret", b"\x0a\x05\x0a")
    response = post_protobuf(sandbox_target, f"/api/v1/namespaces/{namespace}/secrets", body)
    assert response.status_code == 400, response.text
    status = response.json()
    assert (status["kind"], status["reason"]) == ("Status", "BadRequest")
    assert "Secret.metadata (field 1) is truncated" in status["message"]


def test_unsupported_kind_over_http_is_415(sandbox_target: ClusterTarget, namespace: str) -> None:
    body = envelope("apps/v1", "Deployment", ld(1, ld(1, "web")))
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    response = post_protobuf(sandbox_target, path, body)
    assert response.status_code == 415, response.text
    assert response.json()["reason"] == "UnsupportedMediaType"
    assert "not apps/v1 Deployment" in response.json()["message"]


def test_replace_with_protobuf_honours_resource_version(
    sandbox_target: ClusterTarget, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = post_protobuf(
        sandbox_target,
        path,
        envelope("v1", "ConfigMap", ld(1, ld(1, "c")) + entries(2, {"a": "1"})),
    )
    assert created.status_code == 201, created.text
    version = created.json()["metadata"]["resourceVersion"]

    def replace(resource_version: str, value: str) -> Any:
        raw = ld(1, ld(1, "c") + ld(6, resource_version)) + entries(2, {"a": value})
        return post_protobuf(sandbox_target, f"{path}/c", envelope("v1", "ConfigMap", raw), "PUT")

    replaced = replace(version, "2")
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["data"] == {"a": "2"}
    stale = replace(version, "3")
    assert stale.status_code == 409, stale.text
    assert sandbox_target.http.get(f"{path}/c").json()["data"] == {"a": "2"}


def test_delete_options_keep_a_zero_grace_period() -> None:
    raw = vint(1, 0) + ld(2, ld(1, "uid-1")) + vint(3, 0) + ld(4, "Foreground")
    assert decode_object(envelope("v1", "DeleteOptions", raw)) == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "uid-1"},
        "orphanDependents": False,
        "propagationPolicy": "Foreground",
    }


def test_delete_with_protobuf_options_as_helm_sends_them(
    sandbox_target: ClusterTarget, namespace: str
) -> None:
    """Helm's release storage deletes its Secrets with a protobuf DeleteOptions."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert sandbox_target.http.post(path, json={"metadata": {"name": "d"}}).status_code == 201
    stale = envelope("v1", "DeleteOptions", ld(2, ld(1, "not-its-uid")))
    refused = post_protobuf(sandbox_target, f"{path}/d", stale, "DELETE")
    assert refused.status_code == 409, refused.text
    body = envelope("v1", "DeleteOptions", ld(4, "Background"))
    deleted = post_protobuf(sandbox_target, f"{path}/d", body, "DELETE")
    assert deleted.status_code == 200, deleted.text
    assert sandbox_target.http.get(f"{path}/d").status_code == 404
