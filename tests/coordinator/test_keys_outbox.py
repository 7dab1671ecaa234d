"""API keys (hashes only, revocation at once) and the event outbox (events written with
the decisions that cause them, one id sequence, read in order), on the no-op executor."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from escrowkit.coordinator import (
    AgentConfig,
    ApprovalStatus,
    BudgetCoordinator,
    NoopExecutor,
    SpendRequest,
    SpendStatus,
)
from escrowkit.errors import InvalidRequest, NotFound
from escrowkit.ledger.schema import api_keys_table

U = 10**6
PROVIDER = "0x00000000000000000000000000000000000000C1"
AGENT = "0x00000000000000000000000000000000000000A1"


@pytest.fixture
def coordinator(tmp_path: Path) -> BudgetCoordinator:
    made = BudgetCoordinator(
        None,
        total_budget=1_000 * U,
        store=f"sqlite:///{tmp_path / 'ledger.db'}",
        executor=NoopExecutor(),
    )
    made.register_agent(AgentConfig("research", "Research", AGENT, 100 * U, 300 * U, 50 * U))
    return made


def test_a_key_is_shown_once_and_stored_as_its_hash(coordinator: BudgetCoordinator) -> None:
    key, secret = coordinator.api_keys.create("agent", agent_id="research", name="bot")
    assert re.fullmatch(r"ek_agent_[A-Za-z0-9_-]{43}", secret)
    with coordinator.store.read() as ledger:
        rows = [dict(r._mapping) for r in ledger.conn.execute(api_keys_table.select())]
    assert rows[0]["hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in rows[0].values())
    assert coordinator.api_keys.authenticate(secret) == key
    assert key.label == "bot"
    _, other = coordinator.api_keys.create("approver")
    assert other.startswith("ek_approver_")
    assert [k.role for k in coordinator.api_keys.list()] == ["agent", "approver"]


def test_keys_are_checked_before_they_are_made(coordinator: BudgetCoordinator) -> None:
    with pytest.raises(NotFound, match="unknown agent"):
        coordinator.api_keys.create("agent", agent_id="nobody")
    with pytest.raises(InvalidRequest, match="needs agent_id"):
        coordinator.api_keys.create("agent")
    with pytest.raises(InvalidRequest, match="take no agent"):
        coordinator.api_keys.create("admin", agent_id="research")
    with pytest.raises(InvalidRequest, match="role"):
        coordinator.api_keys.create("root")
    assert coordinator.api_keys.list() == []


def test_a_revoked_key_fails_at_once_in_another_process(
    coordinator: BudgetCoordinator, tmp_path: Path
) -> None:
    key, secret = coordinator.api_keys.create("admin")
    other = BudgetCoordinator(None, store=coordinator.store.url, executor=NoopExecutor())
    assert other.api_keys.authenticate(secret) == key
    revoked = coordinator.api_keys.revoke(key.id)
    assert revoked.revoked
    assert other.api_keys.authenticate(secret) is None
    assert coordinator.api_keys.revoke(key.id) == revoked  # again: nothing changes
    events = [e.event for e in coordinator.audit_log()]
    assert events.count("api_key_revoked") == 1 and "api_key_created" in events
    other.close()


@pytest.mark.parametrize("secret", [None, "", "ek_", "x" * 500, "ek_admin_ü", 12])
def test_malformed_keys_are_no_one(coordinator: BudgetCoordinator, secret: object) -> None:
    assert coordinator.api_keys.authenticate(secret) is None


def test_many_keys_are_checked_in_one_read(coordinator: BudgetCoordinator) -> None:
    agent, agent_secret = coordinator.api_keys.create("agent", agent_id="research")
    admin, admin_secret = coordinator.api_keys.create("admin")
    revoked, revoked_secret = coordinator.api_keys.create("approver")
    coordinator.api_keys.revoke(revoked.id)
    unknown = "ek_agent_" + "A" * 43
    secrets = [admin_secret, None, unknown, agent_secret, revoked_secret, "x" * 500, admin_secret]
    assert coordinator.api_keys.authenticate_many(secrets) == [
        admin,
        None,
        None,
        agent,
        None,
        None,
        admin,
    ]
    assert coordinator.api_keys.authenticate_many([]) == []
    assert coordinator.api_keys.authenticate_many([12, ""]) == [None, None]


def test_every_decision_writes_one_event_in_its_transaction(
    coordinator: BudgetCoordinator,
) -> None:
    def spend(amount: int, key: str | None = None) -> object:
        request = SpendRequest("research", amount, PROVIDER, "data", idempotency_key=key)
        return coordinator.request_spending(request)

    approved = spend(10 * U, "a")
    spend(10 * U, "a")  # a replay decides nothing: no event
    denied = spend(500 * U)
    pending = spend(80 * U)
    events = coordinator.outbox.after(0)
    assert [(e.type, e.data.get("status")) for e in events] == [
        ("decision", "APPROVED"),
        ("decision", "DENIED"),
        ("approval", "PENDING"),
        ("decision", "PENDING_APPROVAL"),
    ]
    assert [e.id for e in events] == sorted(e.id for e in events)
    first = events[0].data
    assert first["reservation_id"] == approved.reservation_id  # type: ignore[attr-defined]
    assert (first["amount"], first["agent_id"], first["provider"]) == (
        str(10 * U),
        "research",
        PROVIDER,
    )
    assert events[1].data["code"] == denied.code  # type: ignore[attr-defined]
    approval_id = pending.approval_id  # type: ignore[attr-defined]
    coordinator.approve_spending(approval_id, "ops")
    later = coordinator.outbox.after(events[-1].id)
    assert [(e.type, e.data["status"]) for e in later] == [
        ("approval", "APPROVED"),
        ("decision", "APPROVED"),
    ]
    assert later[0].data["decided_by"] == "ops"
    assert coordinator.outbox.head() == later[-1].id
    assert coordinator.approval(approval_id).status is ApprovalStatus.APPROVED


def test_escrows_and_alerts_are_events_and_agents_read_their_own(
    coordinator: BudgetCoordinator,
) -> None:
    coordinator.register_agent(
        AgentConfig("other", "Other", PROVIDER[:-1] + "2", 100 * U, 100 * U, 100 * U)
    )
    result = coordinator.request_spending(SpendRequest("other", 85 * U, PROVIDER, "big"))
    assert result.status is SpendStatus.APPROVED and result.escrow_id is not None
    coordinator.settle(result.escrow_id)
    types = [(e.type, e.agent_id) for e in coordinator.outbox.after(0)]
    assert ("alert", "other") in types  # 85 % of its daily limit
    assert types[-1] == ("escrow", "other")
    coordinator.request_spending(SpendRequest("research", 5 * U, PROVIDER, "small"))
    mine = coordinator.outbox.after(0, agent_id="research")
    assert [e.agent_id for e in mine] == ["research"]


def test_an_event_rolls_back_with_its_decision(coordinator: BudgetCoordinator) -> None:
    def boom(ledger: object) -> None:
        ledger.emit("decision", 0.0, {"x": 1})  # type: ignore[attr-defined]
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        coordinator.store.run(boom)
    assert coordinator.outbox.after(0) == []


def test_pages_are_newest_first_with_a_cursor(coordinator: BudgetCoordinator) -> None:
    ids = [
        coordinator.request_spending(SpendRequest("research", U, PROVIDER, f"n{i}")).reservation_id
        for i in range(5)
    ]
    first = coordinator.spends(limit=2)
    assert [r.id for r in first.data] == ids[::-1][:2] and first.next == ids[3]
    second = coordinator.spends(after=first.next, limit=2)
    third = coordinator.spends(after=second.next, limit=2)
    assert [r.id for r in second.data + third.data] == ids[::-1][2:]
    assert third.next is None
    assert coordinator.spends(agent_id="nobody").data == []
    audit = coordinator.audit_page(limit=3)
    rest = coordinator.audit_page(after=int(audit.next or 0), limit=100)
    assert [e.id for e in audit.data + rest.data] == [e.id for e in coordinator.audit_log()]
    with pytest.raises(InvalidRequest):
        coordinator.spends(limit=0)


def test_a_webhook_cursor_has_one_owner_at_a_time(coordinator: BudgetCoordinator) -> None:
    outbox = coordinator.outbox
    coordinator.request_spending(SpendRequest("research", U, PROVIDER, "before"))
    cursor = outbox.claim("endpoint", "a", lease=30)
    assert cursor is not None and cursor.delivered_through == outbox.head()  # new: from now on
    assert outbox.claim("endpoint", "b", lease=30) is None
    assert outbox.delivered("endpoint", "a", cursor.delivered_through + 1, lease=30)
    assert not outbox.delivered("endpoint", "b", 99, lease=30)
    assert outbox.failed("endpoint", "a", retry_in=0, error="500") == 1
    claimed = outbox.claim("endpoint", "b", lease=30)
    assert claimed is not None and claimed.attempts == 1 and claimed.lease_owner == "b"
    outbox.release("endpoint", "b")
    assert outbox.claim("endpoint", "a", lease=30) is not None
