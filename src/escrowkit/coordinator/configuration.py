"""What the coordinator enforces: the ledger's binding, the budgets (total, category,
scope), agents (registered, spawned by a parent, removed) and the freeze. Opening a
coordinator on an existing ledger writes nothing: every change here is explicit and
audited, and applies to every process on the ledger."""

from __future__ import annotations

import logging

from escrowkit.budget import AgentConfig, check_scope
from escrowkit.budget.delegation import check_narrower, inherit, parent_id
from escrowkit.budget.scopes import in_scope
from escrowkit.budget.windows import zone_name
from escrowkit.coordinator.context import Context
from escrowkit.coordinator.outbox import record_approval
from escrowkit.core.errors import ConfigurationError, InvalidRequest, NotFound
from escrowkit.core.inputs import validate_name
from escrowkit.core.units import MAX_UINT256, check_amount
from escrowkit.ledger import ApprovalStatus, Ledger

__all__ = ["Configuration"]

logger = logging.getLogger(__name__)


class Configuration:
    """Changes to what is enforced, each in one audited transaction."""

    def __init__(self, context: Context) -> None:
        self.context = context

    # ---- opening -------------------------------------------------------------------------

    def open(self, total_budget: int | None) -> None:
        """Check that the ledger belongs to this escrow, mode and zone and has this total
        budget. A new ledger is bound and given its budget (which it then requires);
        an existing one is only read: a different budget is a ConfigurationError."""
        if total_budget is not None:
            check_amount(total_budget, name="total_budget", maximum=MAX_UINT256)
        with self.context.store.read() as ledger:
            new = "binding" not in ledger.meta()
            if not new:
                self._check(ledger, total_budget)
                self.context.refresh(ledger)
                return
        if total_budget is None:
            raise InvalidRequest(
                "total_budget is required to start a new ledger (int base units of the token)"
            )
        with self.context.store.write() as ledger:
            if "binding" in ledger.meta():  # another process created it meanwhile
                self._check(ledger, total_budget)
            else:
                now = self.context.clock()
                ledger.set_meta("binding", self.context.executor.binding)
                ledger.set_meta("timezone", zone_name(self.context.days.zone))
                ledger.set_total_budget(total_budget, now)
                ledger.audit("total_budget", now, budget=str(total_budget), previous="0")
            self.context.refresh(ledger)

    def _check(self, ledger: Ledger, total_budget: int | None) -> None:
        meta = ledger.meta()
        store = self.context.store
        for key, value in (
            ("binding", self.context.executor.binding),
            ("timezone", zone_name(self.context.days.zone)),
        ):
            found = meta.get(key)
            if found is not None and found != value:
                raise ConfigurationError(
                    f"{store!r} belongs to {key} {found!r}, not {value!r}; "
                    "use another store for another escrow, mode or timezone"
                )
        budget = ledger.state().total_budget
        if total_budget is not None and total_budget != budget:
            units = self.context.units
            raise ConfigurationError(
                f"the ledger's total budget is {units.format(budget)}, not "
                f"{units.format(total_budget)}; opening a coordinator never changes it: "
                "omit total_budget, or call set_total_budget() to change it for every process"
            )

    # ---- changes -------------------------------------------------------------------------

    def set_total_budget(self, amount: int) -> None:
        check_amount(amount, name="total_budget", allow_zero=True, maximum=MAX_UINT256)
        now = self.context.clock()
        with self.context.store.write() as ledger:
            previous = ledger.state().total_budget
            if previous == amount:
                return
            ledger.set_total_budget(amount, now)
            ledger.audit("total_budget", now, budget=str(amount), previous=str(previous))
        logger.info("total budget set to %s", self.context.units.format(amount))

    def register_agent(
        self, config: AgentConfig, *, event: str = "agent_registered"
    ) -> AgentConfig:
        """Add or update an agent (re-enabling a removed one). An agent placed under
        another (an ``agent:`` segment in its scope) is a delegated child: see spawn."""
        if not isinstance(config, AgentConfig):
            raise InvalidRequest(
                f"register_agent takes an AgentConfig, not {type(config).__name__}"
            )
        agents = self.context.read_agents()
        self._check_place(config, agents)
        self._check_limits(config)
        if self.context.settings.mode == "pool":
            for other in agents.values():
                if other.address == config.address and other.id != config.id:
                    raise InvalidRequest(
                        f"agent {other.id!r} already uses {config.address}; in pool mode "
                        "on-chain limits are per address"
                    )
        tx_hash = self.context.executor.register_agent(config)
        now = self.context.clock()
        with self.context.store.write() as ledger:
            ledger.upsert_agent(config, now)
            ledger.audit(
                event,
                now,
                agent_id=config.id,
                address=config.address,
                spending_limit=str(config.spending_limit),
                daily_limit=str(config.daily_limit),
                requires_approval=str(config.requires_approval),
                scope=config.scope,
                tx_hash=tx_hash,
            )
            self.context.refresh(ledger)
        logger.info("registered agent %s (%s) at %r", config.id, config.address, config.scope)
        return config

    def _check_limits(self, config: AgentConfig) -> None:
        """A daily limit below the per-transaction one is refused (a spend between the two
        would pass one and always fail the other); likely mistakes are logged."""
        if config.daily_limit < config.spending_limit:
            fmt = self.context.units.format
            raise InvalidRequest(
                f"agent {config.id!r}: daily_limit {fmt(config.daily_limit)} is below "
                f"spending_limit {fmt(config.spending_limit)} (the per-transaction "
                "limit): raise the daily limit to at least the per-transaction one"
            )
        for warning in config.warnings:
            logger.warning("%s", warning)

    def _check_place(self, config: AgentConfig, agents: dict[str, AgentConfig]) -> None:
        """A child's parent is registered where its scope says and the child narrows it;
        an agent with children of its own does not move (they would be left behind)."""
        parent = parent_id(config.scope)
        if parent is not None:
            found = agents.get(parent)
            if found is None or found.path != config.scope:
                state = "removed" if parent in self.context.removed else "not registered"
                raise InvalidRequest(
                    f"agent {config.id!r} is placed under agent {parent!r} ({config.scope!r}), "
                    f"which is {state} there; spawn children with spawn_agent"
                )
            check_narrower(found, config)
        current = agents.get(config.id) or self.context.removed.get(config.id)
        if current is not None and current.path != config.path and current.path:
            children = sorted(a.id for a in agents.values() if in_scope(a.scope, current.path))
            if children:
                raise InvalidRequest(
                    f"agent {config.id!r} cannot move from {current.path!r} while its children "
                    f"({', '.join(children)}) sit under it; remove them first"
                )

    def spawn_agent(self, parent: str, config: AgentConfig) -> AgentConfig:
        """Register ``config`` as a child of ``parent`` (see BudgetCoordinator.spawn_agent)."""
        validate_name(parent, "parent agent id")
        if not isinstance(config, AgentConfig):
            raise InvalidRequest(f"spawn_agent takes an AgentConfig, not {type(config).__name__}")
        found = self.context.read_agents().get(parent)
        if found is None:
            state = "was removed" if parent in self.context.removed else "is not registered"
            raise NotFound(f"parent agent {parent!r} {state}")
        return self.register_agent(inherit(found, config), event="agent_spawned")

    def remove_agent(self, agent_id: str) -> tuple[str, ...]:
        """Disable the agent and its descendants and close their open approvals, in one
        transaction; then (pool mode) remove their on-chain limits. Their ids."""
        validate_name(agent_id, "agent id")
        now = self.context.clock()
        with self.context.store.write() as ledger:
            self.context.refresh(ledger)
            agents = self.context.agents
            target = agents.get(agent_id)
            if target is None:
                if agent_id in self.context.removed:
                    return ()
                raise NotFound(f"unknown agent {agent_id!r}")
            path = target.path
            gone = [
                a
                for a in agents.values()
                if a.id == agent_id or (path and in_scope(a.scope, path))  # '' has no children
            ]
            ids = [a.id for a in gone]
            ledger.remove_agents(ids, now)
            for agent in gone:
                ledger.audit("agent_removed", now, agent_id=agent.id, by_removing=agent_id)
            self._close_approvals(ledger, ids, agent_id, now)
            self.context.refresh(ledger)
        for agent in gone:  # after the ledger: spending has stopped whatever happens here
            self.context.executor.remove_agent(agent)
        logger.warning("removed agent %s (with %d descendants)", agent_id, len(ids) - 1)
        return tuple(ids)

    @staticmethod
    def _close_approvals(ledger: Ledger, ids: list[str], removed: str, now: float) -> None:
        reason = f"agent {removed!r} was removed"
        for approval in ledger.open_approvals_of(ids):
            ledger.close_approval(approval.id, ApprovalStatus.REJECTED, now, reason=reason)
            record_approval(ledger, now, approval, ApprovalStatus.REJECTED.value, reason=reason)
            ledger.audit(
                "rejected",
                now,
                agent_id=approval.request.agent_id,
                approval_id=approval.id,
                amount=approval.request.amount,
                reason=reason,
            )

    def set_budget(self, scope: str, amount: int | None) -> None:
        check_scope(scope, root=False)
        if amount is not None:
            check_amount(amount, name="scope budget", allow_zero=True, maximum=MAX_UINT256)
        now = self.context.clock()
        with self.context.store.write() as ledger:
            previous, _, _ = ledger.counter(("scope", scope, ""))
            ledger.set_scope_budget(scope, amount)
            ledger.audit(
                "scope_budget",
                now,
                scope=scope,
                budget=None if amount is None else str(amount),
                previous=None if previous is None else str(previous),
            )

    def set_category_budget(self, category: str, amount: int | None) -> None:
        validate_name(category, "category")
        if amount is not None:
            check_amount(amount, name="category budget", allow_zero=True, maximum=MAX_UINT256)
        now = self.context.clock()
        with self.context.store.write() as ledger:
            ledger.set_category_budget(category, amount)
            ledger.audit(
                "category_budget",
                now,
                category=category,
                budget=None if amount is None else str(amount),
            )

    def freeze(self, reason: str) -> None:
        if not isinstance(reason, str):
            raise InvalidRequest("freeze needs a reason (a string)")
        now = self.context.clock()
        with self.context.store.write() as ledger:
            ledger.set_freeze(reason, now)
            ledger.audit("frozen", now, reason=reason)
        logger.warning("spending frozen: %s", reason)

    def unfreeze(self) -> None:
        now = self.context.clock()
        with self.context.store.write() as ledger:
            ledger.set_freeze(None, now)
            ledger.audit("unfrozen", now)
        logger.warning("spending unfrozen")
