"""Child processes of test_shared_key.py: coordinators on one PostgreSQL ledger that all
send with ONE treasury key (the ledger's nonce rows keep their nonces apart)."""

from __future__ import annotations

import threading
from typing import Any

from coordinator_helpers import BUDGET, Deployment, connect


def racing_process(
    deployment: Deployment,
    treasury: str,
    agent_id: str,
    provider: str,
    threads: int,
    per_thread: int,
    amount: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """``threads`` threads of one process, each asking ``per_thread`` spends of ``amount``
    once the parent sets ``go``. Puts ``[(status, escrow_id, code), ...]`` on ``results``."""
    from escrowkit.coordinator import BudgetCoordinator, SpendRequest

    coordinator = BudgetCoordinator(
        connect(deployment),
        treasury=treasury,
        total_budget=BUDGET,
        store=deployment.store_url,
        shared_nonces=True,
    )
    outcome: list[tuple[str, str | None, str | None]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(per_thread):
            result = coordinator.request_spending(
                SpendRequest(agent_id, amount, provider, f"{threading.get_ident()} {n}/{i}")
            )
            with lock:
                outcome.append((result.status.value, result.escrow_id, result.reason))

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    ready.put(treasury)
    go.wait()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    coordinator.close()
    results.put(outcome)


def killed_before_sending(deployment_json: str, treasury: str, provider: str) -> None:
    """Start a spend, and once its nonce row is locked and its nonce taken, just before
    the raw transaction goes out, say "READY" on stdout and wait to be killed."""
    import json
    import sys
    import time

    from escrowkit.coordinator import BudgetCoordinator, SpendRequest

    deployment = Deployment(**json.loads(deployment_json))
    stack = connect(deployment)

    def stop_here(signer: Any, tx: dict[str, Any], *, context: str) -> str:
        sys.stdout.write(f"READY {tx['nonce']}\n")
        sys.stdout.flush()
        time.sleep(600)
        raise AssertionError("not killed")

    stack.chain.transport.sign_and_send = stop_here  # type: ignore[method-assign]
    coordinator = BudgetCoordinator(
        stack,
        treasury=treasury,
        total_budget=BUDGET,
        store=deployment.store_url,
        shared_nonces=True,
    )
    coordinator.request_spending(SpendRequest("research-agent", 25 * 10**6, provider, "doomed"))
