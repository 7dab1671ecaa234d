"""Opening never writes: read commands leave the ledger exactly as they found it, and a
settings file that disagrees with the ledger is refused, naming the setting, until the
change is made explicitly (``budgets set-total``, ``apply``), audited."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import run, run_json

from escrowkit.evm.chain import Chain

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def node() -> Iterator[Chain]:
    with Chain.anvil(mining="auto") as chain:  # other processes send: automine
        yield chain


def settings(
    folder: Path, url: str, agent: str, *, total: str = "1000", compute: str = "400"
) -> None:
    (folder / "escrowkit.toml").write_text(
        f"""
[network]
rpc_url = "{url}"

[coordinator]
database = "sqlite:///{folder / "ledger.db"}"
total_budget = "{total}"

[categories]
compute = "{compute}"

[[agents]]
id = "research-agent"
address = "{agent}"
spending_limit = "100"
daily_limit = "300"
requires_approval = "50"
"""
    )


def dump(folder: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the ledger."""
    conn = sqlite3.connect(folder / "ledger.db")
    try:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        return {t: sorted(conn.execute(f'select * from "{t}"'), key=repr) for t in tables}
    finally:
        conn.close()


def test_read_commands_write_nothing_and_a_disagreeing_file_is_refused(
    node: Chain, tmp_path: Path
) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    agent, provider = node.accounts[1], node.accounts[5]
    settings(tmp_path, url, agent)
    run(tmp_path, "deploy", "--mint", "5000")
    spent = run_json(tmp_path, "spend", "research-agent", "25", provider, "--purpose", "data")
    assert spent["status"] == "APPROVED" and spent["code"] is None

    before = dump(tmp_path)
    for command in (
        ["report"],
        ["report", "--json"],
        ["agents", "list"],
        ["agents", "list", "--json"],
        ["escrow", "show", spent["escrow_id"]],
        ["escrow", "show", spent["escrow_id"], "--json"],
    ):
        run(tmp_path, *command)
        assert dump(tmp_path) == before, command

    # Another total budget in the environment: refused, naming the setting; nothing written.
    env_budget = {"ESCROWKIT_TOTAL_BUDGET": "2000"}
    refused = run(tmp_path, "report", expect=1, env=env_budget)
    assert "ESCROWKIT_TOTAL_BUDGET" in refused.stderr and "1000.00 USDC" in refused.stderr
    assert "budgets set-total" in refused.stderr
    assert dump(tmp_path) == before
    run(tmp_path, "budgets", "set-total", "2000")
    assert run_json(tmp_path, "report", env=env_budget)["total_budget"] == str(2000 * 10**6)

    # The file's category budget changed: refused until `apply`, which audits it.
    settings(tmp_path, url, agent, total="2000", compute="500")
    refused = run(tmp_path, "agents", "list", expect=1)
    assert "categories.compute" in refused.stderr and "escrowkit apply" in refused.stderr
    assert "applied: categories.compute" in run(tmp_path, "apply").stdout
    report = run_json(tmp_path, "report")
    assert report["by_category"]["compute"]["budget"] == str(500 * 10**6)
