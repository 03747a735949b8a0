"""Kubernetes resource quantities and ECS resource units.

Kubernetes writes CPU as cores or millicores (``"2"``, ``"0.5"``, ``"500m"``) and memory as bytes
with SI or binary suffixes (``"128Mi"``, ``"1G"``, ``"1e3"``). ECS counts CPU in units (1024 per
vCPU) and memory in MiB (its task-level ``"1 vCPU"``/``"2GB"`` strings are parsed by
``models.common``, where the CRD's bounds live). Arithmetic is exact (``Fraction``); conversions
round so that the operator never promises more than a node has: a demand is rounded up, a
capacity down.
"""

import math
import re
from fractions import Fraction
from typing import Final

MILLICORES_PER_VCPU: Final = 1000
CPU_UNITS_PER_VCPU: Final = 1024
MIB: Final = 1024 * 1024

_BINARY_SUFFIXES: Final = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SUFFIXES: Final = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
# Kubernetes itself caps quantities far below 10**30; the cap keeps "1e999999999" cheap to reject.
_MAX_EXPONENT: Final = 30
_QUANTITY: Final = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<decimal>[numkMGTPE]?)|[eE](?P<exponent>[+-]?\d+))"
)


def parse_quantity(value: str | int | float) -> Fraction:
    """The exact value of a Kubernetes quantity, e.g. ``"1.5Gi"`` -> 1610612736.

    Raises ``ValueError`` naming the input when it is not a quantity.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}: expected a number or a string")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"invalid quantity {value!r}: not a finite number")
        return Fraction(str(value))
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        raise ValueError(
            f"invalid quantity {value!r}: expected a number with an optional suffix "
            "(m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei) or exponent (e.g. 1e3)"
        )
    number = Fraction(match["number"])
    if match["binary"] is not None:
        return number * (1 << 10 * _BINARY_SUFFIXES[match["binary"]])
    if match["exponent"] is None:
        return number * _power_of_ten(_DECIMAL_SUFFIXES[match["decimal"]])
    exponent = int(match["exponent"])
    if abs(exponent) > _MAX_EXPONENT:
        raise ValueError(f"invalid quantity {value!r}: exponent beyond ±{_MAX_EXPONENT}")
    return number * _power_of_ten(exponent)


def _power_of_ten(exponent: int) -> Fraction:
    return Fraction(10**exponent) if exponent >= 0 else Fraction(1, 10**-exponent)


def _non_negative(value: str | int | float, quantity: Fraction, what: str) -> Fraction:
    if quantity < 0:
        raise ValueError(f"invalid {what} {value!r}: must not be negative")
    return quantity


def cpu_millicores(value: str | int | float) -> int:
    """A Kubernetes CPU quantity in millicores, rounded up as Kubernetes does (``"0.5"`` -> 500)."""
    cores = _non_negative(value, parse_quantity(value), "cpu quantity")
    return math.ceil(cores * MILLICORES_PER_VCPU)


def memory_bytes(value: str | int | float) -> int:
    """A Kubernetes memory quantity in bytes, rounded up (``"128Mi"`` -> 134217728)."""
    return math.ceil(_non_negative(value, parse_quantity(value), "memory quantity"))


def cpu_units_to_millicores(units: int) -> int:
    """ECS CPU units as millicores, rounded up (a task's demand): 1024 units = 1000m."""
    return -(-units * MILLICORES_PER_VCPU // CPU_UNITS_PER_VCPU)


def millicores_to_cpu_units(millicores: int) -> int:
    """Millicores as ECS CPU units, rounded down (a node's capacity): 1000m = 1024 units."""
    return millicores * CPU_UNITS_PER_VCPU // MILLICORES_PER_VCPU


def mib_to_bytes(mib: int) -> int:
    """MiB (ECS memory) as bytes."""
    return mib * MIB


def bytes_to_mib(size: int) -> int:
    """Bytes as whole MiB, rounded down (a node's capacity)."""
    return size // MIB


def millicores_quantity(millicores: int) -> str:
    """Millicores as a Pod's Kubernetes quantity string (``250`` -> ``"250m"``)."""
    return f"{millicores}m"


def mib_quantity(mib: int) -> str:
    """MiB as a Pod's Kubernetes quantity string (``512`` -> ``"512Mi"``)."""
    return f"{mib}Mi"


def whole_count(value: str | int | float) -> int:
    """A countable resource (``pods``, extended resources) as an integer: ``"110"`` -> 110."""
    return math.ceil(_non_negative(value, parse_quantity(value), "count"))
