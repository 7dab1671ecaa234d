"""`escrowkit demo` (what `make demo` runs): the reference scenario on an embedded chain."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from escrowkit.cli.demo_scenario import run_demo
from escrowkit.contracts.escrow import EscrowState

USDC = 10**6


def test_run_demo_leaves_the_ledger_and_the_chain_in_agreement() -> None:
    outcome = run_demo()
    statuses = [step.result.status.name for step in outcome.steps if step.result is not None]
    assert statuses == ["APPROVED", "PENDING_APPROVAL", "APPROVED", "DENIED", "FAILED"]
    report = outcome.report
    assert report is not None
    assert (report.total_spent, report.remaining, report.reserved) == (
        175 * USDC,
        825 * USDC,
        0,
    )
    assert report.pending_approvals == {}
    approved = [step.result for step in outcome.steps if step.result and step.result.escrow_id]
    states = [outcome.stack.escrow.get(result.escrow_id).state for result in approved]
    assert states == [EscrowState.SETTLED, EscrowState.FUNDED]
    failed = outcome.steps[4].result
    assert failed is not None and failed.reservation_id is not None
    escrow_id = outcome.coordinator.reservation(failed.reservation_id).escrow_id
    assert outcome.stack.escrow.get(escrow_id).state is EscrowState.CANCELLED
    usdc, escrow = outcome.stack.token, outcome.stack.escrow.address
    assert usdc.balance_of(escrow) == 150 * USDC  # only data-agent's approved spend is held


def test_the_command_exits_0_with_the_report() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "escrowkit.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for text in ("DENIED", "FAILED", "CANCELLED", "SETTLED", "175.00 USDC", "825.00 USDC"):
        assert text in done.stdout, text


def test_a_steps_warning_follows_its_heading() -> None:
    """What a step logs (stderr) comes after its heading (stdout), not before it."""
    done = subprocess.run(
        [sys.executable, "-m", "escrowkit.cli", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stdout
    heading = done.stdout.index("compute-agent buys 120 USDC of GPU hours")
    warning = done.stdout.index("warning: funding")  # the library's log, as the CLI shows it
    previous = done.stdout.index("research-agent tries 150 USDC")
    assert previous < heading < warning


@pytest.mark.slow
def test_demo_serve_leaves_the_dashboard_running(tmp_path: Path) -> None:
    """`escrowkit demo --serve` (make dashboard): the printed admin key signs in, and the
    dashboard shows the demo's ledger, with one approval waiting."""
    import httpx

    from escrowkit.evm.anvil import free_port

    port = free_port()
    out = tmp_path / "demo.out"
    with out.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "escrowkit.cli", "demo", "--serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops" not in out.read_text():
            assert process.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        key = re.search(r"ek_admin_[A-Za-z0-9_-]+", out.read_text())
        assert key is not None
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with httpx.Client(base_url=url) as http:
            assert http.post("/login", data={"key": key.group()}).status_code == 303  # -> /
            state = http.get("/dashboard/state").json()
        assert state["budget"]["spent"]["text"] == "175.00 USDC"
        assert [a["agent_id"] for a in state["approvals"]] == ["data-agent"]
        assert [e["chain_state"] for e in state["escrows"]] == ["FUNDED", "SETTLED"]
    finally:
        process.terminate()
        process.wait(20)
