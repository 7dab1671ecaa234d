"""Processes sharing one SQLite ledger (and one chain: a real anvil, since eth-tester
lives inside one process).

- Four processes (spawn) racing for the budget get exactly what fits, on-chain too.
- A process SIGKILLed in the middle of a spend leaves a PENDING row; another process's
  recover() resolves it from the chain (before create, between create and fund, after
  fund; in pool mode with two operator keys, each process killed in turn).

The ledger is a SQLite file, or PostgreSQL with ``ESCROWKIT_TEST_STORE=pg`` (CI runs both).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
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
    race_worker,
    reference_agents,
)

from escrowkit.contracts.escrow import EscrowState
from escrowkit.contracts.stack import Stack, deploy_stack
from escrowkit.coordinator import BudgetCoordinator, RecoveryReport, ReservationStatus
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain
from escrowkit.ledger import Store, metadata
from ledger_checks import assert_ledger_matches_chain

pytestmark = pytest.mark.anvil

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[Chain, Stack]]:
    with Chain.anvil(mining="auto") as chain:  # other processes send: automine
        yield chain, deploy_stack(chain)


def _ledger_url(tmp_path: Path) -> str:
    if os.environ.get("ESCROWKIT_TEST_STORE") != "pg":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url = os.environ.get("ESCROWKIT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set ESCROWKIT_TEST_POSTGRES_URL to run the PostgreSQL variant")
    store = Store(url)
    with store.engine.begin() as conn:  # a clean slate
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    store.close()
    return url


@pytest.fixture
def shared(node: tuple[Chain, Stack], tmp_path: Path) -> tuple[Stack, Deployment, Team]:
    chain, stack = node
    chain.nonces.resync()  # the previous test's processes sent with our keys
    accounts = chain.accounts
    team = Team(accounts[0], accounts[5], accounts[6], accounts[7], accounts[8], accounts[9])
    deployment = Deployment(
        rpc_url=str(chain.w3.provider.endpoint_uri),  # type: ignore[attr-defined]
        token=stack.token.address,
        escrow=stack.escrow.address,
        pool=stack.pool.address,
        store_url=_ledger_url(tmp_path),
    )
    return stack, deployment, team


def test_four_processes_on_one_file_get_exactly_what_fits(
    shared: tuple[Stack, Deployment, Team],
) -> None:
    stack, deployment, team = shared
    treasuries = stack.chain.accounts[:4]  # one key per process: nonces are per process
    for treasury in treasuries:
        stack.token.mint(treasury, 1_000 * USDC, sender=treasury)
        stack.token.approve(stack.escrow.address, MAX_UINT256, sender=treasury)
    with BudgetCoordinator(
        stack, treasury=treasuries[0], total_budget=BUDGET, store=deployment.store_url
    ) as setup:
        for agent in reference_agents(team):
            setup.register_agent(agent)
    escrow_before = stack.token.balance_of(stack.escrow.address)

    amount, per_process = 45 * USDC, 8  # 32 x 45 asked of 1,000: 22 fit
    outcomes = race_processes(
        race_worker,
        [
            (deployment, treasury, "compute-agent", team.provider, per_process, amount)
            for treasury in treasuries
        ],
    )
    results = [r for outcome in outcomes for r in outcome]
    approved = [escrow_id for status, escrow_id in results if status == "APPROVED"]
    assert len(results) == 32
    assert len(approved) == BUDGET // amount  # 22: exactly what fits
    assert all(status in ("APPROVED", "DENIED") for status, _ in results)

    records = [stack.escrow.get(escrow_id or "") for escrow_id in approved]
    assert all(r.state is EscrowState.FUNDED and r.amount == amount for r in records)
    fits = len(approved) * amount
    assert stack.token.balance_of(stack.escrow.address) - escrow_before == fits
    with BudgetCoordinator(
        stack, treasury=treasuries[0], total_budget=BUDGET, store=deployment.store_url
    ) as check:
        report = check.report()
        assert (report.total_spent, report.reserved) == (fits, 0)
        assert len(check.reservations(ReservationStatus.COMMITTED)) == len(approved)


def kill_mid_spend(
    deployment: Deployment, treasury: str, provider: str, where: str, mode: str = "treasury"
) -> None:
    """Run a spend in a child process and SIGKILL it at ``where`` (see doomed_child)."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, coordinator_helpers as h; h.doomed_child(*sys.argv[1:])",
            json.dumps(dataclasses.asdict(deployment)),
            treasury,
            provider,
            where,
            mode,
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(HERE)},
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    ("where", "chain_state", "final"),
    [
        # Nothing was sent: recovery fences the id (created empty, cancelled), then voids.
        ("before create", EscrowState.CANCELLED, ReservationStatus.VOIDED),
        ("between create and fund", EscrowState.CANCELLED, ReservationStatus.VOIDED),
        ("after fund", EscrowState.FUNDED, ReservationStatus.COMMITTED),
    ],
    ids=["before-create", "between-create-and-fund", "after-fund"],
)
def test_a_process_killed_mid_spend_is_recovered_by_another(
    shared: tuple[Stack, Deployment, Team],
    where: str,
    chain_state: EscrowState,
    final: ReservationStatus,
) -> None:
    stack, deployment, team = shared
    treasury = stack.chain.accounts[4]
    stack.token.mint(treasury, 100 * USDC, sender=treasury)
    stack.token.approve(stack.escrow.address, 0, sender=treasury)  # create, approve, fund
    with BudgetCoordinator(
        stack, treasury=treasury, total_budget=BUDGET, store=deployment.store_url
    ) as setup:
        for agent in reference_agents(team):
            setup.register_agent(agent)

    kill_mid_spend(deployment, treasury, team.provider, where)

    # The survivor is a new process's view: its own connection, so its own nonces.
    with BudgetCoordinator(
        connect(deployment), treasury=treasury, total_budget=BUDGET, store=deployment.store_url
    ) as survivor:
        (row,) = survivor.reservations()
        assert row.status is ReservationStatus.PENDING
        assert survivor.report().reserved == 25 * USDC
        summary = survivor.recover(older_than=0)
        assert summary.left_pending == ()
        recovered = survivor.reservation(row.id)
        assert recovered.status is final
        assert stack.escrow.get(row.escrow_id).state is chain_state
        report = survivor.report()
        spent = 25 * USDC if final is ReservationStatus.COMMITTED else 0
        assert (report.total_spent, report.reserved) == (spent, 0)


def test_two_operator_keys_in_pool_mode_each_killed_in_turn(
    shared: tuple[Stack, Deployment, Team],
) -> None:
    """Process A (operator key A) dies after its pool.spend was sent; process B (key B)
    recovers it, then dies before its own spend is sent; A' recovers B's row. Each row
    records its sender, so each recovery asks about the right key."""
    stack, deployment, team = shared
    owner, key_a, key_b = stack.chain.accounts[0], stack.chain.accounts[3], stack.chain.accounts[4]
    for key in (key_a, key_b):
        stack.pool.set_operator(key, True, sender=owner)
    stack.token.mint(owner, 1_000 * USDC, sender=owner)
    stack.token.approve(stack.pool.address, 1_000 * USDC, sender=owner)
    stack.pool.contribute(1_000 * USDC, sender=owner)
    with BudgetCoordinator(
        stack, treasury=owner, total_budget=BUDGET, mode="pool", store=deployment.store_url
    ) as setup:
        for agent in reference_agents(team):
            setup.register_agent(agent)

    def recover_with(key: str) -> RecoveryReport:
        with BudgetCoordinator(
            connect(deployment), treasury=key, mode="pool", store=deployment.store_url
        ) as survivor:
            return survivor.recover(older_than=0)

    held_before = stack.token.balance_of(stack.escrow.address)
    kill_mid_spend(deployment, key_a, team.provider, "after send", mode="pool")
    assert len(recover_with(key_b).committed) == 1  # A's spend landed: counted
    kill_mid_spend(deployment, key_b, team.provider, "before send", mode="pool")
    assert len(recover_with(key_a).voided) == 1  # B never sent: fenced, voided

    with BudgetCoordinator(
        connect(deployment), treasury=key_a, mode="pool", store=deployment.store_url
    ) as check:
        rows = check.reservations()
        assert {row.sender for row in rows} == {key_a, key_b}
        assert_ledger_matches_chain(check, stack, stack.pool.address, held_before=held_before)
        assert check.report().total_spent == 25 * USDC
