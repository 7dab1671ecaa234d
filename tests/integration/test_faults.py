"""500 spends through a JSON-RPC proxy that breaks 10 % of the calls that matter.

Every kind of fault (lost request, lost answer after the node acted, duplicate delivery,
delay, error answer) hits estimation, sending, receipts, nonces and reads. Whatever the
coordinator saw, after ``recover()`` the ledger must equal the chain: nothing PENDING,
no escrow stranded INITIATED, none funded twice, none outside the ledger.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from escrowkit.contracts.stack import deploy_stack
from escrowkit.coordinator import AgentConfig, BudgetCoordinator, SpendRequest
from escrowkit.core.units import MAX_UINT256
from escrowkit.errors import EscrowKitError
from escrowkit.evm.chain import Chain
from escrowkit.testing.faultproxy import FaultyRPCProxy
from ledger_checks import assert_ledger_matches_chain

pytestmark = [pytest.mark.slow, pytest.mark.anvil]

USDC = 10**6
SPENDS = 500
THREADS = 8


@pytest.fixture(scope="module")
def node() -> Iterator[Chain]:
    with Chain.anvil() as chain:
        yield chain


@pytest.mark.parametrize("allowance", ["max", "none"], ids=["createAndFund", "three-steps"])
def test_ledger_equals_chain_under_ten_percent_faults(
    node: Chain, tmp_path: Path, allowance: str
) -> None:
    treasury, provider = node.accounts[0], node.accounts[9]
    node.nonces.resync()
    stack = deploy_stack(node)
    stack.token.mint(treasury, 10_000 * USDC, sender=treasury)
    if allowance == "max":
        stack.token.approve(stack.escrow.address, MAX_UINT256, sender=treasury)
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    half = SPENDS // 2  # per path: 500 in all

    with FaultyRPCProxy(url, rate=0.10, seed=20261123, delay=0.2) as proxy:
        flaky = Chain.connect(proxy.url, receipt_timeout=5)
        flaky_stack = stack.on(flaky)
        store = f"sqlite:///{tmp_path / 'ledger.db'}"
        coordinator = BudgetCoordinator(
            flaky_stack, treasury=treasury, total_budget=5_000 * USDC, store=store
        )
        proxy.enabled = False  # registering agents is not what is under test
        for n in range(THREADS):
            coordinator.register_agent(
                AgentConfig(
                    f"agent-{n}",
                    f"agent {n}",
                    node.accounts[1 + n],
                    20 * USDC,
                    5_000 * USDC,
                    20 * USDC,
                )
            )
        proxy.enabled = True

        outcomes: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        lock = threading.Lock()

        def agent(n: int) -> None:
            for i in range(half // THREADS):
                try:
                    result = coordinator.request_spending(
                        SpendRequest(
                            f"agent-{n}",
                            (1 + (i % 5)) * USDC,
                            provider,
                            f"{n}/{i}",
                            idempotency_key=f"{allowance}-{n}-{i}",
                        )
                    )
                    key = result.status.value
                except EscrowKitError as exc:  # a read failed too: the row stays for recover
                    key = type(exc).__name__
                    with lock:
                        errors[str(exc)[:60]] += 1
                with lock:
                    outcomes[key] += 1

        threads = [threading.Thread(target=agent, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert proxy.total_injected >= half // 20, proxy.injected  # faults really happened
        proxy.enabled = False
        # A transaction the node took but has not mined yet keeps its row pending until
        # the next run (that is the rule): give the node a moment, as an operator would.
        for _ in range(10):
            recovered = coordinator.recover(older_than=0)
            if not recovered.left_pending:
                break
            time.sleep(0.2)
        assert recovered.left_pending == ()
        statuses = assert_ledger_matches_chain(coordinator, stack, treasury)
        coordinator.close()
    assert sum(outcomes.values()) == half // THREADS * THREADS
    assert outcomes["APPROVED"] > 0 and statuses["COMMITTED"] >= outcomes["APPROVED"]
    print(
        f"\n{allowance}: outcomes {dict(outcomes)}, ledger {dict(statuses)}, "
        f"faults {sum(proxy.injected.values())}"
    )
