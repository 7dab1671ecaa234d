"""The embedded chain: eth-tester (py-evm) in this process, and what keeps it fast.

eth-tester mines every transaction as it is sent, so a transaction needs no gas estimate
to learn whether it reverts: :meth:`EmbeddedTransport.send_once` runs it once, in the
pending block, with all the gas a block allows (or the sender can pay for). If it fails,
the pending block is put back as it was (no block, no nonce used: exactly what a revert
at estimation leaves) and the revert is raised, named, from the EVM's own revert data;
if it succeeds, eth-tester mines it. py-evm's ``eth_estimateGas`` is a binary search that
runs a transaction about thirteen times; a spend used to cost fourteen executions and now
costs one. ``tests/contracts/test_gas.py`` holds every gas figure (a receipt's gas used
does not depend on the gas limit), and ``tests/integration/test_chain_backends.py`` every
kind of revert, against anvil.

Mining and the receipt skip what nobody reads: with no filter installed, the block is
mined by eth-tester's backend without eth-tester reading it back in full (it does that only
to feed filters), and the receipt of the transaction just mined is made from the objects
at hand with the fields, order and types ``w3.eth.get_transaction_receipt`` gives
(``tests/contracts/test_embedded_once.py`` compares them, types included), instead of a
lookup by hash, eth-tester's serializer and normalizer, and a request through web3's
middleware and formatters. The chain :func:`embedded_web3` builds runs its blocks on lean
subclasses of eth-tester's VMs (:func:`use_lean_states`): the same EVM and the same
states, without a py-evm step that never changes anything and with the jump analysis of
a contract's code kept between calls.

Where the shortcut cannot keep eth-tester's behaviour (auto-mining switched off, or
filters installed that eth-tester feeds as it sends) the transport takes the ordinary
path: an estimate, which on this chain is one execution too (:func:`one_execution_gas`),
then an ordinary send.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, cast

from escrowkit.core.addresses import checksum
from escrowkit.core.errors import ChainError, InvalidRequest, decode_revert
from escrowkit.evm.transports import Web3Transport, with_buffer

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3
    from web3.types import TxReceipt


__all__ = ["EmbeddedTransport", "embedded_web3", "one_execution_gas", "use_lean_states"]


class EmbeddedTransport(Web3Transport):
    """eth-tester through web3's ``EthereumTesterProvider``; transactions without a gas
    limit through :meth:`send_once`; snapshots and time through eth-tester itself, under
    the provider's lock."""

    # eth-tester always estimates on its pending block and rejects the parameter.
    estimate_block: str | None = None
    wall_clock = False
    executes_on_send = True

    def __init__(self, w3: Web3) -> None:
        super().__init__(w3)
        #: (hash, (block hash, number, base fee), transaction, receipt) of the transaction
        #: send_once mined last, until its receipt is read.
        self._mined: tuple[str, tuple[bytes, int, int], Any, Any] | None = None
        _install_estimator(self._tester().backend.chain)

    def _tester(self) -> Any:
        return self.w3.provider.ethereum_tester  # type: ignore[attr-defined]

    def _lock(self) -> Any:
        return getattr(self.w3.provider, "lock", contextlib.nullcontext())

    def send_once(self, signer: LocalAccount, tx: dict[str, Any], *, context: str) -> str:
        """Run ``tx`` (no gas limit yet) once as it is mined; its hash. A revert raises
        its named ContractRevert and leaves nothing behind."""
        tester = self._tester()
        with self._lock():
            if not _plain(tester):
                return self._estimated(signer, tx, context)
            chain = tester.backend.chain
            tx["gas"] = chain.header.gas_limit
            raw = self._sign(signer, tx)
            evm_tx = chain.get_vm().get_transaction_builder().decode(raw)
            pending = chain.header
            try:
                _, receipt, computation = chain.apply_transaction(evm_tx)
            except Exception as exc:  # py-evm refused it (nonce, balance for the gas)
                chain.header = pending
                if "afford" in str(exc) or "enough balance" in str(exc):
                    # All the gas of a block costs more than the sender holds: pay for
                    # what it needs instead.
                    return self._estimated(signer, tx, context)
                raise ChainError(f"{context}: {type(exc).__name__}: {exc}") from None
            if computation.is_error:
                chain.header = pending  # as if it was never sent
                raise _revert_of(computation.error, context)
            tx_hash = "0x" + bytes(evm_tx.hash).hex()
            if tester._block_filters:  # eth-tester feeds them the mined block
                tester.mine_block()
                return tx_hash
            # What tester.mine_block() does when no filter is installed, without reading
            # the new block back to feed filters there are none of.
            (block_hash,) = tester.backend.mine_blocks(1, _ZERO_ADDRESS)
            # Mining sets neither the number nor the base fee of the pending block.
            block = (block_hash, pending.block_number, pending.base_fee_per_gas)
            self._mined = (tx_hash, block, evm_tx, receipt)
            return tx_hash

    def get_receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt of the transaction :meth:`send_once` just mined, made from what it
        has at hand (see :meth:`_format_receipt`); any other through web3."""
        mined = self._mined
        if mined is not None and mined[0] == tx_hash:
            self._mined = None
            _, block, evm_tx, receipt = mined
            formatted = self._format_receipt(block, evm_tx, receipt)
            if formatted is not None:
                return formatted
        return super().get_receipt(tx_hash)

    def _format_receipt(
        self, block: tuple[bytes, int, int], evm_tx: Any, receipt: Any
    ) -> TxReceipt | None:
        """What ``w3.eth.get_transaction_receipt`` returns for the only transaction of
        ``block`` (hash, number, base fee), a successful EIP-1559 one (every transaction
        escrowkit signs): the fields that eth-tester's serializer and normalizer, web3's
        eth-tester formatter, its attrdict middleware and its receipt formatter make, in
        their order, with their types. None for any other kind (web3 reads that one)."""
        if getattr(evm_tx, "type_id", None) != _DYNAMIC_FEE or receipt.state_root != b"\x01":
            return None
        from hexbytes import HexBytes
        from web3.datastructures import AttributeDict

        tx_hash = HexBytes(evm_tx.hash)
        block_hash, number, base_fee = HexBytes(block[0]), block[1], block[2]
        sender = evm_tx.sender
        logs = [
            AttributeDict(
                {
                    "type": "mined",
                    "logIndex": index,
                    "transactionIndex": 0,
                    "transactionHash": tx_hash,
                    "blockHash": block_hash,
                    "blockNumber": number,
                    "address": _checksum(log.address),
                    "data": HexBytes(log.data),
                    "topics": [HexBytes(topic.to_bytes(32, "big")) for topic in log.topics],
                }
            )
            for index, log in enumerate(receipt.logs)
        ]
        if evm_tx.to == b"":
            from eth._utils.address import generate_contract_address

            created: str | None = _checksum(generate_contract_address(sender, evm_tx.nonce))
            to = ""
        else:
            created, to = None, _checksum(evm_tx.to)
        out = {
            "blockHash": block_hash,
            "blockNumber": number,
            "contractAddress": created,
            "cumulativeGasUsed": receipt.gas_used,
            "effectiveGasPrice": min(
                evm_tx.max_fee_per_gas, evm_tx.max_priority_fee_per_gas + base_fee
            ),
            "from": _checksum(sender),
            "gasUsed": receipt.gas_used,
            "logs": logs,
            "state_root": receipt.state_root,
            "status": 1,
            "to": to,
            "transactionHash": tx_hash,
            "transactionIndex": 0,
            "type": _DYNAMIC_FEE,
        }
        return cast("TxReceipt", AttributeDict(out))

    def _estimated(self, signer: LocalAccount, tx: dict[str, Any], context: str) -> str:
        """The ordinary path: estimate (one execution, see :func:`one_execution_gas`),
        then send."""
        call: dict[str, Any] = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        tx["gas"] = with_buffer(self.estimate_gas(call, None, context=context))
        return self.sign_and_send(signer, tx, context=context)

    def _sign(self, signer: LocalAccount, tx: dict[str, Any]) -> bytes:
        if not isinstance(tx.get("to"), str) or not tx["to"]:
            return bytes(signer.sign_transaction(tx).raw_transaction)  # a deployment
        return self._fast_signer(signer).sign(tx)[0]

    def snapshot(self) -> Any:
        with self._lock():
            return self._tester().take_snapshot()

    def revert(self, snapshot: Any) -> None:
        with self._lock():
            self._mined = None
            self._tester().revert_to_snapshot(snapshot)

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """On eth-tester this mines a block at ``timestamp - 1`` (that is how its clock
        moves)."""
        tester = self._tester()
        with self._lock():
            pending = tester.get_block_by_number("pending")["timestamp"]
            if timestamp < pending:
                # py-evm opens a new pending block at max(parent + 1, wall clock).
                raise InvalidRequest(
                    f"eth-tester's next block is already at {pending} (it never goes "
                    f"below the wall clock); cannot pin {timestamp}"
                )
            if timestamp != pending:
                tester.time_travel(timestamp)


_ZERO_ADDRESS = b"\0" * 20  # eth-tester's coinbase


_DYNAMIC_FEE = 2  # EIP-1559's transaction type


def _checksum(address: bytes) -> str:
    return checksum("0x" + address.hex())


def _plain(tester: Any) -> bool:
    """Whether eth-tester sends the way :meth:`EmbeddedTransport.send_once` assumes:
    mining each transaction at once, with no filter to feed."""
    return bool(
        getattr(tester, "auto_mine_transactions", False)
        and not getattr(tester, "_log_filters", True)
        and not getattr(tester, "_pending_transaction_filters", True)
        and tester.backend.chain.header.gas_used == 0
    )


def _revert_of(error: BaseException, context: str) -> Exception:
    """py-evm's error as escrowkit's: a REVERT with its data as the named ContractRevert
    (an INVALID opcode as a bare one), anything else (out of gas at a block's gas) as
    ChainError, as the estimate reports them."""
    from eth.exceptions import InvalidInstruction, Revert

    if isinstance(error, Revert):
        data = error.args[0] if error.args and isinstance(error.args[0], bytes) else b""
        return decode_revert(data, context=context)
    if isinstance(error, InvalidInstruction):
        return decode_revert(b"", context=context)
    return ChainError(f"{context}: {type(error).__name__}: {error}")


def one_execution_gas(state: Any, transaction: Any) -> int:
    """A gas estimate from one execution with a block's gas (py-evm's default searches
    with about thirteen): the gas it used before refunds, plus 1/63 for the gas a call
    keeps back (EIP-150); a revert raises as py-evm's own search raises it. The chain
    adds its buffer on top (:mod:`escrowkit.evm.chain`)."""
    from eth.vm.spoof import SpoofTransaction

    limit = state.gas_limit
    # No fee at all (the estimate runs in py-evm's costless state): a sender who cannot
    # pay for a whole block's gas still learns what its transaction needs.
    free: dict[str, int] = {"gas_price": 0}
    if hasattr(transaction, "max_fee_per_gas"):
        free.update(max_fee_per_gas=0, max_priority_fee_per_gas=0)
    spoofed = SpoofTransaction(transaction, gas=limit, **free)
    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(spoofed)
        if computation.is_error:
            raise computation.error
        used = limit - computation.get_gas_remaining()
    finally:
        state.revert(snapshot)
    return int(min(used + used // 63 + 1, limit))


def _install_estimator(chain: Any) -> None:
    # eth-tester builds a chain class per tester and a new chain object of that class on
    # every snapshot revert: set it on both.
    estimator = staticmethod(one_execution_gas)
    type(chain).gas_estimator = estimator
    chain.gas_estimator = one_execution_gas


# --------------------------------------------------------------------------------------
# Building the web3 object
# --------------------------------------------------------------------------------------


def embedded_web3() -> Web3:
    """A fresh in-process eth-tester chain (py-evm) behind a locked provider."""
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import Web3

    backend = PyEVMBackend()
    use_lean_states(backend.chain)
    return Web3(_locked_provider_class()(EthereumTester(backend)))


def use_lean_states(chain: Any) -> None:
    """Run ``chain``'s blocks on VMs whose state skips py-evm's system-contract step and
    whose computations share their code's jump analysis.

    py-evm's Cancun and Prague states run ``set_system_contracts`` every time one is built
    (twice per block here): for each system contract, ``if not get_code(a) != code:
    set_code(a, code)``, that is, write the code only where that very code is already
    there. That never changes the state: where the contract is missing (eth-tester's
    genesis has neither) nothing is written, where it is there the same bytes are; it
    costs two account lookups through a cold trie per state (2.5 % of a lifecycle).
    ``tests/contracts/test_embedded_once.py`` runs the same transactions on a stock
    eth-tester and compares every block's state root.

    The same VMs share py-evm's jump-destination analysis between the code streams of one
    contract's code (py-evm redoes it for every call: 3.8 % of a lifecycle); it depends on
    the code alone.

    Set on the chain class eth-tester builds for this one tester (as the gas estimator
    is), when :meth:`Chain.embedded` makes it; nothing else is touched.
    """
    chain_class = type(chain)
    chain_class.vm_configuration = tuple(
        (start, _lean_vm(vm_class)) for start, vm_class in chain_class.vm_configuration
    )


#: Per contract code (bounded): the positions py-evm's CodeStream found to be valid and
#: invalid jump destinations, shared by every stream of that code.
_jump_analyses: dict[bytes, tuple[set[int], set[int]]] = {}
_JUMP_ANALYSES_KEPT = 512


def _code_stream(code: bytes) -> Any:
    """py-evm's CodeStream of ``code`` whose jump-destination analysis starts from what
    earlier streams of the same code found (a pure function of the code)."""
    from eth.vm.code_stream import CodeStream

    stream = CodeStream(code)
    found = _jump_analyses.get(code)
    if found is None:
        if len(_jump_analyses) >= _JUMP_ANALYSES_KEPT:
            _jump_analyses.clear()
        found = _jump_analyses.setdefault(code, (stream.valid_positions, stream.invalid_positions))
    stream.valid_positions, stream.invalid_positions = found
    return stream


def _lean_vm(vm_class: type) -> type:
    from eth.vm.forks.cancun.state import CancunState

    state_class: Any = vm_class._state_class  # type: ignore[attr-defined]
    if getattr(vm_class, "_lean", False) or not issubclass(state_class, CancunState):
        return vm_class

    computation_class: Any = state_class.computation_class

    class LeanComputation(computation_class):  # type: ignore[misc]
        def __init__(self, state: Any, message: Any, transaction_context: Any) -> None:
            super().__init__(state, message, transaction_context)
            self.code = _code_stream(message.code)

    LeanComputation.__name__ = LeanComputation.__qualname__ = computation_class.__name__

    class LeanState(state_class):  # type: ignore[misc]
        computation_class = LeanComputation

        def set_system_contracts(self) -> None:
            """Nothing: see :func:`use_lean_states`."""

    LeanState.__name__ = LeanState.__qualname__ = state_class.__name__
    namespace = {"_state_class": LeanState, "_lean": True, "__module__": __name__}
    return type(vm_class.__name__, (vm_class,), namespace)


_provider_class: type | None = None


def _locked_provider_class() -> type:
    global _provider_class
    if _provider_class is None:
        from web3 import EthereumTesterProvider

        class LockedTesterProvider(EthereumTesterProvider):
            """eth-tester is not thread-safe: every request goes through one lock."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.lock = threading.RLock()

            def make_request(self, method: Any, params: Any) -> Any:
                with self.lock:
                    return super().make_request(method, params)

        _provider_class = LockedTesterProvider
    return _provider_class
