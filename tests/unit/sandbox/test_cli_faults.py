"""`ecs-sandbox serve`'s fault flags: the realistic defaults, and each flag reaching `Faults`."""

from __future__ import annotations

import argparse

import pytest

from ecs_sandbox.serve import add_arguments, sandbox_from_args


def faults_from(*flags: str) -> dict[str, object]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return sandbox_from_args(parser.parse_args(list(flags))).faults.to_dict()


def test_the_default_codes_are_what_real_api_servers_answer() -> None:
    faults = faults_from()
    assert faults["codes"] == [500, 503, 429]
    assert faults["error_rate"] == 0.0 and faults["lost_create_rate"] == 0.0


def test_each_fault_flag_reaches_the_faults() -> None:
    faults = faults_from(
        "--fault-error-rate=0.05",
        "--fault-codes=500,409",
        "--fault-lost-create-rate=0.1",
        "--fault-watch-drop-seconds=3",
        "--fault-expire-rate=0.2",
        "--seed=4",
    )
    assert faults["error_rate"] == 0.05
    assert faults["codes"] == [500, 409]
    assert faults["lost_create_rate"] == 0.1
    assert faults["watch_drop_interval"] == 3.0
    assert faults["expire_rate"] == 0.2
    assert faults["seed"] == 4


def test_a_rate_out_of_range_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="lost_create_rate"):
        faults_from("--fault-lost-create-rate=2")
