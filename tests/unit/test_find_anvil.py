"""Without node_modules (a plain ``pip install``) anvil is still found on PATH or through
ANVIL_BINARY, and when it is nowhere the message says both ways, for ``escrowkit chain``
and for ``pytest --chain anvil`` alike."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from escrowkit.core.errors import ConfigurationError
from escrowkit.evm import anvil
from escrowkit.testing import plugin


@pytest.fixture
def no_node_modules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(anvil, "node_modules_package", lambda name: None)
    monkeypatch.delenv("ANVIL_BINARY", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_anvil_on_path_is_used(no_node_modules: Path) -> None:
    binary = no_node_modules / "anvil"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    assert anvil.find_anvil() == binary


def test_anvil_binary_is_used_and_checked(
    no_node_modules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = no_node_modules / "my-anvil"
    binary.write_text("")
    monkeypatch.setenv("ANVIL_BINARY", str(binary))
    assert anvil.find_anvil() == binary
    monkeypatch.setenv("ANVIL_BINARY", str(no_node_modules / "nowhere"))
    with pytest.raises(ConfigurationError, match=r"ANVIL_BINARY is .*nowhere, which is not a file"):
        anvil.find_anvil()


def test_no_anvil_says_path_and_anvil_binary(no_node_modules: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        anvil.find_anvil()
    message = str(caught.value)
    assert "anvil on PATH" in message and "ANVIL_BINARY" in message
    assert "npm ci" in message


def test_pytest_chain_anvil_without_anvil_is_one_usage_error(no_node_modules: Path) -> None:
    config = SimpleNamespace(
        addinivalue_line=lambda *args: None, getoption=lambda name, default=None: "anvil"
    )
    with pytest.raises(pytest.UsageError, match=r"--chain anvil: anvil not found.*ANVIL_BINARY"):
        plugin.pytest_configure(config)  # type: ignore[arg-type]
