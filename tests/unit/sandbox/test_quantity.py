"""The sandbox's own quantity parser (ecs_sandbox.quantity), and its cross-check against the
operator's (ecs_operator.core.quantity): two parsers written apart must agree on every input."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ecs_operator.core import quantity as operator_quantity
from ecs_sandbox import quantity
from ecs_sandbox.quantity import (
    MAX_EXPONENT,
    QuantityError,
    cpu_millicores,
    memory_bytes,
    parse_quantity,
    whole_count,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500m", Fraction(1, 2)),
        ("2", Fraction(2)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("+1", Fraction(1)),
        ("-1.5", Fraction(-3, 2)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("1e+3", Fraction(1000)),
        ("2.5e-3", Fraction(1, 400)),
        ("1E", Fraction(10**18)),  # exa, not an exponent
        ("1k", Fraction(1000)),
        ("1Ki", Fraction(1024)),
        ("128Mi", Fraction(128 * 2**20)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("1Ei", Fraction(2**60)),
        ("1G", Fraction(10**9)),
        ("100n", Fraction(1, 10**7)),
        ("3u", Fraction(3, 10**6)),
        (" 1Gi ", Fraction(2**30)),
        (3, Fraction(3)),
        (0.1, Fraction(1, 10)),  # the float's decimal text, not its binary value
        (1e-05, Fraction(1, 100000)),
    ],
)
def test_parse_quantity(value: str | int | float, expected: Fraction) -> None:
    assert parse_quantity(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "abc",
        "m",
        "Ki",
        ".",
        "+",
        "1.2.3",
        "1 Gi",
        "1gi",
        "1KI",
        "0x10",
        "1e",
        "e3",
        "1e3.5",
        "1e+-3",
        "1e3Ki",
        "++1",
        "1,5",
        "\u0661",  # a digit, but not an ASCII one: Kubernetes reads only 0-9
        f"1e{MAX_EXPONENT + 1}",
        f"1e-{MAX_EXPONENT + 1}",
        True,
        None,
        [1],
        float("nan"),
        float("inf"),
    ],
)
def test_parse_quantity_rejects_what_is_not_a_quantity_naming_it(value: object) -> None:
    with pytest.raises(QuantityError, match="invalid quantity") as error:
        parse_quantity(value)
    assert repr(value) in str(error.value)


def test_requests_round_up_to_whole_units() -> None:
    assert cpu_millicores("0.5") == 500
    assert cpu_millicores("1m") == 1
    assert cpu_millicores("0.0001") == 1
    assert cpu_millicores(2) == 2000
    assert memory_bytes("128Mi") == 134217728
    assert memory_bytes("0.5") == 1
    assert whole_count("110") == 110
    assert whole_count("1.2") == 2


@pytest.mark.parametrize("convert", [cpu_millicores, memory_bytes, whole_count])
def test_negative_requests_are_refused(convert: Callable[[object], int]) -> None:
    with pytest.raises(ValueError, match="negative"):
        convert("-1")


# --- cross-check against the operator's parser ------------------------------------------------

DIGITS = st.text(alphabet="0123456789", max_size=12)
SUFFIXES = st.sampled_from(
    ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
)


@st.composite
def quantities(draw: st.DrawFn) -> str:
    """A valid quantity in Kubernetes' grammar: sign, number, and a suffix or an exponent."""
    sign = draw(st.sampled_from(["", "+", "-"]))
    whole = draw(DIGITS)
    fraction = draw(DIGITS)
    point = draw(st.booleans()) or not whole
    if not whole and not fraction:
        whole = "0"
    number = f"{whole}.{fraction}" if point else whole
    if draw(st.booleans()):
        marker = draw(st.sampled_from(["e", "E"]))
        exponent_sign = draw(st.sampled_from(["", "+", "-"]))
        exponent = draw(st.integers(0, MAX_EXPONENT))
        width = draw(st.integers(0, 2))
        return f"{sign}{number}{marker}{exponent_sign}{exponent:0{width}d}"
    return f"{sign}{number}{draw(SUFFIXES)}"


def _outcome(parse: Callable[[object], object], value: object) -> object:
    try:
        return parse(value)
    except ValueError:
        return "rejected"


@given(quantities())
@example("0.")
@example(".0")
@example("1E")
@example("-0")
@example(f"1e-{MAX_EXPONENT}")
def test_both_parsers_read_every_valid_quantity_alike(text: str) -> None:
    value = parse_quantity(text)
    assert value == operator_quantity.parse_quantity(text)
    for name in ("cpu_millicores", "memory_bytes", "whole_count"):
        ours = _outcome(getattr(quantity, name), text)
        assert ours == _outcome(getattr(operator_quantity, name), text), name
        assert (ours == "rejected") == (value < 0), name


@given(st.text(alphabet="0123456789.+-eEnumkMGTPKi \t", max_size=10))
@example("1e31")
@example("1.2.3")
@example(" 1Gi ")
def test_both_parsers_accept_and_reject_the_same_texts(text: str) -> None:
    assert _outcome(parse_quantity, text) == _outcome(operator_quantity.parse_quantity, text)


@given(
    st.one_of(
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e20, max_value=1e20),
    )
)
def test_both_parsers_read_json_numbers_alike(value: float) -> None:
    assert parse_quantity(value) == operator_quantity.parse_quantity(value)
    assert _outcome(cpu_millicores, value) == _outcome(operator_quantity.cpu_millicores, value)
