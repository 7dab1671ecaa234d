"""Real block times: spends in flight through ``arequest_spending`` on anvil ``--block-time 2``.

A :class:`BudgetCoordinator` (SQLite file ledger, treasury mode, allowance at max, one
treasury key) is asked by C coroutines at once, each asking again as soon as its spend is
answered, for C = 16, 64 and 256. Every approved spend is a mined ``createAndFund`` whose
receipt the chain's one receipt watcher resolved. Reported per C: spends/s, p50 and p99
of the time from asking to the answer, CPU of this process per spend (every thread: the
event loop, the ledger's worker threads, the watcher); and the same at C = 16 on an
automining anvil, the figure the CPU per spend is held against (DESIGN.md section 7).

    python -m benchmarks.blocktime [--block-time 2] [--rounds 4] [--concurrency 16 64 256]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from escrowkit.contracts.stack import deploy_stack
from escrowkit.coordinator import AgentConfig, BudgetCoordinator, SpendRequest, SpendStatus
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain

__all__ = ["TARGET_AT_256", "TARGET_CPU_RATIO", "BlockTimeResult", "run"]

TARGET_AT_256 = 100  # spends/s with 256 in flight, DESIGN.md section 7
TARGET_CPU_RATIO = 1.5  # CPU per spend against automine's
CONCURRENCY = (16, 64, 256)
ROUNDS = 4  # spends per coroutine
AGENTS = 16
USDC = 10**6


@dataclass(frozen=True)
class BlockTimeResult:
    block_time: float  # 0: automine
    concurrency: int
    spends: int
    seconds: float
    cpu_seconds: float
    p50_ms: float
    p99_ms: float
    blocks: int
    watcher_head_polls: int
    watcher_receipt_requests: int

    @property
    def per_second(self) -> float:
        return self.spends / self.seconds

    @property
    def cpu_ms_per_spend(self) -> float:
        return self.cpu_seconds * 1000 / self.spends


def _agent(n: int) -> AgentConfig:
    from eth_utils.address import to_checksum_address
    from eth_utils.crypto import keccak

    address = to_checksum_address(keccak(text=f"blocktime agent {n}")[:20])
    return AgentConfig(f"agent-{n:02d}", f"agent {n}", address, 10 * USDC, 10**15, 10 * USDC)


async def _measure(
    coordinator: BudgetCoordinator, provider: str, concurrency: int, rounds: int
) -> tuple[float, list[float], Counter[str]]:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()

    async def worker(n: int) -> None:
        agent = f"agent-{n % AGENTS:02d}"
        for i in range(rounds):
            asked = time.perf_counter()
            result = await coordinator.arequest_spending(
                SpendRequest(agent, USDC, provider, f"bench {n}/{i}")
            )
            latencies.append(time.perf_counter() - asked)
            statuses[result.status.value] += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return time.perf_counter() - began, latencies, statuses


def run(
    block_time: float = 2.0, concurrency: tuple[int, ...] = CONCURRENCY, rounds: int = ROUNDS
) -> list[BlockTimeResult]:
    """One anvil (``--block-time`` unless 0), one coordinator; a result per concurrency."""
    extra = ["--block-time", f"{block_time:g}"] if block_time else []
    results = []
    with Chain.anvil(extra_args=extra) as chain, tempfile.TemporaryDirectory() as tmp:
        owner, provider = chain.accounts[0], chain.accounts[9]
        stack = deploy_stack(chain)
        budget = 10**15
        stack.token.mint(owner, budget, sender=owner)
        stack.token.approve(stack.escrow.address, MAX_UINT256, sender=owner)
        coordinator = BudgetCoordinator(
            stack, treasury=owner, total_budget=budget, store=f"sqlite:///{Path(tmp) / 'l.db'}"
        )
        for n in range(AGENTS):
            coordinator.register_agent(_agent(n))
        asyncio.run(_measure(coordinator, provider, 4, 1))  # warm up: imports, caches
        for c in concurrency:
            stats = chain.watcher.stats
            polls, requests = stats.head_polls, stats.receipt_requests
            first_block = chain.block_number()
            cpu = time.process_time()
            seconds, latencies, statuses = asyncio.run(_measure(coordinator, provider, c, rounds))
            cpu = time.process_time() - cpu
            approved = statuses.get(SpendStatus.APPROVED.value, 0)
            if approved != c * rounds:
                raise RuntimeError(f"expected {c * rounds} approved spends, got {dict(statuses)}")
            ordered = sorted(latencies)
            results.append(
                BlockTimeResult(
                    block_time,
                    c,
                    approved,
                    seconds,
                    cpu,
                    statistics.median(ordered) * 1000,
                    ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
                    chain.block_number() - first_block,
                    stats.head_polls - polls,
                    stats.receipt_requests - requests,
                )
            )
        coordinator.close()
    return results


def render(result: BlockTimeResult) -> str:
    mode = f"--block-time {result.block_time:g}" if result.block_time else "automine"
    return (
        f"{mode:15s} C={result.concurrency:3d}: {result.per_second:6.1f} spends/s, "
        f"p50 {result.p50_ms:6.0f} ms, p99 {result.p99_ms:6.0f} ms, "
        f"{result.cpu_ms_per_spend:5.2f} ms CPU/spend; {result.spends} spends in "
        f"{result.blocks} blocks, watcher: {result.watcher_head_polls} head polls, "
        f"{result.watcher_receipt_requests} receipt requests"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-time", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--no-automine", action="store_true", help="skip the automine figure")
    args = parser.parse_args(argv)
    timed = run(args.block_time, tuple(args.concurrency), args.rounds)
    for result in timed:
        print(render(result))
    if not args.no_automine:
        (auto,) = run(0, (16,), max(args.rounds * 4, 16))
        print(render(auto))
        worst = max(r.cpu_ms_per_spend for r in timed)
        print(
            f"CPU per spend with blocks / automine: {worst / auto.cpu_ms_per_spend:.2f}x "
            f"(target <= {TARGET_CPU_RATIO}x); at C=256 target >= {TARGET_AT_256} spends/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
