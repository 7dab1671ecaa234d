"""BudgetPool with tokens that misbehave (contracts/test/): no return value (USDT-like) on
every path that moves tokens, and a token that calls back into the pool mid-transfer.

The Escrow's own hostile-token tests are in test_hostile_tokens.py; these show that the
pool's SafeERC20-style calls, its guard and its effects-first order hold too: every
refund is credited exactly once and the pool's balance is what the model says.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_utils.crypto import keccak

from escrowkit import errors
from escrowkit.contracts.escrow import EscrowClient, EscrowId, EscrowState
from escrowkit.contracts.pool import BudgetPoolClient
from escrowkit.contracts.token import TokenClient
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain
from hostile import deploy_hostile, hostile_artifact

USDC = 10**6
FUNDS = 1_000 * USDC
DAY = 86_400
HOUR = 3_600
REENTRANCY = "0x" + keccak(text="Reentrancy()")[:4].hex()


@dataclass(frozen=True)
class Env:
    chain: Chain
    token: TokenClient
    escrow: EscrowClient
    pool: BudgetPoolClient
    owner: str
    agent: str
    provider: str
    member: str

    def spend(self, amount: int, *, ttl: int = HOUR) -> EscrowId:
        return self.pool.spend(
            self.agent,
            self.provider,
            amount,
            deadline=self.chain.now() + ttl,
            dispute_window=HOUR,
            sender=self.agent,
        )

    def raw(self, name: str, *args: object) -> object:
        return self.token.contract.functions[name](*args)


def make_env(chain: Chain, accounts: list[str], name: str) -> Env:
    owner, agent, provider, member = accounts[0], accounts[1], accounts[2], accounts[3]
    contract = deploy_hostile(chain, name, sender=owner)
    token = TokenClient(chain, str(contract.address), abi=hostile_artifact(name).abi)
    escrow = EscrowClient.deploy(chain, token.address, sender=owner)
    # The constructor's max approval goes through the same no-return-tolerant call.
    pool = BudgetPoolClient.deploy(chain, escrow.address, sender=owner)
    token.mint(pool.address, FUNDS, sender=owner)
    token.mint(member, FUNDS, sender=owner)
    chain.transact(token.contract.functions.approve(pool.address, MAX_UINT256), sender=member)
    pool.set_agent(agent, 100 * USDC, 500 * USDC, DAY, sender=owner)
    return Env(chain, token, escrow, pool, owner, agent, provider, member)


@pytest.fixture(scope="session")
def no_return(chain: Chain, accounts: list[str]) -> Env:
    return make_env(chain, accounts, "NoReturnToken")


@pytest.fixture(scope="session")
def reentrant(chain: Chain, accounts: list[str]) -> Env:
    return make_env(chain, accounts, "ReentrantToken")


# --------------------------------------------------------------------------------------
# No return value (USDT-like)
# --------------------------------------------------------------------------------------


def test_no_return_token_works_through_every_pool_path(no_return: Env) -> None:
    env = no_return
    assert env.token.allowance(env.pool.address, env.escrow.address) == MAX_UINT256
    env.pool.contribute(200 * USDC, sender=env.member)
    settled = env.spend(60 * USDC)
    refunded = env.spend(40 * USDC, ttl=60)
    env.pool.settle(settled, sender=env.agent)
    env.chain.time_travel(61)
    env.pool.cancel(refunded, sender=env.agent)
    env.pool.distribute(30 * USDC, sender=env.member)
    env.pool.claim(sender=env.member)
    env.pool.withdraw(env.owner, 100 * USDC, sender=env.owner)

    assert env.token.balance_of(env.provider) == 60 * USDC
    assert env.token.balance_of(env.member) == FUNDS - 200 * USDC  # 30 out, 30 back
    assert env.token.balance_of(env.owner) == 100 * USDC
    assert env.token.balance_of(env.pool.address) == FUNDS + 200 * USDC - 60 * USDC - 100 * USDC
    assert env.pool.net_spent() == 60 * USDC
    assert env.pool.unclaimed_yield() == 0


def test_no_return_token_failure_is_still_caught(no_return: Env) -> None:
    """A no-return token that reverts (the allowance is gone: InsufficientAllowance, which
    the pool passes on) is a failed pull."""
    env = no_return
    # Lowering to 0 is the one change USDT's approve rule allows from a non-zero allowance.
    env.chain.transact(env.raw("approve", env.pool.address, 0), sender=env.member)
    with pytest.raises(errors.InsufficientAllowance) as info:
        env.pool.contribute(USDC, sender=env.member)
    assert info.value.arguments == {"spender": env.pool.address, "allowance": 0, "needed": USDC}
    assert env.pool.contribution_of(env.member) == 0
    assert env.pool.total_contributions() == 0


# --------------------------------------------------------------------------------------
# Re-entrant token: it calls the pool from inside a transfer
# --------------------------------------------------------------------------------------


def arm(env: Env, data: bytes, *, bubble: bool = False) -> None:
    env.chain.transact(env.raw("arm", env.pool.address, data, bubble), sender=env.owner)


def reentry(env: Env) -> tuple[bool, str]:
    ok = env.chain.call(env.raw("lastReentryOk"))
    data = env.chain.call(env.raw("lastReentryData"))
    return bool(ok), "0x" + bytes(data).hex()


def test_reentry_into_the_pool_during_its_own_transfer_is_refused(reentrant: Env) -> None:
    env = reentrant
    env.pool.contribute(100 * USDC, sender=env.member)
    env.pool.distribute(10 * USDC, sender=env.member)
    arm(env, env.pool.contract.encode_abi("claim", []))
    env.pool.claim(sender=env.member)
    assert reentry(env) == (False, REENTRANCY)
    assert env.pool.unclaimed_yield() == 0
    assert env.token.balance_of(env.member) == FUNDS - 100 * USDC


def test_reconcile_inside_the_pools_cancel_cannot_credit_twice(reentrant: Env) -> None:
    """pool.cancel -> Escrow refund -> token calls pool.reconcile: refused by the guard
    (and, had it run, the record was already marked refunded before the Escrow call)."""
    env = reentrant
    eid = env.spend(50 * USDC, ttl=60)
    env.chain.time_travel(61)
    arm(env, env.pool.contract.encode_abi("reconcile", [eid]))
    env.pool.cancel(eid, sender=env.agent)
    assert reentry(env) == (False, REENTRANCY)
    assert env.pool.net_spent() == 0
    assert env.pool.agent(env.agent).window_spent == 0
    assert env.token.balance_of(env.pool.address) == FUNDS


def test_reconcile_inside_a_provider_refund_credits_once(reentrant: Env) -> None:
    """The provider cancels on the Escrow; while the refund is being pushed the token calls
    pool.reconcile. The pool is not entered, so it runs (the Escrow already says
    CANCELLED) and credits once; no later call can credit again."""
    env = reentrant
    eid = env.spend(50 * USDC)
    arm(env, env.pool.contract.encode_abi("reconcile", [eid]))
    env.escrow.cancel(eid, sender=env.provider)
    assert reentry(env)[0] is True
    assert env.escrow.get(eid).state is EscrowState.CANCELLED
    assert env.pool.net_spent() == 0
    assert env.token.balance_of(env.pool.address) == FUNDS
    with pytest.raises(errors.AlreadyRefunded):
        env.pool.reconcile(eid, sender=env.member)
    with pytest.raises(errors.AlreadyRefunded):
        env.pool.cancel(eid, sender=env.owner)
    assert env.pool.net_spent() == 0


def test_reentrant_spend_during_a_pull_is_refused(reentrant: Env) -> None:
    """Even a token the owner made an operator cannot spend from inside the pool's pull."""
    env = reentrant
    env.pool.set_operator(env.token.address, True, sender=env.owner)
    data = env.pool.contract.encode_abi(
        "spend",
        [env.agent, b"\x01" * 32, env.provider, USDC, env.chain.now() + HOUR, HOUR, bytes(32)],
    )
    arm(env, data)
    env.pool.contribute(10 * USDC, sender=env.member)
    assert reentry(env) == (False, REENTRANCY)
    assert env.pool.net_spent() == 0
    assert env.token.balance_of(env.pool.address) == FUNDS + 10 * USDC
