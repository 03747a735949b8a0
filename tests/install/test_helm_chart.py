"""The Helm chart: lint, every ci/ scenario rendered and validated, values schema and docs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ecs_operator.core.alarms import parse_alarms
from ecs_sandbox.schema import SchemaValidator
from support.install import (
    CHART,
    CI_VALUES,
    CRDS,
    KUBERNETES_VERSION,
    RELEASE_NAMESPACE,
    Obj,
    of_kind,
    only,
    render,
    run_helm,
)

# Kinds the chart may render that neither Kubernetes nor our CRDs define.
THIRD_PARTY = {("monitoring.coreos.com/v1", "ServiceMonitor")}
VALUES_IDS = [path.name for path in CI_VALUES]


def crd_validators() -> dict[tuple[str, str], SchemaValidator]:
    """(apiVersion, kind) -> admission, for every served version of every CRD in crds/."""
    validators = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served", True):
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                validators[key] = SchemaValidator.from_crd_version(crd, version)
    return validators


def validate(obj: Obj, validators: dict[tuple[str, str], SchemaValidator]) -> None:
    key = (obj["apiVersion"], obj["kind"])
    if key in validators:
        validators[key].admit(obj, None, strict=True)
    elif key not in THIRD_PARTY:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "ecs-operator"
    assert chart["version"] == "0.1.0"
    assert chart["appVersion"] == "0.1.0"
    assert chart["kubeVersion"].startswith(">=1.29")


def test_chart_lints() -> None:
    result = run_helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", CI_VALUES, ids=VALUES_IDS)
def test_chart_lints_with_ci_values(values: Path) -> None:
    result = run_helm("lint", "--strict", str(CHART), "--values", str(values))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", CI_VALUES, ids=VALUES_IDS)
def test_every_rendered_object_is_valid(values: Path) -> None:
    validators = crd_validators()
    objects = render(values, "--include-crds")
    assert of_kind(objects, "Deployment"), "the chart renders the operator Deployment"
    for obj in objects:
        validate(obj, validators)


def test_validation_catches_a_broken_object() -> None:
    """The validation above is real: a wrong type in a rendered Deployment is reported."""
    deployment = of_kind(render(), "Deployment")[0]
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError, match="replicas"):
        validate(deployment, crd_validators())


def test_crds_are_installed_with_the_chart_and_identical_to_crds() -> None:
    rendered = {
        obj["metadata"]["name"]: obj
        for obj in of_kind(render(None, "--include-crds"), "CustomResourceDefinition")
    }
    expected = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        expected[crd["metadata"]["name"]] = crd
    assert rendered == expected


def test_default_deployment() -> None:
    deployment = only(render(), "Deployment", "ecs-operator")
    assert deployment["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/ecs-operator/ecs-operator:0.1.0"
    # Health and metrics listen on the Pod's IP, not on every address.
    assert container["args"] == [
        "--health-address=$(POD_IP)",
        "--metrics-port=9090",
        "--metrics-address=$(POD_IP)",
        f"--leader-election-namespace={RELEASE_NAMESPACE}",
    ]
    env = {item["name"]: item["valueFrom"]["fieldRef"]["fieldPath"] for item in container["env"]}
    assert env == {
        "POD_IP": "status.podIP",
        "POD_NAMESPACE": "metadata.namespace",
        "POD_SERVICE_ACCOUNT": "spec.serviceAccountName",
    }
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    assert container["resources"]["requests"] and "cpu" not in container["resources"]["limits"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["serviceAccountName"] == "ecs-operator"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    service = only(render(), "Service", "ecs-operator-metrics")
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_scenarios_change_the_arguments() -> None:
    def args(values: str) -> list[str]:
        deployment = of_kind(render(CHART / "ci" / values), "Deployment")[0]
        container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
        return list(container["args"])

    assert "--allow-privileged" in args("allow-privileged-values.yaml")
    assert "--allow-privileged" not in args("default-values.yaml")
    granted = args("privileged-namespaces-values.yaml")
    assert "--allow-privileged" not in granted
    assert {
        "--allow-privileged-namespace=monitoring",
        "--allow-privileged-namespace=node-agents",
        "--allow-privileged-label=ecs.operator.dev/allow-privileged=true",
    } <= set(granted)
    assert not [arg for arg in args("default-values.yaml") if "privileged" in arg]
    assert {"--namespace=team-a", "--namespace=team-b", "--verbose"} <= set(
        args("namespaced-values.yaml")
    )
    assert {"--leader-elect", f"--leader-election-namespace={RELEASE_NAMESPACE}"} <= set(
        args("ha-values.yaml")
    )
    assert "--leader-elect" not in args("default-values.yaml")
    # Every operator takes the Lease in the release namespace, elected or not.
    assert f"--leader-election-namespace={RELEASE_NAMESPACE}" in args("default-values.yaml")
    ha = of_kind(render(CHART / "ci" / "ha-values.yaml"), "Deployment")[0]
    assert ha["spec"]["replicas"] == 2
    assert ha["spec"]["strategy"]["type"] == "RollingUpdate"


def test_more_than_one_replica_elects_a_leader() -> None:
    deployment = of_kind(render(None, "--set", "replicaCount=3"), "Deployment")[0]
    assert "--leader-elect" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"


def test_service_monitor_is_off_by_default_and_scrapes_the_metrics_port() -> None:
    assert not of_kind(render(), "ServiceMonitor")
    objects = render(CHART / "ci" / "servicemonitor-values.yaml")
    monitor = only(objects, "ServiceMonitor", "ecs-operator")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s"}
    ]
    service = only(objects, "Service", "ecs-operator-metrics")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def test_alarms_are_a_configmap_mounted_as_the_alarms_file() -> None:
    assert not of_kind(render(), "ConfigMap")
    objects = render(CHART / "ci" / "alarms-values.yaml")
    config_map = only(objects, "ConfigMap", "ecs-operator-alarms")
    definitions = parse_alarms(yaml.safe_load(config_map["data"]["alarms.yaml"]))
    assert [d.name for d in definitions] == ["web-5xx", "web-latency"]
    pod = only(objects, "Deployment", "ecs-operator")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {
        "--prometheus-url=http://prometheus-operated.monitoring.svc:9090",
        "--alarms-file=/etc/ecs-operator/alarms/alarms.yaml",
        "--alarm-interval=10",
        "--alarm-bake=300",
    } <= set(container["args"])
    mount = next(m for m in container["volumeMounts"] if m["name"] == "alarms")
    assert mount["mountPath"] == "/etc/ecs-operator/alarms"
    volume = next(v for v in pod["volumes"] if v["name"] == "alarms")
    assert volume["configMap"]["name"] == "ecs-operator-alarms"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--set", "bogus=1"], "additional properties 'bogus' not allowed"),
        (["--set", "alarms.intervalSeconds=0"], "intervalSeconds"),
        (["--set", "image.tagg=1"], "additional properties 'tagg' not allowed"),
        (["--set", "metrics.serviceMonitor.labelz.a=b"], "'labelz' not allowed"),
        (["--set", "logLevel=trace"], "logLevel"),
        (["--set", "allowPrivilegedLabel=no-equals"], "allowPrivilegedLabel"),
        (
            ["--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"],
            "needs metrics.enabled=true",
        ),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(flags: list[str], message: str) -> None:
    result = run_helm("template", "ecs-operator", str(CHART), *flags)
    assert result.returncode != 0
    assert message in result.stderr


def _schema_nodes(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append((path, node))
        for key, value in (node.get("properties") or {}).items():
            found += _schema_nodes(value, f"{path}.{key}")
        found += _schema_nodes(node.get("items"), f"{path}[]")
        for option in node.get("anyOf") or ():
            found += _schema_nodes(option, path)
    return found


def test_values_schema_closes_every_object() -> None:
    """additionalProperties is false everywhere, except string maps (labels, annotations,
    nodeSelector), Helm's `global`, and affinity terms (Kubernetes' own Affinity types)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path, node in _schema_nodes(schema, "values"):
        extra = node.get("additionalProperties")
        if extra is False:
            continue
        if extra == {"type": "string"} or path == "values.global":
            continue
        assert path.startswith("values.affinity."), f"{path} accepts unknown keys"


def _value_paths(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        paths = []
        for key, value in node.items():
            paths += _value_paths(value, f"{prefix}.{key}" if prefix else key)
        return paths
    return [prefix]


def test_every_values_key_has_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^\s*[A-Za-z][\w-]*:", line):
            assert lines[number - 1].strip().startswith("#"), f"values.yaml:{number + 1}: {line}"


def test_readme_documents_every_value_and_the_crd_caveat() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in _value_paths(values):
        assert f"`{path}`" in readme, f"README.md does not document {path}"
    assert "kubectl apply --server-side --force-conflicts -f charts/ecs-operator/crds/" in readme
    assert "never upgrades" in readme


def test_missing_helm_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from support import install

    monkeypatch.setattr(install, "HELM", tmp_path / "helm")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="make helm"):
        install.helm_binary()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="make helm"):
        install.helm_binary()
