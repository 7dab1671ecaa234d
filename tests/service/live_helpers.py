"""Real service processes (``escrowkit serve`` on a loopback port) over a real anvil: the
settings file, the deployed stack, starting and stopping them, checking the chain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from service_helpers import free_port

from escrowkit.config.bootstrap import open_coordinator
from escrowkit.config.settings import load_settings
from escrowkit.contracts.deploy import Deployments
from escrowkit.contracts.escrow import EscrowState
from escrowkit.contracts.stack import Stack, deploy_stack
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain

ESCROWKIT = [sys.executable, "-m", "escrowkit.cli"]
U = 10**6


@dataclass(frozen=True)
class Project:
    """A folder with an escrowkit.toml, its ledger and the deployment manifest."""

    folder: Path
    chain: Chain
    stack: Stack

    @property
    def config(self) -> Path:
        return self.folder / "escrowkit.toml"

    def settings_for(self, name: str, *, treasury: str, extra: str = "") -> Path:
        """Another settings file on the same ledger and manifest, for another process
        with its own treasury key (nonces are per process)."""
        text = self.config.read_text().replace(
            "[coordinator]", f'[coordinator]\ntreasury = "{treasury}"'
        )
        path = self.folder / f"{name}.toml"
        path.write_text(text + extra)
        return path


def make_project(folder: Path, chain: Chain, database: str, extra: str = "") -> Project:
    """Deploy a stack on ``chain``, fund the first accounts as treasuries, and write an
    escrowkit.toml with two agents on ``database``."""
    accounts = chain.accounts
    manifest = Deployments(chain.chain_id, folder / "deployments" / f"{chain.chain_id}.json")
    stack = deploy_stack(chain, deployments=manifest, force=True)
    for treasury in accounts[:2]:
        stack.token.mint(treasury, 10_000 * U, sender=accounts[0])
        stack.token.approve(stack.escrow.address, MAX_UINT256, sender=treasury)
    url = chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    (folder / "escrowkit.toml").write_text(
        f"""
[network]
rpc_url = "{url}"

[coordinator]
database = "{database}"
total_budget = "1000"

[[agents]]
id = "research"
address = "{accounts[3]}"
spending_limit = "100"
daily_limit = "600"
requires_approval = "50"

[[agents]]
id = "data"
address = "{accounts[4]}"
spending_limit = "100"
daily_limit = "600"
requires_approval = "50"
{extra}"""
    )
    # The ledger starts as the settings say (agents registered), as any command starts it.
    settings = load_settings(folder / "escrowkit.toml")
    open_coordinator(settings, chain, stack).close()
    return Project(folder, chain, stack)


def cli(project: Project, *args: str, config: Path | None = None) -> str:
    """``escrowkit --config … *args``; its stdout."""
    done = subprocess.run(
        [*ESCROWKIT, "--config", str(config or project.config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "ESCROWKIT_CONFIG"},
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


class Service:
    """``escrowkit serve`` as a child process on a free loopback port."""

    def __init__(self, project: Project, config: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                *ESCROWKIT,
                "--config",
                str(config or project.config),
                "serve",
                "--port",
                str(self.port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "ESCROWKIT_CONFIG"},
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"escrowkit serve exited:\n{self.process.stderr.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "escrowkit serve did not start"
            time.sleep(0.1)

    def stop(self) -> str:
        """SIGTERM, as a process manager stops it; its stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.stderr.read() if self.process.stderr else ""  # type: ignore[union-attr]


def assert_report_matches_chain(
    report: dict[str, Any], spends: list[dict[str, Any]], stack: Stack
) -> None:
    """Every committed spend's escrow is FUNDED on-chain for its amount and provider, and
    the report's spent total is exactly their sum."""
    funded = 0
    for spend in spends:
        assert spend["status"] == "COMMITTED", spend
        record = stack.escrow.get(spend["escrow_id"])
        assert record.state is EscrowState.FUNDED, (spend, record)
        assert (record.amount, record.provider) == (int(spend["amount"]), spend["provider"])
        funded += record.amount
    assert int(report["total_spent"]) == funded
    assert int(report["reserved"]) == 0
    assert int(report["remaining"]) == int(report["total_budget"]) - funded
