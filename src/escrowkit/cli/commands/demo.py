"""``demo``: the reference scenario of :mod:`escrowkit.cli.demo_scenario`, shown step by step;
``demo --serve`` then leaves the service and its dashboard running on the demo's ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from escrowkit.cli.render import console, show_result
from escrowkit.cli.report_view import render_report

if TYPE_CHECKING:
    from escrowkit.cli.demo_scenario import DemoOutcome
    from escrowkit.contracts.token import TokenClient


def demo(
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Then serve the HTTP API and the dashboard on the demo's ledger "
            "(prints a key to sign in with); Ctrl-C stops.",
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="With --serve: the address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="With --serve: the port.")] = 8700,
) -> None:
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
    if serve:
        _serve(outcome, host, port)


def _serve(outcome: DemoOutcome, host: str, port: int) -> None:
    """The dashboard over the demo's coordinator: one more request waits for approval, so
    there is something to click; an admin key to sign in with and an agent key to spend
    with are printed once (the in-memory ledger goes when the process stops)."""
    from escrowkit import SpendRequest
    from escrowkit.service.runner import serve

    coordinator, usdc = outcome.coordinator, outcome.stack.token
    provider = outcome.stack.chain.accounts[4]
    coordinator.request_spending(
        SpendRequest("data-agent", usdc.units("120"), provider, "GPU burst for labelling")
    )
    admin = coordinator.api_keys.create("admin", name="demo-admin")[1]
    agent = coordinator.api_keys.create("agent", agent_id="research-agent")[1]
    url = f"http://{host}:{port}"
    console.print(
        f"\n[bold]dashboard[/] on {url}/ : sign in with this admin key (shown once):\n"
        f"  {admin}\n"
        f"an agent spends over HTTP with its own key (research-agent):\n"
        f"  curl -s {url}/v1/spends -H 'Authorization: Bearer {agent}' "
        f"-H 'Content-Type: application/json' "
        f"""-d '{{"amount": "{usdc.units("20")}", "provider": "{provider}", """
        f""""purpose": "more data"}}'\n"""
        "Ctrl-C stops (the demo's ledger is in memory)",
        highlight=False,
        soft_wrap=True,
    )
    with coordinator:
        serve(coordinator, host=host, port=port)
