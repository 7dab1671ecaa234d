"""The README, run as written.

Every Python snippet runs, in order, in one namespace (``notest`` ones are shown, not
run: they need a real network). The CLI tour runs command by command against a real
anvil that its own ``escrowkit chain &`` starts, in an empty folder, with the ids it
printed put where the README writes ``apr_...`` and ``0x...``; then the Python that
attaches to the CLI's deployment (``after-cli-tour``) runs there too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import cli_process

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"```(\w+)([^\n]*)\n(.*?)```", re.DOTALL)
ESCROWKIT = [sys.executable, "-m", "escrowkit.cli"]


def blocks(language: str, tag: str | None = None) -> list[str]:
    """The README's ``language`` blocks: untagged ones, or those tagged ``tag``."""
    chosen = []
    for lang, info, body in BLOCK.findall(README.read_text()):
        tags = info.split()
        if lang == language and "notest" not in tags and (tag in tags if tag else not tags):
            chosen.append(body)
    return chosen


@pytest.mark.anvil
def test_python_snippets_run() -> None:
    snippets = blocks("python")
    assert len(snippets) >= 4
    namespace: dict[str, object] = {"__name__": "readme"}
    for n, snippet in enumerate(snippets):
        code = compile(snippet, f"README.md python block {n + 1}", "exec")
        exec(code, namespace)


def commands(block: str) -> list[list[str]]:
    """The shell lines of ``block`` as words (continuations joined, comments dropped)."""
    joined = block.replace("\\\n", " ")
    return [words for line in joined.splitlines() if (words := shlex.split(line, comments=True))]


def test_cli_commands_in_the_readme_exist() -> None:
    from typer.testing import CliRunner

    from escrowkit.cli.app import app

    runner = CliRunner()
    found = set()
    for block in blocks("sh"):
        for words in commands(block):
            if words[:1] == ["escrowkit"]:
                command = [w for w in words[1:3] if not w.startswith("-") and w.isidentifier()]
                grouped = command[:1] in (["agents"], ["escrow"], ["pool"], ["budgets"])
                found.add(tuple(command[:2] if grouped else command[:1]))
    assert len(found) >= 12
    for command in sorted(found):
        done = runner.invoke(app, [*command, "--help"])
        assert done.exit_code == 0, (command, done.output)


def _free_port() -> int:
    from escrowkit.evm.anvil import free_port

    return free_port()


def _answers(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=0.5) as response:
            return b"result" in response.read()
    except OSError:
        return False


class Tour:
    """Runs the tour's lines in one folder, with one environment, like one shell."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ESCROWKIT_")}
        self.env.update(ESCROWKIT_RPC_URL=url, COLUMNS="80")
        self.last = {"apr_...": "", "0x...": ""}
        self.background: list[subprocess.Popen[bytes]] = []

    def line(self, words: list[str]) -> str:
        if words[0] == "export":
            self.env.update(dict(word.split("=", 1) for word in words[1:]))
            return ""
        assert words[0] == "escrowkit", words
        args = [self.last.get(word, word) for word in words[1:]]
        assert "" not in args, f"{words}: the tour showed no id to put there yet"
        if args[-1:] == ["&"]:
            self.background.append(
                subprocess.Popen([*ESCROWKIT, *args[:-1]], cwd=self.folder, env=self.env)
            )
            return ""
        done = cli_process.run(args, cwd=self.folder, env=self.env)  # a new process each
        assert done.returncode == 0, f"{words}: {done.returncode}\n{done.stdout}{done.stderr}"
        for word in done.stdout.split():
            if word.startswith("apr_"):
                self.last["apr_..."] = word
            if word.startswith("0x") and len(word) == 66:
                self.last["0x..."] = word
        return done.stdout

    def stop(self) -> None:
        for process in self.background:
            process.terminate()  # anvil saves its state and ends
            process.wait(timeout=30)


@pytest.mark.anvil
def test_the_cli_tour_runs_as_written(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    tour = Tour(tmp_path, url)
    (csv,) = blocks("csv")
    (tmp_path / "spends.csv").write_text(csv)
    treasury_tour, pool_tour = blocks("sh")[1:3]
    outputs: list[str] = []
    try:
        for words in commands(treasury_tour) + commands(pool_tour):
            outputs.append(tour.line(words))
            if words[1:2] == ["chain"]:
                deadline = time.monotonic() + 30
                while not _answers(url):
                    assert time.monotonic() < deadline, "escrowkit chain did not start"
                    time.sleep(0.1)
        shown = "".join(outputs)
        assert "APPROVED" in shown and "PENDING_APPROVAL" in shown and "DENIED: Rejected" in shown
        assert "who may do what:" in shown
        (after,) = blocks("python", "after-cli-tour")
        attached = subprocess.run(
            [sys.executable, "-c", after],
            cwd=tmp_path,
            env={**tour.env, "ESCROWKIT_MODE": "treasury", "ESCROWKIT_DATABASE": ""},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert attached.returncode == 0, attached.stderr
        # 25 + 80 (approved) + 10 + 15 (the batch) + 8 (the scraper), on the treasury
        # ledger the CLI wrote.
        assert attached.stdout.startswith(f"{138 * 10**6} ['res_")
        assert "workspace:alpha/workflow:task-1" in shown  # budgets show
        audit = _audit(tmp_path, tour.env)
        assert ("approved", "ops@example.com", "ticket 12") in audit
        assert ("rejected", "ops@example.com", "not this month") in audit
    finally:
        tour.stop()


def _audit(folder: Path, env: dict[str, str]) -> list[tuple[str, object, object]]:
    """Who approved or rejected what, and why, as the treasury ledger recorded it."""
    script = (
        "import json\n"
        "from escrowkit.config import bootstrap\n"
        "from escrowkit.config.settings import load_settings\n"
        "s = load_settings(); c = bootstrap.open_chain(s)\n"
        "with bootstrap.open_coordinator(s, c) as k:\n"
        "    print(json.dumps([(e.event, e.detail.get('approver'),"
        " e.detail.get('note') or e.detail.get('reason')) for e in k.audit_log()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=folder,
        env={**env, "ESCROWKIT_MODE": "treasury", "ESCROWKIT_DATABASE": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [tuple(entry) for entry in json.loads(done.stdout)]
