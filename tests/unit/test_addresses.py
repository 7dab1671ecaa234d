"""Addresses at the edge (EIP-55): a failed checksum is reported, never "corrected"."""

from __future__ import annotations

import pytest

from escrowkit.core.addresses import to_address
from escrowkit.errors import InvalidRequest

GOOD = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
TYPO = "0x2b5AD5c4795c026514f8317c7a215E218DcCD6cF"  # one letter's case changed


def test_a_checksummed_or_single_case_address_passes() -> None:
    assert to_address(GOOD) == GOOD
    assert to_address(GOOD.lower()) == GOOD
    assert to_address("0x" + GOOD[2:].upper()) == GOOD


def test_a_wrong_checksum_is_reported_and_never_corrected() -> None:
    with pytest.raises(InvalidRequest) as info:
        to_address(TYPO, name="provider")
    message = str(info.value)
    assert "wrong checksum" in message and "mistyped" in message
    assert GOOD not in message  # the checksummed form of a typo is nobody's address


def test_a_correct_address_without_0x_is_not_a_wrong_checksum() -> None:
    with pytest.raises(InvalidRequest, match="must start with 0x") as info:
        to_address(GOOD[2:], name="provider")
    assert "checksum" not in str(info.value) and GOOD in str(info.value)
    with pytest.raises(InvalidRequest, match="wrong checksum"):
        to_address(TYPO[2:])


@pytest.mark.parametrize("bad", ["0x1234", "hello", "0x" + "g" * 40, 42, None, "0x" + "0" * 40])
def test_malformed_addresses_are_refused(bad: object) -> None:
    with pytest.raises(InvalidRequest):
        to_address(bad)
