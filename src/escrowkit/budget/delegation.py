"""Delegation, pure: what a child agent spawned by a parent may be given.

A child sits under its parent (its scope is the parent's path), so each of its spends
also charges the parent's scope. Its limits can only narrow the parent's: per
transaction, hourly, daily and the approval threshold at most the parent's, categories
and providers subsets of the parent's lists. ``None`` for the hourly limit, categories
or providers inherits the parent's when spawning (:func:`inherit`); a child registered
directly must state them (:func:`check_narrower`).
"""

from __future__ import annotations

from dataclasses import replace

from escrowkit.budget.requests import AgentConfig
from escrowkit.budget.scopes import check_segment_name
from escrowkit.core.errors import InvalidRequest

__all__ = ["check_narrower", "inherit", "parent_id"]


def parent_id(scope: str) -> str | None:
    """The id of the agent an agent placed at ``scope`` was delegated by (the innermost
    agent segment), or None."""
    last = scope.rsplit("/", 1)[-1]
    return last[len("agent:") :] if last.startswith("agent:") else None


def inherit(parent: AgentConfig, child: AgentConfig) -> AgentConfig:
    """``child`` placed under ``parent``, its ``None`` hourly limit, categories and
    providers taken from the parent. The child's own scope must be empty."""
    if child.scope:
        raise InvalidRequest(
            f"spawn_agent places the child under its parent: leave scope empty, not {child.scope!r}"
        )
    check_segment_name(parent.id, "parent agent id")
    check_segment_name(child.id, "agent id")
    return replace(
        child,
        scope=parent.path,
        hourly_limit=parent.hourly_limit if child.hourly_limit is None else child.hourly_limit,
        categories=parent.categories if child.categories is None else child.categories,
        allowed_providers=(
            parent.allowed_providers if child.allowed_providers is None else child.allowed_providers
        ),
    )


def _wider(parent: int | None, child: int | None) -> bool:
    return parent is not None and (child is None or child > parent)


def check_narrower(parent: AgentConfig, child: AgentConfig) -> None:
    """InvalidRequest naming every limit of ``child`` that is wider than ``parent``'s."""
    if f"agent:{child.id}" in parent.path.split("/"):
        raise InvalidRequest(f"agent {child.id!r} cannot be delegated by its own descendant")
    wider = [
        name
        for name, mine, theirs in (
            ("spending_limit", child.spending_limit, parent.spending_limit),
            ("hourly_limit", child.hourly_limit, parent.hourly_limit),
            ("daily_limit", child.daily_limit, parent.daily_limit),
            ("requires_approval", child.requires_approval, parent.requires_approval),
        )
        if _wider(theirs, mine)
    ]
    for name, mine_list, theirs_list in (
        ("categories", child.categories, parent.categories),
        ("allowed_providers", child.allowed_providers, parent.allowed_providers),
    ):
        if theirs_list is not None and (
            mine_list is None or not set(mine_list) <= set(theirs_list)
        ):
            wider.append(name)
    if wider:
        raise InvalidRequest(
            f"a child's limits can only narrow its parent's: {', '.join(wider)} of "
            f"{child.id!r} would be wider than {parent.id!r}'s (a limit above the parent's, "
            "no limit where the parent has one, or a list that is not a subset)"
        )
