"""A real anvil process: revert parity with eth-tester, concurrency, keys, lifecycle."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from escrowkit.build.compiler import Artifact, compile_contracts, load_artifact
from escrowkit.contracts.deploy import deploy
from escrowkit.contracts.token import TokenClient
from escrowkit.errors import ChainError, ConfigurationError, ContractRevert
from escrowkit.evm.chain import Chain
from escrowkit.evm.transports import LeanTransport

pytestmark = pytest.mark.anvil

REVERTER = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract Reverter {
    error Nope(address who, uint256 code, bytes32 tag);
    uint256 public counter;
    function custom(uint256 code) external { counter++; revert Nope(msg.sender, code, "tag"); }
    function message() external { counter++; require(counter == 0, "counter must be zero"); }
    function panic(uint256 d) external { counter = 10 / d; }
    function bare() external { counter++; revert(); }
    function viewCustom() external view returns (uint256) { revert Nope(msg.sender, 7, "v"); }
}
"""


@pytest.fixture(scope="module")
def reverter_artifact(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    src = tmp_path_factory.mktemp("reverter")
    (src / "Reverter.sol").write_text(REVERTER)
    return compile_contracts(src)["Reverter"]


@pytest.fixture(scope="module")
def anvil() -> Iterator[Chain]:
    with Chain.anvil() as chain:
        yield chain


def outcomes(chain: Chain, artifact: Artifact) -> list[tuple[str, str, dict[str, Any], bool]]:
    """For each revert: (label, error name, arguments without the sender, tx hash set?)."""
    contract = deploy(chain, "Reverter", artifact=artifact)
    sender = chain.accounts[0]
    f = contract.functions
    attempts = [
        ("custom/estimate", lambda: chain.transact(f.custom(5), sender=sender)),
        ("custom/mined", lambda: chain.transact(f.custom(5), sender=sender, gas=200_000)),
        ("message/estimate", lambda: chain.transact(f.message(), sender=sender)),
        ("message/mined", lambda: chain.transact(f.message(), sender=sender, gas=200_000)),
        ("panic/estimate", lambda: chain.transact(f.panic(0), sender=sender)),
        ("panic/mined", lambda: chain.transact(f.panic(0), sender=sender, gas=200_000)),
        ("bare/estimate", lambda: chain.transact(f.bare(), sender=sender)),
        ("bare/mined", lambda: chain.transact(f.bare(), sender=sender, gas=200_000)),
        ("custom/call", lambda: chain.call(f.viewCustom(), sender=sender)),
        ("panic/call", lambda: chain.call(f.panic(0), sender=sender)),
    ]
    seen = []
    for label, attempt in attempts:
        with pytest.raises(ContractRevert) as info:
            attempt()
        exc = info.value
        args = {k: v for k, v in exc.arguments.items() if k != "who"}
        seen.append((label, type(exc).__name__, args, exc.tx_hash is not None))
    return seen


def test_every_kind_of_revert_is_the_same_exception_on_both_backends(
    anvil: Chain, reverter_artifact: Artifact
) -> None:
    on_anvil = outcomes(anvil, reverter_artifact)
    on_tester = outcomes(Chain.embedded(), reverter_artifact)
    assert on_anvil == on_tester
    by_label = {label: (name, args, mined) for label, name, args, mined in on_anvil}
    assert by_label["custom/estimate"] == (
        "Nope",
        {"code": 5, "tag": b"tag".ljust(32, b"\0")},
        False,
    )
    assert by_label["custom/mined"][2] is True
    assert by_label["message/mined"] == ("Error", {"message": "counter must be zero"}, True)
    assert by_label["panic/estimate"] == ("Panic", {"code": 0x12}, False)
    assert by_label["bare/mined"] == ("ContractRevert", {}, True)


def test_32_threads_sending_from_one_key_leave_no_gaps(anvil: Chain) -> None:
    owner = anvil.accounts[0]
    token = TokenClient(anvil, deploy(anvil, "MockUSDC", sender=owner).address)
    start = anvil.w3.eth.get_transaction_count(owner)
    receipts: list[Any] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for _ in range(5):
                receipt = token.mint(anvil.accounts[1 + n % 9], 1, sender=owner)
                with lock:
                    receipts.append(receipt)
        except BaseException as exc:  # collected and re-raised in the main thread
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(r["status"] == 1 for r in receipts)
    nonces = sorted(anvil.w3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts)
    assert nonces == list(range(start, start + 160))
    assert anvil.w3.eth.get_transaction_count(owner) == start + 160
    assert token.total_supply() == 160


def test_a_nonce_taken_behind_our_back_is_healed(anvil: Chain) -> None:
    """The node refuses the cached nonce ("nonce too low"): the manager reads the node's
    pending count and sends again, so the spend does not fail for it."""
    owner = anvil.accounts[2]
    token = TokenClient(anvil, deploy(anvil, "MockUSDC", sender=owner).address)
    token.mint(owner, 1, sender=owner)  # the manager now caches owner's next nonce
    # Someone else uses the same key behind our back: our cached nonce is now stale.
    signer = Account.from_key("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
    raw = signer.sign_transaction(
        {
            "to": owner,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 1,
            "nonce": anvil.w3.eth.get_transaction_count(owner),
            "chainId": anvil.chain_id,
        }
    )
    sent = anvil.w3.eth.send_raw_transaction(raw.raw_transaction)
    anvil.w3.eth.wait_for_transaction_receipt(sent)
    receipt = token.mint(owner, 1, sender=owner)  # refused once, sent again with the next
    assert receipt["status"] == 1
    token.mint(owner, 1, sender=owner)
    assert token.balance_of(owner) == 3


@pytest.mark.parametrize(
    "answer", ["already known", "transaction already imported"], ids=["geth", "anvil"]
)
def test_a_send_the_node_already_knows_is_sent(
    anvil: Chain, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    """The transport sends a request again when its connection died unanswered; if the
    node had taken the transaction, the repeat is answered "already known" (geth) or
    "transaction already imported" (anvil, before it mined the first). That transaction
    is sent: the receipt comes and the nonce stays right."""
    from escrowkit.evm.http import RpcError

    assert isinstance(anvil.transport, LeanTransport)
    owner = anvil.accounts[3]
    token = TokenClient(anvil, deploy(anvil, "MockUSDC", sender=owner).address)
    request = anvil.transport.provider.request

    def answered_twice(method: str, params: list[Any]) -> Any:
        result = request(method, params)
        if method == "eth_sendRawTransaction":
            raise RpcError(method, {"code": -32003, "message": answer})
        return result

    monkeypatch.setattr(anvil.transport.provider, "request", answered_twice)
    receipt = token.mint(owner, 5, sender=owner)
    assert receipt["status"] == 1
    monkeypatch.undo()
    token.mint(owner, 1, sender=owner)  # the next nonce, no gap
    assert token.balance_of(owner) == 6


def test_anvil_is_stopped_even_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError, match="boom"), Chain.anvil() as chain:
        process = chain._process
        assert process is not None and process.poll() is None
        raise RuntimeError("boom")
    assert process.poll() is not None


def test_connect_with_a_keystore_file(anvil: Chain, tmp_path: Path) -> None:
    account = Account.create()
    keystore = tmp_path / "key.json"
    import json

    keystore.write_text(json.dumps(Account.encrypt(account.key, "s3cret")))
    anvil.transport.rpc("anvil_setBalance", [account.address, hex(10**20)])
    url = anvil.w3.provider.endpoint_uri  # type: ignore[attr-defined]

    with pytest.raises(ConfigurationError, match="wrong password"):
        Chain.connect(url, account=keystore, password="nope")
    with pytest.raises(ConfigurationError, match="needs a password"):
        Chain.connect(url, account=keystore)

    chain = Chain.connect(url, account=keystore, password="s3cret")
    assert chain.accounts == [account.address]
    token = deploy(chain, "MockUSDC")
    assert chain.w3.eth.get_transaction_count(account.address) == 1
    assert len(chain.w3.eth.get_code(token.address)) > 0


def test_connect_to_nothing_is_a_clear_error() -> None:
    from escrowkit.evm import free_port

    port = free_port()
    with pytest.raises(ChainError, match="cannot reach") as caught:
        Chain.connect(f"http://user:pw@127.0.0.1:{port}/v3/secret-key-path?apikey=KEY2")
    message = str(caught.value)
    # requests repeats the path ("with url: /v3/..."): the API key must not survive it.
    assert f"127.0.0.1:{port}/…" in message
    for secret in ("secret-key-path", "KEY2", "user:pw"):
        assert secret not in message


def _shape(value: Any) -> Any:
    """A value with its type at every level, so equal shapes mean identical receipts."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return (type(value).__name__, {k: _shape(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_shape(v) for v in value])
    return (type(value).__name__, value)


def test_lean_receipts_are_exactly_what_web3_returns(
    anvil: Chain, reverter_artifact: Artifact
) -> None:
    """The lean path formats receipts itself (escrowkit.evm.receipts): deployments, transfers with
    logs and mined failures must come out as web3's get_transaction_receipt does."""
    assert isinstance(anvil.transport, LeanTransport)  # the lean path is the one under test
    sender, other = anvil.accounts[0], anvil.accounts[1]
    artifact = load_artifact("MockUSDC")
    factory = anvil.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    deployed = anvil.transact(factory.constructor(), sender=sender)
    token = TokenClient(anvil, deployed["contractAddress"])
    reverter = deploy(anvil, "Reverter", artifact=reverter_artifact)
    receipts = [
        deployed,
        token.mint(sender, 10**9, sender=sender),
        token.transfer(other, 5, sender=sender),
        token.approve(other, 7, sender=sender),
    ]
    with pytest.raises(ContractRevert) as failed:
        anvil.transact(reverter.functions.bare(), sender=sender, gas=100_000)
    assert failed.value.tx_hash is not None
    hashes = [r["transactionHash"].to_0x_hex() for r in receipts] + [failed.value.tx_hash]
    for tx_hash in hashes:
        lean = anvil.wait_for_receipt(tx_hash)
        assert _shape(lean) == _shape(anvil.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
    assert deployed["contractAddress"] == token.address
    assert receipts[2]["logs"][0]["topics"][0].hex().startswith("ddf252ad")  # Transfer
