"""Deploy contracts and remember where they are.

:func:`deploy` sends a contract's creation transaction from the committed artifact (no
compiler needed) and returns a web3 contract object. A :class:`Deployments` manifest per
chain id (``deployments/<chain_id>.json``) records name -> address, transaction, block,
artifact hash and constructor arguments; deploying again with the same artifact and
arguments reuses the recorded contract unless ``force=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escrowkit.build.compiler import Artifact, load_artifact
from escrowkit.core.errors import ChainError, ConfigurationError

if TYPE_CHECKING:
    from web3.contract import Contract

    from escrowkit.evm.chain import Chain

__all__ = ["Deployment", "Deployments", "deploy"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deployment:
    """One manifest entry."""

    name: str
    address: str
    tx_hash: str
    block: int
    artifact_hash: str
    args_hash: str


class Deployments:
    """The manifest of one chain: JSON on disk, or in memory for a throwaway chain.

    ``path=None`` keeps it in memory (the default for an embedded chain, which dies with
    the process); otherwise ``deployments/<chain_id>.json`` under ``root``.
    """

    def __init__(self, chain_id: int, path: str | os.PathLike[str] | None = None) -> None:
        self.chain_id = chain_id
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._entries: dict[str, Deployment] = {}
        if self.path is not None and self.path.exists():
            data = json.loads(self.path.read_text())
            if int(data.get("chainId", chain_id)) != chain_id:
                raise ConfigurationError(
                    f"{self.path} is for chain {data['chainId']}, not {chain_id}"
                )
            for name, entry in data.get("contracts", {}).items():
                self._entries[name] = Deployment(name=name, **entry)

    @classmethod
    def for_chain(cls, chain: Chain, root: str | os.PathLike[str] = "deployments") -> Deployments:
        """The manifest for ``chain``: in memory when embedded, else ``root/<chain_id>.json``."""
        if chain.backend == "embedded":
            return cls(chain.chain_id)
        return cls(chain.chain_id, Path(root) / f"{chain.chain_id}.json")

    def get(self, name: str) -> Deployment | None:
        return self._entries.get(name)

    def __iter__(self) -> Iterator[Deployment]:
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def record(self, entry: Deployment) -> None:
        with self._lock:
            self._entries[entry.name] = entry
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "chainId": self.chain_id,
            "contracts": {
                name: {k: v for k, v in asdict(e).items() if k != "name"}
                for name, e in sorted(self._entries.items())
            },
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".deployments.")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, self.path)


def deploy(
    chain: Chain,
    name: str,
    *args: Any,
    sender: str | None = None,
    artifact: Artifact | None = None,
    deployments: Deployments | None = None,
    label: str | None = None,
    force: bool = False,
) -> Contract:
    """Deploy contract ``name`` with constructor ``args``; return the web3 contract.

    ``artifact`` defaults to the committed one of that name. With a ``deployments``
    manifest, an entry under ``label`` (default ``name``) with the same artifact hash and
    arguments whose code is still on chain is reused instead of deployed again.
    """
    artifact = artifact or load_artifact(name)
    if artifact.bytecode in ("", "0x"):
        raise ConfigurationError(f"{name} has no bytecode (an interface or abstract contract?)")
    sender = sender or _default_sender(chain)
    key = label or name
    args_hash = _args_hash(args)
    if deployments is not None and not force:
        entry = deployments.get(key)
        if (
            entry is not None
            and entry.artifact_hash == artifact.hash
            and entry.args_hash == args_hash
            and _has_code(chain, entry.address)
        ):
            logger.info("reusing %s at %s", key, entry.address)
            return chain.contract(entry.address, artifact.abi)
    factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = chain.transact(factory.constructor(*args), sender=sender, context=f"deploy {name}")
    address = receipt["contractAddress"]
    if address is None:
        raise ChainError(f"deploying {name} produced no contract address")
    logger.info("deployed %s at %s (gas %s)", key, address, receipt["gasUsed"])
    if deployments is not None:
        deployments.record(
            Deployment(
                name=key,
                address=str(address),
                tx_hash=receipt["transactionHash"].to_0x_hex(),
                block=int(receipt["blockNumber"]),
                artifact_hash=artifact.hash,
                args_hash=args_hash,
            )
        )
    return chain.contract(address, artifact.abi)


def _default_sender(chain: Chain) -> str:
    if not chain.accounts:
        raise ConfigurationError("this chain has no signing account; pass sender= or an account")
    return chain.accounts[0]


def _has_code(chain: Chain, address: str) -> bool:
    return len(chain.w3.eth.get_code(address)) > 0  # type: ignore[arg-type]


def _args_hash(args: Sequence[Any]) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, bytes):
            return "0x" + value.hex()
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    blob = json.dumps([plain(a) for a in args], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
