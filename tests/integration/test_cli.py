"""The CLI end to end: a real anvil, each command a separate process, JSON checked on-chain."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cli_process
from escrowkit.contracts.deploy import Deployments
from escrowkit.contracts.escrow import EscrowState
from escrowkit.contracts.stack import load_stack
from escrowkit.evm.chain import Chain

pytestmark = pytest.mark.anvil

USDC = 10**6


@pytest.fixture(scope="module")
def node() -> Iterator[Chain]:
    with Chain.anvil(mining="auto") as chain:  # other processes send: automine
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
    done = cli_process.run(list(args), cwd=workdir, env=env)  # a new process each
    assert done.returncode == expect, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


#: A plain 80-column terminal.
NARROW = {"COLUMNS": "80"}


def fits(text: str, width: int = 80) -> bool:
    """Every line of ``text`` fits ``width`` columns."""
    return all(len(line) <= width for line in text.splitlines())


def run_json(workdir: Path, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> Any:
    return json.loads(run(workdir, *args, "--json", expect=expect, env=env).stdout)


def test_deploy_agents_spend_approve_report(node: Chain, workdir: Path) -> None:
    research, data, provider = node.accounts[1], node.accounts[2], node.accounts[5]
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    first_deploy = run(workdir, "deploy", "--rpc", url, "--mint", "5000").stdout
    assert "reused" not in first_deploy and first_deploy.count(" deployed") == 3
    manifest = Deployments(node.chain_id, workdir / "deployments" / f"{node.chain_id}.json")
    stack = load_stack(node, manifest)
    treasury = node.accounts[0]
    assert stack.token.balance_of(treasury) == 5000 * USDC
    # Deploying again reuses the recorded contracts, and says so; minting again adds.
    again = run(workdir, "deploy", "--mint", "1").stdout
    assert again.count("reused (block ") == 3 and " deployed" not in again
    assert "it already held 5000.00 USDC: minting again adds" in again
    assert load_stack(node, Deployments(node.chain_id, manifest.path)).escrow.address == (
        stack.escrow.address
    )
    stack.token.transfer(node.accounts[9], 1 * USDC, sender=treasury)

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
    # Limits that make no sense: refused (daily below per-transaction) or warned about.
    limits = ["--address", node.accounts[4], "--limit", "100", "--approval-over"]
    refused = run(workdir, "agents", "add", "odd-agent", *limits, "10", "--daily", "50", expect=1)
    assert "daily_limit 50.00 USDC is below spending_limit 100.00 USDC" in refused.stderr
    warned = run(workdir, "agents", "add", "odd-agent", *limits, "100", "--daily", "500")
    assert warned.stderr.startswith("warning: agent 'odd-agent': requires_approval is at or")
    empty = run(workdir, "spend", "odd-agent", "1", provider, "--purpose", " ", expect=1)
    assert empty.stderr.startswith("error: purpose is empty")

    first = run_json(workdir, "spend", "research-agent", "25", provider, "--purpose", "dataset")
    assert first["status"] == "APPROVED" and first["replay"] is False
    pending = run_json(workdir, "spend", "data-agent", "150", provider, "--purpose", "labels")
    assert pending["status"] == "PENDING_APPROVAL" and pending["approval_id"]
    waiting = run_json(workdir, "approvals")
    assert list(waiting) == [pending["approval_id"]]
    assert waiting[pending["approval_id"]]["amount"] == str(150 * USDC)
    shown = run(workdir, "approvals", env=NARROW).stdout
    assert pending["approval_id"] in shown and fits(shown)
    approved = run_json(workdir, "approve", pending["approval_id"], "--approver", "ops")
    assert approved["status"] == "APPROVED" and approved["replay"] is False
    # Approving again shows the same spend, marked as a replay.
    replayed = run(workdir, "approve", pending["approval_id"], "--approver", "ops").stdout
    assert replayed.startswith("APPROVED (replay)") and approved["escrow_id"] in replayed
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
    # One rule per kind of field: amounts are strings, counts and decimals numbers.
    assert report["token"]["decimals"] == 6 and report["warnings"] == []

    # The JSON agrees with the chain.
    for result, amount in ((first, 25), (approved, 150)):
        record = stack.escrow.get(result["escrow_id"])
        assert record.state is EscrowState.FUNDED
        assert record.amount == amount * USDC
        assert record.provider == provider
    assert stack.token.balance_of(stack.escrow.address) == 175 * USDC

    shown = run_json(workdir, "escrow", "show", first["escrow_id"])
    assert shown["escrow"]["state"] == "FUNDED" and shown["escrow"]["amount"] == str(25 * USDC)
    assert isinstance(shown["escrow"]["deadline"], int)
    assert [event["event"] for event in shown["history"]] == ["EscrowCreated", "EscrowFunded"]
    allowed = {(a["party"], a["action"]) for a in shown["actions"] if a["allowed_now"]}
    assert allowed == {("requester", "settle"), ("provider", "cancel")}
    text = run(workdir, "escrow", "show", first["escrow_id"], env=NARROW).stdout
    assert first["escrow_id"] in text and fits(text)
    assert "UTC" in text and "the requester may cancel from " in text
    # Too early to cancel: the window in words, not TooEarly(...).
    early = run(workdir, "escrow", "cancel", first["escrow_id"], expect=1).stderr
    assert early.startswith("error: too early to cancel this escrow: the requester may cancel")
    assert "TooEarly" not in early

    listed = run_json(workdir, "spends", "--agent", "research-agent")
    assert [row["escrow_id"] for row in listed] == [first["escrow_id"]]
    assert listed[0]["amount"] == str(25 * USDC) and "salt" not in listed[0]
    assert run_json(workdir, "spends", "--status", "settled") == []
    table = run(workdir, "spends", env=NARROW).stdout
    assert first["escrow_id"] in table and approved["escrow_id"] in table and fits(table)

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
    # With keys, running the file again replays: marked, and the ids are whole at 80 columns.
    (workdir / "keyed.csv").write_text(
        f"agent_id,amount,provider,purpose,idempotency_key\nresearch-agent,5,{provider},a,order-1\n"
    )
    fresh = run(workdir, "batch", "keyed.csv", env=NARROW).stdout
    replay = run(workdir, "batch", "keyed.csv", env=NARROW).stdout
    assert "(replay)" not in fresh and "APPROVED (replay)" in replay and fits(replay)
    (escrow_id,) = [w for w in fresh.split() if w.startswith("0x") and len(w) == 66]
    assert escrow_id in replay
    assert run_json(workdir, "report")["total_spent"] == str(190 * USDC)
    assert fits(run(workdir, "report", env=NARROW).stdout)
    assert fits(run(workdir, "agents", "list", env=NARROW).stdout)

    run(workdir, "freeze", "incident 42")
    frozen = run_json(workdir, "spend", "research-agent", "1", provider, "--purpose", "x", expect=3)
    assert "frozen" in frozen["reason"]
    run(workdir, "unfreeze")


def test_errors_are_one_line_without_traceback(workdir: Path) -> None:
    # This worker may not have run the test above (xdist): deploy, or reuse its deployment.
    run(workdir, "deploy")
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
        ["spends"],
        ["approvals"],
    ]
    runner = CliRunner()
    for command in commands:
        done = runner.invoke(app, [*command, "--help"])
        assert done.exit_code == 0, (command, done.output)
        assert "Usage" in done.output, command
