"""Kubernetes quantities and ECS units (core.quantity)."""

from fractions import Fraction

import pytest

from ecs_operator.core.quantity import (
    bytes_to_mib,
    cpu_millicores,
    cpu_units_to_millicores,
    memory_bytes,
    mib_quantity,
    mib_to_bytes,
    millicores_quantity,
    millicores_to_cpu_units,
    parse_quantity,
    whole_count,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("2", Fraction(2)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("1.", Fraction(1)),
        ("+1", Fraction(1)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("1e-3", Fraction(1, 1000)),
        ("1E", Fraction(10**18)),
        ("1k", Fraction(1000)),
        ("1Ki", Fraction(1024)),
        ("128Mi", Fraction(128 * 2**20)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("1G", Fraction(10**9)),
        ("100n", Fraction(1, 10**7)),
        (" 1Gi ", Fraction(2**30)),
        (3, Fraction(3)),
        (0.25, Fraction(1, 4)),
    ],
)
def test_parse_quantity(text: str | int | float, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "m", "1.2.3", "1 Gi", "1gi", "1KI", "0x10", "1e"])
def test_parse_quantity_rejects_nonsense_naming_the_input(text: str) -> None:
    with pytest.raises(ValueError, match="invalid quantity") as error:
        parse_quantity(text)
    assert repr(text) in str(error.value)


@pytest.mark.parametrize("value", [True, float("nan"), float("inf"), "1e31"])
def test_parse_quantity_rejects_non_numbers_and_huge_exponents(value: object) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "millicores"),
    [("500m", 500), ("2", 2000), ("0.5", 500), ("0.1m", 1), ("1.0001", 1001), (1, 1000)],
)
def test_cpu_millicores_rounds_up(text: str | int, millicores: int) -> None:
    assert cpu_millicores(text) == millicores


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("128Mi", 134217728),
        ("1Gi", 2**30),
        ("1G", 10**9),
        ("1e3", 1000),
        ("1024", 1024),
        ("0.5", 1),
    ],
)
def test_memory_bytes_rounds_up(text: str, size: int) -> None:
    assert memory_bytes(text) == size


def test_negative_resources_are_rejected() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        cpu_millicores("-1")
    with pytest.raises(ValueError, match="must not be negative"):
        memory_bytes("-1Mi")


def test_cpu_units_and_millicores_round_in_the_safe_direction() -> None:
    assert cpu_units_to_millicores(1024) == 1000
    assert cpu_units_to_millicores(256) == 250
    assert cpu_units_to_millicores(1) == 1  # a demand is rounded up
    assert cpu_units_to_millicores(0) == 0
    assert millicores_to_cpu_units(1000) == 1024
    assert millicores_to_cpu_units(1) == 1  # 1.024 rounded down: a capacity
    assert millicores_to_cpu_units(999) == 1022


def test_memory_units() -> None:
    assert mib_to_bytes(512) == 512 * 2**20
    assert bytes_to_mib(2**20 - 1) == 0
    assert bytes_to_mib(3 * 2**20 + 5) == 3


def test_pod_quantity_strings_parse_back() -> None:
    assert millicores_quantity(250) == "250m"
    assert cpu_millicores(millicores_quantity(250)) == 250
    assert mib_quantity(512) == "512Mi"
    assert memory_bytes(mib_quantity(512)) == mib_to_bytes(512)


def test_whole_count() -> None:
    assert whole_count("110") == 110
    assert whole_count("1k") == 1000
    with pytest.raises(ValueError, match="must not be negative"):
        whole_count("-1")
