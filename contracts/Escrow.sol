// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEscrow} from "./interfaces/IEscrow.sol";

/// @title Escrow
/// @notice Holds one ERC-20 between a requester and a provider until the requester settles,
///         the dispute window lapses, or one side cancels. No owner, no admin, no pause.
///
///         | from      | call          | caller                | when                                |
///         |-----------|---------------|-----------------------|-------------------------------------|
///         | none      | create        | requester             | deadline > now                      |
///         | none      | createAndFund | requester             | deadline > now                      |
///         | INITIATED | fund          | requester             | now < deadline                      |
///         | INITIATED | cancel        | requester or provider | any time                            |
///         | FUNDED    | settle        | requester             | any time                            |
///         | FUNDED    | settle        | provider              | now >= deadline + disputeWindow     |
///         | FUNDED    | cancel        | provider              | any time (full refund)              |
///         | FUNDED    | cancel        | requester             | deadline <= now < deadline + window |
///
/// @dev Note: the token balance of this contract always equals the sum of the amounts of
///      FUNDED escrows plus the sum of `owed`. Money comes in only through `fund` and
///      `createAndFund` (exact amount, checked by balance delta) and leaves only as a
///      settlement, a refund or a withdrawal of what is owed.
/// @dev Note: a payment that cannot be pushed (a blocklisted provider, a paused token, a
///      token that returns false) never blocks the state change: it is credited to
///      `owed[account]` and the account pulls it with `withdrawOwed` to any address. A
///      caller who starves the push of gas can only turn a push into such a credit.
/// @dev Note: `disputeWindow == type(uint32).max` means "never auto-release": the provider
///      can never settle alone and the requester may reclaim at any time after the deadline.
/// @dev Note: the token is trusted to move exactly what it is asked to move on the way out;
///      fee-on-transfer tokens are caught on the way in and rejected.
contract Escrow is IEscrow {
    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice The highest fee a deployment may charge: 5 %.
    uint256 public constant MAX_FEE_BPS = 500;

    uint256 private constant _BPS = 10_000;

    /// @dev The dispute window that never ends (see the contract's notes).
    uint256 private constant _NEVER = type(uint32).max;

    /// @dev Bit offsets inside the second record slot:
    ///      provider (0..159) | deadline (160..199) | disputeWindow (200..231) | state (232..239).
    uint256 private constant _DEADLINE_SHIFT = 160;
    uint256 private constant _WINDOW_SHIFT = 200;
    uint256 private constant _STATE_SHIFT = 232;
    uint256 private constant _STATE_MASK = 0xff << 232;

    /// @dev The first record slot holds requester (0..159) | amount (160..255).
    uint256 private constant _AMOUNT_SHIFT = 160;

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    /// @notice The ERC-20 this escrow holds.
    address public immutable token;
    /// @notice The fee taken at settle, in basis points of the amount (0..500).
    uint256 public immutable feeBps;
    /// @notice Who receives the fee; the zero address when there is none.
    address public immutable feeRecipient;

    /// @dev Two slots per escrow, written and read as whole words (see the shifts above).
    mapping(bytes32 id => EscrowData) private _escrows;

    /// @notice Payments that could not be pushed to `account`; it pulls them with
    ///         `withdrawOwed`.
    mapping(address account => uint256 amount) public owed;

    /// @dev 1 while a function that moves tokens runs (a whole word: no read-modify-write).
    uint256 private transient _entered;

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param token_ The ERC-20 this escrow holds (must have code).
    /// @param feeBps_ The fee taken at settle, in basis points (0..500).
    /// @param feeRecipient_ Who receives the fee: the zero address exactly when `feeBps_` is 0;
    ///        never this escrow.
    constructor(address token_, uint256 feeBps_, address feeRecipient_) {
        // Since EIP-6780 code cannot disappear, so the no-return handling below can rely
        // on this check instead of an EXTCODESIZE on every transfer.
        if (token_.code.length == 0) revert InvalidToken(token_);
        // A fee paid to the escrow itself would sit in its balance with nobody to claim it.
        if (
            feeBps_ > MAX_FEE_BPS || (feeBps_ == 0) != (feeRecipient_ == address(0))
                || feeRecipient_ == address(this)
        ) revert InvalidFee(feeBps_, feeRecipient_);
        token = token_;
        feeBps = feeBps_;
        feeRecipient = feeRecipient_;
    }

    /*//////////////////////////////////////////////////////////////
                               MODIFIERS
    //////////////////////////////////////////////////////////////*/

    /// @dev No function that moves tokens may run inside another (a hostile token calling
    ///      back). `create` moves nothing and writes only a fresh record, so it needs no guard.
    modifier nonReentrant() {
        if (_entered != 0) revert Reentrancy();
        _entered = 1;
        _;
        _entered = 0;
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The id an escrow created by `requester` with `salt` has (or will have).
    /// @param requester The account that creates the escrow.
    /// @param salt Any 32 bytes the requester picks; unique per requester.
    /// @return The escrow id, `keccak256(abi.encode(requester, salt))`.
    function escrowId(address requester, bytes32 salt) external pure returns (bytes32) {
        return _id(requester, salt);
    }

    /// @notice The stored record of escrow `id`; all zero (state NONE) if it does not exist.
    /// @param id The escrow id.
    /// @return The record.
    function getEscrow(bytes32 id) external view returns (EscrowData memory) {
        return _escrows[id];
    }

    /*//////////////////////////////////////////////////////////////
                                ACTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Records an escrow of `amount` for `provider`; the caller is the requester.
    ///         No tokens move until `fund`.
    /// @param salt Picked by the requester; the id is `escrowId(msg.sender, salt)`.
    /// @param provider Who is paid at settle: not zero, not the requester, not this escrow.
    /// @param amount Base units, 0 < amount < 2^96.
    /// @param deadline Unix time, after now and below 2^40: funding must happen before it.
    /// @param disputeWindow Seconds after the deadline before the provider may settle
    ///        alone; `type(uint32).max` means never.
    /// @param metadata Emitted in EscrowCreated, not stored.
    /// @return id The new escrow's id.
    function create(
        bytes32 salt,
        address provider,
        uint256 amount,
        uint256 deadline,
        uint256 disputeWindow,
        bytes32 metadata
    ) external returns (bytes32 id) {
        id = _create(salt, provider, amount, deadline, disputeWindow, metadata, State.INITIATED);
    }

    /// @notice `create` and `fund` in one call: the escrow starts FUNDED and `amount` is
    ///         pulled from the caller (approve this contract first).
    /// @param salt Picked by the requester; the id is `escrowId(msg.sender, salt)`.
    /// @param provider Who is paid at settle: not zero, not the requester, not this escrow.
    /// @param amount Base units, 0 < amount < 2^96; exactly this must arrive.
    /// @param deadline Unix time, after now and below 2^40.
    /// @param disputeWindow Seconds after the deadline before the provider may settle
    ///        alone; `type(uint32).max` means never.
    /// @param metadata Emitted in EscrowCreated, not stored.
    /// @return id The new escrow's id.
    function createAndFund(
        bytes32 salt,
        address provider,
        uint256 amount,
        uint256 deadline,
        uint256 disputeWindow,
        bytes32 metadata
    ) external nonReentrant returns (bytes32 id) {
        id = _create(salt, provider, amount, deadline, disputeWindow, metadata, State.FUNDED);
        emit EscrowFunded(id);
        _pull(amount);
    }

    /// @notice Funds an INITIATED escrow: pulls its amount from the requester (the only
    ///         allowed caller) before the deadline.
    /// @param id The escrow id.
    function fund(bytes32 id) external nonReentrant {
        (uint256 slot, uint256 w0, uint256 w1) = _load(id);
        State state = _state(w1);
        if (state != State.INITIATED) revert InvalidState(id, state);
        if (msg.sender != address(uint160(w0))) revert NotParty(id, msg.sender);
        uint256 deadline = uint40(w1 >> _DEADLINE_SHIFT);
        if (block.timestamp >= deadline) revert TooLate(id, deadline);

        _setState(slot, w1, State.FUNDED);
        emit EscrowFunded(id);
        _pull(w0 >> _AMOUNT_SHIFT);
    }

    /// @notice Pays a FUNDED escrow to its provider, less the fee. The requester may settle
    ///         at any time; the provider once `deadline + disputeWindow` has passed.
    /// @dev A payment the token refuses is credited to `owed` (PaymentDeferred) and the
    ///      escrow is SETTLED all the same.
    /// @param id The escrow id.
    function settle(bytes32 id) external nonReentrant {
        (uint256 slot, uint256 w0, uint256 w1) = _load(id);
        State state = _state(w1);
        if (state != State.FUNDED) revert InvalidState(id, state);
        address provider = address(uint160(w1));
        if (msg.sender != address(uint160(w0))) {
            if (msg.sender != provider) revert NotParty(id, msg.sender);
            uint256 readyAt = _windowEnd(w1);
            if (block.timestamp < readyAt) revert TooEarly(id, readyAt);
        }

        _setState(slot, w1, State.SETTLED);
        uint256 amount = w0 >> _AMOUNT_SHIFT;
        uint256 fee;
        // amount < 2^96 and feeBps <= 500: no overflow. Rounds down, in the provider's favour.
        unchecked {
            fee = amount * feeBps / _BPS;
            amount -= fee;
        }
        emit EscrowSettled(id, amount, fee);
        _push(id, provider, amount);
        if (fee != 0) _push(id, feeRecipient, fee);
    }

    /// @notice Cancels an escrow. INITIATED: the requester or the provider, at any time.
    ///         FUNDED: the provider at any time, or the requester from the deadline until
    ///         the dispute window ends; the full amount goes back to the requester.
    /// @dev A refund the token refuses is credited to `owed` (PaymentDeferred).
    /// @param id The escrow id.
    function cancel(bytes32 id) external nonReentrant {
        (uint256 slot, uint256 w0, uint256 w1) = _load(id);
        State state = _state(w1);
        address requester = address(uint160(w0));
        if (state == State.INITIATED) {
            if (msg.sender != requester && msg.sender != address(uint160(w1))) {
                revert NotParty(id, msg.sender);
            }
            _setState(slot, w1, State.CANCELLED);
            emit EscrowCancelled(id, 0);
            return;
        }
        if (state != State.FUNDED) revert InvalidState(id, state);
        if (msg.sender != address(uint160(w1))) {
            if (msg.sender != requester) revert NotParty(id, msg.sender);
            uint256 deadline = uint40(w1 >> _DEADLINE_SHIFT);
            if (block.timestamp < deadline) revert TooEarly(id, deadline);
            uint256 windowEnd = _windowEnd(w1);
            if (block.timestamp >= windowEnd) revert TooLate(id, windowEnd);
        }

        _setState(slot, w1, State.CANCELLED);
        uint256 amount = w0 >> _AMOUNT_SHIFT;
        emit EscrowCancelled(id, amount);
        _push(id, requester, amount);
    }

    /// @notice Sends everything owed to the caller (payments that could not be pushed) to
    ///         `to`, which may be any address the token accepts.
    /// @param to Where the tokens go; not the zero address, not this escrow.
    /// @return amount What was sent.
    function withdrawOwed(address to) external nonReentrant returns (uint256 amount) {
        // Sent to itself, the tokens would stay here, owed to nobody, locked for good.
        if (to == address(0) || to == address(this)) revert InvalidRecipient(to);
        amount = owed[msg.sender];
        if (amount == 0) revert NothingOwed(msg.sender);
        owed[msg.sender] = 0;
        emit OwedWithdrawn(msg.sender, to, amount);
        if (!_tryTransfer(to, amount)) revert TokenTransferFailed(token, to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _id(address requester, bytes32 salt) private pure returns (bytes32 id) {
        assembly ("memory-safe") {
            mstore(0x00, requester)
            mstore(0x20, salt)
            id := keccak256(0x00, 0x40)
        }
    }

    function _create(
        bytes32 salt,
        address provider,
        uint256 amount,
        uint256 deadline,
        uint256 disputeWindow,
        bytes32 metadata,
        State state
    ) private returns (bytes32 id) {
        id = _id(msg.sender, salt);
        (uint256 slot,, uint256 w1) = _load(id);
        // Checked first, so that a retried create reports the existing escrow.
        if (w1 != 0) revert InvalidState(id, _state(w1));
        if (amount == 0 || amount > type(uint96).max) revert AmountOutOfRange(amount);
        // Not the escrow either: it can never withdraw what it is paid, so the money would
        // burn. (Branchless: this runs on every create.)
        bool badProvider;
        assembly ("memory-safe") {
            badProvider := or(or(iszero(provider), eq(provider, caller())), eq(provider, address()))
        }
        if (badProvider) revert InvalidProvider(provider);
        if (deadline <= block.timestamp || deadline > type(uint40).max) {
            revert InvalidDeadline(deadline, block.timestamp);
        }
        if (disputeWindow > type(uint32).max) revert InvalidDisputeWindow(disputeWindow);

        uint256 stateBits = uint256(state) << _STATE_SHIFT;
        assembly ("memory-safe") {
            sstore(slot, or(caller(), shl(_AMOUNT_SHIFT, amount)))
            sstore(
                add(slot, 1),
                or(or(provider, shl(_DEADLINE_SHIFT, deadline)), or(shl(_WINDOW_SHIFT, disputeWindow), stateBits))
            )
        }
        emit EscrowCreated(id, msg.sender, provider, amount, deadline, disputeWindow, metadata);
    }

    /// @dev The record's first storage slot and both of its words.
    function _load(bytes32 id) private view returns (uint256 slot, uint256 w0, uint256 w1) {
        EscrowData storage record = _escrows[id];
        assembly ("memory-safe") {
            slot := record.slot
            w0 := sload(slot)
            w1 := sload(add(slot, 1))
        }
    }

    function _state(uint256 w1) private pure returns (State) {
        return State(uint8(w1 >> _STATE_SHIFT));
    }

    function _setState(uint256 slot, uint256 w1, State state) private {
        uint256 word = (w1 & ~_STATE_MASK) | (uint256(state) << _STATE_SHIFT);
        assembly ("memory-safe") {
            sstore(add(slot, 1), word)
        }
    }

    /// @dev When the dispute window ends; never (max uint256) for the never-ending window.
    function _windowEnd(uint256 w1) private pure returns (uint256) {
        uint256 window = uint32(w1 >> _WINDOW_SHIFT);
        if (window == _NEVER) return type(uint256).max;
        unchecked {
            return uint40(w1 >> _DEADLINE_SHIFT) + window; // < 2^41
        }
    }

    /// @dev Pulls exactly `amount` from the caller; reverts unless exactly that arrived.
    function _pull(uint256 amount) private {
        address token_ = token;
        uint256 before = _balance(token_);
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0x23b872dd00000000000000000000000000000000000000000000000000000000)
            mstore(add(m, 0x04), caller())
            mstore(add(m, 0x24), address())
            mstore(add(m, 0x44), amount)
            ok := call(gas(), token_, 0, m, 0x64, 0x00, 0x20)
            // Success: no revert, and either no return data (USDT-style) or exactly `true`.
            ok := and(ok, or(iszero(returndatasize()), and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1))))
        }
        if (!ok) revert TokenTransferFailed(token_, address(this), amount);
        uint256 after_ = _balance(token_);
        uint256 received = after_ > before ? after_ - before : 0;
        if (received != amount) revert UnsupportedToken(token_, amount, received);
    }

    /// @dev Pushes `amount` to `to`, or credits it to `owed[to]` if the token refuses.
    function _push(bytes32 id, address to, uint256 amount) private {
        if (!_tryTransfer(to, amount)) {
            owed[to] += amount;
            emit PaymentDeferred(id, to, amount);
        }
    }

    /// @dev `token.transfer(to, amount)` that reports failure (revert or false) instead of
    ///      reverting. Copies at most one word of return data, so a huge revert cannot cost
    ///      the caller its gas.
    function _tryTransfer(address to, uint256 amount) private returns (bool ok) {
        address token_ = token;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0xa9059cbb00000000000000000000000000000000000000000000000000000000)
            // `to` may come from a packed word: clean its upper bits, or the token's ABI
            // decoder rejects the call.
            mstore(add(m, 0x04), shr(96, shl(96, to)))
            mstore(add(m, 0x24), amount)
            ok := call(gas(), token_, 0, m, 0x44, 0x00, 0x20)
            ok := and(ok, or(iszero(returndatasize()), and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1))))
        }
    }

    /// @dev This contract's token balance; bubbles the token's revert if it has none to give.
    function _balance(address token_) private view returns (uint256 held) {
        assembly ("memory-safe") {
            mstore(0x00, 0x70a08231)
            mstore(0x20, address())
            let ok := staticcall(gas(), token_, 0x1c, 0x24, 0x00, 0x20)
            // (Yul evaluates arguments right to left: read returndatasize after the call.)
            if iszero(and(ok, gt(returndatasize(), 0x1f))) {
                let m := mload(0x40)
                returndatacopy(m, 0x00, returndatasize())
                revert(m, returndatasize())
            }
            held := mload(0x00)
        }
    }
}
