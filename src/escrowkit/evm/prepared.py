"""Contract calls built and encoded without web3's per-call ABI work: :class:`PreparedCall`
looks a function's selector and types up once; :func:`encode_call` encodes a call with
eth-abi directly, and :func:`describe_call` names it in error messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress
    from web3.contract import Contract

__all__ = ["PreparedCall", "describe_call", "encode_call", "function_abi"]


@dataclass(frozen=True)
class PreparedCall:
    """A contract function call ready to encode, made without web3's per-call ABI lookup
    (``contract.functions.name(...)`` searches the ABI and builds a new object each time:
    a tenth of a spend's CPU). :meth:`Chain.transact` takes it like a web3 function."""

    contract: Contract
    fn_name: str
    selector: str
    argument_types: tuple[str, ...]
    arguments: tuple[Any, ...]

    @property
    def address(self) -> ChecksumAddress:
        return self.contract.address

    def web3_function(self) -> Any:
        """The same call as web3's ContractFunction (for what PreparedCall does not do)."""
        return self.contract.functions[self.fn_name](*self.arguments)

    def build_transaction(self, tx: dict[str, Any]) -> Any:
        return self.web3_function().build_transaction(tx)


def function_abi(abi: Sequence[Any], name: str) -> tuple[str, tuple[str, ...]] | None:
    """(selector, argument types) of the one function ``name`` in ``abi``, or None when
    the name is overloaded (then web3 must choose by the arguments)."""
    from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types

    entries = [e for e in abi if e.get("type") == "function" and e.get("name") == name]
    if len(entries) != 1:
        return None
    selector = "0x" + function_abi_to_4byte_selector(entries[0]).hex()
    return selector, tuple(get_abi_input_types(entries[0]))


def encode_call(fn: Any) -> str | None:
    """Calldata for a bound contract function straight from eth-abi, or None.

    web3 re-validates the contract's whole ABI and runs its normalizers on every encode
    (a tenth of a spend's CPU). escrowkit's clients pass canonical values (checksummed
    addresses, bytes, ints), which eth-abi encodes as they are; anything it refuses, and
    every constructor, goes through web3 instead.
    """
    selector = getattr(fn, "selector", None)
    types = getattr(fn, "argument_types", None)
    arguments = getattr(fn, "arguments", None)
    if not isinstance(selector, str) or types is None or arguments is None:
        return None
    from eth_abi.abi import encode
    from eth_abi.exceptions import EncodingError

    try:
        return selector + encode(list(types), list(arguments)).hex()
    except (EncodingError, TypeError, ValueError):
        return None


def describe_call(fn: Any) -> str:
    """``name on address`` of a call, for error messages."""
    name = getattr(fn, "fn_name", None) or type(fn).__name__
    address = getattr(fn, "address", None)
    return f"{name} on {address}" if address else str(name)
