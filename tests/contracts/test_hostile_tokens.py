"""Escrow with tokens that misbehave (contracts/test/): no-return (USDT-like), fee on
transfer, re-entrant, blocklisting. For each: what happens, and that no funds are lost or
paid twice. After every scenario the escrow holds exactly the sum of its FUNDED amounts
plus everything it owes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_utils.crypto import keccak

from escrowkit import errors
from escrowkit.contracts.escrow import EscrowClient, EscrowId, EscrowState, PaymentDeferred
from escrowkit.contracts.token import TokenClient
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain
from hostile import deploy_hostile, hostile_artifact

AMOUNT = 5_000_000
TTL = 1_000
WINDOW = 100
FEE_BPS = 300


@dataclass(frozen=True)
class Env:
    chain: Chain
    token: TokenClient
    escrow: EscrowClient
    requester: str
    provider: str
    other: str

    def open(self, *, provider: str | None = None, funded: bool = True) -> EscrowId:
        create = self.escrow.create_and_fund if funded else self.escrow.create
        return create(
            provider or self.provider,
            AMOUNT,
            deadline=self.chain.now() + TTL,
            dispute_window=WINDOW,
            sender=self.requester,
        )

    def assert_solvent(self, *ids: bytes, owed_to: tuple[str, ...] = ()) -> None:
        """The escrow's balance is exactly what it holds for FUNDED escrows plus what it owes."""
        funded = sum(r.amount for r in map(self.escrow.get, ids) if r.state is EscrowState.FUNDED)
        owed = sum(self.escrow.owed(a) for a in set(owed_to))
        assert self.token.balance_of(self.escrow.address) == funded + owed


def make_env(chain: Chain, accounts: list[str], name: str, *, fee: bool = False) -> Env:
    contract = deploy_hostile(chain, name, sender=accounts[0])
    token = TokenClient(chain, str(contract.address), abi=hostile_artifact(name).abi)
    escrow = EscrowClient.deploy(
        chain,
        token.address,
        fee_bps=FEE_BPS if fee else 0,
        fee_recipient=accounts[5] if fee else None,
        sender=accounts[0],
    )
    requester, provider, other = accounts[1], accounts[2], accounts[3]
    token.mint(requester, 100 * AMOUNT, sender=requester)
    token.approve(escrow.address, MAX_UINT256, sender=requester)
    return Env(chain, token, escrow, requester, provider, other)


@pytest.fixture(scope="session")
def no_return(chain: Chain, accounts: list[str]) -> Env:
    return make_env(chain, accounts, "NoReturnToken")


@pytest.fixture(scope="session")
def fee_on_transfer(chain: Chain, accounts: list[str]) -> Env:
    return make_env(chain, accounts, "FeeOnTransferToken")


@pytest.fixture(scope="session")
def reentrant(chain: Chain, accounts: list[str]) -> Env:
    return make_env(chain, accounts, "ReentrantToken")


@pytest.fixture(scope="session")
def blocklist(chain: Chain, accounts: list[str]) -> Env:
    return make_env(chain, accounts, "BlocklistToken", fee=True)


def fn(env: Env, name: str, *args: object) -> object:
    return env.token.contract.functions[name](*args)


# --------------------------------------------------------------------------------------
# No return value (USDT-like)
# --------------------------------------------------------------------------------------


def test_no_return_token_works_through_every_path(no_return: Env) -> None:
    env = no_return
    start = env.token.balance_of(env.requester)
    settled = env.open()
    initiated = env.open(funded=False)
    env.escrow.fund(initiated, sender=env.requester)
    env.assert_solvent(settled, initiated)
    env.escrow.settle(settled, sender=env.requester)
    env.escrow.cancel(initiated, sender=env.provider)
    assert env.token.balance_of(env.provider) == AMOUNT
    assert env.token.balance_of(env.requester) == start - AMOUNT
    assert env.token.balance_of(env.escrow.address) == 0
    assert env.escrow.owed(env.provider) == env.escrow.owed(env.requester) == 0


def test_no_return_token_failure_is_still_caught(no_return: Env) -> None:
    """A no-return token that reverts (no allowance) is a failed pull, not a silent one."""
    env = no_return
    env.chain.transact(fn(env, "approve", env.escrow.address, 0), sender=env.requester)
    eid = env.open(funded=False)
    with pytest.raises(errors.TokenTransferFailed) as info:
        env.escrow.fund(eid, sender=env.requester)
    assert info.value.arguments == {
        "token": env.token.address,
        "to": env.escrow.address,
        "amount": AMOUNT,
    }
    assert env.escrow.get(eid).state is EscrowState.INITIATED


def test_no_return_token_takes_a_new_allowance_only_through_zero(no_return: Env) -> None:
    """USDT's approve rule: non-zero to non-zero reverts; ``force_approve`` goes through 0."""
    env, spender = no_return, no_return.other
    env.token.approve(spender, 7, sender=env.requester)
    with pytest.raises(errors.AllowanceNotZero) as info:
        env.token.approve(spender, 9, sender=env.requester)
    assert info.value.arguments == {"spender": spender, "allowance": 7}
    assert len(env.token.force_approve(spender, 9, sender=env.requester)) == 2  # 0, then 9
    assert env.token.allowance(env.requester, spender) == 9
    # From zero (or to zero) one approve is enough.
    assert len(env.token.force_approve(spender, 0, sender=env.requester)) == 1
    assert len(env.token.force_approve(spender, 4, sender=env.requester)) == 1
    assert env.token.allowance(env.requester, spender) == 4


# --------------------------------------------------------------------------------------
# Fee on transfer
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["fund", "create_and_fund"])
def test_fee_on_transfer_token_is_rejected(fee_on_transfer: Env, path: str) -> None:
    env = fee_on_transfer
    start = env.token.balance_of(env.requester)
    eid = env.open(funded=False) if path == "fund" else None
    with pytest.raises(errors.UnsupportedToken) as info:
        if eid is not None:
            env.escrow.fund(eid, sender=env.requester)
        else:
            env.open()
    received = AMOUNT - AMOUNT * 100 // 10_000  # the token burns 1 %
    assert info.value.arguments == {
        "token": env.token.address,
        "expected": AMOUNT,
        "received": received,
    }
    # Reverted whole: nothing moved, nothing recorded as funded.
    assert env.token.balance_of(env.requester) == start
    assert env.token.balance_of(env.escrow.address) == 0
    if eid is not None:
        assert env.escrow.get(eid).state is EscrowState.INITIATED


# --------------------------------------------------------------------------------------
# Re-entrant token: the token is the provider and calls back into the escrow mid-transfer
# --------------------------------------------------------------------------------------

REENTRANCY = "0x" + keccak(text="Reentrancy()")[:4].hex()


def arm(env: Env, data: bytes, *, bubble: bool = False) -> None:
    env.chain.transact(fn(env, "arm", env.escrow.address, data, bubble), sender=env.requester)


def reentry(env: Env) -> tuple[bool, str]:
    ok = env.chain.call(fn(env, "lastReentryOk"))
    data = env.chain.call(fn(env, "lastReentryData"))
    return bool(ok), "0x" + bytes(data).hex()


def test_reentrant_cancel_during_fund_is_refused(reentrant: Env) -> None:
    """Mid-pull the escrow is already FUNDED (effects first): without the guard, the
    provider's cancel would refund money that has not arrived."""
    env = reentrant
    eid = env.open(provider=env.token.address, funded=False)
    arm(env, env.escrow.contract.encode_abi("cancel", [eid]))
    env.escrow.fund(eid, sender=env.requester)
    assert reentry(env) == (False, REENTRANCY)
    assert env.escrow.get(eid).state is EscrowState.FUNDED
    env.assert_solvent(eid)
    assert env.token.balance_of(env.escrow.address) == AMOUNT


def test_reentrant_cancel_during_settle_cannot_pay_twice(reentrant: Env) -> None:
    env = reentrant
    keep = env.open()  # another escrow's money, which a double payment would take
    eid = env.open(provider=env.token.address)
    requester_before = env.token.balance_of(env.requester)
    arm(env, env.escrow.contract.encode_abi("cancel", [eid]))
    env.escrow.settle(eid, sender=env.requester)
    assert reentry(env) == (False, REENTRANCY)
    assert env.escrow.get(eid).state is EscrowState.SETTLED
    assert env.token.balance_of(env.token.address) == AMOUNT  # paid once
    assert env.token.balance_of(env.requester) == requester_before  # not refunded too
    env.assert_solvent(keep, eid)


def test_reentry_that_makes_the_transfer_revert(reentrant: Env) -> None:
    """When the token lets the refused re-entry revert the transfer itself: a push becomes
    a debt (the settle still happens, once), a pull fails the whole call."""
    env = reentrant
    eid = env.open(provider=env.token.address)
    arm(env, env.escrow.contract.encode_abi("cancel", [eid]), bubble=True)
    env.escrow.settle(eid, sender=env.requester)
    assert env.escrow.get(eid).state is EscrowState.SETTLED
    assert env.escrow.owed(env.token.address) == AMOUNT
    assert env.token.balance_of(env.token.address) == 0
    env.assert_solvent(eid, owed_to=(env.token.address,))

    pending = env.open(provider=env.token.address, funded=False)
    arm(env, env.escrow.contract.encode_abi("cancel", [pending]), bubble=True)
    with pytest.raises(errors.TokenTransferFailed):
        env.escrow.fund(pending, sender=env.requester)
    assert env.escrow.get(pending).state is EscrowState.INITIATED
    env.assert_solvent(eid, pending, owed_to=(env.token.address,))


def test_reentrant_create_is_harmless(reentrant: Env) -> None:
    """create moves no tokens and is unguarded: a create from inside a transfer only makes
    a new, independent escrow (requested by the token) and changes nothing else."""
    env = reentrant
    eid = env.open(funded=False)
    salt = b"\x05" * 32
    deadline = env.chain.now() + TTL
    data = env.escrow.contract.encode_abi(
        "create", [salt, env.provider, 1, deadline, 0, b"\x00" * 32]
    )
    arm(env, data)
    env.escrow.fund(eid, sender=env.requester)
    assert reentry(env)[0] is True
    inner = env.escrow.get(env.escrow.escrow_id(env.token.address, salt))
    assert (inner.state, inner.requester, inner.amount) == (
        EscrowState.INITIATED,
        env.token.address,
        1,
    )
    assert env.escrow.get(eid).state is EscrowState.FUNDED
    env.assert_solvent(eid)


# --------------------------------------------------------------------------------------
# Blocklist: pushes that fail are owed, never lost, never able to block a state change
# --------------------------------------------------------------------------------------


def block(env: Env, account: str, *, return_false: bool = False) -> None:
    env.chain.transact(fn(env, "setReturnFalse", return_false), sender=env.requester)
    env.chain.transact(fn(env, "setBlocked", account, True), sender=env.requester)


def unblock(env: Env, account: str) -> None:
    env.chain.transact(fn(env, "setBlocked", account, False), sender=env.requester)


@pytest.mark.parametrize("return_false", [False, True], ids=["reverts", "returns-false"])
def test_blocked_provider_is_owed_and_withdraws_elsewhere(
    blocklist: Env, return_false: bool
) -> None:
    env = blocklist
    eid = env.open()
    fee = AMOUNT * FEE_BPS // 10_000
    block(env, env.provider, return_false=return_false)
    receipt = env.escrow.settle(eid, sender=env.requester)
    assert receipt["status"] == 1
    assert env.escrow.get(eid).state is EscrowState.SETTLED
    deferred = env.escrow.history(eid)[-1]
    assert isinstance(deferred, PaymentDeferred)
    assert (deferred.account, deferred.amount) == (env.provider, AMOUNT - fee)
    assert env.escrow.owed(env.provider) == AMOUNT - fee
    assert env.token.balance_of(env.escrow.fee_recipient or "") == fee  # the fee still went
    env.assert_solvent(eid, owed_to=(env.provider,))

    # The provider pulls to an address of its choice; then nothing is left to pull.
    env.escrow.withdraw_owed(env.other, sender=env.provider)
    assert env.token.balance_of(env.other) == AMOUNT - fee
    assert env.escrow.owed(env.provider) == 0
    with pytest.raises(errors.NothingOwed):
        env.escrow.withdraw_owed(env.other, sender=env.provider)
    assert env.token.balance_of(env.escrow.address) == 0


def test_blocked_provider_cannot_stall_its_own_settlement(blocklist: Env) -> None:
    """After the window the provider settles alone even while blocked; payment is owed."""
    env = blocklist
    eid = env.open()
    block(env, env.provider)
    env.chain.time_travel(TTL + WINDOW + 1)
    env.escrow.settle(eid, sender=env.provider)
    assert env.escrow.get(eid).state is EscrowState.SETTLED
    fee = AMOUNT * FEE_BPS // 10_000
    assert env.escrow.owed(env.provider) == AMOUNT - fee
    unblock(env, env.provider)
    env.escrow.withdraw_owed(env.provider, sender=env.provider)
    assert env.token.balance_of(env.provider) == AMOUNT - fee
    env.assert_solvent(eid, owed_to=(env.provider,))


def test_blocked_provider_does_not_lock_the_requesters_money(blocklist: Env) -> None:
    """The requester takes the money back in the window, whatever the provider's status."""
    env = blocklist
    eid = env.open()
    before = env.token.balance_of(env.requester)
    block(env, env.provider)
    env.chain.time_travel(TTL + 1)
    env.escrow.cancel(eid, sender=env.requester)
    assert env.token.balance_of(env.requester) == before + AMOUNT
    assert env.escrow.owed(env.provider) == 0
    env.assert_solvent(eid)


def test_blocked_requester_refund_is_owed(blocklist: Env) -> None:
    env = blocklist
    eid = env.open()
    block(env, env.requester)
    env.escrow.cancel(eid, sender=env.provider)
    assert env.escrow.get(eid).state is EscrowState.CANCELLED
    assert env.escrow.owed(env.requester) == AMOUNT
    env.assert_solvent(eid, owed_to=(env.requester,))
    env.escrow.withdraw_owed(env.other, sender=env.requester)
    assert env.token.balance_of(env.other) == AMOUNT


def test_blocked_fee_recipient_is_owed_its_fee(blocklist: Env) -> None:
    env = blocklist
    recipient = env.escrow.fee_recipient
    assert recipient is not None
    eid = env.open()
    fee = AMOUNT * FEE_BPS // 10_000
    block(env, recipient)
    env.escrow.settle(eid, sender=env.requester)
    assert env.token.balance_of(env.provider) == AMOUNT - fee
    assert env.escrow.owed(recipient) == fee
    env.assert_solvent(eid, owed_to=(recipient,))


@pytest.mark.parametrize("invalid", ["zero", "escrow"], ids=["to-zero", "to-the-escrow-itself"])
def test_withdraw_owed_to_a_refusing_or_invalid_address_reverts_and_keeps_the_debt(
    blocklist: Env, invalid: str
) -> None:
    """A refusing recipient fails the transfer; the zero address and the escrow itself are
    refused outright (sent to the escrow, the tokens would stay in its balance, owed to
    nobody: locked). Either way the debt is kept."""
    env = blocklist
    target = "0x" + "00" * 20 if invalid == "zero" else env.escrow.address
    eid = env.open()
    block(env, env.provider)
    env.escrow.settle(eid, sender=env.requester)
    owed = env.escrow.owed(env.provider)
    assert owed > 0
    with pytest.raises(errors.TokenTransferFailed) as refused:
        env.escrow.withdraw_owed(env.provider, sender=env.provider)
    assert refused.value.arguments == {
        "token": env.token.address,
        "to": env.provider,
        "amount": owed,
    }
    assert env.escrow.owed(env.provider) == owed
    withdraw = env.escrow.contract.functions.withdrawOwed(target)
    with pytest.raises(errors.InvalidRecipient) as invalid_to:
        env.chain.transact(withdraw, sender=env.provider)
    assert invalid_to.value.arguments == {"to": target}
    assert env.escrow.owed(env.provider) == owed
    env.assert_solvent(eid, owed_to=(env.provider,))


def test_blocked_requester_cannot_fund(blocklist: Env) -> None:
    env = blocklist
    eid = env.open(funded=False)
    block(env, env.requester)
    with pytest.raises(errors.TokenTransferFailed):
        env.escrow.fund(eid, sender=env.requester)
    assert env.escrow.get(eid).state is EscrowState.INITIATED
    env.assert_solvent(eid)
