"""A long run on anvil: 10,000 spends end to end, spends/s per 1,000.

The same setup as :mod:`benchmarks.e2e` (treasury mode, createAndFund from one key, SQLite
file ledger, 16 agent threads calling the blocking ``request_spending``), run long enough
to see whether the rate falls as the chain grows. Each slice of 1,000 reports its
spends/s, this process's CPU per spend (the client's share), anvil's CPU per spend (the
node's) and the watcher's head polls and receipt requests per spend (what waiting costs).
``--anvil-arg`` adds anvil options (repeat it); ``--plain`` starts anvil without the
options ``Chain.anvil()`` passes by default, for comparison. ``--block-time S
--in-flight C`` runs the same spends on S-second blocks from C coroutines calling
``arequest_spending`` instead (an automining anvil mines a block per spend, and each
block costs the node more as the escrows' state grows; blocks of many spends share it).

    python -m benchmarks.longrun [--spends 10000] [--slice 1000] [--plain]
                                 [--block-time 1 --in-flight 256]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from escrowkit.contracts.stack import deploy_stack
from escrowkit.coordinator import AgentConfig, BudgetCoordinator, SpendRequest
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain

__all__ = ["Slice", "run"]

THREADS = 16
SPENDS = 10_000
SLICE = 1_000
USDC = 10**6


@dataclass(frozen=True)
class Slice:
    """One slice of the run: spends ``first`` to ``first + spends``."""

    first: int
    spends: int
    seconds: float
    cpu_seconds: float
    head_polls: int
    receipt_requests: int
    anvil_cpu_seconds: float  # the node's own CPU in this slice
    blocks: int  # blocks mined in this slice (anvil's CPU goes into mining them)

    @property
    def per_second(self) -> float:
        return self.spends / self.seconds


def run(
    spends: int = SPENDS,
    slice_size: int = SLICE,
    threads: int = THREADS,
    *,
    plain: bool = False,
    anvil_args: tuple[str, ...] = (),
    block_time: float = 0,
    in_flight: int = 0,
    mining: str = "auto",
) -> list[Slice]:
    """Start anvil, deploy, time ``spends`` spends in slices of ``slice_size`` (from
    ``threads`` threads, or ``in_flight`` coroutines when that is not 0)."""
    if block_time:
        anvil_args = (*anvil_args, "--block-time", f"{block_time:g}")
    anvil = Chain.anvil(extra_args=anvil_args, tuned=not plain, mining=mining)  # type: ignore[arg-type]
    with anvil as chain, tempfile.TemporaryDirectory() as tmp:
        owner, provider = chain.accounts[0], chain.accounts[9]
        stack = deploy_stack(chain)
        budget = spends * 2 * USDC
        stack.token.mint(owner, budget, sender=owner)
        stack.token.approve(stack.escrow.address, MAX_UINT256, sender=owner)
        coordinator = BudgetCoordinator(
            stack, treasury=owner, total_budget=budget, store=f"sqlite:///{Path(tmp) / 'l.db'}"
        )
        for n in range(threads):
            coordinator.register_agent(
                AgentConfig(
                    f"agent-{n:02d}", f"a{n}", chain.accounts[1 + n % 8], USDC, budget, USDC
                )
            )
        counter = iter(range(spends))
        lock = threading.Lock()
        marks: list[tuple[float, float, int, int, float, int]] = []  # at the end of each slice
        node = chain._process.pid if chain._process is not None else None
        completed = 0
        failures: list[BaseException] = []

        def agent(n: int) -> None:
            nonlocal completed
            try:
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    result = coordinator.request_spending(
                        SpendRequest(f"agent-{n:02d}", USDC, provider, f"long {i}")
                    )
                    if not result.approved:
                        raise RuntimeError(f"spend {i}: {result.reason}")
                    with lock:
                        completed += 1
                        if completed % slice_size == 0 or completed == spends:
                            stats = chain.watcher.stats
                            marks.append(
                                (
                                    time.perf_counter(),
                                    time.process_time(),
                                    stats.head_polls,
                                    stats.receipt_requests,
                                    _cpu_of(node),
                                    chain.block_number(),
                                )
                            )
            except BaseException as exc:
                failures.append(exc)

        stats = chain.watcher.stats
        start = (
            time.perf_counter(),
            time.process_time(),
            stats.head_polls,
            stats.receipt_requests,
            _cpu_of(node),
            chain.block_number(),
        )
        if in_flight:

            async def coroutine(n: int) -> None:
                nonlocal completed
                while (i := next(counter, None)) is not None:
                    result = await coordinator.arequest_spending(
                        SpendRequest(f"agent-{n % threads:02d}", USDC, provider, f"long {i}")
                    )
                    if not result.approved:
                        raise RuntimeError(f"spend {i}: {result.reason}")
                    completed += 1
                    if completed % slice_size == 0 or completed == spends:
                        stats = chain.watcher.stats
                        marks.append(
                            (time.perf_counter(), time.process_time(), stats.head_polls,
                             stats.receipt_requests, _cpu_of(node), chain.block_number())
                        )  # fmt: skip

            async def together() -> None:
                await asyncio.gather(*(coroutine(n) for n in range(in_flight)))

            asyncio.run(together())
        workers = (
            [] if in_flight else [threading.Thread(target=agent, args=(n,)) for n in range(threads)]
        )
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        coordinator.close()
        if failures:
            raise failures[0]
    slices = []
    previous = start
    for k, mark in enumerate(marks):
        first = k * slice_size
        count = min(slice_size, spends - first)
        slices.append(
            Slice(
                first,
                count,
                mark[0] - previous[0],
                mark[1] - previous[1],
                mark[2] - previous[2],
                mark[3] - previous[3],
                mark[4] - previous[4],
                mark[5] - previous[5],
            )
        )
        previous = mark
    return slices


def _cpu_of(pid: int | None) -> float:
    """A process's user + system CPU seconds (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spends", type=int, default=SPENDS)
    parser.add_argument("--slice", type=int, default=SLICE)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument(
        "--plain", action="store_true", help="anvil without Chain.anvil()'s options"
    )
    parser.add_argument("--anvil-arg", action="append", default=[], help="an extra anvil option")
    parser.add_argument("--block-time", type=float, default=0, help="seconds (0: automine)")
    parser.add_argument("--in-flight", type=int, default=0, help="coroutines instead of threads")
    parser.add_argument(
        "--mining", choices=("auto", "demand"), default="auto", help="Chain.anvil(mining=...)"
    )
    args = parser.parse_args(argv)
    slices = run(
        args.spends,
        args.slice,
        args.threads,
        plain=args.plain,
        anvil_args=tuple(args.anvil_arg),
        block_time=args.block_time,
        in_flight=args.in_flight,
        mining=args.mining,
    )
    for s in slices:
        print(
            f"spends {s.first:6d}-{s.first + s.spends - 1:6d}: {s.per_second:7.1f} spends/s, "
            f"{s.cpu_seconds * 1000 / s.spends:5.2f} ms client CPU/spend, "
            f"{s.anvil_cpu_seconds * 1000 / s.spends:5.2f} ms anvil CPU/spend, "
            f"{s.spends / max(s.blocks, 1):5.1f} spends/block, "
            f"{s.head_polls / s.spends:5.2f} head polls and "
            f"{s.receipt_requests / s.spends:5.2f} receipt requests per spend"
        )
    first, last = slices[0], slices[-1]
    print(f"last slice / first slice: {last.per_second / first.per_second:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
