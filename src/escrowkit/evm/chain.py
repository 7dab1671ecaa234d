"""One ``Chain`` over an embedded eth-tester, a local anvil, or any JSON-RPC node.

Every transaction is signed locally with eth-account, so the three backends take the same
path: estimate gas (a revert surfaces here, decoded, before anything is sent), take the
sender's next nonce under its lock, sign, send, wait for the receipt, check its status.
Reverts are turned into named :class:`~escrowkit.errors.ContractRevert` exceptions the
same way on every backend (see :func:`revert_from_exception`).

Time: :meth:`Chain.now` is the latest block's timestamp. :meth:`Chain.time_travel` moves it
forward by whole seconds and mines a block; :meth:`Chain.set_next_block_timestamp` pins the
exact timestamp of the next transaction, for tests of deadline edges.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from escrowkit.core.addresses import to_address
from escrowkit.core.errors import (
    ChainError,
    ConfigurationError,
    ContractRevert,
    InvalidRequest,
    TransactionTimeout,
    decode_revert,
    register_abi,
)
from escrowkit.core.urls import is_loopback, redact_url
from escrowkit.evm.anvil import start_anvil
from escrowkit.evm.keys import ANVIL_CHAIN_ID, anvil_dev_signers, embedded_signers, signers_for
from escrowkit.evm.nonces import NonceManager
from escrowkit.evm.prepared import PreparedCall, describe_call, encode_call, function_abi
from escrowkit.evm.reverts import revert_bytes_of, revert_from_exception, translate, translated

if TYPE_CHECKING:
    import subprocess

    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress
    from web3 import Web3
    from web3.contract import Contract
    from web3.types import TxReceipt

__all__ = ["Chain"]

logger = logging.getLogger(__name__)

GAS_BUFFER_PERCENT = 25
GAS_BUFFER_MIN = 20_000

Backend = Literal["embedded", "anvil", "rpc"]


def _json_value(value: object) -> object:
    """A transaction field as JSON-RPC wants it: quantities and bytes as 0x hex."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return value


@dataclass(frozen=True)
class _Fees:
    max_fee: int
    priority: int
    read_at: float


class Chain:
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
        self.w3 = w3
        _trim_middleware(w3)
        self.backend: Backend = backend
        self.receipt_timeout = receipt_timeout
        self.poll_latency = poll_latency
        self._signers: dict[str, LocalAccount] = {}
        self._accounts: list[ChecksumAddress] = []
        for signer in signers:
            self.add_signer(signer)
        self.chain_id: int = int(w3.eth.chain_id)
        self.nonces = NonceManager(
            lambda a: int(w3.eth.get_transaction_count(cast("ChecksumAddress", a), "pending"))
        )
        self._fees: _Fees | None = None
        self._fees_lock = threading.Lock()
        self._seen: tuple[int, float] | None = None  # (latest timestamp, monotonic read time)
        self._process: subprocess.Popen[bytes] | None = None
        # Raw JSON-RPC for the requests every transaction makes (see escrowkit.evm.http), on a
        # node reached through the lean provider; None on eth-tester or web3's provider.
        self._lean: Any = w3.provider if getattr(w3.provider, "lean_json_rpc", False) else None
        self._fast_signers: dict[str, Any] = {}
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
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import Web3

        if not 1 <= accounts <= 10:
            raise InvalidRequest("an embedded chain has 1 to 10 funded accounts")
        provider = _LockedTesterProvider(EthereumTester(PyEVMBackend()))
        keys = embedded_signers(accounts)
        return cls(Web3(provider), keys, backend="embedded", poll_latency=0.001)

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
        from web3 import Web3

        w3 = Web3(_http_provider(rpc_url, request_timeout))
        try:
            chain_id = int(w3.eth.chain_id)
        except Exception as exc:
            # ChainError cuts any URL in its message; redact_url also catches the key
            # where the transport repeats it on its own.
            reason = redact_url(_root_cause(exc), rpc_url)
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
    ) -> Iterator[Chain]:
        """Start anvil (from node_modules) on a free loopback port; stop it on exit.

        ``state`` is a file anvil loads at start and writes at exit, so a local chain can
        outlive the process. The process is always stopped, also when the body raises.
        """
        process = start_anvil(
            port=port, state=state, extra_args=extra_args, startup_timeout=startup_timeout
        )
        try:
            chain = cls.connect(process.url)
            chain._process = process.popen
            yield chain
        finally:
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

    # ---- time and state ----------------------------------------------------------------

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
                return seen[0] + (0 if self.backend == "embedded" else int(age))
        return int(self._latest_block()["timestamp"])

    def _latest_block(self) -> Any:
        block = translated(lambda: self.w3.eth.get_block("latest"))
        self._seen = (int(block["timestamp"]), time.monotonic())
        return block

    def block_number(self) -> int:
        return int(translated(lambda: self.w3.eth.block_number))

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks."""
        for _ in range(blocks):
            self._rpc("evm_mine", [])
        self._seen = None

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """The next block (so the next transaction) gets exactly ``timestamp``.

        It must be later than the latest block. On eth-tester this mines a block at
        ``timestamp - 1`` (that is how its clock moves); on anvil it mines nothing.
        """
        latest = self.now()
        if timestamp <= latest:
            raise InvalidRequest(f"timestamp {timestamp} is not after the latest block {latest}")
        if self.backend == "embedded":
            tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
            with _tester_lock(self.w3):
                pending = tester.get_block_by_number("pending")["timestamp"]
                if timestamp < pending:
                    # py-evm opens a new pending block at max(parent + 1, wall clock).
                    raise InvalidRequest(
                        f"eth-tester's next block is already at {pending} (it never goes "
                        f"below the wall clock); cannot pin {timestamp}"
                    )
                if timestamp != pending:
                    tester.time_travel(timestamp)
        else:
            self._rpc("evm_setNextBlockTimestamp", [timestamp])
        self._seen = None

    def time_travel(self, seconds: int) -> int:
        """Move the chain's clock forward by ``seconds`` and mine; returns the new ``now()``."""
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            raise InvalidRequest(f"time_travel needs a positive int of seconds, got {seconds!r}")
        target = self.now() + seconds
        self.set_next_block_timestamp(target)
        if self.now() != target:
            self.mine()
        self._fees = None
        return self.now()

    def snapshot(self) -> Any:
        """Take a state snapshot; :meth:`revert` goes back to it."""
        if self.backend == "embedded":
            with _tester_lock(self.w3):
                return self.w3.provider.ethereum_tester.take_snapshot()  # type: ignore[attr-defined]
        return self._rpc("evm_snapshot", [])

    def revert(self, snapshot: Any) -> None:
        """Go back to a snapshot (anvil consumes it: take a new one to revert again)."""
        if self.backend == "embedded":
            with _tester_lock(self.w3):
                self.w3.provider.ethereum_tester.revert_to_snapshot(snapshot)  # type: ignore[attr-defined]
        elif not self._rpc("evm_revert", [snapshot]):
            raise ChainError(f"the node refused to revert to snapshot {snapshot}")
        self.nonces.resync()
        self._fees = None
        self._seen = None

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

    def transact(
        self,
        fn: Any,
        *,
        sender: str,
        value: int = 0,
        gas: int | None = None,
        context: str | None = None,
    ) -> TxReceipt:
        """Sign, send and wait for ``fn`` (a bound contract function or constructor).

        Returns the successful receipt. Raises the named ContractRevert when the call
        would revert (at estimation, ``tx_hash`` None) or did revert (``tx_hash`` set),
        :class:`TransactionTimeout` when no receipt comes in time, and ChainError for
        transport problems.
        """
        signer = self._signer(sender)
        sender = signer.address
        context = context or describe_call(fn)
        fees = self._current_fees()
        tx: dict[str, Any] = {
            "from": sender,
            "value": value,
            "chainId": self.chain_id,
            "gas": gas or 0,
            "maxFeePerGas": fees.max_fee,
            "maxPriorityFeePerGas": fees.priority,
            "nonce": 0,  # gas and nonce are filled in below
        }
        data = encode_call(fn)
        if data is not None:
            tx.update(to=fn.address, data=data)
        else:
            try:
                # Every field is given, so web3 asks the node nothing: it only encodes.
                tx = dict(fn.build_transaction(tx))
            except Exception as exc:
                raise translate(exc, context=context) from None
        if gas is None:
            call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
            # Judge the call in the block it will land in, whose timestamp may be pinned
            # by set_next_block_timestamp: anvil needs "pending" for that ("latest" is a
            # block early); eth-tester always estimates on its pending block and rejects
            # the parameter.
            block = None if self.backend == "embedded" else "pending"
            if self._lean is not None:
                # A deployment has an empty ``to``, which JSON-RPC spells by leaving it out.
                raw_call = {k: _json_value(v) for k, v in call.items() if k != "to" or v}
                estimate = int(
                    self._lean_request("eth_estimateGas", [raw_call, block], context), 16
                )
            else:
                try:
                    estimate = int(self.w3.eth.estimate_gas(call, block))  # type: ignore[arg-type]
                except Exception as exc:
                    raise translate(exc, context=context) from None
            tx["gas"] = estimate + max(estimate * GAS_BUFFER_PERCENT // 100, GAS_BUFFER_MIN)
        with self.nonces.lock(sender):
            tx["nonce"] = self.nonces.take(sender)
            try:
                tx_hash = self._sign_and_send(signer, tx, context)
            except BaseException as exc:
                # The node may or may not have taken the nonce: ask it again next time.
                self.nonces.resync(sender)
                if isinstance(exc, Exception):
                    revert = revert_from_exception(exc, context=context)
                    if revert is not None:
                        raise revert from None
                raise
        receipt = self.wait_for_receipt(tx_hash)
        logger.debug("%s: tx %s gas %s", context, tx_hash, receipt["gasUsed"])
        if receipt["status"] != 1:
            raise self._replay_revert(tx, receipt, tx_hash, context)
        return receipt

    def _sign_and_send(self, signer: LocalAccount, tx: dict[str, Any], context: str) -> str:
        """Sign ``tx`` and hand it to the node; its hash. (Called under the nonce lock.)"""
        if self._lean is None or not isinstance(tx.get("to"), str) or not tx["to"]:
            # eth-tester, web3's provider, or a deployment (no ``to``): eth-account.
            signed = signer.sign_transaction(tx)
            return str(
                translated(
                    lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction)
                ).to_0x_hex()
            )
        fast = self._fast_signers.get(signer.address)
        if fast is None:
            from escrowkit.evm.signing import Signer

            fast = self._fast_signers.setdefault(signer.address, Signer(signer.key))
        raw, tx_hash = fast.sign(tx)
        try:
            sent = self._lean_request("eth_sendRawTransaction", ["0x" + raw.hex()], context)
        except ChainError as exc:
            # The transport sent it again after a connection died unanswered, and the
            # node had taken the first: it is sent.
            if "already known" not in str(exc).lower():
                raise
            sent = None
        return str(sent or tx_hash)

    def _lean_request(
        self, method: str, params: list[Any], context: str, *, reverts: bool = True
    ) -> Any:
        """A raw JSON-RPC call through the lean provider, failing the way web3's does:
        a revert (when the method can revert) as its named ContractRevert, anything else
        as ChainError."""
        from escrowkit.evm.http import RpcError

        try:
            return self._lean.request(method, params)
        except RpcError as exc:
            data = revert_bytes_of(exc.data)
            if reverts and (exc.code == 3 or "revert" in exc.message.lower()):
                raise decode_revert(data or b"", context=context) from None
            raise ChainError(f"{context}: {exc}") from None
        except Exception as exc:
            raise ChainError(f"{context}: {method} failed: {type(exc).__name__}: {exc}") from exc

    def wait_for_receipt(self, tx_hash: str, timeout: float | None = None) -> TxReceipt:
        """Wait for a receipt; :class:`TransactionTimeout` (with the hash) if none comes."""
        from web3.exceptions import TimeExhausted

        wait = self.receipt_timeout if timeout is None else timeout
        if self._lean is not None:
            return self._lean_wait_for_receipt(tx_hash, wait)
        try:
            return self.w3.eth.wait_for_transaction_receipt(
                tx_hash,  # type: ignore[arg-type]
                timeout=wait,
                poll_latency=self.poll_latency,
            )
        except TimeExhausted:
            raise TransactionTimeout(tx_hash, wait) from None
        except Exception as exc:
            raise ChainError(f"waiting for {tx_hash} failed: {exc}") from exc

    def _lean_wait_for_receipt(self, tx_hash: str, wait: float) -> TxReceipt:
        from escrowkit.evm.receipts import format_receipt

        deadline = time.monotonic() + wait
        while True:
            raw = self._lean_request(
                "eth_getTransactionReceipt", [tx_hash], f"waiting for {tx_hash}", reverts=False
            )
            if raw is not None:
                return cast("TxReceipt", format_receipt(raw))
            if time.monotonic() >= deadline:
                raise TransactionTimeout(tx_hash, wait)
            time.sleep(self.poll_latency)

    def pending_transactions(self, address: str) -> int:
        """How many of ``address``'s transactions the node has seen but not mined."""
        checked = to_address(address)
        pending = translated(lambda: self.w3.eth.get_transaction_count(checked, "pending"))
        latest = translated(lambda: self.w3.eth.get_transaction_count(checked, "latest"))
        return int(pending) - int(latest)

    # ---- internals ---------------------------------------------------------------------

    def _current_fees(self) -> _Fees:
        # Base fee read at most once a second; twice it plus the tip survives six full
        # blocks of EIP-1559 increases, so a slightly stale read never underprices.
        cached = self._fees
        if cached is not None and time.monotonic() - cached.read_at < 1.0:
            return cached
        with self._fees_lock:
            cached = self._fees  # another thread may have refreshed while we waited
            if cached is not None and time.monotonic() - cached.read_at < 1.0:
                return cached
            block = self._latest_block()
            base_fee = int(block.get("baseFeePerGas", 0) or 0)
            try:
                priority = int(translated(lambda: self.w3.eth.max_priority_fee))
            except ChainError:
                priority = 10**9
            self._fees = _Fees(2 * base_fee + priority, priority, time.monotonic())
            return self._fees

    def _replay_revert(
        self, tx: dict[str, Any], receipt: TxReceipt, tx_hash: str, context: str
    ) -> ContractRevert:
        """A mined, failed transaction keeps no revert data: re-run it to learn why."""
        call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
        block = max(int(receipt["blockNumber"]) - 1, 0)
        try:
            self.w3.eth.call(call, block_identifier=block)  # type: ignore[arg-type]
        except Exception as exc:
            revert = revert_from_exception(exc, tx_hash=tx_hash, context=context)
            if revert is not None:
                return revert
        gas_note = " (out of gas?)" if receipt["gasUsed"] >= tx.get("gas", 0) else ""
        return ContractRevert(tx_hash=tx_hash, context=context + gas_note)

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = translated(lambda: self.w3.provider.make_request(method, params))  # type: ignore[arg-type]
        if "error" in response:
            raise ChainError(f"{method} failed: {response['error']}")
        return response.get("result")


# --------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------


def _make_locked_provider_class() -> type:
    from web3 import EthereumTesterProvider

    class LockedTesterProvider(EthereumTesterProvider):
        """eth-tester is not thread-safe: every request goes through one lock."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.lock = threading.RLock()

        def make_request(self, method: Any, params: Any) -> Any:
            with self.lock:
                return super().make_request(method, params)

    return LockedTesterProvider


def _LockedTesterProvider(tester: Any) -> Any:
    global _locked_provider_class
    if _locked_provider_class is None:
        _locked_provider_class = _make_locked_provider_class()
    return _locked_provider_class(tester)


_locked_provider_class: type | None = None


def _tester_lock(w3: Web3) -> Any:
    return getattr(w3.provider, "lock", contextlib.nullcontext())


#: web3 middleware that a locally signing client never needs. "validation" alone asks the
#: node for its chain id on every call and estimate (four round trips per spend); the
#: others resolve ENS names and fill gas for node-signed transactions.
_UNUSED_MIDDLEWARE = ("validation", "ens_name_to_address", "gas_estimate", "gas_price_strategy")


def _trim_middleware(w3: Web3) -> None:
    names = {name for _, name in w3.middleware_onion.middleware}
    for name in _UNUSED_MIDDLEWARE:
        if name in names:
            w3.middleware_onion.remove(name)


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _http_provider(rpc_url: str, timeout: float) -> Any:
    """The lean provider (:mod:`escrowkit.evm.http`), or web3's own when proxy variables are
    set: ``requests`` honours them and ``http.client`` would not."""
    if any(key.lower() in _PROXY_VARIABLES for key in os.environ):
        from web3 import HTTPProvider

        return HTTPProvider(rpc_url, request_kwargs={"timeout": timeout})
    from escrowkit.evm.http import LeanHTTPProvider

    return LeanHTTPProvider(rpc_url, timeout)


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a transport error, on one line.

    requests wraps urllib3's ``MaxRetryError``, whose ``reason`` holds what went wrong
    (refused, DNS, TLS); its own message is three nested reprs.
    """
    cause: BaseException = exc
    for _ in range(8):
        inner = getattr(cause, "reason", None)
        if not isinstance(inner, BaseException) and cause.args:
            inner = cause.args[0]
        if not isinstance(inner, BaseException):
            break
        cause = inner
    text = " ".join(str(cause).split())
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
