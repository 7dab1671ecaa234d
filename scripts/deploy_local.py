"""Deploy the escrowkit contracts to a local anvil and fund the treasury.

    escrowkit chain &                      # a local anvil whose state survives restarts
    python scripts/deploy_local.py         # MockUSDC, Escrow, BudgetPool + 10,000 USDC

Addresses go to deployments/<chain id>.json; running it again reuses what is deployed.
"""

from __future__ import annotations

import argparse

from escrowkit import Chain, Deployments, deploy_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="the anvil's URL")
    parser.add_argument("--mint", default="10000", help="USDC to mint to the treasury")
    args = parser.parse_args()

    chain = Chain.connect(args.rpc)  # on a local anvil: its dev accounts sign
    manifest = Deployments.for_chain(chain)
    stack = deploy_stack(chain, deployments=manifest)
    treasury = chain.accounts[0]
    stack.token.mint(treasury, stack.token.units(args.mint), sender=treasury)

    print(f"chain {chain.chain_id}, manifest {manifest.path}")
    print(f"  token       {stack.token.address} ({stack.token.symbol})")
    print(f"  Escrow      {stack.escrow.address}")
    print(f"  BudgetPool  {stack.pool.address}")
    print(f"  treasury    {treasury} holds {stack.token.format(stack.token.balance_of(treasury))}")


if __name__ == "__main__":
    main()
