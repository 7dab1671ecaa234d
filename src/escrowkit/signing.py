"""EIP-1559 transaction signing: byte for byte what eth-account produces, for less.

eth-account builds a typed-transaction object and validates and normalizes every field
through several layers before it signs (0.4 to 0.6 ms here); the transactions escrowkit
sends are already canonical (ints, a checksummed ``to``, hex calldata), so encoding them
with RLP and signing the hash with libsecp256k1 (coincurve, RFC 6979 nonces, low ``s``)
gives the same bytes in a fraction of the time. ``tests/unit/test_signing.py`` compares
the two on random transactions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import coincurve
from eth_utils.crypto import keccak

__all__ = ["Signer"]


class Signer:
    """Signs type-2 (EIP-1559) contract calls for one private key."""

    def __init__(self, private_key: bytes) -> None:
        self._key = coincurve.PrivateKey(bytes(private_key))

    def sign(self, tx: Mapping[str, Any]) -> tuple[bytes, str]:
        """``(raw transaction, 0x hash)`` of ``tx``, a dict with ``chainId``, ``nonce``,
        ``maxPriorityFeePerGas``, ``maxFeePerGas``, ``gas``, ``to`` (a 0x address),
        ``value`` and ``data`` (0x hex), and an empty access list."""
        fields = [
            tx["chainId"],
            tx["nonce"],
            tx["maxPriorityFeePerGas"],
            tx["maxFeePerGas"],
            tx["gas"],
            bytes.fromhex(tx["to"][2:]),
            tx["value"],
            bytes.fromhex(tx["data"][2:]),
            [],
        ]
        body = b"".join(_item(field) for field in fields)
        signature = self._key.sign_recoverable(keccak(b"\x02" + _list(body)), hasher=None)
        y_parity = _item(signature[64])
        # r and s as RLP integers: big-endian without leading zero bytes.
        r, s = _item(signature[:32].lstrip(b"\0")), _item(signature[32:64].lstrip(b"\0"))
        raw = b"\x02" + _list(body + y_parity + r + s)
        return raw, "0x" + keccak(raw).hex()


# RLP, for the two shapes a transaction has: byte strings (integers as their minimal
# big-endian bytes) and lists. (The rlp package infers a serializer per item: most of
# what signing cost.)


def _length(length: int, short: int) -> bytes:
    if length < 56:
        return bytes((short + length,))
    size = (length.bit_length() + 7) // 8
    return bytes((short + 55 + size,)) + length.to_bytes(size, "big")


def _item(value: int | bytes | list[Any]) -> bytes:
    if isinstance(value, list):
        return _list(b"".join(_item(v) for v in value))
    if isinstance(value, int):
        if value < 0:
            raise ValueError("RLP integers are unsigned")
        value = value.to_bytes((value.bit_length() + 7) // 8, "big")
    if len(value) == 1 and value[0] < 0x80:
        return value
    return _length(len(value), 0x80) + value


def _list(body: bytes) -> bytes:
    return _length(len(body), 0xC0) + body
