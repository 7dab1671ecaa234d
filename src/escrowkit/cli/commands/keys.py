"""API keys of the service: ``keys create``, ``keys list``, ``keys revoke``.

They need the settings' ledger only (no chain). A new key is printed once, on stdout;
the ledger keeps its hash."""

from __future__ import annotations

from typing import Annotated

import typer

from escrowkit.cli.options import JsonOption, open_settings
from escrowkit.cli.render import console, err_console, print_json


def keys_create(
    agent: Annotated[
        str | None, typer.Option("--agent", help="An agent key for this registered agent.")
    ] = None,
    role: Annotated[
        str | None, typer.Option("--role", help="approver or admin (instead of --agent).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Who holds it (recorded as the approver of approvals).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Make a key and print it once: store it now, it cannot be shown again."""
    from escrowkit.config import bootstrap

    if (agent is None) == (role is None):
        raise typer.BadParameter("give --agent ID or --role approver|admin (one of them)")
    if role is not None and role not in ("approver", "admin"):
        raise typer.BadParameter(f"--role must be approver or admin, not {role!r}")
    with bootstrap.api_keys(open_settings()) as keys:
        key, secret = keys.create(role or "agent", agent_id=agent, name=name)
    if as_json:
        print_json({"id": key.id, "role": key.role, "agent_id": key.agent_id, "key": secret})
        return
    err_console.print(
        f"{key.role} key {key.id}"
        + (f" for {key.agent_id}" if key.agent_id else "")
        + ": shown once, store it now (the ledger keeps only its hash)"
    )
    console.print(secret, markup=False, highlight=False, soft_wrap=True)


def keys_list(as_json: JsonOption = False) -> None:
    """Every key: its public id, role, agent, name, and when it was made or revoked."""
    import datetime as dt

    from rich.table import Table

    from escrowkit.config import bootstrap

    with bootstrap.api_keys(open_settings()) as keys:
        found = keys.list()
    if as_json:
        print_json(found)
        return

    def when(at: float | None) -> str:
        if at is None:
            return ""
        return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M")

    table = Table(title=f"{len(found)} API keys")
    for column in ("id", "role", "agent", "name", "created (UTC)", "revoked (UTC)"):
        table.add_column(column)
    for key in found:
        table.add_row(
            key.id,
            key.role,
            key.agent_id or "",
            key.name or "",
            when(key.created_at),
            when(key.revoked_at),
        )
    console.print(table)


def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's public id (keys list).")],
) -> None:
    """Revoke a key: it fails at once, in every service process on the ledger."""
    from escrowkit.config import bootstrap

    with bootstrap.api_keys(open_settings()) as keys:
        key = keys.revoke(key_id)
    console.print(f"revoked {key.id} ({key.role}{' ' + key.agent_id if key.agent_id else ''})")
