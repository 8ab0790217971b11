"""Kubernetes resource quantities (``100m``, ``1.5``, ``128Mi``, ``1G``, ``1e3``), exactly.

This mirrors ``k8s.io/apimachinery/pkg/api/resource.Quantity``:

- **Parsing** follows ``ParseQuantity``: an optional sign, digits with at most one decimal
  point, then a suffix that is a decimal SI one (``n u m "" k M G T P E``), a binary SI one
  (``Ki Mi Gi Ti Pi Ei``) or a decimal exponent (``e3``, ``E-2``). The suffix fixes the
  quantity's *format*, which decides how it is printed back. The magnitude is rounded *up* to
  a whole nano-unit (so ``0.1n`` is ``1n``) and binary quantities are capped at 2^63-1, as
  upstream does. The error messages are upstream's, word for word.
- **Values** are held as an exact :class:`fractions.Fraction`, never a float, so ``0.1 + 0.2``
  CPUs compare exactly; :meth:`Quantity.milli_value` and :meth:`Quantity.value` round up, as
  upstream's ``MilliValue`` and ``Value`` do.
- **Printing** follows ``CanonicalizeBytes``: decimal quantities as an integer mantissa and a
  power-of-1000 suffix (``1.5`` prints ``1500m``, ``2000`` prints ``2k``, ``1e3`` stays
  ``1e3``), binary ones as an integer times a power of 1024 when exact (``1.5Gi`` prints
  ``1536Mi``), falling back to decimal SI when not exact and for magnitudes below 1024.

Simplifications: a decimal SI value beyond the ``E`` suffix (10^21 and up) prints in exponent
form (``1e21``), where upstream's suffix table has nothing; an exponent suffix beyond
``e1000`` is refused as not numeric (upstream truncates it to 32 bits), one below ``e-1000``
is applied exactly (any non-zero amount rounds up to ``1n``).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import attrs

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT = f"quantities must match the regular expression '{QUANTITY_PATTERN}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
                     "E": 18}  # fmt: skip
_DECIMAL_BY_EXPONENT = {exp: suffix for suffix, exp in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_EXPONENT = {exp: suffix for suffix, exp in _BINARY_SUFFIXES.items()}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_NANO = Fraction(1, 10**9)
_MAX_BINARY = 2**63 - 1
_MAX_POWER = 1000


class QuantityError(ValueError):
    """A string that is not a quantity; ``str(error)`` is upstream's message."""


@attrs.frozen(eq=False, order=False)
class Quantity:
    """An exact amount of a resource and the format it prints in.

    Two quantities are equal and ordered by value alone (``1Gi == 1073741824``), as upstream's
    ``Cmp``; the format only affects :meth:`canonical`.
    """

    amount: Fraction
    format: str = DECIMAL_SI

    def milli_value(self) -> int:
        """The amount in thousandths, rounded up: ``100m`` is 100, ``1`` is 1000."""
        return math.ceil(self.amount * 1000)

    def value(self) -> int:
        """The amount in whole units, rounded up: ``128Mi`` is 134217728, ``100m`` is 1."""
        return math.ceil(self.amount)

    def is_zero(self) -> bool:
        return self.amount == 0

    def canonical(self) -> str:
        """Upstream's ``String()``: the form the API server stores and returns."""
        return _canonical(self.amount, self.format)

    def __str__(self) -> str:
        return self.canonical()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.amount == other.amount

    def __hash__(self) -> int:
        return hash(self.amount)

    def __lt__(self, other: Quantity) -> bool:
        return self.amount < other.amount

    def __le__(self, other: Quantity) -> bool:
        return self.amount <= other.amount

    def __gt__(self, other: Quantity) -> bool:
        return self.amount > other.amount

    def __ge__(self, other: Quantity) -> bool:
        return self.amount >= other.amount

    def __add__(self, other: Quantity) -> Quantity:
        """The sum, in this quantity's format (upstream's ``Add``)."""
        return Quantity(self.amount + other.amount, self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.amount - other.amount, self.format)


def parse_quantity(text: str) -> Quantity:
    """Parse ``text`` as upstream's ``ParseQuantity``; raise :class:`QuantityError` if invalid."""
    if not text:
        raise QuantityError(ERR_FORMAT)
    negative, number, suffix = _split(text)
    base, power, fmt = _interpret_suffix(suffix)
    magnitude = _parse_number(number)
    if power > _MAX_POWER:
        raise QuantityError(ERR_NUMERIC)
    if power < -_MAX_POWER:
        magnitude = _NANO if magnitude else Fraction(0)
    else:
        magnitude *= Fraction(base) ** power
    # Upstream rounds the magnitude up to a whole nano-unit before applying the sign.
    magnitude = _round_up_to_nano(magnitude)
    if fmt == BINARY_SI and magnitude > _MAX_BINARY:
        magnitude = Fraction(_MAX_BINARY)
    if fmt == BINARY_SI and 0 < magnitude < 1:
        fmt = DECIMAL_SI
    return Quantity(-magnitude if negative else magnitude, fmt)


def parse_quantity_json(value: Any) -> Quantity:
    """A quantity as it appears in a JSON object: a string, or a bare JSON number.

    Upstream's ``UnmarshalJSON`` parses a number through its text, so ``1`` and ``0.5`` are
    accepted as ``"1"`` and ``"0.5"``; anything else (a bool, a list) is not a quantity.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(ERR_FORMAT)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(ERR_FORMAT)
        return parse_quantity(repr(value))
    return parse_quantity(str(value).strip())


def is_quantity(value: Any) -> bool:
    try:
        parse_quantity_json(value)
    except QuantityError:
        return False
    return True


def _split(text: str) -> tuple[bool, str, str]:
    """Upstream's ``parseQuantityString``: sign, the numeric part and the suffix."""
    pos, end = 0, len(text)
    negative = False
    if text[0] in "+-":
        negative = text[0] == "-"
        pos = 1
    number_start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end and text[pos] == ".":
        pos += 1
        while pos < end and text[pos] in _DIGITS:
            pos += 1
    number = text[number_start:pos]
    if number_start == end:
        # A lone sign is zero upstream: its leading-zero scan runs off the end first.
        return negative, "0", ""
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos != end:
        raise QuantityError(ERR_FORMAT)
    return negative, number, text[suffix_start:]


def _parse_number(number: str) -> Fraction:
    whole, dot, fraction = number.partition(".")
    if not whole and not fraction:
        raise QuantityError(ERR_NUMERIC)
    digits = (whole or "0") + fraction
    return Fraction(int(digits), 10 ** len(fraction)) if dot else Fraction(int(whole))


def _interpret_suffix(suffix: str) -> tuple[int, int, str]:
    """``(base, power, format)`` of a suffix, as upstream's ``quantitySuffixer.interpret``."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        rest = suffix[1:]
        sign = rest[:1] if rest[:1] in ("+", "-") else ""
        digits = rest[len(sign) :]
        if digits and all(c in _DIGITS for c in digits) and len(digits) <= 19:
            power = int(sign + digits)
            if -(2**63) <= power < 2**63:
                return 10, power, DECIMAL_EXPONENT
    raise QuantityError(ERR_SUFFIX)


def _canonical(amount: Fraction, fmt: str) -> str:
    if amount == 0:
        return "0"
    sign = "-" if amount < 0 else ""
    magnitude = abs(amount)
    if fmt == BINARY_SI and magnitude >= 1024 and magnitude.denominator == 1:
        mantissa, power = int(magnitude), 0
        while mantissa % 1024 == 0 and power < 60:
            mantissa //= 1024
            power += 10
        return f"{sign}{mantissa}{_BINARY_BY_EXPONENT.get(power, '')}"
    mantissa, exponent = _decimal_mantissa(magnitude)
    if fmt == DECIMAL_EXPONENT:
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    suffix = _DECIMAL_BY_EXPONENT.get(exponent)
    if suffix is None:
        return f"{sign}{mantissa}e{exponent}"
    return f"{sign}{mantissa}{suffix}"


def _round_up_to_nano(magnitude: Fraction) -> Fraction:
    scaled = magnitude / _NANO
    return magnitude if scaled.denominator == 1 else math.ceil(scaled) * _NANO


def _decimal_mantissa(magnitude: Fraction) -> tuple[int, int]:
    """``(m, e)`` with ``magnitude == m * 10**e``, ``e`` a multiple of 3, ``m`` an integer
    holding no factor of 1000 it could give up (upstream's ``AsCanonicalBytes``)."""
    exponent = 0
    value = _round_up_to_nano(magnitude)
    while value.denominator != 1:
        value *= 10
        exponent -= 1
    mantissa = int(value)
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    return mantissa, exponent
