"""BudgetPool access control: every function against every role that must be refused.

Roles: the owner, the guardian, an operator, the agent that spent, another agent, a
stranger. Each refusal is the named custom error with the caller as its argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from escrowkit import errors
from escrowkit.contracts.escrow import EscrowId

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

    from escrowkit.contracts.pool import BudgetPoolClient
    from escrowkit.contracts.token import TokenClient
    from escrowkit.evm.chain import Chain

USDC = 10**6
DAY = 86_400
HOUR = 3_600


@dataclass(frozen=True)
class Roles:
    owner: ChecksumAddress
    agent: ChecksumAddress
    operator: ChecksumAddress
    provider: ChecksumAddress
    stranger: ChecksumAddress
    guardian: ChecksumAddress
    other_agent: ChecksumAddress

    def __getitem__(self, role: str) -> ChecksumAddress:
        return getattr(self, role)  # type: ignore[no-any-return]


@pytest.fixture
def roles(accounts: list[ChecksumAddress]) -> Roles:
    return Roles(*accounts[:7])


@pytest.fixture
def ready(pool: BudgetPoolClient, usdc: TokenClient, roles: Roles) -> BudgetPoolClient:
    usdc.mint(pool.address, 1_000 * USDC, sender=roles.owner)
    for agent in (roles.agent, roles.other_agent):
        pool.set_agent(agent, 100 * USDC, 250 * USDC, DAY, sender=roles.owner)
    pool.set_operator(roles.operator, True, sender=roles.owner)
    pool.set_guardian(roles.guardian, sender=roles.owner)
    return pool


def spend_as(pool: BudgetPoolClient, chain: Chain, roles: Roles, sender: str) -> EscrowId:
    return pool.spend(
        roles.agent,
        roles.provider,
        10 * USDC,
        deadline=chain.now() + HOUR,
        dispute_window=HOUR,
        sender=sender,
    )


# --------------------------------------------------------------------------------------
# Owner-only functions
# --------------------------------------------------------------------------------------

Call = Callable[["BudgetPoolClient", Roles, str], Any]

OWNER_ONLY: dict[str, Call] = {
    "setAgent": lambda p, r, s: p.set_agent(r.stranger, 1, 1, DAY, sender=s),
    "removeAgent": lambda p, r, s: p.remove_agent(r.agent, sender=s),
    "setOperator": lambda p, r, s: p.set_operator(r.stranger, True, sender=s),
    "setGuardian": lambda p, r, s: p.set_guardian(r.stranger, sender=s),
    "setBudgetCap": lambda p, r, s: p.set_budget_cap(1, sender=s),
    "withdraw": lambda p, r, s: p.withdraw(r.stranger, 1, sender=s),
    "transferOwnership": lambda p, r, s: p.transfer_ownership(r.stranger, sender=s),
    "unpause": lambda p, r, s: p.unpause(sender=s),
}


@pytest.mark.parametrize("role", ["guardian", "operator", "agent", "stranger"])
@pytest.mark.parametrize("function", sorted(OWNER_ONLY))
def test_owner_only_functions_refuse_everyone_else(
    ready: BudgetPoolClient, roles: Roles, function: str, role: str
) -> None:
    if function == "unpause":
        ready.pause(sender=roles.owner)
    with pytest.raises(errors.NotOwner) as info:
        OWNER_ONLY[function](ready, roles, roles[role])
    assert info.value.arguments == {"caller": roles[role]}


@pytest.mark.parametrize("function", sorted(OWNER_ONLY))
def test_owner_only_functions_work_for_the_owner(
    ready: BudgetPoolClient, roles: Roles, function: str
) -> None:
    if function == "unpause":
        ready.pause(sender=roles.guardian)
    receipt = OWNER_ONLY[function](ready, roles, roles.owner)
    assert receipt["status"] == 1


# --------------------------------------------------------------------------------------
# Pause, ownership, guardian
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["operator", "agent", "stranger"])
def test_pause_refuses_all_but_owner_and_guardian(
    ready: BudgetPoolClient, roles: Roles, role: str
) -> None:
    with pytest.raises(errors.NotOwnerOrGuardian) as info:
        ready.pause(sender=roles[role])
    assert info.value.arguments == {"caller": roles[role]}
    assert not ready.paused()


@pytest.mark.parametrize("role", ["owner", "guardian"])
def test_owner_and_guardian_can_pause(ready: BudgetPoolClient, roles: Roles, role: str) -> None:
    ready.pause(sender=roles[role])
    assert ready.paused()


@pytest.mark.parametrize("role", ["owner", "guardian", "stranger"])
def test_accept_ownership_refuses_all_but_the_pending_owner(
    ready: BudgetPoolClient, roles: Roles, role: str
) -> None:
    ready.transfer_ownership(roles.other_agent, sender=roles.owner)
    with pytest.raises(errors.NotPendingOwner) as info:
        ready.accept_ownership(sender=roles[role])
    assert info.value.arguments == {"caller": roles[role]}
    assert ready.owner() == roles.owner


def test_ownership_moves_in_two_steps(pool: BudgetPoolClient, roles: Roles) -> None:
    new_owner = roles.stranger
    pool.transfer_ownership(new_owner, sender=roles.owner)
    assert pool.pending_owner() == new_owner
    assert pool.owner() == roles.owner  # nothing changes until accepted
    pool.set_budget_cap(5, sender=roles.owner)
    with pytest.raises(errors.NotOwner):  # the pending owner has no power yet
        pool.set_budget_cap(7, sender=new_owner)
    with pytest.raises(errors.NotOwnerOrGuardian):
        pool.pause(sender=new_owner)

    pool.accept_ownership(sender=new_owner)
    assert pool.owner() == new_owner
    assert pool.pending_owner() is None
    # The default guardian is whoever owns the pool.
    assert pool.guardian() == new_owner
    with pytest.raises(errors.NotOwner):
        pool.set_budget_cap(6, sender=roles.owner)
    pool.set_budget_cap(6, sender=new_owner)


def test_a_pending_transfer_can_be_cancelled(pool: BudgetPoolClient, roles: Roles) -> None:
    pool.transfer_ownership(roles.stranger, sender=roles.owner)
    pool.transfer_ownership(None, sender=roles.owner)
    assert pool.pending_owner() is None
    with pytest.raises(errors.NotPendingOwner):
        pool.accept_ownership(sender=roles.stranger)


def test_guardian_can_be_set_and_reset_to_the_owner(pool: BudgetPoolClient, roles: Roles) -> None:
    pool.set_guardian(roles.guardian, sender=roles.owner)
    assert pool.guardian() == roles.guardian
    pool.set_guardian(None, sender=roles.owner)
    assert pool.guardian() == roles.owner
    with pytest.raises(errors.NotOwnerOrGuardian):
        pool.pause(sender=roles.guardian)


# --------------------------------------------------------------------------------------
# Spending roles
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "guardian", "other_agent", "stranger", "provider"])
def test_spend_refuses_all_but_the_agent_and_operators(
    ready: BudgetPoolClient, chain: Chain, roles: Roles, role: str
) -> None:
    with pytest.raises(errors.UnauthorizedSpender) as info:
        spend_as(ready, chain, roles, roles[role])
    assert info.value.arguments == {"agent": roles.agent, "caller": roles[role]}
    assert ready.net_spent() == 0


@pytest.mark.parametrize("role", ["agent", "operator"])
def test_the_agent_and_operators_can_spend(
    ready: BudgetPoolClient, chain: Chain, roles: Roles, role: str
) -> None:
    escrow_id = spend_as(ready, chain, roles, roles[role])
    assert ready.agent_of(escrow_id) == roles.agent


def test_a_disabled_operator_can_no_longer_spend(
    ready: BudgetPoolClient, chain: Chain, roles: Roles
) -> None:
    ready.set_operator(roles.operator, False, sender=roles.owner)
    assert not ready.is_operator(roles.operator)
    with pytest.raises(errors.UnauthorizedSpender):
        spend_as(ready, chain, roles, roles.operator)


@pytest.mark.parametrize("function", ["settle", "cancel"])
@pytest.mark.parametrize("role", ["guardian", "other_agent", "stranger", "provider"])
def test_settle_and_cancel_refuse_all_but_agent_operator_owner(
    ready: BudgetPoolClient, chain: Chain, roles: Roles, function: str, role: str
) -> None:
    escrow_id = spend_as(ready, chain, roles, roles.agent)
    with pytest.raises(errors.UnauthorizedEscrowCaller) as info:
        getattr(ready, function)(escrow_id, sender=roles[role])
    assert info.value.arguments == {"id": escrow_id, "caller": roles[role]}


@pytest.mark.parametrize("role", ["agent", "operator", "owner"])
def test_agent_operator_and_owner_can_settle_and_cancel(
    ready: BudgetPoolClient, chain: Chain, roles: Roles, role: str
) -> None:
    to_settle = spend_as(ready, chain, roles, roles.agent)
    to_cancel = ready.spend(
        roles.agent,
        roles.provider,
        10 * USDC,
        deadline=chain.now() + 60,
        dispute_window=HOUR,
        sender=roles.agent,
    )
    ready.settle(to_settle, sender=roles[role])
    chain.time_travel(61)
    ready.cancel(to_cancel, sender=roles[role])
    assert ready.net_spent() == 10 * USDC
