"""``deploy_stack``: a token, its Escrow and a BudgetPool, wired together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from escrowkit.build.compiler import load_artifact
from escrowkit.contracts.deploy import Deployments, deploy
from escrowkit.contracts.escrow import EscrowClient
from escrowkit.contracts.pool import BudgetPoolClient
from escrowkit.contracts.token import TokenClient
from escrowkit.core.addresses import to_address
from escrowkit.core.errors import ConfigurationError, NotFound

if TYPE_CHECKING:
    from escrowkit.evm.chain import Chain

__all__ = ["Stack", "deploy_stack", "load_stack"]


@dataclass(frozen=True)
class Stack:
    """Clients for one deployment: ``token``, ``escrow`` (for that token), ``pool``."""

    chain: Chain
    token: TokenClient
    escrow: EscrowClient
    pool: BudgetPoolClient

    def on(self, chain: Chain) -> Stack:
        """The same contracts through another connection (another RPC URL, or signer)."""
        return Stack(
            chain=chain,
            token=TokenClient(chain, self.token.address),
            escrow=EscrowClient(chain, self.escrow.address, from_block=self.escrow.from_block),
            pool=BudgetPoolClient(chain, self.pool.address),
        )


def deploy_stack(
    chain: Chain,
    token: str | None = None,
    owner: str | None = None,
    *,
    fee_bps: int = 0,
    fee_recipient: str | None = None,
    deployments: Deployments | None = None,
    force: bool = False,
) -> Stack:
    """Deploy (or, with a manifest, reuse) MockUSDC, Escrow and BudgetPool.

    ``token`` is an existing ERC-20 address; without it a MockUSDC is deployed.
    ``owner`` (default ``chain.accounts[0]``) deploys everything and owns the pool.
    ``force`` deploys every contract again even when the manifest has it.
    """
    if owner is None:
        if not chain.accounts:
            raise ConfigurationError(
                "deploy_stack needs an owner: this chain has no signing account "
                "(pass account= to Chain.connect)"
            )
        owner = chain.accounts[0]
    owner = to_address(owner, name="owner")
    if token is None:
        token = str(
            deploy(chain, "MockUSDC", sender=owner, deployments=deployments, force=force).address
        )
    token_client = TokenClient(chain, token)
    escrow = EscrowClient.deploy(
        chain,
        token_client.address,
        fee_bps=fee_bps,
        fee_recipient=fee_recipient,
        sender=owner,
        deployments=deployments,
        force=force,
    )
    pool = BudgetPoolClient.deploy(
        chain, escrow.address, owner=owner, sender=owner, deployments=deployments, force=force
    )
    return Stack(chain=chain, token=token_client, escrow=escrow, pool=pool)


def load_stack(chain: Chain, deployments: Deployments, token: str | None = None) -> Stack:
    """The stack a manifest records (``escrowkit deploy`` writes it); sends nothing.

    The token is the Escrow's own (read from the chain), so a manifest for an existing
    ERC-20 works as well as one with a MockUSDC.
    """
    entries = {name: deployments.get(name) for name in ("Escrow", "BudgetPool")}
    missing = [name for name, entry in entries.items() if entry is None]
    if missing:
        where = deployments.path or "this chain's manifest"
        raise NotFound(
            f"{', '.join(missing)} not deployed on chain {chain.chain_id} ({where}); "
            "run `escrowkit deploy` first"
        )
    escrow_entry, pool_entry = entries["Escrow"], entries["BudgetPool"]
    assert escrow_entry is not None and pool_entry is not None
    for entry in (escrow_entry, pool_entry):
        if len(chain.w3.eth.get_code(to_address(entry.address))) == 0:
            raise NotFound(
                f"{entry.name} at {entry.address} has no code on chain {chain.chain_id} "
                "(was the node restarted without its state?); run `escrowkit deploy` again"
            )
    escrow = EscrowClient(chain, escrow_entry.address, from_block=escrow_entry.block)
    token_address = token or escrow.token
    abi = load_artifact("MockUSDC").abi
    return Stack(
        chain=chain,
        token=TokenClient(chain, token_address, abi=abi),
        escrow=escrow,
        pool=BudgetPoolClient(chain, pool_entry.address),
    )
