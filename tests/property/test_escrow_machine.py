"""A hypothesis state machine against the deployed Escrow, with a Python model.

Random parties, amounts, windows, time jumps and every call (create, createAndFund, fund,
settle, cancel, withdrawOwed), on a token that can blocklist any party, through an escrow
that takes a 2.5 % fee. The model predicts each call's outcome (the new state and where the
money goes, or the named error); after every step the chain must agree:

- the escrow's token balance == sum of FUNDED amounts + sum of what it owes;
- every party's token balance and ``owed`` match the model;
- the escrow a step touched has exactly the model's record (final states never change;
  every record is compared again when the example ends).

Each example runs in a chain snapshot that is reverted afterwards. The default run is
small (about half a minute) and draws the same examples every time; ``pytest -m slow``
runs a heavier one with new examples each time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from machine_thread import run_machine

from escrowkit import errors
from escrowkit.contracts.escrow import NEVER, EscrowClient, EscrowId, EscrowRecord, EscrowState
from escrowkit.contracts.token import TokenClient
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain
from hostile import deploy_hostile, hostile_artifact

if TYPE_CHECKING:
    from web3.contract import Contract

FEE_BPS = 250
#: Outcomes within this many seconds of a time edge are not predicted: the clock first
#: jumps past the edge, so the gas estimate and the mined block agree on either backend.
SLACK = 5
START_BALANCE = 10**15


@dataclass(frozen=True)
class Money:
    """Where the tokens are: in the escrow, with each account, owed to each account."""

    held: int
    balances: dict[str, int]
    owed: dict[str, int]


@dataclass(frozen=True)
class World:
    chain: Chain
    token: TokenClient
    escrow: EscrowClient
    lens: Contract  # EscrowLens: every balance, every debt and one record in one call
    parties: tuple[str, ...]
    fee_recipient: str

    @property
    def accounts(self) -> tuple[str, ...]:
        return (*self.parties, self.fee_recipient)

    def read(self, eid: bytes = bytes(32)) -> tuple[Money, EscrowRecord]:
        """The escrow's balance, each account's balance and debt, and record ``eid``."""
        accounts = list(self.accounts)
        held, balances, owed, record = self.chain.call(
            self.lens.functions.read(self.escrow.address, accounts, eid)
        )
        requester, amount, provider, deadline, window, state = record
        money = Money(
            int(held),
            dict(zip(accounts, balances, strict=True)),
            dict(zip(accounts, owed, strict=True)),
        )
        return money, EscrowRecord(
            EscrowId(eid), requester, provider, amount, deadline, window, EscrowState(state)
        )


@pytest.fixture(scope="session")
def world(chain: Chain, accounts: list[str]) -> World:
    """A blocklisting token and a fee-taking Escrow of this module's own, set up once."""
    name = "BlocklistToken"
    token = TokenClient(
        chain,
        str(deploy_hostile(chain, name, sender=accounts[0]).address),
        abi=hostile_artifact(name).abi,
    )
    fee_recipient = accounts[5]
    escrow = EscrowClient.deploy(
        chain, token.address, fee_bps=FEE_BPS, fee_recipient=fee_recipient, sender=accounts[0]
    )
    lens = deploy_hostile(chain, "EscrowLens", sender=accounts[0])
    parties = tuple(accounts[1:5])
    for party in parties:
        token.mint(party, START_BALANCE, sender=party)
        token.approve(escrow.address, MAX_UINT256, sender=party)
    return World(chain, token, escrow, lens, parties, fee_recipient)


@dataclass(frozen=True)
class Expect:
    """A predicted revert: the error's name and the arguments it must carry."""

    error: str
    arguments: dict[str, Any]


#: Who makes a call on an escrow: its parties more often than a stranger.
WHO = st.sampled_from(["requester", "requester", "provider", "provider", "stranger"])


class EscrowMachine(RuleBasedStateMachine):
    world: World  # set by the test before the run

    def __init__(self) -> None:
        super().__init__()
        self.snapshot = self.world.chain.snapshot()
        self.accounts = self.world.accounts
        self.records: dict[bytes, EscrowRecord] = {}
        money, _ = self.world.read()
        self.held, self.balances, self.owed = money.held, money.balances, money.owed
        self.blocked: set[str] = set()
        self.touched: bytes | None = None

    def teardown(self) -> None:
        try:
            for eid, record in self.records.items():
                assert self.world.escrow.get(eid) == record
        finally:
            self.world.chain.revert(self.snapshot)

    # ---- helpers -----------------------------------------------------------------------

    def pin_clock(self, *edges: int | None) -> int:
        """Fix the next block's time, first jumping past any edge too close to call.

        Returns the timestamp the next transaction will have. eth-tester stamps a new
        block with max(latest + 1, wall clock), so after a snapshot revert the chain can
        lag the wall clock: the pin is never earlier than the wall clock."""
        chain = self.world.chain
        while True:
            now = chain.now()
            t = max(now, int(time.time())) + 1
            close = [e for e in edges if e is not None and now < e <= t + SLACK]
            if not close:
                break
            self.jump_to(max(close))
        chain.set_next_block_timestamp(t)
        return t

    def jump_to(self, target: int) -> None:
        """Mine a block at ``target``, or at the wall clock if that is later (eth-tester
        cannot stamp a block before it)."""
        chain = self.world.chain
        chain.time_travel(max(target, int(time.time()) + 1) - chain.now())

    def attempt(self, name: str, expect: Expect | None, call: Any) -> bool:
        """Run ``call``; it must revert as ``expect`` says, or succeed when that is None."""
        event(f"{name}: {expect.error if expect else 'ok'}")
        if expect is None:
            call()  # Chain.transact raises unless the receipt says success
            return True
        with pytest.raises(errors.ContractRevert) as info:
            call()
        assert info.value.name == expect.error, info.value
        for key, value in expect.arguments.items():
            assert info.value.arguments[key] == value, (key, info.value)
        return False

    def pay(self, account: str, amount: int) -> None:
        """The escrow pushes ``amount`` to ``account``: paid, or owed if it is blocked."""
        if account in self.blocked:
            event("payment deferred")
            self.owed[account] += amount  # stays in the escrow, as a debt
        else:
            self.held -= amount
            self.balances[account] += amount

    def role(self, record: EscrowRecord, who: str) -> str:
        if who == "requester":
            return record.requester
        if who == "provider":
            return record.provider
        return next(p for p in self.world.parties if p not in (record.requester, record.provider))

    def pick(self, data: st.DataObject, *useful: EscrowState) -> bytes:
        """An escrow to call: mostly one in a state where the call can succeed (as a
        handler would steer it), sometimes any escrow at all."""
        matching = [eid for eid, r in self.records.items() if r.state in useful]
        if matching and data.draw(st.integers(0, 3), label="steer"):
            return data.draw(st.sampled_from(matching), label="escrow")
        return data.draw(st.sampled_from(list(self.records)), label="escrow")

    def set_blocked(self, account: str, blocked: bool) -> None:
        fn = self.world.token.contract.functions.setBlocked(account, blocked)
        self.world.chain.transact(fn, sender=self.world.parties[0])
        (self.blocked.add if blocked else self.blocked.discard)(account)

    def window_end(self, record: EscrowRecord) -> int | None:
        return None if record.dispute_window == NEVER else record.deadline + record.dispute_window

    # ---- rules -------------------------------------------------------------------------

    @initialize(data=st.data())
    def open_some(self, data: st.DataObject) -> None:
        """Start every example with one to three funded escrows between random parties, and
        maybe one account blocked (so that payments get deferred and withdrawn)."""
        for _ in range(data.draw(st.integers(1, 3), label="escrows")):
            requester, provider = data.draw(
                st.lists(st.integers(0, 3), min_size=2, max_size=2, unique=True), label="parties"
            )
            self.create(
                requester,
                provider,
                amount=data.draw(st.integers(1, 10**9), label="amount"),
                ttl=data.draw(st.sampled_from([30, 300, 3_600]), label="ttl"),
                window=data.draw(st.sampled_from([0, 60, 3_600, NEVER]), label="window"),
                salt=data.draw(st.binary(min_size=32, max_size=32), label="salt"),
                funded=True,
            )
        if data.draw(st.booleans(), label="block someone"):
            self.block(data.draw(st.integers(0, 4), label="account"))

    @rule(
        requester=st.integers(0, 3),
        provider=st.integers(0, 3),
        amount=st.one_of(st.integers(1, 10**6), st.integers(1, 10**12)),
        ttl=st.sampled_from([30, 300, 3_600]) | st.integers(SLACK + 5, 5_000),
        window=st.sampled_from([0, 1, 60, 3_600, NEVER]),
        salt=st.sampled_from([b"\x00" * 32, b"\x01" * 32]) | st.binary(min_size=32, max_size=32),
        funded=st.booleans(),
    )
    def create(
        self,
        requester: int,
        provider: int,
        amount: int,
        ttl: int,
        window: int,
        salt: bytes,
        funded: bool,
    ) -> None:
        w = self.world
        req, prov = w.parties[requester], w.parties[provider]
        t = self.pin_clock()
        eid = w.escrow.escrow_id(req, salt)
        existing = self.records.get(eid)
        expect: Expect | None = None
        if existing is not None:
            expect = Expect("InvalidState", {"id": bytes(eid), "state": existing.state})
        elif req == prov:
            expect = Expect("InvalidProvider", {"provider": prov})
        elif funded and req in self.blocked:
            expect = Expect("TokenTransferFailed", {"to": w.escrow.address, "amount": amount})
        method = w.escrow.create_and_fund if funded else w.escrow.create

        def call() -> Any:
            # Straight to the contract for a self-provider: the client refuses it earlier.
            if req == prov:
                fn = w.escrow.contract.functions.create(
                    salt, prov, amount, t + ttl, window, b"\x00" * 32
                )
                return w.chain.transact(fn, sender=req)
            return method(
                prov, amount, deadline=t + ttl, dispute_window=window, salt=salt, sender=req
            )

        if not self.attempt("createAndFund" if funded else "create", expect, call):
            return
        state = EscrowState.FUNDED if funded else EscrowState.INITIATED
        self.records[eid] = EscrowRecord(eid, req, prov, amount, t + ttl, window, state)  # type: ignore[arg-type]
        if funded:
            self.balances[req] -= amount
            self.held += amount
        self.touched = eid

    @precondition(lambda self: bool(self.records))
    @rule(data=st.data(), who=WHO)
    def fund(self, data: st.DataObject, who: str) -> None:
        eid = self.pick(data, EscrowState.INITIATED)
        record = self.records[eid]
        caller = self.role(record, who)
        t = self.pin_clock(record.deadline)
        expect: Expect | None = None
        if record.state is not EscrowState.INITIATED:
            expect = Expect("InvalidState", {"state": record.state})
        elif caller != record.requester:
            expect = Expect("NotParty", {"caller": caller})
        elif t >= record.deadline:
            expect = Expect("TooLate", {"endedAt": record.deadline})
        elif caller in self.blocked:
            expect = Expect("TokenTransferFailed", {"amount": record.amount})
        if self.attempt("fund", expect, lambda: self.world.escrow.fund(eid, sender=caller)):
            self.records[eid] = replace(record, state=EscrowState.FUNDED)
            self.balances[caller] -= record.amount
            self.held += record.amount
        self.touched = eid

    @precondition(lambda self: bool(self.records))
    @rule(data=st.data(), who=WHO)
    def settle(self, data: st.DataObject, who: str) -> None:
        eid = self.pick(data, EscrowState.FUNDED)
        record = self.records[eid]
        caller = self.role(record, who)
        end = self.window_end(record)
        t = self.pin_clock(end)
        expect: Expect | None = None
        if record.state is not EscrowState.FUNDED:
            expect = Expect("InvalidState", {"state": record.state})
        elif caller not in (record.requester, record.provider):
            expect = Expect("NotParty", {"caller": caller})
        elif caller == record.provider and (end is None or t < end):
            expect = Expect("TooEarly", {"readyAt": MAX_UINT256 if end is None else end})
        if self.attempt("settle", expect, lambda: self.world.escrow.settle(eid, sender=caller)):
            self.records[eid] = replace(record, state=EscrowState.SETTLED)
            fee = record.amount * FEE_BPS // 10_000
            self.pay(record.provider, record.amount - fee)
            self.pay(self.world.fee_recipient, fee)
        self.touched = eid

    @precondition(lambda self: bool(self.records))
    @rule(data=st.data(), who=WHO)
    def cancel(self, data: st.DataObject, who: str) -> None:
        eid = self.pick(data, EscrowState.INITIATED, EscrowState.FUNDED)
        record = self.records[eid]
        caller = self.role(record, who)
        end = self.window_end(record)
        t = self.pin_clock(record.deadline, end)
        expect: Expect | None = None
        parties = (record.requester, record.provider)
        if record.state not in (EscrowState.INITIATED, EscrowState.FUNDED):
            expect = Expect("InvalidState", {"state": record.state})
        elif caller not in parties:
            expect = Expect("NotParty", {"caller": caller})
        elif record.state is EscrowState.FUNDED and caller == record.requester:
            if t < record.deadline:
                expect = Expect("TooEarly", {"readyAt": record.deadline})
            elif end is not None and t >= end:
                expect = Expect("TooLate", {"endedAt": end})
        if self.attempt("cancel", expect, lambda: self.world.escrow.cancel(eid, sender=caller)):
            self.records[eid] = replace(record, state=EscrowState.CANCELLED)
            if record.state is EscrowState.FUNDED:
                self.pay(record.requester, record.amount)
        self.touched = eid

    @rule(data=st.data(), to=st.integers(0, 4))
    def withdraw_owed(self, data: st.DataObject, to: int) -> None:
        # Someone who is owed, if anyone is; otherwise NothingOwed is the expected answer.
        creditors = [a for a in self.accounts if self.owed[a]]
        owner = data.draw(st.sampled_from(creditors or self.accounts), label="owner")
        destination = self.accounts[to]
        owed = self.owed[owner]
        expect: Expect | None = None
        if owed == 0:
            expect = Expect("NothingOwed", {"account": owner})
        elif destination in self.blocked:
            expect = Expect("TokenTransferFailed", {"to": destination, "amount": owed})
        call = lambda: self.world.escrow.withdraw_owed(destination, sender=owner)  # noqa: E731
        if self.attempt("withdrawOwed", expect, call):
            self.owed[owner] = 0
            self.held -= owed
            self.balances[destination] += owed

    @rule(account=st.integers(0, 4))
    def block(self, account: int) -> None:
        self.set_blocked(self.accounts[account], True)

    @precondition(lambda self: bool(self.blocked))
    @rule(data=st.data())
    def unblock(self, data: st.DataObject) -> None:
        self.set_blocked(data.draw(st.sampled_from(sorted(self.blocked)), label="account"), False)

    @rule(seconds=st.sampled_from([1, 59, 600, 3_600, 86_400]) | st.integers(1, 10_000))
    def wait(self, seconds: int) -> None:
        self.jump_to(self.world.chain.now() + seconds)

    # ---- invariants --------------------------------------------------------------------

    @invariant()
    def chain_agrees_with_the_model(self) -> None:
        funded = sum(r.amount for r in self.records.values() if r.state is EscrowState.FUNDED)
        assert self.held == funded + sum(self.owed.values())
        total = len(self.world.parties) * START_BALANCE
        assert sum(self.balances.values()) + self.held == total
        money, record = self.world.read(self.touched or bytes(32))
        assert money == Money(self.held, self.balances, self.owed)
        if self.touched is not None:
            assert record == self.records[self.touched]
            self.touched = None


DEFAULT = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    # The same examples every run: the default suite takes the same time and fails the
    # same way twice. The heavy run (-m slow, in CI) draws new ones each time.
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
HEAVY = settings(DEFAULT, max_examples=300, stateful_step_count=60, derandomize=False)


def run(world: World, config: settings) -> None:
    run_machine(type("EscrowMachineRun", (EscrowMachine,), {"world": world}), config)


def test_escrow_matches_its_model(world: World, chain: Chain) -> None:
    run(world, DEFAULT)


@pytest.mark.slow
def test_escrow_matches_its_model_heavy(world: World, chain: Chain) -> None:
    run(world, HEAVY)
