"""BudgetPool yield: contribute, distribute pro rata in O(1), claim; withdraw within bounds.

Rounding always goes against the claimant: members never claim more, together, than was
distributed, and yield that is owed to them is never spendable or withdrawable.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import pytest
from web3.logs import DISCARD

from escrowkit import errors
from escrowkit.contracts.escrow import EscrowClient
from escrowkit.contracts.pool import BudgetPoolClient
from escrowkit.contracts.token import TokenClient
from escrowkit.core.units import MAX_UINT256, format_units, parse_units
from hostile import deploy_hostile, hostile_artifact

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

    from escrowkit.evm.chain import Chain

USDC = 10**6


@pytest.fixture
def members(
    pool: BudgetPoolClient, usdc: TokenClient, accounts: list[ChecksumAddress]
) -> list[ChecksumAddress]:
    """Five accounts holding 10,000 USDC each, with the pool approved."""
    chosen = accounts[5:10]
    for member in chosen:
        usdc.mint(member, 10_000 * USDC, sender=member)
        usdc.approve(pool.address, MAX_UINT256, sender=member)
    return chosen


def test_180_usdc_over_1200_450_380_200(
    pool: BudgetPoolClient, usdc: TokenClient, members: list[ChecksumAddress]
) -> None:
    contributions = [parse_units(v, 6) for v in ("1200", "450", "380", "200")]
    for member, amount in zip(members, contributions, strict=False):  # the fifth distributes
        pool.contribute(amount, sender=member)
    assert pool.total_contributions() == parse_units("2230", 6)

    distributor = members[4]
    pool.distribute(parse_units("180", 6), sender=distributor)
    total = sum(contributions)
    expected = ["96.86", "36.32", "30.67", "16.14"]
    paid = []
    for member, amount, shown in zip(members[:4], contributions, expected, strict=True):
        exact = Fraction(amount * parse_units("180", 6), total)
        claimable = pool.claimable(member)
        assert abs(claimable - exact) <= 1, (member, claimable, exact)
        assert claimable <= exact
        assert format_units(claimable, 6, places=2) == shown
        before = usdc.balance_of(member)
        pool.claim(sender=member)
        assert usdc.balance_of(member) - before == claimable
        assert pool.claimable(member) == 0
        paid.append(claimable)
    assert sum(paid) <= parse_units("180", 6)
    assert pool.unclaimed_yield() == parse_units("180", 6) - sum(paid)
    assert pool.total_distributed() == parse_units("180", 6)
    with pytest.raises(errors.NothingToClaim) as info:
        pool.claim(sender=members[0])
    assert info.value.arguments == {"member": members[0]}


def test_distribute_costs_the_same_for_one_member_or_many(
    pool: BudgetPoolClient, members: list[ChecksumAddress]
) -> None:
    """O(1): a distribution moves an index, it never walks the members."""
    distributor = members[4]
    pool.contribute(100 * USDC, sender=members[0])
    pool.distribute(USDC, sender=distributor)  # the index's first write (zero to non-zero)
    alone = int(pool.distribute(USDC, sender=distributor)["gasUsed"])
    for member in members[1:4]:
        pool.contribute(100 * USDC, sender=member)
    many = int(pool.distribute(USDC, sender=distributor)["gasUsed"])
    assert many == alone
    assert pool.claimable(members[3]) == USDC // 4


def test_yield_follows_contributions_over_time(
    pool: BudgetPoolClient, members: list[ChecksumAddress]
) -> None:
    a, b, distributor = members[0], members[1], members[4]
    pool.contribute(100 * USDC, sender=a)
    pool.distribute(10 * USDC, sender=distributor)  # all to a
    pool.contribute(300 * USDC, sender=b)  # b joins after: nothing of the first 10
    pool.distribute(40 * USDC, sender=distributor)  # 10 to a, 30 to b
    pool.contribute(100 * USDC, sender=a)  # a now 200 of 500; its 20 so far stays owed
    pool.distribute(50 * USDC, sender=distributor)  # 20 to a, 30 to b
    assert pool.contribution_of(a) == 200 * USDC
    assert pool.claimable(a) == 40 * USDC
    assert pool.claimable(b) == 60 * USDC


def test_awkward_numbers_never_pay_out_more_than_was_distributed(
    pool: BudgetPoolClient, members: list[ChecksumAddress]
) -> None:
    shares = {members[0]: 7, members[1]: 11, members[2]: 13_000_003}
    for member, amount in shares.items():
        pool.contribute(amount, sender=member)
    exact = dict.fromkeys(shares, Fraction(0))
    total = sum(shares.values())
    distributed = 0
    for amount in (1, 2, 3, 5, 999_999, 1_000_001, 31, 17):
        pool.distribute(amount, sender=members[4])
        distributed += amount
        for member, share in shares.items():
            exact[member] += Fraction(amount * share, total)
    claimable = {m: pool.claimable(m) for m in shares}
    for member in shares:
        # Rounded down once over the whole history, not once per distribution.
        assert exact[member] - 1 < claimable[member] <= exact[member]
    assert sum(claimable.values()) <= distributed == pool.unclaimed_yield()


def test_unclaimed_yield_is_never_spendable(
    pool: BudgetPoolClient,
    chain: Chain,
    usdc: TokenClient,
    members: list[ChecksumAddress],
    accounts: list[ChecksumAddress],
) -> None:
    owner, agent, provider = accounts[0], accounts[1], accounts[3]
    member, distributor = members[0], members[4]
    pool.contribute(500 * USDC, sender=member)
    pool.distribute(80 * USDC, sender=distributor)
    assert usdc.balance_of(pool.address) == 580 * USDC
    assert pool.spendable() == 500 * USDC
    assert pool.unclaimed_yield() == 80 * USDC

    pool.set_agent(agent, 1_000 * USDC, 1_000 * USDC, 86_400, sender=owner)
    deadline = chain.now() + 3_600
    with pytest.raises(errors.InsufficientSpendable) as info:
        pool.spend(
            agent, provider, 500 * USDC + 1, deadline=deadline, dispute_window=60, sender=agent
        )
    assert info.value.arguments == {"spendable": 500 * USDC, "needed": 500 * USDC + 1}
    pool.spend(agent, provider, 200 * USDC, deadline=deadline, dispute_window=60, sender=agent)

    with pytest.raises(errors.InsufficientSpendable):
        pool.withdraw(owner, 300 * USDC + 1, sender=owner)
    before = usdc.balance_of(owner)
    receipt = pool.withdraw(owner, 300 * USDC, sender=owner)
    assert usdc.balance_of(owner) - before == 300 * USDC
    events = pool.contract.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
    assert events[0]["args"]["amount"] == 300 * USDC
    assert pool.spendable() == 0
    # What is left is exactly the members' yield, and they can take it.
    pool.claim(sender=member)
    assert usdc.balance_of(pool.address) == 0


def test_distribute_needs_contributions(
    pool: BudgetPoolClient, members: list[ChecksumAddress]
) -> None:
    with pytest.raises(errors.NoContributions):
        pool.distribute(USDC, sender=members[0])


def test_distributions_too_small_to_share_are_refused(
    pool: BudgetPoolClient, members: list[ChecksumAddress], usdc: TokenClient
) -> None:
    """A distribution whose index step rounds to zero would reserve yield nobody can claim."""
    whale = members[0]
    usdc.mint(whale, 2 * 10**18, sender=whale)
    pool.contribute(2 * 10**18, sender=whale)
    with pytest.raises(errors.InvalidAmount):
        pool.distribute(1, sender=members[1])
    pool.distribute(2, sender=members[1])


def test_zero_amounts_are_refused_on_chain(
    pool: BudgetPoolClient, accounts: list[ChecksumAddress]
) -> None:
    owner = accounts[0]
    for fn in (
        pool.contract.functions.contribute(0),
        pool.contract.functions.distribute(0),
        pool.contract.functions.withdraw(owner, 0),
    ):
        with pytest.raises(errors.InvalidAmount):
            pool.chain.transact(fn, sender=owner)
    zero = "0x" + "00" * 20
    with pytest.raises(errors.ZeroAddress):
        pool.chain.transact(pool.contract.functions.withdraw(zero, 1), sender=owner)


def test_a_fee_on_transfer_token_cannot_fake_a_contribution(
    chain: Chain, accounts: list[ChecksumAddress]
) -> None:
    owner, member = accounts[0], accounts[1]
    contract = deploy_hostile(chain, "FeeOnTransferToken", sender=owner)
    token = TokenClient(
        chain, str(contract.address), abi=hostile_artifact("FeeOnTransferToken").abi
    )
    escrow = EscrowClient.deploy(chain, token.address, sender=owner)
    pool = BudgetPoolClient.deploy(chain, escrow.address, sender=owner)
    token.mint(member, 1_000 * USDC, sender=member)
    token.approve(pool.address, MAX_UINT256, sender=member)
    with pytest.raises(errors.UnsupportedToken) as info:
        pool.contribute(100 * USDC, sender=member)
    assert info.value.arguments["expected"] == 100 * USDC
    assert info.value.arguments["received"] < 100 * USDC


def test_a_missing_allowance_surfaces_the_tokens_own_error(
    pool: BudgetPoolClient, usdc: TokenClient, accounts: list[ChecksumAddress]
) -> None:
    member = accounts[8]
    usdc.mint(member, USDC, sender=member)
    with pytest.raises(errors.ERC20InsufficientAllowance) as info:
        pool.contribute(USDC, sender=member)
    assert info.value.arguments["spender"] == pool.address
