"""Service load: decisions per second and latency over HTTP (DESIGN.md section 7: >= 1,000
decisions/s with 64 concurrent clients, p99 under 50 ms, no-op executor, SQLite).

What is measured: ``POST /v1/spends`` end to end, from request bytes written to response
bytes read, through uvicorn (httptools, uvloop), FastAPI, the key check (a ledger read
per request), the coordinator (checks, reservation, commit, the outbox event, through
the real lock on a SQLite file in WAL mode, ``synchronous=FULL``) and back. The chain
work is replaced by :class:`~escrowkit.coordinator.NoopExecutor`. The service runs in
its own process; the load comes from this one: ``clients`` keep-alive connections, each
sending its next request as soon as the last answer is in (a closed loop), every request
with its own idempotency key, every 20th above the agent's per-transaction limit (a
denial). The clients are a few lines of asyncio, so that the load generator costs less
CPU than the server it measures (both share this machine's cores).

    python -m benchmarks.service_bench [--requests N] [--clients N] [--agents N]
                                       [--block-time SECONDS]

``--block-time 2`` measures spends/s instead: the service's coordinator funds every
approved spend on an anvil with two-second blocks (treasury mode, createAndFund, one
key; DESIGN.md section 9's "the service never holds a thread per spend in flight").
Each client's spend then needs a block, so C clients cannot do more than C / 2 spends/s.

:func:`run` returns the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TARGET = 1_000
P99_TARGET_MS = 50.0
CLIENTS = 64
AGENTS = 32
REQUESTS = 20_000
U = 10**6

__all__ = ["P99_TARGET_MS", "TARGET", "ServiceResult", "main", "run"]


@dataclass(frozen=True)
class ServiceResult:
    requests: int
    seconds: float
    clients: int
    latencies_ms: tuple[float, ...]
    statuses: dict[str, int]
    server_cpu_seconds: float
    async_spend: bool
    block_time: float = 0.0  # 0: the no-op executor; else anvil --block-time

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(int(len(ordered) * q), len(ordered) - 1)]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99_ms(self) -> float:
        return self.percentile(0.99)

    @property
    def server_cpu_per_request_us(self) -> float:
        return self.server_cpu_seconds / self.requests * 1e6

    def line(self) -> str:
        ok = self.per_second >= TARGET and self.p99_ms < P99_TARGET_MS
        path = "arequest_spending" if self.async_spend else "request_spending in threads"
        if self.block_time:
            bound = self.clients / self.block_time
            return (
                f"service on anvil --block-time {self.block_time:g}: {self.per_second:,.1f} "
                f"spends/s over HTTP (C / block time: {bound:,.0f} over a long run, "
                f"C = {self.clients} clients), p50 {self.p50_ms:,.0f} ms, "
                f"p99 {self.p99_ms:,.0f} ms "
                f"- {self.requests:,} requests, {self.statuses}, server CPU "
                f"{self.server_cpu_per_request_us:,.0f} us per request, spends via {path}"
            )
        return (
            f"service: {self.per_second:,.0f} decisions/s over HTTP (target >= {TARGET:,}), "
            f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms (target < {P99_TARGET_MS:.0f}) "
            f"[{'ok' if ok else 'BELOW TARGET'}] - {self.requests:,} requests, "
            f"{self.clients} clients, {self.statuses}, server CPU "
            f"{self.server_cpu_per_request_us:,.0f} us per request, spends via {path}"
        )


# ---- the server process -------------------------------------------------------------------


def serve(folder: str, port: int, agents: int, rpc_url: str | None = None) -> None:
    """The child: a coordinator on the no-op executor (or, with ``rpc_url``, on the stack
    that ``folder/deployments.json`` records, funding from the node's first account),
    keys for its agents (written to ``folder/keys.json``), the app on uvicorn as
    ``escrowkit serve`` runs it."""
    from escrowkit.coordinator import AgentConfig, BudgetCoordinator, NoopExecutor
    from escrowkit.service.runner import serve as serve_http

    url = f"sqlite:///{Path(folder) / 'ledger.db'}"
    if rpc_url is None:
        coordinator = BudgetCoordinator(
            None, total_budget=10**15 * U, store=url, executor=NoopExecutor()
        )
    else:
        from escrowkit.contracts.deploy import Deployments
        from escrowkit.contracts.stack import load_stack
        from escrowkit.evm.chain import Chain

        chain = Chain.connect(rpc_url)
        stack = load_stack(chain, Deployments(chain.chain_id, Path(folder) / "deployments.json"))
        coordinator = BudgetCoordinator(
            stack, treasury=chain.accounts[0], total_budget=10**15 * U, store=url
        )
    keys = []
    for n in range(agents):
        agent_id = f"agent-{n:02d}"
        address = "0x" + (0x1000 + n).to_bytes(20, "big").hex()
        from eth_utils.address import to_checksum_address

        coordinator.register_agent(
            AgentConfig(
                agent_id,
                agent_id,
                to_checksum_address(address),
                spending_limit=1_000 * U,
                daily_limit=10**9 * U,
                requires_approval=1_000 * U,
            )
        )
        keys.append(coordinator.api_keys.create("agent", agent_id=agent_id)[1])
    (Path(folder) / "keys.json").write_text(json.dumps(keys))
    serve_http(coordinator, host="127.0.0.1", port=port)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the load ---------------------------------------------------------------------------------


async def _client(
    port: int,
    keys: list[str],
    index: int,
    count: int,
    latencies: list[float],
    statuses: dict[str, int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    provider = "0x000000000000000000000000000000000000cafE"
    key = keys[index % len(keys)]
    for i in range(count):
        amount = 2_000 * U if i % 20 == 19 else (1 + i % 9) * U
        body = json.dumps({"amount": amount, "provider": provider, "purpose": "bench"}).encode()
        head = (
            f"POST /v1/spends HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Idempotency-Key: c{index}-{i}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        began = time.perf_counter()
        writer.write(head + body)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        answer = json.loads(await reader.readexactly(length))
        latencies.append((time.perf_counter() - began) * 1000)
        code = status_line.split()[1].decode()
        label = answer.get("status", code) if code == "200" else code
        statuses[label] = statuses.get(label, 0) + 1
    writer.close()


async def _load(
    port: int, keys: list[str], clients: int, per_client: int
) -> tuple[float, list[float], dict[str, int]]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    began = time.perf_counter()
    await asyncio.gather(
        *(_client(port, keys, n, per_client, latencies, statuses) for n in range(clients))
    )
    return time.perf_counter() - began, latencies, statuses


def run(
    requests: int = REQUESTS,
    *,
    clients: int = CLIENTS,
    agents: int = AGENTS,
    block_time: float = 0.0,
) -> ServiceResult:
    """Start the service, warm it up, measure ``requests`` spends from ``clients``
    (``block_time``: on an anvil with that block time, see the module)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        serve_args = [folder, str(port), str(agents)]
        if block_time:
            serve_args.append(_anvil_with_stack(stack, Path(folder), block_time))
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.service_bench", "--serve", *serve_args]
        )
        try:
            keys = _wait_for_keys(Path(folder), child)
            _wait_for_port(port)
            # Warm-up (connections, caches): one block's worth on a chain, else 20 each.
            asyncio.run(_load(port, keys, clients, 1 if block_time else 20))
            cpu_began = _cpu_seconds(child.pid)
            seconds, latencies, statuses = asyncio.run(
                _load(port, keys, clients, requests // clients)
            )
            cpu = _cpu_seconds(child.pid) - cpu_began
        finally:
            child.terminate()
            child.wait(30)
    from escrowkit.coordinator import BudgetCoordinator

    return ServiceResult(
        requests=len(latencies),
        seconds=seconds,
        clients=clients,
        latencies_ms=tuple(latencies),
        statuses=statuses,
        server_cpu_seconds=cpu,
        async_spend=callable(getattr(BudgetCoordinator, "arequest_spending", None)),
        block_time=block_time,
    )


def _anvil_with_stack(stack: contextlib.ExitStack, folder: Path, block_time: float) -> str:
    """Start anvil (stopped with ``stack``), deploy the contracts (manifest in
    ``folder``), fund the treasury with its allowance at max; the node's URL."""
    from escrowkit.contracts.deploy import Deployments
    from escrowkit.contracts.stack import deploy_stack
    from escrowkit.core.units import MAX_UINT256
    from escrowkit.evm.anvil import start_anvil
    from escrowkit.evm.chain import Chain

    process = start_anvil(extra_args=["--block-time", f"{block_time:g}"])
    stack.callback(process.stop)
    chain = Chain.connect(process.url)
    contracts = deploy_stack(
        chain, deployments=Deployments(chain.chain_id, folder / "deployments.json")
    )
    owner = chain.accounts[0]
    contracts.token.mint(owner, 10**15 * U, sender=owner)
    contracts.token.approve(contracts.escrow.address, MAX_UINT256, sender=owner)
    return str(process.url)


def _wait_for_keys(folder: Path, child: subprocess.Popen[bytes]) -> list[str]:
    deadline = time.monotonic() + 120
    while not (folder / "keys.json").exists():
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.1)
    time.sleep(0.2)
    return list(json.loads((folder / "keys.json").read_text()))


def _wait_for_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--agents", type=int, default=AGENTS)
    parser.add_argument(
        "--block-time", type=float, default=0.0, help="fund on anvil with this block time"
    )
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        folder, port, agents, *rpc_url = args.serve
        serve(folder, int(port), int(agents), *rpc_url)
        return 0
    result = run(
        args.requests, clients=args.clients, agents=args.agents, block_time=args.block_time
    )
    print(result.line())
    if args.block_time:
        return 0
    return 0 if result.per_second >= TARGET and result.p99_ms < P99_TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
