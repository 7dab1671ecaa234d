"""Processes sharing one SQLite ledger (and one chain: a real anvil, since eth-tester
lives inside one process).

- Four processes (spawn) racing for the budget get exactly what fits, on-chain too.
- A process SIGKILLed in the middle of a spend leaves a PENDING row; another process's
  recover() resolves it from the chain.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
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
    race_worker,
    reference_agents,
)

from escrowkit.contracts.escrow import EscrowState
from escrowkit.contracts.stack import Stack, deploy_stack
from escrowkit.coordinator import BudgetCoordinator, ReservationStatus
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain

pytestmark = pytest.mark.anvil

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[Chain, Stack]]:
    with Chain.anvil() as chain:
        yield chain, deploy_stack(chain)


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
        store_url=f"sqlite:///{tmp_path / 'shared.db'}",
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
    context = multiprocessing.get_context("spawn")
    ready, go, done = context.Queue(), context.Event(), context.Queue()
    workers = [
        context.Process(
            target=race_worker,
            args=(
                deployment,
                treasury,
                "compute-agent",
                team.provider,
                per_process,
                amount,
                ready,
                go,
                done,
            ),
        )
        for treasury in treasuries
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:  # every process has its coordinator: now they race
            ready.get(timeout=120)
        go.set()
        outcomes = [done.get(timeout=120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert all(worker.exitcode == 0 for worker in workers)
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


@pytest.mark.parametrize(
    ("where", "chain_state", "final"),
    [
        ("between create and fund", EscrowState.CANCELLED, ReservationStatus.VOIDED),
        ("after fund", EscrowState.FUNDED, ReservationStatus.COMMITTED),
    ],
    ids=["between-create-and-fund", "after-fund"],
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

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, coordinator_helpers as h; h.doomed_child(*sys.argv[1:])",
            json.dumps(dataclasses.asdict(deployment)),
            treasury,
            team.provider,
            where,
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
