"""Fixtures for the coordinator on real contracts (the session's stack; every test runs
inside a chain snapshot that is reverted after it).

``coordinator``: a :class:`BudgetCoordinator` over the session stack with a 1,000 USDC
budget, the three agents of the reference scenario registered, the treasury funded and
its allowance at max (treasury mode) or the pool funded (pool mode). Parametrize
``mode`` indirectly to get the pool: ``@pytest.mark.parametrize("mode", ["pool"],
indirect=True)``. ``store_url`` (None: in memory) and ``clock`` can be overridden the
same way or used directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from coordinator_helpers import BUDGET, USDC, Clock, Team, reference_agents
from sqlalchemy import text

from escrowkit.coordinator import BudgetCoordinator
from escrowkit.core.units import MAX_UINT256
from escrowkit.ledger import Store, metadata

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

    from escrowkit.contracts.stack import Stack


@pytest.fixture
def team(accounts: list[ChecksumAddress]) -> Team:
    return Team(
        treasury=accounts[0],
        research=accounts[1],
        data=accounts[2],
        compute=accounts[3],
        provider=accounts[5],
        other_provider=accounts[6],
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> str:
    """``treasury`` unless a test parametrizes it indirectly."""
    return str(getattr(request, "param", "treasury"))


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """In memory unless parametrized indirectly: ``"file"`` (a SQLite file) or ``"pg"``
    (the emptied database at ``$ESCROWKIT_TEST_POSTGRES_URL``; skipped without it).
    ``$ESCROWKIT_TEST_STORE`` (memory, file, pg) changes the default for a whole run."""
    kind = getattr(request, "param", None) or os.environ.get("ESCROWKIT_TEST_STORE", "memory")
    if kind == "file":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    if kind == "pg":
        url = os.environ.get("ESCROWKIT_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("set ESCROWKIT_TEST_POSTGRES_URL to run the PostgreSQL variant")
        store = Store(url)
        with store.engine.begin() as conn:
            metadata.drop_all(conn)
            # Not in the metadata: left behind, it would make the next Store find a
            # stamped ledger without tables (and fail creating the stamp again).
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        store.close()
        return url
    return None


@pytest.fixture
def funded(stack: Stack, team: Team, mode: str) -> None:
    """The treasury holds 10,000 USDC; treasury mode: its allowance to the Escrow is max;
    pool mode: the pool holds 1,000 USDC (contributed by the treasury)."""
    token, treasury = stack.token, team.treasury
    token.mint(treasury, 10_000 * USDC, sender=treasury)
    if mode == "treasury":
        token.approve(stack.escrow.address, MAX_UINT256, sender=treasury)
    else:
        token.approve(stack.pool.address, BUDGET, sender=treasury)
        stack.pool.contribute(BUDGET, sender=treasury)


@pytest.fixture
def coordinator(
    stack: Stack, team: Team, clock: Clock, mode: str, store_url: str | None, funded: None
) -> Iterator[BudgetCoordinator]:
    """A coordinator with the reference scenario's budget and agents."""
    made = BudgetCoordinator(
        stack,
        treasury=team.treasury,
        total_budget=BUDGET,
        mode=mode,  # type: ignore[arg-type]
        store=store_url,
        clock=clock,
    )
    for agent in reference_agents(team):
        made.register_agent(agent)
    yield made
    made.close()
