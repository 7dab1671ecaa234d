"""Token amounts as exact integers of base units.

Money never touches a float here: ``parse_units("25.5", 6) == 25_500_000`` is computed
with :class:`decimal.Decimal` and refuses anything that does not fit exactly, and
``format_units`` renders base units back to a decimal string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from escrowkit.core.errors import InvalidRequest

__all__ = [
    "MAX_UINT32",
    "MAX_UINT40",
    "MAX_UINT96",
    "MAX_UINT128",
    "MAX_UINT256",
    "TokenUnits",
    "check_amount",
    "format_units",
    "parse_units",
]

# The bounds of the contracts' integer fields (one set, for every layer).
MAX_UINT32 = 2**32 - 1
MAX_UINT40 = 2**40 - 1
MAX_UINT96 = 2**96 - 1
MAX_UINT128 = 2**128 - 1
MAX_UINT256 = 2**256 - 1

# Plain decimal notation only, ASCII digits and one optional point: "1e3" is a typo as
# often as it is a thousand ("1e999999999" would build an integer of a billion digits),
# and \d would also take "٣" or "１", which a person reviewing an amount cannot check.
_PLAIN_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def parse_units(value: str | int | Decimal, decimals: int) -> int:
    """Convert a human amount (``"25"``, ``"0.01"``, ``Decimal("3.5")``) into base units.

    Text is ASCII digits and one optional point, nothing else: no blanks, signs, digit
    separators, exponents or other scripts' digits. Negative amounts are refused.

    Floats are refused: ``0.1`` has no exact binary value, and a rounding error in a
    payment is a bug. An amount with more fractional digits than ``decimals`` is refused
    rather than silently truncated.
    """
    _check_decimals(decimals)
    if isinstance(value, (bool, float)):
        raise InvalidRequest(
            f"amount must be a str, int or Decimal, not {type(value).__name__}; "
            'write parse_units("0.1", 6) instead of parse_units(0.1, 6)'
        )
    if isinstance(value, int):
        if value < 0:
            raise InvalidRequest(f"amounts are positive, got {value}")
        return value * int(10**decimals)
    if not isinstance(value, (str, Decimal)):
        raise InvalidRequest(f"amount must be a str, int or Decimal, not {type(value).__name__}")
    if isinstance(value, str):
        if value[:1] in ("-", "+") and _PLAIN_DECIMAL.fullmatch(value[1:]):
            raise InvalidRequest(f"amounts are positive and written without a sign, got {value!r}")
        if not _PLAIN_DECIMAL.fullmatch(value):
            raise InvalidRequest(
                f"not a decimal amount: {value!r} (write ASCII digits with an optional point, "
                'like "25" or "0.01", without blanks, signs or separators)'
            )
        number = Decimal(value)  # the pattern admits only what Decimal reads
    else:
        number = value
    if not number.is_finite():
        raise InvalidRequest(f"amount must be finite, got {value!r}")
    if number < 0:
        raise InvalidRequest(f"amounts are positive, got {value!r}")
    if number and number.adjusted() + decimals > 78:
        raise InvalidRequest(f"{value!r} is larger than any token amount (2**256)")
    # Decimal's default 28-digit context would round a uint96 of an 18-decimal token.
    with localcontext(prec=200):
        scaled = number.scaleb(decimals)
        if scaled != scaled.to_integral_value():
            raise InvalidRequest(f"{value!r} has more than {decimals} decimal places")
        return int(scaled)


def format_units(amount: int, decimals: int, *, places: int | None = None) -> str:
    """Render base units as a decimal string: ``format_units(150_000_000, 6) == "150"``.

    ``places`` pads or rounds (half-even, display only) to a fixed number of decimals,
    e.g. ``format_units(150_000_000, 6, places=2) == "150.00"``.
    """
    _check_decimals(decimals)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequest(f"amount must be an int of base units, not {type(amount).__name__}")
    with localcontext(prec=200, rounding=ROUND_HALF_EVEN):
        value = Decimal(amount).scaleb(-decimals)
        if places is not None:
            return f"{value.quantize(Decimal(1).scaleb(-places)):f}"
        text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def check_amount(
    amount: object, *, name: str = "amount", allow_zero: bool = False, maximum: int = MAX_UINT96
) -> int:
    """Return ``amount`` if it is an int in (0, maximum] (or [0, maximum]), else InvalidRequest.

    The default bound is the escrow's ``uint96`` amount field (amounts must be < 2**96).
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        hint = " (use parse_units to convert)" if isinstance(amount, (float, str, Decimal)) else ""
        raise InvalidRequest(
            f"{name} must be an int of base units, not {type(amount).__name__}{hint}"
        )
    low_ok = amount >= 0 if allow_zero else amount > 0
    if not low_ok:
        raise InvalidRequest(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {amount}")
    if amount > maximum:
        bound = "< 2**96" if maximum == MAX_UINT96 else f"<= {maximum}"
        raise InvalidRequest(f"{name} must be {bound}, got {amount}")
    return amount


def _check_decimals(decimals: int) -> None:
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 77:
        raise InvalidRequest(f"decimals must be an int in [0, 77], got {decimals!r}")


@dataclass(frozen=True)
class TokenUnits:
    """How to show base units to a person (the one formatter of amounts):
    ``TokenUnits(6, "USDC").format(150_000_000) == "150.00 USDC"``."""

    decimals: int
    symbol: str

    def format(self, amount: int) -> str:
        """At least two decimals, and as many more as the amount needs to be exact."""
        text = format_units(amount, self.decimals)
        whole, _, fraction = text.partition(".")
        if self.decimals >= 2 and len(fraction) < 2:
            text = f"{whole}.{fraction.ljust(2, '0')}"
        return f"{text} {self.symbol}"
