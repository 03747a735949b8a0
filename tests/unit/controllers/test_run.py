"""`ecs-operator run` flags: listening addresses, privilege grants, the operator's account."""

from __future__ import annotations

import argparse
import socket

import pytest

from ecs_operator.cli import build_parser
from ecs_operator.controllers.run import (
    HEALTH_PORT,
    endpoint_problems,
    listen_problem,
    liveness_url,
)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_health_and_metrics_listen_on_this_host_only_by_default() -> None:
    args = parse()
    assert args.metrics_address == "127.0.0.1"
    url = liveness_url(args.liveness, args.health_address, args.health_port)
    assert url == "http://127.0.0.1:8081/healthz"


def test_the_health_address_port_and_the_liveness_url() -> None:
    assert liveness_url(None, "10.0.0.7") == "http://10.0.0.7:8081/healthz"
    assert liveness_url(None, "fd00::7", 9000) == "http://[fd00::7]:9000/healthz"
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


def test_the_default_ports_do_not_clash_with_the_sandbox() -> None:
    """`ecs-sandbox serve` and `ecs-operator run` start side by side with their defaults (the
    sandbox's 8080 is kube-apiserver's old plain-HTTP port, kubectl's fallback)."""
    from ecs_sandbox.serve import DEFAULT_PORT as SANDBOX_PORT

    args = parse()
    assert HEALTH_PORT == args.health_port == 8081
    assert SANDBOX_PORT == 8080
    assert args.metrics_port == 0  # off unless asked for


def test_a_busy_port_is_one_line_naming_the_flag_to_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert listen_problem("127.0.0.1", port) is not None
        health, metrics = endpoint_problems(
            parse("--health-port", str(port), "--metrics-port", str(port))
        )
        assert health == (
            f"ecs-operator: cannot serve the health endpoint on 127.0.0.1:{port}: address "
            "already in use; pick another port with --health-port, or turn the endpoint off "
            "with --liveness ''"
        )
        assert "--metrics-port (0 turns metrics off)" in metrics
        liveness = endpoint_problems(parse("--liveness", f"http://127.0.0.1:{port}/healthz"))
        assert liveness and "change the URL of --liveness" in liveness[0]
        assert endpoint_problems(parse("--liveness", "", "--health-port", str(port))) == []

        code = (
            build_parser()
            .parse_args(["run", "--health-port", str(port)])
            .handler(parse("--health-port", str(port)))
        )
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert listen_problem("127.0.0.1", port) is None  # free again


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_ports_are_checked(port: str) -> None:
    with pytest.raises(SystemExit):
        parse("--health-port", port)
