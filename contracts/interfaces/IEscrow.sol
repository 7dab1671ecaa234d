// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IEscrow
/// @notice Escrow of one ERC-20 between a requester and a provider, with a strict state
///         machine: INITIATED -> FUNDED -> SETTLED, or CANCELLED. No owner, no admin.
/// @dev Note: escrow id = keccak256(abi.encode(requester, salt)); the requester picks the
///      salt, so ids are predictable off-chain and nobody can squat another requester's id.
interface IEscrow {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice NONE means "no such escrow". SETTLED and CANCELLED are final.
    enum State {
        NONE,
        INITIATED,
        FUNDED,
        SETTLED,
        CANCELLED
    }

    /// @notice An escrow as stored (two slots) and returned by `getEscrow`.
    struct EscrowData {
        address requester;
        uint96 amount;
        address provider;
        uint40 deadline;
        uint32 disputeWindow;
        State state;
    }

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice Thrown when escrow `id` is in `state`, where the call is not allowed.
    error InvalidState(bytes32 id, State state);
    /// @notice Thrown when `caller` is neither the requester nor the provider allowed to act.
    error NotParty(bytes32 id, address caller);
    /// @notice Thrown when the call is allowed only from timestamp `readyAt`.
    error TooEarly(bytes32 id, uint256 readyAt);
    /// @notice Thrown when the call was allowed only before timestamp `endedAt`.
    error TooLate(bytes32 id, uint256 endedAt);
    /// @notice Thrown when `amount` is 0 or does not fit in 96 bits.
    error AmountOutOfRange(uint256 amount);
    /// @notice Thrown when the provider is the zero address, the requester itself or the escrow.
    error InvalidProvider(address provider);
    /// @notice Thrown when `deadline` is not after `nowTs` or does not fit in 40 bits.
    error InvalidDeadline(uint256 deadline, uint256 nowTs);
    /// @notice Thrown when the dispute window does not fit in 32 bits.
    error InvalidDisputeWindow(uint256 disputeWindow);
    /// @notice Thrown when `expected` tokens were sent but `received` arrived (fee-on-transfer).
    error UnsupportedToken(address token, uint256 expected, uint256 received);
    /// @notice Thrown when a token call reverted or returned false.
    error TokenTransferFailed(address token, address to, uint256 amount);
    /// @notice Thrown when a call re-enters the escrow while another is running.
    error Reentrancy();
    /// @notice Thrown by the constructor for a fee above 500 bps, a fee without a recipient,
    ///         a recipient without a fee, or the escrow itself as the recipient.
    error InvalidFee(uint256 feeBps, address feeRecipient);
    /// @notice Thrown by the constructor when `token` has no code.
    error InvalidToken(address token);
    /// @notice Thrown when owed tokens would be withdrawn to the zero address or the escrow.
    error InvalidRecipient(address to);
    /// @notice Thrown when `account` has nothing owed to withdraw.
    error NothingOwed(address account);

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    event EscrowCreated(
        bytes32 indexed id,
        address indexed requester,
        address indexed provider,
        uint256 amount,
        uint256 deadline,
        uint256 disputeWindow,
        bytes32 metadata
    );
    event EscrowFunded(bytes32 indexed id);
    event EscrowSettled(bytes32 indexed id, uint256 paid, uint256 fee);
    event EscrowCancelled(bytes32 indexed id, uint256 refunded);
    /// @notice A payment could not be pushed (e.g. a blocklisted recipient) and is owed.
    event PaymentDeferred(bytes32 indexed id, address indexed account, uint256 amount);
    /// @notice `account` pulled `amount` it was owed, to `to`.
    event OwedWithdrawn(address indexed account, address indexed to, uint256 amount);

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function token() external view returns (address);
    function feeBps() external view returns (uint256);
    function feeRecipient() external view returns (address);
    function escrowId(address requester, bytes32 salt) external pure returns (bytes32);
    function getEscrow(bytes32 id) external view returns (EscrowData memory);
    function owed(address account) external view returns (uint256);

    /*//////////////////////////////////////////////////////////////
                                 ACTIONS
    //////////////////////////////////////////////////////////////*/

    function create(
        bytes32 salt,
        address provider,
        uint256 amount,
        uint256 deadline,
        uint256 disputeWindow,
        bytes32 metadata
    ) external returns (bytes32 id);

    function createAndFund(
        bytes32 salt,
        address provider,
        uint256 amount,
        uint256 deadline,
        uint256 disputeWindow,
        bytes32 metadata
    ) external returns (bytes32 id);

    function fund(bytes32 id) external;
    function settle(bytes32 id) external;
    function cancel(bytes32 id) external;
    function withdrawOwed(address to) external returns (uint256 amount);
}
