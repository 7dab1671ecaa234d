"""Scopes from the command line (issue 17): ``budgets set|show``, ``agents add --scope``,
``agents spawn``, ``agents remove`` and ``spend --workflow``, each a separate process on
a real anvil; the figures are the library's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import run, run_json

from escrowkit.evm.chain import Chain

pytestmark = pytest.mark.anvil

USDC = 10**6


@pytest.fixture(scope="module")
def node() -> Iterator[Chain]:
    with Chain.anvil(mining="auto") as chain:  # other processes send: automine
        yield chain


def test_scope_budgets_spawn_and_remove(node: Chain, tmp_path: Path) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    (tmp_path / "escrowkit.toml").write_text(
        f"""
[network]
rpc_url = "{url}"

[coordinator]
database = "sqlite:///{tmp_path / "ledger.db"}"
total_budget = "1000"
"""
    )
    planner, child, provider = node.accounts[1], node.accounts[2], node.accounts[5]
    run(tmp_path, "deploy", "--mint", "5000")
    limits = ["--limit", "100", "--daily", "300", "--approval-over", "50"]
    run(
        tmp_path,
        "agents",
        "add",
        "planner",
        "--address",
        planner,
        "--scope",
        "workspace:alpha",
        *limits,
    )
    spawned = run(
        tmp_path,
        "agents",
        "spawn",
        "planner",
        "scraper",
        "--address",
        child,
        *limits[:4],
        "--approval-over",
        "10",
    )
    assert "workspace:alpha/agent:planner/agent:scraper" in spawned.stdout
    wider = run(
        tmp_path,
        "agents",
        "spawn",
        "planner",
        "big",
        "--address",
        child,
        "--limit",
        "500",
        "--daily",
        "1",
        "--approval-over",
        "1",
        expect=1,
    )
    assert "spending_limit" in wider.stderr and "Traceback" not in wider.stderr

    shown = run(tmp_path, "budgets", "set", "workspace:alpha", "50")
    assert "alpha" in shown.stdout
    run(tmp_path, "budgets", "set", "workspace:alpha/workflow:t1", "30")
    bad = run(tmp_path, "budgets", "set", "workspace:alpha/", "5", expect=1)
    assert "malformed scope" in bad.stderr

    spend = ["--purpose", "work", "--workflow", "t1"]
    assert run_json(tmp_path, "spend", "scraper", "10", provider, *spend)["status"] == "APPROVED"
    assert run_json(tmp_path, "spend", "planner", "20", provider, *spend)["status"] == "APPROVED"
    over = run_json(tmp_path, "spend", "planner", "5", provider, *spend, expect=3)
    assert over["code"] == "scope_budget" and "workflow:t1" in over["reason"]

    balances = run_json(tmp_path, "budgets", "show")
    assert [(b["scope"], b["spent"]) for b in balances] == [
        ("", str(30 * USDC)),
        ("workspace:alpha", str(30 * USDC)),
        ("workspace:alpha/workflow:t1", str(30 * USDC)),
    ]
    assert (
        run_json(tmp_path, "budgets", "show", "workspace:alpha/workflow:t1")[0]["remaining"] == "0"
    )
    table = run(tmp_path, "budgets", "show").stdout
    assert "(total budget)" in table and "workflow:t1" in table
    assert "by scope" in run(tmp_path, "report").stdout
    assert "scope: workspace:alpha/agent:planner" in run(tmp_path, "agents", "list").stdout
    report = run_json(tmp_path, "report")
    assert [s["scope"] for s in report["scopes"]] == [b["scope"] for b in balances]

    removed = run(tmp_path, "agents", "remove", "planner")
    assert "removed planner" in removed.stdout and "removed scraper" in removed.stdout
    gone = run_json(tmp_path, "spend", "scraper", "1", provider, "--purpose", "x", expect=3)
    assert gone["code"] == "unknown_agent"
    run(tmp_path, "budgets", "set", "workspace:alpha/workflow:t1", "--remove")
    assert len(run_json(tmp_path, "budgets", "show")) == 2


def test_the_scope_commands_have_help() -> None:
    from typer.testing import CliRunner

    from escrowkit.cli.app import app

    runner = CliRunner()
    for command in (
        ["budgets", "set"],
        ["budgets", "show"],
        ["budgets", "set-total"],
        ["agents", "spawn"],
        ["agents", "remove"],
    ):
        done = runner.invoke(app, [*command, "--help"])
        assert done.exit_code == 0, (command, done.output)
        assert "Usage" in done.output, command
