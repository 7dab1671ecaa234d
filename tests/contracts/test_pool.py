"""BudgetPool: limits at their edges, windows on the epoch grid, the cap, pause, refunds.

Every limit is tested exactly at its value and one base unit over. Times that matter are
pinned (:func:`pin`, :func:`transact_at`) so that the tests behave the same on eth-tester
and on anvil (run them with ``--chain anvil`` too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from web3.logs import DISCARD

from escrowkit import errors
from escrowkit.contracts.escrow import EscrowClient, EscrowId, EscrowState
from escrowkit.contracts.pool import UNLIMITED_BUDGET_CAP, BudgetPoolClient
from escrowkit.contracts.token import TokenClient
from escrowkit.core.units import MAX_UINT256
from hostile import deploy_hostile, hostile_artifact

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress
    from web3.types import TxReceipt

    from escrowkit.evm.chain import Chain

USDC = 10**6
PER_TX = 100 * USDC
PERIOD_LIMIT = 250 * USDC
DAY = 86_400
HOUR = 3_600
FUNDS = 10_000 * USDC
#: Gas for transactions mined without an estimate (see transact_at).
GAS = 500_000


@dataclass(frozen=True)
class Roles:
    owner: ChecksumAddress
    agent: ChecksumAddress
    operator: ChecksumAddress
    provider: ChecksumAddress
    stranger: ChecksumAddress
    guardian: ChecksumAddress
    other_agent: ChecksumAddress


@pytest.fixture
def roles(accounts: list[ChecksumAddress]) -> Roles:
    return Roles(*accounts[:7])


@pytest.fixture
def ready(pool: BudgetPoolClient, usdc: TokenClient, roles: Roles) -> BudgetPoolClient:
    """The session pool with funds, two agents (100 per tx, 250 a day), an operator, a guardian."""
    usdc.mint(pool.address, FUNDS, sender=roles.owner)
    for agent in (roles.agent, roles.other_agent):
        pool.set_agent(agent, PER_TX, PERIOD_LIMIT, DAY, sender=roles.owner)
    pool.set_operator(roles.operator, True, sender=roles.owner)
    pool.set_guardian(roles.guardian, sender=roles.owner)
    return pool


# --------------------------------------------------------------------------------------
# Time helpers
# --------------------------------------------------------------------------------------


def next_window(chain: Chain, period: int = DAY, margin: int = 120) -> int:
    """The first window start on the epoch grid at least ``margin`` seconds from now."""
    t = chain.now() + margin
    return t - t % period + period


def pin(chain: Chain, t: int) -> None:
    """The next transaction runs at exactly ``t``, with the latest block at ``t - 1``.

    ``Chain.transact`` estimates gas on the latest block, where anvil ignores a pinned
    timestamp. With the latest block one second before ``t`` the estimate sees the same
    window and deadlines as the transaction, unless an edge falls exactly at ``t``: such
    transactions go through :func:`transact_at`.
    """
    now = chain.now()
    if now < t - 1:
        chain.time_travel(t - 1 - now)
    chain.set_next_block_timestamp(t)


def transact_at(chain: Chain, fn: Any, sender: str, t: int) -> TxReceipt:
    """Mine ``fn`` at exactly ``t`` with fixed gas (no estimate) on every backend."""
    pin(chain, t)
    receipt = chain.transact(fn, sender=sender, gas=GAS)
    assert block_time(chain, receipt["blockNumber"]) == t
    return receipt


def block_time(chain: Chain, block: Any) -> int:
    return int(chain.w3.eth.get_block(block)["timestamp"])


def spend(
    pool: BudgetPoolClient,
    chain: Chain,
    roles: Roles,
    amount: int,
    *,
    agent: str | None = None,
    sender: str | None = None,
    at: int | None = None,
    deadline_in: int = HOUR,
    dispute_window: int = HOUR,
    salt: bytes | None = None,
) -> EscrowId:
    """One spend for ``agent`` (default roles.agent) by ``sender`` (default the agent)."""
    if at is not None:
        pin(chain, at)
    now = at if at is not None else chain.now()
    agent = agent or roles.agent
    return pool.spend(
        agent,
        roles.provider,
        amount,
        deadline=now + deadline_in,
        dispute_window=dispute_window,
        salt=salt,
        sender=sender or agent,
    )


def raw_spend(pool: BudgetPoolClient, roles: Roles, amount: int, t: int, salt: bytes) -> Any:
    """The contract call ``spend`` for roles.agent, with a deadline an hour after ``t``."""
    return pool.contract.functions.spend(
        roles.agent, salt, roles.provider, amount, t + HOUR, HOUR, bytes(32)
    )


def refunded_events(pool: BudgetPoolClient, receipt: Any) -> list[Any]:
    return list(pool.contract.events.SpendRefunded().process_receipt(receipt, errors=DISCARD))


# --------------------------------------------------------------------------------------
# Deployment
# --------------------------------------------------------------------------------------


def test_a_fresh_pool_has_safe_defaults(
    pool: BudgetPoolClient, usdc: TokenClient, escrow: EscrowClient, accounts: list[str]
) -> None:
    assert pool.owner() == accounts[0]
    assert pool.guardian() == accounts[0]
    assert pool.pending_owner() is None
    assert pool.budget_cap() == UNLIMITED_BUDGET_CAP
    assert pool.net_spent() == 0
    assert not pool.paused()
    assert pool.escrow_address == escrow.address
    assert pool.token_address == usdc.address
    assert usdc.allowance(pool.address, escrow.address) == MAX_UINT256
    assert not pool.agent(accounts[1]).is_agent


# --------------------------------------------------------------------------------------
# Spending: ids, records, events
# --------------------------------------------------------------------------------------


def test_spend_funds_an_escrow_of_the_pool_and_remembers_the_agent(
    ready: BudgetPoolClient,
    chain: Chain,
    roles: Roles,
    usdc: TokenClient,
    escrow: EscrowClient,
) -> None:
    salt = b"\x11" * 32
    escrow_id = spend(ready, chain, roles, 40 * USDC, sender=roles.operator, salt=salt)

    assert escrow_id == ready.escrow_id(roles.agent, salt)
    assert escrow_id == ready.contract.functions.escrowId(roles.agent, salt).call()
    record = escrow.get(escrow_id)
    assert record.requester == ready.address
    assert (record.provider, record.amount) == (roles.provider, 40 * USDC)
    assert record.state is EscrowState.FUNDED
    assert ready.agent_of(escrow_id) == roles.agent
    pool_record = ready.spend_record(escrow_id)
    assert pool_record is not None and pool_record.agent == roles.agent
    assert not pool_record.refunded
    assert usdc.balance_of(ready.address) == FUNDS - 40 * USDC
    assert ready.net_spent() == 40 * USDC
    assert ready.agent(roles.agent).window_spent == 40 * USDC

    assert escrow_id.receipt is not None
    events = ready.contract.events.Spent().process_receipt(escrow_id.receipt, errors=DISCARD)
    (event,) = events
    assert event["args"]["id"] == escrow_id
    assert event["args"]["agent"] == roles.agent
    assert event["args"]["spender"] == roles.operator
    assert event["args"]["amount"] == 40 * USDC


def test_salts_are_namespaced_per_agent(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    salt = b"\x22" * 32
    first = spend(ready, chain, roles, USDC, salt=salt)
    second = spend(ready, chain, roles, USDC, salt=salt, agent=roles.other_agent)
    assert first != second
    assert ready.agent_of(first) == roles.agent
    assert ready.agent_of(second) == roles.other_agent


def test_a_reused_salt_is_refused_by_the_escrow_and_leaves_no_trace(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    salt = b"\x33" * 32
    spend(ready, chain, roles, 10 * USDC, salt=salt)
    with pytest.raises(errors.InvalidState):
        spend(ready, chain, roles, 20 * USDC, salt=salt)
    assert ready.net_spent() == 10 * USDC
    assert ready.agent(roles.agent).window_spent == 10 * USDC


def test_an_escrow_refusal_rolls_the_counters_back(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    with pytest.raises(errors.InvalidProvider):
        ready.spend(
            roles.agent,
            ready.address,
            USDC,
            deadline=chain.now() + HOUR,
            dispute_window=HOUR,
            sender=roles.agent,
        )
    assert ready.net_spent() == 0
    assert ready.agent(roles.agent).window_spent == 0


def test_unknown_and_removed_agents_cannot_spend(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    with pytest.raises(errors.UnknownAgent) as info:
        spend(ready, chain, roles, USDC, agent=roles.stranger, sender=roles.operator)
    assert info.value.arguments == {"agent": roles.stranger}

    ready.remove_agent(roles.agent, sender=roles.owner)
    assert not ready.agent(roles.agent).is_agent
    with pytest.raises(errors.UnknownAgent):
        spend(ready, chain, roles, USDC)
    with pytest.raises(errors.UnknownAgent):
        ready.remove_agent(roles.agent, sender=roles.owner)


def test_set_agent_refuses_limits_that_cannot_hold(ready: BudgetPoolClient, roles: Roles) -> None:
    for args in ((0, 1, 1), (1, 0, 1), (1, 1, 0), (2**96, 1, 1), (1, 1, 2**32)):
        fn = ready.contract.functions.setAgent(roles.stranger, *args)
        with pytest.raises(errors.InvalidLimits) as info:
            ready.chain.transact(fn, sender=roles.owner)
        assert list(info.value.arguments.values()) == list(args)


# --------------------------------------------------------------------------------------
# Limits at their edges
# --------------------------------------------------------------------------------------


def test_per_tx_limit_exactly_and_one_base_unit_over(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    pin(chain, next_window(chain) + 10)
    with pytest.raises(errors.PerTxLimitExceeded) as info:
        spend(ready, chain, roles, PER_TX + 1)
    assert info.value.arguments == {
        "agent": roles.agent,
        "amount": PER_TX + 1,
        "perTxLimit": PER_TX,
    }
    spend(ready, chain, roles, PER_TX)
    assert ready.agent(roles.agent).window_spent == PER_TX


def test_period_limit_exactly_and_one_base_unit_over(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    pin(chain, next_window(chain) + 10)
    spend(ready, chain, roles, PER_TX)
    spend(ready, chain, roles, PER_TX)
    left = PERIOD_LIMIT - 2 * PER_TX
    with pytest.raises(errors.PeriodLimitExceeded) as info:
        spend(ready, chain, roles, left + 1)
    assert info.value.arguments == {
        "agent": roles.agent,
        "windowSpent": 2 * PER_TX,
        "amount": left + 1,
        "periodLimit": PERIOD_LIMIT,
    }
    spend(ready, chain, roles, left)
    limits = ready.agent(roles.agent)
    assert limits.window_spent == PERIOD_LIMIT
    assert limits.window_remaining == 0
    with pytest.raises(errors.PeriodLimitExceeded):
        spend(ready, chain, roles, 1)
    # Limits are per agent: the other agent's window is untouched.
    spend(ready, chain, roles, PER_TX, agent=roles.other_agent)


def test_window_resets_exactly_at_the_grid_edge(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    edge = next_window(chain)
    assert edge % DAY == 0  # anchored at the Unix epoch: a UTC day
    spend(ready, chain, roles, PER_TX, at=edge - 30)
    spend(ready, chain, roles, PER_TX, at=edge - 20)
    left = PERIOD_LIMIT - 2 * PER_TX
    # Mined in the last second of the window: the old usage still counts ...
    with pytest.raises(errors.PeriodLimitExceeded) as info:
        transact_at(
            chain, raw_spend(ready, roles, left + 1, edge - 1, b"\x01" * 32), roles.agent, edge - 1
        )
    assert info.value.tx_hash is not None
    mined = chain.w3.eth.get_transaction_receipt(info.value.tx_hash)  # type: ignore[arg-type]
    assert block_time(chain, mined["blockNumber"]) == edge - 1
    assert ready.agent(roles.agent).window_start == edge - DAY
    # ... mined in the first second of the next one, usage starts from zero.
    transact_at(chain, raw_spend(ready, roles, PER_TX, edge, b"\x02" * 32), roles.agent, edge)
    limits = ready.agent(roles.agent)
    assert (limits.window_start, limits.window_spent) == (edge, PER_TX)
    assert limits.window_end == edge + DAY


def test_usage_resets_lazily_in_the_view(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    edge = next_window(chain)
    spend(ready, chain, roles, PER_TX, at=edge - 10)
    chain.time_travel(edge - chain.now())
    limits = ready.agent(roles.agent)
    assert (limits.window_start, limits.window_spent) == (edge, 0)


def test_short_periods_sit_on_the_same_epoch_grid(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    ready.set_agent(roles.agent, PER_TX, PER_TX, 600, sender=roles.owner)
    edge = next_window(chain, 600)
    spend(ready, chain, roles, PER_TX, at=edge - 5)
    with pytest.raises(errors.PeriodLimitExceeded):
        transact_at(
            chain, raw_spend(ready, roles, 1, edge - 1, b"\x01" * 32), roles.agent, edge - 1
        )
    transact_at(chain, raw_spend(ready, roles, PER_TX, edge, b"\x02" * 32), roles.agent, edge)
    assert ready.agent(roles.agent).window_start == edge


def test_budget_cap_exactly_and_one_base_unit_over_across_agents(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    cap = 150 * USDC
    ready.set_budget_cap(cap, sender=roles.owner)
    assert ready.budget_cap() == cap
    spend(ready, chain, roles, PER_TX)
    with pytest.raises(errors.BudgetCapExceeded) as info:
        spend(ready, chain, roles, cap - PER_TX + 1, agent=roles.other_agent)
    assert info.value.arguments == {
        "netSpent": PER_TX,
        "amount": cap - PER_TX + 1,
        "budgetCap": cap,
    }
    spend(ready, chain, roles, cap - PER_TX, agent=roles.other_agent)
    assert ready.net_spent() == cap
    with pytest.raises(errors.BudgetCapExceeded):
        spend(ready, chain, roles, 1)
    ready.set_budget_cap(None, sender=roles.owner)
    assert ready.budget_cap() == UNLIMITED_BUDGET_CAP
    spend(ready, chain, roles, 1)


def test_a_cap_below_net_spend_stops_spending(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    spend(ready, chain, roles, PER_TX)
    ready.set_budget_cap(PER_TX - 1, sender=roles.owner)
    with pytest.raises(errors.BudgetCapExceeded):
        spend(ready, chain, roles, 1)


def test_a_cap_above_128_bits_means_unlimited(ready: BudgetPoolClient, roles: Roles) -> None:
    ready.set_budget_cap(MAX_UINT256, sender=roles.owner)
    assert ready.budget_cap() == UNLIMITED_BUDGET_CAP


def test_spendable_balance_exactly_and_one_base_unit_over(
    pool: BudgetPoolClient, chain: Chain, roles: Roles, usdc: TokenClient
) -> None:
    pool.set_agent(roles.agent, 10**12, 10**12, DAY, sender=roles.owner)
    usdc.mint(pool.address, 70 * USDC, sender=roles.owner)
    assert pool.spendable() == 70 * USDC
    with pytest.raises(errors.InsufficientSpendable) as info:
        spend(pool, chain, roles, 70 * USDC + 1)
    assert info.value.arguments == {"spendable": 70 * USDC, "needed": 70 * USDC + 1}
    spend(pool, chain, roles, 70 * USDC)
    assert pool.spendable() == 0


@pytest.mark.parametrize("limit", ["per-tx", "period", "cap", "spendable"])
def test_an_operator_key_cannot_pass_any_limit(
    ready: BudgetPoolClient, chain: Chain, roles: Roles, usdc: TokenClient, limit: str
) -> None:
    """A stolen coordinator key is bounded exactly like the agent itself."""
    pin(chain, next_window(chain) + 10)
    expected: type[errors.ContractRevert]
    if limit == "per-tx":
        amount, expected = PER_TX + 1, errors.PerTxLimitExceeded
    elif limit == "period":
        spend(ready, chain, roles, PER_TX, sender=roles.operator)
        spend(ready, chain, roles, PER_TX, sender=roles.operator)
        amount, expected = PERIOD_LIMIT - 2 * PER_TX + 1, errors.PeriodLimitExceeded
    elif limit == "cap":
        ready.set_budget_cap(PER_TX - 1, sender=roles.owner)
        amount, expected = PER_TX, errors.BudgetCapExceeded
    else:
        ready.withdraw(roles.owner, FUNDS - PER_TX + 1, sender=roles.owner)
        amount, expected = PER_TX, errors.InsufficientSpendable
    before = usdc.balance_of(ready.address)
    with pytest.raises(expected):
        spend(ready, chain, roles, amount, sender=roles.operator)
    assert usdc.balance_of(ready.address) == before


# --------------------------------------------------------------------------------------
# Pause
# --------------------------------------------------------------------------------------


def test_pause_blocks_spend_only(
    ready: BudgetPoolClient,
    chain: Chain,
    roles: Roles,
    usdc: TokenClient,
    escrow: EscrowClient,
) -> None:
    member = roles.stranger
    usdc.mint(member, 200 * USDC, sender=member)
    usdc.approve(ready.address, MAX_UINT256, sender=member)
    ready.contribute(50 * USDC, sender=member)
    to_settle = spend(ready, chain, roles, 10 * USDC)
    to_cancel = spend(ready, chain, roles, 20 * USDC, deadline_in=60)
    to_reconcile = spend(ready, chain, roles, 30 * USDC)

    ready.pause(sender=roles.guardian)
    assert ready.paused()
    for sender in (roles.agent, roles.operator):
        with pytest.raises(errors.EnforcedPause):
            spend(ready, chain, roles, USDC, sender=sender)
    with pytest.raises(errors.EnforcedPause):
        ready.pause(sender=roles.owner)

    ready.settle(to_settle, sender=roles.agent)
    chain.time_travel(61)
    ready.cancel(to_cancel, sender=roles.operator)
    escrow.cancel(to_reconcile, sender=roles.provider)
    ready.reconcile(to_reconcile, sender=roles.stranger)
    ready.contribute(50 * USDC, sender=member)
    ready.distribute(10 * USDC, sender=member)
    ready.claim(sender=member)
    assert ready.net_spent() == 10 * USDC

    with pytest.raises(errors.NotOwner):
        ready.unpause(sender=roles.guardian)
    ready.unpause(sender=roles.owner)
    assert not ready.paused()
    with pytest.raises(errors.ExpectedPause):
        ready.unpause(sender=roles.owner)
    spend(ready, chain, roles, USDC)


# --------------------------------------------------------------------------------------
# Settle, cancel, refunds
# --------------------------------------------------------------------------------------


def test_settle_through_the_pool_pays_the_provider_and_keeps_the_spend(
    ready: BudgetPoolClient,
    chain: Chain,
    roles: Roles,
    usdc: TokenClient,
    escrow: EscrowClient,
) -> None:
    escrow_id = spend(ready, chain, roles, 40 * USDC)
    before = usdc.balance_of(roles.provider)
    ready.settle(escrow_id, sender=roles.agent)
    assert usdc.balance_of(roles.provider) == before + 40 * USDC
    assert escrow.get(escrow_id).state is EscrowState.SETTLED
    assert ready.net_spent() == 40 * USDC
    with pytest.raises(errors.NotCancelled) as info:
        ready.reconcile(escrow_id, sender=roles.stranger)
    assert info.value.arguments == {"id": escrow_id, "state": EscrowState.SETTLED}


def test_cancel_follows_the_escrow_rules_for_the_requester(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    start = next_window(chain) + 10
    escrow_id = spend(ready, chain, roles, 40 * USDC, at=start, deadline_in=100, dispute_window=50)
    pin(chain, start + 99)
    with pytest.raises(errors.TooEarly):
        ready.cancel(escrow_id, sender=roles.agent)
    pin(chain, start + 151)
    with pytest.raises(errors.TooLate):
        ready.cancel(escrow_id, sender=roles.agent)
    assert ready.net_spent() == 40 * USDC


def test_refund_in_the_same_window_credits_net_spend_and_the_window(
    ready: BudgetPoolClient, chain: Chain, roles: Roles, usdc: TokenClient
) -> None:
    start = next_window(chain) + 10
    escrow_id = spend(ready, chain, roles, PER_TX, at=start, deadline_in=100)
    spend(ready, chain, roles, PER_TX, at=start + 1)
    assert ready.agent(roles.agent).window_spent == 2 * PER_TX

    pin(chain, start + 101)
    receipt = ready.cancel(escrow_id, sender=roles.owner)
    (event,) = refunded_events(ready, receipt)
    assert event["args"]["amount"] == PER_TX
    assert event["args"]["windowCredited"] is True
    assert ready.net_spent() == PER_TX
    assert ready.agent(roles.agent).window_spent == PER_TX
    assert usdc.balance_of(ready.address) == FUNDS - PER_TX
    record = ready.spend_record(escrow_id)
    assert record is not None and record.refunded
    # The credit is real: the agent can spend it again, up to exactly its limit.
    spend(ready, chain, roles, PER_TX)
    spend(ready, chain, roles, PERIOD_LIMIT - 2 * PER_TX)
    with pytest.raises(errors.PeriodLimitExceeded):
        spend(ready, chain, roles, 1)
    with pytest.raises(errors.AlreadyRefunded):
        ready.cancel(escrow_id, sender=roles.owner)


def test_refund_in_a_later_window_credits_net_spend_only(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    edge = next_window(chain)
    old = spend(ready, chain, roles, PER_TX, at=edge - 100, deadline_in=50)
    spend(ready, chain, roles, PER_TX, at=edge + 5)  # the new window: 100 used
    pin(chain, edge + 10)
    receipt = ready.cancel(old, sender=roles.operator)
    (event,) = refunded_events(ready, receipt)
    assert event["args"]["windowCredited"] is False
    assert ready.net_spent() == PER_TX
    limits = ready.agent(roles.agent)
    assert (limits.window_start, limits.window_spent) == (edge, PER_TX)


@pytest.mark.parametrize(("at", "credited"), [(-1, True), (0, False)], ids=["edge-1", "edge"])
def test_window_credit_stops_exactly_at_the_grid_edge(
    ready: BudgetPoolClient, chain: Chain, roles: Roles, at: int, credited: bool
) -> None:
    """A refund mined in the last second of the spend's window credits the window; one
    mined in the first second of the next window credits net spend only."""
    edge = next_window(chain)
    escrow_id = spend(ready, chain, roles, PER_TX, at=edge - 100, deadline_in=50)
    receipt = transact_at(chain, ready.contract.functions.cancel(escrow_id), roles.agent, edge + at)
    (event,) = refunded_events(ready, receipt)
    assert event["args"]["windowCredited"] is credited
    assert ready.net_spent() == 0
    limits = ready.agent(roles.agent)
    # Credited: the spend's window is back to 0. Not credited: the view is the new
    # window, which the refund did not touch (nothing was spent in it).
    window = (edge - DAY, 0) if credited else (edge, 0)
    assert (limits.window_start, limits.window_spent) == window


def test_reconcile_credits_a_provider_cancel_exactly_once(
    ready: BudgetPoolClient,
    chain: Chain,
    roles: Roles,
    usdc: TokenClient,
    escrow: EscrowClient,
) -> None:
    pin(chain, next_window(chain) + 10)
    escrow_id = spend(ready, chain, roles, PER_TX)
    escrow.cancel(escrow_id, sender=roles.provider)
    # The Escrow refunded the pool; the counters catch up on reconcile (by anyone).
    assert usdc.balance_of(ready.address) == FUNDS
    assert ready.net_spent() == PER_TX
    receipt = ready.reconcile(escrow_id, sender=roles.stranger)
    (event,) = refunded_events(ready, receipt)
    assert event["args"]["windowCredited"] is True
    assert ready.net_spent() == 0
    assert ready.agent(roles.agent).window_spent == 0

    with pytest.raises(errors.AlreadyRefunded) as info:
        ready.reconcile(escrow_id, sender=roles.stranger)
    assert info.value.arguments == {"id": escrow_id}
    with pytest.raises(errors.AlreadyRefunded):
        ready.cancel(escrow_id, sender=roles.owner)
    assert ready.net_spent() == 0


def test_reconcile_refuses_escrows_not_cancelled_or_not_the_pools(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    escrow_id = spend(ready, chain, roles, PER_TX)
    with pytest.raises(errors.NotCancelled) as info:
        ready.reconcile(escrow_id, sender=roles.stranger)
    assert info.value.arguments == {"id": escrow_id, "state": EscrowState.FUNDED}
    unknown = EscrowId(b"\x44" * 32)
    for call in (ready.reconcile, ready.settle, ready.cancel):
        with pytest.raises(errors.UnknownEscrow) as unknown_info:
            call(unknown, sender=roles.owner)
        assert unknown_info.value.arguments == {"id": unknown}
    assert ready.agent_of(unknown) is None
    assert ready.spend_record(unknown) is None


def test_a_removed_agent_still_gets_its_escrows_settled_and_credited(
    ready: BudgetPoolClient, chain: Chain, roles: Roles, escrow: EscrowClient
) -> None:
    to_settle = spend(ready, chain, roles, PER_TX)
    to_refund = spend(ready, chain, roles, PER_TX)
    ready.remove_agent(roles.agent, sender=roles.owner)
    ready.settle(to_settle, sender=roles.agent)
    escrow.cancel(to_refund, sender=roles.provider)
    receipt = ready.reconcile(to_refund, sender=roles.agent)
    (event,) = refunded_events(ready, receipt)
    assert event["args"]["windowCredited"] is False
    assert ready.net_spent() == PER_TX


def test_a_deferred_refund_is_credited_and_pulled_back(chain: Chain, roles: Roles) -> None:
    """A refund the token refuses to push to the pool is owed to it; pull_owed brings it home."""
    token_contract = deploy_hostile(chain, "BlocklistToken", sender=roles.owner)
    token = TokenClient(
        chain, str(token_contract.address), abi=hostile_artifact("BlocklistToken").abi
    )
    escrow = EscrowClient.deploy(chain, token.address, sender=roles.owner)
    pool = BudgetPoolClient.deploy(chain, escrow.address, sender=roles.owner)
    token.mint(pool.address, FUNDS, sender=roles.owner)
    pool.set_agent(roles.agent, PER_TX, PERIOD_LIMIT, DAY, sender=roles.owner)
    by_provider = spend(pool, chain, roles, PER_TX)
    by_pool = spend(pool, chain, roles, PER_TX, deadline_in=60)

    chain.transact(token_contract.functions.setBlocked(pool.address, True), sender=roles.owner)
    escrow.cancel(by_provider, sender=roles.provider)
    chain.time_travel(61)
    pool.cancel(by_pool, sender=roles.agent)
    pool.reconcile(by_provider, sender=roles.stranger)
    assert escrow.owed(pool.address) == 2 * PER_TX
    assert pool.net_spent() == 0
    assert token.balance_of(pool.address) == FUNDS - 2 * PER_TX

    with pytest.raises(errors.TokenTransferFailed):
        pool.pull_owed(sender=roles.stranger)
    chain.transact(token_contract.functions.setBlocked(pool.address, False), sender=roles.owner)
    pool.pull_owed(sender=roles.stranger)
    assert token.balance_of(pool.address) == FUNDS
    assert escrow.owed(pool.address) == 0
    with pytest.raises(errors.NothingOwed):
        pool.pull_owed(sender=roles.stranger)
