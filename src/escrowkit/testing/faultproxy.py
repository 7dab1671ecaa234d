"""A faulty JSON-RPC proxy, for testing what survives a bad network.

:class:`FaultyRPCProxy` listens on a loopback port and forwards JSON-RPC to a real node
(anvil), except that, with probability ``rate`` and for the chosen methods, it injects a
fault. The faults are the ones that hurt a payment system most:

- ``drop_request``: the node never sees the call; the client's connection is cut.
- ``drop_response``: the node executes the call (a transaction *is* sent) but the client's
  connection is cut before the answer, so the client cannot know it succeeded.
- ``delay``: the answer comes ``delay`` seconds late.
- ``duplicate``: the call reaches the node twice; the client gets the second answer (for
  ``eth_sendRawTransaction`` that is an "already known" error for a transaction that was
  in fact accepted).
- ``fail``: the node never sees the call; the client gets a JSON-RPC error.
- ``lose`` (only when asked for): the node never sees the call, yet the client gets the
  answer it hoped for; for ``eth_sendRawTransaction`` the transaction's hash, as from a
  node that accepted the transaction and then dropped it from its pool.

Decisions come from one seeded random generator, so a run's fault rate and mix are
reproducible (which call gets which fault also depends on thread timing).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

__all__ = ["DEFAULT_FAULT_KINDS", "DEFAULT_FAULT_METHODS", "FAULT_KINDS", "FaultyRPCProxy"]

logger = logging.getLogger(__name__)

FAULT_KINDS = ("drop_request", "drop_response", "delay", "duplicate", "fail", "lose")
#: The mix a proxy injects unless told otherwise.
DEFAULT_FAULT_KINDS = FAULT_KINDS[:5]

#: Calls whose loss or repetition a client must survive.
DEFAULT_FAULT_METHODS = frozenset(
    {
        "eth_sendRawTransaction",
        "eth_getTransactionReceipt",
        "eth_getTransactionCount",
        "eth_estimateGas",
        "eth_call",
        "eth_getBlockByNumber",
    }
)


class FaultyRPCProxy:
    """A loopback HTTP JSON-RPC proxy that injects seeded faults. Use as a context manager."""

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.1,
        seed: int = 0,
        methods: Iterable[str] = DEFAULT_FAULT_METHODS,
        kinds: Iterable[str] = DEFAULT_FAULT_KINDS,
        delay: float = 0.3,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate}")
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {FAULT_KINDS}")
        parsed = urlparse(upstream)
        self._upstream_host = parsed.hostname or "127.0.0.1"
        self._upstream_port = parsed.port or 80
        self._upstream_path = parsed.path or "/"
        self.rate = rate
        self.methods = frozenset(methods)
        self.kinds = tuple(kinds)
        self.delay = delay
        self.enabled = True
        self.injected: Counter[tuple[str, str]] = Counter()
        self.forwarded: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultyRPCProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="faulty-rpc-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (safe to call when never started)."""
        if self._thread is not None:
            # shutdown() waits for serve_forever to notice, so only call it when serving.
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FaultyRPCProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())

    # ---- decisions ---------------------------------------------------------------------

    def _choose(self, methods: list[str]) -> str | None:
        if not self.enabled or not any(m in self.methods for m in methods):
            return None
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            for method in methods:
                self.injected[(method, kind)] += 1
            return kind

    # ---- forwarding --------------------------------------------------------------------

    def _forward(self, body: bytes) -> tuple[int, bytes]:
        connection: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        for attempt in range(2):
            if connection is None:
                connection = http.client.HTTPConnection(
                    self._upstream_host, self._upstream_port, timeout=60
                )
                self._local.conn = connection
            try:
                connection.request(
                    "POST",
                    self._upstream_path,
                    body=body,
                    headers={"Content-Type": "application/json"},
                )
                response = connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = None
                self._local.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("proxy: " + format, *args)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {}
                calls = payload if isinstance(payload, list) else [payload]
                methods = [str(c.get("method", "")) for c in calls if isinstance(c, dict)]
                kind = proxy._choose(methods)
                for method in methods:
                    proxy.forwarded[method] += kind not in ("drop_request", "fail", "lose")
                if kind == "lose":
                    self._answer(200, _lost_response(payload))
                    return
                if kind == "drop_request":
                    self._cut()
                    return
                if kind == "fail":
                    self._answer(200, _error_response(payload))
                    return
                if kind == "delay":
                    time.sleep(proxy.delay)
                try:
                    status, answer = proxy._forward(body)
                    if kind == "duplicate":
                        status, answer = proxy._forward(body)
                except (OSError, http.client.HTTPException):
                    self._cut()
                    return
                if kind == "drop_response":
                    self._cut()
                    return
                self._answer(status, answer)

            def _answer(self, status: int, answer: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _cut(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)

        return Handler


def _lost_response(payload: Any) -> bytes:
    """What a node that took the calls would answer: a sent transaction's hash (keccak of
    its signed bytes), null for anything else."""
    from eth_utils.crypto import keccak

    def one(call: Any) -> dict[str, Any]:
        call_id = call.get("id") if isinstance(call, dict) else None
        result = None
        if isinstance(call, dict) and call.get("method") == "eth_sendRawTransaction":
            raw = bytes.fromhex(str(call["params"][0]).removeprefix("0x"))
            result = "0x" + keccak(raw).hex()
        return {"jsonrpc": "2.0", "id": call_id, "result": result}

    if isinstance(payload, list):
        return json.dumps([one(c) for c in payload]).encode()
    return json.dumps(one(payload)).encode()


def _error_response(payload: Any) -> bytes:
    def one(call: Any) -> dict[str, Any]:
        call_id = call.get("id") if isinstance(call, dict) else None
        return {
            "jsonrpc": "2.0",
            "id": call_id,
            "error": {"code": -32603, "message": "injected fault: internal error"},
        }

    if isinstance(payload, list):
        return json.dumps([one(c) for c in payload]).encode()
    return json.dumps(one(payload)).encode()
