"""MockUSDC: six decimals, open mint, and EIP-2612 permit (an allowance from a signature,
so the owner needs no ether)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from escrowkit import errors
from escrowkit.contracts.token import TokenClient
from escrowkit.evm.chain import Chain


def permit_signature(
    chain: Chain,
    token: TokenClient,
    owner: LocalAccount,
    spender: str,
    value: int,
    deadline: int,
    nonce: int | None = None,
) -> Any:
    if nonce is None:
        nonce = int(chain.call(token.contract.functions.nonces(owner.address)))
    return owner.sign_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ],
            },
            "primaryType": "Permit",
            "domain": {
                "name": "Mock USD Coin",
                "version": "1",
                "chainId": chain.chain_id,
                "verifyingContract": token.address,
            },
            "message": {
                "owner": owner.address,
                "spender": spender,
                "value": value,
                "nonce": nonce,
                "deadline": deadline,
            },
        }
    )


def submit(
    chain: Chain,
    token: TokenClient,
    owner: str,
    spender: str,
    value: int,
    deadline: int,
    signed: Any,
    sender: str,
) -> None:
    fn = token.contract.functions.permit(
        owner,
        spender,
        value,
        deadline,
        signed.v,
        signed.r.to_bytes(32, "big"),
        signed.s.to_bytes(32, "big"),
    )
    chain.transact(fn, sender=sender)


def test_metadata_and_mint(usdc: TokenClient, accounts: list[str]) -> None:
    assert (usdc.decimals, usdc.symbol) == (6, "USDC")
    usdc.mint(accounts[4], usdc.units("12.5"), sender=accounts[7])  # anyone may mint
    assert usdc.balance_of(accounts[4]) == 12_500_000
    assert usdc.format(usdc.balance_of(accounts[4])) == "12.50 USDC"


def test_permit_sets_an_allowance_the_owner_pays_no_gas_for(
    chain: Chain, usdc: TokenClient, accounts: list[str]
) -> None:
    owner, spender = Account.create(), accounts[2]
    deadline = chain.now() + 3_600
    signed = permit_signature(chain, usdc, owner, spender, 5_000_000, deadline)
    submit(chain, usdc, owner.address, spender, 5_000_000, deadline, signed, sender=spender)
    assert usdc.allowance(owner.address, spender) == 5_000_000
    assert chain.call(usdc.contract.functions.nonces(owner.address)) == 1
    assert chain.w3.eth.get_balance(owner.address) == 0

    # The same signature cannot be used twice: the nonce moved on.
    with pytest.raises(errors.ERC2612InvalidSigner):
        submit(chain, usdc, owner.address, spender, 5_000_000, deadline, signed, sender=spender)


def test_expired_or_forged_permits_are_refused(
    chain: Chain, usdc: TokenClient, accounts: list[str]
) -> None:
    owner, forger, spender = Account.create(), Account.create(), accounts[2]
    past = chain.now() - 1
    late = permit_signature(chain, usdc, owner, spender, 1, past)
    with pytest.raises(errors.ERC2612ExpiredSignature) as info:
        submit(chain, usdc, owner.address, spender, 1, past, late, sender=spender)
    assert info.value.arguments == {"deadline": past}

    deadline = chain.now() + 3_600
    forged = permit_signature(chain, usdc, forger, spender, 1, deadline, nonce=0)
    with pytest.raises(errors.ERC2612InvalidSigner) as refused:
        submit(chain, usdc, owner.address, spender, 1, deadline, forged, sender=spender)
    assert refused.value.arguments["owner"] == owner.address
    assert usdc.allowance(owner.address, spender) == 0
