"""A hypothesis state machine against a deployed BudgetPool, with a Python model.

Random agents and limits, spends by agents, operators and strangers, settles, cancels
(through the pool and by the provider on the Escrow), reconciles, time jumps across window
edges, pause, cap changes, withdrawals, contributions, distributions and claims. The model
predicts each call's outcome (the named error, or the new counters); after every step the
chain must agree, and:

- every agent's window spend <= the period limit in force when it last spent in that
  window (the owner may lower a limit below what is already spent: spending then stops
  until the window resets, but nothing already spent is undone);
- net spend <= the budget cap (the machine never lowers the cap below net spend);
- pool balance + escrowed == deposits - withdrawals - settled payouts (claims are
  withdrawals of yield);
- claims + claimable <= distributed; each member gets its exact share rounded down, at
  most one base unit less.

Each example runs in a chain snapshot that is reverted afterwards. The default run is
small (about half a minute) and draws the same examples every time; ``pytest -m slow``
runs a heavier one with new examples each time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
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
from escrowkit.contracts.deploy import deploy
from escrowkit.contracts.escrow import EscrowClient, EscrowState
from escrowkit.contracts.pool import UNLIMITED_BUDGET_CAP, BudgetPoolClient
from escrowkit.contracts.token import TokenClient
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain

FUNDING = 2_000
MEMBER_BALANCE = 10**9
PERIODS = (60, 300, 3_600, 86_400)
#: Outcomes within this many seconds of a time edge are not predicted: the clock first
#: jumps past the edge, so the gas estimate and the mined block agree on either backend.
SLACK = 3
PRECISION = 10**18


@dataclass(frozen=True)
class World:
    chain: Chain
    token: TokenClient
    escrow: EscrowClient
    pool: BudgetPoolClient
    owner: str
    agents: tuple[str, ...]
    operator: str
    provider: str
    members: tuple[str, ...]
    guardian: str


@pytest.fixture(scope="session")
def world(chain: Chain, accounts: list[str]) -> World:
    """A token, Escrow and pool of this module's own (nothing leaks into other tests)."""
    owner = accounts[0]
    token = TokenClient(chain, str(deploy(chain, "MockUSDC", sender=owner).address))
    escrow = EscrowClient.deploy(chain, token.address, sender=owner)
    pool = BudgetPoolClient.deploy(chain, escrow.address, sender=owner)
    world = World(
        chain=chain,
        token=token,
        escrow=escrow,
        pool=pool,
        owner=owner,
        agents=tuple(accounts[1:4]),
        operator=accounts[4],
        provider=accounts[5],
        members=tuple(accounts[6:9]),
        guardian=accounts[9],
    )
    token.mint(pool.address, FUNDING, sender=owner)
    pool.set_operator(world.operator, True, sender=owner)
    pool.set_guardian(world.guardian, sender=owner)
    for member in world.members:
        token.mint(member, MEMBER_BALANCE, sender=member)
        token.approve(pool.address, MAX_UINT256, sender=member)
    return world


@dataclass
class Spend:
    agent: str
    amount: int
    window_start: int
    deadline: int
    end: int
    state: EscrowState = EscrowState.FUNDED
    credited: bool = False


@dataclass
class Member:
    contribution: int = 0
    exact: Fraction = field(default_factory=Fraction)  # exact share of all yield so far
    claimed: int = 0


class PoolMachine(RuleBasedStateMachine):
    world: World  # set by the test before the run

    def __init__(self) -> None:
        super().__init__()
        w = self.world
        self.snapshot = w.chain.snapshot()
        # Run the chain's clock ahead of the wall clock: eth-tester's next block is never
        # earlier than the wall clock, and every time in an example must follow from the
        # snapshot alone for hypothesis to replay it.
        w.chain.time_travel(3_600)
        self.limits: dict[str, tuple[int, int, int]] = {}  # per_tx, period_limit, period
        self.usage: dict[str, tuple[int, int]] = {}  # window_start, window_spent
        #: window_start and period limit of each agent's latest successful spend
        self.ceiling: dict[str, tuple[int, int]] = {}
        self.spends: dict[bytes, Spend] = {}
        self.net_spent = 0
        self.cap = UNLIMITED_BUDGET_CAP
        self.paused = False
        self.balance = w.token.balance_of(w.pool.address)
        self.deposits = self.balance
        self.withdrawals = 0
        self.settled = 0
        self.members = {m: Member() for m in w.members}
        self.distributed = 0
        self.salts = 0

    def teardown(self) -> None:
        self.world.chain.revert(self.snapshot)

    # ---- helpers -----------------------------------------------------------------------

    def pin_clock(self) -> int:
        """Jump past any window or escrow edge too close to call; fix the next block's time."""
        chain = self.world.chain
        while True:
            now = chain.now()
            edges = [now - now % p + p for _, _, p in self.limits.values()]
            for s in self.spends.values():
                if s.state is EscrowState.FUNDED:
                    edges += [s.deadline, s.end]
            close = [e for e in edges if now < e <= now + SLACK]
            if not close:
                break
            chain.time_travel(max(close) - now)
        chain.set_next_block_timestamp(now + 1)
        return now + 1

    def attempt(self, expected: str | None, call: Any) -> bool:
        """Run ``call``: it must revert with the ``expected`` error, or succeed when None."""
        if expected is None:
            call()
            return True
        with pytest.raises(errors.ContractRevert) as info:
            call()
        assert info.value.name == expected, info.value
        return False

    def window(self, agent: str, t: int) -> tuple[int, int]:
        """(window start, spent in it) for ``agent`` at time ``t``, as the contract sees it."""
        period = self.limits[agent][2]
        start = t - t % period
        stored_start, spent = self.usage.get(agent, (0, 0))
        return start, spent if stored_start == start else 0

    def spendable(self) -> int:
        return max(self.balance - self.unclaimed(), 0)

    def unclaimed(self) -> int:
        return self.distributed - sum(m.claimed for m in self.members.values())

    def credit(self, spend: Spend, t: int) -> None:
        spend.credited = True
        self.net_spent -= spend.amount
        limits = self.limits.get(spend.agent)
        stored_start, spent = self.usage.get(spend.agent, (0, 0))
        same_window = limits is not None and t - t % limits[2] == spend.window_start
        if same_window and stored_start == spend.window_start:
            self.usage[spend.agent] = (stored_start, max(spent - spend.amount, 0))

    def pick(self, data: st.DataObject, state: EscrowState | None = None) -> bytes:
        ids = sorted(i for i, s in self.spends.items() if state is None or s.state is state)
        return data.draw(st.sampled_from(ids))

    def has(self, state: EscrowState | None = None) -> bool:
        return any(state is None or s.state is state for s in self.spends.values())

    # ---- admin -------------------------------------------------------------------------

    limits_strategy = st.tuples(st.integers(1, 100), st.integers(1, 300), st.sampled_from(PERIODS))

    @initialize(limits=st.lists(st.none() | limits_strategy, min_size=3, max_size=3))
    def add_agents(self, limits: list[tuple[int, int, int] | None]) -> None:
        for agent, agent_limits in zip(self.world.agents, limits, strict=True):
            if agent_limits is not None:
                self.set_agent_limits(agent, agent_limits)

    def set_agent_limits(self, agent: str, limits: tuple[int, int, int]) -> None:
        self.world.pool.set_agent(agent, *limits, sender=self.world.owner)
        self.limits[agent] = limits

    @rule(agent=st.integers(0, 2), limits=limits_strategy)
    def set_agent(self, agent: int, limits: tuple[int, int, int]) -> None:
        self.pin_clock()
        self.set_agent_limits(self.world.agents[agent], limits)

    @rule(agent=st.integers(0, 2))
    def remove_agent(self, agent: int) -> None:
        address = self.world.agents[agent]
        self.pin_clock()
        expected = None if address in self.limits else "UnknownAgent"
        if self.attempt(
            expected, lambda: self.world.pool.remove_agent(address, sender=self.world.owner)
        ):
            del self.limits[address]

    @rule(headroom=st.none() | st.integers(0, 400))
    def set_cap(self, headroom: int | None) -> None:
        cap = None if headroom is None else self.net_spent + headroom
        self.pin_clock()
        self.world.pool.set_budget_cap(cap, sender=self.world.owner)
        self.cap = UNLIMITED_BUDGET_CAP if cap is None else cap

    @rule(by_guardian=st.booleans())
    def pause(self, by_guardian: bool) -> None:
        sender = self.world.guardian if by_guardian else self.world.owner
        self.pin_clock()
        if self.attempt(
            "EnforcedPause" if self.paused else None, lambda: self.world.pool.pause(sender=sender)
        ):
            self.paused = True

    @rule()
    def unpause(self) -> None:
        self.pin_clock()
        if self.attempt(
            None if self.paused else "ExpectedPause",
            lambda: self.world.pool.unpause(sender=self.world.owner),
        ):
            self.paused = False

    @rule(amount=st.integers(1, 1_500))
    def withdraw(self, amount: int) -> None:
        w = self.world
        self.pin_clock()
        expected = "InsufficientSpendable" if amount > self.spendable() else None
        if self.attempt(expected, lambda: w.pool.withdraw(w.owner, amount, sender=w.owner)):
            self.balance -= amount
            self.withdrawals += amount

    # ---- spending ----------------------------------------------------------------------

    @rule(
        agent=st.integers(0, 2),
        amount=st.integers(1, 120),
        by=st.sampled_from(["agent", "operator", "operator", "stranger"]),
        ttl=st.integers(10, 2_000),
        dispute_window=st.sampled_from([0, 60, 3_600]),
    )
    def spend(self, agent: int, amount: int, by: str, ttl: int, dispute_window: int) -> None:
        w = self.world
        address = w.agents[agent]
        sender = {"agent": address, "operator": w.operator, "stranger": w.provider}[by]
        t = self.pin_clock()
        expected: str | None = None
        start = 0
        if self.paused:
            expected = "EnforcedPause"
        elif by == "stranger":
            expected = "UnauthorizedSpender"
        elif address not in self.limits:
            expected = "UnknownAgent"
        else:
            per_tx, period_limit, _ = self.limits[address]
            start, used = self.window(address, t)
            if amount > per_tx:
                expected = "PerTxLimitExceeded"
            elif used + amount > period_limit:
                expected = "PeriodLimitExceeded"
            elif self.net_spent + amount > self.cap:
                expected = "BudgetCapExceeded"
            elif amount > self.spendable():
                expected = "InsufficientSpendable"
        self.salts += 1
        salt = self.salts.to_bytes(32, "big")

        def call() -> Any:
            return w.pool.spend(
                address,
                w.provider,
                amount,
                deadline=t + ttl,
                dispute_window=dispute_window,
                salt=salt,
                sender=sender,
            )

        if self.attempt(expected, call):
            escrow_id = bytes(w.pool.escrow_id(address, salt))
            self.spends[escrow_id] = Spend(
                address, amount, start, t + ttl, t + ttl + dispute_window
            )
            _, used = self.window(address, t)
            self.usage[address] = (start, used + amount)
            self.ceiling[address] = (start, self.limits[address][1])
            self.net_spent += amount
            self.balance -= amount

    @precondition(lambda self: self.has(EscrowState.FUNDED))
    @rule(data=st.data(), by=st.sampled_from(["agent", "operator", "owner"]))
    def settle(self, data: st.DataObject, by: str) -> None:
        escrow_id = self.pick(data, EscrowState.FUNDED)
        spend = self.spends[escrow_id]
        w = self.world
        sender = {"agent": spend.agent, "operator": w.operator, "owner": w.owner}[by]
        self.pin_clock()
        w.pool.settle(escrow_id, sender=sender)
        spend.state = EscrowState.SETTLED
        self.settled += spend.amount

    @precondition(lambda self: self.has(EscrowState.FUNDED))
    @rule(data=st.data(), wait=st.booleans())
    def cancel(self, data: st.DataObject, wait: bool) -> None:
        escrow_id = self.pick(data, EscrowState.FUNDED)
        spend = self.spends[escrow_id]
        w = self.world
        if wait and w.chain.now() < spend.deadline:
            w.chain.time_travel(spend.deadline - w.chain.now())
        t = self.pin_clock()
        expected = None
        if t < spend.deadline:
            expected = "TooEarly"
        elif t >= spend.end:
            expected = "TooLate"
        if self.attempt(expected, lambda: w.pool.cancel(escrow_id, sender=w.operator)):
            spend.state = EscrowState.CANCELLED
            self.credit(spend, t)
            self.balance += spend.amount

    @precondition(lambda self: self.has(EscrowState.FUNDED))
    @rule(data=st.data())
    def provider_cancels(self, data: st.DataObject) -> None:
        escrow_id = self.pick(data, EscrowState.FUNDED)
        self.pin_clock()
        self.world.escrow.cancel(escrow_id, sender=self.world.provider)
        spend = self.spends[escrow_id]
        spend.state = EscrowState.CANCELLED
        self.balance += spend.amount  # refunded to the pool, not yet credited

    @precondition(lambda self: self.has())
    @rule(data=st.data())
    def reconcile(self, data: st.DataObject) -> None:
        escrow_id = self.pick(data)
        spend = self.spends[escrow_id]
        t = self.pin_clock()
        expected = None
        if spend.credited:
            expected = "AlreadyRefunded"
        elif spend.state is not EscrowState.CANCELLED:
            expected = "NotCancelled"
        call = lambda: self.world.pool.reconcile(escrow_id, sender=self.world.guardian)  # noqa: E731
        if self.attempt(expected, call):
            self.credit(spend, t)

    @rule(seconds=st.sampled_from([1, 30, 60, 300, 3_600, 86_400]) | st.integers(1, 5_000))
    def wait(self, seconds: int) -> None:
        self.world.chain.time_travel(seconds)

    # ---- yield -------------------------------------------------------------------------

    @rule(member=st.integers(0, 2), amount=st.integers(1, 500))
    def contribute(self, member: int, amount: int) -> None:
        address = self.world.members[member]
        self.pin_clock()
        self.world.pool.contribute(amount, sender=address)
        self.members[address].contribution += amount
        self.balance += amount
        self.deposits += amount

    @rule(member=st.integers(0, 2), amount=st.integers(1, 200))
    def distribute(self, member: int, amount: int) -> None:
        address = self.world.members[member]
        total = sum(m.contribution for m in self.members.values())
        self.pin_clock()
        expected = None
        if total == 0:
            expected = "NoContributions"
        elif amount * PRECISION // total == 0:
            expected = "InvalidAmount"
        if self.attempt(expected, lambda: self.world.pool.distribute(amount, sender=address)):
            for m in self.members.values():
                m.exact += Fraction(amount * m.contribution, total)
            self.distributed += amount
            self.balance += amount
            self.deposits += amount

    @rule(member=st.integers(0, 2))
    def claim(self, member: int) -> None:
        address = self.world.members[member]
        pool, token = self.world.pool, self.world.token
        claimable = pool.claimable(address)
        before = token.balance_of(address)
        self.pin_clock()
        expected = "NothingToClaim" if claimable == 0 else None
        if self.attempt(expected, lambda: pool.claim(sender=address)):
            assert token.balance_of(address) - before == claimable
            self.members[address].claimed += claimable
            self.balance -= claimable
            self.withdrawals += claimable

    # ---- invariants --------------------------------------------------------------------

    @invariant()
    def agents_within_limits(self) -> None:
        pool, now = self.world.pool, self.world.chain.now()
        for agent in self.world.agents:
            view = pool.agent(agent)
            if agent not in self.limits:
                assert not view.is_agent
                continue
            assert (view.per_tx_limit, view.period_limit, view.period) == self.limits[agent]
            assert (view.window_start, view.window_spent) == self.window(agent, now)
            if view.window_spent:
                # Usage only grows by spends, each checked against the limit of its time.
                start, limit = self.ceiling[agent]
                assert start == view.window_start
                assert view.window_spent <= limit

    @invariant()
    def net_spend_within_cap(self) -> None:
        assert self.world.pool.net_spent() == self.net_spent <= self.cap

    @invariant()
    def money_is_accounted_for(self) -> None:
        w = self.world
        escrowed = sum(s.amount for s in self.spends.values() if s.state is EscrowState.FUNDED)
        assert w.token.balance_of(w.pool.address) == self.balance
        assert w.token.balance_of(w.escrow.address) == escrowed
        assert w.token.balance_of(w.provider) == self.settled
        assert self.balance + escrowed == self.deposits - self.withdrawals - self.settled

    @invariant()
    def claims_never_exceed_distributions(self) -> None:
        pool = self.world.pool
        assert pool.unclaimed_yield() == self.unclaimed()
        owed = 0
        for address, member in self.members.items():
            claimable = pool.claimable(address)
            earned = member.claimed + claimable
            assert member.exact - 1 <= earned <= member.exact, address
            owed += claimable
        claimed = sum(m.claimed for m in self.members.values())
        assert claimed + owed <= self.distributed


DEFAULT = settings(
    max_examples=8,
    stateful_step_count=25,
    deadline=None,
    # The same examples every run: the default suite takes the same time and fails the
    # same way twice. The heavy run (-m slow, in CI) draws new ones each time.
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
HEAVY = settings(DEFAULT, max_examples=60, stateful_step_count=40, derandomize=False)


def run(world: World, config: settings) -> None:
    run_machine(type("PoolMachineRun", (PoolMachine,), {"world": world}), config)


def test_a_lowered_limit_is_not_an_overspend(world: World, chain: Chain) -> None:
    """A step sequence the machine can draw: spend 80 of 100, then the owner lowers the
    limit to 50 in the same window. The window holds 80 > 50 and that is correct (spending
    stops; nothing is undone), so the invariants must accept it."""
    machine = type("PoolMachineSteps", (PoolMachine,), {"world": world})()
    try:
        machine.add_agents(limits=[(100, 100, 86_400), None, None])
        machine.spend(agent=0, amount=80, by="agent", ttl=1_000, dispute_window=60)
        machine.set_agent(agent=0, limits=(100, 50, 86_400))
        machine.spend(agent=0, amount=1, by="operator", ttl=1_000, dispute_window=60)
        machine.agents_within_limits()
        machine.net_spend_within_cap()
        machine.money_is_accounted_for()
    finally:
        machine.teardown()


def test_pool_matches_its_model(world: World, chain: Chain) -> None:
    run(world, DEFAULT)


@pytest.mark.slow
def test_pool_matches_its_model_heavy(world: World, chain: Chain) -> None:
    run(world, HEAVY)
