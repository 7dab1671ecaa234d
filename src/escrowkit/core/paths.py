"""Where escrowkit keeps its cache, and where the npm toolchain (solc-js, anvil) lives."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "node_modules_package"]


def cache_dir() -> Path:
    """``$ESCROWKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/escrowkit``, else ``~/.cache/escrowkit``."""
    if env := os.environ.get("ESCROWKIT_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "escrowkit"


def node_modules_package(name: str) -> Path | None:
    """Find ``node_modules/<name>`` above the working directory or above this package."""
    starts = [Path.cwd().resolve(), Path(__file__).resolve().parent]
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / "node_modules" / name
            if (candidate / "package.json").is_file():
                return candidate
    return None
