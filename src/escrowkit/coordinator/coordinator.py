"""BudgetCoordinator: many agents, one treasury, no overspend, no half-done spend.

A spend is two-phase, like a pending card transfer:

1. Under the lock (thread lock + the database's write lock) the checks of
   :mod:`~escrowkit.budget.policy` run and a PENDING reservation is written with its
   escrow salt (so its escrow id is known before anything is sent) and a lease time.
2. Without the lock the executor funds the escrow on-chain.
3. Under the lock again the reservation becomes COMMITTED, or VOIDED when the chain says
   nothing was escrowed. When the outcome is unclear the row stays PENDING and
   :meth:`BudgetCoordinator.recover` settles it later from the chain.

A failed spend therefore never counts, and a funded one always does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import secrets
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from escrowkit.budget import (
    AgentConfig,
    Decision,
    PolicyInputs,
    SpendRequest,
    SpendStatus,
    Usage,
    evaluate,
)
from escrowkit.coordinator.executors import (
    PlannedSpend,
    PoolExecutor,
    SpendExecutor,
    TreasuryExecutor,
)
from escrowkit.coordinator.results import (
    AgentReport,
    Alert,
    BudgetReport,
    CategoryReport,
    PendingApproval,
    RecoveryReport,
    SpendResult,
    SyncReport,
)
from escrowkit.core.addresses import to_address
from escrowkit.core.errors import (
    ApprovalClosed,
    ConfigurationError,
    ContractRevert,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    describe_error,
)
from escrowkit.core.escrow_state import EscrowState
from escrowkit.core.inputs import validate_name
from escrowkit.core.units import MAX_UINT256, check_amount
from escrowkit.ledger import (
    COUNTED,
    Approval,
    ApprovalStatus,
    AuditEntry,
    Ledger,
    Reservation,
    ReservationStatus,
    Store,
)

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack

__all__ = ["AgentHandle", "BudgetCoordinator"]

logger = logging.getLogger(__name__)

ALERT_THRESHOLDS = (80, 90, 100)
HOUR = 3_600


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _escrow_bytes(escrow_id: bytes | str) -> bytes:
    if isinstance(escrow_id, str):
        try:
            raw = bytes.fromhex(escrow_id.removeprefix("0x"))
        except ValueError:
            raw = b""
    elif isinstance(escrow_id, (bytes, bytearray)):
        raw = bytes(escrow_id)
    else:
        raw = b""
    if len(raw) != 32:
        raise InvalidRequest(f"escrow id must be 32 bytes (0x + 64 hex digits), got {escrow_id!r}")
    return raw


def _new_id(prefix: str) -> str:
    """``prefix_`` + 32 hex digits: 48 bits of milliseconds, then 80 random bits. Ids in
    time order keep inserts at the right edge of the primary-key index (UUIDv7's idea)."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    return f"{prefix}_{value:032x}"


def _fingerprint(request: SpendRequest) -> str:
    payload = json.dumps(request.fingerprint_fields(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class _Reserved:
    """Phase 1's outcome when the spend may go ahead. ``agent_address`` is the agent's
    address the reservation was made with: a pool escrow's id depends on it, and the
    agent may be registered anew before phase 2."""

    reservation: Reservation
    remaining: tuple[int | None, int]
    agent_address: str


@dataclass
class _Window:
    """The current calendar day in the coordinator's zone, cached until it ends."""

    start: float = 0.0
    end: float = 0.0
    key: str = ""


class BudgetCoordinator:
    """Decides, under a lock, which agent may spend what from one treasury.

    ``stack``: the deployed clients (token, escrow, pool). ``treasury``: the account that
    pays in treasury mode, the operator key in pool mode. ``total_budget``: int base
    units. ``store``: None (in-memory SQLite), a URL (``sqlite:///file.db``,
    ``postgresql://…``) or a :class:`Store`. ``clock``: returns UTC seconds and drives the
    policy windows and approval expiry (escrow deadlines use the chain's time).
    ``timezone``: the zone of the daily window (UTC by default). ``executor``: replaces
    the chain work (see :class:`~escrowkit.coordinator.executor.NoopExecutor`); with one,
    ``stack`` may be None.
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
    ) -> None:
        if mode not in ("treasury", "pool"):
            raise InvalidRequest(f"mode must be 'treasury' or 'pool', got {mode!r}")
        self.mode = mode
        if total_budget is None:
            raise InvalidRequest("total_budget is required (int base units of the token)")
        self.total_budget = check_amount(total_budget, name="total_budget", maximum=MAX_UINT256)
        for name, value, low, high in (
            ("escrow_ttl", escrow_ttl, 1, 2**40),
            ("dispute_window", dispute_window, 0, 2**32 - 1),
            ("approval_ttl", approval_ttl, 1, 2**40),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidRequest(f"{name} must be an int of seconds in [{low}, {high}]")
        self.escrow_ttl, self.dispute_window, self.approval_ttl = (
            escrow_ttl,
            dispute_window,
            approval_ttl,
        )
        self.clock: Callable[[], float] = clock or time.time
        self.timezone = self._zone(timezone)
        self.stack = stack
        if executor is None:
            if stack is None:
                raise InvalidRequest("BudgetCoordinator needs a stack (or an executor)")
            if treasury is None:
                raise InvalidRequest("treasury is required: the account that pays (or operates)")
            executor = _chain_executor(stack, treasury, mode, escrow_ttl, dispute_window)
        self.executor: SpendExecutor = executor
        self.treasury = treasury
        self.units = executor.units
        self.store = store if isinstance(store, Store) else Store(store)
        self._owns_store = not isinstance(store, Store)
        self._callbacks: list[Callable[[Alert], object]] = []
        self._fired: set[tuple[str, str, int, str, int]] = set()
        self._agents: dict[str, AgentConfig] = {}
        self._config_version = -1
        self._in_flight: set[str] = set()
        self._in_flight_lock = threading.Lock()
        self._window = _Window()
        with self.store.write() as ledger:
            self._bind(ledger)
            now, previous = self.clock(), ledger.state().total_budget
            if previous != self.total_budget:  # the budget of every process on this store
                ledger.set_total_budget(self.total_budget, now)
                ledger.audit(
                    "total_budget", now, budget=str(self.total_budget), previous=str(previous)
                )
            self._refresh(ledger)

    def __repr__(self) -> str:
        return (
            f"BudgetCoordinator({self.mode}, budget={self.units.format(self.total_budget)}, "
            f"store={self.store!r})"
        )

    def close(self) -> None:
        """Release the database connections (when the coordinator opened the store)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> BudgetCoordinator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- setup ---------------------------------------------------------------------------

    @staticmethod
    def _zone(timezone: str | dt.tzinfo) -> dt.tzinfo:
        if isinstance(timezone, dt.tzinfo):
            return timezone
        if timezone.upper() == "UTC":
            return dt.UTC
        try:
            return zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidRequest(f"unknown timezone {timezone!r}") from None

    def _zone_name(self) -> str:
        return "UTC" if self.timezone is dt.UTC else str(self.timezone)

    def _bind(self, ledger: Ledger) -> None:
        """A ledger belongs to one escrow/mode and one daily-window zone: refuse a mix."""
        meta = ledger.meta()
        for key, value in (("binding", self.executor.binding), ("timezone", self._zone_name())):
            found = meta.get(key)
            if found is None:
                ledger.set_meta(key, value)
            elif found != value:
                raise ConfigurationError(
                    f"{self.store!r} belongs to {key} {found!r}, not {value!r}; "
                    "use another store for another escrow, mode or timezone"
                )

    def _refresh(self, ledger: Ledger) -> None:
        """Reload the agents when another coordinator (or process) changed them."""
        version = ledger.state().config_version
        if version != self._config_version:
            self._agents = ledger.agents()
            self._config_version = version

    def _day(self, now: float) -> str:
        window = self._window
        if window.start <= now < window.end:
            return window.key
        local = dt.datetime.fromtimestamp(now, self.timezone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        start = midnight.timestamp()
        end = (midnight + dt.timedelta(days=1)).timestamp()
        key = local.date().isoformat()
        self._window = _Window(start, end, key)
        return key

    # ---- configuration ---------------------------------------------------------------

    def register_agent(self, config: AgentConfig) -> AgentConfig:
        """Add an agent, or update its limits. In pool mode its per-transaction and daily
        limits are written to the pool first (with the pool owner's key)."""
        if not isinstance(config, AgentConfig):
            raise InvalidRequest(
                f"register_agent takes an AgentConfig, not {type(config).__name__}"
            )
        with self.store.read() as ledger:
            self._refresh(ledger)
            if self.mode == "pool":
                for other in self._agents.values():
                    if other.address == config.address and other.id != config.id:
                        raise InvalidRequest(
                            f"agent {other.id!r} already uses {config.address}; in pool mode "
                            "on-chain limits are per address"
                        )
        tx_hash = self.executor.register_agent(config)
        now = self.clock()
        with self.store.write() as ledger:
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
            self._refresh(ledger)
        logger.info("registered agent %s (%s)", config.id, config.address)
        return config

    def set_category_budget(self, category: str, amount: int | None) -> None:
        """Cap a category's lifetime net spend (shared by all agents); None removes the cap."""
        validate_name(category, "category")
        if amount is not None:
            check_amount(amount, name="category budget", allow_zero=True, maximum=MAX_UINT256)
        now = self.clock()
        with self.store.write() as ledger:
            ledger.set_category_budget(category, amount)
            ledger.audit("category_budget", now, category=category, budget=_opt(amount))

    def freeze(self, reason: str) -> None:
        """Deny every spend and approval (in every process on this store) until unfreeze."""
        if not isinstance(reason, str):
            raise InvalidRequest("freeze needs a reason (a string)")
        now = self.clock()
        with self.store.write() as ledger:
            ledger.set_freeze(reason, now)
            ledger.audit("frozen", now, reason=reason)
        logger.warning("spending frozen: %s", reason)

    def unfreeze(self) -> None:
        now = self.clock()
        with self.store.write() as ledger:
            ledger.set_freeze(None, now)
            ledger.audit("unfrozen", now)
        logger.warning("spending unfrozen")

    def on_alert(self, callback: Callable[[Alert], object]) -> Callable[[Alert], object]:
        """Call ``callback(alert)`` when an alert fires (usable as a decorator)."""
        if not callable(callback):
            raise InvalidRequest("on_alert needs a callable")
        self._callbacks.append(callback)
        return callback

    def agent(self, agent_id: str) -> AgentHandle:
        """A handle for one agent: ``coordinator.agent("research-agent").purchase_service(...)``."""
        with self.store.read() as ledger:
            self._refresh(ledger)
        if agent_id not in self._agents:
            raise NotFound(
                f"unknown agent {agent_id!r}; known: {', '.join(self._agents) or 'none'}"
            )
        return AgentHandle(self, agent_id)

    # ---- spending ------------------------------------------------------------------------

    def _inputs(
        self, ledger: Ledger, request: SpendRequest, now: float, day: str
    ) -> tuple[PolicyInputs, int]:
        """The figures the policy needs, read under the lock; also today's usage."""
        state = ledger.state()
        agent = self._agents.get(request.agent_id)
        if agent is None or state.freeze_reason is not None:
            inputs = PolicyInputs(
                agent=agent,
                units=self.units,
                total_budget=state.total_budget,
                usage=Usage(total=state.used),
                freeze_reason=state.freeze_reason,
            )
            return inputs, 0
        category_exists, category_budget, category_used = (
            ledger.category(request.category) if request.category is not None else (False, None, 0)
        )
        daily = ledger.day_used(agent.id, day)
        hourly = ledger.hour_used(agent.id, now - HOUR) if agent.hourly_limit is not None else 0
        inputs = PolicyInputs(
            agent=agent,
            units=self.units,
            total_budget=state.total_budget,
            usage=Usage(hourly=hourly, daily=daily, category=category_used, total=state.used),
            freeze_reason=None,
            category_budget=category_budget,
            category_has_budget=category_exists and category_budget is not None,
        )
        return inputs, daily

    def _remaining(
        self, inputs: PolicyInputs, daily: int, extra: int = 0
    ) -> tuple[int | None, int]:
        agent = inputs.agent
        left_daily = None if agent is None else max(agent.daily_limit - daily - extra, 0)
        left_total = max(inputs.total_budget - inputs.usage.total - extra, 0)
        return left_daily, left_total

    def _reserve(
        self,
        ledger: Ledger,
        request: SpendRequest,
        now: float,
        day: str,
        remaining: tuple[int | None, int],
        *,
        approval_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> _Reserved:
        """Write the PENDING reservation (counted from now on) and its audit entry."""
        agent = self._agents[request.agent_id]
        salt = secrets.token_bytes(32)
        reservation = Reservation(
            id=_new_id("res"),
            agent_id=request.agent_id,
            amount=request.amount,
            provider=request.provider,
            purpose=request.purpose,
            category=request.category,
            day=day,
            created_at=now,
            lease_at=now,
            status=ReservationStatus.PENDING,
            salt=salt,
            escrow_id=self.executor.escrow_id(agent.address, salt),
            requester=self.executor.requester,
            approval_id=approval_id,
            idempotency_key=idempotency_key,
        )
        ledger.insert_reservation(reservation)
        # In flight from now on: recover() in this process must leave it to its spender.
        with self._in_flight_lock:
            self._in_flight.add(reservation.id)
        ledger.audit(
            "reserved",
            now,
            agent_id=request.agent_id,
            reservation_id=reservation.id,
            approval_id=approval_id,
            amount=request.amount,
            escrow_id=_hex(reservation.escrow_id),
            provider=request.provider,
            category=request.category,
        )
        return _Reserved(reservation, remaining, agent.address)

    def request_spending(self, request: SpendRequest) -> SpendResult:
        """Decide and, when allowed, fund the escrow on-chain.

        Returns APPROVED (funded), DENIED (``reason`` names the check), PENDING_APPROVAL
        (``approval_id``) or FAILED (funding failed; nothing counted). Malformed input
        raises :class:`InvalidRequest`; a reused idempotency key with another request, or
        while the first is in flight, raises :class:`IdempotencyConflict`.
        """
        if not isinstance(request, SpendRequest):
            raise InvalidRequest(
                f"request_spending takes a SpendRequest, not {type(request).__name__}"
            )
        key = request.idempotency_key
        fingerprint = _fingerprint(request) if key is not None else ""

        def decide(ledger: Ledger) -> SpendResult | _Reserved:
            now = self.clock()
            day = self._day(now)
            self._refresh(ledger)
            if key is not None:
                found = ledger.idempotency(key)
                if found is not None:
                    return self._replay(found.fingerprint, found.result, fingerprint, key)
            inputs, daily = self._inputs(ledger, request, now, day)
            decision = evaluate(request, inputs)
            if decision.status is not SpendStatus.APPROVED:
                result = self._decline(ledger, request, decision, inputs, daily, now)
                if key is not None:
                    ledger.insert_idempotency(key, fingerprint, now, result=result.to_json())
                return result
            remaining = self._remaining(inputs, daily, request.amount)
            reserved = self._reserve(ledger, request, now, day, remaining, idempotency_key=key)
            if key is not None:
                reservation_id = reserved.reservation.id
                ledger.insert_idempotency(key, fingerprint, now, reservation_id=reservation_id)
            return reserved

        outcome = self.store.run(decide, keys=() if key is None else (key,))
        if isinstance(outcome, SpendResult):
            return outcome
        return self._execute(outcome)

    def _replay(
        self, stored: str, result: dict[str, Any] | None, fingerprint: str, key: str
    ) -> SpendResult:
        if stored != fingerprint:
            raise IdempotencyConflict(
                f"idempotency key {key!r} was already used for a different request"
            )
        if result is None:
            raise IdempotencyConflict(
                f"the request with idempotency key {key!r} is still in progress; "
                "retry later (recover() resolves it if its process died)"
            )
        logger.debug("idempotent replay of key %r", key)
        return SpendResult.from_json(result)

    def _decline(
        self,
        ledger: Ledger,
        request: SpendRequest,
        decision: Decision,
        inputs: PolicyInputs,
        daily: int,
        now: float,
    ) -> SpendResult:
        """Record a DENIED or PENDING_APPROVAL decision (nothing is reserved)."""
        left_daily, left_total = self._remaining(inputs, daily)
        approval_id = None
        if decision.status is SpendStatus.PENDING_APPROVAL:
            approval_id = _new_id("apr")
            ledger.insert_approval(
                Approval(
                    id=approval_id,
                    request=request,
                    status=ApprovalStatus.PENDING,
                    requested_at=now,
                    expires_at=now + self.approval_ttl,
                )
            )
        ledger.audit(
            "approval_requested" if approval_id else "denied",
            now,
            agent_id=request.agent_id,
            approval_id=approval_id,
            amount=request.amount,
            check=decision.code.value if decision.code else None,
            reason=decision.reason,
            provider=request.provider,
            category=request.category,
        )
        if logger.isEnabledFor(logging.INFO):  # formatting amounts costs: only when shown
            logger.info(
                "%s %s %s: %s",
                decision.status.value,
                request.agent_id,
                self.units.format(request.amount),
                decision.reason,
            )
        return SpendResult(
            status=decision.status,
            reason=decision.reason,
            approval_id=approval_id,
            remaining_daily=left_daily,
            remaining_total=left_total,
        )

    def _execute(self, reserved: _Reserved) -> SpendResult:
        """Phase 2: fund on-chain, then commit, or resolve the row from the chain."""
        reservation, remaining = reserved.reservation, reserved.remaining
        plan = PlannedSpend(
            reservation_id=reservation.id,
            agent_address=reserved.agent_address,
            provider=reservation.provider,
            amount=reservation.amount,
            salt=reservation.salt,
            escrow_id=reservation.escrow_id,
            metadata=bytes.fromhex(reservation.id[4:]).rjust(32, b"\0"),
        )
        tx_hashes: list[str] = []
        try:
            try:
                self.executor.fund(plan, tx_hashes)
            except Exception as exc:  # a BaseException leaves the row PENDING for recover
                cause = describe_error(exc)
                logger.warning("funding %s failed: %s", reservation.id, cause)
                return self._resolve(reservation, tx_hashes, f"funding failed: {cause}", remaining)
            final = self._finish(
                reservation,
                ReservationStatus.COMMITTED,
                tx_hashes,
                "escrow funded",
                "committed",
                remaining,
            )
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(reservation.id)
        return self._result_for(final, remaining)

    def _resolve(
        self,
        reservation: Reservation,
        tx_hashes: list[str],
        why: str,
        remaining: tuple[int | None, int] | None = None,
    ) -> SpendResult:
        """Settle a PENDING row from what the chain says: the one path for errors and recover.

        FUNDED/SETTLED -> commit; INITIATED -> cancel, then void; CANCELLED -> void;
        missing -> void once the sending key has nothing in flight. Anything unreadable
        leaves the row PENDING (and counted) for the next recover. ``why`` starts the
        reason recorded ("funding failed: ...", "recovered").
        """
        escrow_id = reservation.escrow_id

        def done(to: ReservationStatus, reason: str, event: str) -> SpendResult:
            final = self._finish(reservation, to, tx_hashes, reason, event, remaining)
            return self._result_for(final, remaining)

        try:
            state = self.executor.state(escrow_id)
            idle = False
            if state is EscrowState.NONE:
                idle = self.executor.idle(reservation.requester)
                if idle:
                    # Read again: a transaction mined between the first read and the
                    # nonce check shows in neither, and voiding it would leave a funded
                    # escrow outside the ledger.
                    state = self.executor.state(escrow_id)
            if state is EscrowState.INITIATED:
                state = self._cancel_initiated(escrow_id, tx_hashes)
                if state is EscrowState.CANCELLED:
                    why += "; the escrow was cancelled"
            if state is EscrowState.FUNDED:
                return done(
                    ReservationStatus.COMMITTED, f"{why}; the escrow is funded", "committed"
                )
            if state is EscrowState.SETTLED:
                return done(ReservationStatus.SETTLED, f"{why}; the escrow is settled", "committed")
            if state is EscrowState.CANCELLED:
                if self.mode == "pool":
                    self._try_reconcile(escrow_id)
                return done(ReservationStatus.VOIDED, f"{why}; nothing was spent", "voided")
            if idle:
                reason = f"{why}; no escrow exists and nothing is in flight"
                return done(ReservationStatus.VOIDED, reason, "voided")
            note = "no escrow yet but a transaction is still in flight"
        except Exception as exc:
            note = f"the escrow could not be resolved ({describe_error(exc)})"
            logger.error("reservation %s left PENDING: %s", reservation.id, note)
        now = self.clock()
        with self.store.write() as ledger:
            ledger.audit(
                "left_pending",
                now,
                agent_id=reservation.agent_id,
                reservation_id=reservation.id,
                amount=reservation.amount,
                reason=f"{why}; {note}",
                tx_hashes=list(tx_hashes),
            )
        return SpendResult(
            status=SpendStatus.FAILED,
            reason=f"{why}; {note}; the reservation stays pending until recover()",
            escrow_id=_hex(escrow_id),
            reservation_id=reservation.id,
            approval_id=reservation.approval_id,
            tx_hashes=tuple(tx_hashes),
        )

    def _cancel_initiated(self, escrow_id: bytes, tx_hashes: list[str]) -> EscrowState:
        """Cancel an INITIATED escrow, with one retry: the first attempt can fail on a
        stale nonce (another process used the key; the chain resyncs after a failed
        send) or land without its receipt, so the second looks at the chain first."""
        try:
            tx_hashes.append(self.executor.cancel(escrow_id))
            return EscrowState.CANCELLED
        except Exception as exc:
            logger.warning(
                "cancelling 0x%s failed, retrying: %s", escrow_id.hex(), describe_error(exc)
            )
        state = self.executor.state(escrow_id)
        if state is EscrowState.INITIATED:
            tx_hashes.append(self.executor.cancel(escrow_id))
            return EscrowState.CANCELLED
        return state

    def _try_reconcile(self, escrow_id: bytes) -> None:
        try:
            self.executor.reconcile(escrow_id)
        except ContractRevert as exc:  # already reconciled, or cancelled through the pool
            logger.debug("reconcile 0x%s: %s", escrow_id.hex(), exc)

    def _finish(
        self,
        reservation: Reservation,
        to: ReservationStatus,
        tx_hashes: list[str],
        reason: str,
        event: str,
        remaining: tuple[int | None, int] | None = None,
    ) -> Reservation:
        """Phase 3: move the PENDING row to its final status (if nobody else has).

        The idempotency key gets the very result the caller returns (``remaining`` is
        what phase 1 computed), so a replay is equal to the first answer."""

        def finish(ledger: Ledger) -> tuple[Reservation, list[Alert], bool]:
            now = self.clock()
            self._refresh(ledger)
            final = ledger.transition(reservation, to, now, tx_hashes=tx_hashes, reason=reason)
            written = event
            if final is None:  # another process (recover) resolved it first
                current = ledger.reservation(reservation.id)
                assert current is not None
                if current.status is not ReservationStatus.VOIDED or to not in COUNTED:
                    return current, [], False
                # It saw no escrow and voided the row; then ours was funded after all.
                # The money is escrowed, so the spend counts again, past a limit if it
                # must: the ledger follows the chain.
                final = ledger.transition(current, to, now, tx_hashes=tx_hashes, reason=reason)
                assert final is not None  # under the lock nobody else moves it
                written = "recounted"
                logger.error(
                    "spend %s was voided elsewhere but its escrow %s is funded: counted again",
                    reservation.id,
                    _hex(reservation.escrow_id),
                )
            ledger.audit(
                written,
                now,
                agent_id=reservation.agent_id,
                reservation_id=reservation.id,
                approval_id=reservation.approval_id,
                amount=reservation.amount,
                reason=reason,
                escrow_id=_hex(reservation.escrow_id),
                tx_hashes=list(tx_hashes),
            )
            if reservation.idempotency_key is not None:
                result = self._result_for(final, remaining)
                ledger.finish_idempotency(reservation.idempotency_key, result.to_json())
            fired = self._check_alerts(ledger, final, now) if final.counted else []
            return final, fired, True

        final, fired, moved = self.store.run(finish, reservation_ids=(reservation.id,))
        self._fire(fired)
        if not moved:
            return final
        if not logger.isEnabledFor(logging.INFO):
            pass
        elif final.counted:
            logger.info(
                "spend %s committed: %s %s escrow %s",
                reservation.id,
                reservation.agent_id,
                self.units.format(reservation.amount),
                _hex(reservation.escrow_id),
            )
        else:
            logger.info("spend %s voided: %s", reservation.id, reason)
        return final

    def _result_for(
        self, row: Reservation, remaining: tuple[int | None, int] | None
    ) -> SpendResult:
        left_daily, left_total = remaining if remaining is not None else (None, None)
        if row.counted:
            status, reason = SpendStatus.APPROVED, row.reason or "escrow funded"
            if row.status is ReservationStatus.PENDING:
                status = SpendStatus.FAILED
        else:
            status, reason = SpendStatus.FAILED, row.reason or "voided"
            # The reservation was released: what it held is available again.
            if left_daily is not None:
                left_daily += row.amount
            if left_total is not None:
                left_total += row.amount
        return SpendResult(
            status=status,
            reason=reason,
            escrow_id=_hex(row.escrow_id) if row.counted else None,
            approval_id=row.approval_id,
            reservation_id=row.id,
            remaining_daily=left_daily,
            remaining_total=left_total,
            tx_hashes=row.tx_hashes,
        )

    # ---- approvals -----------------------------------------------------------------------

    def approve_spending(self, approval_id: str, approver: str) -> SpendResult:
        """Approve a PENDING_APPROVAL spend: every check runs again under the lock (but the
        threshold); if one fails the approval closes DENIED. Single use; expires."""
        validate_name(approver, "approver")
        now = self.clock()
        day = self._day(now)
        with self.store.write() as ledger:
            self._refresh(ledger)
            approval, closed = self._open_approval(ledger, approval_id, now)
            if closed is not None:
                return closed
            request = approval.request
            inputs, daily = self._inputs(ledger, request, now, day)
            decision = evaluate(request, inputs, approval_threshold=False)
            if not decision.allowed:
                self._close_approval(
                    ledger,
                    approval,
                    ApprovalStatus.DENIED,
                    "approval_denied",
                    now,
                    by=approver,
                    reason=decision.reason,
                    check=decision.code.value if decision.code else None,
                )
                left_daily, left_total = self._remaining(inputs, daily)
                return SpendResult(
                    SpendStatus.DENIED,
                    decision.reason,
                    approval_id=approval_id,
                    remaining_daily=left_daily,
                    remaining_total=left_total,
                )
            remaining = self._remaining(inputs, daily, request.amount)
            reserved = self._reserve(ledger, request, now, day, remaining, approval_id=approval_id)
            self._close_approval(
                ledger,
                approval,
                ApprovalStatus.APPROVED,
                "approved",
                now,
                by=approver,
                reservation_id=reserved.reservation.id,
            )
        return self._execute(reserved)

    def reject_spending(self, approval_id: str, reason: str) -> SpendResult:
        """Close a pending approval without spending; the result is DENIED.

        Raises :class:`~escrowkit.errors.ApprovalClosed` when there was nothing to reject:
        the approval was already approved (its spend went ahead), rejected or denied, or
        it has expired. (A DENIED result there would read as "not spent".)
        """
        if not isinstance(reason, str):
            raise InvalidRequest("reject_spending needs a reason (a string)")
        now = self.clock()
        refusal: ApprovalClosed | None = None
        with self.store.write() as ledger:
            approval, closed = self._open_approval(ledger, approval_id, now)
            if closed is not None:
                refusal = ApprovalClosed(
                    approval_id, approval.status.value, f"{closed.reason}; nothing was rejected"
                )
            else:
                self._close_approval(
                    ledger, approval, ApprovalStatus.REJECTED, "rejected", now, reason=reason
                )
        if refusal is not None:
            # Raised outside the transaction, so that an expiry it recorded is kept.
            raise refusal
        return SpendResult(SpendStatus.DENIED, f"Rejected: {reason}", approval_id=approval_id)

    @staticmethod
    def _close_approval(
        ledger: Ledger,
        approval: Approval,
        status: ApprovalStatus,
        event: str,
        now: float,
        *,
        by: str | None = None,
        reason: str | None = None,
        reservation_id: str | None = None,
        **detail: Any,
    ) -> None:
        """Decide a pending approval and write the decision to the audit log."""
        ledger.close_approval(
            approval.id, status, now, by=by, reason=reason, reservation_id=reservation_id
        )
        if by is not None:
            detail["approver"] = by
        if reason is not None:
            detail["reason"] = reason
        ledger.audit(
            event,
            now,
            agent_id=approval.request.agent_id,
            approval_id=approval.id,
            reservation_id=reservation_id,
            amount=approval.request.amount,
            **detail,
        )

    def _open_approval(
        self, ledger: Ledger, approval_id: str, now: float
    ) -> tuple[Approval, SpendResult | None]:
        """The approval, and None if it can still be decided, else the DENIED result saying
        why (the approval's status then says how it closed)."""
        if not isinstance(approval_id, str):
            raise InvalidRequest(f"approval id must be a string, got {approval_id!r}")
        approval = ledger.approval(approval_id)
        if approval is None:
            raise NotFound(f"no approval {approval_id!r}")
        if approval.status is not ApprovalStatus.PENDING:
            reason = f"Approval {approval_id} was already {approval.status.value.lower()}"
            return approval, SpendResult(SpendStatus.DENIED, reason, approval_id=approval_id)
        if now >= approval.expires_at:
            self._close_approval(
                ledger, approval, ApprovalStatus.EXPIRED, "approval_expired", now, reason="expired"
            )
            reason = f"Approval {approval_id} expired"
            expired = replace(approval, status=ApprovalStatus.EXPIRED)
            return expired, SpendResult(SpendStatus.DENIED, reason, approval_id=approval_id)
        return approval, None

    # ---- after the spend -----------------------------------------------------------------

    def _reservation_for(self, escrow_id: bytes | str) -> Reservation:
        raw = _escrow_bytes(escrow_id)
        with self.store.read() as ledger:
            row = ledger.reservation_by_escrow(raw)
        if row is None:
            raise NotFound(f"no spend of this coordinator has escrow {_hex(raw)}")
        return row

    def settle(self, escrow_id: bytes | str) -> Reservation:
        """Release a funded escrow to its provider (as the requester). Stays counted."""
        row = self._reservation_for(escrow_id)
        if row.status is ReservationStatus.SETTLED:
            return row
        if row.status is not ReservationStatus.COMMITTED:
            raise InvalidRequest(f"spend {row.id} is {row.status.value}, not COMMITTED")
        try:
            tx_hash = self.executor.settle(row.escrow_id)
        except ContractRevert:
            self._sync_row(row)
            raise
        return self._after_chain(row, ReservationStatus.SETTLED, tx_hash, "settled")

    def cancel(self, escrow_id: bytes | str) -> Reservation:
        """Cancel as the requester (Escrow's rules: a funded escrow only between its
        deadline and the end of its dispute window). A refund is credited back."""
        row = self._reservation_for(escrow_id)
        if row.status in (ReservationStatus.REFUNDED, ReservationStatus.VOIDED):
            return row
        if row.status is ReservationStatus.PENDING:
            with self._in_flight_lock:
                if row.id in self._in_flight:
                    raise InvalidRequest(f"spend {row.id} is still being funded; try again")
            with contextlib.suppress(ContractRevert):  # resolved below from the chain
                self.executor.cancel(row.escrow_id)
            self._resolve(row, [], "cancelled by the coordinator")
            return self._reservation_for(escrow_id)
        try:
            tx_hash = self.executor.cancel(row.escrow_id)
        except ContractRevert:
            self._sync_row(row)
            raise
        # (In pool mode pool.cancel has credited the pool's counters back itself.)
        return self._after_chain(row, ReservationStatus.REFUNDED, tx_hash, "refunded")

    def _after_chain(
        self, row: Reservation, to: ReservationStatus, tx_hash: str, event: str
    ) -> Reservation:
        now = self.clock()
        hashes = [*row.tx_hashes, tx_hash] if tx_hash else list(row.tx_hashes)
        with self.store.write() as ledger:
            final = ledger.transition(row, to, now, tx_hashes=hashes)
            if final is None:
                current = ledger.reservation(row.id)
                assert current is not None
                return current
            ledger.audit(
                event,
                now,
                agent_id=row.agent_id,
                reservation_id=row.id,
                amount=row.amount,
                escrow_id=_hex(row.escrow_id),
                tx_hash=tx_hash,
            )
        logger.info("spend %s %s", row.id, event)
        return final

    def _sync_row(self, row: Reservation) -> str | None:
        """Bring one COMMITTED row in line with its escrow; the new status's event or None."""
        state = self.executor.state(row.escrow_id)
        if state is EscrowState.SETTLED:
            self._after_chain(row, ReservationStatus.SETTLED, "", "settled")
            return "settled"
        if state is EscrowState.CANCELLED:
            if self.mode == "pool":
                self._try_reconcile(row.escrow_id)
            self._after_chain(row, ReservationStatus.REFUNDED, "", "refunded")
            return "refunded"
        return None

    def sync(self) -> SyncReport:
        """Read every COMMITTED spend's escrow: settled ones become SETTLED; ones the
        provider cancelled become REFUNDED and are credited back (in pool mode the pool is
        reconciled too). SETTLED rows are final on-chain and are not read again."""
        with self.store.read() as ledger:
            rows = ledger.reservations([ReservationStatus.COMMITTED])
        settled: list[str] = []
        refunded: list[str] = []
        unreadable: list[str] = []
        for row in rows:
            try:
                change = self._sync_row(row)
            except Exception as exc:
                logger.warning("sync could not read %s: %s", row.id, describe_error(exc))
                unreadable.append(row.id)
                continue
            if change == "settled":
                settled.append(row.id)
            elif change == "refunded":
                refunded.append(row.id)
        return SyncReport(tuple(settled), tuple(refunded), tuple(unreadable))

    def recover(self, older_than: float = 300) -> RecoveryReport:
        """Resolve every PENDING reservation whose lease began ``older_than`` seconds ago
        or earlier (0: all, except those this process is funding right now), from the
        chain: FUNDED/SETTLED -> commit; INITIATED -> cancel, void; CANCELLED -> void;
        missing -> void once the sending key has nothing in flight, else leave it."""
        if (
            isinstance(older_than, bool)
            or not isinstance(older_than, (int, float))
            or older_than < 0
        ):
            raise InvalidRequest("older_than must be a number of seconds >= 0")
        now = self.clock()
        with self.store.read() as ledger:
            self._refresh(ledger)
            rows = ledger.reservations([ReservationStatus.PENDING], lease_before=now - older_than)
        with self._in_flight_lock:
            rows = [row for row in rows if row.id not in self._in_flight]
        committed: list[str] = []
        voided: list[str] = []
        left: list[str] = []
        for row in rows:
            result = self._resolve(row, list(row.tx_hashes), "recovered")
            with self.store.read() as ledger:
                current = ledger.reservation(row.id)
            status = current.status if current is not None else row.status
            if status is ReservationStatus.PENDING:
                left.append(row.id)
            elif status in COUNTED:
                committed.append(row.id)
            else:
                voided.append(row.id)
            logger.info("recover %s: %s", row.id, result.reason)
        return RecoveryReport(tuple(committed), tuple(voided), tuple(left))

    # ---- alerts --------------------------------------------------------------------------

    def _check_alerts(self, ledger: Ledger, row: Reservation, now: float) -> list[Alert]:
        """Alerts crossed by committing ``row``: recorded in the store (once across
        processes), returned to be fired after the transaction commits."""
        fired: list[Alert] = []
        state = ledger.state()
        agent = self._agents.get(row.agent_id)
        day_used = ledger.day_used(row.agent_id, row.day)
        # Usage counts reservations too, so it bounds committed spend from above: below
        # the lowest threshold nothing can fire and the pending rows need not be read.
        low = ALERT_THRESHOLDS[0]
        total_near = state.used * 100 >= low * state.total_budget
        daily_near = agent is not None and day_used * 100 >= low * agent.daily_limit
        if not (total_near or daily_near):
            return fired
        pending = ledger.pending_amounts()
        if total_near:
            committed = state.used - sum(amount for *_, amount in pending)
            fired += self._record_alerts(
                ledger, "total_budget", "total", "", committed, state.total_budget, now
            )
        if daily_near and agent is not None:
            in_flight = sum(
                a for agent_id, day, _, a in pending if agent_id == row.agent_id and day == row.day
            )
            fired += self._record_alerts(
                ledger,
                "daily_limit",
                row.agent_id,
                row.day,
                day_used - in_flight,
                agent.daily_limit,
                now,
            )
        return fired

    def _record_alerts(
        self,
        ledger: Ledger,
        kind: str,
        scope: str,
        period: str,
        spent: int,
        limit: int,
        now: float,
    ) -> list[Alert]:
        fired = []
        for threshold in ALERT_THRESHOLDS:
            if spent * 100 < threshold * limit:
                continue
            if (kind, scope, threshold, period, limit) in self._fired:
                continue
            if ledger.record_alert(kind, scope, threshold, period, spent, limit, now):
                alert = Alert(kind, scope, threshold, spent, limit, period, now)
                ledger.audit(
                    "alert",
                    now,
                    agent_id=scope if kind == "daily_limit" else None,
                    kind=kind,
                    threshold=threshold,
                    spent=str(spent),
                    limit=str(limit),
                    period=period,
                )
                fired.append(alert)
        return fired

    def _fire(self, alerts: Iterable[Alert]) -> None:
        """After the commit: remember, log and call back (a failing callback is logged)."""
        for alert in alerts:
            self._fired.add((alert.kind, alert.scope, alert.threshold, alert.period, alert.limit))
            logger.warning(
                "alert: %s %s reached %d%% (%s of %s)",
                alert.kind,
                alert.scope,
                alert.threshold,
                self.units.format(alert.spent),
                self.units.format(alert.limit),
            )
            for callback in list(self._callbacks):
                try:
                    callback(alert)
                except Exception:
                    logger.exception("alert callback %r failed", callback)

    # ---- reading -------------------------------------------------------------------------

    def report(self) -> BudgetReport:
        """The treasury now: budget, net spend, reservations, per agent and category,
        pending approvals, alerts."""
        now = self.clock()
        today = self._day(now)
        with self.store.read() as ledger:
            self._refresh(ledger)
            state = ledger.state()
            pending = ledger.pending_amounts()
            days = ledger.days_used()
            categories = ledger.categories()
            approvals = ledger.pending_approvals(now)
            alert_rows = ledger.alerts()
        reserved = sum(amount for *_, amount in pending)
        by_agent: dict[str, AgentReport] = {}
        for agent in self._agents.values():
            used = sum(v for (agent_id, _), v in days.items() if agent_id == agent.id)
            used_today = days.get((agent.id, today), 0)
            held = sum(a for agent_id, _, _, a in pending if agent_id == agent.id)
            held_today = sum(
                a for agent_id, day, _, a in pending if agent_id == agent.id and day == today
            )
            by_agent[agent.id] = AgentReport(
                agent_id=agent.id,
                name=agent.name,
                spent=used - held,
                reserved=held,
                spent_today=used_today - held_today,
                daily_limit=agent.daily_limit,
                remaining_today=max(agent.daily_limit - used_today, 0),
            )
        by_category: dict[str, CategoryReport] = {}
        for name, (budget, used) in categories.items():
            held = sum(a for _, _, category, a in pending if category == name)
            by_category[name] = CategoryReport(
                category=name,
                spent=used - held,
                reserved=held,
                budget=budget,
                remaining=None if budget is None else max(budget - used, 0),
            )
        return BudgetReport(
            total_budget=state.total_budget,
            total_spent=state.used - reserved,
            reserved=reserved,
            remaining=max(state.total_budget - state.used, 0),
            by_agent=by_agent,
            by_category=by_category,
            pending_approvals={
                a.id: PendingApproval(
                    approval_id=a.id,
                    agent_id=a.request.agent_id,
                    amount=a.request.amount,
                    provider=a.request.provider,
                    purpose=a.request.purpose,
                    category=a.request.category,
                    requested_at=a.requested_at,
                    expires_at=a.expires_at,
                )
                for a in approvals
            },
            alerts=[
                Alert(
                    r["kind"],
                    r["scope"],
                    r["threshold"],
                    r["spent"],
                    r["limit"],
                    r["period"],
                    r["at"],
                )
                for r in alert_rows
            ],
            frozen=state.freeze_reason,
        )

    def reservation(self, reservation_id: str) -> Reservation:
        """One spend's ledger row."""
        with self.store.read() as ledger:
            row = ledger.reservation(reservation_id)
        if row is None:
            raise NotFound(f"no reservation {reservation_id!r}")
        return row

    def reservations(self, *statuses: ReservationStatus) -> list[Reservation]:
        """Ledger rows, oldest first (all, or those in ``statuses``)."""
        with self.store.read() as ledger:
            return ledger.reservations(statuses or None)

    def audit_log(
        self, *, reservation_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """The append-only audit log, oldest first."""
        with self.store.read() as ledger:
            return ledger.audit_log(reservation_id=reservation_id, limit=limit)

    @property
    def agents(self) -> dict[str, AgentConfig]:
        """The registered agents by id."""
        with self.store.read() as ledger:
            self._refresh(ledger)
        return dict(self._agents)


def _chain_executor(
    stack: Stack, treasury: str, mode: str, escrow_ttl: int, dispute_window: int
) -> SpendExecutor:

    address = to_address(treasury, name="treasury")
    kind = TreasuryExecutor if mode == "treasury" else PoolExecutor
    return kind(stack, address, escrow_ttl=escrow_ttl, dispute_window=dispute_window)


def _opt(value: int | None) -> str | None:
    return None if value is None else str(value)


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
    ) -> SpendResult:
        """Ask to pay ``amount`` (int base units) to ``provider`` for ``purpose``."""
        request = SpendRequest(
            agent_id=self.agent_id,
            amount=amount,
            provider=provider,
            purpose=purpose,
            category=category,
            idempotency_key=idempotency_key,
        )
        return self.coordinator.request_spending(request)

    @property
    def config(self) -> AgentConfig:
        return self.coordinator.agents[self.agent_id]
