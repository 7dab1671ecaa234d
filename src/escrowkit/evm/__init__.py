"""The chain layer: one :class:`Chain` over eth-tester, anvil or any JSON-RPC node, and
what it is made of (transports, nonces, keys, reverts, the anvil process).

Importing it loads no web3: that comes with the first chain.
"""

from escrowkit.evm.anvil import AnvilProcess, find_anvil, free_port, start_anvil
from escrowkit.evm.chain import Chain
from escrowkit.evm.keys import ANVIL_DEV_KEYS
from escrowkit.evm.nonces import NonceManager
from escrowkit.evm.prepared import PreparedCall
from escrowkit.evm.reverts import revert_data_from_exception, revert_from_exception

__all__ = [
    "ANVIL_DEV_KEYS",
    "AnvilProcess",
    "Chain",
    "NonceManager",
    "PreparedCall",
    "find_anvil",
    "free_port",
    "revert_data_from_exception",
    "revert_from_exception",
    "start_anvil",
]
