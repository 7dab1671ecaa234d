"""TokenClient: the ERC-20 calls escrowkit needs (and MockUSDC's mint)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from escrowkit.build.compiler import load_artifact
from escrowkit.core.addresses import to_address
from escrowkit.core.errors import ContractRevert
from escrowkit.core.units import MAX_UINT256, TokenUnits, check_amount, parse_units

if TYPE_CHECKING:
    from decimal import Decimal

    from eth_typing import ChecksumAddress
    from web3.contract import Contract
    from web3.types import TxReceipt

    from escrowkit.evm.chain import Chain

__all__ = ["TokenClient"]


class TokenClient:
    """An ERC-20 at ``address``. Amounts are int base units."""

    def __init__(self, chain: Chain, address: str, *, abi: list[dict[str, Any]] | None = None):
        self.chain = chain
        self.address: ChecksumAddress = to_address(address, name="token address")
        self.contract: Contract = chain.contract(self.address, abi or load_artifact("MockUSDC").abi)

    def __repr__(self) -> str:
        return f"TokenClient({self.symbol} at {self.address})"

    @cached_property
    def decimals(self) -> int:
        return int(self.chain.call(self.contract.functions.decimals()))

    @cached_property
    def symbol(self) -> str:
        return str(self.chain.call(self.contract.functions.symbol()))

    def units(self, value: str | int | Decimal) -> int:
        """Human amount to base units: ``usdc.units("25") == 25_000_000``."""
        return parse_units(value, self.decimals)

    @cached_property
    def token_units(self) -> TokenUnits:
        """How this token's amounts are shown (decimals and symbol)."""
        return TokenUnits(self.decimals, self.symbol)

    def format(self, amount: int) -> str:
        """Base units to text, exactly: ``usdc.format(150_000_000) == "150.00 USDC"``,
        ``usdc.format(1) == "0.000001 USDC"`` (the one formatter, :class:`TokenUnits`)."""
        return self.token_units.format(amount)

    def balance_of(self, owner: str) -> int:
        return int(self.chain.call(self.contract.functions.balanceOf(to_address(owner))))

    def allowance(self, owner: str, spender: str) -> int:
        fn = self.contract.functions.allowance(to_address(owner), to_address(spender))
        return int(self.chain.call(fn))

    def total_supply(self) -> int:
        return int(self.chain.call(self.contract.functions.totalSupply()))

    def approve(self, spender: str, amount: int, sender: str) -> TxReceipt:
        """Set ``sender``'s allowance for ``spender`` (``MAX_UINT256`` for unlimited)."""
        check_amount(amount, allow_zero=True, maximum=MAX_UINT256)
        fn = self.contract.functions.approve(to_address(spender), amount)
        return self.chain.transact(fn, sender=sender, context=f"{self.symbol}.approve")

    def force_approve(
        self, spender: str, amount: int, sender: str, *, current: int | None = None
    ) -> list[TxReceipt]:
        """Set the allowance to ``amount`` on any token, as OpenZeppelin's
        ``SafeERC20.forceApprove`` does: USDT and its kin refuse to change an allowance
        from one non-zero value to another, so when ``approve`` reverts and an allowance
        is left, it is set to 0 first. ``current``: the allowance, if the caller just read
        it. Returns the receipts of the transactions sent."""
        try:
            return [self.approve(spender, amount, sender)]
        except ContractRevert:
            if current is None:
                current = self.allowance(sender, spender)
            if amount == 0 or current == 0:
                raise
        return [self.approve(spender, 0, sender), self.approve(spender, amount, sender)]

    def transfer(self, to: str, amount: int, sender: str) -> TxReceipt:
        fn = self.contract.functions.transfer(
            to_address(to), check_amount(amount, maximum=MAX_UINT256)
        )
        return self.chain.transact(fn, sender=sender, context=f"{self.symbol}.transfer")

    def mint(self, to: str, amount: int, sender: str) -> TxReceipt:
        """MockUSDC only: create ``amount`` new tokens for ``to``."""
        fn = self.contract.functions.mint(to_address(to), check_amount(amount, maximum=MAX_UINT256))
        return self.chain.transact(fn, sender=sender, context=f"{self.symbol}.mint")
