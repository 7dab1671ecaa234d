"""The house rules of DESIGN.md section 1 that import-linter does not check: rooms of
one purpose (no module over about 500 lines, no function over about 60), no private
name imported across modules, the public names where users import them, and an
``import escrowkit`` that does nothing but define names."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "escrowkit"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

#: DESIGN.md section 5: what users import, and from where.
PUBLIC = {
    "escrowkit": [
        "Chain", "compile_contracts", "deploy_stack", "Stack", "EscrowClient", "EscrowState",
        "EscrowRecord", "BudgetPoolClient", "BudgetCoordinator", "AgentConfig",
        "SpendRequest", "SpendResult", "SpendStatus", "Reason", "BudgetReport", "ScopeBalance",
        "Alert",
        "parse_units", "format_units", "TokenClient", "EscrowId", "AgentLimits",
        "Deployments", "deploy", "Artifact",
    ],
    "escrowkit.errors": [
        "EscrowKitError", "InvalidRequest", "ContractRevert", "IdempotencyConflict",
        "IdempotencyKeyMismatch", "IdempotencyKeyInUse", "ConfigurationError", "NotFound",
        "ChainError", "ApprovalClosed", "TransactionTimeout", "InvalidState", "TooEarly",
    ],
}  # fmt: skip


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_a_module_is_one_room(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines: two rooms?"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_function_is_long(path: Path) -> None:
    tree = ast.parse(path.read_text())
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{_name(path)}: {', '.join(long)}"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_private_name_crosses_a_module(path: Path) -> None:
    tree = ast.parse(path.read_text())
    crossing = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("escrowkit")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert not crossing, f"{_name(path)} imports private names: {crossing}"


@pytest.mark.parametrize(("module", "names"), PUBLIC.items())
def test_public_names_import_where_users_import_them(module: str, names: list[str]) -> None:
    code = f"from {module} import {', '.join(names)}"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_escrowkit_has_no_side_effects() -> None:
    """Nothing but names: the environment is untouched and nothing heavy is loaded."""
    probe = (
        "import json, os, sys; before = dict(os.environ); import escrowkit; "
        "heavy = [m for m in ('web3', 'sqlalchemy', 'eth_abi', 'typer') if m in sys.modules]; "
        "print(json.dumps({'env': dict(os.environ) == before, 'heavy': heavy}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "ETH_HASH_BACKEND"}
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, env=env
    ).stdout
    assert json.loads(out) == {"env": True, "heavy": []}
