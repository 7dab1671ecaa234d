"""Budgets and usage, in one table: the root scope (the total budget), every other scope,
the categories and the agents' days are rows of ``counters``, counted by the same code.

A spend counts in the root, in its agent's day, in its category (if any) and in every
scope it charges (:func:`~escrowkit.budget.scopes.charged_scopes` of the agent's path
and the request's workflow, recorded on its reservation), from the moment it is reserved
until it is voided or refunded; every counter is buffered by the unit of work and
written once per transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import and_, select

from escrowkit.budget import ScopeUsage, charged_scopes
from escrowkit.ledger import statements as st
from escrowkit.ledger.records import Reservation, ReservationStatus
from escrowkit.ledger.unit import CounterKey, UnitOfWork

__all__ = ["Counters", "PendingCharge", "ScopeCounter"]


class ScopeCounter(NamedTuple):
    """A scope's budget (None: none) and what counts against it (reservations too)."""

    scope: str
    budget: int | None
    used: int


class PendingCharge(NamedTuple):
    """What a PENDING reservation holds, and where."""

    agent_id: str
    day: str
    category: str | None
    scope: str
    workflow: str | None
    amount: int


@functools.lru_cache(maxsize=16_384)
def _charged_keys(path: str, workflow: str | None) -> tuple[CounterKey, ...]:
    return tuple(("scope", scope, "") for scope in charged_scopes(path, workflow))


class Counters(UnitOfWork):
    """The counter operations of one transaction (mixed into :class:`Ledger`)."""

    # ---- budgets -----------------------------------------------------------------------

    def set_total_budget(self, amount: int, now: float) -> None:
        """The root scope's budget: what the total budget check enforces."""
        self._set_budget(("scope", "", ""), amount)
        self._update_state(updated_at=now)

    def set_scope_budget(self, scope: str, budget: int | None) -> None:
        """Allocate (None: remove) a lifetime budget to a scope other than the root."""
        if not scope:  # pragma: no cover - the coordinator refuses it first
            raise AssertionError("the root's budget is the total budget")
        self._set_budget(("scope", scope, ""), budget)

    def set_category_budget(self, name: str, budget: int | None) -> None:
        self._set_budget(("category", name, ""), budget)

    # ---- reading -------------------------------------------------------------------------

    def category(self, name: str) -> tuple[bool, int | None, int]:
        """(exists, budget, used) of a category; a missing one has no budget and no use."""
        budget, used, exists = self.counter(("category", name, ""))
        return exists, budget, used

    def scope_usage(self, scopes: Sequence[str]) -> list[ScopeUsage]:
        """Those of ``scopes`` that have a budget, in the given order, with their usage."""
        return self._usage([("scope", scope, "") for scope in scopes])

    def charged_usage(self, path: str, workflow: str | None) -> list[ScopeUsage]:
        """:meth:`scope_usage` of the scopes a spend at agent path ``path`` (and
        ``workflow``) charges, in the order they are checked."""
        return self._usage(_charged_keys(path, workflow))

    def _usage(self, keys: Sequence[CounterKey]) -> list[ScopeUsage]:
        self._load(keys)
        counters = self._counters
        found = []
        for key in keys:
            budget, used, _ = counters[key]
            if budget is not None:
                found.append(ScopeUsage(key[1], budget, used))
        return found

    def _rows(self, kind: str, *, budgeted: bool = False) -> list[tuple[str, str, int | None, int]]:
        self.flush()
        where = st.K.kind == kind
        if budgeted:
            where = and_(where, st.K.budget.is_not(None))
        query = select(st.K.name, st.K.period, st.K.budget, st.K.used).where(where)
        return [(r.name, r.period, r.budget, r.used) for r in self.conn.execute(query)]

    def categories(self) -> dict[str, tuple[int | None, int]]:
        rows = sorted(self._rows("category"))
        return {name: (budget, used) for name, _, budget, used in rows}

    def scope_budgets(self) -> list[ScopeCounter]:
        """Every scope that has a budget (the root included), in no particular order."""
        return [ScopeCounter(n, b, u) for n, _, b, u in self._rows("scope", budgeted=True)]

    def days_used(self, day: str | None = None) -> dict[tuple[str, str], int]:
        rows = self._rows("day")
        return {(agent, period): used for agent, period, _, used in rows if day in (None, period)}

    def hour_used(self, agent_id: str, since: float) -> int:
        """Counted amounts of ``agent_id``'s reservations created after ``since``."""
        self.flush()
        rows = self.conn.execute(st.HOUR_AMOUNTS, {"b_agent": agent_id, "b_since": since})
        return sum(row.amount for row in rows)

    def pending_amounts(self) -> list[tuple[str, str, str | None, int]]:
        """(agent_id, day, category, amount) of every PENDING reservation."""
        return [(p.agent_id, p.day, p.category, p.amount) for p in self.pending_charges()]

    def pending_charges(self) -> list[PendingCharge]:
        """What every PENDING reservation holds, and where (its scope and workflow)."""
        self.flush()
        r = st.R
        rows = self.conn.execute(
            select(r.agent_id, r.day, r.category, r.scope, r.workflow, r.amount).where(
                st.status_is(ReservationStatus.PENDING)
            )
        )
        return [PendingCharge(*row) for row in rows]

    # ---- counting ------------------------------------------------------------------------

    def add_usage(self, reservation: Reservation, delta: int) -> None:
        """Add ``delta`` (negative to credit back) to every counter ``reservation``
        counts in: the root, its agent's day, its category, each scope it charges."""
        used = self._add_total(delta)
        if used < 0:  # pragma: no cover - a bug, never a user error
            raise AssertionError(f"usage would go negative ({used}): the ledger is inconsistent")
        self._add(("day", reservation.agent_id, reservation.day), delta)
        if reservation.category is not None:
            self._add(("category", reservation.category, ""), delta)
        for key in _charged_keys(reservation.scope, reservation.workflow):
            self._add(key, delta)
