"""The exception tree, and decoding of revert data into named exceptions.

Every error escrowkit raises is an :class:`EscrowKitError`. A contract revert becomes a
subclass of :class:`ContractRevert` named after the Solidity error, with its decoded
arguments, whichever backend produced it::

    try:
        escrow.fund(escrow_id, sender=alice)
    except errors.InvalidState as exc:       # class named after the Solidity error
        print(exc.name, exc.arguments["state"], exc.tx_hash)

The classes for custom errors are made on first use from the ABIs of the committed
artifacts (and of any contract compiled or loaded later), so ``errors.InvalidState`` works
without listing every error here. ``Error(string)`` and ``Panic(uint256)`` are
:class:`Error` and :class:`Panic`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from escrowkit.core.urls import redact_secrets

__all__ = [
    "ApprovalClosed",
    "ChainError",
    "CompilationError",
    "ConfigurationError",
    "ContractRevert",
    "Error",
    "EscrowKitError",
    "IdempotencyConflict",
    "IdempotencyKeyInUse",
    "IdempotencyKeyMismatch",
    "InvalidRequest",
    "NonceConflict",
    "NotFound",
    "Panic",
    "SolcNotFound",
    "TransactionTimeout",
    "decode_revert",
    "describe_error",
    "register_abi",
    "revert_class",
]


class EscrowKitError(Exception):
    """Root of every exception escrowkit raises."""


class InvalidRequest(EscrowKitError, ValueError):
    """Malformed input (wrong type, out of range, bad address). Raised before any state changes."""


class IdempotencyConflict(EscrowKitError):
    """An idempotency key was reused for a different request, or while the first is in flight.

    Catch :class:`IdempotencyKeyMismatch` or :class:`IdempotencyKeyInUse` to tell them apart.
    """


class IdempotencyKeyMismatch(IdempotencyConflict):
    """The key was used before by the same agent for a different request: a client bug.
    Never retry it; use a new key for a new request."""


class IdempotencyKeyInUse(IdempotencyConflict):
    """The first request with this key is still in flight: retry later (``recover()``
    resolves it if its process died)."""


class ApprovalClosed(EscrowKitError):
    """A decision on an approval that is no longer pending: it was already approved (the
    spend went ahead), rejected, denied on re-check, or it expired. ``status`` says which."""

    def __init__(self, approval_id: str, status: str, message: str) -> None:
        self.approval_id = approval_id
        self.status = status
        super().__init__(message)

    def __reduce__(self) -> Any:
        return (type(self), (self.approval_id, self.status, str(self)))


class ConfigurationError(EscrowKitError):
    """The environment or settings cannot work (missing tool, wrong key, unknown network)."""


class NotFound(EscrowKitError, LookupError):
    """A named thing (escrow, agent, approval, deployment) does not exist."""


class SolcNotFound(ConfigurationError):
    """No usable Solidity compiler was found; the message lists what was tried."""


class CompilationError(EscrowKitError):
    """solc rejected the sources. ``messages`` holds solc's formatted errors (file:line)."""

    def __init__(self, messages: Sequence[str], *, command: Sequence[str] | None = None) -> None:
        self.messages = list(messages)
        self.command = list(command or [])
        super().__init__("solc reported errors:\n" + "\n".join(self.messages))


class ChainError(EscrowKitError):
    """A node or transport problem: the request may or may not have reached the chain.

    The message never holds a URL's path, query or credentials (see :func:`redact_secrets`),
    whatever the transport library put in it.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(redact_secrets(str(message)))


def describe_error(exc: BaseException) -> str:
    """``Type: message`` for reasons and logs, with URLs cut to scheme and host: RPC URLs
    often carry API keys in their path or query."""
    text = redact_secrets(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= 500 else text[:497] + "..."


class TransactionTimeout(ChainError):
    """No receipt arrived in time. The transaction may still be mined: check ``tx_hash``."""

    def __init__(self, tx_hash: str, timeout: float) -> None:
        self.tx_hash = tx_hash
        self.timeout = timeout
        super().__init__(f"no receipt for {tx_hash} after {timeout:g}s; it may still be mined")

    def __reduce__(self) -> Any:
        return (type(self), (self.tx_hash, self.timeout))


class NonceConflict(ChainError):
    """The node refused a transaction's nonce: already used (mined, or held by another
    pending transaction of the same key) or beyond a gap. Nothing of this transaction was
    accepted; the nonce source reads the node's count again and sends once more."""


# --------------------------------------------------------------------------------------
# Contract reverts
# --------------------------------------------------------------------------------------


class ContractRevert(EscrowKitError):
    """A call or transaction reverted.

    ``name`` is the Solidity error's name, ``arguments`` its decoded arguments by name,
    ``data`` the raw revert bytes, ``tx_hash`` the transaction (None for a call or a
    transaction rejected at gas estimation, before it was sent).
    """

    name: ClassVar[str] = ""
    signature: ClassVar[str] = ""

    def __init__(
        self,
        arguments: Mapping[str, Any] | None = None,
        *,
        data: bytes = b"",
        tx_hash: str | None = None,
        context: str | None = None,
    ) -> None:
        self.arguments: dict[str, Any] = dict(arguments or {})
        self.data = bytes(data)
        self.tx_hash = tx_hash
        self.context = context
        for key, value in self.arguments.items():
            if key.isidentifier() and not hasattr(type(self), key):
                setattr(self, key, value)
        super().__init__(self._message())

    def _message(self) -> str:
        label = self.name or "revert without reason"
        args = ", ".join(f"{k}={_show(v)}" for k, v in self.arguments.items())
        text = f"{label}({args})" if self.name else label
        if not self.name and self.data:
            text = f"unknown error 0x{self.data[:4].hex()} (data 0x{self.data.hex()})"
        if self.context:
            text = f"{self.context} reverted: {text}"
        if self.tx_hash:
            text += f" [tx {self.tx_hash}]"
        return text

    def __reduce__(self) -> Any:
        return (
            _rebuild_revert,
            (self.data, self.tx_hash, self.context),
        )


class Error(ContractRevert):
    """``revert("message")`` / ``require(cond, "message")``: ``Error(string)``."""

    name = "Error"
    signature = "Error(string)"

    @property
    def reason(self) -> str:
        return str(self.arguments.get("message", ""))


class Panic(ContractRevert):
    """A Solidity panic (``Panic(uint256)``): overflow, division by zero, assert..."""

    name = "Panic"
    signature = "Panic(uint256)"

    @property
    def code(self) -> int:
        return int(self.arguments.get("code", 0))


def _rebuild_revert(data: bytes, tx_hash: str | None, context: str | None) -> ContractRevert:
    return decode_revert(data, tx_hash=tx_hash, context=context)


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value) if isinstance(value, str) else str(value)


_ERROR_SELECTOR = bytes.fromhex("08c379a0")
_PANIC_SELECTOR = bytes.fromhex("4e487b71")


class _Registry:
    """Custom errors by selector and by name, filled from ABIs on demand."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.by_selector: dict[bytes, tuple[type[ContractRevert], list[dict[str, Any]]]] = {}
        self.by_name: dict[str, type[ContractRevert]] = {"Error": Error, "Panic": Panic}
        self.artifacts_loaded = False

    def load_artifacts(self) -> None:
        if self.artifacts_loaded:
            return
        with self.lock:
            if self.artifacts_loaded:
                return
            folder = Path(__file__).resolve().parents[1] / "artifacts"  # the shipped ABIs
            for path in sorted(folder.glob("*.json")):
                register_abi(json.loads(path.read_text())["abi"])
            self.artifacts_loaded = True


_registry = _Registry()


def register_abi(abi: Iterable[Mapping[str, Any]]) -> None:
    """Learn the custom errors of an ABI so their reverts decode to named exceptions."""
    from eth_utils.crypto import keccak

    with _registry.lock:
        for item in abi:
            if item.get("type") != "error":
                continue
            inputs = list(item.get("inputs", []))
            signature = f"{item['name']}({','.join(_canonical_type(i) for i in inputs)})"
            selector = keccak(text=signature)[:4]
            if selector in _registry.by_selector:
                continue
            cls = _registry.by_name.get(item["name"])
            if cls is None or cls.signature != signature:
                doc = f"Solidity custom error ``{signature}``."
                cls = type(
                    item["name"],
                    (ContractRevert,),
                    {
                        "name": item["name"],
                        "signature": signature,
                        "__doc__": doc,
                        "__module__": "escrowkit.errors",  # the public path
                    },
                )
                # Two contracts may declare errors with one name but different arguments;
                # the first keeps the name lookup, both decode by selector.
                _registry.by_name.setdefault(item["name"], cls)
            _registry.by_selector[selector] = (cls, inputs)


def _canonical_type(param: Mapping[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def revert_class(name: str) -> type[ContractRevert]:
    """The exception class for a Solidity error name, e.g. ``revert_class("NotParty")``."""
    _registry.load_artifacts()
    try:
        return _registry.by_name[name]
    except KeyError:
        known = ", ".join(sorted(_registry.by_name))
        raise AttributeError(f"no contract error named {name!r}; known: {known}") from None


def decode_revert(
    data: bytes, *, tx_hash: str | None = None, context: str | None = None
) -> ContractRevert:
    """Turn raw revert bytes into the matching :class:`ContractRevert` subclass instance."""
    from eth_abi.abi import decode

    data = bytes(data)
    selector, body = data[:4], data[4:]
    try:
        if selector == _ERROR_SELECTOR:
            (message,) = decode(["string"], body)
            return Error({"message": message}, data=data, tx_hash=tx_hash, context=context)
        if selector == _PANIC_SELECTOR:
            (code,) = decode(["uint256"], body)
            return Panic({"code": code}, data=data, tx_hash=tx_hash, context=context)
        _registry.load_artifacts()
        entry = _registry.by_selector.get(selector)
        if entry is not None:
            cls, inputs = entry
            values = decode([_canonical_type(i) for i in inputs], body)
            names = [i.get("name") or f"arg{n}" for n, i in enumerate(inputs)]
            args = {k: _normalize(v) for k, v in zip(names, values, strict=True)}
            return cls(args, data=data, tx_hash=tx_hash, context=context)
    except Exception:  # malformed revert data: fall through to an unnamed revert
        pass
    return ContractRevert(data=data, tx_hash=tx_hash, context=context)


def _normalize(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        from eth_utils.address import to_checksum_address

        return to_checksum_address(value)
    return value
