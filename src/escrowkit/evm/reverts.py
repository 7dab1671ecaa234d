"""Reverts from any backend: the raw revert bytes out of whatever it raised, and its
exceptions as escrowkit's.

eth-tester, anvil and other nodes each raise something else for the same revert (DESIGN.md
section 2). The bytes found here are decoded into the named
:class:`~escrowkit.errors.ContractRevert` by :func:`escrowkit.core.errors.decode_revert`;
anything that is no revert becomes a :class:`~escrowkit.errors.ChainError`.
"""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import Callable
from typing import TypeVar

from escrowkit.core.errors import ChainError, ContractRevert, decode_revert

__all__ = [
    "revert_bytes_of",
    "revert_data_from_exception",
    "revert_from_exception",
    "translate",
    "translated",
]

T = TypeVar("T")

_BYTES_REPR = re.compile(r"^(?:execution reverted: )?(b'.*'|b\".*\")$", re.DOTALL)
_HEX = re.compile(r"^0x(?:[0-9a-fA-F]{2})*$")
_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")


def revert_data_from_exception(exc: BaseException) -> bytes | None:
    """Dig the raw revert bytes out of whatever a backend raised, or None if it was no revert.

    eth-tester raises ``TransactionFailed`` whose text has lost the selector; the bytes
    survive on a chained exception, as a ``bytes`` argument or as their ``repr``. web3's
    ``ContractLogicError`` family (what anvil produces) carries them as ``.data`` hex.
    """
    if not _is_revert(exc):
        return None
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    tester_message: str | None = None
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found = revert_bytes_of(getattr(current, "data", None))
        if found is not None:
            return found
        from_tester = type(current).__module__.startswith("eth_tester")
        if from_tester and current.args and isinstance(current.args[0], str):
            tester_message = current.args[0]
        for arg in current.args:
            if isinstance(arg, BaseException):
                stack.append(arg)
            elif (found := revert_bytes_of(arg)) is not None:
                return found
            elif isinstance(arg, str) and (match := _BYTES_REPR.match(arg)):
                with contextlib.suppress(ValueError, SyntaxError):
                    value = ast.literal_eval(match.group(1))
                    if isinstance(value, bytes):
                        return value
            elif hasattr(arg, "args") and arg.args and isinstance(arg.args[0], bytes):
                return bytes(arg.args[0])  # py-evm's Revert(b"...")
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    if tester_message:
        # eth-tester's eth_call decodes Error(string) and keeps only the text: encode it back.
        from eth_abi.abi import encode

        text = tester_message.removeprefix("execution reverted: ")
        return _ERROR_STRING_SELECTOR + encode(["string"], [text])
    return b""


def revert_bytes_of(value: object) -> bytes | None:
    """Revert data as bytes when ``value`` holds some (bytes, 0x hex, or a JSON-RPC error's
    ``{"data": ...}``), else None."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and _HEX.match(value):
        return bytes.fromhex(value[2:])
    if isinstance(value, dict):
        return revert_bytes_of(value.get("data"))
    return None


def _is_revert(exc: BaseException) -> bool:
    name = type(exc).__name__
    if name in {
        "TransactionFailed",
        "ContractLogicError",
        "ContractCustomError",
        "ContractPanicError",
    }:
        return True
    from web3.exceptions import ContractLogicError

    if isinstance(exc, ContractLogicError):
        return True
    text = str(exc).lower()
    return "execution reverted" in text or ("revert" in text and "vm exception" in text)


def revert_from_exception(
    exc: BaseException, *, tx_hash: str | None = None, context: str | None = None
) -> ContractRevert | None:
    """The named ContractRevert for a backend's exception, or None when it is not a revert."""
    data = revert_data_from_exception(exc)
    if data is None:
        return None
    return decode_revert(data, tx_hash=tx_hash, context=context)


def translate(exc: Exception, *, context: str) -> Exception:
    """``exc`` as escrowkit's: its named ContractRevert, itself when it is a ChainError
    already, else a ChainError that says ``context``."""
    revert = revert_from_exception(exc, context=context)
    if revert is not None:
        return revert
    if isinstance(exc, ChainError):
        return exc
    return ChainError(f"{context}: {type(exc).__name__}: {exc}")


def translated(thunk: Callable[[], T]) -> T:
    """``thunk()``, raising a backend's revert as its ContractRevert and anything else it
    raises as ChainError (escrowkit's own errors pass through)."""
    try:
        return thunk()
    except (ChainError, ContractRevert):
        raise
    except Exception as exc:
        revert = revert_from_exception(exc)
        if revert is not None:
            raise revert from None
        raise ChainError(f"{type(exc).__name__}: {exc}") from exc
