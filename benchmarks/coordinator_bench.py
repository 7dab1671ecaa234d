"""Coordinator overhead: decisions per second (DESIGN.md section 7: >= 2,000/s).

What is measured: checks + reservation + commit, through the real lock (thread lock and
SQLite ``BEGIN IMMEDIATE``) on a SQLite file that already holds 100,000 reservations
(with their audit entries and idempotency keys), with 32 threads asking at once. The
chain work is replaced by :class:`~escrowkit.coordinator.NoopExecutor`, so what remains is
the coordinator's own cost. Every request carries an idempotency key, as a careful
agent's would. The ledger syncs every commit group to disk (``synchronous=FULL``, the
store's default); ``--synchronous NORMAL`` measures the faster setting that may lose the
last commits to a power cut.

``--scope-levels 3`` places every agent at a three-level scope path
(``tenant:t/workspace:w<k>/agent:<id>``, four workspaces under one tenant) with a budget
on each level, so that each decision checks and counts three scope budgets besides the
total (DESIGN.md section 7: within 10 % of the figure without). ``--compare`` runs both,
alternating, and prints the ratio (the machine's speed drifts between runs).

    python -m benchmarks.coordinator_bench [--decisions N] [--threads N] [--prefill N]
                                           [--synchronous FULL|NORMAL]
                                           [--scope-levels 0|3] [--compare]

:func:`run` returns the figures; :func:`decisions_per_second` just the headline number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from escrowkit.budget import AgentConfig

TARGET = 2_000
THREADS = 32
PREFILL = 100_000
DECISIONS = 20_000
U = 10**6  # USDC base units

#: Scoped decisions/s may be at most this much below the unscoped figure.
SCOPE_TOLERANCE = 0.10

__all__ = [
    "SCOPE_TOLERANCE",
    "TARGET",
    "BenchResult",
    "compare_scopes",
    "decisions_per_second",
    "main",
    "run",
    "scope_ratio",
]


@dataclass(frozen=True)
class BenchResult:
    decisions: int
    seconds: float
    threads: int
    prefill: int
    approved: int
    denied: int
    cpu_seconds: float
    synchronous: str = "FULL"
    scope_levels: int = 0

    @property
    def per_second(self) -> float:
        return self.decisions / self.seconds

    @property
    def cpu_per_decision_us(self) -> float:
        """Process CPU time (all threads) per decision: steadier than wall time when other
        work shares the machine."""
        return self.cpu_seconds / self.decisions * 1e6

    def line(self) -> str:
        verdict = "ok" if self.per_second >= TARGET else "BELOW TARGET"
        return (
            f"coordinator: {self.per_second:,.0f} decisions/s (target >= {TARGET:,}) [{verdict}] "
            f"- {self.decisions:,} decisions ({self.approved:,} approved, {self.denied:,} denied), "
            f"{self.threads} threads, SQLite file (synchronous={self.synchronous}) with "
            f"{self.prefill:,} rows, no-op executor, {self.scope_levels or 'no'} scope levels, "
            f"{self.cpu_per_decision_us:,.0f} us CPU per decision"
        )


def _address(n: int) -> str:
    from eth_utils.address import to_checksum_address

    return to_checksum_address(n.to_bytes(20, "big"))


def _scope_of(index: int, levels: int) -> str:
    """Where agent ``index`` sits: "" (no scopes) or ``tenant:t/workspace:w<k>``."""
    if not levels:
        return ""
    if levels != 3:
        raise ValueError("scope levels are 0 or 3")
    return f"tenant:t/workspace:w{index % 4}"


def _prefill(store_url: str, agents: list[AgentConfig], rows: int, now: float) -> None:
    """Write ``rows`` committed spends of past days (with their audit entries, their
    idempotency keys and consistent counters) in bulk, as a ledger that careful agents
    have used for months."""
    from escrowkit.budget import charged_scopes
    from escrowkit.ledger import Store
    from escrowkit.ledger.schema import (
        audit_table,
        counters_table,
        idempotency_table,
        reservations_table,
    )

    store = Store(store_url)
    per_day: dict[tuple[str, str], int] = defaultdict(int)
    per_scope: dict[str, int] = defaultdict(int)
    batch: list[dict[str, object]] = []
    audit: list[dict[str, object]] = []
    keys: list[dict[str, object]] = []
    total = 0
    provider = _address(0xBEEF)
    with store.write() as ledger:
        conn = ledger.conn
        for i in range(rows):
            config = agents[i % len(agents)]
            agent = config.id
            created = now - 86_400 * (1 + i % 120) - (i % 7_000)
            day = dt.datetime.fromtimestamp(created, dt.UTC).date().isoformat()
            amount = (1 + i % 50) * U // 10
            rid = f"res_{i:032x}"
            batch.append(
                {
                    "id": rid,
                    "agent_id": agent,
                    "amount": amount,
                    "provider": provider,
                    "purpose": "prefill",
                    "category": None,
                    "day": day,
                    "created_at": created,
                    "lease_at": created,
                    "status": "SETTLED" if i % 3 else "COMMITTED",
                    "salt": "0x" + secrets.token_hex(32),
                    "escrow_id": "0x" + secrets.token_hex(32),
                    "requester": provider,
                    "tx_hashes": "[]",
                    "reason": "funded",
                    "approval_id": None,
                    "idempotency_key": f"prefill-{i}",
                    "updated_at": created,
                    "scope": config.path,
                }
            )
            for event in ("reserved", "committed"):
                audit.append(
                    {
                        "at": created,
                        "event": event,
                        "agent_id": agent,
                        "reservation_id": rid,
                        "approval_id": None,
                        "amount": amount,
                        "detail": json.dumps({"prefill": True}),
                    }
                )
            keys.append(
                {
                    "agent_id": agent,
                    "key": f"prefill-{i}",
                    "fingerprint": secrets.token_hex(32),
                    "result": json.dumps({"status": "APPROVED", "reservation_id": rid}),
                    "reservation_id": rid,
                    "created_at": created,
                }
            )
            per_day[(agent, day)] += amount
            for scope in charged_scopes(config.path):
                per_scope[scope] += amount
            total += amount
            if len(batch) >= 5_000:
                conn.execute(reservations_table.insert(), batch)
                conn.execute(audit_table.insert(), audit)
                conn.execute(idempotency_table.insert(), keys)
                batch, audit, keys = [], [], []
        if batch:
            conn.execute(reservations_table.insert(), batch)
            conn.execute(audit_table.insert(), audit)
            conn.execute(idempotency_table.insert(), keys)
        counters = counters_table.c
        conn.execute(
            counters_table.insert(),
            [
                {"kind": "day", "name": a, "period": d, "budget": None, "used": v}
                for (a, d), v in per_day.items()
            ],
        )
        for scope, used in [("", total), *per_scope.items()]:
            key = (counters.kind == "scope") & (counters.name == scope) & (counters.period == "")
            if conn.execute(counters_table.select().where(key)).first() is None:
                conn.execute(
                    counters_table.insert().values(
                        kind="scope", name=scope, period="", budget=None, used=used
                    )
                )
            else:
                conn.execute(counters_table.update().where(key).values(used=used))
    store.close()


def run(
    decisions: int = DECISIONS,
    *,
    threads: int = THREADS,
    prefill: int = PREFILL,
    synchronous: Literal["NORMAL", "FULL"] = "FULL",
    directory: str | Path | None = None,
    scope_levels: int = 0,
) -> BenchResult:
    """Measure ``decisions`` spend decisions from ``threads`` threads; returns the figures.

    ``synchronous`` is the SQLite setting of the ledger (see :class:`Store`): FULL, the
    store's default, syncs each commit group to disk; NORMAL leaves that to checkpoints.
    ``scope_levels=3`` places the agents at three-level paths with a budget on each level.
    """
    from escrowkit.budget import charged_scopes
    from escrowkit.coordinator import (
        AgentConfig,
        BudgetCoordinator,
        NoopExecutor,
        SpendRequest,
        Store,
    )

    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        now = time.time()
        agent_ids = [f"agent-{n:02d}" for n in range(threads)]
        coordinator = BudgetCoordinator(
            None, total_budget=10**15 * U, store=url, executor=NoopExecutor()
        )
        configs = [
            AgentConfig(
                agent_id,
                agent_id,
                _address(0x1000 + n),
                spending_limit=1_000 * U,
                daily_limit=10**9 * U,
                requires_approval=1_000 * U,
                scope=_scope_of(n, scope_levels),
            )
            for n, agent_id in enumerate(agent_ids)
        ]
        for config in configs:
            coordinator.register_agent(config)
            if config.scope:  # a budget on every level: each one is checked and counted
                for scope in charged_scopes(config.path):
                    coordinator.set_budget(scope, 10**14 * U)
        coordinator.close()
        _prefill(url, configs, prefill, now)

        store = Store(url, synchronous=synchronous)
        coordinator = BudgetCoordinator(
            None, total_budget=10**15 * U, store=store, executor=NoopExecutor()
        )
        provider = _address(0xCAFE)
        per_thread = decisions // threads
        counts = {"APPROVED": 0, "DENIED": 0}
        lock = threading.Lock()
        start_gate = threading.Barrier(threads + 1)

        def worker(index: int) -> None:
            agent_id = agent_ids[index]
            local = {"APPROVED": 0, "DENIED": 0}
            start_gate.wait()
            for i in range(per_thread):
                # Every 20th asks above the per-transaction limit: a denial.
                amount = 2_000 * U if i % 20 == 19 else (1 + i % 9) * U
                result = coordinator.request_spending(
                    SpendRequest(
                        agent_id,
                        amount,
                        provider,
                        "benchmark",
                        idempotency_key=f"{agent_id}-{i}",
                    )
                )
                local[result.status.value] += 1
            with lock:
                for key, value in local.items():
                    counts[key] += value

        # Warm-up (statement caches, connections), not measured.
        for _ in range(50):
            coordinator.request_spending(SpendRequest(agent_ids[0], U, provider, "warm-up"))

        workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for thread in workers:
            thread.start()
        start_gate.wait()
        began, cpu_began = time.perf_counter(), time.process_time()
        for thread in workers:
            thread.join()
        seconds = time.perf_counter() - began
        cpu_seconds = time.process_time() - cpu_began
        store.close()
        return BenchResult(
            decisions=per_thread * threads,
            seconds=seconds,
            threads=threads,
            prefill=prefill,
            approved=counts["APPROVED"],
            denied=counts["DENIED"],
            cpu_seconds=cpu_seconds,
            synchronous=synchronous,
            scope_levels=scope_levels,
        )


def compare_scopes(
    decisions: int = DECISIONS, *, rounds: int = 2, **options: Any
) -> tuple[list[BenchResult], list[BenchResult]]:
    """Runs without scopes and with three-level scopes, alternating ``rounds`` times each
    (a drifting machine then slows both alike); (plain, scoped)."""
    plain: list[BenchResult] = []
    scoped: list[BenchResult] = []
    for _ in range(rounds):
        plain.append(run(decisions, **options))
        scoped.append(run(decisions, scope_levels=3, **options))
    return plain, scoped


def scope_ratio(plain: list[BenchResult], scoped: list[BenchResult]) -> tuple[float, float]:
    """Scoped over plain: decisions/s (best of each) and CPU per decision (best of each)."""
    rate = max(r.per_second for r in scoped) / max(r.per_second for r in plain)
    cpu = min(r.cpu_per_decision_us for r in scoped) / min(r.cpu_per_decision_us for r in plain)
    return rate, cpu


def decisions_per_second(decisions: int = DECISIONS) -> float:
    """The headline figure for a combined ``make bench``."""
    return run(decisions).per_second


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=DECISIONS)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--prefill", type=int, default=PREFILL)
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default="FULL")
    parser.add_argument("--scope-levels", type=int, choices=(0, 3), default=0)
    parser.add_argument(
        "--compare", action="store_true", help="run without and with 3-level scopes, twice"
    )
    args = parser.parse_args(argv)
    options: dict[str, Any] = {
        "threads": args.threads,
        "prefill": args.prefill,
        "synchronous": args.synchronous,
    }
    if args.compare:
        plain, scoped = compare_scopes(args.decisions, **options)
        for result in (*plain, *scoped):
            print(result.line())
        rate, cpu = scope_ratio(plain, scoped)
        verdict = "ok" if rate >= 1 - SCOPE_TOLERANCE else "BELOW TARGET"
        print(
            f"scopes: 3-level paths run at {rate:.0%} of the decisions/s without "
            f"(target >= {1 - SCOPE_TOLERANCE:.0%}) [{verdict}], {cpu:.0%} of the CPU per decision"
        )
        return 0 if rate >= 1 - SCOPE_TOLERANCE else 1
    result = run(args.decisions, scope_levels=args.scope_levels, **options)
    print(result.line())
    return 0 if result.per_second >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
