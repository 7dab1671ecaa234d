"""BudgetPool.fence: an operator makes a reserved escrow id unusable, so that a spender
that was paused (and looked dead) cannot fund it after recovery gave up on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from test_pool import DAY, FUNDS, PER_TX, PERIOD_LIMIT, USDC, Roles, spend
from web3.logs import DISCARD

from escrowkit import EscrowState, errors

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

    from escrowkit.contracts.escrow import EscrowClient
    from escrowkit.contracts.pool import BudgetPoolClient
    from escrowkit.contracts.token import TokenClient
    from escrowkit.evm.chain import Chain


@pytest.fixture
def roles(accounts: list[ChecksumAddress]) -> Roles:
    return Roles(*accounts[:7])


@pytest.fixture
def ready(pool: BudgetPoolClient, usdc: TokenClient, roles: Roles) -> BudgetPoolClient:
    usdc.mint(pool.address, FUNDS, sender=roles.owner)
    pool.set_agent(roles.agent, PER_TX, PERIOD_LIMIT, DAY, sender=roles.owner)
    pool.set_operator(roles.operator, True, sender=roles.owner)
    return pool


def test_a_fenced_salt_can_never_be_spent_and_nothing_is_counted(
    ready: BudgetPoolClient, escrow: EscrowClient, usdc: TokenClient, chain: Chain, roles: Roles
) -> None:
    salt = b"\x51" * 32
    balance = usdc.balance_of(ready.address)
    fenced = ready.fence(roles.agent, salt, sender=roles.operator)
    assert fenced == ready.escrow_id(roles.agent, salt)
    record = escrow.get(fenced)
    assert (record.state, record.requester, record.amount) == (
        EscrowState.CANCELLED,
        ready.address,
        1,
    )
    assert fenced.receipt is not None
    events = ready.contract.events.SpendFenced().process_receipt(fenced.receipt, errors=DISCARD)
    assert [(e.args.id, e.args.agent, e.args.operator) for e in events] == [
        (bytes(fenced), roles.agent, roles.operator)
    ]
    # The paused spender wakes up: its spend reverts, and leaves no trace.
    with pytest.raises(errors.InvalidState):
        spend(ready, chain, roles, 10 * USDC, salt=salt, sender=roles.operator)
    assert ready.net_spent() == 0 and ready.agent(roles.agent).window_spent == 0
    assert usdc.balance_of(ready.address) == balance
    assert ready.spend_record(fenced) is None


def test_only_operators_and_the_owner_fence(ready: BudgetPoolClient, roles: Roles) -> None:
    with pytest.raises(errors.NotOperator) as info:
        ready.fence(roles.agent, b"\x52" * 32, sender=roles.agent)
    assert info.value.arguments == {"caller": roles.agent}
    assert ready.fence(roles.agent, b"\x53" * 32, sender=roles.owner)


def test_a_funded_spend_cannot_be_fenced(
    ready: BudgetPoolClient, chain: Chain, roles: Roles, escrow: EscrowClient
) -> None:
    salt = b"\x54" * 32
    funded = spend(ready, chain, roles, 10 * USDC, salt=salt)
    with pytest.raises(errors.AlreadySpent) as info:
        ready.fence(roles.agent, salt, sender=roles.operator)
    assert info.value.arguments == {"id": bytes(funded)}
    assert escrow.get(funded).state is EscrowState.FUNDED
    # Fencing twice: the Escrow refuses the id it already holds.
    ready.fence(roles.agent, b"\x55" * 32, sender=roles.operator)
    with pytest.raises(errors.InvalidState):
        ready.fence(roles.agent, b"\x55" * 32, sender=roles.operator)
