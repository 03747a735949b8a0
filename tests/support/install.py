"""What the install tests share: helm, chart renderings, the Kustomize build, the PSS checker.

helm is the pinned binary `make helm` installs at .tools/helm. Where it is missing the tests that
need it skip, except in CI (CI=true), where a missing helm is a failure: the Makefile's `test`
target always fetches it first.
"""

from __future__ import annotations

import copy
import functools
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.helpers import KUBECTL

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ecs-operator"
MANIFESTS = ROOT / "manifests"
CRDS = ROOT / "crds"
HELM = ROOT / ".tools" / "helm"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "ecs-operator"
RELEASE_NAMESPACE = "ecs-operator-system"
KUBERNETES_VERSION = "1.32.0"
# How the README, manifests/ and the chart's NOTES tell users to apply this repository's files.
SERVER_SIDE_APPLY = ("apply", "--server-side", "--force-conflicts")

Obj = dict[str, Any]


def helm_binary() -> Path:
    if HELM.exists():
        return HELM
    message = f"helm is not installed at {HELM}: run `make helm`"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, timeout=60, check=False
    )


def documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@functools.cache
def _render(
    values: Path | None, release: str, namespace: str, extra: tuple[str, ...]
) -> tuple[Obj, ...]:
    args = ["template", release, str(CHART), "--namespace", namespace, *extra]
    if values is not None:
        args += ["--values", str(values)]
    result = run_helm(*args)
    assert result.returncode == 0, result.stderr
    return tuple(documents(result.stdout))


def render(
    values: Path | None = None,
    *extra: str,
    release: str = RELEASE,
    namespace: str = RELEASE_NAMESPACE,
) -> list[Obj]:
    """`helm template` of the chart (optionally with a values file and extra flags), parsed;
    the caller's own copy, free to change."""
    return copy.deepcopy(list(_render(values, release, namespace, extra)))


@functools.cache
def _kustomize_build() -> tuple[Obj, ...]:
    result = subprocess.run(
        [KUBECTL, "kustomize", str(MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(documents(result.stdout))


def kustomize_build() -> list[Obj]:
    """`kubectl kustomize manifests/` (the kustomize embedded in kubectl), parsed; a copy."""
    return copy.deepcopy(list(_kustomize_build()))


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def only(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def restricted_violations(pod: Obj) -> list[str]:
    """Where a pod spec breaks the restricted Pod Security Standard (plus a read-only root).

    The checks of kubernetes.io/docs/concepts/security/pod-security-standards ("Baseline" and
    "Restricted"), each failure naming the field. Empty when the pod complies.
    """
    problems: list[str] = []
    pod_context = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"spec.{field} is true")
    for volume in pod.get("volumes") or ():
        if "hostPath" in volume:
            problems.append(f"spec.volumes[{volume.get('name')}].hostPath is set")
    containers = [
        (kind, container)
        for kind in ("initContainers", "containers", "ephemeralContainers")
        for container in pod.get(kind) or ()
    ]
    for kind, container in containers:
        where = f"spec.{kind}[{container.get('name')}].securityContext"
        context = container.get("securityContext") or {}
        problems += _user_violations(pod_context, context, where)
        if context.get("privileged"):
            problems.append(f"{where}.privileged is true")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}.allowPrivilegeEscalation is not false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or ()):
            problems.append(f"{where}.capabilities.drop does not contain ALL")
        added = set(capabilities.get("add") or ()) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"{where}.capabilities.add has {sorted(added)}")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get(
            "type"
        )
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}.seccompProfile.type is {seccomp!r} (pod and container)")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}.readOnlyRootFilesystem is not true")
        for port in container.get("ports") or ():
            if port.get("hostPort"):
                problems.append(f"spec.{kind}[{container.get('name')}].ports.hostPort is set")
    return problems


def _user_violations(pod_context: Obj, context: Obj, where: str) -> list[str]:
    problems: list[str] = []
    non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    if non_root is not True:
        problems.append(f"{where}.runAsNonRoot is not true (pod and container)")
    for field in ("runAsUser", "runAsGroup"):
        value = context.get(field, pod_context.get(field))
        if not isinstance(value, int) or isinstance(value, bool) or value == 0:
            problems.append(f"{where}.{field} is {value!r}: must be a non-zero number")
    return problems


def operator_pods(objects: list[Obj]) -> list[tuple[str, Obj]]:
    """(name, pod spec) of every Deployment in `objects`."""
    return [
        (deployment["metadata"]["name"], deployment["spec"]["template"]["spec"])
        for deployment in of_kind(objects, "Deployment")
    ]
