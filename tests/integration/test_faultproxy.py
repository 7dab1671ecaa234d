"""The faulty JSON-RPC proxy itself, in front of a real anvil."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from escrowkit.contracts.deploy import deploy
from escrowkit.contracts.token import TokenClient
from escrowkit.errors import ChainError
from escrowkit.evm.chain import Chain
from escrowkit.testing.faultproxy import FaultyRPCProxy

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def node() -> Iterator[Chain]:
    with Chain.anvil() as chain:
        yield chain


@pytest.fixture
def token(node: Chain) -> TokenClient:
    # The proxied chains below sign with the same keys: a second Chain object's sends make
    # this one's cached nonces stale, and escrowkit never guesses around that by itself.
    node.nonces.resync()
    return TokenClient(node, deploy(node, "MockUSDC").address)


def through(proxy: FaultyRPCProxy) -> Chain:
    return Chain.connect(proxy.url, receipt_timeout=5)


def eventually(read: Callable[[], int], expected: int, timeout: float = 5.0) -> int:
    """The node answers a send before its block is mined: poll until it is (or give up)."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.02)
        value = read()
    return value


def test_rate_zero_is_transparent(node: Chain, token: TokenClient) -> None:
    with FaultyRPCProxy(node.w3.provider.endpoint_uri, rate=0.0) as proxy:  # type: ignore[attr-defined]
        chain = through(proxy)
        client = TokenClient(chain, token.address)
        client.mint(chain.accounts[1], 5, sender=chain.accounts[0])
        assert client.balance_of(chain.accounts[1]) == 5
        assert proxy.total_injected == 0
        assert proxy.forwarded["eth_sendRawTransaction"] == 1


def test_fail_answers_an_error_without_forwarding(node: Chain, token: TokenClient) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    with FaultyRPCProxy(url, rate=1.0, kinds=["fail"], methods=["eth_sendRawTransaction"]) as proxy:
        chain = through(proxy)
        client = TokenClient(chain, token.address)
        supply = token.total_supply()
        with pytest.raises(ChainError, match="injected fault"):
            client.mint(chain.accounts[1], 5, sender=chain.accounts[0])
        assert token.total_supply() == supply
        assert proxy.forwarded["eth_sendRawTransaction"] == 0


def test_drop_response_hides_a_transaction_that_happened(node: Chain, token: TokenClient) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    kinds = ["drop_response"]
    with FaultyRPCProxy(url, rate=1.0, kinds=kinds, methods=["eth_sendRawTransaction"]) as proxy:
        chain = through(proxy)
        client = TokenClient(chain, token.address)
        supply = token.total_supply()
        with pytest.raises(ChainError):
            client.mint(chain.accounts[1], 5, sender=chain.accounts[0])
        # The client saw a failure, yet the node executed it: exactly the case recovery handles.
        assert eventually(token.total_supply, supply + 5) == supply + 5


def test_duplicate_delivers_twice_and_the_client_sees_the_second_answer(
    node: Chain, token: TokenClient
) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    with FaultyRPCProxy(
        url, rate=1.0, kinds=["duplicate"], methods=["eth_sendRawTransaction"]
    ) as p:
        chain = through(p)
        client = TokenClient(chain, token.address)
        supply = token.total_supply()
        # The second answer is "nonce too low" (or "already known"): the client asks the
        # node for its own transaction, finds it, and takes it as sent.
        receipt = client.mint(chain.accounts[1], 5, sender=chain.accounts[0])
        assert receipt["status"] == 1
        assert p.forwarded["eth_sendRawTransaction"] == 1  # one call, delivered twice
        assert eventually(token.total_supply, supply + 5) == supply + 5  # once, not twice
        time.sleep(0.2)
        assert token.total_supply() == supply + 5


def test_delay_is_only_slow(node: Chain, token: TokenClient) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    with FaultyRPCProxy(url, rate=1.0, kinds=["delay"], delay=0.2, methods=["eth_call"]) as proxy:
        client = TokenClient(through(proxy), token.address)
        start = time.monotonic()
        assert client.balance_of(node.accounts[5]) == 0
        assert time.monotonic() - start >= 0.2


def test_seeded_decisions_are_reproducible(node: Chain) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]

    def decisions(seed: int) -> list[str | None]:
        proxy = FaultyRPCProxy(url, rate=0.3, seed=seed)
        try:
            return [proxy._choose(["eth_call"]) for _ in range(200)]
        finally:
            proxy.stop()

    first, again, other = decisions(7), decisions(7), decisions(8)
    assert first == again
    assert first != other
    injected = sum(d is not None for d in first)
    assert 30 <= injected <= 90  # ~30 % of 200
    assert {d for d in first if d} == {
        "drop_request",
        "drop_response",
        "delay",
        "duplicate",
        "fail",
    }


def test_a_transaction_the_node_lost_is_sent_again(node: Chain, token: TokenClient) -> None:
    """The node answers a send with its hash and drops it (a pool that evicted it, a node
    restarted): the receipt watcher sends the same signed bytes again once blocks pass
    without it, and the spend completes instead of waiting for a receipt that never comes
    (with every later transaction of that key stuck behind its nonce)."""
    import threading

    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    with FaultyRPCProxy(url, rate=1.0, kinds=["lose"], methods=["eth_sendRawTransaction"]) as proxy:
        chain = through(proxy)
        client = TokenClient(chain, token.address)
        supply = token.total_supply()
        done: list[object] = []
        minting = threading.Thread(
            target=lambda: done.append(client.mint(chain.accounts[1], 5, sender=chain.accounts[0]))
        )
        minting.start()
        assert eventually(lambda: proxy.injected[("eth_sendRawTransaction", "lose")], 1) == 1
        proxy.enabled = False
        assert token.total_supply() == supply  # the node never had it
        for _ in range(4):  # blocks go by without it
            node.mine()
            time.sleep(0.05)
        minting.join(10)
        assert done and done[0]["status"] == 1  # type: ignore[index]
        assert token.total_supply() == supply + 5
        assert chain.watcher.stats.resent >= 1
        assert proxy.forwarded["eth_sendRawTransaction"] >= 1
