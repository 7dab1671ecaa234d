"""``pool contribute``: funds for pool mode."""

from __future__ import annotations

from typing import Annotated

import typer

from escrowkit.cli.options import open_chain, open_settings, parse_amount
from escrowkit.cli.render import console


def pool_contribute(
    amount: Annotated[str, typer.Argument(help="Token units to move into the pool.")],
) -> None:
    """Move tokens from the treasury key into the BudgetPool (pool mode's funds)."""
    settings = open_settings()
    chain_ = open_chain(settings)
    from escrowkit.config import bootstrap

    stack = bootstrap.open_stack(settings, chain_)
    sender = bootstrap.signer(settings, chain_)
    value = parse_amount(stack.token, amount)
    if stack.token.allowance(sender, stack.pool.address) < value:
        stack.token.force_approve(stack.pool.address, value, sender=sender)
    stack.pool.contribute(value, sender=sender)
    console.print(f"contributed {stack.token.format(value)}")
