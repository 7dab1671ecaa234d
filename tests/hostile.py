"""The test-only contracts of contracts/test/ (hostile tokens, lenses).

Their artifacts live here, in tests/artifacts/, not in the package: the product neither
ships them nor learns their errors. ``escrowkit compile`` refreshes both sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from escrowkit.build.compiler import Artifact, load_artifact
from escrowkit.contracts.deploy import deploy

if TYPE_CHECKING:
    from web3.contract import Contract

    from escrowkit.evm.chain import Chain

ARTIFACTS = Path(__file__).with_name("artifacts")


def hostile_artifact(name: str) -> Artifact:
    """The committed artifact of a contract under contracts/test/."""
    return load_artifact(name, ARTIFACTS)


def deploy_hostile(chain: Chain, name: str, *args: Any, sender: str) -> Contract:
    """Deploy a contract of contracts/test/ (its errors decode from then on)."""
    return deploy(chain, name, *args, sender=sender, artifact=hostile_artifact(name))
