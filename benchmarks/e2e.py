"""End to end on a real anvil: spends per second through the whole coordinator.

Sixteen agent threads ask a :class:`BudgetCoordinator` (SQLite file ledger) to spend; every
approved spend is a real transaction mined by anvil and waited for. Two paths:

- ``treasury``: the treasury's allowance is at max, so each spend is one
  ``Escrow.createAndFund`` from the treasury key;
- ``pool``: each spend is one ``BudgetPool.spend`` by the operator key, with the on-chain
  per-agent limits checked too.

Both paths send from one key, so transactions are serialized by that key's nonce lock:
the figure is bounded by one key's round trip (sign, send, receipt), not by the ledger.

    python -m benchmarks.e2e [--spends N] [--threads N] [--mode treasury|pool|both]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from escrowkit.contracts.stack import deploy_stack
from escrowkit.coordinator import AgentConfig, BudgetCoordinator, SpendRequest, SpendStatus
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain

__all__ = ["TARGET", "E2EResult", "run"]

TARGET = 150  # spends per second, DESIGN.md section 7
THREADS = 16
SPENDS = 800
USDC = 10**6


@dataclass(frozen=True)
class E2EResult:
    mode: str
    spends: int
    threads: int
    seconds: float
    statuses: dict[str, int]
    cpu_seconds: float = 0.0  # this process's CPU during the timed part (anvil excluded)

    @property
    def per_second(self) -> float:
        return self.spends / self.seconds


def _agent_address(n: int) -> str:
    """A distinct address per agent: in pool mode on-chain limits are per address, and
    the operator key spends for the agent, so the agent needs no key of its own."""
    from eth_utils.address import to_checksum_address
    from eth_utils.crypto import keccak

    return to_checksum_address(keccak(text=f"bench agent {n}")[:20])


def run(
    mode: str = "treasury", spends: int = SPENDS, threads: int = THREADS, mining: str = "auto"
) -> E2EResult:
    """Start anvil (``Chain.anvil(mining=mining)``), deploy, register ``threads`` agents,
    time ``spends`` spends."""
    anvil = Chain.anvil(mining=mining)  # type: ignore[arg-type]
    with anvil as chain, tempfile.TemporaryDirectory() as tmp:
        owner = chain.accounts[0]
        provider = chain.accounts[9]
        stack = deploy_stack(chain)
        budget = spends * 2 * USDC
        stack.token.mint(owner, budget, sender=owner)
        if mode == "treasury":
            stack.token.approve(stack.escrow.address, MAX_UINT256, sender=owner)
        else:
            stack.token.approve(stack.pool.address, budget, sender=owner)
            stack.pool.contribute(budget, sender=owner)
        coordinator = BudgetCoordinator(
            stack,
            treasury=owner,
            total_budget=budget,
            mode=mode,  # type: ignore[arg-type]
            store=f"sqlite:///{Path(tmp) / 'ledger.db'}",
        )
        agents = []
        for n in range(threads):
            agent_id = f"agent-{n:02d}"
            coordinator.register_agent(
                AgentConfig(
                    id=agent_id,
                    name=agent_id,
                    address=_agent_address(n),
                    spending_limit=10 * USDC,
                    daily_limit=budget,
                    requires_approval=10 * USDC,
                )
            )
            agents.append(agent_id)

        base, extra = divmod(spends, threads)
        per_thread = [base + (1 if n < extra else 0) for n in range(threads)]
        statuses: Counter[str] = Counter()
        lock = threading.Lock()
        failures: list[BaseException] = []
        start_gate = threading.Barrier(threads + 1)

        def agent_loop(n: int) -> None:
            start_gate.wait()
            try:
                for i in range(per_thread[n]):
                    result = coordinator.request_spending(
                        SpendRequest(
                            agent_id=agents[n],
                            amount=USDC,
                            provider=provider,
                            purpose=f"bench {n}/{i}",
                        )
                    )
                    with lock:
                        statuses[result.status.value] += 1
            except BaseException as exc:
                failures.append(exc)

        workers = [threading.Thread(target=agent_loop, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        start_gate.wait()
        began, cpu_began = time.perf_counter(), time.process_time()
        for worker in workers:
            worker.join()
        seconds = time.perf_counter() - began
        cpu_seconds = time.process_time() - cpu_began
        coordinator.close()
        if failures:
            raise failures[0]
        approved = statuses.get(SpendStatus.APPROVED.value, 0)
        if approved != spends:
            raise RuntimeError(f"expected {spends} approved spends, got {dict(statuses)}")
        return E2EResult(mode, spends, threads, seconds, dict(statuses), cpu_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spends", type=int, default=SPENDS)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--mode", choices=["treasury", "pool", "both"], default="both")
    parser.add_argument(
        "--mining", choices=("auto", "demand"), default="auto", help="Chain.anvil(mining=...)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    modes = ["treasury", "pool"] if args.mode == "both" else [args.mode]
    results = [run(mode, args.spends, args.threads, args.mining) for mode in modes]
    for result in results:
        if args.json:
            print(json.dumps({**asdict(result), "per_second": result.per_second}))
        else:
            print(
                f"e2e {result.mode:8s} ({args.mining} mining) {result.per_second:8.1f} spends/s "
                f"(target >= {TARGET}; {result.spends} spends, {result.threads} threads, "
                f"{result.seconds:.2f} s, {result.cpu_seconds * 1000 / result.spends:.1f} ms "
                "CPU per spend)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
