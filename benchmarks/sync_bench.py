"""``sync()`` with many open escrows, on anvil: RPC calls and time, nothing changed and
with refunds among them.

The ledger holds ``--escrows`` COMMITTED spends (treasury mode; made through
``arequest_spending``, 256 in flight, on one-second blocks), each a FUNDED escrow
on-chain. Then:

1. ``sync()`` with nothing changed since the last one (a block came since, without a
   settle or cancel in it);
2. the provider cancels ``--refunds`` of the escrows (a refund to the treasury), and
   ``sync()`` credits them back.

Every JSON-RPC call the client makes during each ``sync()`` is counted (web3's provider
and the lean raw calls alike). For scale, the time of what sync replaced, one ``eth_call``
per open escrow (``EscrowClient.get``), is measured on a sample and extrapolated.

    python -m benchmarks.sync_bench [--escrows 10000] [--refunds 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from escrowkit.contracts.stack import Stack, deploy_stack
from escrowkit.coordinator import AgentConfig, BudgetCoordinator, SpendRequest
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain

__all__ = ["SyncFigure", "run"]

ESCROWS = 10_000
REFUNDS = 100
IN_FLIGHT = 256
#: The fill runs on one-second blocks: on an automining anvil each of 10,000 blocks
#: costs more than the one before (see benchmarks/longrun.py), and the fill is not what
#: is measured.
BLOCK_TIME = "1"
USDC = 10**6


@dataclass(frozen=True)
class SyncFigure:
    label: str
    open_escrows: int
    seconds: float
    rpc_calls: dict[str, int]
    refunded: int

    @property
    def calls(self) -> int:
        return sum(self.rpc_calls.values())


@contextmanager
def counting(chain: Chain) -> Iterator[Counter[str]]:
    """Count every JSON-RPC method the chain's client sends (a batch counts each call),
    at the HTTP layer, under web3 and the lean raw calls alike."""
    counts: Counter[str] = Counter()
    transport: Any = chain.w3.provider.transport  # type: ignore[attr-defined]
    post = transport.post

    def counted_post(body: bytes, headers: Any = None) -> bytes:
        payload = json.loads(body)
        calls = payload if isinstance(payload, list) else [payload]
        counts.update(str(call.get("method")) for call in calls)
        return post(body, headers)  # type: ignore[no-any-return]

    transport.post = counted_post
    try:
        yield counts
    finally:
        transport.post = post


async def _fill(coordinator: BudgetCoordinator, provider: str, escrows: int) -> list[str]:
    remaining = iter(range(escrows))
    ids: list[str] = []

    async def worker(n: int) -> None:
        for i in remaining:
            result = await coordinator.arequest_spending(
                SpendRequest(f"agent-{n % 8}", USDC, provider, f"open {i}")
            )
            if not result.approved or result.escrow_id is None:
                raise RuntimeError(f"spend {i}: {result.reason}")
            ids.append(result.escrow_id)

    await asyncio.gather(*(worker(n) for n in range(IN_FLIGHT)))
    return ids


def _setup(chain: Chain, store_url: str, escrows: int) -> tuple[Stack, BudgetCoordinator]:
    owner = chain.accounts[0]
    stack = deploy_stack(chain)
    budget = escrows * 2 * USDC
    stack.token.mint(owner, budget, sender=owner)
    stack.token.approve(stack.escrow.address, MAX_UINT256, sender=owner)
    coordinator = BudgetCoordinator(stack, treasury=owner, total_budget=budget, store=store_url)
    for n in range(8):
        coordinator.register_agent(
            AgentConfig(f"agent-{n}", f"a{n}", chain.accounts[1 + n], USDC, budget, USDC)
        )
    return stack, coordinator


def run(escrows: int = ESCROWS, refunds: int = REFUNDS) -> tuple[list[SyncFigure], float]:
    """The two sync figures, and the extrapolated seconds of one eth_call per escrow."""
    with (
        Chain.anvil(extra_args=["--block-time", BLOCK_TIME]) as chain,
        tempfile.TemporaryDirectory() as tmp,
    ):
        provider = chain.accounts[9]
        stack, coordinator = _setup(chain, f"sqlite:///{Path(tmp) / 'l.db'}", escrows)
        ids = asyncio.run(_fill(coordinator, provider, escrows))
        coordinator.sync()  # the ledger's synced block is now the head
        chain.mine()  # blocks came since, with no settle or cancel in them
        figures = []
        with counting(chain) as counts:
            began = time.perf_counter()
            report = coordinator.sync()
            figures.append(
                SyncFigure("nothing changed", escrows, time.perf_counter() - began, dict(counts), 0)
            )
        cancels = [  # the provider refunds, all in the next block or two
            chain.submit(
                stack.escrow.contract.functions.cancel(bytes.fromhex(escrow_id[2:])),
                sender=provider,
            )
            for escrow_id in ids[:: max(1, len(ids) // refunds)][:refunds]
        ]
        for pending in cancels:
            pending.receipt()
        with counting(chain) as counts:
            began = time.perf_counter()
            report = coordinator.sync()
            seconds = time.perf_counter() - began
        if len(report.refunded) != refunds:
            raise RuntimeError(f"sync credited {len(report.refunded)} refunds, not {refunds}")
        figures.append(
            SyncFigure(f"{refunds} refunds", escrows, seconds, dict(counts), len(report.refunded))
        )
        sample = ids[:500]
        began = time.perf_counter()
        for escrow_id in sample:
            stack.escrow.get(escrow_id)
        per_escrow = (time.perf_counter() - began) / len(sample)
        coordinator.close()
    return figures, per_escrow * escrows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--escrows", type=int, default=ESCROWS)
    parser.add_argument("--refunds", type=int, default=REFUNDS)
    args = parser.parse_args(argv)
    figures, one_call_each = run(args.escrows, args.refunds)
    for f in figures:
        calls = ", ".join(f"{method} {n}" for method, n in sorted(f.rpc_calls.items()))
        print(
            f"sync, {f.open_escrows:,} open escrows, {f.label}: {f.seconds * 1000:.1f} ms, "
            f"{f.calls} RPC calls ({calls})"
        )
    print(f"one eth_call per open escrow instead: {one_call_each:.1f} s ({args.escrows:,} calls)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
