"""Validation of call arguments at the edge: each raises InvalidRequest before anything is sent.

Amounts are checked by :func:`escrowkit.core.units.check_amount` and addresses by
:func:`escrowkit.core.addresses.to_address`; these cover names, keys and the other
on-chain argument types.
"""

from __future__ import annotations

import re

from escrowkit.core.errors import InvalidRequest

__all__ = [
    "MAX_KEY_LENGTH",
    "bytes32",
    "check_idempotency_key",
    "int_in_range",
    "metadata32",
    "validate_name",
]

#: Agent ids, categories and approvers: printable, no surrounding blanks, at most 128.
_NAME = re.compile(r"^[^\s\x00-\x1f](?:[^\x00-\x1f]{0,126}[^\s\x00-\x1f])?$")
MAX_KEY_LENGTH = 255


def validate_name(value: object, what: str) -> str:
    """``value`` if it is a usable name (agent id, category, approver), else InvalidRequest."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidRequest(
            f"{what} must be a non-empty string of at most 128 printable characters without "
            f"surrounding blanks, got {value!r}"
        )
    return value


def check_idempotency_key(key: object) -> str | None:
    """``key`` if it is None or 1 to 255 printable characters, else InvalidRequest."""
    if key is not None and (
        not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or not key.isprintable()
    ):
        raise InvalidRequest(f"idempotency_key must be 1 to {MAX_KEY_LENGTH} printable characters")
    return key


def int_in_range(value: object, name: str, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be in [{low}, {high}], got {value}")
    return value


def bytes32(value: object, *, name: str) -> bytes:
    """Exactly 32 bytes, from bytes or hex text (an id or a salt)."""
    if isinstance(value, str):
        text = value[2:] if value[:2] in ("0x", "0X") else value
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise InvalidRequest(f"{name} must be 32 bytes or 0x-prefixed hex") from None
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        shown = (
            f"{len(value)} bytes"
            if isinstance(value, (bytes, bytearray))
            else (type(value).__name__)
        )
        raise InvalidRequest(f"{name} must be exactly 32 bytes, got {shown}")
    return bytes(value)


def metadata32(value: object) -> bytes:
    """Up to 32 bytes of metadata, right-padded to a ``bytes32``; text is refused (encode it)."""
    if isinstance(value, str):
        raise InvalidRequest("metadata must be bytes (e.g. 'text'.encode()), not str")
    if not isinstance(value, (bytes, bytearray)):
        raise InvalidRequest(f"metadata must be bytes, not {type(value).__name__}")
    if len(value) > 32:
        raise InvalidRequest(f"metadata must be at most 32 bytes, got {len(value)}")
    return bytes(value).ljust(32, b"\0")
