// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title BlocklistToken
/// @notice A USDC-like test token with a blocklist: any transfer to or from a blocked
///         account fails, by reverting (like USDC) or, with `setReturnFalse(true)`, by
///         returning false. Open `mint` and `setBlocked`. Tests only.
contract BlocklistToken {
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice Thrown when `account` is blocklisted.
    error Blocked(address account);
    /// @notice Thrown when `from` holds less than `needed`.
    error InsufficientBalance(address from, uint256 balance, uint256 needed);
    /// @notice Thrown when `spender` may move less than `needed`.
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);

    string public constant name = "Blocklist Token";
    string public constant symbol = "BLT";
    uint8 public constant decimals = 6;

    uint256 public totalSupply;
    mapping(address account => uint256) public balanceOf;
    mapping(address owner => mapping(address spender => uint256)) public allowance;
    mapping(address account => bool) public blocked;
    /// @notice When true, a blocked transfer returns false instead of reverting.
    bool public returnFalse;

    /// @notice Creates `amount` tokens for `to`.
    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Blocks or unblocks `account`.
    function setBlocked(address account, bool isBlocked) external {
        blocked[account] = isBlocked;
    }

    /// @notice Chooses how a blocked transfer fails: revert (false) or return false (true).
    function setReturnFalse(bool enabled) external {
        returnFalse = enabled;
    }

    /// @notice Sets the caller's allowance for `spender`.
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Moves `amount` from the caller to `to`, unless either is blocked.
    function transfer(address to, uint256 amount) external returns (bool) {
        return _move(msg.sender, to, amount);
    }

    /// @notice Moves `amount` from `from` to `to` on the caller's allowance, unless blocked.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(msg.sender, allowed, amount);
            allowance[from][msg.sender] = allowed - amount;
        }
        return _move(from, to, amount);
    }

    function _move(address from, address to, uint256 amount) internal returns (bool) {
        address bad = blocked[from] ? from : blocked[to] ? to : address(0);
        if (bad != address(0)) {
            if (returnFalse) return false;
            revert Blocked(bad);
        }
        uint256 balance = balanceOf[from];
        if (balance < amount) revert InsufficientBalance(from, balance, amount);
        balanceOf[from] = balance - amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
        return true;
    }
}
