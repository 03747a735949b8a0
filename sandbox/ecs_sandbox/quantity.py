"""Kubernetes resource quantities, as the sandbox's scheduler and kubelet count them.

The sandbox's own parser (it never imports the operator): a quantity is a signed decimal number
(``12``, ``1.5``, ``.5``, ``5.``) followed by a binary suffix (``Ki`` … ``Ei``, powers of 1024), a
decimal suffix (``n u m k M G T P E`` or none) or a decimal exponent (``e3``, ``E-2``), the
grammar of `k8s.io/apimachinery/pkg/api/resource`. Values are exact (``Fraction``); a request
is rounded up to whole millicores, bytes or counts, as the API server rounds it. Surrounding
whitespace is ignored; a JSON number (int or finite float) is read as its decimal text.

The unit tests cross-check this parser against the operator's own (``core/quantity.py``) on
generated quantities: the two are written independently and must agree.
"""

from __future__ import annotations

import math
from fractions import Fraction

# Suffix -> power of 1024, power of 10.
_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_ASCII_DIGITS = frozenset("0123456789")
# Far above anything Kubernetes stores; keeps "1e999999999" from becoming a huge integer.
MAX_EXPONENT = 30
SUFFIX_HELP = "m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei, or an exponent such as e3"


class QuantityError(ValueError):
    """Not a Kubernetes quantity, or not one the caller can use (negative)."""


def _digits(text: str) -> bool:
    return all(char in _ASCII_DIGITS for char in text)


def _number(text: str) -> Fraction | None:
    """The value of ``[+-]digits[.digits]`` (either side of the point may be empty, not both);
    None when `text` is not such a number."""
    sign = 1
    if text[:1] in ("+", "-"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    whole, _, fraction = text.partition(".")
    if not (whole or fraction) or not _digits(whole) or not _digits(fraction):
        return None
    scale = 10 ** len(fraction)
    return sign * Fraction(int(whole or "0") * scale + int(fraction or "0"), scale)


def _exponent(text: str) -> int | None:
    """``[+-]digits`` as an int; None when `text` is not that."""
    unsigned = text[1:] if text[:1] in ("+", "-") else text
    if not unsigned or not _digits(unsigned):
        return None
    return int(text)


def _split(text: str, value: str) -> tuple[str, Fraction]:
    """(number text, multiplier) of a quantity's stripped text; QuantityError naming `value`
    for an exponent beyond MAX_EXPONENT."""
    if text[-2:] in _BINARY_SUFFIXES:
        return text[:-2], Fraction(1024) ** _BINARY_SUFFIXES[text[-2:]]
    marker = max(text.rfind("e"), text.rfind("E"))
    if marker > 0:
        exponent = _exponent(text[marker + 1 :])
        if exponent is not None:
            if abs(exponent) > MAX_EXPONENT:
                raise QuantityError(f"invalid quantity {value!r}: exponent beyond ±{MAX_EXPONENT}")
            return text[:marker], Fraction(10) ** exponent
    if text[-1:] in _DECIMAL_SUFFIXES:
        return text[:-1], Fraction(10) ** _DECIMAL_SUFFIXES[text[-1:]]
    return text, Fraction(1)


def parse_quantity(value: object) -> Fraction:
    """The exact value of a quantity: ``"1.5Gi"`` -> 1610612736, ``"250m"`` -> 1/4.

    QuantityError (a ValueError) naming the input otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(f"invalid quantity {value!r}: a number or a string is expected")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"invalid quantity {value!r}: not a finite number")
        return Fraction(repr(value))  # the float's shortest decimal text: 0.1 is one tenth
    digits, multiplier = _split(value.strip(), value)
    number = _number(digits)
    if number is None:
        raise QuantityError(
            f"invalid quantity {value!r}: a number with an optional suffix ({SUFFIX_HELP})"
        )
    return number * multiplier


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


def _non_negative(value: object, what: str) -> Fraction:
    quantity = parse_quantity(value)
    if quantity < 0:
        raise QuantityError(f"invalid {what} {value!r}: negative")
    return quantity


def cpu_millicores(value: object) -> int:
    """A CPU quantity in millicores, rounded up: ``"0.5"`` -> 500, ``"1m"`` -> 1."""
    return _ceil(_non_negative(value, "cpu quantity") * 1000)


def memory_bytes(value: object) -> int:
    """A memory quantity in bytes, rounded up: ``"128Mi"`` -> 134217728."""
    return _ceil(_non_negative(value, "memory quantity"))


def whole_count(value: object) -> int:
    """A countable resource (``pods``, extended resources), rounded up: ``"110"`` -> 110."""
    return _ceil(_non_negative(value, "count"))
