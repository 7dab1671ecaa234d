"""The scripts and `escrowkit chain` against real anvil processes, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from escrowkit.contracts.deploy import Deployments, deploy
from escrowkit.contracts.escrow import EscrowState
from escrowkit.contracts.stack import load_stack
from escrowkit.evm import free_port
from escrowkit.evm.chain import Chain

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[2]
USDC = 10**6


@pytest.fixture(scope="module")
def node() -> Iterator[Chain]:
    with Chain.anvil() as chain:
        yield chain


def run(cwd: Path, *args: str, expect: int = 0) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == expect, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_deploy_local_then_fund_spends_from_csv_and_json(node: Chain, tmp_path: Path) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    research, provider = node.accounts[1], node.accounts[6]
    out = run(tmp_path, str(ROOT / "scripts" / "deploy_local.py"), "--rpc", url, "--mint", "500")
    assert "Escrow" in out and "500.00 USDC" in out
    # Running it again reuses the deployment (same addresses in the manifest).
    manifest = tmp_path / "deployments" / f"{node.chain_id}.json"
    first = json.loads(manifest.read_text())["contracts"]
    run(tmp_path, str(ROOT / "scripts" / "deploy_local.py"), "--rpc", url, "--mint", "1")
    assert json.loads(manifest.read_text())["contracts"] == first

    (tmp_path / "escrowkit.toml").write_text(
        f"""
[network]
rpc_url = "{url}"

[coordinator]
database = "sqlite:///{tmp_path / "ledger.db"}"
total_budget = "100"

[[agents]]
id = "research-agent"
address = "{research}"
spending_limit = "30"
daily_limit = "60"
requires_approval = "30"
"""
    )
    (tmp_path / "spends.csv").write_text(
        "agent_id,amount,provider,purpose,idempotency_key\n"
        f"research-agent,25,{provider},dataset,k1\n"
        f"research-agent,40,{provider},too big,k2\n"
    )
    (tmp_path / "spends.json").write_text(
        json.dumps(
            [
                {
                    "agent_id": "research-agent",
                    "amount": "20",
                    "provider": provider,
                    "purpose": "more data",
                    "idempotency_key": "k3",
                },
                {
                    "agent_id": "research-agent",
                    "amount": "25",
                    "provider": provider,
                    "purpose": "dataset",
                    "idempotency_key": "k1",
                },
            ]
        )
    )
    csv_out = run(
        tmp_path, str(ROOT / "scripts" / "fund_spends.py"), "spends.csv", expect=3
    )  # denied: the CLI's code
    assert "APPROVED" in csv_out and "DENIED" in csv_out and "per-transaction limit" in csv_out
    json_out = run(tmp_path, str(ROOT / "scripts" / "fund_spends.py"), "spends.json")
    assert json_out.count("APPROVED") == 2  # k1 replays the first result: no second escrow
    assert "spent 45.00 USDC, remaining 55.00 USDC" in json_out

    stack = load_stack(node, Deployments(node.chain_id, manifest))
    assert stack.token.balance_of(stack.escrow.address) == 45 * USDC
    created = stack.escrow.contract.events.EscrowCreated.get_logs(from_block=0)
    assert len(created) == 2
    assert {stack.escrow.get(log["args"]["id"]).state for log in created} == {EscrowState.FUNDED}


def test_escrowkit_chain_keeps_its_state_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state = tmp_path / "anvil-state.json"
    command = [
        sys.executable,
        "-m",
        "escrowkit.cli",
        "chain",
        "--port",
        str(port),
        "--state",
        str(state),
    ]

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(300):
            try:
                Chain.connect(url)
                return process
            except Exception:
                time.sleep(0.05)
        process.kill()
        raise AssertionError("escrowkit chain did not start")

    def stop(process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends: anvil saves its state
        assert process.wait(timeout=20) is not None

    process = start()
    try:
        token = deploy(Chain.connect(url), "MockUSDC")
    finally:
        stop(process)
    assert state.exists()
    process = start()
    try:
        again = Chain.connect(url)
        assert len(again.w3.eth.get_code(token.address)) > 0
    finally:
        stop(process)
