"""API keys: who may act through the service, and as whom.

A key is ``ek_<role>_`` + 32 random bytes (URL-safe base64, no padding), shown once when
it is made. The ledger keeps only its SHA-256 hash, beside a public id (``key_…``), the
role, the agent (for agent keys), a name and the created and revoked times, so a copy of
the ledger lets nobody act. Checking a key reads the ledger each time, so a revocation
holds at once in every process on it. Making and revoking keys is audited.

Roles (DESIGN.md section 9): an ``agent`` key acts only as its agent; an ``approver``
key reads everything and approves or rejects; an ``admin`` key does everything.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence

from escrowkit.core.errors import InvalidRequest, NotFound
from escrowkit.core.ids import new_id
from escrowkit.core.inputs import validate_name
from escrowkit.ledger import ApiKey, Store

__all__ = ["KEY_PREFIX", "ROLES", "ApiKey", "ApiKeys", "key_digest"]

logger = logging.getLogger(__name__)

ROLES = ("agent", "approver", "admin")
KEY_PREFIX = "ek_"
#: No key this module makes is longer; anything longer is refused before it is hashed.
_MAX_KEY = 64


def key_digest(secret: str) -> str:
    """The SHA-256 hex digest the ledger stores for ``secret``."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    """The API keys of one ledger (a store is all they need: no chain).

    Checking a key is a read on every request of the service. On a database that other
    connections can share (a SQLite file, PostgreSQL) it goes through a store of its own,
    so that it never waits behind the coordinator's group commits for the store's lock
    (only the database's own isolation applies: a revocation is seen by the next read)."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._reader: Store | None = None
        self._reader_lock = threading.Lock()

    def _lookups(self) -> Store:
        if self.store.url in ("sqlite://", "sqlite:///:memory:"):
            return self.store  # one private database: only its own connection sees it
        with self._reader_lock:
            if self._reader is None:
                self._reader = Store(self.store.url)
            return self._reader

    def close(self) -> None:
        """Close the lookups' own store, if one was opened."""
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def create(
        self, role: str, *, agent_id: str | None = None, name: str | None = None
    ) -> tuple[ApiKey, str]:
        """Make a key; returns its record and the key itself, which is never stored and
        cannot be shown again. An agent key needs a registered ``agent_id``; approver and
        admin keys take none."""
        if role not in ROLES:
            raise InvalidRequest(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if (role == "agent") != (agent_id is not None):
            raise InvalidRequest(
                "an agent key needs agent_id" if role == "agent" else f"{role} keys take no agent"
            )
        if name is not None:
            validate_name(name, "key name")
        secret = f"{KEY_PREFIX}{role}_{secrets.token_urlsafe(32)}"
        now = self.clock()
        key = ApiKey(new_id("key"), role, agent_id, name, now)
        with self.store.write() as ledger:
            if agent_id is not None:
                known = ledger.agents()
                if agent_id not in known:
                    raise NotFound(
                        f"unknown agent {agent_id!r}; known: {', '.join(known) or 'none'}"
                    )
            ledger.insert_key(key, key_digest(secret))
            ledger.audit(
                "api_key_created", now, agent_id=agent_id, key_id=key.id, role=role, name=name
            )
        logger.info("API key %s created (%s)", key.id, role)
        return key, secret

    def list(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included."""
        with self.store.read() as ledger:
            return ledger.keys()

    def get(self, key_id: str) -> ApiKey:
        with self.store.read() as ledger:
            key = ledger.key(key_id) if isinstance(key_id, str) else None
        if key is None:
            raise NotFound(f"no API key {key_id!r}")
        return key

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key: it fails from now on, in every process. Revoking a revoked key
        changes nothing."""
        now = self.clock()
        with self.store.write() as ledger:
            key = ledger.key(key_id) if isinstance(key_id, str) else None
            if key is None:
                raise NotFound(f"no API key {key_id!r}")
            if ledger.revoke_key(key.id, now):
                ledger.audit(
                    "api_key_revoked", now, agent_id=key.agent_id, key_id=key.id, role=key.role
                )
                logger.info("API key %s revoked", key.id)
            revoked = ledger.key(key.id)
        assert revoked is not None
        return revoked

    def authenticate(self, secret: object) -> ApiKey | None:
        """The live key that ``secret`` is, or None (unknown, malformed or revoked). The
        stored hash is compared in constant time."""
        return self.authenticate_many([secret])[0]

    def authenticate_many(self, secrets: Sequence[object]) -> builtins.list[ApiKey | None]:
        """:meth:`authenticate` for each of ``secrets``, in order, with one read of the
        ledger (the service checks the keys of concurrent requests together)."""
        digests = [_digest_of(secret) for secret in secrets]
        wanted = [digest for digest in digests if digest is not None]
        found: dict[str, tuple[ApiKey, str]] = {}
        if wanted:
            with self._lookups().read() as ledger:
                found = ledger.keys_by_hash(wanted)
        return [None if d is None else _live(found.get(d), d) for d in digests]


def _digest_of(secret: object) -> str | None:
    """The digest to look ``secret`` up by, or None when it cannot be a key."""
    if (
        not isinstance(secret, str)
        or not secret.startswith(KEY_PREFIX)
        or len(secret) > _MAX_KEY
        or not secret.isascii()
    ):
        return None
    return key_digest(secret)


def _live(found: tuple[ApiKey, str] | None, digest: str) -> ApiKey | None:
    """The key a lookup found, if its stored hash is ``digest`` and it is not revoked."""
    if found is None:
        return None
    key, stored = found
    if not hmac.compare_digest(stored, digest) or key.revoked:
        return None
    return key
