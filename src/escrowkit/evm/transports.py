"""How a :class:`~escrowkit.evm.chain.Chain` reaches its node: one :class:`Transport`
interface and its three implementations.

- :class:`~escrowkit.evm.embedded.EmbeddedTransport`: eth-tester in this process, behind
  one lock (it is not thread-safe); a transaction runs once, as it is mined; dev controls
  call eth-tester itself.
- :class:`Web3Transport`: any web3 provider (web3's ``HTTPProvider`` when proxy variables
  are set); every request goes through web3's method layer; dev controls are ``evm_*``.
- :class:`LeanTransport`: an HTTP node through :class:`~escrowkit.evm.http.LeanHTTPProvider`:
  estimate, send and receipt as raw JSON-RPC, signed calls with the coincurve signer
  (:mod:`escrowkit.evm.signing`). Everything else goes through web3 as above.

A transport answers questions; it never waits. :meth:`Transport.get_receipts` gives the
receipts of mined transactions (None for the others), in one JSON-RPC batch on the lean
transport, so that the chain's one receipt watcher (:mod:`escrowkit.evm.watcher`) resolves
every pending transaction of the process with one request per new block.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from escrowkit.core.errors import ChainError, decode_revert
from escrowkit.evm.reverts import revert_bytes_of, translate, translated

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3
    from web3.types import TxReceipt

    from escrowkit.evm.signing import Signer

__all__ = [
    "Backend",
    "LeanTransport",
    "Transport",
    "Web3Transport",
    "http_web3",
    "is_nonce_conflict",
    "root_cause",
    "with_buffer",
]

Backend = Literal["embedded", "anvil", "rpc"]

logger = logging.getLogger(__name__)

#: How many sent transactions a transport keeps the signed bytes of, for resend.
REMEMBERED_SENDS = 4096


class Transport(Protocol):
    """What a Chain asks of its node. Errors come out as escrowkit's: a revert as its
    named :class:`~escrowkit.errors.ContractRevert`, anything else as
    :class:`~escrowkit.errors.ChainError`."""

    #: The web3 object every other read goes through.
    w3: Web3
    #: The block to estimate gas in: "pending", where a timestamp pinned by
    #: ``set_next_block_timestamp`` applies, or None where the node refuses the parameter.
    estimate_block: str | None
    #: Whether the chain's time moves with the wall clock between blocks (False: only
    #: with blocks, as on eth-tester).
    wall_clock: bool
    #: Whether the node runs a transaction as it receives it (eth-tester): one sent
    #: without a gas limit then goes through :meth:`send_once` and needs no estimate.
    executes_on_send: bool

    def estimate_gas(self, call: dict[str, Any], block: str | None, *, context: str) -> int:
        """Gas that ``call`` (from, to, data, value) uses in ``block``."""
        ...

    def send_raw_transaction(self, raw: bytes, *, context: str) -> str:
        """Hand a signed transaction to the node; its 0x hash."""
        ...

    def sign_and_send(self, signer: LocalAccount, tx: dict[str, Any], *, context: str) -> str:
        """Sign ``tx`` (every field filled in) and send it; its 0x hash."""
        ...

    def send_once(self, signer: LocalAccount, tx: dict[str, Any], *, context: str) -> str:
        """Only where :attr:`executes_on_send`: run ``tx`` (no gas limit yet) as it is
        mined; a revert raises, named, and leaves nothing behind (as at estimation)."""
        ...

    def resend(self, tx_hash: str) -> bool:
        """Hand a transaction this transport sent (and still remembers) to the node again,
        for one the node may have dropped; whether it had it to send."""
        ...

    def get_receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt if the transaction is mined, else None; never waits."""
        ...

    def get_receipts(self, tx_hashes: Sequence[str]) -> list[TxReceipt | None]:
        """:meth:`get_receipt` of each hash, in one request where the node allows."""
        ...

    def block_number(self) -> int:
        """The latest block's number."""
        ...

    def rpc(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call through web3's provider: its result."""
        ...

    def snapshot(self) -> Any:
        """Take a state snapshot (an id for :meth:`revert`)."""
        ...

    def revert(self, snapshot: Any) -> None:
        """Go back to ``snapshot``; ChainError when the node refuses."""
        ...

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """The next block gets ``timestamp`` (later than the latest block's)."""
        ...

    def mine(self) -> None:
        """Mine one empty block."""
        ...


class Web3Transport:
    """Any web3 provider, through web3's method layer; dev controls are ``evm_*`` calls."""

    estimate_block: str | None = "pending"
    wall_clock = True
    executes_on_send = False

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        _trim_middleware(w3)
        # The signed bytes of the last transactions sent, for resend (oldest dropped).
        self._sent: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._sent_lock = threading.Lock()
        self._fast_signers: dict[str, Signer] = {}

    def _fast_signer(self, signer: LocalAccount) -> Signer:
        """The coincurve signer of ``signer``'s key (made once per sender): contract
        calls are signed with it, byte for byte as eth-account signs them."""
        fast = self._fast_signers.get(signer.address)
        if fast is None:
            from escrowkit.evm.signing import Signer

            fast = self._fast_signers.setdefault(signer.address, Signer(signer.key))
        return fast

    def _remember(self, tx_hash: str, raw: bytes) -> None:
        with self._sent_lock:
            self._sent[tx_hash] = raw
            if len(self._sent) > REMEMBERED_SENDS:
                self._sent.popitem(last=False)

    def resend(self, tx_hash: str) -> bool:
        with self._sent_lock:
            raw = self._sent.get(tx_hash)
        if raw is None:
            return False
        try:
            self.send_raw_transaction(raw, context=f"resending {tx_hash}")
        except ChainError as exc:  # "already known", "nonce too low" (mined meanwhile), ...
            logger.debug("resending %s: %s", tx_hash, exc)
        return True

    def estimate_gas(self, call: dict[str, Any], block: str | None, *, context: str) -> int:
        try:
            return int(self.w3.eth.estimate_gas(call, block))  # type: ignore[arg-type]
        except Exception as exc:
            raise translate(exc, context=context) from None

    def send_raw_transaction(self, raw: bytes, *, context: str) -> str:
        return str(translated(lambda: self.w3.eth.send_raw_transaction(raw)).to_0x_hex())

    def sign_and_send(self, signer: LocalAccount, tx: dict[str, Any], *, context: str) -> str:
        signed = signer.sign_transaction(tx)
        tx_hash = "0x" + bytes(signed.hash).hex()
        try:
            sent = self.send_raw_transaction(signed.raw_transaction, context=context)
        except ChainError as exc:
            if not (is_nonce_conflict(exc) and self.knows(tx_hash)):
                raise
            sent = tx_hash  # our own transaction took the nonce: it is sent
        self._remember(tx_hash, bytes(signed.raw_transaction))
        return sent

    def knows(self, tx_hash: str) -> bool:
        """Whether the node has this transaction (pending or mined)."""
        from web3.exceptions import TransactionNotFound

        try:
            return self.w3.eth.get_transaction(tx_hash) is not None  # type: ignore[arg-type]
        except TransactionNotFound:
            return False
        except Exception:
            return False

    def get_receipt(self, tx_hash: str) -> TxReceipt | None:
        from web3.exceptions import TransactionIndexingInProgress, TransactionNotFound

        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except (TransactionNotFound, TransactionIndexingInProgress):
            return None
        except Exception as exc:
            raise ChainError(f"waiting for {tx_hash} failed: {exc}") from exc

    def get_receipts(self, tx_hashes: Sequence[str]) -> list[TxReceipt | None]:
        return [self.get_receipt(tx_hash) for tx_hash in tx_hashes]

    def block_number(self) -> int:
        return int(translated(lambda: self.w3.eth.block_number))

    def send_once(self, signer: LocalAccount, tx: dict[str, Any], *, context: str) -> str:
        raise NotImplementedError("this node does not run transactions as it receives them")

    def rpc(self, method: str, params: list[Any]) -> Any:
        response = translated(lambda: self.w3.provider.make_request(method, params))  # type: ignore[arg-type]
        if "error" in response:
            raise ChainError(f"{method} failed: {response['error']}")
        return response.get("result")

    def snapshot(self) -> Any:
        return self.rpc("evm_snapshot", [])

    def revert(self, snapshot: Any) -> None:
        if not self.rpc("evm_revert", [snapshot]):
            raise ChainError(f"the node refused to revert to snapshot {snapshot}")

    def set_next_block_timestamp(self, timestamp: int) -> None:
        self.rpc("evm_setNextBlockTimestamp", [timestamp])

    def mine(self) -> None:
        self.rpc("evm_mine", [])


class LeanTransport(Web3Transport):
    """The requests every transaction makes (estimate, send, receipt) as raw JSON-RPC
    through :class:`~escrowkit.evm.http.LeanHTTPProvider`, and contract calls signed
    with the coincurve :class:`~escrowkit.evm.signing.Signer`; the rest as web3's."""

    def __init__(self, w3: Web3) -> None:
        super().__init__(w3)
        self.provider: Any = w3.provider

    def request(self, method: str, params: list[Any], context: str, *, reverts: bool = True) -> Any:
        """A raw JSON-RPC call through the lean provider, failing the way web3's does:
        a revert (when the method can revert) as its named ContractRevert, anything else
        as ChainError."""
        from escrowkit.evm.http import RpcError

        try:
            return self.provider.request(method, params)
        except RpcError as exc:
            data = revert_bytes_of(exc.data)
            if reverts and (exc.code == 3 or "revert" in exc.message.lower()):
                raise decode_revert(data or b"", context=context) from None
            raise ChainError(f"{context}: {exc}") from None
        except Exception as exc:
            raise ChainError(f"{context}: {method} failed: {type(exc).__name__}: {exc}") from exc

    def estimate_gas(self, call: dict[str, Any], block: str | None, *, context: str) -> int:
        # A deployment has an empty ``to``, which JSON-RPC spells by leaving it out.
        raw_call = {k: _json_value(v) for k, v in call.items() if k != "to" or v}
        return int(self.request("eth_estimateGas", [raw_call, block], context), 16)

    def sign_and_send(self, signer: LocalAccount, tx: dict[str, Any], *, context: str) -> str:
        if not isinstance(tx.get("to"), str) or not tx["to"]:
            # A deployment (no ``to``): eth-account signs, web3 sends.
            return super().sign_and_send(signer, tx, context=context)
        raw, tx_hash = self._fast_signer(signer).sign(tx)
        try:
            sent = self.request("eth_sendRawTransaction", ["0x" + raw.hex()], context)
        except ChainError as exc:
            # The transport sent it again after a connection died unanswered, and the
            # node had taken the first: it is sent ("already known", anvil's "transaction
            # already imported", or "nonce too low" once the first is mined). Only a nonce
            # taken by another transaction is a conflict.
            message = str(exc).lower()
            known = "already known" in message or "already imported" in message
            if not known and not (is_nonce_conflict(exc) and self.knows(tx_hash)):
                raise
            sent = None
        self._remember(tx_hash, raw)
        return str(sent or tx_hash)

    def knows(self, tx_hash: str) -> bool:
        try:
            found = self.request(
                "eth_getTransactionByHash",
                [tx_hash],
                "looking up a sent transaction",
                reverts=False,
            )
        except ChainError:
            return False
        return found is not None

    def get_receipt(self, tx_hash: str) -> TxReceipt | None:
        from escrowkit.evm.receipts import format_receipt

        raw = self.request(
            "eth_getTransactionReceipt", [tx_hash], f"waiting for {tx_hash}", reverts=False
        )
        return None if raw is None else cast("TxReceipt", format_receipt(raw))

    def get_receipts(self, tx_hashes: Sequence[str]) -> list[TxReceipt | None]:
        """One JSON-RPC batch for all of them (one HTTP round trip)."""
        from escrowkit.evm.http import RpcError
        from escrowkit.evm.receipts import format_receipt

        if len(tx_hashes) == 1:
            return [self.get_receipt(tx_hashes[0])]
        calls = [("eth_getTransactionReceipt", [tx_hash]) for tx_hash in tx_hashes]
        try:
            answers = self.provider.request_batch(calls)
        except Exception as exc:
            raise ChainError(f"waiting for receipts: {type(exc).__name__}: {exc}") from exc
        out: list[TxReceipt | None] = []
        for tx_hash, answer in zip(tx_hashes, answers, strict=True):
            if isinstance(answer, RpcError):
                raise ChainError(f"waiting for {tx_hash}: {answer}")
            out.append(None if answer is None else cast("TxReceipt", format_receipt(answer)))
        return out

    def block_number(self) -> int:
        return int(self.request("eth_blockNumber", [], "reading the head", reverts=False), 16)


def _json_value(value: object) -> object:
    """A transaction field as JSON-RPC wants it: quantities and bytes as 0x hex."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return value


# --------------------------------------------------------------------------------------
# Building the web3 object
# --------------------------------------------------------------------------------------


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def http_web3(rpc_url: str, timeout: float) -> Web3:
    """A web3 object over the lean provider (:mod:`escrowkit.evm.http`), or over web3's own
    when proxy variables are set: ``requests`` honours them and ``http.client`` would not."""
    from web3 import Web3

    if any(key.lower() in _PROXY_VARIABLES for key in os.environ):
        from web3 import HTTPProvider

        return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    from escrowkit.evm.http import LeanHTTPProvider

    return Web3(LeanHTTPProvider(rpc_url, timeout))


#: web3 middleware that a locally signing client never needs. "validation" alone asks the
#: node for its chain id on every call and estimate (four round trips per spend); the
#: others resolve ENS names and fill gas for node-signed transactions.
_UNUSED_MIDDLEWARE = ("validation", "ens_name_to_address", "gas_estimate", "gas_price_strategy")


def _trim_middleware(w3: Web3) -> None:
    names = {name for _, name in w3.middleware_onion.middleware}
    for name in _UNUSED_MIDDLEWARE:
        if name in names:
            w3.middleware_onion.remove(name)


def root_cause(exc: BaseException) -> str:
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


#: The margin on a gas estimate: state may change between the estimate and the block.
GAS_BUFFER_PERCENT = 25
GAS_BUFFER_MIN = 20_000


def with_buffer(estimate: int) -> int:
    """A gas limit for an estimate: 25 % more, at least 20,000 more."""
    return estimate + max(estimate * GAS_BUFFER_PERCENT // 100, GAS_BUFFER_MIN)


_NONCE_CONFLICTS = (
    "nonce too low",
    "nonce too high",
    "replacement transaction underpriced",
    "invalid transaction nonce",  # eth-tester
)


def is_nonce_conflict(exc: BaseException) -> bool:
    """Whether the node refused a transaction for its nonce (see NonceConflict): taken by
    another transaction (or by this one, sent twice: ask :meth:`Web3Transport.knows`), or
    beyond a gap."""
    text = str(exc).lower()
    return any(phrase in text for phrase in _NONCE_CONFLICTS)
