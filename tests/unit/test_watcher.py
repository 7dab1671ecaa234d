"""The receipt watcher, the sync/async driver and the ledger's nonce rows, without a chain."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from escrowkit.core.drive import offload, run_sync, wait_for
from escrowkit.core.errors import ChainError, NonceConflict
from escrowkit.evm.nonces import NonceManager
from escrowkit.evm.watcher import ReceiptWatcher
from escrowkit.ledger import Store
from escrowkit.ledger.nonces import LedgerNonces
from escrowkit.ledger.schema import nonces_table


class FakeNode:
    """Blocks made by hand; ``mined`` maps a hash to its receipt once its block exists."""

    def __init__(self) -> None:
        self.head = 0
        self.mined: dict[str, dict[str, Any]] = {}
        self.batches: list[list[str]] = []
        self.fail = 0

    def block_number(self) -> int:
        if self.fail:
            self.fail -= 1
            raise ChainError("node down")
        return self.head

    def receipts(self, hashes: list[str]) -> list[Any]:
        self.batches.append(list(hashes))
        return [self.mined.get(h) for h in hashes]

    def mine(self, *hashes: str) -> None:
        self.head += 1
        for h in hashes:
            self.mined[h] = {"transactionHash": h, "blockNumber": self.head, "status": 1}


def test_one_batch_resolves_every_transaction_of_a_new_block() -> None:
    node = FakeNode()
    watcher = ReceiptWatcher(node.block_number, node.receipts, poll_latency=0.005)
    futures = [watcher.watch(f"0x{n}") for n in range(50)]
    # Each is looked up once as new and found nowhere. A loaded machine may take a
    # few polls to ask for all fifty, so wait for them rather than for a fixed time.
    deadline = time.monotonic() + 5
    while watcher.stats.receipts_asked < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watcher.stats.receipts_asked == 50
    time.sleep(0.05)  # the head did not move: nothing is asked again
    assert watcher.stats.receipts_asked == 50
    node.mine(*(f"0x{n}" for n in range(50)))
    receipts = [f.result(timeout=2) for f in futures]
    assert [r["blockNumber"] for r in receipts] == [1] * 50
    assert node.batches[-1] == [f"0x{n}" for n in range(50)]  # one request for all
    assert watcher.watching == 0


def test_a_failing_node_is_polled_again_then_the_waiters_get_the_error() -> None:
    node = FakeNode()
    watcher = ReceiptWatcher(
        node.block_number, node.receipts, poll_latency=0.001, give_up_after=0.3
    )
    node.fail = 3  # three failed polls, then the node answers
    future = watcher.watch("0xa")
    node.mine("0xa")
    assert future.result(timeout=5)["transactionHash"] == "0xa"
    node.fail = 10**6
    late = watcher.watch("0xb")
    with pytest.raises(ChainError, match="node down"):
        late.result(timeout=10)


def test_what_stays_unmined_is_sent_again_every_few_blocks_but_not_after_a_revert() -> None:
    node = FakeNode()
    sent: list[str] = []

    def resend(tx_hash: str) -> bool:
        sent.append(tx_hash)
        return True

    watcher = ReceiptWatcher(
        node.block_number, node.receipts, poll_latency=0.002, resend=resend, resend_after=3
    )
    stuck, fine = watcher.watch("0xstuck"), watcher.watch("0xfine")

    def blocks(n: int, *hashes: str) -> None:
        for _ in range(n):
            node.mine(*hashes)
            time.sleep(0.05)  # the watcher polls each head

    # Both were first looked up at head 0.
    blocks(1, "0xfine")
    assert fine.result(timeout=2)["transactionHash"] == "0xfine"
    blocks(1)
    assert sent == []  # two blocks without it: not yet

    def sent_count(expected: int) -> int:
        deadline = time.monotonic() + 3  # a loaded machine may poll late
        while len(sent) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(sent)

    blocks(2)
    assert sent_count(1) == 1  # three (or four): sent again, once
    blocks(3)
    assert sent_count(2) == 2  # and again three blocks after that
    assert sent == ["0xstuck", "0xstuck"]
    assert watcher.stats.resent == 2
    watcher.reset()  # a snapshot revert: what it took back must not come back
    blocks(7)
    assert sent == ["0xstuck", "0xstuck"]
    node.mine("0xstuck")
    assert stuck.result(timeout=2)["transactionHash"] == "0xstuck"


def test_run_sync_and_asyncio_run_the_same_coroutine() -> None:
    future: concurrent.futures.Future[int] = concurrent.futures.Future()

    async def operation() -> int:
        base = await offload(lambda: 40)
        return base + await wait_for(future, timeout=5)

    threading.Timer(0.05, future.set_result, args=(2,)).start()
    assert run_sync(operation()) == 42  # blocks this thread on the future
    assert asyncio.run(operation()) == 42  # awaits it (already done here)
    pending: concurrent.futures.Future[int] = concurrent.futures.Future()

    async def times_out() -> int:
        return await wait_for(pending, timeout=0.05)

    with pytest.raises(TimeoutError):
        run_sync(times_out())
    with pytest.raises(TimeoutError):
        asyncio.run(times_out())
    assert not pending.done()  # left alone: it may still finish


def test_the_in_process_manager_sends_again_after_a_conflict() -> None:
    manager = NonceManager(lambda sender: 0)
    node_count = 5  # someone else sent five with the key
    sent: list[int] = []

    def send(nonce: int) -> str:
        if nonce < node_count:
            raise NonceConflict("nonce too low")
        sent.append(nonce)
        return f"0x{nonce}"

    assert manager.send("0xk", send, lambda: node_count) == "0x5"
    assert manager.send("0xk", send, lambda: node_count) == "0x6"  # cached, no node read
    assert sent == [5, 6]


def test_ledger_nonce_rows_advance_only_after_the_node_accepted(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    clock = [1000.0]
    nonces = LedgerNonces(store, 31337, clock=lambda: clock[0])
    node = {"pending": 7}
    asked: list[int] = []

    def pending() -> int:
        asked.append(node["pending"])
        return node["pending"]

    def accepted(nonce: int) -> int:
        node["pending"] = nonce + 1
        return nonce

    def crashes(nonce: int) -> int:
        raise ConnectionError("died before the send")

    def row() -> int:
        with store.read() as ledger:
            return int(ledger.conn.execute(nonces_table.select()).one().next_nonce)

    assert nonces.send("0xk", accepted, pending) == 7  # a new row: the node's count
    assert nonces.send("0xk", accepted, pending) == 8  # the row's, no node read
    assert asked == [7]
    with pytest.raises(ConnectionError):
        nonces.send("0xk", crashes, pending)
    assert row() == 9  # nothing advanced: no gap
    node["pending"] = 12  # another process sent three and died before its commit

    def refuses_taken(nonce: int) -> int:
        if nonce < node["pending"]:
            raise NonceConflict("nonce too low")
        return accepted(nonce)

    assert nonces.send("0xk", refuses_taken, pending) == 12
    assert row() == 13
    clock[0] += 60  # idle for a minute: the node's count is used (a dropped tx: 11)
    node["pending"] = 11
    assert nonces.send("0xk", accepted, pending) == 11
    assert row() == 12
    store.close()
