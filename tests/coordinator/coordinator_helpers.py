"""Shared pieces of the coordinator tests (imported by conftest.py and the tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from escrowkit.contracts.escrow import EscrowState
from escrowkit.coordinator import AgentConfig, SpendResult

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

    from escrowkit.contracts.stack import Stack

USDC = 10**6
BUDGET = 1_000 * USDC
#: Friday 2026-01-02 12:00:00 UTC: the coordinator's clock in these tests.
NOON = 1_767_355_200.0


class Clock:
    """The coordinator's clock, moved by hand (UTC seconds)."""

    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Team:
    """Who is who on the session chain."""

    treasury: ChecksumAddress
    research: ChecksumAddress
    data: ChecksumAddress
    compute: ChecksumAddress
    provider: ChecksumAddress
    other_provider: ChecksumAddress


def reference_agents(team: Team) -> list[AgentConfig]:
    """research 100/300/50, data 200/500/100, compute 500/1000/200 USDC
    (per-transaction / daily / approval threshold)."""
    return [
        AgentConfig("research-agent", "Research", team.research, 100 * USDC, 300 * USDC, 50 * USDC),
        AgentConfig("data-agent", "Data", team.data, 200 * USDC, 500 * USDC, 100 * USDC),
        AgentConfig("compute-agent", "Compute", team.compute, 500 * USDC, 1_000 * USDC, 200 * USDC),
    ]


def assert_escrowed(stack: Stack, result: SpendResult, amount: int, provider: str) -> None:
    """The result's escrow exists on-chain, FUNDED, for ``amount`` to ``provider``."""
    assert result.escrow_id is not None, result
    record = stack.escrow.get(result.escrow_id)
    assert record.state is EscrowState.FUNDED, record
    assert (record.amount, record.provider) == (amount, provider)


# --------------------------------------------------------------------------------------
# Other processes (test_processes.py): they share the ledger file and an anvil chain.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """What a child process needs to reach the parent's stack and ledger."""

    rpc_url: str
    token: str
    escrow: str
    pool: str
    store_url: str


def connect(deployment: Deployment) -> Stack:
    from escrowkit.contracts.escrow import EscrowClient
    from escrowkit.contracts.pool import BudgetPoolClient
    from escrowkit.contracts.stack import Stack
    from escrowkit.contracts.token import TokenClient
    from escrowkit.evm.chain import Chain

    chain = Chain.connect(deployment.rpc_url)
    return Stack(
        chain=chain,
        token=TokenClient(chain, deployment.token),
        escrow=EscrowClient(chain, deployment.escrow),
        pool=BudgetPoolClient(chain, deployment.pool),
    )


def race_worker(
    deployment: Deployment,
    treasury: str,
    agent_id: str,
    provider: str,
    count: int,
    amount: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """One process of the race: its own coordinator (and its own treasury key, since
    nonces are per process) on the shared ledger file; ``count`` spends of ``amount``,
    started when the parent sets ``go``. Puts ``[(status, escrow_id), ...]`` on ``results``."""
    from escrowkit.coordinator import BudgetCoordinator, SpendRequest

    stack = connect(deployment)
    coordinator = BudgetCoordinator(
        stack, treasury=treasury, total_budget=BUDGET, store=deployment.store_url
    )
    ready.put(treasury)
    go.wait()
    outcome = []
    for n in range(count):
        result = coordinator.request_spending(SpendRequest(agent_id, amount, provider, f"{n}"))
        outcome.append((result.status.value, result.escrow_id))
    coordinator.close()
    results.put(outcome)


def doomed_child(
    deployment_json: str, treasury: str, provider: str, where: str, mode: str = "treasury"
) -> None:
    """Start a spend, say "READY" on stdout at ``where`` and wait to be killed.

    Treasury mode (create, approve, fund): "before create", "between create and fund",
    "after fund". Pool mode (one pool.spend): "before send", "after send"."""
    import json
    import sys
    import time

    from escrowkit.coordinator import BudgetCoordinator, SpendRequest

    deployment = Deployment(**json.loads(deployment_json))
    stack = connect(deployment)
    owner, name = (stack.pool, "spend") if mode == "pool" else (stack.escrow, "fund")
    if where == "before create":
        name = "create"
    send = getattr(owner, name)

    def stop_here(*args: object, **kwargs: object) -> object:
        if where in ("after fund", "after send"):
            send(*args, **kwargs)
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        time.sleep(600)
        raise AssertionError("not killed")

    setattr(owner, name, stop_here)
    coordinator = BudgetCoordinator(stack, treasury=treasury, mode=mode, store=deployment.store_url)  # type: ignore[arg-type]
    coordinator.request_spending(SpendRequest("research-agent", 25 * USDC, provider, "doomed"))


def race_processes(target: Any, args: list[tuple[Any, ...]], *, timeout: float = 120) -> list[Any]:
    """Start one spawned process per ``args`` entry running ``target(*args, ready, go,
    done)``; once every one is ready, release them together; the outcome each put on
    ``done``. Each process must exit with 0 (stragglers are killed first)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready, go, done = context.Queue(), context.Event(), context.Queue()
    workers = [context.Process(target=target, args=(*a, ready, go, done)) for a in args]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:  # every process has its coordinator: now they race
            ready.get(timeout=120)
        go.set()
        outcomes = [done.get(timeout=timeout) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert all(worker.exitcode == 0 for worker in workers)
    return outcomes
