"""API keys in the ledger: only each key's SHA-256 hash is stored, beside its public id,
role, agent, name and times. Every process on the ledger sees a revocation at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from escrowkit.ledger.schema import api_keys_table
from escrowkit.ledger.unit import UnitOfWork

__all__ = ["ApiKey", "KeyRows"]

K = api_keys_table.c
_BY_HASHES = select(api_keys_table).where(K.hash.in_(bindparam("b_hashes", expanding=True)))
_BY_ID = select(api_keys_table).where(K.id == bindparam("b_id"))


@dataclass(frozen=True)
class ApiKey:
    """A key as the ledger has it (never the key itself). ``role`` is ``agent``,
    ``approver`` or ``admin``; ``agent_id`` is set for agent keys only."""

    id: str
    role: str
    agent_id: str | None
    name: str | None
    created_at: float
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def label(self) -> str:
        """Who acts, for the audit log and approvals: the key's name, else ``key:<id>``."""
        return self.name or f"key:{self.id}"

    @classmethod
    def from_row(cls, row: Any) -> ApiKey:
        m = row._mapping
        return cls(m["id"], m["role"], m["agent_id"], m["name"], m["created_at"], m["revoked_at"])


class KeyRows(UnitOfWork):
    """The key table's operations (mixed into :class:`~escrowkit.ledger.Ledger`)."""

    def insert_key(self, key: ApiKey, digest: str) -> None:
        self.conn.execute(
            insert(api_keys_table).values(
                id=key.id,
                hash=digest,
                role=key.role,
                agent_id=key.agent_id,
                name=key.name,
                created_at=key.created_at,
                revoked_at=None,
            )
        )

    def keys_by_hash(self, digests: Sequence[str]) -> dict[str, tuple[ApiKey, str]]:
        """The keys whose hashes are among ``digests``, each with its stored hash (to
        compare in constant time), by that hash; one query."""
        if not digests:
            return {}
        rows = self.conn.execute(_BY_HASHES, {"b_hashes": list(set(digests))})
        return {row.hash: (ApiKey.from_row(row), row.hash) for row in rows}

    def key(self, key_id: str) -> ApiKey | None:
        row = self.conn.execute(_BY_ID, {"b_id": key_id}).first()
        return None if row is None else ApiKey.from_row(row)

    def keys(self) -> list[ApiKey]:
        rows = self.conn.execute(select(api_keys_table).order_by(K.created_at, K.id))
        return [ApiKey.from_row(row) for row in rows]

    def revoke_key(self, key_id: str, now: float) -> bool:
        """Revoke a key that is not revoked yet; True when this call did."""
        result = self.conn.execute(
            update(api_keys_table)
            .where(K.id == key_id, K.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount == 1
