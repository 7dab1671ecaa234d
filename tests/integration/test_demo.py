"""`escrowkit demo` (what `make demo` runs): the reference scenario on an embedded chain."""

from __future__ import annotations

import os
import subprocess
import sys

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
