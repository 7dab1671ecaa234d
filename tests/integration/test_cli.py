"""The CLI end to end: a real anvil, each command a separate process, JSON checked on-chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from escrowkit.contracts.deploy import Deployments
from escrowkit.contracts.escrow import EscrowState
from escrowkit.contracts.stack import load_stack
from escrowkit.evm.chain import Chain

pytestmark = pytest.mark.anvil

USDC = 10**6
ESCROWKIT = [sys.executable, "-m", "escrowkit.cli"]


@pytest.fixture(scope="module")
def node() -> Iterator[Chain]:
    with Chain.anvil() as chain:
        yield chain


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, node: Chain) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    (folder / "escrowkit.toml").write_text(
        f"""
[network]
rpc_url = "{url}"

[coordinator]
database = "sqlite:///{folder / "ledger.db"}"
total_budget = "1000"
"""
    )
    return folder


def run(
    workdir: Path, *args: str, expect: int = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``escrowkit *args`` in ``workdir`` (with ``env`` over the environment)."""
    env = {**os.environ, "COLUMNS": "200", **(env or {})}
    env.pop("ESCROWKIT_CONFIG", None)
    done = subprocess.run(
        [*ESCROWKIT, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == expect, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def run_json(workdir: Path, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> Any:
    return json.loads(run(workdir, *args, "--json", expect=expect, env=env).stdout)


def test_deploy_agents_spend_approve_report(node: Chain, workdir: Path) -> None:
    research, data, provider = node.accounts[1], node.accounts[2], node.accounts[5]
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    run(workdir, "deploy", "--rpc", url, "--mint", "5000")
    manifest = Deployments(node.chain_id, workdir / "deployments" / f"{node.chain_id}.json")
    stack = load_stack(node, manifest)
    treasury = node.accounts[0]
    assert stack.token.balance_of(treasury) == 5000 * USDC
    # Deploying again reuses the recorded contracts.
    run(workdir, "deploy")
    assert load_stack(node, Deployments(node.chain_id, manifest.path)).escrow.address == (
        stack.escrow.address
    )

    run(
        workdir,
        "agents",
        "add",
        "research-agent",
        "--address",
        research,
        "--limit",
        "100",
        "--daily",
        "300",
        "--approval-over",
        "50",
    )
    run(
        workdir,
        "agents",
        "add",
        "data-agent",
        "--address",
        data,
        "--limit",
        "200",
        "--daily",
        "500",
        "--approval-over",
        "100",
    )
    listed = run_json(workdir, "agents", "list")
    assert listed["research-agent"]["spending_limit"] == str(100 * USDC)

    first = run_json(workdir, "spend", "research-agent", "25", provider, "--purpose", "dataset")
    assert first["status"] == "APPROVED"
    pending = run_json(workdir, "spend", "data-agent", "150", provider, "--purpose", "labels")
    assert pending["status"] == "PENDING_APPROVAL" and pending["approval_id"]
    approved = run_json(workdir, "approve", pending["approval_id"], "--approver", "ops")
    assert approved["status"] == "APPROVED"
    # Rejecting it now would reject nothing: an error, not a DENIED that reads "not spent".
    late = run(workdir, "reject", pending["approval_id"], "--reason", "late", expect=1)
    assert "already approved; nothing was rejected" in late.stderr
    denied = run_json(
        workdir, "spend", "research-agent", "150", provider, "--purpose", "too much", expect=3
    )
    assert denied["status"] == "DENIED" and "per-transaction limit" in denied["reason"]

    report = run_json(workdir, "report")
    assert report["total_budget"] == str(1000 * USDC)
    assert report["total_spent"] == str(175 * USDC)
    assert report["remaining"] == str(825 * USDC)
    assert report["by_agent"]["research-agent"]["spent"] == str(25 * USDC)
    assert report["by_agent"]["data-agent"]["spent"] == str(150 * USDC)
    assert report["pending_approvals"] == {}
    assert report["token"]["decimals"] == "6"

    # The JSON agrees with the chain.
    for result, amount in ((first, 25), (approved, 150)):
        record = stack.escrow.get(result["escrow_id"])
        assert record.state is EscrowState.FUNDED
        assert record.amount == amount * USDC
        assert record.provider == provider
    assert stack.token.balance_of(stack.escrow.address) == 175 * USDC

    shown = run_json(workdir, "escrow", "show", first["escrow_id"])
    assert shown["escrow"]["state"] == "FUNDED"
    assert [event["event"] for event in shown["history"]] == ["EscrowCreated", "EscrowFunded"]

    run(workdir, "escrow", "settle", first["escrow_id"])
    assert stack.escrow.get(first["escrow_id"]).state is EscrowState.SETTLED
    assert stack.token.balance_of(provider) == 25 * USDC
    assert run_json(workdir, "report")["total_spent"] == str(175 * USDC)

    # A batch exits like spend: 3 when a row was denied; each result is checked on-chain.
    (workdir / "spends.csv").write_text(
        "agent_id,amount,provider,purpose\n"
        f"research-agent,10,{provider},a\n"
        f"research-agent,500,{provider},too much\n"
    )
    batch = run_json(workdir, "batch", "spends.csv", expect=3)
    assert [result["status"] for result in batch] == ["APPROVED", "DENIED"]
    assert stack.escrow.get(batch[0]["escrow_id"]).amount == 10 * USDC
    assert run_json(workdir, "report")["total_spent"] == str(185 * USDC)

    run(workdir, "freeze", "incident 42")
    frozen = run_json(workdir, "spend", "research-agent", "1", provider, "--purpose", "x", expect=3)
    assert "frozen" in frozen["reason"]
    run(workdir, "unfreeze")


def test_errors_are_one_line_without_traceback(workdir: Path) -> None:
    done = run(workdir, "approve", "apr_does_not_exist", "--approver", "ops", expect=1)
    assert done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    bad_amount = run(
        workdir,
        "spend",
        "research-agent",
        "0.1234567",
        "0x000000000000000000000000000000000000dEaD",
        "--purpose",
        "x",
        expect=1,
    )
    assert "decimal places" in bad_amount.stderr and "Traceback" not in bad_amount.stderr
    unknown = run(workdir, "escrow", "show", "0x" + "ab" * 32, expect=1)
    assert unknown.stderr.startswith("error: no escrow 0xabab")


def test_every_command_has_help() -> None:
    from typer.testing import CliRunner

    from escrowkit.cli.app import app

    commands = [
        [],
        ["compile"],
        ["chain"],
        ["deploy"],
        ["agents"],
        ["agents", "add"],
        ["agents", "list"],
        ["spend"],
        ["batch"],
        ["approve"],
        ["reject"],
        ["report"],
        ["escrow"],
        ["escrow", "show"],
        ["escrow", "settle"],
        ["escrow", "cancel"],
        ["recover"],
        ["sync"],
        ["freeze"],
        ["unfreeze"],
        ["pool", "contribute"],
        ["demo"],
    ]
    runner = CliRunner()
    for command in commands:
        done = runner.invoke(app, [*command, "--help"])
        assert done.exit_code == 0, (command, done.output)
        assert "Usage" in done.output, command
