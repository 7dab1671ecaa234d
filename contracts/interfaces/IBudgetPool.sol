// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IEscrow} from "./IEscrow.sol";

/// @title IBudgetPool
/// @notice A treasury for one token that spends only through the Escrow of that token, with
///         limits that hold on-chain even when an operator (coordinator) key is stolen.
/// @dev Note: the pool is the requester of every escrow it funds; the escrow salt is
///      keccak256(abi.encode(agent, salt)), so agents cannot take each other's ids.
/// @dev Note: spendable balance = token balance - distributed-but-unclaimed yield; neither
///      `spend` nor `withdraw` can ever touch yield that members are owed.
interface IBudgetPool {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice An agent's limits and its usage of the current window, as a spend now sees it.
    /// @dev `period == 0` means "not an agent". `windowStart`/`windowSpent` are the current
    ///      window's, so a window that has ended reads as (its successor's start, 0).
    struct AgentLimits {
        uint256 perTxLimit;
        uint256 periodLimit;
        uint256 period;
        uint256 windowStart;
        uint256 windowSpent;
    }

    /// @notice What the pool remembers about an escrow it funded.
    /// @dev `agent == address(0)` means the pool never funded this id.
    struct SpendRecord {
        address agent;
        uint40 windowStart;
        bool refunded;
    }

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice Thrown when `caller` is not the owner.
    error NotOwner(address caller);
    /// @notice Thrown when `caller` accepts ownership without being the pending owner.
    error NotPendingOwner(address caller);
    /// @notice Thrown when `caller` pauses without being the owner or the guardian.
    error NotOwnerOrGuardian(address caller);
    /// @notice Thrown when `caller` spends for `agent` without being that agent or an operator.
    error UnauthorizedSpender(address agent, address caller);
    /// @notice Thrown when `caller` settles or cancels escrow `id` without being its agent,
    ///         an operator or the owner.
    error UnauthorizedEscrowCaller(bytes32 id, address caller);
    /// @notice Thrown when `agent` has no limits set (never added, or removed).
    error UnknownAgent(address agent);
    /// @notice Thrown when escrow `id` was not funded by this pool.
    error UnknownEscrow(bytes32 id);
    /// @notice Thrown when a spend is attempted while the pool is paused.
    error EnforcedPause();
    /// @notice Thrown when unpausing a pool that is not paused.
    error ExpectedPause();
    /// @notice Thrown when `amount` is above `agent`'s per-transaction limit.
    error PerTxLimitExceeded(address agent, uint256 amount, uint256 perTxLimit);
    /// @notice Thrown when `agent` has spent `windowSpent` in the current window and `amount`
    ///         more would pass `periodLimit`.
    error PeriodLimitExceeded(address agent, uint256 windowSpent, uint256 amount, uint256 periodLimit);
    /// @notice Thrown when net spend is `netSpent` and `amount` more would pass `budgetCap`.
    error BudgetCapExceeded(uint256 netSpent, uint256 amount, uint256 budgetCap);
    /// @notice Thrown when only `spendable` (balance minus unclaimed yield) is free but
    ///         `needed` was asked for.
    error InsufficientSpendable(uint256 spendable, uint256 needed);
    /// @notice Thrown by `setAgent` for a zero limit or period, or one that does not fit
    ///         (limits 96 bits, period 32 bits).
    error InvalidLimits(uint256 perTxLimit, uint256 periodLimit, uint256 period);
    /// @notice Thrown when an address that must be set is the zero address.
    error ZeroAddress();
    /// @notice Thrown when an amount is zero or does not fit in 128 bits.
    error InvalidAmount(uint256 amount);
    /// @notice Thrown when escrow `id` was already credited back.
    error AlreadyRefunded(bytes32 id);
    /// @notice Thrown by `reconcile` when escrow `id` is in `state`, not CANCELLED.
    error NotCancelled(bytes32 id, IEscrow.State state);
    /// @notice Thrown when the Escrow returned `actual` where the pool computed `expected`.
    error EscrowIdMismatch(bytes32 expected, bytes32 actual);

    /// @notice Thrown when `fence` is called by a caller that is neither an operator nor the owner.
    error NotOperator(address caller);

    /// @notice Thrown when `fence` is asked for an escrow id the pool already funded.
    error AlreadySpent(bytes32 id);
    /// @notice Thrown when yield is distributed while nobody has contributed.
    error NoContributions();
    /// @notice Thrown when `member` claims with no yield to claim.
    error NothingToClaim(address member);
    /// @notice Thrown when `expected` tokens were pulled but `received` arrived (fee-on-transfer).
    error UnsupportedToken(address token, uint256 expected, uint256 received);
    /// @notice Thrown when a token call reverted or returned false.
    error TokenTransferFailed(address token, address to, uint256 amount);
    /// @notice Thrown when a call re-enters the pool while another is running.
    error Reentrancy();

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice `newOwner` may now accept ownership from `previousOwner`.
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    /// @notice Ownership moved from `previousOwner` to `newOwner`.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    /// @notice The guardian changed (`address(0)` means "the owner").
    event GuardianChanged(address indexed previousGuardian, address indexed newGuardian);
    /// @notice `operator` was enabled or disabled.
    event OperatorSet(address indexed operator, bool enabled);
    /// @notice `agent`'s limits were set.
    event AgentSet(address indexed agent, uint256 perTxLimit, uint256 periodLimit, uint256 period);
    /// @notice `agent` was removed; it can no longer spend.
    event AgentRemoved(address indexed agent);
    /// @notice The cap on net spend changed (`type(uint128).max` means unlimited).
    event BudgetCapChanged(uint256 previousCap, uint256 newCap);
    /// @notice `account` paused spending.
    event Paused(address indexed account);
    /// @notice `account` resumed spending.
    event Unpaused(address indexed account);
    /// @notice `spender` funded escrow `id` of `amount` for `agent`.
    event Spent(bytes32 indexed id, address indexed agent, address indexed spender, uint256 amount);
    /// @notice `operator` fenced escrow id `id` of `agent`: it can never be funded (see `fence`).
    event SpendFenced(bytes32 indexed id, address indexed agent, address indexed operator);
    /// @notice Escrow `id` of `agent` was refunded and `amount` credited back to net spend
    ///         (and to the agent's window when `windowCredited`).
    event SpendRefunded(bytes32 indexed id, address indexed agent, uint256 amount, bool windowCredited);
    /// @notice `member` contributed `amount` to the pool.
    event Contributed(address indexed member, uint256 amount);
    /// @notice `from` distributed `amount` of yield over all contributions.
    event YieldDistributed(address indexed from, uint256 amount);
    /// @notice `member` claimed `amount` of yield.
    event YieldClaimed(address indexed member, uint256 amount);
    /// @notice The owner withdrew `amount` to `to`.
    event Withdrawn(address indexed to, uint256 amount);

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The Escrow every spend goes through.
    function escrow() external view returns (IEscrow);

    /// @notice The token of the pool (the Escrow's token).
    function token() external view returns (address);

    /// @notice The owner: sets limits, operators, the guardian and the cap; withdraws.
    function owner() external view returns (address);

    /// @notice The account that may accept ownership, or `address(0)`.
    function pendingOwner() external view returns (address);

    /// @notice The account that may pause besides the owner (the owner when none is set).
    function guardian() external view returns (address);

    /// @notice Whether `account` may spend for any agent.
    /// @param account The address to look up.
    function isOperator(address account) external view returns (bool);

    /// @notice Whether spending is paused.
    function paused() external view returns (bool);

    /// @notice The cap on net spend (`type(uint128).max` means unlimited).
    function budgetCap() external view returns (uint256);

    /// @notice Spent and not refunded, over all agents, since deployment.
    function netSpent() external view returns (uint256);

    /// @notice An agent's limits and its usage of the window a spend now would count in.
    /// @param agent The agent.
    /// @return limits All zero when `agent` is not an agent.
    function agent(address agent) external view returns (AgentLimits memory limits);

    /// @notice What the pool remembers about escrow `id`.
    /// @param id The escrow id.
    /// @return record All zero when the pool did not fund `id`.
    function spendOf(bytes32 id) external view returns (SpendRecord memory record);

    /// @notice The agent escrow `id` was funded for.
    /// @param id The escrow id.
    /// @return The agent, or `address(0)` if the pool did not fund `id`.
    function agentOf(bytes32 id) external view returns (address);

    /// @notice The escrow id that `spend(agent, salt, ...)` creates.
    /// @param agent The agent.
    /// @param salt The salt the spender picks.
    /// @return `escrow.escrowId(address(this), keccak256(abi.encode(agent, salt)))`.
    function escrowId(address agent, bytes32 salt) external view returns (bytes32);

    /// @notice What spend and withdraw may use: token balance minus unclaimed yield.
    function spendable() external view returns (uint256);

    /// @notice Yield distributed and not yet claimed: reserved for members.
    function unclaimedYield() external view returns (uint256);

    /// @notice All yield ever distributed.
    function totalDistributed() external view returns (uint256);

    /// @notice The sum of all contributions.
    function totalContributions() external view returns (uint256);

    /// @notice What `member` has contributed.
    /// @param member The contributor.
    function contributionOf(address member) external view returns (uint256);

    /// @notice The yield `member` can claim now.
    /// @param member The contributor.
    function claimable(address member) external view returns (uint256);

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @notice Starts moving ownership; the new owner must accept. Owner only.
    /// @param newOwner The account that may accept; `address(0)` cancels a pending transfer.
    function transferOwnership(address newOwner) external;

    /// @notice Takes the ownership offered to the caller.
    function acceptOwnership() external;

    /// @notice Sets who may pause besides the owner. Owner only.
    /// @param account The guardian; `address(0)` makes the owner the guardian.
    function setGuardian(address account) external;

    /// @notice Lets `operator` spend for any agent (within the limits), or stops it. Owner only.
    /// @param operator The key, e.g. the coordinator's.
    /// @param enabled Whether it may spend.
    function setOperator(address operator, bool enabled) external;

    /// @notice Adds an agent or changes its limits. Owner only.
    /// @param agent The agent.
    /// @param perTxLimit Most one spend may be (1 .. 2^96-1).
    /// @param periodLimit Most the agent may spend in one window (1 .. 2^96-1).
    /// @param period Window length in seconds (1 .. 2^32-1); 86,400 gives UTC days.
    function setAgent(address agent, uint256 perTxLimit, uint256 periodLimit, uint256 period) external;

    /// @notice Removes an agent: it can no longer spend. Owner only.
    /// @param agent The agent.
    function removeAgent(address agent) external;

    /// @notice Caps net spend. Owner only.
    /// @param cap The cap; `type(uint128).max` or more means unlimited.
    function setBudgetCap(uint256 cap) external;

    /// @notice Stops spending. Owner or guardian.
    function pause() external;

    /// @notice Resumes spending. Owner only.
    function unpause() external;

    /// @notice Sends part of the spendable balance out of the pool. Owner only.
    /// @param to The recipient.
    /// @param amount At most `spendable()`.
    function withdraw(address to, uint256 amount) external;

    /*//////////////////////////////////////////////////////////////
                                SPENDING
    //////////////////////////////////////////////////////////////*/

    /// @notice Funds an escrow for `agent` within its limits, the cap and the spendable
    ///         balance; the pool is the escrow's requester. Caller: the agent or an operator.
    /// @param agent The agent the spend counts against.
    /// @param salt Picked by the spender; the id is `escrowId(agent, salt)`.
    /// @param provider Who is paid at settle.
    /// @param amount Base units.
    /// @param deadline Unix time (see IEscrow).
    /// @param disputeWindow Seconds after the deadline (see IEscrow).
    /// @param metadata Emitted by the Escrow, not stored.
    /// @return id The escrow id.
    function spend(
        address agent,
        bytes32 salt,
        address provider,
        uint256 amount,
        uint256 deadline,
        uint256 disputeWindow,
        bytes32 metadata
    ) external returns (bytes32 id);

    /// @notice Makes the escrow id of `spend(agent, salt, ...)` unusable, so that a spend
    ///         with that salt can never be funded (it reverts in the Escrow). Caller: an
    ///         operator or the owner. For crash recovery: before a coordinator gives up on a
    ///         reservation whose escrow does not exist, it fences the id, so that a paused
    ///         spender that wakes up later cannot fund it past the ledger.
    /// @dev The pool creates the escrow (amount 1, provider the caller, no tokens move) and
    ///      cancels it at once: the id then exists, CANCELLED, forever.
    /// @param agent The agent the salt was reserved for.
    /// @param salt The salt.
    /// @return id The escrow id now fenced.
    function fence(address agent, bytes32 salt) external returns (bytes32 id);

    /// @notice Releases escrow `id` to its provider. Caller: its agent, an operator or the owner.
    /// @param id The escrow id.
    function settle(bytes32 id) external;

    /// @notice Cancels escrow `id` under Escrow's rules for the requester and credits it back.
    ///         Caller: its agent, an operator or the owner.
    /// @param id The escrow id.
    function cancel(bytes32 id) external;

    /// @notice Credits back escrow `id` once its provider cancelled it on the Escrow. Anyone.
    /// @param id The escrow id.
    function reconcile(bytes32 id) external;

    /// @notice Pulls the refunds the Escrow could not push to the pool and holds as owed. Anyone.
    /// @return amount What came back.
    function pullOwed() external returns (uint256 amount);

    /*//////////////////////////////////////////////////////////////
                                 YIELD
    //////////////////////////////////////////////////////////////*/

    /// @notice Adds tokens to the pool and to the caller's contribution (approve first).
    /// @param amount Base units, pulled from the caller.
    function contribute(uint256 amount) external;

    /// @notice Pulls yield from the caller and shares it pro rata to contributions. Anyone.
    /// @param amount Base units, pulled from the caller.
    function distribute(uint256 amount) external;

    /// @notice Sends the caller the yield it can claim.
    /// @return amount What was sent.
    function claim() external returns (uint256 amount);
}
