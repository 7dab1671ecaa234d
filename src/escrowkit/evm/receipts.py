"""Receipts read over raw JSON-RPC, formatted exactly as web3 formats them.

The lean transport reads ``eth_getTransactionReceipt`` itself (see
:mod:`escrowkit.evm.http`); :func:`format_receipt` turns the raw result into what
``w3.eth.get_transaction_receipt`` returns, so callers cannot tell the paths apart.
(Imports web3: imported only where a lean transport is in use.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hexbytes import HexBytes
from web3.datastructures import AttributeDict

from escrowkit.core.addresses import checksum

__all__ = ["format_receipt"]


def _int(value: Any) -> Any:
    return int(value, 16) if isinstance(value, str) else value


def _address(value: Any) -> Any:
    return checksum(value) if isinstance(value, str) and len(value) == 42 else value


def _format(raw: Mapping[str, Any], formatters: Mapping[str, Any]) -> Any:
    """``raw`` with each known field converted (None stays None) and the rest as web3
    leaves them (nested mappings as AttributeDicts)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        convert = formatters.get(key)
        if value is None:
            out[key] = None
        elif convert is not None:
            out[key] = convert(value)
        else:
            out[key] = AttributeDict.recursive(value)
    return AttributeDict(out)


def _log(raw: Mapping[str, Any]) -> Any:
    return _format(raw, _LOG_FIELDS)


_LOG_FIELDS: dict[str, Any] = {
    **dict.fromkeys(("blockNumber", "transactionIndex", "logIndex"), _int),
    **dict.fromkeys(("blockHash", "transactionHash", "data"), HexBytes),
    "topics": lambda topics: [HexBytes(topic) for topic in topics],
    "address": checksum,
}
_RECEIPT_FIELDS: dict[str, Any] = {
    **dict.fromkeys(
        (
            "blockNumber",
            "transactionIndex",
            "cumulativeGasUsed",
            "status",
            "gasUsed",
            "effectiveGasPrice",
            "type",
            "blobGasPrice",
            "blobGasUsed",
        ),
        _int,
    ),
    **dict.fromkeys(("blockHash", "transactionHash", "logsBloom"), HexBytes),
    **dict.fromkeys(("from", "contractAddress", "to"), _address),
    "logs": lambda logs: [_log(log) for log in logs],
}


def format_receipt(raw: Mapping[str, Any]) -> Any:
    """A raw ``eth_getTransactionReceipt`` result as web3 formats it: an ``AttributeDict``
    with ints, ``HexBytes`` hashes and checksummed addresses (unknown fields as they are).
    """
    return _format(raw, _RECEIPT_FIELDS)
