// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ReentrantToken
/// @notice A hostile test token: once armed with `arm(target, data, bubble)`, its next
///         `transfer` or `transferFrom` first calls `target` with `data` (from the token's
///         own address, so the token must be a party of the escrow it attacks, e.g. its
///         provider). The outcome is kept in `lastReentryOk` / `lastReentryData`; with
///         `bubble`, a failed re-entry makes the transfer itself revert with the same data.
contract ReentrantToken {
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    /// @notice The armed call ran (during a transfer) with this outcome.
    event Reentered(address indexed target, bool ok, bytes returnData);

    /// @notice Thrown when `from` holds less than `needed`.
    error InsufficientBalance(address from, uint256 balance, uint256 needed);
    /// @notice Thrown when `spender` may move less than `needed`.
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);

    string public constant name = "Reentrant Token";
    string public constant symbol = "REN";
    uint8 public constant decimals = 6;

    uint256 public totalSupply;
    mapping(address account => uint256) public balanceOf;
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    address public target;
    bytes public data;
    bool public bubble;
    bool public lastReentryOk;
    bytes public lastReentryData;

    /// @notice Creates `amount` tokens for `to`.
    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice The next transfer first calls `target_` with `data_` (once).
    function arm(address target_, bytes calldata data_, bool bubble_) external {
        target = target_;
        data = data_;
        bubble = bubble_;
    }

    /// @notice Sets the caller's allowance for `spender`.
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Re-enters if armed, then moves `amount` from the caller to `to`.
    function transfer(address to, uint256 amount) external returns (bool) {
        _reenter();
        _move(msg.sender, to, amount);
        return true;
    }

    /// @notice Re-enters if armed, then moves `amount` from `from` to `to`.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        _reenter();
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(msg.sender, allowed, amount);
            allowance[from][msg.sender] = allowed - amount;
        }
        _move(from, to, amount);
        return true;
    }

    function _reenter() internal {
        address callee = target;
        if (callee == address(0)) return;
        target = address(0); // disarm first: one re-entry per arm
        (bool ok, bytes memory returnData) = callee.call(data);
        lastReentryOk = ok;
        lastReentryData = returnData;
        emit Reentered(callee, ok, returnData);
        if (!ok && bubble) {
            assembly ("memory-safe") {
                revert(add(returnData, 0x20), mload(returnData))
            }
        }
    }

    function _move(address from, address to, uint256 amount) internal {
        uint256 balance = balanceOf[from];
        if (balance < amount) revert InsufficientBalance(from, balance, amount);
        balanceOf[from] = balance - amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
