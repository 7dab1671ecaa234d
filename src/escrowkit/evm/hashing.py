"""Keccak for everything this process hashes, on the fastest backend installed.

eth-hash (under web3, eth-account, py-evm and py-trie) picks pycryptodome when both it and
pysha3 are installed; pysha3's keccak costs a third as much per call, and an embedded
chain hashes hundreds of times per transaction (state tries, addresses, signatures). The
digests are the same. :func:`use_fast_keccak` switches eth-hash to pysha3 when a Chain is
made (never on ``import escrowkit``), unless ``ETH_HASH_BACKEND`` chooses a backend.
"""

from __future__ import annotations

import os

__all__ = ["use_fast_keccak"]

_done = False


def use_fast_keccak() -> None:
    """Make eth-hash's shared ``keccak`` use pysha3, when installed and no backend is
    chosen by ``ETH_HASH_BACKEND``."""
    global _done
    if _done:
        return
    _done = True
    if os.environ.get("ETH_HASH_BACKEND"):
        return
    try:
        from eth_hash.auto import keccak
        from eth_hash.backends import pysha3
    except ImportError:
        return
    keccak.hasher = pysha3.backend.keccak256  # type: ignore[assignment]
    keccak.preimage = pysha3.backend.preimage  # type: ignore[assignment]
