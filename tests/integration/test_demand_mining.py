"""Chain.anvil()'s default, mining="demand": anvil with --no-mining and one miner thread that mines
whatever the node's pool holds, so concurrent spends share blocks (escrowkit.evm.miner)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from tests.ledger_checks import assert_ledger_matches_chain

from escrowkit import AgentConfig, BudgetCoordinator, Chain, SpendRequest, deploy_stack
from escrowkit.core.errors import InvalidRequest

USDC = 10**6
THREADS, PER_THREAD = 8, 6


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    with Chain.anvil() as chain:
        yield chain


def test_concurrent_spends_share_blocks_and_the_ledger_equals_the_chain(
    chain: Chain, tmp_path
) -> None:
    owner, provider = chain.accounts[0], chain.accounts[9]
    stack = deploy_stack(chain)
    budget = THREADS * PER_THREAD * USDC
    stack.token.mint(owner, budget, sender=owner)
    stack.token.approve(stack.escrow.address, budget, sender=owner)
    coordinator = BudgetCoordinator(
        stack, treasury=owner, total_budget=budget, store=f"sqlite:///{tmp_path / 'l.db'}"
    )
    for n in range(THREADS):
        coordinator.register_agent(
            AgentConfig(f"agent-{n}", f"a{n}", chain.accounts[1 + n], USDC, budget, USDC)
        )
    head = chain.w3.eth.block_number
    blocks_before = chain.miner.blocks if chain.miner else 0
    results = []
    lock = threading.Lock()
    gate = threading.Barrier(THREADS)

    def agent(n: int) -> None:
        gate.wait()
        for i in range(PER_THREAD):
            result = coordinator.request_spending(
                SpendRequest(f"agent-{n}", USDC, provider, f"demand {n}/{i}")
            )
            with lock:
                results.append(result)

    workers = [threading.Thread(target=agent, args=(n,)) for n in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    spends = THREADS * PER_THREAD
    assert [r.status.value for r in results] == ["APPROVED"] * spends
    blocks = chain.w3.eth.block_number - head
    assert chain.miner is not None and chain.miner.blocks - blocks_before == blocks
    # On automine each of the 48 createAndFund calls gets a block; here they share.
    assert 0 < blocks < spends, blocks
    statuses = assert_ledger_matches_chain(coordinator, stack, owner)
    assert statuses["COMMITTED"] == spends
    assert stack.token.balance_of(stack.escrow.address) == budget
    coordinator.close()


def test_a_transaction_sent_by_another_program_is_mined(chain: Chain) -> None:
    # Sent straight to the node (anvil's unlocked dev account), not through escrowkit's
    # send path: nothing pokes the miner, its idle look at the pool finds it.
    sender, to = chain.accounts[2], chain.accounts[3]
    tx_hash = chain.w3.eth.send_transaction({"from": sender, "to": to, "value": 1})
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=5, poll_latency=0.05)
    assert receipt["status"] == 1


def test_no_block_is_mined_while_nothing_is_sent(chain: Chain) -> None:
    head = chain.w3.eth.block_number
    time.sleep(0.7)  # a couple of the miner's idle looks
    assert chain.w3.eth.block_number == head


def test_an_unknown_mining_mode_is_refused_before_anvil_starts() -> None:
    refused = pytest.raises(InvalidRequest, match="mining is 'auto' or 'demand'")
    with refused, Chain.anvil(mining="interval"):  # type: ignore[arg-type]
        pass


def test_automine_is_still_there_on_request() -> None:
    with Chain.anvil(mining="auto") as chain:
        assert chain.miner is None
        head = chain.w3.eth.block_number
        a, b = chain.accounts[0], chain.accounts[1]
        tx_hash = chain.w3.eth.send_transaction({"from": a, "to": b, "value": 1})
        # Automine mines the send in a block of its own, with no miner of ours asking.
        # (anvil may answer the send a moment before the receipt is readable: on a loaded
        # CI machine the receipt was not there yet, so wait for it briefly.)
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.01)
        assert receipt["blockNumber"] == head + 1


def test_a_block_time_among_anvils_arguments_means_interval_mining() -> None:
    """``--block-time`` (a real network's pace) with the default mining: anvil mines on its
    interval and no miner of ours runs (anvil refuses --block-time with --no-mining)."""
    with Chain.anvil(extra_args=["--block-time", "1"]) as chain:
        assert chain.miner is None
        a, b = chain.accounts[0], chain.accounts[1]
        tx_hash = chain.w3.eth.send_transaction({"from": a, "to": b, "value": 1})
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.05)
        assert receipt["status"] == 1
