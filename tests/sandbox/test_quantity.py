"""Kubernetes resource quantities: the API's grammar, rounded up as kube-apiserver does."""

from __future__ import annotations

import pytest

from ecs_operator.sandbox.quantity import cpu_millicores, memory_bytes, parse_quantity, whole_count


@pytest.mark.parametrize(
    ("value", "millicores"),
    [("500m", 500), ("2", 2000), ("0.5", 500), (1, 1000), (0.25, 250), ("0.1m", 1), ("1k", 10**6)],
)
def test_cpu_in_millicores(value: str | int | float, millicores: int) -> None:
    assert cpu_millicores(value) == millicores


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("128Mi", 128 * 2**20),
        ("1Gi", 2**30),
        ("1G", 10**9),
        ("1e3", 1000),
        ("1E3", 1000),
        ("1E", 10**18),
        ("12345", 12345),
        ("1.5Ki", 1536),
        ("0.5", 1),
        (".5Gi", 2**29),
    ],
)
def test_memory_in_bytes(value: str, size: int) -> None:
    assert memory_bytes(value) == size


def test_counts_are_whole_numbers() -> None:
    assert whole_count("110") == 110


def test_exact_value_keeps_fractions() -> None:
    assert str(parse_quantity("1.5m")) == "0.0015"


@pytest.mark.parametrize("value", ["", "abc", "1Gb", "1.2.3", "Mi", "1 Gi", "1ki", "--1"])
def test_nonsense_is_a_clear_value_error(value: str) -> None:
    with pytest.raises(ValueError, match=r"invalid quantity .*expected a number"):
        memory_bytes(value)


def test_negative_is_rejected() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        cpu_millicores("-1")


@pytest.mark.parametrize("value", [True, None, float("nan"), [1]])
def test_wrong_types_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(value)  # type: ignore[arg-type]
