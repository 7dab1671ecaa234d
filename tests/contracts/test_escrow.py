"""Escrow.sol against its state table (DESIGN.md section 3).

Every call (fund, settle, cancel) by every caller (requester, provider, stranger) in every
state and time phase either makes the move the table allows, with the money it moves and
the event it emits, or reverts with the named error and its arguments. Inside the contract
the checks run in a fixed order: state, then caller, then time.

create and createAndFund: an id belongs to its requester (keccak of requester and salt), so
only the requester can hit an existing escrow (InvalidState, in every state); anyone else
with the same salt gets an id of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import pytest
from eth_utils.crypto import keccak

from escrowkit import errors
from escrowkit.contracts.deploy import deploy
from escrowkit.contracts.escrow import EscrowClient, EscrowId, EscrowState
from escrowkit.contracts.token import TokenClient
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain

AMOUNT = 7_000_000
TTL = 1_000  # deadline = time of creation + TTL
WINDOW = 500


@dataclass(frozen=True)
class Env:
    chain: Chain
    token: TokenClient
    escrow: EscrowClient
    requester: str
    provider: str
    stranger: str

    def party(self, role: str) -> str:
        return str(getattr(self, role))


@pytest.fixture(scope="session")
def env(chain: Chain, accounts: list[str]) -> Env:
    """A MockUSDC and an Escrow of this module's own, so that the requester's balance and
    allowance (set once, before any test's snapshot) never show in other modules."""
    token = TokenClient(chain, str(deploy(chain, "MockUSDC", sender=accounts[0]).address))
    escrow = EscrowClient.deploy(chain, token.address, sender=accounts[0])
    requester, provider, stranger = accounts[1:4]
    token.mint(requester, 1_000 * AMOUNT, sender=requester)
    token.approve(escrow.address, MAX_UINT256, sender=requester)
    return Env(chain, token, escrow, requester, provider, stranger)


class Phase(Enum):
    BEFORE_DEADLINE = "before"  # now < deadline
    IN_WINDOW = "window"  # deadline <= now < deadline + window
    AFTER_WINDOW = "after"  # now >= deadline + window


def make(env: Env, state: EscrowState, salt: bytes = b"\x01" * 32) -> EscrowId:
    """An escrow of ``env`` in ``state`` (NONE: the id, never created), before its deadline."""
    if state is EscrowState.NONE:
        return env.escrow.escrow_id(env.requester, salt)
    create = env.escrow.create if state is EscrowState.INITIATED else env.escrow.create_and_fund
    eid = create(
        env.provider,
        AMOUNT,
        deadline=env.chain.now() + TTL,
        dispute_window=WINDOW,
        salt=salt,
        sender=env.requester,
    )
    if state is EscrowState.SETTLED:
        env.escrow.settle(eid, sender=env.requester)
    elif state is EscrowState.CANCELLED:
        env.escrow.cancel(eid, sender=env.provider)
    return eid


def move_to(env: Env, phase: Phase, deadline: int) -> None:
    """Mine a block well inside ``phase`` (the next transaction runs a second or so later)."""
    target = {
        Phase.BEFORE_DEADLINE: None,
        Phase.IN_WINDOW: deadline + WINDOW // 2,
        Phase.AFTER_WINDOW: deadline + WINDOW + 60,
    }[phase]
    if target is not None:
        env.chain.time_travel(target - env.chain.now())


def expected(state: EscrowState, call: str, caller: str, phase: Phase) -> tuple[str, str] | None:
    """The DESIGN table, restated: None when allowed, else (error, which argument)."""
    before = phase is Phase.BEFORE_DEADLINE
    after = phase is Phase.AFTER_WINDOW
    if call == "fund":
        if state is not EscrowState.INITIATED:
            return ("InvalidState", "state")
        if caller != "requester":
            return ("NotParty", "caller")
        return ("TooLate", "deadline") if not before else None
    if call == "settle":
        if state is not EscrowState.FUNDED:
            return ("InvalidState", "state")
        if caller == "requester":
            return None
        if caller == "provider":
            return None if after else ("TooEarly", "window_end")
        return ("NotParty", "caller")
    assert call == "cancel"
    if state is EscrowState.INITIATED:
        return None if caller != "stranger" else ("NotParty", "caller")
    if state is not EscrowState.FUNDED:
        return ("InvalidState", "state")
    if caller == "provider":
        return None
    if caller == "requester":
        if before:
            return ("TooEarly", "deadline")
        return ("TooLate", "window_end") if after else None
    return ("NotParty", "caller")


CALLS = ("fund", "settle", "cancel")
CALLERS = ("requester", "provider", "stranger")
CASES = [
    pytest.param(state, call, caller, phase, id=f"{state.name}-{call}-{caller}-{phase.value}")
    for state in EscrowState
    for phase in Phase
    # Only INITIATED and FUNDED depend on time; the others are checked before the deadline.
    if phase is Phase.BEFORE_DEADLINE or state in (EscrowState.INITIATED, EscrowState.FUNDED)
    for call in CALLS
    for caller in CALLERS
]


@pytest.mark.parametrize(("state", "call", "caller", "phase"), CASES)
def test_state_table(env: Env, state: EscrowState, call: str, caller: str, phase: Phase) -> None:
    eid = make(env, state)
    record = env.escrow.get(eid)
    move_to(env, phase, record.deadline)
    sender = env.party(caller)
    held = env.token.balance_of(env.escrow.address)
    outcome = expected(state, call, caller, phase)

    if outcome is not None:
        name, argument = outcome
        with pytest.raises(errors.ContractRevert) as info:
            getattr(env.escrow, call)(eid, sender=sender)
        assert info.value.name == name
        assert isinstance(info.value, errors.revert_class(name))
        want: dict[str, Any] = {"id": bytes(eid)}
        if argument == "state":
            want["state"] = int(state)
        elif argument == "caller":
            want["caller"] = sender
        else:
            at = record.deadline if argument == "deadline" else record.deadline + WINDOW
            want["readyAt" if name == "TooEarly" else "endedAt"] = at
        assert info.value.arguments == want
        assert env.escrow.get(eid) == record
        assert env.token.balance_of(env.escrow.address) == held
        return

    balances = {who: env.token.balance_of(env.party(who)) for who in CALLERS}
    receipt = getattr(env.escrow, call)(eid, sender=sender)
    assert receipt["status"] == 1
    after = env.escrow.get(eid)
    last = env.escrow.history(eid)[-1]
    moved = {who: env.token.balance_of(env.party(who)) - balances[who] for who in CALLERS}
    escrow_delta = env.token.balance_of(env.escrow.address) - held
    if call == "fund":
        assert after.state is EscrowState.FUNDED
        assert (moved["requester"], escrow_delta) == (-AMOUNT, AMOUNT)
        assert last.event == "EscrowFunded"
    elif call == "settle":
        assert after.state is EscrowState.SETTLED
        assert (moved["provider"], escrow_delta) == (AMOUNT, -AMOUNT)
        assert (last.event, last.paid, last.fee) == ("EscrowSettled", AMOUNT, 0)  # type: ignore[attr-defined]
    else:
        refund = AMOUNT if state is EscrowState.FUNDED else 0
        assert after.state is EscrowState.CANCELLED
        assert (moved["requester"], escrow_delta) == (refund, -refund)
        assert (last.event, last.refunded) == ("EscrowCancelled", refund)  # type: ignore[attr-defined]
    assert last.tx_hash == receipt["transactionHash"].to_0x_hex()
    assert moved["stranger"] == 0
    # Nothing else in the record changes.
    assert (after.requester, after.provider, after.amount, after.deadline) == (
        record.requester,
        record.provider,
        record.amount,
        record.deadline,
    )


@pytest.mark.parametrize("create", ["create", "create_and_fund"])
@pytest.mark.parametrize("state", list(EscrowState), ids=lambda s: s.name)
def test_create_with_a_taken_id_reports_the_existing_escrow(
    env: Env, create: str, state: EscrowState
) -> None:
    salt = b"\x07" * 32
    eid = make(env, state, salt=salt)
    args: dict[str, Any] = {
        "deadline": env.chain.now() + TTL,
        "dispute_window": WINDOW,
        "salt": salt,
        "sender": env.requester,
    }
    if state is EscrowState.NONE:
        assert getattr(env.escrow, create)(env.provider, AMOUNT, **args) == eid
        return
    with pytest.raises(errors.InvalidState) as info:
        getattr(env.escrow, create)(env.provider, AMOUNT, **args)
    assert info.value.arguments == {"id": bytes(eid), "state": int(state)}


def test_same_salt_gives_each_requester_its_own_id(env: Env) -> None:
    salt = keccak(text="shared salt")
    mine = env.escrow.create(
        env.provider,
        AMOUNT,
        deadline=env.chain.now() + TTL,
        dispute_window=0,
        salt=salt,
        sender=env.requester,
    )
    theirs = env.escrow.create(
        env.provider,
        AMOUNT,
        deadline=env.chain.now() + TTL,
        dispute_window=0,
        salt=salt,
        sender=env.stranger,
    )
    assert mine != theirs
    assert env.escrow.get(mine).requester == env.requester
    assert env.escrow.get(theirs).requester == env.stranger
    onchain = env.escrow.contract.functions.escrowId(env.stranger, salt).call()
    assert theirs == onchain == keccak(bytes(12) + bytes.fromhex(env.stranger[2:]) + salt)


# --------------------------------------------------------------------------------------
# create's own checks, straight to the contract (the client would refuse them first)
# --------------------------------------------------------------------------------------

BAD_CREATES = [
    pytest.param({"amount": 0}, "AmountOutOfRange", {"amount": 0}, id="amount-zero"),
    pytest.param({"amount": 2**96}, "AmountOutOfRange", {"amount": 2**96}, id="amount-2^96"),
    pytest.param({"provider": "0x" + "00" * 20}, "InvalidProvider", {}, id="provider-zero"),
    pytest.param({"provider": "requester"}, "InvalidProvider", {}, id="provider-self"),
    # Paid to itself, the escrow would hold tokens that nobody can ever withdraw.
    pytest.param({"provider": "escrow"}, "InvalidProvider", {}, id="provider-escrow"),
    pytest.param({"deadline": "now"}, "InvalidDeadline", {}, id="deadline-now"),
    pytest.param({"deadline": 2**40}, "InvalidDeadline", {}, id="deadline-2^40"),
    pytest.param(
        {"disputeWindow": 2**32},
        "InvalidDisputeWindow",
        {"disputeWindow": 2**32},
        id="window-2^32",
    ),
]


@pytest.mark.parametrize("function", ["create", "createAndFund"])
@pytest.mark.parametrize(("override", "error", "arguments"), BAD_CREATES)
def test_create_rejects_bad_input(
    env: Env, function: str, override: dict[str, Any], error: str, arguments: dict[str, Any]
) -> None:
    now = env.chain.now()
    args: dict[str, Any] = {
        "salt": b"\x02" * 32,
        "provider": env.provider,
        "amount": AMOUNT,
        "deadline": now + TTL,
        "disputeWindow": WINDOW,
        "metadata": b"\x00" * 32,
    }
    args.update(override)
    if args["provider"] == "requester":
        args["provider"] = env.requester
    elif args["provider"] == "escrow":
        args["provider"] = env.escrow.address
    if args["deadline"] == "now":
        args["deadline"] = now  # the transaction runs at or after this
    fn = env.escrow.contract.functions[function](*args.values())
    with pytest.raises(errors.revert_class(error)) as info:
        env.chain.transact(fn, sender=env.requester)
    for key, value in arguments.items():
        assert info.value.arguments[key] == value
    if error == "InvalidProvider":
        assert info.value.arguments["provider"] == args["provider"]
    if error == "InvalidDeadline":
        assert info.value.arguments["deadline"] == args["deadline"]
        assert info.value.arguments["nowTs"] >= now


def test_record_is_two_packed_slots(env: Env) -> None:
    """Slot layout of DESIGN.md: requester|amount(96) and
    provider|deadline(40)|disputeWindow(32)|state(8); nothing else stored per escrow."""
    deadline = env.chain.now() + TTL
    eid = env.escrow.create_and_fund(
        env.provider,
        AMOUNT,
        deadline=deadline,
        dispute_window=2**32 - 2,
        metadata=b"not stored",
        sender=env.requester,
    )
    base = int.from_bytes(keccak(bytes(eid) + (0).to_bytes(32, "big")), "big")  # _escrows: slot 0
    words = [
        int.from_bytes(env.chain.w3.eth.get_storage_at(env.escrow.address, base + i), "big")
        for i in range(3)
    ]
    assert words[0] == int(env.requester, 16) | AMOUNT << 160
    assert words[1] == (
        int(env.provider, 16)
        | deadline << 160
        | (2**32 - 2) << 200
        | int(EscrowState.FUNDED) << 232
    )
    assert words[2] == 0


def test_events_carry_the_record(env: Env) -> None:
    deadline = env.chain.now() + TTL
    eid = env.escrow.create_and_fund(
        env.provider,
        AMOUNT,
        deadline=deadline,
        dispute_window=WINDOW,
        metadata=b"invoice-42",
        sender=env.requester,
    )
    created, funded = env.escrow.history(eid)
    assert created.event == "EscrowCreated" and funded.event == "EscrowFunded"
    assert created.tx_hash == funded.tx_hash == eid.receipt["transactionHash"].to_0x_hex()  # type: ignore[index]
    assert created.log_index < funded.log_index
    assert (
        created.requester,  # type: ignore[attr-defined]
        created.provider,  # type: ignore[attr-defined]
        created.amount,  # type: ignore[attr-defined]
        created.deadline,  # type: ignore[attr-defined]
        created.dispute_window,  # type: ignore[attr-defined]
        created.metadata,  # type: ignore[attr-defined]
    ) == (env.requester, env.provider, AMOUNT, deadline, WINDOW, b"invoice-42".ljust(32, b"\0"))
    # Indexed topics: id, requester, provider.
    log = eid.receipt["logs"][0]  # type: ignore[index]
    assert [bytes(t) for t in log["topics"][1:]] == [
        bytes(eid),
        bytes(12) + bytes.fromhex(env.requester[2:]),
        bytes(12) + bytes.fromhex(env.provider[2:]),
    ]
