// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IBudgetPool} from "./interfaces/IBudgetPool.sol";
import {IERC20} from "./interfaces/IERC20.sol";
import {IEscrow} from "./interfaces/IEscrow.sol";

/// @title BudgetPool
/// @notice A treasury for one token that spends only through the Escrow of that token, with
///         per-agent limits and a cap on net spend that hold even if an operator key is stolen.
/// @dev Note: every spend is one transaction: limits are checked and counted, then
///      `escrow.createAndFund` runs with the pool as requester; if it reverts, nothing stays.
/// @dev Note: windows sit on a grid anchored at the Unix epoch
///      (`windowStart = t - t % period`); an agent's usage resets lazily on its next spend.
/// @dev Note: `netSpent` counts every spend and is credited back once per refunded escrow;
///      the agent's window is credited back only when the refund lands in the spend's window.
/// @dev Note: balance - unclaimedYield is all `spend` and `withdraw` may ever use, so yield
///      owed to members is always there to claim.
contract BudgetPool is IBudgetPool {
    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @dev Fixed-point scale of the yield index.
    uint256 internal constant _PRECISION = 1e18;

    /// @dev A budget cap of this (or more) means "unlimited".
    uint256 internal constant _UNLIMITED = type(uint128).max;

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    /// @dev Limits of an agent: one slot, written by the owner, read by every spend.
    struct Limits {
        uint96 perTxLimit;
        uint96 periodLimit;
        uint32 period; // 0 = not an agent
    }

    /// @dev Usage of an agent's latest window: one slot, read and written by every spend.
    struct Usage {
        uint40 windowStart;
        uint96 windowSpent;
    }

    /// @dev A contributor: `debt` is contribution * index at the last update, minus the
    ///      fraction of a base unit not yet credited (kept so rounding never loses it twice).
    struct Member {
        uint128 contribution;
        uint128 accrued;
        uint256 debt;
    }

    /// @inheritdoc IBudgetPool
    IEscrow public immutable escrow;

    /// @inheritdoc IBudgetPool
    address public immutable token;

    /// @dev Roles. Only `_operators` is on the spend path (when an operator spends).
    address internal _owner;
    address internal _pendingOwner;
    address internal _guardian; // address(0): the owner is the guardian
    mapping(address operator => bool enabled) internal _operators;

    /// @dev Read and written by every spend and refund: one slot.
    uint128 internal _netSpent;
    uint128 internal _budgetCap;

    /// @dev Read by every spend (reserve and pause flag together): one slot.
    uint128 internal _unclaimedYield;
    bool internal _paused;

    /// @dev Yield bookkeeping: `_totalContributions` and `_totalDistributed` share a slot
    ///      (distribute reads one and writes the other).
    uint128 internal _totalContributions;
    uint128 internal _totalDistributed;
    uint256 internal _yieldIndex;

    mapping(address agent => Limits) internal _limits;
    mapping(address agent => Usage) internal _usage;
    mapping(bytes32 id => SpendRecord) internal _spends;
    mapping(address member => Member) internal _members;

    /// @dev True while a function that calls the token or the Escrow runs.
    bool transient _entered;

    /*//////////////////////////////////////////////////////////////
                               MODIFIERS
    //////////////////////////////////////////////////////////////*/

    modifier nonReentrant() {
        if (_entered) revert Reentrancy();
        _entered = true;
        _;
        _entered = false;
    }

    modifier onlyOwner() {
        if (msg.sender != _owner) revert NotOwner(msg.sender);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param escrow_ The Escrow every spend goes through; its token is the pool's token.
    /// @param owner_ The owner (meant to be a multisig); also the guardian until one is set.
    constructor(IEscrow escrow_, address owner_) {
        if (address(escrow_) == address(0) || owner_ == address(0)) revert ZeroAddress();
        address token_ = escrow_.token();
        if (token_ == address(0)) revert ZeroAddress();
        escrow = escrow_;
        token = token_;
        _owner = owner_;
        _budgetCap = uint128(_UNLIMITED);
        emit OwnershipTransferred(address(0), owner_);
        // One max approval for the pool's lifetime: tokens that decrement even a max
        // allowance (Circle's USDC does) still cannot run it down to zero.
        _callToken(abi.encodeCall(IERC20.approve, (address(escrow_), type(uint256).max)), address(escrow_), 0);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBudgetPool
    function owner() external view returns (address) {
        return _owner;
    }

    /// @inheritdoc IBudgetPool
    function pendingOwner() external view returns (address) {
        return _pendingOwner;
    }

    /// @inheritdoc IBudgetPool
    function guardian() public view returns (address) {
        address g = _guardian;
        return g == address(0) ? _owner : g;
    }

    /// @inheritdoc IBudgetPool
    function isOperator(address account) external view returns (bool) {
        return _operators[account];
    }

    /// @inheritdoc IBudgetPool
    function paused() external view returns (bool) {
        return _paused;
    }

    /// @inheritdoc IBudgetPool
    function budgetCap() external view returns (uint256) {
        return _budgetCap;
    }

    /// @inheritdoc IBudgetPool
    function netSpent() external view returns (uint256) {
        return _netSpent;
    }

    /// @inheritdoc IBudgetPool
    function agent(address agent_) external view returns (AgentLimits memory limits) {
        Limits memory l = _limits[agent_];
        limits.perTxLimit = l.perTxLimit;
        limits.periodLimit = l.periodLimit;
        limits.period = l.period;
        if (l.period != 0) {
            Usage memory u = _usage[agent_];
            limits.windowStart = _windowStart(l.period);
            limits.windowSpent = u.windowStart == limits.windowStart ? u.windowSpent : 0;
        }
    }

    /// @inheritdoc IBudgetPool
    function spendOf(bytes32 id) external view returns (SpendRecord memory) {
        return _spends[id];
    }

    /// @inheritdoc IBudgetPool
    function agentOf(bytes32 id) external view returns (address) {
        return _spends[id].agent;
    }

    /// @inheritdoc IBudgetPool
    function escrowId(address agent_, bytes32 salt) external view returns (bytes32) {
        return _escrowId(_escrowSalt(agent_, salt));
    }

    /// @inheritdoc IBudgetPool
    function spendable() public view returns (uint256) {
        uint256 balance = IERC20(token).balanceOf(address(this));
        uint256 reserved = _unclaimedYield;
        return balance > reserved ? balance - reserved : 0;
    }

    /// @inheritdoc IBudgetPool
    function unclaimedYield() external view returns (uint256) {
        return _unclaimedYield;
    }

    /// @inheritdoc IBudgetPool
    function totalDistributed() external view returns (uint256) {
        return _totalDistributed;
    }

    /// @inheritdoc IBudgetPool
    function totalContributions() external view returns (uint256) {
        return _totalContributions;
    }

    /// @inheritdoc IBudgetPool
    function contributionOf(address member) external view returns (uint256) {
        return _members[member].contribution;
    }

    /// @inheritdoc IBudgetPool
    function claimable(address member) external view returns (uint256) {
        Member memory m = _members[member];
        return m.accrued + (m.contribution * _yieldIndex - m.debt) / _PRECISION;
    }

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBudgetPool
    function transferOwnership(address newOwner) external onlyOwner {
        _pendingOwner = newOwner;
        emit OwnershipTransferStarted(msg.sender, newOwner);
    }

    /// @inheritdoc IBudgetPool
    function acceptOwnership() external {
        if (msg.sender != _pendingOwner) revert NotPendingOwner(msg.sender);
        address previous = _owner;
        _owner = msg.sender;
        delete _pendingOwner;
        emit OwnershipTransferred(previous, msg.sender);
    }

    /// @inheritdoc IBudgetPool
    function setGuardian(address guardian_) external onlyOwner {
        address previous = _guardian;
        _guardian = guardian_;
        emit GuardianChanged(previous, guardian_);
    }

    /// @inheritdoc IBudgetPool
    function setOperator(address operator, bool enabled) external onlyOwner {
        if (operator == address(0)) revert ZeroAddress();
        _operators[operator] = enabled;
        emit OperatorSet(operator, enabled);
    }

    /// @inheritdoc IBudgetPool
    /// @dev Usage of the current window is kept, so re-adding or re-limiting an agent never
    ///      hands it a fresh window; a new `period` puts it on that period's grid.
    function setAgent(address agent_, uint256 perTxLimit, uint256 periodLimit, uint256 period)
        external
        onlyOwner
    {
        if (agent_ == address(0)) revert ZeroAddress();
        if (
            perTxLimit == 0 || periodLimit == 0 || period == 0 || perTxLimit > type(uint96).max
                || periodLimit > type(uint96).max || period > type(uint32).max
        ) revert InvalidLimits(perTxLimit, periodLimit, period);
        _limits[agent_] = Limits(uint96(perTxLimit), uint96(periodLimit), uint32(period));
        emit AgentSet(agent_, perTxLimit, periodLimit, period);
    }

    /// @inheritdoc IBudgetPool
    /// @dev Its escrows stay manageable (settle, cancel, reconcile) and keep their records.
    function removeAgent(address agent_) external onlyOwner {
        if (_limits[agent_].period == 0) revert UnknownAgent(agent_);
        delete _limits[agent_];
        emit AgentRemoved(agent_);
    }

    /// @inheritdoc IBudgetPool
    /// @dev A cap below the current net spend is allowed: spending stops until refunds.
    function setBudgetCap(uint256 cap) external onlyOwner {
        uint256 previous = _budgetCap;
        uint256 capped = cap > _UNLIMITED ? _UNLIMITED : cap;
        _budgetCap = uint128(capped);
        emit BudgetCapChanged(previous, capped);
    }

    /// @inheritdoc IBudgetPool
    function pause() external {
        if (msg.sender != _owner && msg.sender != guardian()) revert NotOwnerOrGuardian(msg.sender);
        if (_paused) revert EnforcedPause();
        _paused = true;
        emit Paused(msg.sender);
    }

    /// @inheritdoc IBudgetPool
    /// @dev The guardian can only stop spending, never restart it.
    function unpause() external onlyOwner {
        if (!_paused) revert ExpectedPause();
        _paused = false;
        emit Unpaused(msg.sender);
    }

    /// @inheritdoc IBudgetPool
    function withdraw(address to, uint256 amount) external onlyOwner nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert InvalidAmount(0);
        uint256 available = spendable();
        if (amount > available) revert InsufficientSpendable(available, amount);
        emit Withdrawn(to, amount);
        _callToken(abi.encodeCall(IERC20.transfer, (to, amount)), to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                SPENDING
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBudgetPool
    /// @dev Caller: `agent` itself or an operator. Checks in order: pause, caller, agent,
    ///      per-tx limit, window limit, budget cap, spendable balance. The Escrow checks the
    ///      rest (provider, deadline, dispute window, amount range).
    function spend(
        address agent_,
        bytes32 salt,
        address provider,
        uint256 amount,
        uint256 deadline,
        uint256 disputeWindow,
        bytes32 metadata
    ) external nonReentrant returns (bytes32 id) {
        uint40 windowStart = _useLimits(agent_, amount);
        bytes32 escrowSalt = _escrowSalt(agent_, salt);
        id = _escrowId(escrowSalt);
        _spends[id] = SpendRecord(agent_, windowStart, false);
        emit Spent(id, agent_, msg.sender, amount);
        bytes32 created = escrow.createAndFund(escrowSalt, provider, amount, deadline, disputeWindow, metadata);
        if (created != id) revert EscrowIdMismatch(id, created);
    }

    /// @inheritdoc IBudgetPool
    /// @dev Caller: an operator or the owner. No limit is used and nothing is counted:
    ///      the escrow is created empty-handed (amount 1, never funded) and cancelled.
    function fence(address agent_, bytes32 salt) external nonReentrant returns (bytes32 id) {
        if (!_operators[msg.sender] && msg.sender != _owner) revert NotOperator(msg.sender);
        bytes32 escrowSalt = _escrowSalt(agent_, salt);
        id = _escrowId(escrowSalt);
        if (_spends[id].agent != address(0)) revert AlreadySpent(id);
        emit SpendFenced(id, agent_, msg.sender);
        bytes32 created = escrow.create(escrowSalt, msg.sender, 1, block.timestamp + 1, 0, bytes32(0));
        if (created != id) revert EscrowIdMismatch(id, created);
        escrow.cancel(id);
    }

    /// @inheritdoc IBudgetPool
    /// @dev Caller: the agent that spent, an operator or the owner.
    function settle(bytes32 id) external nonReentrant {
        _authorizedRecord(id);
        escrow.settle(id);
    }

    /// @inheritdoc IBudgetPool
    /// @dev Caller: the agent that spent, an operator or the owner. The Escrow allows the
    ///      requester to cancel a funded escrow only in [deadline, deadline + disputeWindow).
    ///      A refund the Escrow has to defer is still credited: it is owed to the pool
    ///      (see `pullOwed`).
    function cancel(bytes32 id) external nonReentrant {
        SpendRecord storage record = _authorizedRecord(id);
        if (record.refunded) revert AlreadyRefunded(id);
        _creditBack(id, record, escrow.getEscrow(id).amount);
        escrow.cancel(id);
    }

    /// @inheritdoc IBudgetPool
    /// @dev Anyone may call: it only makes the counters match what the Escrow already did.
    function reconcile(bytes32 id) external nonReentrant {
        SpendRecord storage record = _spends[id];
        if (record.agent == address(0)) revert UnknownEscrow(id);
        if (record.refunded) revert AlreadyRefunded(id);
        IEscrow.EscrowData memory data = escrow.getEscrow(id);
        if (data.state != IEscrow.State.CANCELLED) revert NotCancelled(id, data.state);
        _creditBack(id, record, data.amount);
    }

    /// @inheritdoc IBudgetPool
    /// @dev Anyone may call: the funds can only go to the pool.
    function pullOwed() external nonReentrant returns (uint256 amount) {
        amount = escrow.withdrawOwed(address(this));
    }

    /*//////////////////////////////////////////////////////////////
                                 YIELD
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBudgetPool
    /// @dev Contributions join the spendable balance; they earn a share of later yield.
    function contribute(uint256 amount) external nonReentrant {
        if (amount == 0 || amount > type(uint128).max) revert InvalidAmount(amount);
        uint256 total = _totalContributions + amount;
        if (total > type(uint128).max) revert InvalidAmount(amount);
        Member storage m = _members[msg.sender];
        _accrue(m, m.contribution + amount);
        _totalContributions = uint128(total);
        emit Contributed(msg.sender, amount);
        _pull(amount);
    }

    /// @inheritdoc IBudgetPool
    /// @dev O(1): the index grows by amount / totalContributions (rounded down), so the
    ///      members' claims never add up to more than was distributed.
    function distribute(uint256 amount) external nonReentrant {
        if (amount == 0 || amount > type(uint128).max) revert InvalidAmount(amount);
        uint256 total = _totalContributions;
        if (total == 0) revert NoContributions();
        uint256 step = amount * _PRECISION / total;
        uint256 distributed = _totalDistributed + amount;
        // A zero step would reserve yield that nobody can ever claim.
        if (step == 0 || distributed > type(uint128).max) revert InvalidAmount(amount);
        _yieldIndex += step;
        _totalDistributed = uint128(distributed);
        _unclaimedYield += uint128(amount);
        emit YieldDistributed(msg.sender, amount);
        _pull(amount);
    }

    /// @inheritdoc IBudgetPool
    function claim() external nonReentrant returns (uint256 amount) {
        Member storage m = _members[msg.sender];
        _accrue(m, m.contribution);
        amount = m.accrued;
        if (amount == 0) revert NothingToClaim(msg.sender);
        m.accrued = 0;
        _unclaimedYield -= uint128(amount);
        emit YieldClaimed(msg.sender, amount);
        _callToken(abi.encodeCall(IERC20.transfer, (msg.sender, amount)), msg.sender, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    /// @dev Every check of a spend, then count it. Returns the window it counts in.
    function _useLimits(address agent_, uint256 amount) internal returns (uint40) {
        if (_paused) revert EnforcedPause();
        if (msg.sender != agent_ && !_operators[msg.sender]) revert UnauthorizedSpender(agent_, msg.sender);
        Limits memory limits = _limits[agent_];
        if (limits.period == 0) revert UnknownAgent(agent_);
        if (amount > limits.perTxLimit) revert PerTxLimitExceeded(agent_, amount, limits.perTxLimit);
        uint256 start = _windowStart(limits.period);
        Usage memory usage = _usage[agent_];
        uint256 used = usage.windowStart == start ? usage.windowSpent : 0;
        if (used + amount > limits.periodLimit) {
            revert PeriodLimitExceeded(agent_, used, amount, limits.periodLimit);
        }
        uint256 spent = _netSpent;
        uint256 cap = _budgetCap;
        if (spent + amount > cap) revert BudgetCapExceeded(spent, amount, cap);
        uint256 available = spendable();
        if (amount > available) revert InsufficientSpendable(available, amount);
        // Casts are safe: used + amount <= periodLimit < 2^96, spent + amount <= cap < 2^128.
        _usage[agent_] = Usage(uint40(start), uint96(used + amount));
        _netSpent = uint128(spent + amount);
        return uint40(start);
    }

    /// @dev Credit a refunded escrow back, once: net spend always, the agent's window only
    ///      while the window the spend counted in is still the current one.
    function _creditBack(bytes32 id, SpendRecord storage record, uint256 amount) internal {
        record.refunded = true;
        _netSpent -= uint128(amount);
        address agent_ = record.agent;
        uint256 period = _limits[agent_].period;
        Usage memory usage = _usage[agent_];
        bool windowCredited = period != 0 && usage.windowStart == record.windowStart
            && _windowStart(period) == record.windowStart;
        if (windowCredited) {
            uint256 used = usage.windowSpent;
            _usage[agent_].windowSpent = uint96(used > amount ? used - amount : 0);
        }
        emit SpendRefunded(id, agent_, amount, windowCredited);
    }

    /// @dev The record of escrow `id`, if the caller may settle or cancel it.
    function _authorizedRecord(bytes32 id) internal view returns (SpendRecord storage record) {
        record = _spends[id];
        address agent_ = record.agent;
        if (agent_ == address(0)) revert UnknownEscrow(id);
        if (msg.sender != agent_ && msg.sender != _owner && !_operators[msg.sender]) {
            revert UnauthorizedEscrowCaller(id, msg.sender);
        }
    }

    /// @dev Credit `m`'s yield up to the current index, then set its contribution. The
    ///      fraction of a base unit that rounding leaves over stays in `debt` for next time.
    function _accrue(Member storage m, uint256 newContribution) internal {
        uint256 index = _yieldIndex;
        uint256 pending = m.contribution * index - m.debt;
        uint256 whole = pending / _PRECISION;
        if (whole != 0) m.accrued += uint128(whole);
        m.contribution = uint128(newContribution);
        // newContribution >= contribution, so newContribution * index >= pending >= remainder.
        m.debt = newContribution * index - (pending - whole * _PRECISION);
    }

    function _windowStart(uint256 period) internal view returns (uint256) {
        return block.timestamp - block.timestamp % period;
    }

    function _escrowSalt(address agent_, bytes32 salt) internal pure returns (bytes32) {
        return keccak256(abi.encode(agent_, salt));
    }

    function _escrowId(bytes32 escrowSalt) internal view returns (bytes32) {
        return keccak256(abi.encode(address(this), escrowSalt));
    }

    /// @dev Pull exactly `amount` from the caller; fee-on-transfer tokens are refused.
    function _pull(uint256 amount) internal {
        uint256 before = IERC20(token).balanceOf(address(this));
        _callToken(abi.encodeCall(IERC20.transferFrom, (msg.sender, address(this), amount)), address(this), amount);
        uint256 after_ = IERC20(token).balanceOf(address(this));
        uint256 received = after_ > before ? after_ - before : 0;
        if (received != amount) revert UnsupportedToken(token, amount, received);
    }

    /// @dev A token call that must succeed and return true or nothing (SafeERC20 style). The
    ///      token's own revert (e.g. an insufficient allowance) is passed on as it is.
    function _callToken(bytes memory data, address to, uint256 amount) internal {
        (bool ok, bytes memory ret) = token.call(data);
        if (!ok && ret.length != 0) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        if (ret.length == 0 ? !ok || token.code.length == 0 : ret.length < 32 || abi.decode(ret, (uint256)) != 1) {
            revert TokenTransferFailed(token, to, amount);
        }
    }
}
