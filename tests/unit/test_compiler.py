"""Compiler resolution, caching and errors. These run the real solc-js (node) where needed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from escrowkit.build import compiler
from escrowkit.build.compiler import (
    ARTIFACTS_DIR,
    PINNED_SOLC_VERSION,
    compile_contracts,
    find_solc,
    split_artifacts,
    stale_artifacts,
)
from escrowkit.errors import CompilationError, SolcNotFound
from hostile import ARTIFACTS as HOSTILE_ARTIFACTS

SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract Answer {
    function get() external pure returns (uint256) { return 42; }
}
"""


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No SOLC_BINARY, no py-solc-x installs, no solc on PATH (node stays), own cache."""
    monkeypatch.delenv("SOLC_BINARY", raising=False)
    monkeypatch.setenv("ESCROWKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path / "solcx"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    node = Path(os.environ.get("NODE", "")) if os.environ.get("NODE") else None
    from shutil import which

    node_path = node or Path(which("node") or "")
    (bin_dir / "node").symlink_to(node_path)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def fake_solc(path: Path, version: str, delegate: Path | None = None) -> Path:
    """A script that claims ``version`` and, if given, forwards real work to ``delegate``."""
    body = (
        f'if [ "$1" = "--version" ]; then echo "Version: {version}+commit.00000000"; exit 0; fi\n'
    )
    if delegate is not None:
        body += f'exec "{delegate}" "$@"\n'
    else:
        body += "exit 3\n"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_npm_wrapper_is_used_when_there_is_no_native_solc(isolated: Path) -> None:
    info = find_solc()
    assert info.origin == "npm solc-js"
    assert info.release == PINNED_SOLC_VERSION
    assert "+commit." in info.version


def test_solc_binary_env_wins(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    custom = fake_solc(tmp_path / "my-solc", "0.8.99")
    fake_solc(isolated / "solc", PINNED_SOLC_VERSION)
    monkeypatch.setenv("SOLC_BINARY", str(custom))
    info = find_solc()
    assert info.origin == "SOLC_BINARY"
    assert info.path == custom.resolve()
    assert info.version == "0.8.99+commit.00000000"


def test_py_solcx_install_comes_before_path(isolated: Path, tmp_path: Path) -> None:
    solcx_dir = tmp_path / "solcx"
    solcx_dir.mkdir()
    installed = fake_solc(solcx_dir / f"solc-v{PINNED_SOLC_VERSION}", PINNED_SOLC_VERSION)
    fake_solc(isolated / "solc", PINNED_SOLC_VERSION)
    info = find_solc()
    assert (info.origin, info.path) == ("py-solc-x", installed)


def test_solc_on_path_of_the_wrong_version_is_skipped(isolated: Path) -> None:
    fake_solc(isolated / "solc", "0.8.20")
    assert find_solc().origin == "npm solc-js"
    fake_solc(isolated / "solc", PINNED_SOLC_VERSION)
    assert find_solc().origin == "PATH"


def test_missing_everything_explains_how_to_fix(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated / "node").unlink()
    with pytest.raises(SolcNotFound, match="npm ci"):
        find_solc()


def test_a_shim_made_for_another_node_is_not_reused(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wrapper's shim names node by path: a shim cached while another node (a
    temporary one, another machine's) was on PATH must not be used once that one is gone."""
    real_node = (isolated / "node").resolve()
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        launcher = folder / "node"  # a script, so resolve() cannot see through it
        launcher.write_text(f'#!/bin/sh\nexec "{real_node}" "$@"\n')
        launcher.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "first"))
    assert find_solc().origin == "npm solc-js"
    (tmp_path / "first" / "node").unlink()

    monkeypatch.setenv("PATH", str(tmp_path / "second"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "Answer.sol").write_text(SOURCE)
    assert compile_contracts(src, use_cache=False)["Answer"].bytecode.startswith("0x6080")


def test_wrapper_speaks_the_py_solcx_protocol() -> None:
    import solcx

    info = find_solc()
    version = solcx.wrapper.get_solc_version(info.path, with_commit_hash=True)
    assert str(version).startswith(PINNED_SOLC_VERSION)


def test_cache_hit_runs_no_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCROWKIT_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "Answer.sol").write_text(SOURCE)
    first = compile_contracts(src)
    assert first["Answer"].bytecode.startswith("0x6080")

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("solc ran on a cache hit")

    import solcx

    monkeypatch.setattr(solcx, "compile_standard", boom)
    monkeypatch.setattr(compiler.subprocess, "run", boom)
    assert compile_contracts(src) == first

    # Any change to the sources is a miss.
    (src / "Answer.sol").write_text(SOURCE.replace("42", "43"))
    with pytest.raises(AssertionError, match="solc ran"):
        compile_contracts(src)


def test_broken_source_reports_file_and_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Broken.sol").write_text(SOURCE.replace("return 42;", "return 42"))
    with pytest.raises(CompilationError) as info:
        compile_contracts(src)
    assert any("Broken.sol:4:" in message for message in info.value.messages)
    assert "ParserError" in str(info.value)


def test_committed_artifacts_match_the_sources() -> None:
    fresh = compile_contracts()
    if find_solc().release != PINNED_SOLC_VERSION:
        pytest.skip("artifacts are pinned to another solc release")
    product, test_only = split_artifacts(fresh)
    stale = stale_artifacts(product) + stale_artifacts(test_only, HOSTILE_ARTIFACTS)
    assert stale == [], f"stale artifacts {stale}: run `escrowkit compile` and commit them"
    assert not set(test_only) & {p.stem for p in ARTIFACTS_DIR.glob("*.json")}
