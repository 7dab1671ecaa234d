"""Find solc, compile the contracts with pinned settings, cache by content hash.

Resolution order (the first that exists wins, and :func:`find_solc` says which):

1. ``SOLC_BINARY``: any solc executable the user points at;
2. a native solc that py-solc-x has installed for the pinned version (``~/.solcx``);
3. ``solc`` on ``PATH``, if it is the pinned version;
4. the npm package ``solc`` (solc-js, pinned in package.json) through the small node
   wrapper shipped in this package (``solc_wrapper.cjs``).

Nothing is ever downloaded: py-solc-x's ``install_solc`` needs a host that may be
unreachable, so it is never called here.

A warm compile is a file read: the cache key is a hash of (sources, compiler version,
settings), and the compiler's version is itself cached by the binary's path, size and
modification time, so a cache hit starts no process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from escrowkit.core.errors import CompilationError, NotFound, SolcNotFound
from escrowkit.core.paths import cache_dir, node_modules_package

__all__ = [
    "ARTIFACTS_DIR",
    "COMPILER_SETTINGS",
    "PINNED_SOLC_VERSION",
    "Artifact",
    "SolcInfo",
    "compile_contracts",
    "default_contracts_dir",
    "find_solc",
    "load_artifact",
    "load_artifacts",
    "split_artifacts",
    "stale_artifacts",
    "write_artifacts",
]

logger = logging.getLogger(__name__)

#: The solc release every artifact is built with; package.json pins the same solc-js.
PINNED_SOLC_VERSION = "0.8.37"

#: Settings that go into standard JSON and into the cache key.
COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 10_000},
    "evmVersion": "cancun",
    # No IPFS/Swarm hash: bytecode then depends only on code, not on comments or paths.
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}

ARTIFACTS_DIR = Path(__file__).resolve().parents[1] / "artifacts"
WRAPPER = Path(__file__).with_name("solc_wrapper.cjs")


@dataclass(frozen=True)
class SolcInfo:
    """The compiler that will be used: where it is, its full version, and why it was chosen."""

    path: Path
    version: str  # e.g. "0.8.37+commit.f401782d"
    origin: str  # "SOLC_BINARY", "py-solc-x", "PATH" or "npm solc-js"

    @property
    def release(self) -> str:
        """The version without the commit: ``"0.8.37"``."""
        return self.version.split("+")[0]

    def __str__(self) -> str:
        return f"solc {self.version} ({self.origin}: {self.path})"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: what deploying and calling it needs."""

    name: str
    source: str
    abi: list[dict[str, Any]] = field(repr=False)
    bytecode: str = field(repr=False)  # 0x-prefixed creation code
    deployed_bytecode: str = field(repr=False)  # 0x-prefixed runtime code
    compiler: str = ""

    @property
    def hash(self) -> str:
        """A digest of ABI and code: changes exactly when a redeploy would differ."""
        blob = json.dumps([self.abi, self.bytecode], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "contractName": self.name,
            "sourceName": self.source,
            "compiler": self.compiler,
            "abi": self.abi,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Artifact:
        return cls(
            name=data["contractName"],
            source=data["sourceName"],
            abi=list(data["abi"]),
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            compiler=data.get("compiler", ""),
        )


# --------------------------------------------------------------------------------------
# Where things are
# --------------------------------------------------------------------------------------


def default_contracts_dir() -> Path:
    """The project's ``contracts/``: next to the source tree, else in the working directory."""
    beside_package = Path(__file__).resolve().parents[3] / "contracts"
    if beside_package.is_dir():
        return beside_package
    return Path.cwd() / "contracts"


# --------------------------------------------------------------------------------------
# Finding solc
# --------------------------------------------------------------------------------------


def find_solc(version: str = PINNED_SOLC_VERSION) -> SolcInfo:
    """Pick the compiler per the module's resolution order; raise SolcNotFound if none."""
    tried: list[str] = []

    if env := os.environ.get("SOLC_BINARY"):
        path = Path(env).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise SolcNotFound(f"SOLC_BINARY={env} is not an executable file")
        return SolcInfo(path.resolve(), _binary_version(path), "SOLC_BINARY")
    tried.append("SOLC_BINARY (not set)")

    solcx_binary = _solcx_installed(version)
    if solcx_binary is not None:
        return SolcInfo(solcx_binary, _binary_version(solcx_binary), "py-solc-x")
    tried.append(f"py-solc-x installs (no solc {version} in ~/.solcx)")

    on_path = shutil.which("solc")
    if on_path is not None:
        found = _binary_version(Path(on_path))
        if found.split("+")[0] == version:
            return SolcInfo(Path(on_path).resolve(), found, "PATH")
        tried.append(f"solc on PATH ({on_path} is {found}, not {version})")
    else:
        tried.append("solc on PATH (none)")

    solcjs = node_modules_package("solc")
    node = shutil.which("node")
    if solcjs is not None and node is not None:
        info = _npm_solc(solcjs, Path(node))
        if info.release == version:
            return info
        tried.append(f"npm solc ({solcjs} is {info.version}, not {version}; run `npm ci`)")
    else:
        missing = "node is not on PATH" if node is None else "node_modules/solc is missing"
        tried.append(f"npm solc-js ({missing}; run `npm ci`)")

    raise SolcNotFound(
        f"no solc {version} found. Tried: " + "; ".join(tried) + ". "
        "Run `npm ci` in the project (installs the pinned solc-js), or set SOLC_BINARY."
    )


def _solcx_installed(version: str) -> Path | None:
    folder = Path(os.environ.get("SOLCX_BINARY_PATH") or Path.home() / ".solcx")
    binary = folder / f"solc-v{version}"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    return None


def _npm_solc(package: Path, node: Path) -> SolcInfo:
    """A shim script that runs the node wrapper against this solc-js, and its version."""
    soljson = package / "soljson.js"
    stamp = _stat_key(soljson)
    # The shim names node and the wrapper by path, so its name depends on both: a shim
    # left by another node (a temporary one, another venv's package) must not be reused.
    node = node.resolve()
    shim_key = f"{stamp}|{node}|{WRAPPER.resolve()}"
    shim = cache_dir() / "bin" / f"solcjs-{hashlib.sha256(shim_key.encode()).hexdigest()[:16]}"
    if not shim.exists():
        shim.parent.mkdir(parents=True, exist_ok=True)
        script = (
            "#!/bin/sh\n"
            f"ESCROWKIT_SOLCJS={_sh_quote(str(package))} "
            f'exec {_sh_quote(str(node))} {_sh_quote(str(WRAPPER))} "$@"\n'
        )
        _atomic_write(shim, script)
        shim.chmod(0o755)
    return SolcInfo(shim, _binary_version(shim, key=stamp), "npm solc-js")


def _binary_version(path: Path, *, key: str | None = None) -> str:
    """``solc --version``, cached by the binary's identity so warm runs start no process."""
    key = key or _stat_key(path)
    cache = cache_dir() / "solc-versions.json"
    try:
        known: dict[str, str] = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SolcNotFound(f"{path} --version failed: {exc}") from exc
    version = _parse_version(out)
    if version is None:
        raise SolcNotFound(f"{path} --version printed no 'Version: x.y.z+commit...': {out!r}")
    known[key] = version
    cache.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(cache, json.dumps(known, indent=1, sort_keys=True))
    return version


def _parse_version(text: str) -> str | None:
    import re

    match = re.search(r"Version: (\d+\.\d+\.\d+(?:-nightly\.[\d.]+)?\+commit\.[0-9a-f]+)", text)
    return match.group(1) if match else None


def _stat_key(path: Path) -> str:
    st = path.resolve().stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------
# Compiling
# --------------------------------------------------------------------------------------


def read_sources(source_dir: Path) -> dict[str, str]:
    """Every ``.sol`` file under ``source_dir``, keyed by its posix path relative to it."""
    sources = {
        path.relative_to(source_dir).as_posix(): path.read_text()
        for path in sorted(source_dir.rglob("*.sol"))
    }
    if not sources:
        raise CompilationError([f"no .sol files under {source_dir}"])
    return sources


def compile_contracts(
    source_dir: str | Path | None = None,
    *,
    solc: SolcInfo | None = None,
    use_cache: bool = True,
) -> dict[str, Artifact]:
    """Compile every contract under ``source_dir`` (default: the project's ``contracts/``).

    Returns artifacts by contract name. A second call with unchanged sources, compiler and
    settings reads the cache and runs nothing. Raises :class:`CompilationError` with solc's
    formatted messages (``file:line:column``) when the sources do not compile.
    """
    folder = Path(source_dir) if source_dir is not None else default_contracts_dir()
    sources = read_sources(folder)
    solc = solc or find_solc()
    key_blob = json.dumps(
        {"sources": sources, "compiler": solc.version, "settings": COMPILER_SETTINGS},
        sort_keys=True,
    ).encode()
    cache_file = cache_dir() / "compile" / f"{hashlib.sha256(key_blob).hexdigest()}.json"
    if use_cache:
        try:
            cached = json.loads(cache_file.read_text())
            logger.debug("compile cache hit %s", cache_file.name)
            return {name: Artifact.from_json(data) for name, data in cached.items()}
        except (OSError, ValueError, KeyError):
            pass

    logger.info("compiling %d sources with %s", len(sources), solc)
    output = _run_solc(solc, folder, sources)
    artifacts = _artifacts_from_output(output, solc.version)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(cache_file, json.dumps({n: a.to_json() for n, a in artifacts.items()}))
    return artifacts


def _run_solc(solc: SolcInfo, folder: Path, sources: Mapping[str, str]) -> dict[str, Any]:
    import solcx
    from solcx.exceptions import SolcError

    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": COMPILER_SETTINGS,
    }
    try:
        output: dict[str, Any] = solcx.compile_standard(
            standard_input,
            solc_binary=str(solc.path),
            base_path=str(folder),
            allow_paths=[str(folder)],
        )
    except SolcError as exc:
        messages = [
            e.get("formattedMessage") or e.get("message", "")
            for e in (exc.error_dict or [])
            if e.get("severity") == "error"
        ]
        raise CompilationError(
            messages or [str(exc)], command=[str(c) for c in exc.command]
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CompilationError([f"{solc} failed: {exc}"]) from exc
    for warning in output.get("errors", []):
        logger.debug("solc: %s", warning.get("formattedMessage", "").strip())
    return output


def _artifacts_from_output(output: Mapping[str, Any], version: str) -> dict[str, Artifact]:
    artifacts: dict[str, Artifact] = {}
    for source, contracts in sorted(output.get("contracts", {}).items()):
        for name, data in sorted(contracts.items()):
            if name in artifacts:
                raise CompilationError(
                    [f"two contracts named {name}: {artifacts[name].source} and {source}"]
                )
            artifacts[name] = Artifact(
                name=name,
                source=source,
                abi=data["abi"],
                bytecode="0x" + data["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + data["evm"]["deployedBytecode"]["object"],
                compiler=version,
            )
    return artifacts


# --------------------------------------------------------------------------------------
# Committed artifacts
# --------------------------------------------------------------------------------------


def load_artifacts(folder: Path = ARTIFACTS_DIR) -> dict[str, Artifact]:
    """The committed artifacts (no compiler needed)."""
    return {
        path.stem: Artifact.from_json(json.loads(path.read_text()))
        for path in sorted(folder.glob("*.json"))
    }


def load_artifact(name: str, folder: Path = ARTIFACTS_DIR) -> Artifact:
    """One committed artifact by contract name."""
    path = folder / f"{name}.json"
    try:
        return Artifact.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in folder.glob("*.json")))
        raise NotFound(f"no artifact named {name!r} in {folder}; known: {known}") from None


def write_artifacts(artifacts: Mapping[str, Artifact], folder: Path = ARTIFACTS_DIR) -> list[Path]:
    """Write one JSON per contract and delete artifacts whose contract no longer exists."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = folder / f"{name}.json"
        path.write_text(json.dumps(artifact.to_json(), indent=2, sort_keys=True) + "\n")
        written.append(path)
    for path in folder.glob("*.json"):
        if path.stem not in artifacts:
            path.unlink()
    return written


#: Sources under this folder of contracts/ are test contracts (hostile tokens, lenses):
#: their artifacts belong to the tests, never to the package...
TEST_SOURCES = "test/"
#: ...except MockUSDC, which ``deploy_stack`` deploys when no token is given.
SHIPPED_TEST_CONTRACTS = frozenset({"MockUSDC"})


def split_artifacts(
    artifacts: Mapping[str, Artifact],
) -> tuple[dict[str, Artifact], dict[str, Artifact]]:
    """``(product, test_only)``: the package ships the first, the tests keep the second."""

    def shipped(artifact: Artifact) -> bool:
        test_only = artifact.source.startswith(TEST_SOURCES)
        return not test_only or artifact.name in SHIPPED_TEST_CONTRACTS

    product = {n: a for n, a in artifacts.items() if shipped(a)}
    return product, {n: a for n, a in artifacts.items() if not shipped(a)}


def stale_artifacts(fresh: Mapping[str, Artifact], folder: Path = ARTIFACTS_DIR) -> list[str]:
    """Names whose committed artifact differs from ``fresh`` (or is missing or extra)."""
    committed = load_artifacts(folder)
    stale = []
    for name in sorted(set(fresh) | set(committed)):
        old, new = committed.get(name), fresh.get(name)
        if old is None or new is None or old.to_json() != new.to_json():
            stale.append(name)
    return stale
