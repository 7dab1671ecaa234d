"""What the coordinator enforces: the ledger's binding, the total budget, agents, category
budgets and the freeze. Opening a coordinator on an existing ledger writes nothing:
every change here is explicit and audited, and applies to every process on the ledger."""

from __future__ import annotations

import logging

from escrowkit.budget import AgentConfig
from escrowkit.budget.windows import zone_name
from escrowkit.coordinator.context import Context
from escrowkit.core.errors import ConfigurationError, InvalidRequest
from escrowkit.core.inputs import validate_name
from escrowkit.core.units import MAX_UINT256, check_amount
from escrowkit.ledger import Ledger

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

    def register_agent(self, config: AgentConfig) -> AgentConfig:
        if not isinstance(config, AgentConfig):
            raise InvalidRequest(
                f"register_agent takes an AgentConfig, not {type(config).__name__}"
            )
        agents = self.context.read_agents()
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
                "agent_registered",
                now,
                agent_id=config.id,
                address=config.address,
                spending_limit=str(config.spending_limit),
                daily_limit=str(config.daily_limit),
                requires_approval=str(config.requires_approval),
                tx_hash=tx_hash,
            )
            self.context.refresh(ledger)
        logger.info("registered agent %s (%s)", config.id, config.address)
        return config

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
