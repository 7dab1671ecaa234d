"""EscrowClient: input is refused before anything is sent, ids are computed locally,
reverts surface as the named errors, history comes back typed and in order."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from eth_utils.crypto import keccak

from escrowkit import errors
from escrowkit.contracts.deploy import Deployments
from escrowkit.contracts.escrow import (
    NEVER,
    EscrowCancelled,
    EscrowClient,
    EscrowCreated,
    EscrowFunded,
    EscrowId,
    EscrowRecord,
    EscrowSettled,
    EscrowState,
)
from escrowkit.contracts.token import TokenClient
from escrowkit.core.units import MAX_UINT256
from escrowkit.errors import ContractRevert, InvalidRequest
from escrowkit.evm.chain import Chain

AMOUNT = 2_500_000


@pytest.fixture
def parties(chain: Chain, usdc: TokenClient, escrow: EscrowClient) -> tuple[str, str]:
    requester, provider = chain.accounts[1], chain.accounts[2]
    usdc.mint(requester, 10 * AMOUNT, sender=requester)
    usdc.approve(escrow.address, MAX_UINT256, sender=requester)
    return requester, provider


def nonce(chain: Chain, address: str) -> int:
    return int(chain.w3.eth.get_transaction_count(address))  # type: ignore[arg-type]


BAD_CREATE = [
    ({"amount": 0}, "amount must be > 0"),
    ({"amount": -5}, "amount must be > 0"),
    ({"amount": 2**96}, "2\\*\\*96"),
    ({"amount": 2.5}, "amount must be an int"),
    ({"amount": "10"}, "amount must be an int"),
    ({"amount": True}, "amount must be an int"),
    ({"provider": "0x" + "00" * 20}, "zero address"),
    ({"provider": "0x6813eb9362372eef6200f3b1dbc3f819671cba6"}, "20-byte hex"),
    ({"provider": "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA6A"}, "checksum"),
    ({"provider": "requester"}, "is the requester itself"),
    ({"provider": "escrow"}, "is the escrow itself"),
    ({"deadline": 1.0e12}, "deadline must be an int"),
    ({"deadline": 0}, "deadline must be in"),
    ({"deadline": 2**40}, "deadline must be in"),
    ({"dispute_window": -1}, "dispute_window must be in"),
    ({"dispute_window": 2**32}, "dispute_window must be in"),
    ({"dispute_window": 3600.0}, "dispute_window must be an int"),
    ({"metadata": b"x" * 33}, "at most 32 bytes"),
    ({"metadata": "text"}, "not str"),
    ({"salt": b"short"}, "exactly 32 bytes"),
    ({"salt": "0x1234"}, "exactly 32 bytes"),
    ({"salt": "0xzz" + "00" * 31}, "32 bytes or 0x-prefixed hex"),
    ({"sender": "not an address"}, "sender"),
]


@pytest.mark.parametrize("method", ["create", "create_and_fund"])
@pytest.mark.parametrize(("override", "match"), BAD_CREATE)
def test_create_validates_before_sending(
    chain: Chain,
    escrow: EscrowClient,
    parties: tuple[str, str],
    method: str,
    override: dict[str, Any],
    match: str,
) -> None:
    requester, provider = parties
    kwargs: dict[str, Any] = {
        "provider": provider,
        "amount": AMOUNT,
        "deadline": chain.now() + 100,
        "dispute_window": 60,
        "sender": requester,
    }
    kwargs.update(override)
    if kwargs["provider"] == "requester":
        kwargs["provider"] = requester
    elif kwargs["provider"] == "escrow":
        kwargs["provider"] = escrow.address
    sent = nonce(chain, requester)
    with pytest.raises(InvalidRequest, match=match) as info:
        getattr(escrow, method)(**kwargs)
    assert isinstance(info.value, ValueError)
    assert nonce(chain, requester) == sent


@pytest.mark.parametrize("method", ["fund", "settle", "cancel", "get", "history"])
@pytest.mark.parametrize("bad", [b"\x01" * 31, "0x" + "ab" * 33, 12345, None])
def test_ids_are_validated(
    escrow: EscrowClient, accounts: list[str], method: str, bad: Any
) -> None:
    args = (bad,) if method in ("get", "history") else (bad, accounts[1])
    with pytest.raises(InvalidRequest, match="escrow id"):
        getattr(escrow, method)(*args)


def test_withdraw_owed_validates_the_destination(escrow: EscrowClient, accounts: list[str]) -> None:
    with pytest.raises(InvalidRequest, match="to"):
        escrow.withdraw_owed("0x" + "00" * 20, sender=accounts[1])
    with pytest.raises(InvalidRequest, match="escrow itself"):
        escrow.withdraw_owed(escrow.address, sender=accounts[1])
    with pytest.raises(errors.NothingOwed) as info:
        escrow.withdraw_owed(accounts[3], sender=accounts[1])
    assert info.value.arguments == {"account": accounts[1]}
    assert escrow.owed(accounts[1]) == 0


def test_escrow_id_is_computed_locally_like_the_contract(
    escrow: EscrowClient, accounts: list[str]
) -> None:
    for n, requester in enumerate(accounts[:4]):
        salt = keccak(text=f"salt {n}")
        local = escrow.escrow_id(requester, salt)
        assert local == escrow.contract.functions.escrowId(requester, salt).call()
        assert local == escrow.escrow_id(requester.lower(), "0x" + salt.hex())
        assert isinstance(local, EscrowId) and local.receipt is None


def test_create_returns_its_id_with_the_receipt(
    chain: Chain, escrow: EscrowClient, parties: tuple[str, str]
) -> None:
    requester, provider = parties
    salt = b"\x11" * 32
    eid = escrow.create(
        provider,
        AMOUNT,
        deadline=chain.now() + 100,
        dispute_window=60,
        salt=salt,
        sender=requester,
    )
    assert eid == escrow.escrow_id(requester, salt)
    assert eid.receipt is not None and eid.receipt["status"] == 1
    assert bytes(eid.receipt["logs"][0]["topics"][1]) == eid
    assert len(eid) == 32 and eid.hex() == bytes(eid).hex()
    assert str(eid) == eid.to_0x_hex() == "0x" + eid.hex()
    assert repr(eid) == f"EscrowId({eid.to_0x_hex()})"
    assert eid == bytes(eid) and hash(eid) == hash(bytes(eid))
    assert EscrowId(str(eid)) == eid
    copy = pickle.loads(pickle.dumps(eid))
    assert copy == eid and copy.receipt is None


def test_random_salts_give_fresh_ids(
    chain: Chain, escrow: EscrowClient, parties: tuple[str, str]
) -> None:
    requester, provider = parties
    kwargs: dict[str, Any] = {"deadline": chain.now() + 100, "dispute_window": 60}
    first = escrow.create(provider, AMOUNT, sender=requester, **kwargs)
    second = escrow.create(provider, AMOUNT, sender=requester, **kwargs)
    assert first != second
    assert {escrow.get(first).state, escrow.get(second).state} == {EscrowState.INITIATED}


def test_get_returns_the_record(
    chain: Chain, escrow: EscrowClient, parties: tuple[str, str]
) -> None:
    requester, provider = parties
    deadline = chain.now() + 100
    eid = escrow.create_and_fund(
        provider, AMOUNT, deadline=deadline, dispute_window=NEVER, sender=requester
    )
    record = escrow.get(eid)
    assert record == EscrowRecord(
        id=eid,
        requester=requester,  # type: ignore[arg-type]
        provider=provider,  # type: ignore[arg-type]
        amount=AMOUNT,
        deadline=deadline,
        dispute_window=NEVER,
        state=EscrowState.FUNDED,
    )
    assert record.exists and not record.state.is_final and record.release_at is None
    with pytest.raises(AttributeError):
        record.amount = 1  # type: ignore[misc]


def test_missing_escrow_reads_as_none(escrow: EscrowClient) -> None:
    record = escrow.get(b"\x42" * 32)
    assert record.state is EscrowState.NONE and not record.exists
    assert record.amount == 0 and int(record.requester, 16) == 0
    assert escrow.history(b"\x42" * 32) == []


def test_reverts_surface_as_named_errors(
    chain: Chain, escrow: EscrowClient, parties: tuple[str, str]
) -> None:
    requester, provider = parties
    eid = escrow.create(
        provider, AMOUNT, deadline=chain.now() + 100, dispute_window=60, sender=requester
    )
    with pytest.raises(errors.NotParty) as info:
        escrow.fund(eid, sender=provider)
    exc = info.value
    assert isinstance(exc, ContractRevert) and exc.name == "NotParty"
    assert exc.arguments == {"id": bytes(eid), "caller": provider}
    assert "Escrow.fund" in str(exc) and exc.tx_hash is None  # refused at estimation
    with pytest.raises(errors.InvalidState, match="InvalidState"):
        escrow.settle(eid, sender=requester)


def test_history_is_typed_and_in_order(
    chain: Chain, usdc: TokenClient, escrow: EscrowClient, parties: tuple[str, str]
) -> None:
    requester, provider = parties
    deadline = chain.now() + 100
    settled = escrow.create(
        provider, AMOUNT, deadline=deadline, dispute_window=60, metadata=b"job 7", sender=requester
    )
    other = escrow.create(provider, AMOUNT, deadline=deadline, dispute_window=60, sender=requester)
    fund = escrow.fund(settled, sender=requester)
    escrow.cancel(other, sender=provider)
    settle = escrow.settle(settled, sender=requester)

    history = escrow.history(settled)
    assert [type(e) for e in history] == [EscrowCreated, EscrowFunded, EscrowSettled]
    created, funded, paid = history
    assert isinstance(created, EscrowCreated) and isinstance(paid, EscrowSettled)
    assert created.metadata == b"job 7".ljust(32, b"\0")
    assert (created.amount, created.deadline, created.dispute_window) == (AMOUNT, deadline, 60)
    assert funded.tx_hash == fund["transactionHash"].to_0x_hex()
    assert (paid.paid, paid.fee, paid.tx_hash) == (AMOUNT, 0, settle["transactionHash"].to_0x_hex())
    blocks = [e.block_number for e in history]
    assert blocks == sorted(blocks) and all(e.id == settled for e in history)
    with pytest.raises(AttributeError):
        paid.fee = 1  # type: ignore[misc]

    cancelled = escrow.history(other)
    assert [type(e) for e in cancelled] == [EscrowCreated, EscrowCancelled]
    assert cancelled[-1].refunded == 0  # type: ignore[attr-defined]


def test_deploy_with_a_manifest_reuses_and_remembers_the_block(
    chain: Chain, usdc: TokenClient, accounts: list[str]
) -> None:
    manifest = Deployments(chain.chain_id)
    first = EscrowClient.deploy(chain, usdc.address, sender=accounts[0], deployments=manifest)
    again = EscrowClient.deploy(chain, usdc.address, sender=accounts[0], deployments=manifest)
    entry = manifest.get("Escrow")
    assert entry is not None
    assert first.address == again.address == entry.address
    assert first.from_block == again.from_block == entry.block
    assert EscrowClient(chain, first.address).token == usdc.address
