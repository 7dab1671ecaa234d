"""Ids the ledger hands out: ``res_…`` (reservations), ``apr_…`` (approvals) and the like."""

from __future__ import annotations

import secrets
import time

__all__ = ["new_id"]


def new_id(prefix: str) -> str:
    """``prefix_`` + 32 hex digits: 48 bits of milliseconds, then 80 random bits. Ids in
    time order keep inserts at the right edge of the primary-key index (UUIDv7's idea)."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    return f"{prefix}_{value:032x}"
