"""One treasury key shared by several processes on one ledger, a SQLite file or PostgreSQL
(issue 14.3).

Every process takes the key's nonces from the ledger's ``nonces`` row, under its row lock,
and advances it only once the node accepted the transaction:

- four processes of eight threads each, racing for the last funds with one key, get
  exactly what fits: nothing FAILED for a nonce, nothing left PENDING, ledger == chain;
- a process SIGKILLed after it took a nonce (row locked) and before it sent leaves no
  gap: the next spends with the key go through at once, and recover() fences and voids
  the dead process's reservation.

Needs a real anvil; the PostgreSQL variants need ``$ESCROWKIT_TEST_POSTGRES_URL``
(``.ci/postgres`` starts one).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from coordinator_helpers import (
    BUDGET,
    USDC,
    Deployment,
    Team,
    connect,
    race_processes,
    reference_agents,
)
from shared_key_helpers import racing_process
from sqlalchemy import text

from escrowkit.contracts.escrow import EscrowState
from escrowkit.contracts.stack import Stack, deploy_stack
from escrowkit.coordinator import BudgetCoordinator, ReservationStatus
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain
from escrowkit.ledger import Store, metadata
from escrowkit.ledger.schema import nonces_table

pytestmark = pytest.mark.anvil

HERE = Path(__file__).parent
PG_URL = os.environ.get("ESCROWKIT_TEST_POSTGRES_URL")


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[Chain, Stack]]:
    with Chain.anvil(mining="auto") as chain:  # other processes send: automine
        yield chain, deploy_stack(chain)


@pytest.fixture(params=["file", "pg"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new SQLite file, or the emptied PostgreSQL database (skipped without one)."""
    if request.param == "file":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    if not PG_URL:
        pytest.skip("set ESCROWKIT_TEST_POSTGRES_URL to run the PostgreSQL variant")
    store = Store(PG_URL)
    with store.engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    store.close()
    return PG_URL


@pytest.fixture
def shared(node: tuple[Chain, Stack], ledger_url: str) -> tuple[Stack, Deployment, Team]:
    """An empty ledger, the reference agents, and a funded treasury key (anvil's account
    4) with its allowance at max."""
    chain, stack = node
    chain.nonces.resync()  # the previous test's processes sent with our keys
    accounts = chain.accounts
    team = Team(accounts[4], accounts[5], accounts[6], accounts[7], accounts[8], accounts[9])
    stack.token.mint(team.treasury, 2 * BUDGET, sender=team.treasury)
    stack.token.approve(stack.escrow.address, MAX_UINT256, sender=team.treasury)
    deployment = Deployment(
        rpc_url=str(chain.w3.provider.endpoint_uri),  # type: ignore[attr-defined]
        token=stack.token.address,
        escrow=stack.escrow.address,
        pool=stack.pool.address,
        store_url=ledger_url,
    )
    with BudgetCoordinator(
        stack, treasury=team.treasury, total_budget=BUDGET, store=ledger_url
    ) as setup:
        for agent in reference_agents(team):
            setup.register_agent(agent)
    return stack, deployment, team


def ledger_equals_chain(stack: Stack, deployment: Deployment, treasury: str) -> BudgetCoordinator:
    """A fresh process's view: nothing PENDING, every counted row's escrow FUNDED for its
    amount, the nonce row where the node is."""
    check = BudgetCoordinator(
        connect(deployment),
        treasury=treasury,
        total_budget=BUDGET,
        store=deployment.store_url,
        shared_nonces=True,
    )
    assert check.reservations(ReservationStatus.PENDING) == []
    committed = check.reservations(ReservationStatus.COMMITTED)
    for row in committed:
        record = stack.escrow.get(row.escrow_id)
        assert (record.state, record.amount) == (EscrowState.FUNDED, row.amount)
    report = check.report()
    assert (report.total_spent, report.reserved) == (sum(r.amount for r in committed), 0)
    with check.store.read() as ledger:
        (row,) = ledger.conn.execute(nonces_table.select()).all()
    assert row.next_nonce == stack.chain.w3.eth.get_transaction_count(treasury, "pending")
    return check


def test_four_processes_of_eight_threads_share_one_key(
    shared: tuple[Stack, Deployment, Team],
) -> None:
    stack, deployment, team = shared
    chain = stack.chain
    sent_before = chain.w3.eth.get_transaction_count(team.treasury)
    escrow_before = stack.token.balance_of(stack.escrow.address)
    amount, processes, threads, per_thread = 25 * USDC, 4, 8, 2  # 64 x 25 asked of 1,000
    args = (deployment, team.treasury, "compute-agent", team.provider, threads, per_thread, amount)
    outcomes = race_processes(racing_process, [args] * processes, timeout=180)
    results = [r for outcome in outcomes for r in outcome]
    statuses = Counter(status for status, _, _ in results)
    assert len(results) == processes * threads * per_thread
    fits = BUDGET // amount  # 40
    assert statuses == {"APPROVED": fits, "DENIED": len(results) - fits}, [
        reason for status, _, reason in results if status == "FAILED"
    ]
    assert stack.token.balance_of(stack.escrow.address) - escrow_before == fits * amount
    # One createAndFund per approved spend: no nonce was wasted, none sent twice.
    assert chain.w3.eth.get_transaction_count(team.treasury) == sent_before + fits
    ledger_equals_chain(stack, deployment, team.treasury).close()


def test_a_process_killed_between_its_nonce_and_its_send_leaves_no_gap(
    shared: tuple[Stack, Deployment, Team],
) -> None:
    stack, deployment, team = shared
    chain = stack.chain
    nonce_before = chain.w3.eth.get_transaction_count(team.treasury, "pending")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, shared_key_helpers as h; h.killed_before_sending(*sys.argv[1:])",
            json.dumps(dataclasses.asdict(deployment)),
            team.treasury,
            team.provider,
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(HERE)},
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        assert line[0] == "READY"
        assert int(line[1]) == nonce_before  # it holds the key's next nonce, unsent
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()

    with BudgetCoordinator(
        connect(deployment),
        treasury=team.treasury,
        total_budget=BUDGET,
        store=deployment.store_url,
        shared_nonces=True,
    ) as survivor:
        (doomed,) = survivor.reservations(ReservationStatus.PENDING)
        # The dead process's nonce was never used: the next spends take it, no gap.
        results = [
            survivor.agent("data-agent").purchase_service(team.provider, 10 * USDC, f"after {n}")
            for n in range(3)
        ]
        assert all(r.approved for r in results), [r.reason for r in results]
        hashes = [r.tx_hashes[-1] for r in results]
        nonces = [chain.w3.eth.get_transaction(h)["nonce"] for h in hashes]  # type: ignore[arg-type]
        assert nonces == [nonce_before, nonce_before + 1, nonce_before + 2]
        summary = survivor.recover(older_than=0)
        assert summary.voided == (doomed.id,)
        assert stack.escrow.get(doomed.escrow_id).state is EscrowState.CANCELLED  # fenced
    check = ledger_equals_chain(stack, deployment, team.treasury)
    assert check.report().total_spent == 30 * USDC
    check.close()
