"""``agents add`` and ``agents list``: the agents the coordinator knows and their limits."""

from __future__ import annotations

from typing import Annotated

import typer

from escrowkit.cli.options import JsonOption, open_coordinator, parse_amount
from escrowkit.cli.render import console, print_json


def agents_add(
    agent_id: Annotated[str, typer.Argument(help="Stable id, e.g. research-agent.")],
    address: Annotated[str, typer.Option(help="The agent's address (checksummed).")],
    limit: Annotated[str, typer.Option(help="Per-transaction limit, token units.")],
    daily: Annotated[str, typer.Option(help="Daily limit (calendar day), token units.")],
    approval_over: Annotated[
        str, typer.Option(help="Spends strictly above this need a person's approval.")
    ],
    hourly: Annotated[str | None, typer.Option(help="Rolling one-hour limit, token units.")] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    category: Annotated[
        list[str] | None, typer.Option(help="Allowed category (repeat for several).")
    ] = None,
    provider: Annotated[
        list[str] | None, typer.Option(help="Allowed provider address (repeat).")
    ] = None,
) -> None:
    """Register an agent or update its limits (pool mode: also on-chain)."""
    from escrowkit.coordinator import AgentConfig

    _, _, stack, coordinator = open_coordinator()
    token = stack.token
    with coordinator:
        config = coordinator.register_agent(
            AgentConfig(
                id=agent_id,
                name=name or agent_id,
                address=address,
                spending_limit=parse_amount(token, limit),
                daily_limit=parse_amount(token, daily),
                requires_approval=parse_amount(token, approval_over),
                hourly_limit=None if hourly is None else parse_amount(token, hourly),
                categories=tuple(category) if category else None,
                allowed_providers=tuple(provider) if provider else None,
            )
        )
    # config.warnings were logged by register_agent (shown as "warning: ...").
    console.print(f"registered {config.id} ({config.address})", highlight=False)


def agents_list(
    as_json: JsonOption = False,
) -> None:
    """List the registered agents and their limits."""
    from escrowkit.cli.listing import show_agents

    _, _, stack, coordinator = open_coordinator()
    with coordinator:
        agents = coordinator.agents
    if as_json:
        print_json(agents)
        return
    show_agents(agents.values(), stack.token)
