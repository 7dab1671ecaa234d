from decimal import Decimal

import pytest

from escrowkit.core.units import MAX_UINT96, check_amount, format_units, parse_units
from escrowkit.errors import InvalidRequest


@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [
        ("25", 6, 25_000_000),
        ("0.000001", 6, 1),
        ("1000.5", 6, 1_000_500_000),
        (Decimal("3.25"), 6, 3_250_000),
        (7, 18, 7 * 10**18),
        ("9.3", 18, 9_300_000_000_000_000_000),
        (".5", 6, 500_000),
        ("5.", 6, 5_000_000),
    ],
)
def test_parse_units_is_exact(text: object, decimals: int, expected: int) -> None:
    assert parse_units(text, decimals) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        *(0.1, True, None, "abc", "1e", "nan", "inf", "0.0000001"),
        *("1e3", "2E-1", "0x10", "1,5", "", "."),  # plain decimal notation only
        *("1e999999999", Decimal("1e999999999"), "1" + "0" * 80),  # no billion-digit ints
        *("٣", "１", "2٣", "-5", "+5", " 5", "5 ", "1_000", -5, Decimal("-1")),  # ASCII only
    ],
)
def test_parse_units_refuses_floats_and_junk(bad: object) -> None:
    with pytest.raises(InvalidRequest):
        parse_units(bad, 6)  # type: ignore[arg-type]


def test_float_error_suggests_the_fix() -> None:
    with pytest.raises(InvalidRequest, match=r'parse_units\("0.1", 6\)'):
        parse_units(0.1, 6)  # type: ignore[arg-type]


def test_format_units() -> None:
    assert format_units(150_000_000, 6) == "150"
    assert format_units(150_000_000, 6, places=2) == "150.00"
    assert format_units(1, 6) == "0.000001"
    assert format_units(2**96 - 1, 18) == "79228162514.264337593543950335"
    with pytest.raises(InvalidRequest):
        format_units(1.5, 6)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, MAX_UINT96 + 1, 1.0, "5", True, Decimal(5)])
def test_check_amount_bounds_and_types(bad: object) -> None:
    with pytest.raises(InvalidRequest):
        check_amount(bad)


def test_check_amount_accepts_the_uint96_range() -> None:
    assert check_amount(1) == 1
    assert check_amount(MAX_UINT96) == MAX_UINT96
    assert check_amount(0, allow_zero=True) == 0


def test_invalid_request_is_also_a_value_error() -> None:
    with pytest.raises(ValueError):
        check_amount(-5)


def test_round_trip_of_large_18_decimal_amounts_is_exact() -> None:
    for amount in (2**63 + 1, 2**96 - 1, 10**27 + 7):
        assert parse_units(format_units(amount, 18), 18) == amount


@pytest.mark.parametrize("signed", ["-5", "+5", -5, Decimal("-0.5")])
def test_signs_are_refused_saying_amounts_are_positive(signed: object) -> None:
    with pytest.raises(InvalidRequest, match="amounts are positive"):
        parse_units(signed, 6)  # type: ignore[arg-type]
