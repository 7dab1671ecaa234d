"""Gas of the escrow calls in the steady state of DESIGN.md section 7.

Steady state: the escrow already holds other funds, the provider already holds tokens,
the requester's allowance is at max (MockUSDC never decrements a max allowance). So no
figure includes a one-off zero-to-nonzero balance write that a long-running deployment
does not pay. Circle's USDC does write a max allowance back on every transferFrom: on it
fund, createAndFund and pool.spend each cost about 3,060 gas more (create + fund + settle
then comes to about 171,500, over the 170,000 target that DESIGN.md sets for MockUSDC).
Inputs are fixed (salts, metadata, a deadline in 2100) so that calldata, and with it
every figure, is the same on every run.

    python -m benchmarks.gas            # print each figure beside its target
    python -m benchmarks.gas --check    # also compare with benchmarks/gas.json (exit 1 if any grew)
    python -m benchmarks.gas --update   # rewrite benchmarks/gas.json

Adding a scenario: write ``def my_scenario(bench: Bench) -> int`` that sets up what it
needs (unmeasured) and returns the ``gasUsed`` of the one transaction it measures, then
register it in :data:`SCENARIOS` (and its target, if any, in :data:`TARGETS`). Every
scenario starts from the same steady state: it runs inside a snapshot reverted after it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from eth_utils.crypto import keccak

from escrowkit.contracts.deploy import deploy
from escrowkit.contracts.escrow import EscrowClient, EscrowId
from escrowkit.contracts.pool import BudgetPoolClient
from escrowkit.contracts.token import TokenClient
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain

SNAPSHOT = Path(__file__).with_name("gas.json")

AMOUNT = 25_000_000  # 25 USDC
DEADLINE = 4_102_444_800  # 2100-01-01T00:00:00Z: fixed, so calldata is fixed
DISPUTE_WINDOW = 3_600
METADATA = keccak(text="invoice 2026-0042")  # a realistic 32-byte reference


@dataclass(frozen=True)
class Bench:
    """The steady state every scenario starts from (see the module docstring)."""

    chain: Chain
    token: TokenClient
    escrow: EscrowClient
    owner: str
    requester: str
    provider: str

    def salt(self, label: str) -> bytes:
        return keccak(text=f"gas:{label}")

    def create(self, label: str, *, funded: bool) -> EscrowId:
        """An escrow of the requester (setup, not measured)."""
        method = self.escrow.create_and_fund if funded else self.escrow.create
        return method(
            self.provider,
            AMOUNT,
            deadline=DEADLINE,
            dispute_window=DISPUTE_WINDOW,
            metadata=METADATA,
            salt=self.salt(label),
            sender=self.requester,
        )


def steady_state(chain: Chain) -> Bench:
    owner, requester, provider, other = chain.accounts[:4]
    token = TokenClient(chain, str(deploy(chain, "MockUSDC", sender=owner).address))
    escrow = EscrowClient.deploy(chain, token.address, sender=owner)
    for account in (requester, other):
        token.mint(account, 1_000 * AMOUNT, sender=owner)
        token.approve(escrow.address, MAX_UINT256, sender=account)
    token.mint(provider, AMOUNT, sender=owner)
    # Someone else's escrow: the escrow's own balance is already non-zero.
    escrow.create_and_fund(
        provider,
        AMOUNT,
        deadline=DEADLINE,
        dispute_window=DISPUTE_WINDOW,
        salt=keccak(text="gas:background"),
        sender=other,
    )
    return Bench(chain, token, escrow, owner, requester, provider)


# --------------------------------------------------------------------------------------
# Scenarios: each returns the gasUsed of the one transaction it measures
# --------------------------------------------------------------------------------------


def escrow_create(bench: Bench) -> int:
    return _gas(bench.create("create", funded=False))


def escrow_fund(bench: Bench) -> int:
    eid = bench.create("fund", funded=False)
    return int(bench.escrow.fund(eid, sender=bench.requester)["gasUsed"])


def escrow_create_and_fund(bench: Bench) -> int:
    return _gas(bench.create("createAndFund", funded=True))


def escrow_settle(bench: Bench) -> int:
    eid = bench.create("settle", funded=True)
    return int(bench.escrow.settle(eid, sender=bench.requester)["gasUsed"])


def escrow_cancel(bench: Bench) -> int:
    """The provider cancels a funded escrow: the refund path, the dearest cancel."""
    eid = bench.create("cancel", funded=True)
    return int(bench.escrow.cancel(eid, sender=bench.provider)["gasUsed"])


def pool_spend(bench: Bench) -> int:
    """The operator key spends for an agent that already spent in this window (section 7)."""
    agent, operator = bench.chain.accounts[4:6]
    pool = BudgetPoolClient.deploy(bench.chain, bench.escrow.address, sender=bench.owner)
    bench.token.mint(pool.address, 1_000 * AMOUNT, sender=bench.owner)
    pool.set_agent(agent, 10 * AMOUNT, 100 * AMOUNT, 86_400, sender=bench.owner)
    pool.set_operator(operator, True, sender=bench.owner)

    def spend(label: str) -> EscrowId:
        return pool.spend(
            agent,
            bench.provider,
            AMOUNT,
            deadline=DEADLINE,
            dispute_window=DISPUTE_WINDOW,
            metadata=METADATA,
            salt=bench.salt(label),
            sender=operator,
        )

    spend("pool.spend:earlier")
    return _gas(spend("pool.spend"))


def pool_fence(bench: Bench) -> int:
    """An operator fences an escrow id that was reserved but never funded (recovery after a
    crash; off the happy path): the pool creates the id and cancels it at once."""
    agent, operator = bench.chain.accounts[4:6]
    pool = BudgetPoolClient.deploy(bench.chain, bench.escrow.address, sender=bench.owner)
    pool.set_operator(operator, True, sender=bench.owner)
    return _gas(pool.fence(agent, bench.salt("pool.fence"), sender=operator))


def _gas(eid: EscrowId) -> int:
    assert eid.receipt is not None
    return int(eid.receipt["gasUsed"])


#: Named scenarios, measured in this order.
SCENARIOS: dict[str, Callable[[Bench], int]] = {
    "escrow.create": escrow_create,
    "escrow.fund": escrow_fund,
    "escrow.createAndFund": escrow_create_and_fund,
    "escrow.settle": escrow_settle,
    "escrow.cancel": escrow_cancel,
    "pool.spend": pool_spend,
    "pool.fence": pool_fence,
}

#: Figures that add up scenarios (all three steps of the two-transaction path).
TOTALS: dict[str, tuple[str, ...]] = {
    "escrow.create+fund+settle": ("escrow.create", "escrow.fund", "escrow.settle"),
}

#: DESIGN.md section 7 (a figure without a target is still held to the snapshot).
TARGETS: dict[str, int] = {
    "escrow.create": 75_000,
    "escrow.fund": 55_000,
    "escrow.settle": 50_000,
    "escrow.create+fund+settle": 170_000,
    "escrow.createAndFund": 105_000,
    "pool.spend": 145_000,
}


def measure(chain: Chain | None = None, names: Iterable[str] | None = None) -> dict[str, int]:
    """Run the scenarios (all, or ``names``) on ``chain`` (default: a new embedded chain).

    Returns ``{name: gas}``, totals included when all their parts ran. The chain is left
    as it was found.
    """
    chain = chain or Chain.embedded()
    wanted = list(SCENARIOS) if names is None else list(names)
    unknown = sorted(set(wanted) - set(SCENARIOS))
    if unknown:
        raise KeyError(f"unknown gas scenarios {unknown}; known: {sorted(SCENARIOS)}")
    start = chain.snapshot()
    try:
        bench = steady_state(chain)
        figures: dict[str, int] = {}
        for name in wanted:
            snapshot = chain.snapshot()
            try:
                figures[name] = SCENARIOS[name](bench)
            finally:
                chain.revert(snapshot)
    finally:
        chain.revert(start)
    for total, parts in TOTALS.items():
        if all(part in figures for part in parts):
            figures[total] = sum(figures[part] for part in parts)
    return figures


def load_snapshot(path: Path = SNAPSHOT) -> dict[str, int]:
    return {str(k): int(v) for k, v in json.loads(path.read_text()).items()}


def write_snapshot(figures: dict[str, int], path: Path = SNAPSHOT) -> None:
    path.write_text(json.dumps(dict(sorted(figures.items())), indent=2) + "\n")


def report(figures: dict[str, int], snapshot: dict[str, int] | None = None) -> str:
    """A plain table: figure, target, verdict, and the change against the snapshot."""
    lines = [f"{'figure':<28}{'gas':>9}{'target':>10}  {'':<6}{'snapshot':>10}"]
    for name, gas in figures.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("ok" if gas <= target else "OVER")
        before = (snapshot or {}).get(name)
        change = "" if before is None else f"{gas - before:+d}" if gas != before else "="
        lines.append(
            f"{name:<28}{gas:>9,}{'' if target is None else f'{target:,}':>10}  "
            f"{verdict:<6}{change:>10}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gas",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if any figure grew against benchmarks/gas.json"
    )
    parser.add_argument("--update", action="store_true", help="rewrite benchmarks/gas.json")
    args = parser.parse_args(argv)
    figures = measure()
    snapshot = load_snapshot() if SNAPSHOT.exists() else None
    print(report(figures, snapshot))
    over = [name for name, gas in figures.items() if gas > TARGETS.get(name, gas)]
    if over:
        print(f"over target: {', '.join(over)}")
    if args.update:
        write_snapshot(figures)
        print(f"wrote {SNAPSHOT}")
        return 0
    if args.check and snapshot is not None:
        grown = [n for n, gas in figures.items() if gas > snapshot.get(n, gas)]
        if grown:
            print(f"grew against the snapshot: {', '.join(grown)}")
            return 1
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
