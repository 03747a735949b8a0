"""API errors as Kubernetes `Status` objects with the canonical reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cause:
    """One entry of `details.causes`: which field is wrong and why."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class ApiError(Exception):
    """Raised anywhere in the sandbox; the HTTP layer turns it into a `Status` response."""

    code: int
    reason: str
    message: str
    kind: str | None = None
    name: str | None = None
    group: str | None = None
    causes: list[Cause] = field(default_factory=list)
    retry_after_seconds: int | None = None

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind is not None:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds is not None:
            details["retryAfterSeconds"] = self.retry_after_seconds
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


def not_found(kind: str, group: str, name: str) -> ApiError:
    resource = f"{kind}.{group}" if group else kind
    return ApiError(404, "NotFound", f'{resource} "{name}" not found', kind, name, group)


def already_exists(kind: str, group: str, name: str) -> ApiError:
    resource = f"{kind}.{group}" if group else kind
    return ApiError(409, "AlreadyExists", f'{resource} "{name}" already exists', kind, name, group)


def conflict(kind: str, group: str, name: str, why: str) -> ApiError:
    resource = f"{kind}.{group}" if group else kind
    message = f'Operation cannot be fulfilled on {resource} "{name}": {why}'
    return ApiError(409, "Conflict", message, kind, name, group)


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid, worded as kube-apiserver does: `Kind.group "name" is invalid: field: msg`."""
    resource = f"{kind}.{group}" if group else kind
    listed = ", ".join(f"{c.field}: {c.message}" for c in causes)
    if len(causes) > 1:
        listed = f"[{listed}]"
    message = f'{resource} "{name}" is invalid: {listed}'
    return ApiError(422, "Invalid", message, kind, name, group, causes)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)
