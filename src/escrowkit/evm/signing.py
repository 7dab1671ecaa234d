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
from rlp.codec import encode_raw

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
            _int(tx["chainId"]),
            _int(tx["nonce"]),
            _int(tx["maxPriorityFeePerGas"]),
            _int(tx["maxFeePerGas"]),
            _int(tx["gas"]),
            bytes.fromhex(tx["to"][2:]),
            _int(tx["value"]),
            bytes.fromhex(tx["data"][2:]),
            [],
        ]
        signature = self._key.sign_recoverable(keccak(b"\x02" + encode_raw(fields)), hasher=None)
        y_parity, r, s = signature[64], signature[:32], signature[32:64]
        # r and s are RLP integers: big-endian without leading zero bytes.
        raw = b"\x02" + encode_raw([*fields, _int(y_parity), r.lstrip(b"\0"), s.lstrip(b"\0")])
        return raw, "0x" + keccak(raw).hex()


def _int(value: int) -> bytes:
    """An RLP integer: its minimal big-endian bytes (the rlp package's own serializers,
    inferred per item, cost more than the whole signature)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")
