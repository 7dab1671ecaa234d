"""Escrow.sol at its time edges: one second before, at, and after the deadline and the end
of the dispute window, each call in a block with exactly that timestamp; and the window
2^32-1 that never ends."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from escrowkit import errors
from escrowkit.contracts.deploy import deploy
from escrowkit.contracts.escrow import NEVER, EscrowClient, EscrowId, EscrowState
from escrowkit.contracts.token import TokenClient
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain

AMOUNT = 3_000_000
TTL = 1_000
WINDOW = 600


@dataclass(frozen=True)
class Env:
    chain: Chain
    token: TokenClient
    escrow: EscrowClient
    requester: str
    provider: str


@pytest.fixture(scope="session")
def env(chain: Chain, accounts: list[str]) -> Env:
    token = TokenClient(chain, str(deploy(chain, "MockUSDC", sender=accounts[0]).address))
    escrow = EscrowClient.deploy(chain, token.address, sender=accounts[0])
    requester, provider = accounts[1:3]
    token.mint(requester, 1_000 * AMOUNT, sender=requester)
    token.approve(escrow.address, MAX_UINT256, sender=requester)
    return Env(chain, token, escrow, requester, provider)


def open_escrow(env: Env, *, funded: bool, window: int = WINDOW) -> tuple[EscrowId, int]:
    deadline = env.chain.now() + TTL
    create = env.escrow.create_and_fund if funded else env.escrow.create
    eid = create(
        env.provider, AMOUNT, deadline=deadline, dispute_window=window, sender=env.requester
    )
    return eid, deadline


# (call, caller, funded first, edge, offset from the edge, expected error or None)
EDGES = [
    # fund: only while now < deadline
    ("fund", "requester", False, "deadline", -1, None),
    ("fund", "requester", False, "deadline", 0, "TooLate"),
    ("fund", "requester", False, "deadline", +1, "TooLate"),
    # requester's cancel of a funded escrow: deadline <= now < deadline + window
    ("cancel", "requester", True, "deadline", -1, "TooEarly"),
    ("cancel", "requester", True, "deadline", 0, None),
    ("cancel", "requester", True, "deadline", +1, None),
    ("cancel", "requester", True, "window_end", -1, None),
    ("cancel", "requester", True, "window_end", 0, "TooLate"),
    ("cancel", "requester", True, "window_end", +1, "TooLate"),
    # provider's settle: now >= deadline + window
    ("settle", "provider", True, "window_end", -1, "TooEarly"),
    ("settle", "provider", True, "window_end", 0, None),
    ("settle", "provider", True, "window_end", +1, None),
    # what does not depend on time, right at the edges
    ("settle", "requester", True, "window_end", 0, None),
    ("cancel", "provider", True, "window_end", 0, None),
    ("cancel", "requester", False, "window_end", +1, None),
]


@pytest.mark.parametrize(
    ("call", "caller", "funded", "edge", "offset", "error"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}-{case[3]}{case[4]:+d}") for case in EDGES],
)
def test_time_edges(
    env: Env,
    call: str,
    caller: str,
    funded: bool,
    edge: str,
    offset: int,
    error: str | None,
) -> None:
    eid, deadline = open_escrow(env, funded=funded)
    edge_at = deadline if edge == "deadline" else deadline + WINDOW
    env.chain.set_next_block_timestamp(edge_at + offset)
    sender = getattr(env, caller)
    if error is None:
        receipt = getattr(env.escrow, call)(eid, sender=sender)
        block = env.chain.w3.eth.get_block(receipt["blockNumber"])
        assert block["timestamp"] == edge_at + offset
        assert env.escrow.get(eid).state in (
            EscrowState.FUNDED,
            EscrowState.SETTLED,
            EscrowState.CANCELLED,
        )
        return
    with pytest.raises(errors.revert_class(error)) as info:
        getattr(env.escrow, call)(eid, sender=sender)
    key = "readyAt" if error == "TooEarly" else "endedAt"
    assert info.value.arguments == {"id": bytes(eid), key: edge_at}


def test_never_ending_window_provider_can_never_settle_alone(env: Env) -> None:
    eid, _ = open_escrow(env, funded=True, window=NEVER)
    assert env.escrow.get(eid).release_at is None
    # Long past deadline + 2^32 - 1 (136 years), still not released to the provider.
    env.chain.time_travel(TTL + 2**32 + 86_400)
    with pytest.raises(errors.TooEarly) as info:
        env.escrow.settle(eid, sender=env.provider)
    assert info.value.arguments["readyAt"] == MAX_UINT256
    # The requester may still reclaim, and could have at any time after the deadline.
    before = env.token.balance_of(env.requester)
    env.escrow.cancel(eid, sender=env.requester)
    assert env.token.balance_of(env.requester) == before + AMOUNT


def test_never_ending_window_requester_reclaims_from_the_deadline(env: Env) -> None:
    eid, deadline = open_escrow(env, funded=True, window=NEVER)
    env.chain.set_next_block_timestamp(deadline - 1)
    with pytest.raises(errors.TooEarly):
        env.escrow.cancel(eid, sender=env.requester)
    env.chain.set_next_block_timestamp(deadline)
    env.escrow.cancel(eid, sender=env.requester)
    assert env.escrow.get(eid).state is EscrowState.CANCELLED


def test_zero_window_hands_over_at_the_deadline(env: Env) -> None:
    """dispute_window 0: the requester's reclaim interval is empty; the provider may settle
    from the deadline on."""
    eid, deadline = open_escrow(env, funded=True, window=0)
    env.chain.set_next_block_timestamp(deadline - 1)
    with pytest.raises(errors.TooEarly):
        env.escrow.settle(eid, sender=env.provider)
    env.chain.set_next_block_timestamp(deadline)
    with pytest.raises(errors.TooLate):
        env.escrow.cancel(eid, sender=env.requester)
    env.escrow.settle(eid, sender=env.provider)
    assert env.escrow.get(eid).state is EscrowState.SETTLED
