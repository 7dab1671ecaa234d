"""``agents add``, ``agents spawn``, ``agents remove`` and ``agents list``: the agents the
coordinator knows and their limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from escrowkit.cli.options import JsonOption, open_coordinator, parse_amount
from escrowkit.cli.render import console, print_json

if TYPE_CHECKING:
    from escrowkit.coordinator import AgentConfig


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
    scope: Annotated[
        str, typer.Option(help="Where the agent sits, e.g. workspace:alpha (default: the root).")
    ] = "",
) -> None:
    """Register an agent or update its limits (pool mode: also on-chain)."""
    _, _, stack, coordinator = open_coordinator()
    token = stack.token
    with coordinator:
        config = coordinator.register_agent(
            _config(
                token,
                agent_id,
                name,
                address,
                (limit, daily, approval_over, hourly),
                category,
                provider,
                scope=scope,
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


# ---- delegation (DESIGN.md section 8) -----------------------------------------------------


def agents_spawn(
    parent: Annotated[str, typer.Argument(help="The parent agent's id.")],
    agent_id: Annotated[str, typer.Argument(help="The child's id.")],
    address: Annotated[str, typer.Option(help="The child's address (checksummed).")],
    limit: Annotated[str, typer.Option(help="Per-transaction limit, token units.")],
    daily: Annotated[str, typer.Option(help="Daily limit, token units.")],
    approval_over: Annotated[
        str, typer.Option(help="Spends strictly above this need a person's approval.")
    ],
    hourly: Annotated[
        str | None, typer.Option(help="Rolling one-hour limit (default: the parent's).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    category: Annotated[
        list[str] | None, typer.Option(help="Allowed category (default: the parent's).")
    ] = None,
    provider: Annotated[
        list[str] | None, typer.Option(help="Allowed provider (default: the parent's).")
    ] = None,
) -> None:
    """Register a child of PARENT: its spends also charge the parent's scope, and its
    limits can only narrow the parent's (pool mode: also on-chain)."""
    _, _, stack, coordinator = open_coordinator()
    token = stack.token
    with coordinator:
        config = coordinator.spawn_agent(
            parent,
            _config(
                token,
                agent_id,
                name,
                address,
                (limit, daily, approval_over, hourly),
                category,
                provider,
            ),
        )
    console.print(f"spawned {config.id} at {config.path}", highlight=False)


def agents_remove(
    agent_id: Annotated[str, typer.Argument(help="The agent to remove, with its descendants.")],
) -> None:
    """Disable an agent and its descendants at once and close their open approvals; what
    they funded is untouched. Registering an id again re-enables it."""
    _, _, _, coordinator = open_coordinator()
    with coordinator:
        removed = coordinator.remove_agent(agent_id)
    if not removed:
        console.print(f"{agent_id} was already removed", highlight=False)
    for gone in removed:
        console.print(f"removed {gone}", highlight=False)


def _config(
    token: Any,
    agent_id: str,
    name: str | None,
    address: str,
    limits: tuple[str, str, str, str | None],
    category: list[str] | None,
    provider: list[str] | None,
    *,
    scope: str = "",
) -> AgentConfig:
    """The agent the options of ``agents add`` and ``agents spawn`` describe; ``limits``:
    per transaction, daily, approval threshold and hourly (None: none), in token units."""
    from escrowkit.coordinator import AgentConfig

    limit, daily, approval_over, hourly = limits
    return AgentConfig(
        id=agent_id,
        name=name or agent_id,
        address=address,
        spending_limit=parse_amount(token, limit),
        daily_limit=parse_amount(token, daily),
        requires_approval=parse_amount(token, approval_over),
        hourly_limit=None if hourly is None else parse_amount(token, hourly),
        categories=tuple(category) if category else None,
        allowed_providers=tuple(provider) if provider else None,
        scope=scope,
    )
