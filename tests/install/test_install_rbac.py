"""RBAC allowlist: the exact rules the operator and users get, in manifests/ and the chart.

The expected lists below are deliberately written out again (not read from the rules files):
widening the operator's permissions must be a visible change to this test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecs_operator.controllers.watches import LEASE_NAME
from support.install import CHART, CI_VALUES, MANIFESTS, RELEASE_NAMESPACE, of_kind, only, render

ECS = "ecs.operator.dev"
ECS_KINDS = ["taskdefinitions", "tasks", "services", "loadbalancers"]
ECS_STATUS = [f"{kind}/status" for kind in ECS_KINDS]

OPERATOR_CLUSTER_RULES = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]
OPERATOR_NAMESPACED_RULES = [
    {"apiGroups": [ECS], "resources": ["taskdefinitions"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [ECS], "resources": ["taskdefinitions/status"], "verbs": ["patch"]},
    {
        "apiGroups": [ECS],
        "resources": ["tasks"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    },
    {"apiGroups": [ECS], "resources": ["tasks/status"], "verbs": ["patch"]},
    {
        "apiGroups": [ECS],
        "resources": ["loadbalancers"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {"apiGroups": [ECS], "resources": ["services"], "verbs": ["get", "list", "watch", "patch"]},
    {
        "apiGroups": [ECS],
        "resources": ["services/status", "loadbalancers/status"],
        "verbs": ["patch"],
    },
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["controllerrevisions"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {
        "apiGroups": [""],
        "resources": ["services"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    },
    {
        "apiGroups": ["discovery.k8s.io"],
        "resources": ["endpointslices"],
        "verbs": ["get", "list", "watch", "create", "update", "delete"],
    },
    {
        "apiGroups": ["gateway.networking.k8s.io"],
        "resources": ["httproutes"],
        "verbs": ["get", "patch"],
    },
]
LEADER_ELECTION_RULES = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": ["ecs-operator"],
        "verbs": ["get", "patch"],
    },
]
USER_EDIT_RULES = [
    {
        "apiGroups": [ECS],
        "resources": ECS_KINDS,
        "verbs": [
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
        ],
    },
    {"apiGroups": [ECS], "resources": ["services/scale"], "verbs": ["get", "update", "patch"]},
    {"apiGroups": [ECS], "resources": ECS_STATUS, "verbs": ["get"]},
]
USER_VIEW_RULES = [
    {"apiGroups": [ECS], "resources": ECS_KINDS, "verbs": ["get", "list", "watch"]},
    {"apiGroups": [ECS], "resources": [*ECS_STATUS, "services/scale"], "verbs": ["get"]},
]
USER_ROLES = {"admin": USER_EDIT_RULES, "edit": USER_EDIT_RULES, "view": USER_VIEW_RULES}
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate"}
RULE_FILES = sorted((CHART / "files" / "rbac").glob("*-rules.yaml"))


def manifest_objects() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((MANIFESTS / "rbac.yaml").read_text()) if doc]


def roles_everywhere() -> list[tuple[str, dict[str, Any]]]:
    """(where, role) for every (Cluster)Role in manifests/rbac.yaml and every chart rendering."""
    found = [
        ("manifests/rbac.yaml", obj)
        for obj in manifest_objects()
        if obj["kind"] in ("Role", "ClusterRole")
    ]
    for values in CI_VALUES:
        found += [
            (values.name, obj) for obj in render(values) if obj["kind"] in ("Role", "ClusterRole")
        ]
    return found


def test_manifests_operator_cluster_role_is_exactly_the_allowlist() -> None:
    role = only(manifest_objects(), "ClusterRole", "ecs-operator")
    assert role["rules"] == OPERATOR_CLUSTER_RULES + OPERATOR_NAMESPACED_RULES


def test_manifests_binding_grants_the_role_to_the_operator_service_account() -> None:
    binding = only(manifest_objects(), "ClusterRoleBinding", "ecs-operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "ecs-operator",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "ecs-operator", "namespace": "ecs-operator-system"}
    ]


@pytest.mark.parametrize("source", ["manifests", "chart"])
def test_user_roles_are_aggregated_with_exact_rules(source: str) -> None:
    objects = manifest_objects() if source == "manifests" else render()
    for role, rules in USER_ROLES.items():
        cluster_role = only(objects, "ClusterRole", f"ecs-operator-{role}")
        labels = cluster_role["metadata"]["labels"]
        assert labels[f"rbac.authorization.k8s.io/aggregate-to-{role}"] == "true"
        assert [key for key in labels if key.startswith("rbac.authorization.k8s.io/")] == [
            f"rbac.authorization.k8s.io/aggregate-to-{role}"
        ]
        assert cluster_role["rules"] == rules, role


def test_chart_default_matches_manifests() -> None:
    chart = {
        (obj["kind"], obj["metadata"]["name"]): obj["rules"]
        for obj in render()
        if obj["kind"] == "ClusterRole"
    }
    manifests = {
        (obj["kind"], obj["metadata"]["name"]): obj["rules"]
        for obj in manifest_objects()
        if obj["kind"] == "ClusterRole"
    }
    assert chart == manifests
    # Every operator takes its Lease: the Lease Role comes with the default install too.
    assert [r["metadata"]["name"] for r in of_kind(render(), "Role")] == [
        "ecs-operator-leader-election"
    ]
    chart_roles = {
        (obj["kind"], obj["metadata"]["name"]): obj["rules"] for obj in of_kind(render(), "Role")
    }
    manifest_roles = {
        (obj["kind"], obj["metadata"]["name"]): obj["rules"]
        for obj in manifest_objects()
        if obj["kind"] == "Role"
    }
    assert chart_roles == manifest_roles


def test_chart_namespaced_install_keeps_only_cluster_kinds_cluster_wide() -> None:
    objects = render(CHART / "ci" / "namespaced-values.yaml")
    assert only(objects, "ClusterRole", "ecs-operator")["rules"] == OPERATOR_CLUSTER_RULES
    lease = "ecs-operator-leader-election"  # its own Role, in the release namespace
    roles = [r for r in of_kind(objects, "Role") if r["metadata"]["name"] != lease]
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["team-a", "team-b"]
    for role in roles:
        assert role["rules"] == OPERATOR_NAMESPACED_RULES
    bindings = [b for b in of_kind(objects, "RoleBinding") if b["metadata"]["name"] != lease]
    assert sorted(binding["metadata"]["namespace"] for binding in bindings) == [
        "team-a",
        "team-b",
    ]
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "ecs-operator", "namespace": RELEASE_NAMESPACE}
        ]


def test_chart_leader_election_role_is_the_lease_in_the_release_namespace_only() -> None:
    objects = render(CHART / "ci" / "ha-values.yaml")
    role = only(objects, "Role", "ecs-operator-leader-election")
    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert role["rules"] == LEADER_ELECTION_RULES
    assert role["rules"][1]["resourceNames"] == [LEASE_NAME], "the Lease the operator uses"
    binding = only(objects, "RoleBinding", "ecs-operator-leader-election")
    assert binding["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert binding["roleRef"]["name"] == "ecs-operator-leader-election"


def test_rbac_create_false_renders_no_rbac() -> None:
    objects = render(None, "--set", "rbac.create=false")
    assert not [obj for obj in objects if obj["apiVersion"].startswith("rbac.authorization")]


def test_no_wildcards_and_no_privilege_escalating_verbs() -> None:
    for where, role in roles_everywhere():
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert not any("*" in value for value in rule.get(key) or ()), (where, rule)
            assert not FORBIDDEN_VERBS & set(rule["verbs"]), (where, rule)


def test_status_and_scale_subresources_are_listed_explicitly() -> None:
    """The operator writes every kind's status subresource; users (the aggregated edit role,
    which kubectl scale and HPAs act for) get the scale subresource. The operator never uses
    scale, so least privilege leaves it out of the operator's role."""
    for where, role in roles_everywhere():
        resources = {resource for rule in role["rules"] for resource in rule["resources"]}
        if "tasks" not in resources:
            continue  # cluster-only or leader-election roles
        assert set(ECS_STATUS) <= resources, where
    assert "services/scale" in {r for rule in USER_EDIT_RULES for r in rule["resources"]}
    assert "services/scale" not in {
        r for rule in OPERATOR_NAMESPACED_RULES for r in rule["resources"]
    }


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda path: Path(path).name)
def test_every_rule_has_a_comment_saying_who_needs_it(path: Path) -> None:
    lines = path.read_text().splitlines()
    rule_starts = [number for number, line in enumerate(lines) if line.startswith("- ")]
    assert rule_starts, f"{path.name} has no rules"
    for number in rule_starts:
        above = lines[number - 1] if number else ""
        assert re.match(r"# (Application|Framework|Application and framework|Users): \S", above), (
            f"{path.name}:{number + 1}: the rule needs a `# Application: …` style comment above it"
        )
