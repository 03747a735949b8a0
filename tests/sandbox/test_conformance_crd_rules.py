"""CEL rules of a CRD compile against its schema: a rule that reads a field without a type
(`x-kubernetes-preserve-unknown-fields` alone) is refused when the CRD is created, as a real
kube-apiserver refuses it ("undefined field"), and so is a string literal with an escape CEL
does not have (`'\\s'`); the operator's own CRDs are accepted."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from support.helpers import ClusterTarget, unique_name

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
OPERATOR_CRDS = Path(__file__).resolve().parents[2] / "crds"


def crd(plural: str, rule: str) -> dict[str, Any]:
    group = "conformance.ecs.operator.dev"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": "Rulecheck"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "typed": {"type": "string"},
                                        "untyped": {"x-kubernetes-preserve-unknown-fields": True},
                                    },
                                    "x-kubernetes-validations": [
                                        {"rule": rule, "message": "m", "fieldPath": ".typed"}
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def create(cluster: ClusterTarget, body: dict[str, Any]) -> Any:
    return cluster.http.post(CRDS, params={"dryRun": "All"}, json=body)


def test_a_rule_reading_a_field_without_a_type_is_refused(cluster: ClusterTarget) -> None:
    plural = f"{unique_name('rc')}s"
    refused = create(cluster, crd(plural, "!has(self.untyped) || has(self.typed)"))
    assert refused.status_code == 422, refused.text
    assert "undefined field 'untyped'" in refused.text
    accepted = create(cluster, crd(plural, "!has(self.typed) || self.typed != ''"))
    assert accepted.status_code == 201, accepted.text


def test_a_string_literal_with_an_escape_cel_has_not_is_refused(cluster: ClusterTarget) -> None:
    """cel-python reads `'\\s'` as backslash-s; cel-go's lexer, and so the API server, refuse it
    (a regular expression's `\\s` must be written `'\\\\s'`, or in a raw string)."""
    plural = f"{unique_name('rc')}s"
    refused = create(cluster, crd(plural, r"self.typed.matches('^\s+$')"))
    assert refused.status_code == 422, refused.text
    assert "token recognition error" in refused.text, refused.text
    for rule in (r"self.typed.matches('^\\s+$')", r"self.typed.matches(r'^\s+$')"):
        accepted = create(cluster, crd(plural, rule))
        assert accepted.status_code == 201, (rule, accepted.text)
    escapes = r"""'\a\b\f\n\r\t\v\"\'\`\\\?\x41\u0041\U00000041\101' != '' && b'\x00\101' != b''"""
    accepted = create(cluster, crd(plural, f"{escapes} || self.typed == ''"))
    assert accepted.status_code == 201, accepted.text


def test_the_operators_crds_compile(cluster: ClusterTarget) -> None:
    for path in sorted(OPERATOR_CRDS.glob("*.yaml")):
        body = copy.deepcopy(yaml.safe_load(path.read_text()))
        response = create(cluster, body)
        # 409: the real pass installed them already; a dry-run create still validates first.
        assert response.status_code in (201, 409), (path.name, response.text)
