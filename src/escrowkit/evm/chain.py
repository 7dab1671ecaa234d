"""One ``Chain`` over an embedded eth-tester, a local anvil, or any JSON-RPC node.

Every transaction is signed locally, so the three backends take the same path: estimate
gas (a revert surfaces here, decoded, before anything is sent), take the sender's next
nonce from its nonce source, sign, send, wait for the receipt through the chain's one
receipt watcher, check its status (:mod:`escrowkit.evm.sending`). How each step reaches
the node is the chain's transport's business (:mod:`escrowkit.evm.transports`).
Reverts are turned into named :class:`~escrowkit.errors.ContractRevert` exceptions the
same way on every backend (see :mod:`escrowkit.evm.reverts`).

Time: :meth:`Chain.now` is the latest block's timestamp. :meth:`Chain.time_travel` moves it
forward by whole seconds and mines a block; :meth:`Chain.set_next_block_timestamp` pins the
exact timestamp of the next transaction, for tests of deadline edges (see
:mod:`escrowkit.evm.devchain`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from escrowkit.core.addresses import to_address
from escrowkit.core.errors import ChainError, ConfigurationError, InvalidRequest, register_abi
from escrowkit.core.urls import is_loopback, redact_url
from escrowkit.evm.anvil import start_anvil
from escrowkit.evm.devchain import DevChain
from escrowkit.evm.embedded import EmbeddedTransport, embedded_web3
from escrowkit.evm.hashing import use_fast_keccak
from escrowkit.evm.keys import ANVIL_CHAIN_ID, anvil_dev_signers, embedded_signers, signers_for
from escrowkit.evm.miner import DemandMiner
from escrowkit.evm.nonces import NonceManager, NonceSource
from escrowkit.evm.prepared import PreparedCall, describe_call, function_abi
from escrowkit.evm.reverts import translate, translated
from escrowkit.evm.sending import Fees, Sending
from escrowkit.evm.transports import (
    Backend,
    LeanTransport,
    Transport,
    Web3Transport,
    http_web3,
    root_cause,
)
from escrowkit.evm.watcher import ReceiptWatcher

if TYPE_CHECKING:
    import subprocess

    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress
    from web3 import Web3
    from web3.contract import Contract

__all__ = ["Chain"]

logger = logging.getLogger(__name__)


class Chain(Sending, DevChain):
    """A connection to one chain plus the keys it can sign with.

    Build one with :meth:`embedded`, :meth:`connect` or :meth:`anvil`.
    """

    def __init__(
        self,
        w3: Web3,
        signers: Sequence[LocalAccount],
        *,
        backend: Backend,
        receipt_timeout: float = 120.0,
        poll_latency: float = 0.02,
    ) -> None:
        use_fast_keccak()
        self.w3 = w3
        #: How this chain reaches its node (estimate, send, receipts, dev controls).
        self.transport: Transport = transport_for(w3, backend)
        self.backend: Backend = backend
        self.receipt_timeout = receipt_timeout
        self.poll_latency = poll_latency
        self._signers: dict[str, LocalAccount] = {}
        self._accounts: list[ChecksumAddress] = []
        for signer in signers:
            self.add_signer(signer)
        self.chain_id: int = int(w3.eth.chain_id)
        #: The default nonce source: in this process, per sender.
        self.nonces = NonceManager(self._pending_count)
        self._nonce_sources: dict[str, NonceSource] = {}
        #: Resolves every pending transaction of this chain object (one poll per block).
        self.watcher = ReceiptWatcher(
            self.transport.block_number,
            self.transport.get_receipts,
            poll_latency=poll_latency,
            resend=self.transport.resend,
        )
        self._fees: Fees | None = None
        self._fees_lock = threading.Lock()
        self._seen: tuple[int, float] | None = None  # (latest timestamp, monotonic read time)
        self._pinned: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        #: Mines on demand on a chain from ``Chain.anvil()`` (None on ``mining="auto"``).
        self.miner: DemandMiner | None = None
        # Per contract object (gone with it): function name -> (selector, types) or None.
        self._prepared: weakref.WeakKeyDictionary[
            Any, dict[str, tuple[str, tuple[str, ...]] | None]
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"Chain({self.backend}, chain_id={self.chain_id}, accounts={len(self._accounts)})"

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def embedded(cls, *, accounts: int = 10) -> Chain:
        """An in-process eth-tester chain (py-evm). Accounts hold 1,000,000 ETH each."""
        if not 1 <= accounts <= 10:
            raise InvalidRequest("an embedded chain has 1 to 10 funded accounts")
        w3 = embedded_web3()
        return cls(w3, embedded_signers(accounts), backend="embedded", poll_latency=0.001)

    @classmethod
    def connect(
        cls,
        rpc_url: str,
        account: LocalAccount | str | os.PathLike[str] | Sequence[LocalAccount] | None = None,
        *,
        password: str | None = None,
        receipt_timeout: float = 120.0,
        request_timeout: float = 30.0,
    ) -> Chain:
        """Connect to a JSON-RPC node.

        ``account`` signs transactions: an eth-account ``LocalAccount`` (or several), or the
        path of a keystore file, decrypted with ``password`` or ``$ESCROWKIT_KEYSTORE_PASSWORD``.
        Without one, a local anvil (chain id 31337 on a loopback address) gets anvil's dev
        accounts; any other node gets no signer and can only be read.
        """
        w3 = http_web3(rpc_url, request_timeout)
        try:
            chain_id = int(w3.eth.chain_id)
        except Exception as exc:
            # ChainError cuts any URL in its message; redact_url also catches the key
            # where the transport repeats it on its own.
            reason = redact_url(root_cause(exc), rpc_url)
            raise ChainError(f"cannot reach a node at {rpc_url}: {reason}") from exc
        signers = signers_for(account, password)
        local = is_loopback(rpc_url)
        if not signers and chain_id == ANVIL_CHAIN_ID and local:
            signers = anvil_dev_signers()
        backend: Backend = "anvil" if chain_id == ANVIL_CHAIN_ID and local else "rpc"
        return cls(
            w3,
            signers,
            backend=backend,
            receipt_timeout=receipt_timeout,
            poll_latency=0.01 if local else 1.0,
        )

    @classmethod
    @contextlib.contextmanager
    def anvil(
        cls,
        *,
        port: int | None = None,
        state: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 15.0,
        tuned: bool = True,
        mining: Literal["auto", "demand"] = "demand",
    ) -> Iterator[Chain]:
        """Start anvil (from node_modules) on a free loopback port; stop it on exit.

        ``state`` is a file anvil loads at start and writes at exit, so a local chain can
        outlive the process. The process is always stopped, also when the body raises.
        ``tuned`` adds the options of :data:`~escrowkit.evm.anvil.TUNED_ARGS`, which keep
        a long-running anvil fast and cost nothing escrowkit or its users rely on.
        ``mining="demand"`` (the default) runs anvil with ``--no-mining`` and mines a block
        whenever its pool holds transactions, so one block takes every send that arrived
        while the last one was mined (:mod:`escrowkit.evm.miner`): a long run stays fast
        on anvil 1.7.1, which rehashes its whole state for each block. ``"auto"`` is
        anvil's automine, a block per transaction, mined before the send returns. With
        ``--block-time`` among ``extra_args``, anvil mines on its interval and ``mining``
        does not apply (anvil refuses ``--block-time`` with ``--no-mining``).
        """
        if mining not in ("auto", "demand"):
            raise InvalidRequest(f"mining is 'auto' or 'demand', not {mining!r}")
        if _interval_mining(extra_args):
            mining = "auto"
        if mining == "demand":
            extra_args = (*extra_args, "--no-mining")
        process = start_anvil(
            port=port,
            state=state,
            extra_args=extra_args,
            startup_timeout=startup_timeout,
            tuned=tuned,
        )
        chain: Chain | None = None
        try:
            chain = cls.connect(process.url)
            chain._process = process.popen
            if mining == "demand":
                chain.miner = DemandMiner(chain.transport.rpc, mined=chain.watcher.poke)
            yield chain
        finally:
            if chain is not None and chain.miner is not None:
                chain.miner.stop()
            process.stop()

    # ---- accounts ----------------------------------------------------------------------

    @property
    def accounts(self) -> list[ChecksumAddress]:
        """Addresses this chain can sign for, in a stable order."""
        return list(self._accounts)

    def add_signer(self, account: LocalAccount) -> ChecksumAddress:
        """Let this chain sign for ``account`` (an eth-account ``LocalAccount``)."""
        address: ChecksumAddress = account.address
        if address not in self._signers:
            self._accounts.append(address)
        self._signers[address] = account
        return address

    def can_sign(self, address: str) -> bool:
        return address in self._signers

    def _signer(self, sender: str) -> LocalAccount:
        try:
            return self._signers[sender]
        except KeyError:
            sender_ = to_address(sender, name="sender")
            if sender_ in self._signers:
                return self._signers[sender_]
            raise ConfigurationError(
                f"this chain has no key for {sender}; pass an account to Chain.connect "
                "or add_signer(LocalAccount)"
            ) from None

    # ---- time --------------------------------------------------------------------------

    def now(self, max_age: float = 0.0) -> int:
        """The latest block's timestamp (UTC seconds).

        ``max_age`` > 0 allows an estimate from a block this object read at most that many
        seconds ago (plus the wall-clock time since, on a real node), which saves a round
        trip where a second of error is harmless, like an escrow deadline a day away.
        Moving time through this object (time_travel, revert, ...) drops the estimate.
        """
        seen = self._seen
        if max_age > 0 and seen is not None:
            age = time.monotonic() - seen[1]
            if age <= max_age:
                # eth-tester's clock only moves with blocks; a node's with the wall clock.
                return seen[0] + (int(age) if self.transport.wall_clock else 0)
        return int(self._latest_block()["timestamp"])

    def _latest_block(self) -> Any:
        block = translated(lambda: self.w3.eth.get_block("latest"))
        self._seen = (int(block["timestamp"]), time.monotonic())
        return block

    def block_number(self) -> int:
        return int(translated(lambda: self.w3.eth.block_number))

    # ---- contracts and transactions ----------------------------------------------------

    def contract(self, address: str, abi: Sequence[dict[str, Any]]) -> Contract:
        """A web3 contract object for ``address``."""
        register_abi(abi)
        return self.w3.eth.contract(address=to_address(address), abi=list(abi))

    def prepare(self, contract: Contract, name: str, *args: Any) -> Any:
        """``contract.functions[name](*args)``, as a :class:`PreparedCall` when ``name``
        is not overloaded (cheaper to build and to encode; the same transaction)."""
        functions = self._prepared.get(contract)
        if functions is None:
            functions = self._prepared.setdefault(contract, {})
        if name not in functions:
            functions[name] = function_abi(contract.abi, name)
        found = functions[name]
        if found is None:
            return contract.functions[name](*args)
        return PreparedCall(contract, name, found[0], found[1], args)

    def call(self, fn: Any, *, sender: str | None = None, context: str | None = None) -> Any:
        """Run a view/pure call; a revert raises the named ContractRevert."""
        params = {"from": sender} if sender else {}
        try:
            return fn.call(params)
        except Exception as exc:
            raise translate(exc, context=context or describe_call(fn)) from None

    def pending_transactions(self, address: str) -> int:
        """How many of ``address``'s transactions the node has seen but not mined."""
        checked = to_address(address)
        pending = translated(lambda: self.w3.eth.get_transaction_count(checked, "pending"))
        latest = translated(lambda: self.w3.eth.get_transaction_count(checked, "latest"))
        return int(pending) - int(latest)


def transport_for(w3: Web3, backend: Backend) -> Transport:
    """The transport for ``w3``: eth-tester's for the embedded backend, the lean one on a
    :class:`~escrowkit.evm.http.LeanHTTPProvider`, else web3's."""
    if backend == "embedded":
        return EmbeddedTransport(w3)
    if getattr(w3.provider, "lean_json_rpc", False):
        return LeanTransport(w3)
    return Web3Transport(w3)


def _interval_mining(args: Sequence[str]) -> bool:
    """Whether anvil's arguments make it mine on an interval (``--block-time``/``-b``)."""
    return any(
        arg in ("--block-time", "-b") or arg.startswith(("--block-time=", "-b=")) for arg in args
    )
