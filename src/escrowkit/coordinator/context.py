"""What every part of the coordinator shares: the ledger, the executor, the clock, the
agents it knows, the day windows and the spends this process has in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from escrowkit.budget import AgentConfig, PolicyInputs, SpendRequest, Usage
from escrowkit.budget.windows import HOUR, DayWindows
from escrowkit.coordinator.executors import SpendExecutor
from escrowkit.ledger import Ledger, Store

__all__ = ["Context", "Remaining", "Settings"]

#: What is left for the agent today and in the treasury (None: unknown).
Remaining = tuple[int | None, int | None]


@dataclass(frozen=True)
class Settings:
    """The coordinator's fixed knobs (seconds)."""

    mode: str
    escrow_ttl: int
    dispute_window: int
    approval_ttl: int


class Context:
    """Shared state of one coordinator. Agents (``agents``: the enabled ones; ``removed``:
    those remove_agent disabled) are cached and reloaded when the ledger's
    ``config_version`` moves (another coordinator or process changed them)."""

    def __init__(
        self,
        store: Store,
        executor: SpendExecutor,
        clock: Callable[[], float],
        days: DayWindows,
        settings: Settings,
    ) -> None:
        self.store = store
        self.executor = executor
        self.clock = clock
        self.days = days
        self.settings = settings
        self.units = executor.units
        self.agents: dict[str, AgentConfig] = {}
        self.removed: dict[str, AgentConfig] = {}
        self._config_version = -1
        self._in_flight: set[str] = set()
        self._in_flight_lock = threading.Lock()

    # ---- agents --------------------------------------------------------------------------

    def refresh(self, ledger: Ledger) -> None:
        """Reload the agents when another coordinator (or process) changed them."""
        version = ledger.config_version()
        if version != self._config_version:
            self.agents = ledger.agents()
            self.removed = ledger.agents(removed=True)
            self._config_version = version

    def read_agents(self) -> dict[str, AgentConfig]:
        with self.store.read() as ledger:
            self.refresh(ledger)
        return self.agents

    # ---- spends in flight in this process ----------------------------------------------

    def start(self, reservation_id: str) -> None:
        """From now on ``recover()`` in this process leaves the row to its spender."""
        with self._in_flight_lock:
            self._in_flight.add(reservation_id)

    def stop(self, reservation_id: str) -> None:
        with self._in_flight_lock:
            self._in_flight.discard(reservation_id)

    def in_flight(self, reservation_id: str) -> bool:
        with self._in_flight_lock:
            return reservation_id in self._in_flight

    # ---- the policy's figures ------------------------------------------------------------

    def inputs(
        self, ledger: Ledger, request: SpendRequest, now: float, day: str
    ) -> tuple[PolicyInputs, int]:
        """The figures the policy needs, read under the lock; also today's usage.

        They are read for a frozen coordinator too, so that its denials report what is
        really left. The scopes are those the spend would charge (the agent's path and
        the request's workflow) that have a budget; the root is the total budget."""
        state = ledger.state()
        agent = self.agents.get(request.agent_id)
        if agent is None:
            inputs = PolicyInputs(
                agent=None,
                units=self.units,
                total_budget=state.total_budget,
                usage=Usage(total=state.used),
                freeze_reason=state.freeze_reason,
                known_agents=tuple(self.agents),  # only on this path: a denial's hint
                agent_removed=request.agent_id in self.removed,
            )
            return inputs, 0
        category_exists, category_budget, category_used = (
            ledger.category(request.category) if request.category is not None else (False, None, 0)
        )
        daily = ledger.day_used(agent.id, day)
        hourly = ledger.hour_used(agent.id, now - HOUR) if agent.hourly_limit is not None else 0
        scopes = ledger.charged_usage(agent.path, request.workflow)
        inputs = PolicyInputs(
            agent=agent,
            units=self.units,
            total_budget=state.total_budget,
            usage=Usage(hourly=hourly, daily=daily, category=category_used, total=state.used),
            freeze_reason=state.freeze_reason,
            category_budget=category_budget,
            category_has_budget=category_exists and category_budget is not None,
            forbidden_providers=self.executor.forbidden_providers,
            scopes=scopes,
        )
        return inputs, daily

    @staticmethod
    def remaining(inputs: PolicyInputs, daily: int, extra: int = 0) -> Remaining:
        """What is left after ``extra`` more is counted (never below 0)."""
        agent = inputs.agent
        left_daily = None if agent is None else max(agent.daily_limit - daily - extra, 0)
        left_total = max(inputs.total_budget - inputs.usage.total - extra, 0)
        return left_daily, left_total
