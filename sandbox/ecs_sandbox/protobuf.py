"""Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) decoded to JSON dicts.

kubectl's typed generators (`kubectl create secret|configmap|namespace|serviceaccount`) send
their object as protobuf, and Helm's release storage deletes its Secrets with a protobuf
DeleteOptions, so the sandbox reads that wire format by hand for those kinds, and refuses every
other kind with 415.

The body is `k8s\\x00` followed by a `runtime.Unknown` message (1: typeMeta {1: apiVersion,
2: kind}, 2: raw, 3: contentEncoding, 4: contentType) whose `raw` holds the typed message. Field
numbers come from the `generated.proto` files of k8s.io/api core/v1 and apimachinery meta/v1.

The result is what the JSON body of the same object would be: empty strings, zero integers and
zero times are left out (Go's protobuf marshaller writes them; its JSON marshaller omits them),
`bytes` values become base64 strings, and fields the sandbox does not model are skipped.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ecs_sandbox.errors import ApiError, bad_request

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

VARINT, FIXED64, LENGTH_DELIMITED, START_GROUP, END_GROUP, FIXED32 = range(6)
MAX_VARINT_BYTES = 10


class Kind(Enum):
    STRING = "string"
    BOOL = "bool"
    INT = "int"  # int32 and int64: both are two's-complement varints
    OPTIONAL_INT = "optional int"  # a pointer in Go: 0 is a value, kept in JSON
    TIME = "time"  # meta/v1 Time {1: seconds, 2: nanos}, RFC 3339 in JSON
    MESSAGE = "message"
    STRING_MAP = "map<string, string>"
    BYTES_MAP = "map<string, bytes>"


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    repeated: bool = False
    message: Message | None = None


Message = Mapping[int, Field]


def _strings(name: str) -> Field:
    return Field(name, Kind.STRING, repeated=True)


def _messages(name: str, message: Message) -> Field:
    return Field(name, Kind.MESSAGE, repeated=True, message=message)


def _message(name: str, message: Message) -> Field:
    return Field(name, Kind.MESSAGE, message=message)


OWNER_REFERENCE: Message = {
    5: Field("apiVersion", Kind.STRING),
    1: Field("kind", Kind.STRING),
    3: Field("name", Kind.STRING),
    4: Field("uid", Kind.STRING),
    6: Field("controller", Kind.BOOL),
    7: Field("blockOwnerDeletion", Kind.BOOL),
}
# managedFields (17) and the server-populated selfLink/deletion fields are skipped.
OBJECT_META: Message = {
    1: Field("name", Kind.STRING),
    2: Field("generateName", Kind.STRING),
    3: Field("namespace", Kind.STRING),
    5: Field("uid", Kind.STRING),
    6: Field("resourceVersion", Kind.STRING),
    7: Field("generation", Kind.INT),
    8: Field("creationTimestamp", Kind.TIME),
    11: Field("labels", Kind.STRING_MAP),
    12: Field("annotations", Kind.STRING_MAP),
    13: _messages("ownerReferences", OWNER_REFERENCE),
    14: _strings("finalizers"),
}
OBJECT_REFERENCE: Message = {
    1: Field("kind", Kind.STRING),
    2: Field("namespace", Kind.STRING),
    3: Field("name", Kind.STRING),
    4: Field("uid", Kind.STRING),
    5: Field("apiVersion", Kind.STRING),
    6: Field("resourceVersion", Kind.STRING),
    7: Field("fieldPath", Kind.STRING),
}
LOCAL_OBJECT_REFERENCE: Message = {1: Field("name", Kind.STRING)}

SECRET: Message = {
    1: _message("metadata", OBJECT_META),
    2: Field("data", Kind.BYTES_MAP),
    3: Field("type", Kind.STRING),
    4: Field("stringData", Kind.STRING_MAP),
    5: Field("immutable", Kind.BOOL),
}
CONFIG_MAP: Message = {
    1: _message("metadata", OBJECT_META),
    2: Field("data", Kind.STRING_MAP),
    3: Field("binaryData", Kind.BYTES_MAP),
    4: Field("immutable", Kind.BOOL),
}
NAMESPACE: Message = {
    1: _message("metadata", OBJECT_META),
    2: _message("spec", {1: _strings("finalizers")}),
    3: _message("status", {1: Field("phase", Kind.STRING)}),
}
SERVICE_ACCOUNT: Message = {
    1: _message("metadata", OBJECT_META),
    2: _messages("secrets", OBJECT_REFERENCE),
    3: _messages("imagePullSecrets", LOCAL_OBJECT_REFERENCE),
    4: Field("automountServiceAccountToken", Kind.BOOL),
}
# meta/v1 DeleteOptions; its apiVersion is the group version of the resource deleted.
DELETE_OPTIONS: Message = {
    1: Field("gracePeriodSeconds", Kind.OPTIONAL_INT),
    2: _message(
        "preconditions", {1: Field("uid", Kind.STRING), 2: Field("resourceVersion", Kind.STRING)}
    ),
    3: Field("orphanDependents", Kind.BOOL),
    4: Field("propagationPolicy", Kind.STRING),
    5: _strings("dryRun"),
}
SUPPORTED: dict[tuple[str, str], Message] = {
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "Namespace"): NAMESPACE,
    ("v1", "Secret"): SECRET,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
}
TYPE_META: Message = {1: Field("apiVersion", Kind.STRING), 2: Field("kind", Kind.STRING)}
WIRE_TYPES = {
    Kind.STRING: LENGTH_DELIMITED,
    Kind.MESSAGE: LENGTH_DELIMITED,
    Kind.TIME: LENGTH_DELIMITED,
    Kind.STRING_MAP: LENGTH_DELIMITED,
    Kind.BYTES_MAP: LENGTH_DELIMITED,
    Kind.BOOL: VARINT,
    Kind.INT: VARINT,
    Kind.OPTIONAL_INT: VARINT,
}


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object; 400 when malformed, 415 for other kinds."""
    if not body.startswith(MAGIC):
        raise bad_request(
            f"the {MEDIA_TYPE} body does not start with the magic bytes k8s\\x00 "
            f"(it starts with {body[:4]!r})"
        )
    type_meta, raw, content_encoding = _decode_envelope(body[len(MAGIC) :])
    api_version = type_meta.get("apiVersion", "")
    kind = type_meta.get("kind", "")
    if content_encoding:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the {MEDIA_TYPE} body has contentEncoding {content_encoding!r}; "
            "the sandbox reads only unencoded bodies",
        )
    message = DELETE_OPTIONS if kind == "DeleteOptions" else SUPPORTED.get((api_version, kind))
    if message is None:
        supported = ", ".join(f"{version} {name}" for version, name in SUPPORTED)
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the sandbox decodes {MEDIA_TYPE} bodies only for {supported}, not "
            f"{api_version or '(no apiVersion)'} {kind or '(no kind)'}; send this object as "
            "application/json or application/yaml instead (for example with `kubectl create -f` "
            "or `kubectl apply -f` and a manifest)",
        )
    return {"apiVersion": api_version, "kind": kind, **_decode_message(raw, message, kind)}


def _decode_envelope(data: bytes) -> tuple[dict[str, Any], bytes, str]:
    """typeMeta, raw and contentEncoding of a `runtime.Unknown` (contentType is implied)."""
    type_meta: dict[str, Any] = {}
    raw, content_encoding = b"", ""
    for number, wire_type, value in _fields(data, "runtime.Unknown"):
        if number not in (1, 2, 3):
            continue
        if not isinstance(value, bytes) or wire_type != LENGTH_DELIMITED:
            raise bad_request(
                f"protobuf body: runtime.Unknown field {number} has wire type {wire_type}, "
                f"expected {LENGTH_DELIMITED}"
            )
        if number == 1:
            type_meta = _decode_message(value, TYPE_META, "runtime.Unknown.typeMeta")
        elif number == 2:
            raw = value
        else:
            content_encoding = _text(value, "runtime.Unknown.contentEncoding")
    return type_meta, raw, content_encoding


def _decode_message(data: bytes, message: Message, path: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for number, wire_type, value in _fields(data, path, message):
        spec = message.get(number)
        if spec is None:
            continue
        where = f"{path}.{spec.name}"
        if wire_type != WIRE_TYPES[spec.kind]:
            raise bad_request(
                f"protobuf body: {where} (field {number}) has wire type {wire_type}, "
                f"expected {WIRE_TYPES[spec.kind]} for a {spec.kind.value}"
            )
        decoded = _decode_value(spec, value, where)
        if spec.kind in (Kind.STRING_MAP, Kind.BYTES_MAP):
            result.setdefault(spec.name, {}).update([decoded])
        elif spec.repeated:
            result.setdefault(spec.name, []).append(decoded)
        elif decoded is not None:
            result[spec.name] = decoded
        else:
            # A later zero value overrides an earlier one, as protobuf's last-one-wins does.
            result.pop(spec.name, None)
    return result


def _decode_value(spec: Field, value: int | bytes, where: str) -> Any:
    """One field's JSON value; None for the zero values that JSON omits."""
    if isinstance(value, int):
        if spec.kind is Kind.BOOL:
            return value != 0
        signed = value - (1 << 64) if value >= 1 << 63 else value
        return signed if spec.kind is Kind.OPTIONAL_INT else signed or None
    if spec.kind is Kind.STRING:
        text = _text(value, where)
        return text if text or spec.repeated else None
    if spec.kind is Kind.TIME:
        return _time(value, where)
    if spec.kind is Kind.MESSAGE:
        assert spec.message is not None
        return _decode_message(value, spec.message, where)
    return _map_entry(value, spec.kind, where)


def _map_entry(data: bytes, kind: Kind, where: str) -> tuple[str, str]:
    """A map entry message {1: key, 2: value}; a missing key or value is the empty one."""
    key, raw_value = "", b""
    for number, wire_type, value in _fields(data, f"{where} entry"):
        if number not in (1, 2):
            continue
        if not isinstance(value, bytes):
            raise bad_request(
                f"protobuf body: {where} entry field {number} has wire type {wire_type}, "
                f"expected {LENGTH_DELIMITED}"
            )
        if number == 1:
            key = _text(value, f"{where} key")
        else:
            raw_value = value
    if kind is Kind.BYTES_MAP:
        return key, base64.b64encode(raw_value).decode("ascii")
    return key, _text(raw_value, f"{where}[{key!r}]")


def _time(data: bytes, where: str) -> str | None:
    seconds = nanos = 0
    for number, _wire_type, value in _fields(data, where):
        if number in (1, 2) and isinstance(value, int):
            signed = value - (1 << 64) if value >= 1 << 63 else value
            seconds, nanos = (signed, nanos) if number == 1 else (seconds, signed)
    if seconds == 0 and nanos == 0:
        return None
    try:
        moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise bad_request(f"protobuf body: {where} has an out-of-range time {seconds}s") from exc
    # metav1.Time serialises to whole seconds in JSON.
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"protobuf body: {where} is not valid UTF-8: {exc}") from exc


def _fields(
    data: bytes, where: str, message: Message | None = None
) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field; fixed-width values come back as bytes.

    `message`, when given, only names the fields in error messages."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos, where)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise bad_request(f"protobuf body: {where} has a field numbered 0 at byte {pos}")
        spec = message.get(number) if message is not None else None
        field = f"{where}.{spec.name} (field {number})" if spec else f"{where} field {number}"
        if wire_type == VARINT:
            value, pos = _varint(data, pos, field)
            yield number, wire_type, value
            continue
        if wire_type == LENGTH_DELIMITED:
            size, pos = _varint(data, pos, field)
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
        elif wire_type in (START_GROUP, END_GROUP):
            raise bad_request(
                f"protobuf body: {field} uses groups (wire type {wire_type}), "
                "which Kubernetes never sends"
            )
        else:
            raise bad_request(f"protobuf body: {field} has wire type {wire_type}")
        if size > len(data) - pos:
            raise bad_request(
                f"protobuf body: {field} is truncated: it needs {size} bytes, "
                f"{len(data) - pos} are left"
            )
        yield number, wire_type, data[pos : pos + size]
        pos += size


def _varint(data: bytes, pos: int, where: str) -> tuple[int, int]:
    value = 0
    for index in range(MAX_VARINT_BYTES):
        if pos + index >= len(data):
            raise bad_request(f"protobuf body: {where} ends inside a varint")
        byte = data[pos + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value & ((1 << 64) - 1), pos + index + 1
    raise bad_request(f"protobuf body: {where} has a varint longer than {MAX_VARINT_BYTES} bytes")
