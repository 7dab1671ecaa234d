"""Past states stay readable across many snapshot reverts (run with --chain anvil too).

anvil (with ``--prune-history``, as ``Chain.anvil()`` starts it) keeps recent states in
a queue of block hashes that a revert does not clean. A block mined again with a hash
the queue already holds (the same transaction after a revert, or any block on the block
the snapshot was taken on) then loses its state early, and an estimate that anvil pinned
to it fails with ``BlockOutOfRangeError``: once in a while, when a concurrent send mined
the next block in between (``test_async_spending``'s eight spends in flight). Here the
states are read on purpose, after every block, so that a lost one shows every time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from escrowkit.testing.plugin import fresh_snapshot

if TYPE_CHECKING:
    from escrowkit.contracts.token import TokenClient
    from escrowkit.evm.chain import Chain

#: Enough rounds of BLOCKS blocks to cycle anvil's 64 kept states a few times over.
ROUNDS = 20
#: Blocks per round: 64 is not a multiple of it (an old entry never leaves the queue
#: exactly when the same hash comes in again, which would hide the loss).
BLOCKS = 7


def _assert_readable(chain: Chain, block: int, round_: int) -> None:
    head = chain.block_number()
    try:
        chain.w3.eth.get_balance(chain.accounts[0], block_identifier=block)
    except Exception as exc:  # anvil: BlockOutOfRangeError
        raise AssertionError(f"round {round_}: block {block} unreadable at head {head}") from exc


def test_a_block_mined_again_after_a_revert_keeps_its_state(
    chain: Chain, usdc: TokenClient
) -> None:
    if chain.backend != "anvil":
        pytest.skip("anvil's kept states; eth-tester keeps every state")
    owner, alice = chain.accounts[:2]
    snapshot = chain.snapshot()
    start = chain.block_number()
    second = chain.now() + 1
    base_fee = hex(chain.w3.eth.get_block(start)["baseFeePerGas"])
    for round_ in range(ROUNDS):
        # The same transaction at the same second and base fee (anvil's fee keeps falling
        # across reverts, until it reaches its floor) on the same block: the same block.
        chain.transport.rpc("anvil_setNextBlockBaseFeePerGas", [base_fee])
        chain.set_next_block_timestamp(second)
        usdc.mint(alice, 1, sender=owner)
        again = chain.block_number()
        for n in range(BLOCKS - 1):
            usdc.mint(alice, 1_000 * round_ + n + 2, sender=owner)
            _assert_readable(chain, again, round_)
        chain.revert(snapshot)
        snapshot = chain.snapshot()
        assert chain.block_number() == start


def test_each_tests_snapshot_block_keeps_its_state(chain: Chain, usdc: TokenClient) -> None:
    owner, alice = chain.accounts[:2]
    for round_ in range(ROUNDS):
        snapshot = fresh_snapshot(chain)  # what the plugin does before every test
        base = chain.block_number()  # the empty block it mined: one of BLOCKS
        for n in range(BLOCKS - 1):
            usdc.mint(alice, 1_000 * round_ + n + 1, sender=owner)
            _assert_readable(chain, base, round_)
        chain.revert(snapshot)
