"""The lean JSON-RPC transport against a small local HTTP server: what a node or a proxy
in front of it can do to a keep-alive connection."""

from __future__ import annotations

import base64
import gc
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from escrowkit.evm.http import HttpTransport, LeanHTTPProvider, RpcError


@dataclass
class Behaviour:
    """What the server does with the next requests."""

    status: int = 200
    answer: dict[str, Any] = field(default_factory=lambda: {"result": "0x1"})
    close_after_answer: bool = False  # close the socket without saying so
    delay: float = 0.0
    seen: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[tuple[str, Behaviour]]:
    behaviour = Behaviour()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as nodes do

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            behaviour.seen.append(
                {
                    "body": body,
                    "auth": self.headers.get("Authorization"),
                    "port": self.client_address[1],  # one per connection
                }
            )
            time.sleep(behaviour.delay)
            payload = json.dumps({"jsonrpc": "2.0", "id": body.get("id"), **behaviour.answer})
            self.send_response(behaviour.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload.encode())
            if behaviour.close_after_answer:
                self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v3/key", behaviour
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_connection_the_server_dropped_while_idle_is_retried_once(
    server: tuple[str, Behaviour],
) -> None:
    url, behaviour = server
    behaviour.close_after_answer = True  # every answer ends its connection, unannounced
    provider = LeanHTTPProvider(url, timeout=5)
    assert [provider.request("eth_chainId", []) for _ in range(3)] == ["0x1"] * 3
    assert [seen["body"]["method"] for seen in behaviour.seen] == ["eth_chainId"] * 3
    provider.close()


def test_json_rpc_errors_keep_code_message_and_data(server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    behaviour.answer = {"error": {"code": 3, "message": "execution reverted", "data": "0xab"}}
    with pytest.raises(RpcError) as caught:
        LeanHTTPProvider(url, timeout=5).request("eth_estimateGas", [{}])
    assert (caught.value.code, caught.value.message, caught.value.data) == (
        3,
        "execution reverted",
        "0xab",
    )


def test_http_errors_and_timeouts_are_the_types_web3_retries_on(
    server: tuple[str, Behaviour],
) -> None:
    url, behaviour = server
    behaviour.status = 503
    with pytest.raises(requests.HTTPError, match="503"):
        HttpTransport(url, timeout=5).post(b"{}")
    behaviour.status, behaviour.delay = 200, 0.5
    with pytest.raises(requests.Timeout):
        HttpTransport(url, timeout=0.1).post(b"{}")


def test_credentials_in_the_url_become_basic_auth_and_never_the_path(
    server: tuple[str, Behaviour],
) -> None:
    url, behaviour = server
    with_login = url.replace("http://", "http://alice:s%40cret@")
    provider = LeanHTTPProvider(with_login, timeout=5)
    assert provider.request("eth_chainId", []) == "0x1"
    expected = "Basic " + base64.b64encode(b"alice:s@cret").decode()
    assert behaviour.seen[-1]["auth"] == expected
    # web3's own provider prints its URI in str(); errors must not carry it either.
    assert "key" not in str(provider) and "alice" not in str(provider)
    with pytest.raises(requests.ConnectionError) as refused:
        LeanHTTPProvider("http://alice:s3cret@127.0.0.1:1/v3/key", timeout=5).request(
            "eth_chainId", []
        )
    for secret in ("alice", "s3cret", "/v3/key"):
        assert secret not in str(refused.value)


def test_threads_each_get_their_own_connection(server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    behaviour.delay = 0.05
    provider = LeanHTTPProvider(url, timeout=5)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(provider.request("eth_chainId", [])))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["0x1"] * 8
    assert len({seen["port"] for seen in behaviour.seen}) == 8  # no queue for one connection
    del threads
    gc.collect()
    assert len(provider.transport._all) == 0  # ended threads keep no socket open
    assert len({seen["body"]["id"] for seen in behaviour.seen}) == 8  # distinct request ids
