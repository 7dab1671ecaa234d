"""How the command line is read, where click's defaults get in a user's way.

- The root options (``--config``, ``--rpc``, ``--debug``) work after the subcommand too:
  ``escrowkit report --debug`` is what people type after a failure.
- ``-5`` where an amount goes is an amount, and amounts are positive: click would call
  it an unknown option.
- A flag's help shows no ``<bool>`` type (typer shows one for every option).

One class, the root group's: every command and subgroup is reached through it, so a
command registered anywhere (another engineer's included) gets the same treatment.
"""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["RootGroup", "hoist_root_options"]

#: The root options that take a value, and those that do not.
ROOT_VALUE_OPTIONS = ("--config", "-c", "--rpc")
ROOT_FLAGS = ("--debug",)

_NEGATIVE = re.compile(r"-(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def hoist_root_options(args: list[str]) -> list[str]:
    """``args`` with the root options that follow the subcommand moved before it (in
    order), so that click, which reads root options only before it, sees them. Nothing
    after ``--`` moves."""
    head: list[str] = []
    tail: list[str] = []
    command_seen = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            tail.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in ROOT_VALUE_OPTIONS or arg in ROOT_FLAGS:
            width = 2 if name in ROOT_VALUE_OPTIONS and "=" not in arg else 1
            head.extend(args[i : i + width])
            i += width
            continue
        command_seen = command_seen or not arg.startswith("-")
        (tail if command_seen else head).append(arg)
        i += 1
    return head + tail


def _plain_flags(command: Any, ctx: Any) -> None:
    """No ``<bool>`` after a flag in ``command``'s help (and its subcommands')."""
    params = list(getattr(command, "params", []))
    help_option = command.get_help_option(ctx) if hasattr(command, "get_help_option") else None
    for param in [*params, help_option]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub, ctx)


class RootGroup(TyperGroup):
    """The ``escrowkit`` group (see the module)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["escrowkit.args"] = list(args)  # shared with the subcommands' contexts
        return super().parse_args(ctx, hoist_root_options(list(args)))

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _plain_flags(self, ctx)
        return params

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_flags(command, ctx)
        return command

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except typer.TyperException as exc:
            amount = _negative_amount(exc)
            if amount is None:
                raise
            raise amount from None


def _negative_amount(exc: Exception) -> typer.BadParameter | None:
    """``-5`` read as an unknown option where a command takes an amount: say what it is."""
    option, ctx = getattr(exc, "option_name", None), getattr(exc, "ctx", None)
    if not option or ctx is None or not _NEGATIVE.match(option):
        return None
    if "amount" not in [param.name for param in ctx.command.params]:
        return None
    words = [arg for arg in ctx.meta.get("escrowkit.args", ()) if arg.startswith(option)]
    written = next((arg for arg in words if _NEGATIVE.fullmatch(arg)), option)
    return typer.BadParameter(
        f"amounts are positive, got {written}", ctx=ctx, param_hint="'AMOUNT'"
    )
