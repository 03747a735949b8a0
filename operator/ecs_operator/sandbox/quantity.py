"""Kubernetes resource quantities ("500m", "2", "128Mi", "1G", "1e3") as integers.

The grammar is the API's: a signed decimal number followed by an optional binary suffix
(Ki Mi Gi Ti Pi Ei), decimal suffix (n u m k M G T P E) or decimal exponent (e3, E-2).
As kube-apiserver does, fractions are rounded up: "0.1m" of CPU is 1 millicore and "0.5" bytes
is 1 byte.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>[KMGTPE]i|[eE][+-]?[0-9]+|[numkMGTPE])?$"
)


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a quantity in base units (cores, bytes); ValueError when malformed."""
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}: expected a number or a string like '500m'")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"invalid quantity {value!r}: must be finite")
        return Decimal(str(value))
    if not isinstance(value, str):
        raise ValueError(f"invalid quantity {value!r}: expected a number or a string like '500m'")
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise ValueError(
            f"invalid quantity {value!r}: expected a number with an optional suffix "
            "(m, k, M, G, Ki, Mi, Gi, …) or exponent (e3)"
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation as error:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"invalid quantity {value!r}") from error
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Decimal(10) ** int(suffix[1:])


def _rounded_up(value: str | int | float, scale: int) -> int:
    scaled = parse_quantity(value) * scale
    if scaled < 0:
        raise ValueError(f"invalid quantity {value!r}: must not be negative")
    return int(scaled.to_integral_value(rounding=ROUND_CEILING))


def cpu_millicores(value: str | int | float) -> int:
    """CPU quantity in millicores, rounded up: "500m" -> 500, "2" -> 2000, "0.5" -> 500."""
    return _rounded_up(value, 1000)


def memory_bytes(value: str | int | float) -> int:
    """Memory quantity in bytes, rounded up: "128Mi" -> 134217728, "1G" -> 10**9."""
    return _rounded_up(value, 1)


def whole_count(value: str | int | float) -> int:
    """A countable resource (`pods`, extended resources) as an integer: "110" -> 110."""
    return _rounded_up(value, 1)
