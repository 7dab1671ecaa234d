"""Addresses at the edge: validated, checksummed (EIP-55), never the zero address."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, cast

from escrowkit.core.errors import InvalidRequest

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

__all__ = ["ZERO_ADDRESS", "checksum", "to_address"]

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def to_address(value: object, *, name: str = "address") -> ChecksumAddress:
    """Validate an address at the edge: checksummed (or all one case), 20 bytes, not zero."""
    if isinstance(value, bytes) and len(value) == 20:
        value = "0x" + value.hex()
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a 20-byte hex address, got {value!r}")
    checked = _checksummed(value)
    if isinstance(checked, str):
        return cast("ChecksumAddress", checked)
    raise InvalidRequest(checked[0].format(name=name, value=value))


@functools.lru_cache(maxsize=8192)
def checksum(address: str) -> ChecksumAddress:
    """The checksummed form of a well-formed address a node returned (cached: each one
    costs a keccak, and receipts repeat the same few)."""
    from eth_utils.address import to_checksum_address

    return to_checksum_address(address)


@functools.lru_cache(maxsize=8192)
def _checksummed(value: str) -> str | tuple[str]:
    """The checksummed address, or a one-tuple holding the error's message template.

    Cached: a checksum costs a keccak, and the same few addresses (treasury, escrow,
    providers) are validated several times per spend. A mixed-case address whose checksum
    fails is never "corrected": EIP-55 exists to catch a mistyped character, and the
    checksummed form of a typo is a valid address of nobody.
    """
    from eth_utils.address import is_checksum_address, is_hex_address, to_checksum_address

    if value[:2] not in ("0x", "0X") and len(value) == 40 and is_hex_address("0x" + value):
        if _mixed_case(value) and not is_checksum_address("0x" + value):
            return (_WRONG_CHECKSUM,)
        return ("{name} must start with 0x: did you mean 0x{value}?",)
    if not is_hex_address(value) or value[:2] != "0x":
        return ("{name} must be a 20-byte hex address starting with 0x, got {value!r}",)
    if _mixed_case(value[2:]) and not is_checksum_address(value):
        return (_WRONG_CHECKSUM,)
    address = to_checksum_address(value)
    if int(address, 16) == 0:
        return ("{name} must not be the zero address",)
    return str(address)


_WRONG_CHECKSUM = (
    "{name} {value} has a wrong checksum (EIP-55): it may be mistyped; copy it again "
    "from its source"
)


def _mixed_case(body: str) -> bool:
    return not (body.islower() or body.isupper() or body.isdigit())
