"""A local anvil node: find the binary (``$ANVIL_BINARY``, the npm package in node_modules,
or ``anvil`` on PATH), start it on a free loopback port, stop it."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from escrowkit.core.errors import ChainError, ConfigurationError
from escrowkit.core.paths import node_modules_package

__all__ = [
    "HARDFORK",
    "TUNED_ARGS",
    "AnvilProcess",
    "anvil_command",
    "find_anvil",
    "free_port",
    "start_anvil",
]

#: The EVM rules of ``Chain.anvil()``: the ``evmVersion`` escrowkit compiles its contracts
#: for (``escrowkit.build.compiler``; a test keeps the two equal).
HARDFORK = "cancun"

#: Options that keep a long-running anvil fast at no cost to what escrowkit or its users
#: read:
#:
#: - keep the states of the last 64 blocks in memory and write none to disk. anvil 1.7
#:   already refuses calls on states hundreds of blocks old without it; blocks, receipts
#:   and logs stay (eth_getLogs and EscrowClient.history from block 0 work), and a failed
#:   transaction is replayed on the block before it. (A bare --prune-history keeps no past
#:   state at all, and an estimate on "latest" can then miss the block it named.)
#: - the contracts' own hardfork, Cancun, instead of anvil's latest. anvil 1.7.1 hashes
#:   the whole state trie again for every block it mines, and from Prague on every block
#:   also writes its parent's hash into the EIP-2935 history contract (one storage slot per
#:   block, up to 8,191): mining grew from 0.6 to 12 ms an empty block over 10,000 blocks,
#:   while on Cancun it stays at 0.06 ms. (The escrows' own slots still add to every
#:   block's hashing; see BENCHMARKS.md, "Long run".) A ``--hardfork`` in ``extra_args``
#:   replaces this one, for contracts that need later rules.
#:
#: Not used with ``state``, whose dump is the point of that file.
TUNED_ARGS: tuple[str, ...] = ("--prune-history", "64", "--hardfork", HARDFORK)


def find_anvil() -> Path:
    """``$ANVIL_BINARY``, else node_modules/@foundry-rs/anvil-<platform>, else ``anvil`` on PATH."""
    if env := os.environ.get("ANVIL_BINARY"):
        if not Path(env).is_file():
            raise ConfigurationError(f"ANVIL_BINARY is {env}, which is not a file")
        return Path(env)
    system = {"linux": "linux", "darwin": "darwin", "windows": "win32"}.get(
        platform.system().lower(), platform.system().lower()
    )
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    package = node_modules_package(f"@foundry-rs/anvil-{system}-{machine}")
    if package is not None:
        binary = package / "bin" / ("anvil.exe" if system == "win32" else "anvil")
        if binary.is_file():
            return binary
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    # After a plain `pip install` there is no node_modules: any anvil will do.
    raise ConfigurationError(
        "anvil not found: put Foundry's anvil on PATH, or set ANVIL_BINARY to an anvil "
        "binary; in a checkout of escrowkit `npm ci` also installs one (@foundry-rs/anvil)"
    )


@dataclass
class AnvilProcess:
    """A running anvil; :meth:`stop` ends it (idempotent)."""

    popen: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_anvil(
    *,
    port: int | None = None,
    state: str | os.PathLike[str] | None = None,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 15.0,
    tuned: bool = False,
) -> AnvilProcess:
    """Start anvil and return once it answers ``eth_chainId`` (with :data:`TUNED_ARGS`
    when ``tuned``)."""
    binary = find_anvil()
    last_error = ""
    for _ in range(3):  # a free port can be taken between probing and binding: retry
        chosen = port or free_port()
        args = anvil_command(binary, chosen, state=state, extra_args=extra_args, tuned=tuned)
        popen = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        process = AnvilProcess(popen, chosen)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                last_error = popen.stderr.read().decode(errors="replace") if popen.stderr else ""
                break
            if _answers(process.url):
                return process
            time.sleep(0.02)
        else:
            process.stop()
            raise ChainError(f"anvil did not answer on port {chosen} within {startup_timeout}s")
        process.stop()
        if port is not None:
            break
    raise ChainError(f"anvil failed to start: {last_error.strip() or 'exited early'}")


def anvil_command(
    binary: str | os.PathLike[str],
    port: int,
    *,
    state: str | os.PathLike[str] | None = None,
    extra_args: Sequence[str] = (),
    tuned: bool = False,
) -> list[str]:
    """The command line :func:`start_anvil` runs: :data:`TUNED_ARGS` when ``tuned`` and
    there is no ``state``, less their ``--hardfork`` when ``extra_args`` name one."""
    args = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    if state is not None:
        args += ["--state", str(state)]
    if tuned and state is None:
        tuned_args = list(TUNED_ARGS)
        if any(arg == "--hardfork" or arg.startswith("--hardfork=") for arg in extra_args):
            at = tuned_args.index("--hardfork")
            del tuned_args[at : at + 2]
        args += tuned_args
    return args + list(extra_args)


def _answers(url: str) -> bool:
    import json
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=0.5) as response:
            return b"result" in response.read()
    except OSError:
        return False
