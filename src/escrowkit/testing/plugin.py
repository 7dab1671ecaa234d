"""pytest fixtures for code that uses escrowkit (registered through the ``pytest11`` entry point).

One chain per session (embedded eth-tester by default, or anvil with ``--chain anvil``),
contracts deployed once per session, and a snapshot taken before every test that uses the
chain and reverted after it, so no test sees another's state.

Fixtures: ``chain``, ``accounts``, ``usdc`` (MockUSDC), ``stack``, ``escrow``, ``pool``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

    from escrowkit.contracts.escrow import EscrowClient
    from escrowkit.contracts.pool import BudgetPoolClient
    from escrowkit.contracts.stack import Stack
    from escrowkit.contracts.token import TokenClient
    from escrowkit.evm.chain import Chain


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("escrowkit")
    group.addoption(
        "--chain",
        action="store",
        default="embedded",
        choices=("embedded", "anvil"),
        help="backend for the escrowkit `chain` fixture: in-process eth-tester (default) "
        "or a real anvil process (anvil on PATH, $ANVIL_BINARY, or node_modules)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "anvil: needs a real anvil process")
    if config.getoption("--chain", "embedded") == "anvil":
        # Once, before any test, instead of the same fixture error in every one of them.
        from escrowkit.core.errors import ConfigurationError
        from escrowkit.evm.anvil import find_anvil

        try:
            find_anvil()
        except ConfigurationError as exc:
            raise pytest.UsageError(f"--chain anvil: {exc}") from None


@pytest.fixture(scope="session")
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    """The session's chain: embedded, or anvil when pytest runs with ``--chain anvil``."""
    from escrowkit.evm.chain import Chain

    if request.config.getoption("--chain") == "anvil":
        with Chain.anvil() as node:
            yield node
    else:
        yield Chain.embedded()


@pytest.fixture(scope="session")
def accounts(chain: Chain) -> list[ChecksumAddress]:
    """The chain's signing accounts; ``accounts[0]`` deploys and owns the stack."""
    return chain.accounts


@pytest.fixture(scope="session")
def usdc(chain: Chain) -> TokenClient:
    """A MockUSDC (6 decimals, open mint) deployed once for the session."""
    from escrowkit.contracts.deploy import deploy
    from escrowkit.contracts.token import TokenClient

    return TokenClient(chain, str(deploy(chain, "MockUSDC", sender=chain.accounts[0]).address))


@pytest.fixture(scope="session")
def escrow(chain: Chain, usdc: TokenClient) -> EscrowClient:
    """The Escrow for the session's MockUSDC (no fee)."""
    from escrowkit.contracts.escrow import EscrowClient

    return EscrowClient.deploy(chain, usdc.address, sender=chain.accounts[0])


@pytest.fixture(scope="session")
def pool(chain: Chain, escrow: EscrowClient) -> BudgetPoolClient:
    """A BudgetPool over the session's Escrow, owned by ``accounts[0]``."""
    from escrowkit.contracts.pool import BudgetPoolClient

    owner = chain.accounts[0]
    return BudgetPoolClient.deploy(chain, escrow.address, owner=owner, sender=owner)


@pytest.fixture(scope="session")
def stack(chain: Chain, usdc: TokenClient, escrow: EscrowClient, pool: BudgetPoolClient) -> Stack:
    """The session's MockUSDC, Escrow and BudgetPool as one :class:`Stack`."""
    from escrowkit.contracts.stack import Stack

    return Stack(chain=chain, token=usdc, escrow=escrow, pool=pool)


@pytest.fixture(autouse=True)
def _escrowkit_isolation(request: pytest.FixtureRequest) -> Iterator[None]:
    """Snapshot before each test that uses the chain; revert after it."""
    if "chain" not in request.fixturenames:
        yield
        return
    # Session fixtures that deploy must run before the snapshot, or the revert after this
    # test would remove contracts that later tests still hold.
    for name in _session_fixtures(request):
        request.getfixturevalue(name)
    node: Chain = request.getfixturevalue("chain")
    snapshot = fresh_snapshot(node)
    try:
        yield
    finally:
        node.revert(snapshot)


def fresh_snapshot(node: Chain) -> Any:
    """A snapshot to revert to after a test, and for the test a head block no earlier
    test has built on: on anvil, one empty block is mined after the snapshot.

    Each block mined on a block queues that block's state in anvil's history under its
    hash. Every test starting on the same block (the head again after the previous
    test's revert) would queue the same hash once per test, and the oldest entry leaving
    the queue drops the state the current test is using: a read of the block it started
    on, or an estimate on "latest" that anvil pinned to it while a concurrent send mined
    the next block, then fails with ``BlockOutOfRangeError`` (see
    :mod:`escrowkit.evm.devchain`). The empty block differs from test to test (the revert
    gave it a new coinbase) and goes with the revert, so the chain does not grow (anvil
    slows down with every block it keeps).

    It gets the base fee of the snapshot's block: every test starts on the same base fee
    however many tests ran before (anvil's next base fee is not reverted).
    """
    snapshot = node.snapshot()
    if node.backend == "anvil":
        base_fee = node.w3.eth.get_block("latest").get("baseFeePerGas")
        if base_fee is not None:
            node.transport.rpc("anvil_setNextBlockBaseFeePerGas", [hex(base_fee)])
        node.mine()
    return snapshot


def _session_fixtures(request: pytest.FixtureRequest) -> list[str]:
    info: Any = getattr(request.node, "_fixtureinfo", None)
    if info is None:
        return []
    names = []
    for name in request.fixturenames:
        defs = info.name2fixturedefs.get(name)
        if defs and defs[-1].scope == "session" and name != "_escrowkit_isolation":
            names.append(name)
    return names
