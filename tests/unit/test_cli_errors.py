"""How the ``escrowkit`` command fails, as a shell user sees it: no chain needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ESCROWKIT = [sys.executable, "-m", "escrowkit.cli"]


def run(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCROWKIT_")}
    env.pop("COLUMNS", None)  # a plain 80-column terminal, where rich would wrap
    return subprocess.run(
        [*ESCROWKIT, *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_long_error_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / ("a-settings-folder-with-a-long-name-" * 3) / "escrowkit.toml"
    done = run(tmp_path, "--config", str(missing), "report")
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_a_mistyped_option_is_not_read_as_a_denial(tmp_path: Path) -> None:
    """Click's usage error exits 2; a denied spend exits 3, so a script tells them apart."""
    from escrowkit.cli.app import EXIT_DENIED, EXIT_FAILED

    done = run(tmp_path, "spend", "research-agent", "25", "0x" + "11" * 20, "--purpsoe", "x")
    assert done.returncode == 2 and "--purpsoe" in done.stderr
    assert done.returncode not in (EXIT_DENIED, EXIT_FAILED)


def test_an_rpc_url_with_an_api_key_never_shows(tmp_path: Path) -> None:
    secret_url = "https://user:hunter2@127.0.0.1:1/v3/SECRETKEY123?apikey=SECRET456"
    for args in (["--rpc", secret_url, "report"], ["deploy", "--rpc", secret_url]):
        done = run(tmp_path, *args)
        assert done.returncode == 1
        assert done.stderr.startswith("error: cannot reach a node at https://127.0.0.1:1/")
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        for secret in ("SECRETKEY123", "SECRET456", "hunter2", "user:"):
            assert secret not in done.stderr + done.stdout, done.stderr


def test_redact_url_hides_keys_in_path_query_and_user_info() -> None:
    from escrowkit.core.urls import redact_url

    url = "https://me:pw123@rpc.example/v3/KEY42?token=T0K"
    text = (
        f"401 Client Error: Unauthorized for url: {url}; "
        "Max retries exceeded with url: /v3/KEY42?token=T0K"
    )
    redacted = redact_url(text, url)
    for secret in ("KEY42", "T0K", "pw123", "me:"):
        assert secret not in redacted
    assert "https://rpc.example/…" in redacted
    # Short pieces (user "u", password "p", path "/rpc") are left alone outside the URL:
    # replacing them everywhere garbled the message ("htt…://node.exam…le").
    short = "http://u:p@node.example/rpc"
    assert redact_url(f"no node at {short}: upstream /rpc rejected input", short) == (
        "no node at http://node.example/… upstream /rpc rejected input"
    )
    assert redact_url("at http://127.0.0.1:8545", "http://127.0.0.1:8545") == (
        "at http://127.0.0.1:8545"
    )


def test_the_password_prompt_keeps_stdout_clean(tmp_path: Path) -> None:
    import json

    from eth_account import Account

    keystore = Account.encrypt(Account.create().key, "hunter2", kdf="pbkdf2", iterations=2)
    (tmp_path / "treasury.json").write_text(json.dumps(keystore))
    (tmp_path / "escrowkit.toml").write_text(
        '[network]\nrpc_url = "http://127.0.0.1:1"\nkeystore = "treasury.json"\n'
    )
    done = run(tmp_path, "report", "--json", stdin="hunter2\n")
    assert "Password for treasury.json" in done.stderr
    assert done.stdout == ""  # what a `| jq` reads: the prompt is not part of it
    assert "hunter2" not in done.stdout + done.stderr


def test_a_missing_keystore_is_named_before_any_prompt(tmp_path: Path) -> None:
    (tmp_path / "escrowkit.toml").write_text(
        '[network]\nrpc_url = "http://127.0.0.1:1"\nkeystore = "nowhere.json"\n'
    )
    done = run(tmp_path, "report", stdin="")
    assert done.returncode == 1
    assert "Password" not in done.stdout + done.stderr
    assert done.stderr.startswith("error: keystore file nowhere.json does not exist")


def test_chain_listens_where_the_settings_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from escrowkit.cli.app import app
    from escrowkit.cli.commands import toolchain

    started: list[list[str]] = []
    monkeypatch.setattr(toolchain.os, "execv", lambda _binary, args: started.append(args))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ESCROWKIT_RPC_URL", raising=False)
    monkeypatch.delenv("ESCROWKIT_CONFIG", raising=False)
    (tmp_path / "escrowkit.toml").write_text('[network]\nrpc_url = "http://127.0.0.1:18555"\n')
    runner = CliRunner()
    assert runner.invoke(app, ["chain"]).exit_code == 0
    assert runner.invoke(app, ["chain", "--port", "9000"]).exit_code == 0
    monkeypatch.setenv("ESCROWKIT_RPC_URL", "https://rpc.example/v3/key")
    assert runner.invoke(app, ["chain"]).exit_code == 0
    ports = [args[args.index("--port") + 1] for args in started]
    assert ports == ["18555", "9000", "8545"]
    # The contracts' hardfork, as Chain.anvil() runs it (anvil's latest slows with blocks).
    assert all(args[args.index("--hardfork") + 1] == "cancun" for args in started)


def test_a_password_prompt_without_a_terminal_points_to_the_variable(tmp_path: Path) -> None:
    (tmp_path / "treasury.json").write_text("{}")
    (tmp_path / "escrowkit.toml").write_text(
        '[network]\nrpc_url = "http://127.0.0.1:1"\nkeystore = "treasury.json"\n'
    )
    done = run(tmp_path, "report", stdin="")
    assert done.returncode == 1
    assert "no terminal to ask on: set ESCROWKIT_KEYSTORE_PASSWORD" in done.stderr
    assert "Aborted" not in done.stderr and "Traceback" not in done.stderr
