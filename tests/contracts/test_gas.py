"""Gas figures (benchmarks/gas.py) against the committed snapshot and DESIGN.md's targets.

A figure that grows fails; one that shrinks passes with a warning saying how to refresh
the snapshot, so that the improvement is locked in.
"""

from __future__ import annotations

import warnings

import pytest

from benchmarks import gas  # the repo root is on pytest's pythonpath (pyproject.toml)
from escrowkit.evm.chain import Chain

REFRESH = "python -m benchmarks.gas --update"


@pytest.fixture(scope="module")
def figures(chain: Chain) -> dict[str, int]:
    """Measured once on the session's chain (its own contracts, fixed inputs, exact
    figures; the chain is left as found). Under ``--chain anvil`` the same snapshot
    holds, so the two EVMs are shown to charge the same gas."""
    return dict(gas.measure(chain))


def test_no_figure_grew(figures: dict[str, int]) -> None:
    snapshot = gas.load_snapshot()
    missing = sorted(set(figures) ^ set(snapshot))
    assert not missing, f"scenarios and snapshot differ on {missing}; run `{REFRESH}`"
    grown = {n: (snapshot[n], g) for n, g in figures.items() if g > snapshot[n]}
    assert not grown, "gas grew (snapshot -> now): " + ", ".join(
        f"{n} {before:,} -> {now:,}" for n, (before, now) in grown.items()
    )
    shrunk = {n: (snapshot[n], g) for n, g in figures.items() if g < snapshot[n]}
    if shrunk:
        detail = ", ".join(f"{n} {b:,} -> {g:,}" for n, (b, g) in shrunk.items())
        message = f"gas shrank ({detail}); lock it in with `{REFRESH}`"
        print(message)
        warnings.warn(message, stacklevel=1)


def test_design_targets_are_met(figures: dict[str, int]) -> None:
    over = {n: (figures[n], t) for n, t in gas.TARGETS.items() if figures[n] > t}
    assert not over, ", ".join(f"{n} {g:,} > target {t:,}" for n, (g, t) in over.items())


def test_bench_measures_the_steady_state() -> None:
    """What DESIGN.md section 7 measures: the escrow already holds other funds, the provider
    already holds tokens, the allowance is at max (otherwise a figure would carry a one-off
    zero-to-nonzero write of ~17,100 gas, or an allowance write)."""
    from escrowkit.core.units import MAX_UINT256
    from escrowkit.evm.chain import Chain

    bench = gas.steady_state(Chain.embedded())
    assert bench.token.balance_of(bench.escrow.address) > 0
    assert bench.token.balance_of(bench.provider) > 0
    assert bench.token.allowance(bench.requester, bench.escrow.address) == MAX_UINT256
