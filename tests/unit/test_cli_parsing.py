"""The command line as people type it: root options after the subcommand, ``--version``,
flags without a ``<bool>`` in their help, and ``-5`` as an amount (which is refused as
one, not as an unknown option)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from escrowkit.cli.app import app
from escrowkit.cli.parsing import hoist_root_options

PROVIDER = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"


@pytest.mark.parametrize(
    ("args", "hoisted"),
    [
        (["report", "--debug"], ["--debug", "report"]),
        (["report", "--json", "--config", "a.toml"], ["--config", "a.toml", "report", "--json"]),
        (["-c", "a.toml", "report"], ["-c", "a.toml", "report"]),
        (
            ["agents", "list", "--rpc=http://x", "--json"],
            ["--rpc=http://x", "agents", "list", "--json"],
        ),
        (
            ["deploy", "--rpc", "http://x", "--mint", "5"],
            ["--rpc", "http://x", "deploy", "--mint", "5"],
        ),
        (["freeze", "--", "--debug"], ["freeze", "--", "--debug"]),
    ],
)
def test_root_options_after_the_command_move_before_it(args: list[str], hoisted: list[str]) -> None:
    assert hoist_root_options(args) == hoisted


def test_root_options_work_after_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    done = subprocess.run(
        [sys.executable, "-m", "escrowkit.cli", "report", "--json", "--config", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr == f"error: settings file {missing} does not exist\n"


def test_version() -> None:
    done = CliRunner().invoke(app, ["--version"])
    assert done.exit_code == 0 and done.output == f"escrowkit {version('escrowkit')}\n"


def command_paths() -> list[list[str]]:
    """Every command and group, from the root down."""
    import typer.main

    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_help_shows_no_bool_type_for_flags() -> None:
    runner = CliRunner()
    paths = command_paths()
    assert ["report"] in paths and ["agents", "add"] in paths
    for path in paths:
        done = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert done.exit_code == 0, (path, done.output)
        assert "<bool>" not in done.output, (path, done.output)
    assert "<str>" in runner.invoke(app, ["spend", "--help"]).output  # values keep theirs


@pytest.mark.parametrize(
    ("args", "written"),
    [
        (["spend", "research-agent", "-5", PROVIDER, "--purpose", "x"], "-5"),
        (["spend", "research-agent", "-0.5", PROVIDER, "--purpose", "x"], "-0.5"),
        (["budgets", "set-total", "-100"], "-100"),
        (["pool", "contribute", "-1"], "-1"),
    ],
)
def test_a_negative_amount_is_an_amount_and_amounts_are_positive(
    args: list[str], written: str
) -> None:
    done = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert done.exit_code == 2, done.output
    assert f"amounts are positive, got {written}" in done.output
    assert "No such option" not in done.output


def test_an_unknown_option_is_still_one() -> None:
    done = CliRunner().invoke(app, ["report", "-x"], env={"COLUMNS": "200"})
    assert done.exit_code == 2 and "No such option" in done.output
