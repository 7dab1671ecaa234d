from eth_abi import encode
from eth_utils import keccak

from escrowkit import errors
from escrowkit.errors import (
    ChainError,
    ContractRevert,
    Error,
    Panic,
    TransactionTimeout,
    decode_revert,
    redact_secrets,
    register_abi,
)


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def test_error_string_and_panic_decode() -> None:
    exc = decode_revert(selector("Error(string)") + encode(["string"], ["nope"]))
    assert isinstance(exc, Error)
    assert exc.name == "Error"
    assert exc.reason == "nope"
    panic = decode_revert(selector("Panic(uint256)") + encode(["uint256"], [0x11]), tx_hash="0xab")
    assert isinstance(panic, Panic)
    assert panic.code == 0x11
    assert panic.tx_hash == "0xab"


def test_custom_error_from_an_abi_gets_a_named_class() -> None:
    register_abi(
        [
            {
                "type": "error",
                "name": "UnitTestOnlyError",
                "inputs": [
                    {"name": "who", "type": "address"},
                    {"name": "amount", "type": "uint256"},
                ],
            }
        ]
    )
    who = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    data = selector("UnitTestOnlyError(address,uint256)") + encode(
        ["address", "uint256"], [who, 42]
    )
    exc = decode_revert(data, context="thing.do")
    cls = errors.revert_class("UnitTestOnlyError")
    assert type(exc) is cls
    assert errors.UnitTestOnlyError is cls
    assert isinstance(exc, ContractRevert)
    assert exc.arguments == {"who": who, "amount": 42}
    assert exc.amount == 42  # type: ignore[attr-defined]
    assert "thing.do reverted: UnitTestOnlyError(who='0x7E5F" in str(exc)


def test_committed_artifact_errors_are_known_without_registration() -> None:
    cls = errors.revert_class("ERC20InsufficientBalance")
    assert cls.signature == "ERC20InsufficientBalance(address,uint256,uint256)"


def test_unknown_and_empty_reverts_are_plain_contract_reverts() -> None:
    unknown = decode_revert(bytes.fromhex("deadbeef"))
    assert type(unknown) is ContractRevert
    assert "0xdeadbeef" in str(unknown)
    empty = decode_revert(b"")
    assert type(empty) is ContractRevert
    assert "without reason" in str(empty)


def test_unknown_name_says_what_is_known() -> None:
    try:
        errors.NoSuchErrorAnywhere  # noqa: B018
    except AttributeError as exc:
        assert "known:" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_reverts_pickle_by_their_data() -> None:
    import pickle

    exc = decode_revert(selector("Error(string)") + encode(["string"], ["x"]), tx_hash="0x01")
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is Error
    assert again.reason == "x"
    assert again.tx_hash == "0x01"


def test_secrets_in_urls_never_reach_a_chain_error() -> None:
    text = (
        "HTTPSConnectionPool(host='rpc.example', port=443): Max retries exceeded with url: "
        "/v3/KEY1?x=1 (caused by ...); 401 Client Error for url: https://u:KEY2@rpc.example"
        "/v2/KEY3 and wss://rpc.example/ws/KEY4, http://127.0.0.1:8545"
    )
    cleaned = redact_secrets(text)
    for secret in ("KEY1", "KEY2", "KEY3", "KEY4", "u:"):
        assert secret not in cleaned
    assert "wss://rpc.example/…" in cleaned
    assert cleaned.endswith("http://127.0.0.1:8545")  # nothing secret: kept whole
    assert str(ChainError(text)) == cleaned


def test_transaction_timeout_keeps_its_fields_through_pickle() -> None:
    import pickle

    again = pickle.loads(pickle.dumps(TransactionTimeout("0xabc", 1.5)))
    assert (again.tx_hash, again.timeout) == ("0xabc", 1.5)
    assert "0xabc" in str(again)
