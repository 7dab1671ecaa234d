"""The CLI tests' fork helper behaves as ``python -m escrowkit.cli`` in a new process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cli_process


def test_a_forked_command_prints_and_exits_as_a_fresh_interpreter_does(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "100", "ESCROWKIT_CONFIG": str(tmp_path / "missing.toml")}
    for args in (["--help"], ["report", "--json"]):
        fresh = subprocess.run(
            [sys.executable, "-m", "escrowkit.cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        forked = cli_process.run(args, cwd=tmp_path, env=env)
        assert (forked.returncode, forked.stdout, forked.stderr) == (
            fresh.returncode,
            fresh.stdout,
            fresh.stderr,
        )
    assert fresh.returncode != 0 and "missing.toml" in fresh.stderr  # the error case ran
    # escrowkit itself is imported afresh by each command, never by the helper.
    assert not any(name.startswith("escrowkit") for name in cli_process.PRELOAD)
