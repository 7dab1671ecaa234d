"""Budget scopes, pure: what a scope path is, which scopes a spend charges, and what a
delegated agent may be given (DESIGN.md section 8).

A scope is a path of ``kind:name`` segments joined by ``/``, outermost first, in the order
:data:`KINDS` (kinds may be left out; only ``agent`` may repeat, for delegation):
``tenant:acme/workspace:alpha/workflow:task-123/agent:planner``. The root ``""`` is the
treasury's total budget. Names follow the agent-id rules, without ``/`` and ``:``.

An agent placed at ``scope`` charges ``<scope>/agent:<id>`` and every prefix of it; a
spend naming a workflow also charges the path with ``workflow:<name>`` put before the
first agent segment, and its prefixes. The functions here are cached: the same few paths
come back for every decision.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from escrowkit.core.errors import InvalidRequest
from escrowkit.core.inputs import validate_name

__all__ = [
    "KINDS",
    "MAX_SCOPE_LENGTH",
    "ROOT",
    "agent_path",
    "charged_scopes",
    "check_scope",
    "check_segment_name",
    "in_scope",
    "scope_order",
    "workflow_path",
]

#: The kinds of segment, outermost first; a path keeps this order.
KINDS = ("tenant", "workspace", "app", "workflow", "agent", "toolset")
_RANK = {kind: rank for rank, kind in enumerate(KINDS)}
_AGENT = _RANK["agent"]
#: The root scope: the treasury's total budget.
ROOT = ""
#: The longest path the ledger stores.
MAX_SCOPE_LENGTH = 1_024


def check_segment_name(value: object, what: str) -> str:
    """A name usable in a scope segment: an agent-id-like name without ``/`` or ``:``."""
    name = validate_name(value, what)
    if "/" in name or ":" in name:
        raise InvalidRequest(f"{what} {name!r} cannot be part of a scope: it contains '/' or ':'")
    return name


def _good_name(name: str) -> bool:
    try:
        validate_name(name, "name")
    except InvalidRequest:
        return False
    return ":" not in name


@functools.lru_cache(maxsize=4_096)
def _segments(path: str) -> tuple[tuple[str, str], ...]:
    """``path``'s (kind, name) segments, or InvalidRequest saying what is wrong."""
    if path == ROOT:
        return ()
    if len(path) > MAX_SCOPE_LENGTH:
        raise InvalidRequest(f"scope is longer than {MAX_SCOPE_LENGTH} characters")
    segments: list[tuple[str, str]] = []
    for part in path.split("/"):
        kind, colon, name = part.partition(":")
        if not colon or kind not in _RANK:
            raise InvalidRequest(
                f"malformed scope {path!r}: segment {part!r} is not kind:name with a kind "
                f"among {', '.join(KINDS)} (outermost first, joined by '/', no leading or "
                "trailing '/')"
            )
        if not _good_name(name):
            raise InvalidRequest(
                f"malformed scope {path!r}: the name in {part!r} must be 1 to 128 printable "
                "characters without surrounding blanks, '/' or ':'"
            )
        if segments:
            before = _RANK[segments[-1][0]]
            rank = _RANK[kind]
            if rank < before or (rank == before and rank != _AGENT):
                raise InvalidRequest(
                    f"malformed scope {path!r}: {kind!r} cannot follow {segments[-1][0]!r}; "
                    f"kinds keep the order {', '.join(KINDS)} and only agent may repeat"
                )
        segments.append((kind, name))
    return tuple(segments)


def check_scope(path: object, *, root: bool = True) -> str:
    """``path`` if it is a well-formed scope (``root=False``: and not the root), else
    InvalidRequest."""
    if not isinstance(path, str):
        raise InvalidRequest(f"a scope must be a string, got {type(path).__name__}")
    _segments(path)
    if not root and path == ROOT:
        raise InvalidRequest("the root scope '' is the total budget: use set_total_budget")
    return path


def scope_order(path: str) -> tuple[str, ...]:
    """Sort key for paths: parents before their children, siblings by name."""
    return tuple(path.split("/")) if path else ()


def in_scope(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or under it (``workspace:alpha`` is not under
    ``workspace:al``)."""
    return not prefix or path == prefix or path.startswith(prefix + "/")


@functools.lru_cache(maxsize=4_096)
def agent_path(scope: str, agent_id: str) -> str:
    """Where an agent placed at ``scope`` spends: ``<scope>/agent:<id>``.

    An agent whose id cannot be a segment (it has ``/`` or ``:``, allowed before scopes
    existed) can only sit at the root and has no path of its own: ``""``."""
    if "/" in agent_id or ":" in agent_id:
        if scope:
            check_segment_name(agent_id, "agent id")  # raises
        return ROOT
    path = f"{scope}/agent:{agent_id}" if scope else f"agent:{agent_id}"
    _segments(path)
    return path


@functools.lru_cache(maxsize=4_096)
def workflow_path(path: str, workflow: str) -> str:
    """``path`` with ``workflow:<name>`` put before its first agent segment."""
    check_segment_name(workflow, "workflow")
    parts = path.split("/") if path else []
    at = next((i for i, part in enumerate(parts) if part.startswith("agent:")), len(parts))
    parts.insert(at, f"workflow:{workflow}")
    joined = "/".join(parts)
    _segments(joined)
    return joined


def _prefixes(path: str) -> Iterable[str]:
    parts = path.split("/") if path else []
    return ("/".join(parts[: n + 1]) for n in range(len(parts)))


@functools.lru_cache(maxsize=16_384)
def charged_scopes(path: str, workflow: str | None = None) -> tuple[str, ...]:
    """Every scope but the root that a spend at agent path ``path`` charges, in the order
    they are checked: outermost (fewest segments) first; on a tie, the workflow's path
    before the plain agent path.

    With a workflow, the spend charges the prefixes of ``workflow_path(path, workflow)``
    and those of the plain ``path`` too, so naming a workflow never escapes the agent's
    own budget."""
    plain = list(_prefixes(path))
    if workflow is None:
        return tuple(plain)
    routed = list(_prefixes(workflow_path(path, workflow)))
    ranked = {p: (p.count("/"), 0) for p in routed}
    for p in plain:
        ranked.setdefault(p, (p.count("/"), 1))
    return tuple(sorted(ranked, key=ranked.__getitem__))
