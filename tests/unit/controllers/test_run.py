"""`ecs-operator run` flags: listening addresses, privilege grants, the operator's account."""

from __future__ import annotations

import argparse

import pytest

from ecs_operator.cli import build_parser
from ecs_operator.controllers.run import liveness_url


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_health_and_metrics_listen_on_this_host_only_by_default() -> None:
    args = parse()
    assert args.metrics_address == "127.0.0.1"
    assert liveness_url(args.liveness, args.health_address) == ("http://127.0.0.1:8080/healthz")


def test_the_health_address_and_the_liveness_url() -> None:
    assert liveness_url(None, "10.0.0.7") == "http://10.0.0.7:8080/healthz"
    assert liveness_url(None, "fd00::7") == "http://[fd00::7]:8080/healthz"
    # --liveness, for compatibility: as given, and '' turns the endpoint off.
    assert liveness_url("http://0.0.0.0:9000/healthz", "10.0.0.7") == "http://0.0.0.0:9000/healthz"
    assert liveness_url("", "10.0.0.7") is None


def test_privilege_grants_per_namespace() -> None:
    args = parse(
        "--allow-privileged-namespace",
        "agents",
        "--allow-privileged-namespace",
        "monitoring",
        "--allow-privileged-label",
        "ecs.operator.dev/allow-privileged=true",
    )
    assert args.allow_privileged is False
    assert args.allow_privileged_namespace == ["agents", "monitoring"]
    assert args.allow_privileged_label == (
        "ecs.operator.dev/allow-privileged",
        "true",
    )


def test_a_label_without_a_value_is_refused_naming_the_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse("--allow-privileged-label", "ecs.operator.dev/allow-privileged")
    assert "is not a label KEY=VALUE" in capsys.readouterr().err


def test_the_operators_service_account_comes_from_the_downward_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    monkeypatch.delenv("POD_SERVICE_ACCOUNT", raising=False)
    assert parse().operator_service_account is None
    monkeypatch.setenv("POD_NAMESPACE", "ops")
    monkeypatch.setenv("POD_SERVICE_ACCOUNT", "ecs-operator")
    assert parse().operator_service_account == ("ops", "ecs-operator")
    assert parse("--operator-service-account", "x/y").operator_service_account == (
        "x",
        "y",
    )
