"""``deploy_stack``: a token, its Escrow and a BudgetPool, wired together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from escrowkit.chain import to_address
from escrowkit.deploy import Deployments, deploy
from escrowkit.escrow import EscrowClient
from escrowkit.pool import BudgetPoolClient
from escrowkit.token import TokenClient

if TYPE_CHECKING:
    from escrowkit.chain import Chain

__all__ = ["Stack", "deploy_stack"]


@dataclass(frozen=True)
class Stack:
    """Clients for one deployment: ``token``, ``escrow`` (for that token), ``pool``."""

    chain: Chain
    token: TokenClient
    escrow: EscrowClient
    pool: BudgetPoolClient


def deploy_stack(
    chain: Chain,
    token: str | None = None,
    owner: str | None = None,
    *,
    fee_bps: int = 0,
    fee_recipient: str | None = None,
    deployments: Deployments | None = None,
) -> Stack:
    """Deploy (or, with a manifest, reuse) MockUSDC, Escrow and BudgetPool.

    ``token`` is an existing ERC-20 address; without it a MockUSDC is deployed.
    ``owner`` (default ``chain.accounts[0]``) deploys everything and owns the pool.
    """
    if owner is None:
        if not chain.accounts:
            raise ValueError("deploy_stack needs an owner: this chain has no signing account")
        owner = chain.accounts[0]
    owner = to_address(owner, name="owner")
    if token is None:
        token = str(deploy(chain, "MockUSDC", sender=owner, deployments=deployments).address)
    token_client = TokenClient(chain, token)
    escrow = EscrowClient.deploy(
        chain,
        token_client.address,
        fee_bps=fee_bps,
        fee_recipient=fee_recipient,
        sender=owner,
        deployments=deployments,
    )
    pool = BudgetPoolClient.deploy(
        chain, escrow.address, owner=owner, sender=owner, deployments=deployments
    )
    return Stack(chain=chain, token=token_client, escrow=escrow, pool=pool)
