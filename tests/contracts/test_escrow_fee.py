"""The optional immutable fee: taken at settle only (never on cancel), rounded down, in
the EscrowSettled event; and the constructor's checks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import rlp  # type: ignore[import-untyped]
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from escrowkit import errors
from escrowkit.contracts.deploy import deploy
from escrowkit.contracts.escrow import EscrowClient, EscrowSettled
from escrowkit.contracts.token import TokenClient
from escrowkit.core.units import MAX_UINT96, MAX_UINT256
from escrowkit.errors import InvalidRequest
from escrowkit.evm.chain import Chain

TTL = 1_000
ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class Env:
    chain: Chain
    token: TokenClient
    escrows: dict[int, EscrowClient]  # by fee_bps
    requester: str
    provider: str
    recipient: str


@pytest.fixture(scope="session")
def env(chain: Chain, accounts: list[str]) -> Env:
    token = TokenClient(chain, str(deploy(chain, "MockUSDC", sender=accounts[0]).address))
    requester, provider, recipient = accounts[1], accounts[2], accounts[6]
    escrows = {}
    for bps in (0, 1, 250, 500):
        escrows[bps] = EscrowClient.deploy(
            chain,
            token.address,
            fee_bps=bps,
            fee_recipient=recipient if bps else None,
            sender=accounts[0],
        )
        token.approve(escrows[bps].address, MAX_UINT256, sender=requester)
    token.mint(requester, 3 * MAX_UINT96, sender=requester)
    return Env(chain, token, escrows, requester, provider, recipient)


@pytest.mark.parametrize(
    ("bps", "amount", "fee"),
    [
        (0, 1_000_000, 0),
        (1, 1_000_000, 100),
        (1, 9_999, 0),  # 0.9999 base units of fee rounds down to nothing
        (1, 10_000, 1),
        (250, 1, 0),
        (250, 39, 0),  # 0.975 -> 0
        (250, 40, 1),
        (250, 12_345_678, 308_641),  # 308,641.95 -> 308,641
        (500, 19, 0),  # 0.95 -> 0
        (500, 20, 1),
        (500, 199, 9),  # 9.95 -> 9
        (500, MAX_UINT96, MAX_UINT96 * 500 // 10_000),
    ],
)
@pytest.mark.parametrize("settler", ["requester", "provider"])
def test_fee_is_taken_at_settle_rounded_down(
    env: Env, bps: int, amount: int, fee: int, settler: str
) -> None:
    escrow = env.escrows[bps]
    assert escrow.fee_for(amount) == fee
    deadline = env.chain.now() + TTL
    eid = escrow.create_and_fund(
        env.provider, amount, deadline=deadline, dispute_window=0, sender=env.requester
    )
    if settler == "provider":
        env.chain.time_travel(TTL + 1)
    before = {a: env.token.balance_of(a) for a in (env.provider, env.recipient)}
    escrow.settle(eid, sender=getattr(env, settler))
    assert env.token.balance_of(env.provider) - before[env.provider] == amount - fee
    assert env.token.balance_of(env.recipient) - before[env.recipient] == fee
    assert env.token.balance_of(escrow.address) == 0
    settled = escrow.history(eid)[-1]
    assert isinstance(settled, EscrowSettled)
    assert (settled.paid, settled.fee) == (amount - fee, fee)


@pytest.mark.parametrize("bps", [0, 500])
def test_cancel_refunds_in_full_whatever_the_fee(env: Env, bps: int) -> None:
    escrow = env.escrows[bps]
    before = env.token.balance_of(env.requester)
    eid = escrow.create_and_fund(
        env.provider,
        1_000_001,
        deadline=env.chain.now() + TTL,
        dispute_window=0,
        sender=env.requester,
    )
    escrow.cancel(eid, sender=env.provider)
    assert env.token.balance_of(env.requester) == before
    assert env.token.balance_of(env.recipient) == 0


def test_fee_configuration_is_readable(env: Env) -> None:
    assert (env.escrows[0].fee_bps, env.escrows[0].fee_recipient) == (0, None)
    assert (env.escrows[250].fee_bps, env.escrows[250].fee_recipient) == (250, env.recipient)
    assert env.escrows[250].token == env.token.address


@pytest.mark.parametrize(
    ("bps", "recipient"),
    [(501, "recipient"), (10_000, "recipient"), (100, ZERO), (0, "recipient")],
    ids=["above-max", "100-percent", "fee-without-recipient", "recipient-without-fee"],
)
def test_constructor_rejects_a_bad_fee(env: Env, bps: int, recipient: str) -> None:
    address = env.recipient if recipient == "recipient" else ZERO
    with pytest.raises(errors.InvalidFee) as info:
        deploy(env.chain, "Escrow", env.token.address, bps, address, sender=env.requester)
    assert info.value.arguments == {"feeBps": bps, "feeRecipient": address}


def test_constructor_rejects_the_escrow_as_its_own_fee_recipient(env: Env) -> None:
    """Fees paid to the escrow itself would sit in its balance with nobody to claim them."""
    nonce = env.chain.w3.eth.get_transaction_count(env.requester)  # type: ignore[arg-type]
    sender = bytes.fromhex(env.requester[2:])
    future = to_checksum_address(keccak(rlp.encode([sender, nonce]))[12:])
    with pytest.raises(errors.InvalidFee) as info:
        deploy(env.chain, "Escrow", env.token.address, 100, future, sender=env.requester)
    assert info.value.arguments == {"feeBps": 100, "feeRecipient": future}


def test_constructor_rejects_a_token_without_code(env: Env) -> None:
    with pytest.raises(errors.InvalidToken) as info:
        deploy(env.chain, "Escrow", env.provider, 0, ZERO, sender=env.requester)
    assert info.value.arguments == {"token": env.provider}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fee_bps": 501, "fee_recipient": "recipient"}, "fee_bps"),
        ({"fee_bps": 2.5, "fee_recipient": "recipient"}, "fee_bps must be an int"),
        ({"fee_bps": True, "fee_recipient": "recipient"}, "fee_bps must be an int"),
        ({"fee_bps": 100}, "needs a fee_recipient"),
        ({"fee_recipient": "recipient"}, "fee_bps=0"),
        ({"fee_bps": 100, "fee_recipient": "0xnot-an-address"}, "fee_recipient"),
    ],
)
def test_deploy_validates_before_sending(env: Env, kwargs: dict[str, object], match: str) -> None:
    if kwargs.get("fee_recipient") == "recipient":
        kwargs["fee_recipient"] = env.recipient
    nonce = env.chain.w3.eth.get_transaction_count(env.requester)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match=match):
        EscrowClient.deploy(env.chain, env.token.address, sender=env.requester, **kwargs)  # type: ignore[arg-type]
    assert env.chain.w3.eth.get_transaction_count(env.requester) == nonce  # type: ignore[arg-type]
