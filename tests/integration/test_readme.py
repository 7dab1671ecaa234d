"""Every Python snippet in the README runs, in order, in one namespace (``notest`` ones
are shown, not run: they need a real network). Every CLI command it shows exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"```(\w+)([^\n]*)\n(.*?)```", re.DOTALL)


def blocks(language: str) -> list[str]:
    return [
        body
        for lang, info, body in BLOCK.findall(README.read_text())
        if lang == language and "notest" not in info
    ]


@pytest.mark.anvil
def test_python_snippets_run() -> None:
    snippets = blocks("python")
    assert len(snippets) >= 4
    namespace: dict[str, object] = {"__name__": "readme"}
    for n, snippet in enumerate(snippets):
        code = compile(snippet, f"README.md python block {n + 1}", "exec")
        exec(code, namespace)


def test_cli_commands_in_the_readme_exist() -> None:
    from typer.testing import CliRunner

    from escrowkit.cli.app import app

    runner = CliRunner()
    commands = set()
    for block in blocks("sh"):
        for line in block.splitlines():
            words = line.split()
            if words[:1] == ["escrowkit"]:
                command = [w for w in words[1:3] if not w.startswith("-") and w.isidentifier()]
                commands.add(
                    tuple(command[:2] if command[:1] in (["agents"], ["escrow"]) else command[:1])
                )
    assert len(commands) >= 8
    for command in sorted(commands):
        done = runner.invoke(app, [*command, "--help"])
        assert done.exit_code == 0, (command, done.output)
