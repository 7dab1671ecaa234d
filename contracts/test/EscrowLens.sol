// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "../interfaces/IERC20.sol";
import {IEscrow} from "../interfaces/IEscrow.sol";

/// @title EscrowLens
/// @notice Reads, in one call, what an escrow test checks after every step: the escrow's
///         token balance, each account's token balance and amount owed, and one record.
contract EscrowLens {
    /// @notice Balances of `escrow`'s token and `escrow.owed` for `accounts`, and record `id`.
    /// @param escrow The escrow to read.
    /// @param accounts Whose balances and debts to read.
    /// @param id An escrow id whose record to return (all zero for none).
    /// @return held The escrow's own token balance.
    /// @return balances Each account's token balance, in order.
    /// @return owed What the escrow owes each account, in order.
    /// @return record `escrow.getEscrow(id)`.
    function read(IEscrow escrow, address[] calldata accounts, bytes32 id)
        external
        view
        returns (
            uint256 held,
            uint256[] memory balances,
            uint256[] memory owed,
            IEscrow.EscrowData memory record
        )
    {
        IERC20 token = IERC20(escrow.token());
        held = token.balanceOf(address(escrow));
        balances = new uint256[](accounts.length);
        owed = new uint256[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) {
            balances[i] = token.balanceOf(accounts[i]);
            owed[i] = escrow.owed(accounts[i]);
        }
        record = escrow.getEscrow(id);
    }
}
