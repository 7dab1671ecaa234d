"""Chain behaviour that must be identical on eth-tester and anvil (run with --chain anvil too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from escrowkit import errors
from escrowkit.build.compiler import load_artifact
from escrowkit.contracts.deploy import Deployments, deploy
from escrowkit.contracts.token import TokenClient
from escrowkit.errors import ConfigurationError, InvalidRequest, TransactionTimeout
from escrowkit.evm.chain import Chain

ZERO = "0x0000000000000000000000000000000000000000"


def test_accounts_can_sign_and_hold_ether(chain: Chain) -> None:
    assert len(chain.accounts) == 10
    assert all(chain.can_sign(a) for a in chain.accounts)
    assert chain.w3.eth.get_balance(chain.accounts[9]) > 10**21


def test_transact_returns_a_successful_receipt_with_buffered_gas(
    chain: Chain, usdc: TokenClient
) -> None:
    owner, alice = chain.accounts[:2]
    receipt = usdc.mint(alice, 5_000_000, sender=owner)
    assert receipt["status"] == 1
    tx = chain.w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["gas"] > receipt["gasUsed"]
    assert usdc.balance_of(alice) == 5_000_000


def test_revert_at_estimation_is_named_and_has_no_tx_hash(chain: Chain, usdc: TokenClient) -> None:
    alice, bob = chain.accounts[1:3]
    with pytest.raises(errors.ERC20InsufficientBalance) as info:
        usdc.transfer(bob, 1, sender=alice)
    exc = info.value
    assert exc.name == "ERC20InsufficientBalance"
    assert exc.arguments == {"sender": alice, "balance": 0, "needed": 1}
    assert exc.tx_hash is None
    assert "transfer" in str(exc)


def test_revert_of_a_mined_transaction_is_named_and_has_its_hash(
    chain: Chain, usdc: TokenClient
) -> None:
    alice, bob = chain.accounts[1:3]
    fn = usdc.contract.functions.transfer(bob, 7)
    with pytest.raises(errors.ERC20InsufficientBalance) as info:
        chain.transact(fn, sender=alice, gas=100_000)
    assert info.value.tx_hash is not None
    receipt = chain.w3.eth.get_transaction_receipt(info.value.tx_hash)  # type: ignore[arg-type]
    assert receipt["status"] == 0
    assert info.value.arguments["needed"] == 7
    # The nonce was consumed by the failed transaction; the next send still works.
    usdc.mint(alice, 1, sender=alice)


def test_call_reverts_are_named(chain: Chain, usdc: TokenClient) -> None:
    fn = usdc.contract.functions.transfer(ZERO, 1)
    with pytest.raises(errors.ERC20InvalidReceiver) as info:
        chain.call(fn, sender=chain.accounts[0])
    assert info.value.arguments == {"receiver": ZERO}


def test_unknown_sender_is_a_configuration_error(chain: Chain, usdc: TokenClient) -> None:
    stranger = "0x000000000000000000000000000000000000dEaD"
    with pytest.raises(ConfigurationError, match="no key"):
        usdc.mint(stranger, 1, sender=stranger)


def test_time_travel_moves_the_clock_forward(chain: Chain) -> None:
    before = chain.now()
    after = chain.time_travel(3_600)
    assert after == before + 3_600 == chain.now()
    with pytest.raises(InvalidRequest):
        chain.time_travel(0)
    with pytest.raises(InvalidRequest):
        chain.time_travel(1.5)  # type: ignore[arg-type]


def test_next_block_timestamp_is_exact(chain: Chain, usdc: TokenClient) -> None:
    target = chain.now() + 1_000
    chain.set_next_block_timestamp(target)
    receipt = usdc.mint(chain.accounts[1], 1, sender=chain.accounts[0])
    assert chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] == target
    with pytest.raises(InvalidRequest, match="not after"):
        chain.set_next_block_timestamp(target)


def test_snapshot_revert_restores_state_and_nonces(chain: Chain, usdc: TokenClient) -> None:
    owner, alice = chain.accounts[:2]
    snapshot = chain.snapshot()
    clock = chain.now()
    usdc.mint(alice, 10, sender=owner)
    chain.time_travel(500)
    chain.revert(snapshot)
    assert usdc.balance_of(alice) == 0
    assert chain.now() == clock
    # The nonce manager resynced: sending after a revert works.
    usdc.mint(alice, 3, sender=owner)
    assert usdc.balance_of(alice) == 3


def test_missing_receipt_times_out_with_the_hash(chain: Chain) -> None:
    fake = "0x" + "ab" * 32
    with pytest.raises(TransactionTimeout) as info:
        chain.wait_for_receipt(fake, timeout=0.2)
    assert info.value.tx_hash == fake


def test_deploy_manifest_reuses_unless_forced_or_changed(chain: Chain, tmp_path: Path) -> None:
    path = tmp_path / f"{chain.chain_id}.json"
    manifest = Deployments(chain.chain_id, path)
    first = deploy(chain, "MockUSDC", deployments=manifest)
    again = deploy(chain, "MockUSDC", deployments=Deployments(chain.chain_id, path))
    assert again.address == first.address

    data = json.loads(path.read_text())
    entry = data["contracts"]["MockUSDC"]
    assert data["chainId"] == chain.chain_id
    assert entry["address"] == first.address
    assert entry["artifact_hash"] == load_artifact("MockUSDC").hash
    assert entry["tx_hash"].startswith("0x") and entry["block"] > 0

    forced = deploy(chain, "MockUSDC", deployments=manifest, force=True)
    assert forced.address != first.address

    # A changed artifact (different code) is deployed again.
    artifact = load_artifact("MockUSDC")
    changed = type(artifact)(
        name=artifact.name,
        source=artifact.source,
        abi=artifact.abi,
        bytecode=artifact.bytecode + "00",
        deployed_bytecode=artifact.deployed_bytecode,
        compiler=artifact.compiler,
    )
    redeployed = deploy(chain, "MockUSDC", artifact=changed, deployments=manifest)
    assert redeployed.address not in {first.address, forced.address}


def test_manifest_refuses_another_chains_file(chain: Chain, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"chainId": chain.chain_id + 1, "contracts": {}}))
    with pytest.raises(ConfigurationError, match="is for chain"):
        Deployments(chain.chain_id, path)


def test_manifest_forgets_contracts_whose_code_is_gone(chain: Chain) -> None:
    manifest = Deployments(chain.chain_id)
    snapshot = chain.snapshot()
    gone = deploy(chain, "MockUSDC", deployments=manifest)
    chain.revert(snapshot)
    fresh = deploy(chain, "MockUSDC", deployments=manifest)
    assert len(chain.w3.eth.get_code(fresh.address)) > 0
    assert manifest.get("MockUSDC").address == fresh.address  # type: ignore[union-attr]
    del gone


def test_a_chain_without_signers_cannot_deploy(chain: Chain) -> None:
    from escrowkit import deploy_stack
    from escrowkit.contracts.pool import BudgetPoolClient

    read_only = Chain(chain.w3, [], backend=chain.backend)
    with pytest.raises(ConfigurationError, match="no signing account"):
        deploy_stack(read_only)
    with pytest.raises(ConfigurationError, match="no signing account"):
        deploy(read_only, "MockUSDC")
    with pytest.raises(ConfigurationError, match="no signing account"):
        BudgetPoolClient.deploy(read_only, chain.accounts[0])


def test_deploy_stack_force_redeploys_all_three_even_for_an_existing_token(
    chain: Chain, tmp_path: Path
) -> None:
    from escrowkit import deploy_stack

    manifest = Deployments(chain.chain_id, tmp_path / "m.json")
    first = deploy_stack(chain, deployments=manifest)
    reused = deploy_stack(chain, first.token.address, deployments=manifest)
    assert (reused.escrow.address, reused.pool.address) == (
        first.escrow.address,
        first.pool.address,
    )
    forced = deploy_stack(chain, first.token.address, deployments=manifest, force=True)
    assert forced.token.address == first.token.address  # given, so never deployed
    assert forced.escrow.address != first.escrow.address
    assert forced.pool.address != first.pool.address
    assert manifest.get("Escrow").address == forced.escrow.address  # type: ignore[union-attr]


def test_empty_blocks_add_no_state_on_anvil(chain: Chain) -> None:
    """``Chain.anvil()`` runs the contracts' hardfork (Cancun): no EIP-2935 history
    contract writes a storage slot per block, which anvil 1.7.1 would hash again for every
    later block (BENCHMARKS.md, "Long run")."""
    if chain.backend != "anvil":
        pytest.skip("anvil's hardfork")
    info = chain.transport.rpc("anvil_nodeInfo", [])
    assert str(info["hardFork"]).lower() == "cancun"
    chain.mine()
    chain.mine()
    head = chain.block_number()
    history = "0x0000F90827F1C53a10cb7A02335B175320002935"
    # From Prague on, block N stores the hash of block N - 1 at slot (N - 1) % 8191.
    stored = chain.transport.rpc("eth_getStorageAt", [history, hex((head - 1) % 8191), "latest"])
    assert int(stored, 16) == 0
