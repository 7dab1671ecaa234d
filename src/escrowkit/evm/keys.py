"""The keys a chain signs with: anvil's and eth-tester's dev accounts, and a user's own
(an eth-account ``LocalAccount``, several, or a keystore file)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escrowkit.core.errors import ConfigurationError, InvalidRequest

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = [
    "ANVIL_CHAIN_ID",
    "ANVIL_DEV_KEYS",
    "anvil_dev_signers",
    "embedded_signers",
    "signers_for",
]

#: Anvil's default dev accounts (from its well-known test mnemonic). Public knowledge:
#: only ever used on a local chain (chain id 31337 on a loopback address).
ANVIL_DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)
ANVIL_CHAIN_ID = 31337


def anvil_dev_signers() -> list[LocalAccount]:
    """Anvil's ten dev accounts, as signers."""
    from eth_account import Account

    return [Account.from_key(key) for key in ANVIL_DEV_KEYS]


def embedded_signers(count: int) -> list[LocalAccount]:
    """The first ``count`` of eth-tester's funded accounts (private keys 1, 2, ...)."""
    from eth_account import Account

    return [Account.from_key(n.to_bytes(32, "big")) for n in range(1, count + 1)]


def signers_for(account: Any, password: str | None) -> list[LocalAccount]:
    """The signers ``Chain.connect`` was given: none, a ``LocalAccount``, a list of them, or
    a keystore path decrypted with ``password`` or ``$ESCROWKIT_KEYSTORE_PASSWORD``."""
    from eth_account import Account
    from eth_account.signers.local import LocalAccount

    if account is None:
        return []
    if isinstance(account, LocalAccount):
        return [account]
    if isinstance(account, (str, os.PathLike)):
        path = Path(account).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"keystore file {path} does not exist")
        secret = password if password is not None else os.environ.get("ESCROWKIT_KEYSTORE_PASSWORD")
        if secret is None:
            raise ConfigurationError(
                f"keystore {path.name} needs a password (argument or ESCROWKIT_KEYSTORE_PASSWORD)"
            )
        keystore = _read_keystore(path)
        try:
            key = Account.decrypt(keystore, secret)
        except ValueError:
            raise ConfigurationError(f"wrong password for keystore {path.name}") from None
        return [Account.from_key(key)]
    if isinstance(account, Sequence) and all(isinstance(a, LocalAccount) for a in account):
        return list(account)
    raise InvalidRequest(
        "account must be an eth_account LocalAccount, a keystore path, or a list of accounts"
    )


def _read_keystore(path: Path) -> dict[str, Any]:
    """The keystore's JSON, or a ConfigurationError saying the file is not one: a file
    that is not JSON, or JSON without a keystore's fields, must not read as a wrong
    password (the user would retype a correct one) or as ``KeyError: 'version'``."""
    import json

    not_valid = f"{path} is not a valid keystore file"
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise ConfigurationError(
            f"{not_valid}: it is not JSON (an eth-account keystore is the JSON that "
            "Account.encrypt writes)"
        ) from None
    crypto = data.get("crypto", data.get("Crypto")) if isinstance(data, dict) else None
    if not isinstance(crypto, dict) or "version" not in data:
        raise ConfigurationError(
            f"{not_valid}: the JSON has no 'version' and 'crypto' fields of an eth-account "
            "keystore (the JSON that Account.encrypt writes)"
        )
    keystore: dict[str, Any] = data
    return keystore
