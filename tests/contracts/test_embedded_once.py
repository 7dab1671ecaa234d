"""The embedded chain runs a transaction once, as it is mined (escrowkit.evm.embedded):
a revert leaves nothing behind, and a sender too poor for a block's gas still sends."""

from __future__ import annotations

import pytest
from eth_account import Account

from escrowkit import errors
from escrowkit.contracts.token import TokenClient
from escrowkit.evm.chain import Chain


def test_a_revert_leaves_no_block_and_no_nonce_used(chain: Chain, usdc: TokenClient) -> None:
    if chain.backend != "embedded":
        pytest.skip("the embedded chain's own path")
    alice, bob = chain.accounts[1:3]
    block, nonce = chain.block_number(), chain.w3.eth.get_transaction_count(alice)
    with pytest.raises(errors.ERC20InsufficientBalance) as info:
        usdc.transfer(bob, 7, sender=alice)
    assert info.value.tx_hash is None  # as at estimation: nothing was sent
    assert (chain.block_number(), chain.w3.eth.get_transaction_count(alice)) == (block, nonce)
    receipt = usdc.mint(alice, 1, sender=alice)  # the nonce is still free
    assert chain.w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == nonce


def test_a_sender_too_poor_for_a_blocks_gas_pays_for_what_it_needs(
    chain: Chain, usdc: TokenClient
) -> None:
    poor = chain.add_signer(Account.create())
    rich = chain.accounts[0]
    fee = chain.w3.eth.get_block("latest")["baseFeePerGas"] * 3
    # Enough for a mint at its estimate, far too little for a whole block's gas.
    budget = 200_000 * fee
    chain.w3.eth.wait_for_transaction_receipt(
        chain.w3.eth.send_transaction({"from": rich, "to": poor, "value": budget, "gas": 21_000})
    )
    receipt = usdc.mint(poor, 5, sender=poor)
    assert receipt["status"] == 1 and usdc.balance_of(poor) == 5
    assert chain.w3.eth.get_transaction(receipt["transactionHash"])["gas"] < 1_000_000
