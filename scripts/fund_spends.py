"""Fund a list of spends through the budget coordinator and print what happened to each.

    python scripts/fund_spends.py spends.csv          # or spends.json
    python scripts/fund_spends.py spends.json --config escrowkit.toml

Each row: agent_id, amount (token units, e.g. "25"), provider, purpose, and optionally
category and idempotency_key (with a key, running the file twice never pays twice).
Chain, deployment, ledger and agents come from escrowkit.toml (see `escrowkit --help`).
"""

from __future__ import annotations

import argparse

from escrowkit import SpendStatus
from escrowkit.cli import EXIT_DENIED, EXIT_FAILED
from escrowkit.cli.spendfile import read_spend_requests
from escrowkit.config import bootstrap
from escrowkit.config.settings import load_settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="a .csv or .json list of spends")
    parser.add_argument("--config", default=None, help="settings file (default escrowkit.toml)")
    args = parser.parse_args()

    settings = load_settings(args.config)
    chain = bootstrap.open_chain(settings)
    stack = bootstrap.open_stack(settings, chain)
    requests = read_spend_requests(args.file, stack.token.decimals)

    statuses = set()
    with bootstrap.open_coordinator(settings, chain, stack) as coordinator:
        for request in requests:
            result = coordinator.request_spending(request)
            statuses.add(result.status)
            amount = stack.token.format(request.amount)
            print(f"{request.agent_id:16s} {amount:>14s}  {result.status.name:16s} {result.reason}")
        report = coordinator.report()
    print(
        f"spent {stack.token.format(report.total_spent)}, "
        f"remaining {stack.token.format(report.remaining)}"
    )
    # The CLI's exit codes: 1 when a spend failed, else 3 when one was denied, else 0.
    if SpendStatus.FAILED in statuses:
        return EXIT_FAILED
    return EXIT_DENIED if SpendStatus.DENIED in statuses else 0


if __name__ == "__main__":
    raise SystemExit(main())
