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

:func:`run` returns the figures.
"""

from __future__ import annotations

import argparse
import asyncio
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
        return (
            f"service: {self.per_second:,.0f} decisions/s over HTTP (target >= {TARGET:,}), "
            f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms (target < {P99_TARGET_MS:.0f}) "
            f"[{'ok' if ok else 'BELOW TARGET'}] - {self.requests:,} requests, "
            f"{self.clients} clients, {self.statuses}, server CPU "
            f"{self.server_cpu_per_request_us:,.0f} us per request, spends via {path}"
        )


# ---- the server process -------------------------------------------------------------------


def serve(folder: str, port: int, agents: int) -> None:
    """The child: a coordinator on the no-op executor, keys for its agents (written to
    ``folder/keys.json``), the app on uvicorn."""
    import uvicorn

    from escrowkit.coordinator import AgentConfig, BudgetCoordinator, NoopExecutor
    from escrowkit.service.app import create_app

    url = f"sqlite:///{Path(folder) / 'ledger.db'}"
    coordinator = BudgetCoordinator(
        None, total_budget=10**15 * U, store=url, executor=NoopExecutor()
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
    app = create_app(coordinator)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=1024
    )
    uvicorn.Server(config).run()


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


def run(requests: int = REQUESTS, *, clients: int = CLIENTS, agents: int = AGENTS) -> ServiceResult:
    """Start the service, warm it up, measure ``requests`` spends from ``clients``."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.service_bench",
                "--serve",
                folder,
                str(port),
                str(agents),
            ]
        )
        try:
            keys = _wait_for_keys(Path(folder), child)
            _wait_for_port(port)
            asyncio.run(_load(port, keys, clients, 20))  # warm-up: connections, caches
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
    )


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
        "--serve", nargs=3, metavar=("FOLDER", "PORT", "AGENTS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), int(args.serve[2]))
        return 0
    result = run(args.requests, clients=args.clients, agents=args.agents)
    print(result.line())
    return 0 if result.per_second >= TARGET and result.p99_ms < P99_TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
