"""The operator pod meets the restricted Pod Security Standard, in manifests/ and every chart
rendering (checked statically: nothing here enforces PSS at admission)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.install import (
    CI_VALUES,
    Obj,
    kustomize_build,
    of_kind,
    operator_pods,
    render,
    restricted_violations,
)


def test_manifests_pod_is_restricted() -> None:
    pods = operator_pods(kustomize_build())
    assert pods
    for name, pod in pods:
        assert restricted_violations(pod) == [], name


def test_manifests_namespace_enforces_restricted() -> None:
    (namespace,) = of_kind(kustomize_build(), "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("values", CI_VALUES, ids=[path.name for path in CI_VALUES])
def test_chart_pod_is_restricted(values: Path) -> None:
    pods = operator_pods(render(values))
    assert pods
    for name, pod in pods:
        assert restricted_violations(pod) == [], name
        assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def _pod() -> Obj:
    return operator_pods(render())[0][1]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda pod: pod.update(hostNetwork=True), "spec.hostNetwork"),
        (lambda pod: pod.update(hostPID=True), "spec.hostPID"),
        (lambda pod: pod.update(hostIPC=True), "spec.hostIPC"),
        (
            lambda pod: pod["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
            "volumes[h].hostPath",
        ),
        (
            lambda pod: pod["containers"][0]["securityContext"].update(runAsNonRoot=False),
            "runAsNonRoot is not true",
        ),
        (lambda pod: pod["securityContext"].update(runAsUser=0), "runAsUser is 0"),
        (lambda pod: pod["securityContext"].update(runAsUser="65532"), "runAsUser is '65532'"),
        (lambda pod: pod["securityContext"].pop("seccompProfile"), "seccompProfile.type is None"),
        (
            lambda pod: pod["securityContext"].update(seccompProfile={"type": "Unconfined"}),
            "seccompProfile.type is 'Unconfined'",
        ),
        (
            lambda pod: pod["containers"][0]["securityContext"].update(privileged=True),
            "privileged is true",
        ),
        (
            lambda pod: pod["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
            "allowPrivilegeEscalation is not false",
        ),
        (
            lambda pod: pod["containers"][0]["securityContext"].update(capabilities={}),
            "capabilities.drop does not contain ALL",
        ),
        (
            lambda pod: pod["containers"][0]["securityContext"]["capabilities"].update(
                add=["NET_BIND_SERVICE", "SYS_ADMIN"]
            ),
            "capabilities.add has ['SYS_ADMIN']",
        ),
        (
            lambda pod: pod["containers"][0]["securityContext"].update(
                readOnlyRootFilesystem=False
            ),
            "readOnlyRootFilesystem is not true",
        ),
        (
            lambda pod: pod["containers"][0]["ports"][0].update(hostPort=8080),
            "hostPort is set",
        ),
    ],
)
def test_checker_reports_each_violation_by_field(change: object, named: str) -> None:
    pod = _pod()
    change(pod)  # type: ignore[operator]
    problems = restricted_violations(pod)
    assert any(named in problem for problem in problems), problems


def test_checker_allows_net_bind_service_and_localhost_seccomp() -> None:
    pod = _pod()
    context = pod["containers"][0]["securityContext"]
    context["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    context["seccompProfile"] = {"type": "Localhost", "localhostProfile": "operator.json"}
    assert restricted_violations(pod) == []
