"""BudgetPoolClient: malformed input is refused before anything is sent; typed reads; deploy."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from escrowkit.contracts.deploy import Deployments
from escrowkit.contracts.escrow import EscrowId
from escrowkit.contracts.pool import AgentLimits, BudgetPoolClient
from escrowkit.errors import InvalidRequest

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

    from escrowkit.contracts.escrow import EscrowClient
    from escrowkit.evm.chain import Chain

USDC = 10**6
BAD_CHECKSUM = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cf"
ZERO = "0x" + "00" * 20


def _spend(**overrides: Any) -> Callable[[BudgetPoolClient, list[ChecksumAddress]], Any]:
    def call(pool: BudgetPoolClient, accounts: list[ChecksumAddress]) -> Any:
        args: dict[str, Any] = {
            "agent": accounts[1],
            "provider": accounts[3],
            "amount": USDC,
            "deadline": 2**39,
            "dispute_window": 3_600,
            "sender": accounts[1],
        }
        args.update(overrides)
        return pool.spend(args.pop("agent"), args.pop("provider"), args.pop("amount"), **args)

    return call


INVALID: dict[str, Callable[[BudgetPoolClient, list[ChecksumAddress]], Any]] = {
    "spend-float": _spend(amount=1.5),
    "spend-float-whole": _spend(amount=1.0),
    "spend-decimal": _spend(amount=Decimal(1)),
    "spend-str": _spend(amount="1"),
    "spend-bool": _spend(amount=True),
    "spend-zero": _spend(amount=0),
    "spend-negative": _spend(amount=-1),
    "spend-2**96": _spend(amount=2**96),
    "spend-bad-checksum": _spend(provider=BAD_CHECKSUM),
    "spend-zero-provider": _spend(provider=ZERO),
    "spend-short-address": _spend(provider="0x1234"),
    "spend-agent-not-address": _spend(agent=12345),
    "spend-deadline-float": _spend(deadline=2.0**39),
    "spend-deadline-2**40": _spend(deadline=2**40),
    "spend-window-negative": _spend(dispute_window=-1),
    "spend-window-2**32": _spend(dispute_window=2**32),
    "spend-salt-31-bytes": _spend(salt=b"\x01" * 31),
    "spend-salt-not-hex": _spend(salt="0x" + "zz" * 32),
    "spend-metadata-33-bytes": _spend(metadata=b"\x01" * 33),
    "spend-metadata-str": _spend(metadata="invoice"),
    "set-agent-float-limit": lambda p, a: p.set_agent(a[1], 1.0, 1, 60, sender=a[0]),  # type: ignore[arg-type]
    "set-agent-limit-2**96": lambda p, a: p.set_agent(a[1], 1, 2**96, 60, sender=a[0]),
    "set-agent-period-0": lambda p, a: p.set_agent(a[1], 1, 1, 0, sender=a[0]),
    "set-agent-period-2**32": lambda p, a: p.set_agent(a[1], 1, 1, 2**32, sender=a[0]),
    "set-operator-not-bool": lambda p, a: p.set_operator(a[2], 1, sender=a[0]),  # type: ignore[arg-type]
    "set-guardian-zero": lambda p, a: p.set_guardian(ZERO, sender=a[0]),
    "set-budget-cap-negative": lambda p, a: p.set_budget_cap(-1, sender=a[0]),
    "set-budget-cap-float": lambda p, a: p.set_budget_cap(1e6, sender=a[0]),  # type: ignore[arg-type]
    "withdraw-zero-address": lambda p, a: p.withdraw(ZERO, 1, sender=a[0]),
    "withdraw-zero": lambda p, a: p.withdraw(a[0], 0, sender=a[0]),
    "contribute-float": lambda p, a: p.contribute(0.5, sender=a[0]),  # type: ignore[arg-type]
    "distribute-2**128": lambda p, a: p.distribute(2**128, sender=a[0]),
    "settle-short-id": lambda p, a: p.settle(b"\x01" * 31, sender=a[0]),
    "cancel-id-not-hex": lambda p, a: p.cancel("0x" + "zz" * 32, sender=a[0]),
    "reconcile-int-id": lambda p, a: p.reconcile(1, sender=a[0]),  # type: ignore[arg-type]
    "transfer-ownership-bad": lambda p, a: p.transfer_ownership(BAD_CHECKSUM, sender=a[0]),
    "agent-bad-address": lambda p, a: p.agent("not an address"),
    "escrow-id-short-salt": lambda p, a: p.escrow_id(a[1], b"\x01"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_malformed_input_is_refused_before_sending(
    pool: BudgetPoolClient, chain: Chain, accounts: list[ChecksumAddress], case: str
) -> None:
    nonces = [chain.w3.eth.get_transaction_count(a) for a in accounts[:3]]
    with pytest.raises(InvalidRequest):
        INVALID[case](pool, accounts)
    assert [chain.w3.eth.get_transaction_count(a) for a in accounts[:3]] == nonces


def test_invalid_request_is_also_a_value_error(
    pool: BudgetPoolClient, accounts: list[ChecksumAddress]
) -> None:
    with pytest.raises(ValueError, match="wrong checksum"):
        pool.is_operator(BAD_CHECKSUM)


def test_lower_case_addresses_and_hex_strings_are_accepted(
    pool: BudgetPoolClient, accounts: list[ChecksumAddress]
) -> None:
    lower = accounts[1].lower()
    salt = "0x" + "ab" * 32
    assert pool.escrow_id(lower, salt) == pool.escrow_id(accounts[1], bytes.fromhex("ab" * 32))
    assert not pool.is_operator(lower)


def test_escrow_id_matches_the_contracts(
    pool: BudgetPoolClient, escrow: EscrowClient, accounts: list[ChecksumAddress]
) -> None:
    for n in range(3):
        agent, salt = accounts[n], bytes([n]) * 32
        local = pool.escrow_id(agent, salt)
        assert isinstance(local, EscrowId)
        assert local == pool.contract.functions.escrowId(agent, salt).call()
        # The Escrow's own id for the pool as requester and the agent-namespaced salt.
        namespaced = keccak(encode(["address", "bytes32"], [agent, salt]))
        assert local == escrow.contract.functions.escrowId(pool.address, namespaced).call()


def test_agent_limits_are_frozen_and_typed(
    pool: BudgetPoolClient, accounts: list[ChecksumAddress]
) -> None:
    pool.set_agent(accounts[1], 5 * USDC, 20 * USDC, 3_600, sender=accounts[0])
    limits = pool.agent(accounts[1])
    assert isinstance(limits, AgentLimits)
    assert (limits.per_tx_limit, limits.period_limit, limits.period) == (5 * USDC, 20 * USDC, 3600)
    assert limits.window_start % 3_600 == 0
    assert limits.window_remaining == 20 * USDC
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.window_spent = 1  # type: ignore[misc]


def test_deploy_with_a_separate_owner_and_a_manifest(
    chain: Chain, escrow: EscrowClient, accounts: list[ChecksumAddress]
) -> None:
    manifest = Deployments(chain.chain_id)
    pool = BudgetPoolClient.deploy(
        chain, escrow.address, owner=accounts[4], sender=accounts[0], deployments=manifest
    )
    assert pool.owner() == accounts[4]
    assert pool.guardian() == accounts[4]
    again = BudgetPoolClient.deploy(
        chain, escrow.address, owner=accounts[4], sender=accounts[0], deployments=manifest
    )
    assert again.address == pool.address
    default_owner = BudgetPoolClient.deploy(chain, escrow.address, sender=accounts[2])
    assert default_owner.owner() == accounts[2]
    assert repr(pool) == f"BudgetPoolClient({pool.address})"
