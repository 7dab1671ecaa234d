"""An Escrow's ids and events as Python values: :class:`EscrowId` and the typed, frozen
event records :meth:`EscrowClient.history <escrowkit.contracts.escrow.EscrowClient.history>`
returns (re-exported by :mod:`escrowkit.contracts.escrow`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from escrowkit.core.addresses import checksum
from escrowkit.core.inputs import bytes32

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress
    from web3.types import EventData, TxReceipt

__all__ = [
    "EVENT_TYPES",
    "EscrowCancelled",
    "EscrowCreated",
    "EscrowEvent",
    "EscrowFunded",
    "EscrowId",
    "EscrowSettled",
    "PaymentDeferred",
    "decode_event",
]


class EscrowId(bytes):
    """A 32-byte escrow id. ``.receipt`` is the receipt of the call that created it, if any.

    It is a ``bytes`` (equality, hashing, ``.hex()`` are those of the 32 bytes; the receipt
    plays no part); ``str()`` gives ``0x``-prefixed hex. ``EscrowId("0x…")`` parses hex.
    """

    receipt: TxReceipt | None

    def __new__(cls, value: bytes | str, receipt: TxReceipt | None = None) -> EscrowId:
        self = super().__new__(cls, bytes32(value, name="escrow id"))
        self.receipt = receipt
        return self

    def to_0x_hex(self) -> str:
        return "0x" + self.hex()

    def __str__(self) -> str:
        return self.to_0x_hex()

    def __repr__(self) -> str:
        return f"EscrowId({self.to_0x_hex()})"

    def __reduce__(self) -> tuple[type[EscrowId], tuple[bytes]]:
        # The receipt is a node's answer, not part of the id: it is not pickled.
        return (EscrowId, (bytes(self),))


# --------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EscrowEvent:
    """One event of an escrow's history, in chain order (block, then log index)."""

    event: ClassVar[str] = ""
    id: EscrowId
    block_number: int
    log_index: int
    tx_hash: str


@dataclass(frozen=True, kw_only=True)
class EscrowCreated(EscrowEvent):
    event: ClassVar[str] = "EscrowCreated"
    requester: ChecksumAddress
    provider: ChecksumAddress
    amount: int
    deadline: int
    dispute_window: int
    metadata: bytes


@dataclass(frozen=True, kw_only=True)
class EscrowFunded(EscrowEvent):
    event: ClassVar[str] = "EscrowFunded"


@dataclass(frozen=True, kw_only=True)
class EscrowSettled(EscrowEvent):
    """``paid`` went (or is owed) to the provider, ``fee`` to the fee recipient."""

    event: ClassVar[str] = "EscrowSettled"
    paid: int
    fee: int


@dataclass(frozen=True, kw_only=True)
class EscrowCancelled(EscrowEvent):
    """``refunded`` is 0 for an escrow cancelled before it was funded."""

    event: ClassVar[str] = "EscrowCancelled"
    refunded: int


@dataclass(frozen=True, kw_only=True)
class PaymentDeferred(EscrowEvent):
    """The token refused to pay ``account``; ``amount`` is owed to it (``withdraw_owed``)."""

    event: ClassVar[str] = "PaymentDeferred"
    account: ChecksumAddress
    amount: int


EVENT_TYPES: dict[str, type[EscrowEvent]] = {
    cls.event: cls
    for cls in (EscrowCreated, EscrowFunded, EscrowSettled, EscrowCancelled, PaymentDeferred)
}
# Solidity argument name -> dataclass field, where they differ.
_FIELD_NAMES = {"disputeWindow": "dispute_window"}


def decode_event(cls: type[EscrowEvent], data: EventData) -> EscrowEvent:
    """A decoded web3 event of ``cls``'s kind as that dataclass."""
    fields: dict[str, Any] = {
        "block_number": int(data["blockNumber"]),
        "log_index": int(data["logIndex"]),
        "tx_hash": data["transactionHash"].to_0x_hex(),
    }
    for key, value in data["args"].items():
        field = _FIELD_NAMES.get(key, key)
        if field == "id":
            fields["id"] = EscrowId(bytes(value))
        elif isinstance(value, str) and value.startswith("0x") and len(value) == 42:
            fields[field] = checksum(value)
        elif isinstance(value, bytes):
            fields[field] = bytes(value)
        else:
            fields[field] = int(value)
    return cls(**fields)
