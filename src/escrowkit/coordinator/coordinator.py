"""BudgetCoordinator: many agents, one treasury, no overspend, no half-done spend.

A thin façade: each method hands over to the room that does the work, so that what a
spend is (:mod:`.spending`, :mod:`.commit`), how unclear outcomes are decided from the
chain (:mod:`.resolution`), approvals (:mod:`.approvals`), alerts (:mod:`.alerts`),
reports (:mod:`.reporting`) and what is enforced (:mod:`.configuration`) can be read,
tested and replaced one at a time.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from escrowkit.budget import AgentConfig, SpendRequest
from escrowkit.budget.windows import DayWindows, parse_zone
from escrowkit.coordinator.alerts import Alerts
from escrowkit.coordinator.approvals import Approvals
from escrowkit.coordinator.commit import Committer
from escrowkit.coordinator.configuration import Configuration
from escrowkit.coordinator.context import Context, Settings
from escrowkit.coordinator.executors import PoolExecutor, SpendExecutor, TreasuryExecutor
from escrowkit.coordinator.keys import ApiKeys
from escrowkit.coordinator.outbox import Outbox
from escrowkit.coordinator.reporting import Reporting
from escrowkit.coordinator.resolution import Resolution
from escrowkit.coordinator.results import (
    Alert,
    BudgetReport,
    RecoveryReport,
    ScopeBalance,
    SpendResult,
    SyncReport,
)
from escrowkit.coordinator.spending import Spending, fingerprint
from escrowkit.coordinator.views import AgentBudget, Page, Views
from escrowkit.core.addresses import to_address
from escrowkit.core.errors import InvalidRequest, NotFound
from escrowkit.core.units import MAX_UINT256, TokenUnits, check_amount
from escrowkit.ledger import (
    Approval,
    ApprovalStatus,
    AuditEntry,
    Reservation,
    ReservationStatus,
    Store,
)

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack

__all__ = ["AgentHandle", "BudgetCoordinator"]

logger = logging.getLogger(__name__)


class BudgetCoordinator:
    """Decides, under a lock, which agent may spend what from one treasury.

    ``stack``: the deployed clients (token, escrow, pool). ``treasury``: the account that
    pays in treasury mode, the operator key in pool mode. ``total_budget``: int base
    units; required for a new ledger, optional for an existing one (a different value
    raises ConfigurationError: opening never changes what other processes enforce; use
    :meth:`set_total_budget`). ``store``: None (in-memory SQLite), a URL
    (``sqlite:///file.db``, ``postgresql://…``) or a :class:`~escrowkit.ledger.Store`.
    ``clock``: returns UTC seconds and drives the policy windows and approval expiry
    (escrow deadlines use the chain's time). ``timezone``: the zone of the daily window
    (UTC by default). ``executor``: replaces the chain work (see
    :class:`~escrowkit.coordinator.executors.NoopExecutor`); with one, ``stack`` may be None.
    ``shared_nonces``: take the treasury key's nonces from the ledger's ``nonces`` row
    (:class:`~escrowkit.ledger.nonces.LedgerNonces`), so that several processes on this
    ledger can send with one key; None (the default) does so on PostgreSQL, the
    deployment with several service processes; a SQLite file can opt in.

    Safe to share across threads; several processes may share one ledger.
    """

    def __init__(
        self,
        stack: Stack | None,
        treasury: str | None = None,
        total_budget: int | None = None,
        mode: Literal["treasury", "pool"] = "treasury",
        store: str | Store | None = None,
        clock: Callable[[], float] | None = None,
        escrow_ttl: int = 86_400,
        dispute_window: int = 3_600,
        approval_ttl: int = 86_400,
        *,
        timezone: str | dt.tzinfo = "UTC",
        executor: SpendExecutor | None = None,
        shared_nonces: bool | None = None,
    ) -> None:
        if mode not in ("treasury", "pool"):
            raise InvalidRequest(f"mode must be 'treasury' or 'pool', got {mode!r}")
        for name, value, low, high in (
            ("escrow_ttl", escrow_ttl, 1, 2**40),
            ("dispute_window", dispute_window, 0, 2**32 - 1),
            ("approval_ttl", approval_ttl, 1, 2**40),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidRequest(f"{name} must be an int of seconds in [{low}, {high}]")
        days = DayWindows(parse_zone(timezone))
        if executor is None:
            executor = _chain_executor(stack, treasury, mode, escrow_ttl, dispute_window)
        self.mode = mode
        self.stack = stack
        self.treasury = treasury
        self.executor: SpendExecutor = executor
        self.store = store if isinstance(store, Store) else Store(store)
        self._owns_store = not isinstance(store, Store)
        self._shares_nonces = _share_nonces(executor, self.store, shared_nonces)
        settings = Settings(mode, escrow_ttl, dispute_window, approval_ttl)
        self._context = Context(self.store, executor, clock or time.time, days, settings)
        self._alerts = Alerts(self._context)
        committer = Committer(self._context, self._alerts)
        self._resolution = Resolution(self._context, committer)
        self._spending = Spending(self._context, committer, self._resolution)
        self._approvals = Approvals(self._context, self._spending)
        self._reporting = Reporting(self._context)
        self._configuration = Configuration(self._context)
        self._views = Views(self._context)
        self.api_keys = ApiKeys(self.store, self._context.clock)
        """The service's API keys (:class:`~escrowkit.coordinator.keys.ApiKeys`)."""
        self.outbox = Outbox(self.store, self._context.clock)
        """Events for streams and webhooks (:class:`~escrowkit.coordinator.outbox.Outbox`)."""
        try:
            self._configuration.open(total_budget)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"BudgetCoordinator({self.mode}, store={self.store!r})"

    # ---- lifecycle and knobs -------------------------------------------------------------

    def close(self) -> None:
        """Release the database connections (when the coordinator opened the store)."""
        if self._shares_nonces:
            self.executor.share_nonces(None)  # type: ignore[attr-defined]
            self._shares_nonces = False
        self.api_keys.close()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> BudgetCoordinator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def units(self) -> TokenUnits:
        """How amounts of the token are shown."""
        return self._context.units

    @property
    def clock(self) -> Callable[[], float]:
        return self._context.clock

    @property
    def timezone(self) -> dt.tzinfo:
        return self._context.days.zone

    @property
    def escrow_ttl(self) -> int:
        return self._context.settings.escrow_ttl

    @property
    def dispute_window(self) -> int:
        return self._context.settings.dispute_window

    @property
    def approval_ttl(self) -> int:
        return self._context.settings.approval_ttl

    @property
    def total_budget(self) -> int:
        """The ledger's total budget now (shared by every process on the ledger)."""
        with self.store.read() as ledger:
            return ledger.state().total_budget

    # ---- what is enforced ----------------------------------------------------------------

    def set_total_budget(self, amount: int) -> None:
        """Change the total budget every process on this ledger enforces (audited)."""
        self._configuration.set_total_budget(amount)

    def register_agent(self, config: AgentConfig) -> AgentConfig:
        """Add an agent, or update its limits (a removed agent is re-enabled). In pool mode
        its per-transaction and daily limits are written to the pool first (with the pool
        owner's key).

        A daily limit below the per-transaction limit is refused (``InvalidRequest``):
        every spend between the two would pass one limit and always fail the other. Limits
        that are allowed but probably not meant (``config.warnings``) are logged. (Checked
        here, not in ``AgentConfig``, so that a ledger holding such an agent still opens.)"""
        return self._configuration.register_agent(config)

    def spawn_agent(self, parent_id: str, config: AgentConfig) -> AgentConfig:
        """Register a child of ``parent_id``: its scope (which must be ``""``) becomes the
        parent's path, so each of its spends charges the parent's scope too. ``None`` for
        its hourly limit, categories or providers inherits the parent's; its limits can
        only narrow the parent's (else InvalidRequest). Pool mode: written on-chain too.
        Returns the child's config as registered."""
        return self._configuration.spawn_agent(parent_id, config)

    def remove_agent(self, agent_id: str) -> tuple[str, ...]:
        """Disable an agent and all its descendants at once: their later requests are
        DENIED ``unknown_agent``, their open approvals close (approving one is DENIED
        ``approval_rejected``), and nothing they already funded is touched. Registering
        an id again re-enables it. Pool mode: their on-chain limits are removed (the
        owner's key). Returns the ids removed."""
        return self._configuration.remove_agent(agent_id)

    def set_category_budget(self, category: str, amount: int | None) -> None:
        """Cap a category's lifetime net spend (shared by all agents); None removes the cap."""
        self._configuration.set_category_budget(category, amount)

    def set_budget(self, scope: str, amount: int | None) -> None:
        """Allocate a lifetime budget (net of refunds) to a scope, e.g.
        ``"workspace:alpha"``; None removes it. The root's budget is the total budget
        (:meth:`set_total_budget`). Children may be allocated more than their parent in
        sum: the parent is the hard cap. A malformed path is InvalidRequest."""
        self._configuration.set_budget(scope, amount)

    def balances(self, prefix: str = "") -> list[ScopeBalance]:
        """Every scope with a budget that is ``prefix`` or under it, in path order (the
        root, the total budget, first when ``prefix`` is empty)."""
        return self._reporting.balances(prefix)

    def freeze(self, reason: str) -> None:
        """Deny every spend and approval (in every process on this store) until unfreeze."""
        self._configuration.freeze(reason)

    def unfreeze(self) -> None:
        """Allow spending again."""
        self._configuration.unfreeze()

    def on_alert(self, callback: Callable[[Alert], object]) -> Callable[[Alert], object]:
        """Call ``callback(alert)`` when an alert fires (usable as a decorator)."""
        return self._alerts.on_alert(callback)

    # ---- spending ------------------------------------------------------------------------

    def request_spending(self, request: SpendRequest) -> SpendResult:
        """Decide and, when allowed, fund the escrow on-chain.

        Returns APPROVED (funded), DENIED (``code`` names the check), PENDING_APPROVAL
        (``approval_id``) or FAILED (funding failed; nothing counted). Malformed input
        raises :class:`~escrowkit.errors.InvalidRequest`; a reused idempotency key with
        another request raises ``IdempotencyKeyMismatch``, one whose first request is in
        flight ``IdempotencyKeyInUse`` (both are ``IdempotencyConflict``). An empty
        ``purpose`` is malformed input too.
        """
        _refuse_empty_purpose(request)
        return self._spending.request(request)

    async def arequest_spending(self, request: SpendRequest) -> SpendResult:
        """:meth:`request_spending` as a coroutine, for callers that keep many spends in
        flight: the ledger's work runs in the event loop's worker threads, the wait for
        the block holds no thread (one receipt watcher per chain resolves them all). The
        blocking call runs this same code."""
        _refuse_empty_purpose(request)
        return await self._spending.arequest(request)

    def recorded(self, request: SpendRequest) -> SpendResult | None:
        """What :meth:`request_spending` would return again for ``request`` without
        deciding anew: the result recorded under its idempotency key when this same
        request was decided with it before. None for no key, a new key, a first request
        still in flight or another request under the key (those two raise there).

        A caller that asks first can tell a replay from a new decision (the CLI marks
        replays); ``SpendResult`` itself stays the same value either way."""
        key = request.idempotency_key
        if key is None:
            return None
        with self.store.read() as ledger:
            found = ledger.idempotency(request.agent_id, key)
        if found is None or found.result is None or found.fingerprint != fingerprint(request):
            return None
        return SpendResult.from_json(found.result)

    def approve_spending(self, approval_id: str, approver: str, note: str = "") -> SpendResult:
        """Approve a PENDING_APPROVAL spend: every check runs again under the lock (but the
        threshold); if one fails the approval closes DENIED. Single use; expires.
        Approving an approved id again returns its result (same escrow)."""
        return self._approvals.approve(approval_id, approver, note)

    def reject_spending(self, approval_id: str, reason: str, approver: str = "") -> SpendResult:
        """Close a pending approval without spending; the result is DENIED
        (``approval_rejected``). Raises :class:`~escrowkit.errors.ApprovalClosed` when it
        was no longer pending (approved, rejected, denied or expired)."""
        return self._approvals.reject(approval_id, reason, approver)

    def agent(self, agent_id: str) -> AgentHandle:
        """A handle for one agent: ``coordinator.agent("research-agent").purchase_service(...)``."""
        agents = self._context.read_agents()
        if agent_id not in agents:
            raise NotFound(f"unknown agent {agent_id!r}; known: {', '.join(agents) or 'none'}")
        return AgentHandle(self, agent_id)

    def check_funds(self, amount: int) -> str | None:
        """None when the paying account holds ``amount`` now (treasury mode: the
        treasury's token balance; pool mode: the pool's spendable balance), else a
        sentence saying what is short and what to do. Reads the chain.

        For callers that ask before they spend (the CLI does): :meth:`request_spending`
        does not call it, and a shortfall there is FAILED ``funding_failed`` with the
        same advice in its reason. The allowance is no part of it: the coordinator
        approves what it needs."""
        check_amount(amount, allow_zero=True, maximum=MAX_UINT256)
        return self.executor.shortfall(amount)

    # ---- after the spend -----------------------------------------------------------------

    def settle(self, escrow_id: bytes | str) -> Reservation:
        """Release a funded escrow to its provider (as the requester). Stays counted."""
        return self._resolution.settle(escrow_id)

    def cancel(self, escrow_id: bytes | str) -> Reservation:
        """Cancel as the requester (Escrow's rules: a funded escrow only between its
        deadline and the end of its dispute window). A refund is credited back."""
        return self._resolution.cancel(escrow_id)

    def sync(self) -> SyncReport:
        """Read the chain: settled escrows become SETTLED; ones the provider cancelled
        become REFUNDED and are credited back (in pool mode the pool is reconciled too)."""
        return self._resolution.sync()

    def recover(self, older_than: float = 300) -> RecoveryReport:
        """Resolve every PENDING reservation whose lease began ``older_than`` seconds ago
        or earlier (0: all, except those this process is funding right now), from the
        chain: FUNDED/SETTLED -> commit; INITIATED -> cancel, void; CANCELLED -> void;
        missing -> void once the sending key has nothing in flight, else leave it."""
        return self._resolution.recover(older_than)

    # ---- reading -------------------------------------------------------------------------

    def report(self) -> BudgetReport:
        """The treasury now: budget, net spend, reservations, per agent and category,
        scope balances, pending approvals, alerts."""
        return self._reporting.report()

    def reservation(self, reservation_id: str) -> Reservation:
        """One spend's ledger row."""
        return self._reporting.reservation(reservation_id)

    def reservations(self, *statuses: ReservationStatus) -> list[Reservation]:
        """Ledger rows, oldest first (all, or those in ``statuses``)."""
        return self._reporting.reservations(*statuses)

    def audit_log(
        self, *, reservation_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """The append-only audit log, oldest first."""
        return self._reporting.audit_log(reservation_id=reservation_id, limit=limit)

    @property
    def agents(self) -> dict[str, AgentConfig]:
        """The registered agents by id."""
        return dict(self._context.read_agents())

    # ---- a page at a time (for the service) ---------------------------------------------

    def spends(
        self,
        *statuses: ReservationStatus,
        agent_id: str | None = None,
        after: str | None = None,
        limit: int = 20,
    ) -> Page[Reservation]:
        """Spends newest first (all, or those in ``statuses``; one agent's); ``after`` is
        the ``next`` of the page before."""
        return self._views.spends(statuses=statuses, agent_id=agent_id, after=after, limit=limit)

    def approvals(
        self,
        status: ApprovalStatus | None = None,
        *,
        agent_id: str | None = None,
        after: str | None = None,
        limit: int = 20,
    ) -> Page[Approval]:
        """Approvals newest first (a pending one past its expiry shows as EXPIRED)."""
        return self._views.approvals(status=status, agent_id=agent_id, after=after, limit=limit)

    def approval(self, approval_id: str) -> Approval:
        """One approval, as it stands now."""
        return self._views.approval(approval_id)

    def audit_page(
        self, *, after: int = 0, agent_id: str | None = None, limit: int = 20
    ) -> Page[AuditEntry]:
        """Audit entries with ids above ``after``, oldest first (one agent's, if given)."""
        return self._views.audit(after=after, agent_id=agent_id, limit=limit)

    def spend_for_escrow(self, escrow_id: bytes | str) -> Reservation:
        """The spend whose escrow this is (NotFound when it is not this ledger's)."""
        return self._resolution.reservation_for(escrow_id)

    def agent_budget(self, agent_id: str) -> AgentBudget:
        """One agent's limits and what it has used of them today and this hour."""
        return self._views.agent_budget(agent_id)


def _chain_executor(
    stack: Stack | None, treasury: str | None, mode: str, escrow_ttl: int, dispute_window: int
) -> SpendExecutor:
    if stack is None:
        raise InvalidRequest("BudgetCoordinator needs a stack (or an executor)")
    if treasury is None:
        raise InvalidRequest("treasury is required: the account that pays (or operates)")
    address = to_address(treasury, name="treasury")
    kind = TreasuryExecutor if mode == "treasury" else PoolExecutor
    return kind(stack, address, escrow_ttl=escrow_ttl, dispute_window=dispute_window)


def _share_nonces(executor: SpendExecutor, store: Store, wanted: bool | None) -> bool:
    """Wire the ledger's nonce rows into the executor's chain where asked (or, by default,
    on PostgreSQL); whether it was done."""
    share = getattr(executor, "share_nonces", None)
    if share is None or wanted is False:
        return False
    if wanted is None and store.dialect != "postgresql":
        return False
    share(store)
    return True


class AgentHandle:
    """One agent's view of the coordinator."""

    def __init__(self, coordinator: BudgetCoordinator, agent_id: str) -> None:
        self.coordinator = coordinator
        self.agent_id = agent_id

    def __repr__(self) -> str:
        return f"AgentHandle({self.agent_id!r})"

    def purchase_service(
        self,
        provider: str,
        amount: int,
        purpose: str,
        *,
        category: str | None = None,
        idempotency_key: str | None = None,
        workflow: str | None = None,
    ) -> SpendResult:
        """Ask to pay ``amount`` (int base units) to ``provider`` for ``purpose``."""
        request = SpendRequest(
            agent_id=self.agent_id,
            amount=amount,
            provider=provider,
            purpose=purpose,
            category=category,
            idempotency_key=idempotency_key,
            workflow=workflow,
        )
        return self.coordinator.request_spending(request)

    @property
    def config(self) -> AgentConfig:
        return self.coordinator.agents[self.agent_id]


def _refuse_empty_purpose(request: SpendRequest) -> None:
    # Here, not in SpendRequest: approvals stored with an empty purpose must load.
    if isinstance(request, SpendRequest) and not request.purpose.strip():
        raise InvalidRequest("purpose is empty: say what the spend is for (the audit log keeps it)")
