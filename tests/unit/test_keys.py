"""A keystore file that is not a keystore says so: it is neither a wrong password (the
user would retype a right one) nor a ``KeyError`` from deep inside eth-account."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from escrowkit.core.errors import ConfigurationError
from escrowkit.evm.keys import signers_for


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("not json at all", "it is not JSON"),
        ("", "it is not JSON"),
        ("\xff\xfe garbage", "it is not JSON"),
        ("{}", "no 'version' and 'crypto' fields"),
        ("[1, 2]", "no 'version' and 'crypto' fields"),
        ('{"version": 3}', "no 'version' and 'crypto' fields"),
        ('{"address": "00", "crypto": {}}', "no 'version' and 'crypto' fields"),
    ],
)
def test_a_file_that_is_not_a_keystore_is_named_so(
    tmp_path: Path, content: str, detail: str
) -> None:
    path = tmp_path / "treasury.json"
    path.write_text(content, encoding="latin-1")
    with pytest.raises(ConfigurationError) as caught:
        signers_for(path, "hunter2")
    message = str(caught.value)
    assert f"{path} is not a valid keystore file" in message and detail in message
    assert "wrong password" not in message


def test_a_real_keystore_still_tells_a_wrong_password(tmp_path: Path) -> None:
    account = Account.create()
    keystore = Account.encrypt(account.key, "hunter2", kdf="pbkdf2", iterations=2)
    path = tmp_path / "treasury.json"
    path.write_text(json.dumps(keystore))
    with pytest.raises(ConfigurationError, match=r"wrong password for keystore treasury\.json"):
        signers_for(path, "wrong")
    assert [s.address for s in signers_for(path, "hunter2")] == [account.address]
