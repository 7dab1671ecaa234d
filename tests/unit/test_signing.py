"""The fast signer must produce exactly eth-account's bytes, or nodes would see another
transaction (or another sender) than the one checked."""

from __future__ import annotations

from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from escrowkit.evm.signing import Signer

UINT = st.integers(min_value=0, max_value=2**256 - 1)


@settings(max_examples=200, deadline=None)
@given(
    key=st.integers(min_value=1, max_value=2**255),
    chain_id=st.integers(min_value=1, max_value=2**63),
    nonce=st.integers(min_value=0, max_value=2**64 - 2),
    priority=UINT,
    max_fee=UINT,
    gas=st.integers(min_value=21_000, max_value=2**63),
    to=st.binary(min_size=20, max_size=20),
    value=UINT,
    data=st.binary(max_size=300),
)
def test_same_bytes_and_hash_as_eth_account(
    key: int,
    chain_id: int,
    nonce: int,
    priority: int,
    max_fee: int,
    gas: int,
    to: bytes,
    value: int,
    data: bytes,
) -> None:
    account = Account.from_key(key.to_bytes(32, "big"))
    tx = {
        "chainId": chain_id,
        "nonce": nonce,
        "maxPriorityFeePerGas": priority,
        "maxFeePerGas": max_fee,
        "gas": gas,
        "to": Account.from_key(b"\x01" * 32).address if not any(to) else "0x" + to.hex(),
        "value": value,
        "data": "0x" + data.hex(),
    }
    expected = account.sign_transaction({**tx, "to": _checksum(tx["to"])})
    raw, tx_hash = Signer(account.key).sign(tx)
    assert raw == bytes(expected.raw_transaction)
    assert tx_hash == expected.hash.to_0x_hex()
    assert Account.recover_transaction(raw) == account.address


def _checksum(address: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(address)
