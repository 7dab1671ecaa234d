"""A lean JSON-RPC client for HTTP nodes.

Every transaction makes three requests (estimate, send, receipt). Through web3's method
layer and ``requests`` each cost 1.3 to 1.5 ms of CPU here, most of it formatting and
per-request session work rather than the node; on one key whose nonce lock serializes the
sends, that CPU is the throughput. This module keeps web3 and cuts both costs:

- :class:`LeanHTTPProvider` is web3's ``HTTPProvider`` (same request encoding, same retry
  rules for the same methods) over :class:`HttpTransport`: keep-alive ``http.client``
  connections, one per thread, instead of a ``requests`` session;
- :meth:`LeanHTTPProvider.request` is a raw JSON-RPC call (the result, or
  :class:`RpcError`) for the hot path of :class:`~escrowkit.evm.transports.LeanTransport`,
  which formats raw receipts with :func:`escrowkit.evm.receipts.format_receipt`.

Nothing here logs a URL: RPC URLs carry API keys. (Imported by ``Chain.connect`` only:
it imports web3.)
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import select
import socket
import threading
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlparse

import requests
from web3 import HTTPProvider
from web3.types import RPCEndpoint, RPCResponse

__all__ = ["HttpTransport", "LeanHTTPProvider", "RpcError"]


class RpcError(Exception):
    """The node answered a JSON-RPC error object."""

    def __init__(self, method: str, error: Mapping[str, Any]) -> None:
        self.method = method
        self.code = error.get("code")
        self.message = str(error.get("message", ""))
        self.data = error.get("data")
        super().__init__(f"{method}: {self.message} (code {self.code})")


class HttpTransport:
    """POSTs over keep-alive connections, one per thread, so threads never queue for a
    connection and a request costs no more than ``http.client`` itself."""

    def __init__(self, url: str, timeout: float) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("an http(s) URL is needed")
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port
        self._path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        self._timeout = timeout
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if parsed.username is not None:
            credentials = f"{unquote(parsed.username)}:{unquote(parsed.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(
                credentials.encode()
            ).decode("ascii")
        self._local = threading.local()
        # Weakly: a thread's connection goes (and its socket closes) when the thread ends.
        self._all: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._all.add(conn)
        return conn

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        self._local.conn = None
        with self._lock:
            self._all.discard(conn)

    def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """The response body; raises ``requests``' ConnectionError, Timeout or HTTPError.

        A kept-alive connection the server closed while idle is noticed before it is used
        (as urllib3 does). One the server closes just as the request goes out ends
        without any answer; the request is then sent once more on a new connection. That
        is safe for every call escrowkit makes: reads, and signed raw transactions, which
        execute at most once (a repeat is "already known", which the chain treats as sent).
        """
        send_headers = {**(headers or {}), **self._headers}
        for attempt in (1, 2):
            conn = self._connection()
            if conn.sock is not None and _dropped(conn.sock):
                self._drop(conn)
                conn = self._connection()
            reused = conn.sock is not None
            try:
                conn.request("POST", self._path, body, send_headers)
                response = conn.getresponse()
                data = response.read()
            except TimeoutError as exc:
                self._drop(conn)
                raise requests.Timeout(f"no answer within {self._timeout:g}s") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop(conn)
                unanswered = isinstance(
                    exc, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
                )
                if reused and unanswered and attempt == 1:
                    continue
                raise requests.ConnectionError(f"{type(exc).__name__}: {exc}") from exc
            if response.will_close:
                self._drop(conn)
            if response.status >= 400:
                raise requests.HTTPError(f"HTTP {response.status} {response.reason}")
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            connections, self._all = list(self._all), weakref.WeakSet()
        for conn in connections:
            conn.close()


def _dropped(sock: socket.socket) -> bool:
    """An idle kept-alive connection with something to read: the server closed it (or
    broke the protocol); either way it must not carry the next request."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


class _SessionManager:
    """What web3's HTTPProvider asks of its session manager, over an HttpTransport."""

    def __init__(self, transport: HttpTransport) -> None:
        self.transport = transport

    def make_post_request(self, endpoint_uri: Any, data: bytes, **kwargs: Any) -> bytes:
        return self.transport.post(data, kwargs.get("headers"))


class LeanHTTPProvider(HTTPProvider):
    """web3's ``HTTPProvider`` over :class:`HttpTransport`; see the module."""

    #: Tells :func:`~escrowkit.evm.chain.transport_for` that :meth:`request` is there.
    lean_json_rpc = True

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        super().__init__(url, request_kwargs={"timeout": timeout})
        self.transport = HttpTransport(url, timeout)
        self._request_session_manager = _SessionManager(self.transport)  # type: ignore[assignment]
        self._ids = itertools.count(1)

    def __str__(self) -> str:
        return "lean JSON-RPC connection"  # never the URL: it may hold a key

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        # What the parent does, without its DEBUG lines that print the endpoint URI.
        request_data = self.encode_rpc_request(method, params)
        return self.decode_rpc_response(self._make_request(method, request_data))

    def request(self, method: str, params: list[Any]) -> Any:
        """One raw JSON-RPC call (web3's retry rules apply): its ``result``, or
        :class:`RpcError`."""
        body = json.dumps(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        ).encode()
        answer = json.loads(self._make_request(RPCEndpoint(method), body))
        if not isinstance(answer, dict):
            raise RpcError(method, {"message": f"not a JSON-RPC answer: {answer!r:.200}"})
        error = answer.get("error")
        if error is not None:
            raise RpcError(method, error if isinstance(error, dict) else {"message": str(error)})
        return answer.get("result")

    def request_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several raw JSON-RPC calls in one batch (one POST): each call's ``result``, or
        its :class:`RpcError` (returned, not raised), in the order of ``calls``. Only for
        reads: a batch is sent again after a connection died unanswered."""
        ids = [next(self._ids) for _ in calls]
        body = json.dumps(
            [
                {"jsonrpc": "2.0", "id": n, "method": method, "params": params}
                for n, (method, params) in zip(ids, calls, strict=True)
            ]
        ).encode()
        answers = json.loads(self.transport.post(body))
        if not isinstance(answers, list):
            # A node that refuses batches answers with one error object.
            error = answers.get("error") if isinstance(answers, dict) else None
            raise RpcError("batch", error if isinstance(error, dict) else {"message": "refused"})
        by_id = {answer.get("id"): answer for answer in answers if isinstance(answer, dict)}
        out: list[Any] = []
        for n, (method, _) in zip(ids, calls, strict=True):
            answer = by_id.get(n)
            if answer is None:
                out.append(RpcError(method, {"message": "no answer in the batch"}))
            elif answer.get("error") is not None:
                error = answer["error"]
                out.append(
                    RpcError(method, error if isinstance(error, dict) else {"message": str(error)})
                )
            else:
                out.append(answer.get("result"))
        return out

    def close(self) -> None:
        self.transport.close()
