"""The embedded chain runs a transaction once, as it is mined (escrowkit.evm.embedded):
a revert leaves nothing behind, and a sender too poor for a block's gas still sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from eth_account import Account

from escrowkit import errors
from escrowkit.build.compiler import load_artifact
from escrowkit.contracts.escrow import EscrowClient
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


def _typed(value: object) -> object:
    """``value`` with the type of every part spelled out, so that equal receipts whose
    fields differ only in type (bytes against HexBytes, dict against AttributeDict)
    still compare unequal."""
    if isinstance(value, Mapping):
        return (type(value), [(key, _typed(item)) for key, item in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value), [_typed(item) for item in value])
    return (type(value), value)


def test_receipts_are_web3s_byte_for_byte(
    chain: Chain, usdc: TokenClient, escrow: EscrowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded transport formats the receipt of the transaction it just mined
    itself; web3 reading it back gets the same fields, values, types and order."""
    if chain.backend != "embedded":
        pytest.skip("the embedded chain's own path")
    owner, alice, bob = chain.accounts[:3]
    transport: Any = chain.transport
    formatted: list[object] = []

    def format_receipt(*args: Any) -> Any:
        formatted.append(real(*args))
        return formatted[-1]

    real = transport._format_receipt
    monkeypatch.setattr(transport, "_format_receipt", format_receipt)
    receipts = [
        usdc.mint(alice, 50, sender=owner),  # a log
        usdc.approve(escrow.address, 50, sender=alice),
        escrow.create_and_fund(
            bob, 50, deadline=chain.now() + 100, dispute_window=10, sender=alice
        ).receipt,
        (chain.time_travel(3_600), usdc.mint(bob, 1, sender=owner))[1],  # after a time jump
        chain.transact(  # a deployment: contractAddress
            chain.w3.eth.contract(
                abi=load_artifact("MockUSDC").abi, bytecode=load_artifact("MockUSDC").bytecode
            ).constructor(),
            sender=owner,
        ),
    ]
    assert len(formatted) == len(receipts) and None not in formatted  # all made here
    for receipt in receipts:
        assert transport._mined is None
        web3s = chain.w3.eth.get_transaction_receipt(receipt["transactionHash"])
        assert _typed(receipt) == _typed(web3s)
        assert repr(receipt) == repr(web3s)
    assert receipts[-1]["contractAddress"] is not None
    assert len(receipts[2]["logs"]) >= 3


def test_filters_still_see_every_block_and_log(chain: Chain, usdc: TokenClient) -> None:
    """With filters installed eth-tester's own mining feeds them (the shortcut that skips
    reading the new block back applies only when there is nobody to feed)."""
    if chain.backend != "embedded":
        pytest.skip("the embedded chain's own path")
    owner, alice = chain.accounts[:2]
    blocks = chain.w3.eth.filter("latest")
    try:
        receipt = usdc.mint(alice, 3, sender=owner)
        assert blocks.get_new_entries() == [receipt["blockHash"]]
        logs = chain.w3.eth.filter({"address": usdc.address})
        try:
            receipt = usdc.mint(alice, 4, sender=owner)
            assert [log["transactionHash"] for log in logs.get_new_entries()] == [
                receipt["transactionHash"]
            ]
            assert blocks.get_new_entries() == [receipt["blockHash"]]
        finally:
            chain.w3.eth.uninstall_filter(logs.filter_id)
    finally:
        chain.w3.eth.uninstall_filter(blocks.filter_id)
    receipt = usdc.mint(alice, 5, sender=owner)
    assert chain.w3.eth.get_transaction_receipt(receipt["transactionHash"]) == receipt


def test_lean_states_give_every_block_the_stock_state_root() -> None:
    """The embedded chain's lean VMs (``use_lean_states``): the same transactions in the
    same blocks on a stock eth-tester end in the same state, receipts and gas, block after
    block, and every block passes py-evm's block validation."""
    from eth_tester import EthereumTester, PyEVMBackend

    from escrowkit.contracts.stack import deploy_stack

    stock_tester = EthereumTester(PyEVMBackend())  # first: its genesis is no later
    chain = Chain.embedded()
    owner, alice = chain.accounts[:2]
    stack = deploy_stack(chain)
    stack.token.mint(owner, 10**9, sender=owner)
    stack.token.approve(stack.escrow.address, 10**9, sender=owner)
    eid = stack.escrow.create_and_fund(
        alice, 10**6, deadline=chain.now() + 100, dispute_window=10, sender=owner
    )
    with pytest.raises(errors.ContractRevert):
        stack.escrow.settle(eid, sender=alice)  # too early: no block
    chain.time_travel(200)
    stack.escrow.settle(eid, sender=alice)

    ours: Any = chain.transport
    lean = ours._tester().backend.chain
    stock = stock_tester.backend.chain
    assert type(stock.get_vm().state).set_system_contracts is not (
        type(lean.get_vm().state).set_system_contracts
    )
    head = lean.get_canonical_head().block_number
    assert head > 8
    for number in range(1, head + 1):
        block = lean.get_canonical_block_by_number(number)
        stock.header = stock.header.copy(timestamp=block.header.timestamp)
        for transaction in block.transactions:
            stock.apply_transaction(transaction)
        stock_tester.backend.mine_blocks()
        mined = stock.get_canonical_block_by_number(number).header
        fields = ("state_root", "gas_used", "transaction_root", "receipt_root", "bloom")
        assert [getattr(mined, f) for f in fields] == [getattr(block.header, f) for f in fields]
        lean.get_vm(block.header).validate_block(block)  # py-evm's own check of a block
