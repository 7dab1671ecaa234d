"""What grows in an automining anvil: the number of blocks, or the state they hold?

The long run (:mod:`benchmarks.longrun`) mines one block per spend, and anvil's CPU per
spend grows with it. This separates the two causes. On a fresh anvil (started as
``Chain.anvil()`` starts it, ``--plain`` without its options, ``--anvil-arg`` added):

- ``blocks``: mine N empty blocks (``anvil_mine``, in chunks of ``--chunk``, anvil's CPU
  per block printed for each chunk), no state added by us;
- ``state``: N createAndFund escrows in blocks of 300 (automine off meanwhile), so the
  state a long run ends with, in few blocks;

and before and after it, time each JSON-RPC method a spend calls (counted at the HTTP
layer: estimate on "latest", send, receipt, head; and the rarer fee and nonce reads) plus
a send that is mined alone and an empty block. Wall time per call, and anvil's CPU from
/proc/<pid>/stat.

    python -m benchmarks.anvil_growth blocks|state [--n 10000] [--chunk 1000] [--calls 200]
                                      [--plain] [--anvil-arg ARG ...]
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections.abc import Callable
from typing import Any

from benchmarks.longrun import _cpu_of
from escrowkit.contracts.stack import Stack, deploy_stack
from escrowkit.core.units import MAX_UINT256
from escrowkit.evm.chain import Chain

__all__ = ["main"]

USDC = 10**6
PER_BLOCK = 300  # createAndFund per block when filling state (anvil's 30 M gas holds ~320)


class Probe:
    def __init__(self, chain: Chain, stack: Stack, calls: int) -> None:
        self.chain, self.stack, self.calls = chain, stack, calls
        self.owner, self.provider = chain.accounts[0], chain.accounts[9]
        self.signer = chain._signer(self.owner)
        assert chain._process is not None
        self.pid = chain._process.pid

    def rpc(self, method: str, params: list[Any]) -> Any:
        return self.chain.transport.rpc(method, params)

    def cpu(self) -> float:
        return _cpu_of(self.pid)

    def create_and_fund(self, nonce: int) -> dict[str, Any]:
        chain = self.chain
        fn = chain.prepare(
            self.stack.escrow.contract,
            "createAndFund",
            secrets.token_bytes(32),
            self.provider,
            USDC,
            chain.now(60) + 86_400,
            3_600,
            b"\0" * 32,
        )
        return {**chain._build_transaction(fn, self.owner, 0, 300_000, "probe"), "nonce": nonce}

    def send(self, nonce: int) -> str:
        tx = self.create_and_fund(nonce)
        return self.chain.transport.sign_and_send(self.signer, tx, context="probe")

    def nonce(self) -> int:
        return int(self.rpc("eth_getTransactionCount", [self.owner, "pending"]), 16)

    def timed(self, label: str, fn: Callable[[], object], calls: int | None = None) -> None:
        calls = calls or self.calls
        cpu, wall = self.cpu(), time.perf_counter()
        for _ in range(calls):
            fn()
        cpu, wall = self.cpu() - cpu, time.perf_counter() - wall
        print(
            f"  {label:44s} {1000 * wall / calls:8.3f} ms wall "
            f"{1000 * cpu / calls:8.3f} ms anvil CPU",
            flush=True,
        )

    def methods(self, title: str) -> None:
        head = int(self.rpc("eth_blockNumber", []), 16)
        print(f"{title} (head {head}):", flush=True)
        tx = self.create_and_fund(0)
        call = {k: tx[k] for k in ("from", "to", "data")}
        owner = self.owner
        self.timed("eth_blockNumber", lambda: self.rpc("eth_blockNumber", []))
        self.timed(
            'eth_estimateGas "latest" (createAndFund)',
            lambda: self.rpc("eth_estimateGas", [call, "latest"]),
        )
        self.timed(
            'eth_getTransactionCount "pending"',
            lambda: self.rpc("eth_getTransactionCount", [owner, "pending"]),
        )
        self.timed(
            'eth_getBlockByNumber "latest"',
            lambda: self.rpc("eth_getBlockByNumber", ["latest", False]),
        )
        self.timed("eth_maxPriorityFeePerGas", lambda: self.rpc("eth_maxPriorityFeePerGas", []))
        mined = self.send(self.nonce())
        while self.rpc("eth_getTransactionReceipt", [mined]) is None:
            time.sleep(0.001)
        self.timed(
            "eth_getTransactionReceipt (mined)",
            lambda: self.rpc("eth_getTransactionReceipt", [mined]),
        )
        self.timed(
            "eth_getTransactionReceipt (not mined)",
            lambda: self.rpc("eth_getTransactionReceipt", ["0x" + secrets.token_hex(32)]),
        )
        escrow = self.stack.escrow.address
        self.timed(
            "eth_getLogs (the escrow, last 2 blocks)",
            lambda: self.rpc(
                "eth_getLogs",
                [{"fromBlock": hex(head - 1), "toBlock": "latest", "address": escrow}],
            ),
        )
        nonce = [self.nonce()]

        def send_mined() -> None:
            tx_hash = self.send(nonce[0])
            nonce[0] += 1
            while self.rpc("eth_getTransactionReceipt", [tx_hash]) is None:
                pass

        self.timed("eth_sendRawTransaction, mined alone", send_mined)
        self.timed("evm_mine (an empty block)", lambda: self.rpc("evm_mine", []))

    def empty_blocks(self, n: int, chunk: int) -> None:
        cpu, wall = self.cpu(), time.perf_counter()
        for k in range(0, n, chunk):
            count = min(chunk, n - k)
            before = self.cpu()
            self.rpc("anvil_mine", [hex(count)])
            print(
                f"  blocks {k:6d}-{k + count - 1:6d}: "
                f"{1000 * (self.cpu() - before) / count:6.2f} ms anvil CPU per empty block",
                flush=True,
            )
        wall, cpu = time.perf_counter() - wall, self.cpu() - cpu
        print(f"{n} empty blocks: {wall:.1f} s, anvil {cpu:.1f} s")

    def escrows(self, n: int) -> None:
        cpu, wall = self.cpu(), time.perf_counter()
        self.rpc("evm_setAutomine", [False])
        start = self.nonce()
        for i in range(n):
            self.send(start + i)
            if (i + 1) % PER_BLOCK == 0:
                self.rpc("evm_mine", [])
        while int(self.rpc("eth_getTransactionCount", [self.owner, "latest"]), 16) < start + n:
            self.rpc("evm_mine", [])
        self.rpc("evm_setAutomine", [True])
        print(
            f"{n} escrows in {n // PER_BLOCK + 1} blocks: {time.perf_counter() - wall:.1f} s, "
            f"anvil {self.cpu() - cpu:.1f} s"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("blocks", "state"))
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--calls", type=int, default=200, help="calls per method timed")
    parser.add_argument("--plain", action="store_true", help="without Chain.anvil()'s options")
    parser.add_argument("--anvil-arg", action="append", default=[], help="an extra anvil option")
    args = parser.parse_args(argv)
    with Chain.anvil(extra_args=tuple(args.anvil_arg), tuned=not args.plain) as chain:
        owner = chain.accounts[0]
        stack = deploy_stack(chain)
        stack.token.mint(owner, 10**18, sender=owner)
        stack.token.approve(stack.escrow.address, MAX_UINT256, sender=owner)
        probe = Probe(chain, stack, args.calls)
        info = probe.rpc("anvil_nodeInfo", [])
        print(f"anvil hardfork {info.get('hardFork')}, options {args.anvil_arg or '-'}")
        probe.methods("fresh")
        if args.mode == "blocks":
            probe.empty_blocks(args.n, args.chunk)
            probe.methods(f"after {args.n} empty blocks")
        else:
            probe.escrows(args.n)
            probe.methods(f"after {args.n} escrows in few blocks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
