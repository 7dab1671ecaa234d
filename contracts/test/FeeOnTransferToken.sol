// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title FeeOnTransferToken
/// @notice A test token that burns `FEE_BPS` of every transfer: the recipient gets less
///         than was sent. Escrow must refuse it (balance-delta check). Open `mint`.
contract FeeOnTransferToken {
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice Thrown when `from` holds less than `needed`.
    error InsufficientBalance(address from, uint256 balance, uint256 needed);
    /// @notice Thrown when `spender` may move less than `needed`.
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);

    string public constant name = "Fee On Transfer Token";
    string public constant symbol = "FOT";
    uint8 public constant decimals = 6;
    /// @notice The share of each transfer that is burned: 1 %.
    uint256 public constant FEE_BPS = 100;

    uint256 public totalSupply;
    mapping(address account => uint256) public balanceOf;
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    /// @notice Creates `amount` tokens for `to`.
    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Sets the caller's allowance for `spender`.
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Moves `amount` from the caller; `to` receives it less the fee.
    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    /// @notice Moves `amount` from `from` on the caller's allowance; `to` receives it less the fee.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(msg.sender, allowed, amount);
            allowance[from][msg.sender] = allowed - amount;
        }
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) internal {
        uint256 balance = balanceOf[from];
        if (balance < amount) revert InsufficientBalance(from, balance, amount);
        uint256 fee = amount * FEE_BPS / 10_000;
        balanceOf[from] = balance - amount;
        balanceOf[to] += amount - fee;
        totalSupply -= fee;
        emit Transfer(from, to, amount - fee);
        emit Transfer(from, address(0), fee);
    }
}
