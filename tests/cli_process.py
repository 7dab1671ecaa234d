"""``escrowkit`` commands in fresh processes, without paying web3's import each time.

A CLI test runs dozens of commands, each in its own process (state must survive through
the files, as it does for a user). Most of such a process's time was the import of
web3 and its dependencies (about 2 s of CPU here, a third of it py_ecc computing BLS
constants for a keystore format escrowkit never reads), repeated for every command.

:func:`run` keeps one helper process per test process that has imported those
third-party packages and nothing of escrowkit. Each command is a fork of it: a separate
process with its own working directory, environment, standard streams, database and
network connections, which then imports escrowkit and runs ``python -m escrowkit.cli``
as a fresh interpreter would. Only the already-imported third-party modules are shared,
and variables read when an interpreter starts (``PYTHONPATH``, ``PYTHONWARNINGS``) are
the helper's: a test that sets those needs a real ``subprocess.run``.

Run as a script, this file is that helper: it reads one JSON request per line on stdin
and answers each with the child's pid, then its exit status.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

#: What the helper imports once: the slow third-party part of every command's start.
#: Nothing of escrowkit, so each command still imports (and configures) escrowkit itself.
PRELOAD = ("web3", "eth_account", "sqlalchemy", "sqlalchemy.dialects.sqlite", "httpx")


class _Helper:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lock = threading.Lock()
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests: IO[str] = self.process.stdin
        self.answers: IO[str] = self.process.stdout
        if self.answers.readline().strip() != "ready":
            raise RuntimeError("the CLI helper process did not start")

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(
        self, args: list[str], cwd: Path, env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        with (
            self.lock,
            tempfile.NamedTemporaryFile("w+") as out,
            tempfile.NamedTemporaryFile("w+") as err,
        ):
            request = {"args": args, "cwd": str(cwd), "env": env}
            request |= {"stdout": out.name, "stderr": err.name}  # the child writes them
            self.requests.write(json.dumps(request) + "\n")
            pid = int(self.answers.readline())
            killed = threading.Event()
            timer = threading.Timer(timeout, _kill, (pid, killed))
            timer.start()
            try:
                line = self.answers.readline()
            finally:
                timer.cancel()
            if not line:
                raise RuntimeError("the CLI helper process ended")
            if killed.is_set():
                raise subprocess.TimeoutExpired(["escrowkit", *args], timeout)
            code = int(line)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(["escrowkit", *args], code, out.read(), err.read())

    def close(self) -> None:
        if self.alive():
            self.requests.close()
            self.process.wait(timeout=10)


def _kill(pid: int, killed: threading.Event) -> None:
    killed.set()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


_helper: _Helper | None = None


def run(
    args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``escrowkit *args`` in a new process (``cwd``, exactly ``env``), as
    ``subprocess.run(..., capture_output=True, text=True)`` would return it."""
    global _helper
    if _helper is None or not _helper.alive():
        _helper = _Helper()
        atexit.register(_helper.close)
    return _helper.run(args, cwd, env, timeout)


# ---- the helper ---------------------------------------------------------------------------


def _child(request: dict[str, Any]) -> None:
    """In the forked process: become ``python -m escrowkit.cli *args``; never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        stdin = os.open(os.devnull, os.O_RDONLY)
        stdout = os.open(request["stdout"], os.O_WRONLY)
        stderr = os.open(request["stderr"], os.O_WRONLY)
        for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own streams
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        sys.argv = ["escrowkit", *request["args"]]
        sys.path[0] = os.getcwd()  # as ``python -m`` has it (this script's folder was there)
        import runpy

        try:
            runpy.run_module("escrowkit.cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            if done.code is not None and not isinstance(done.code, int):
                print(done.code, file=sys.stderr)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _serve() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    assert threading.active_count() == 1, "a preloaded module started a thread: fork is unsafe"
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    _serve()
