"""Alembic migrations of the ledger: a ledger made by an older escrowkit upgrades in place
when a :class:`~escrowkit.ledger.Store` opens it (see :mod:`escrowkit.ledger.migrate`)."""
