"""``demo``: the reference scenario of :mod:`escrowkit.cli.demo_scenario`, shown step by step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from escrowkit.cli.render import console, show_result
from escrowkit.cli.report_view import render_report

if TYPE_CHECKING:
    from escrowkit.contracts.token import TokenClient


def demo() -> None:
    """The main job on an embedded chain: real contracts, the coordinator, a report."""
    from escrowkit.cli.demo_scenario import DemoStep, run_demo

    def begin(title: str) -> None:
        console.print(f"\n[bold]{title}[/]")

    def show(step: DemoStep, token: TokenClient) -> None:
        if step.result is not None:
            show_result(step.result, token)
        if step.note:
            console.print(f"  {step.note}", highlight=False)

    console.print("embedded chain (py-evm), real contracts, a 1,000 USDC budget, three agents")
    outcome = run_demo(on_step=show, on_begin=begin)
    assert outcome.report is not None
    console.print()
    render_report(outcome.report, outcome.stack.token)
    console.print(f"alerts fired: {len(outcome.alerts)}")
