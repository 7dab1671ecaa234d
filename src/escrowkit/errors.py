"""The exception tree (public path): ``from escrowkit.errors import EscrowKitError, ...``.

Every error escrowkit raises is an :class:`EscrowKitError`. A contract revert is a
subclass of :class:`ContractRevert` named after the Solidity error, with its decoded
arguments, whichever backend produced it; those classes are made on first use from the
committed artifacts' ABIs, so ``errors.InvalidState`` works without being listed here.
"""

from __future__ import annotations

from escrowkit.core.errors import *  # noqa: F403
from escrowkit.core.errors import __all__ as _core_all
from escrowkit.core.errors import revert_class
from escrowkit.core.urls import redact_secrets

__all__ = [*_core_all, "redact_secrets"]


def __getattr__(name: str) -> type:
    # ``errors.InvalidState`` etc.: custom error classes built from the artifacts' ABIs.
    if name.startswith("__"):
        raise AttributeError(name)
    return revert_class(name)
