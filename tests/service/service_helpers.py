"""Shared pieces of the service tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from escrowkit.coordinator import NoopExecutor, PlannedSpend

U = 10**6  # USDC base units
AGENT_A = "0x00000000000000000000000000000000000000A1"
AGENT_B = "0x00000000000000000000000000000000000000B2"
PROVIDER = "0x00000000000000000000000000000000000000C1"


@dataclass(frozen=True)
class Keys:
    """One key per role (the agent keys of ``research`` and ``data``)."""

    research: str
    data: str
    approver: str
    admin: str


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def spend_body(amount: int | str = 25 * U, **extra: Any) -> dict[str, Any]:
    return {"amount": amount, "provider": PROVIDER, "purpose": "dataset", **extra}


def error_code(response: Any) -> str:
    """The ``code`` of an error response (and that it has the one error shape)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "code", "message"}, body
    return str(body["error"]["code"])


# --------------------------------------------------------------------------------------
# A real uvicorn in a thread (in-process, on a loopback port), and reading SSE.
# --------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """``with LiveServer(app) as url:`` uvicorn serving ``app`` on 127.0.0.1 in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread: Any = None

    def __enter__(self) -> str:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            assert self.thread.is_alive(), "uvicorn stopped"
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def read_events(
    url: str, key: str, count: int, *, headers: dict[str, str] | None = None, timeout: float = 10
) -> list[dict[str, Any]]:
    """The first ``count`` server-sent events of ``url`` (each ``{"id", "event", "data"}``)."""
    import json

    import httpx

    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream("GET", url, headers={**bearer(key), **(headers or {})}) as response,
    ):
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if not line:
                if "data" in current:
                    events.append(current)
                    if len(events) == count:
                        return events
                current = {}
                continue
            field, _, value = line.partition(": ")
            if field == "data":
                current["data"] = json.loads(value)
            elif field in ("id", "event"):
                current[field] = value
    return events


class Receiver:
    """A webhook endpoint on 127.0.0.1: records every delivery; answers 500 to the first
    ``fail_first`` and whenever ``failing`` is set, else 200."""

    def __init__(self, fail_first: int = 0) -> None:
        import http.server
        import threading

        self.fail_first = fail_first
        self.failing = False
        self.attempts: list[tuple[dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    failed = len(receiver.attempts) < receiver.fail_first or receiver.failing
                    status = 500 if failed else 200
                    receiver.attempts.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/s3cr3t-path"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self) -> list[dict[str, Any]]:
        """The bodies answered 2xx, in order."""
        import json

        with self.lock:
            return [json.loads(body) for _, body, status in self.attempts if status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's side of ``X-Escrowkit-Signature: t=<unix>,v1=<hex>``."""
    import hashlib
    import hmac

    fields = dict(part.split("=", 1) for part in headers["X-Escrowkit-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields["v1"])


class GatedExecutor(NoopExecutor):
    """The no-op executor, except that a spend of exactly ``gated`` waits for ``gate``
    (so a test can hold a spend in flight)."""

    gated = 7 * U

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def fund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        if spend.amount == self.gated:
            self.entered.set()
            assert self.gate.wait(30), "gate never opened"
        super().fund(spend, tx_hashes)


def wait_for_new_stream(app: Any, before: set[Any], timeout: float = 10) -> None:
    """Wait until ``/v1/events`` holds a stream not in ``before`` (a snapshot of
    ``app.state.hub.subscriptions``): from then on it sees every new event."""
    deadline = time.monotonic() + timeout
    while not set(app.state.hub.subscriptions) - before:
        assert time.monotonic() < deadline, "the event stream did not connect"
        time.sleep(0.01)
