"""The embedded chain (eth-tester on py-evm): escrow lifecycles per second.

A lifecycle is one ``createAndFund`` and one ``settle`` by the requester, each a mined
transaction whose receipt was read. Two rates, measured in the same run, alternating
rounds so that a drift of the machine's speed hits both alike:

- escrowkit: ``Chain.embedded()`` and the typed ``EscrowClient``;
- raw web3.py on its own ``EthereumTesterProvider`` (a fresh eth-tester with py-evm,
  nothing of escrowkit on the path): ``contract.functions.createAndFund(...).transact()``
  and ``w3.eth.wait_for_transaction_receipt``, the way a web3.py user writes it.

Both run the same committed bytecode (MockUSDC and Escrow) with the same arguments.

    python -m benchmarks.embedded [--lifecycles N] [--rounds N] [--profile | --callgrind]

Instructions per lifecycle, whatever the machine's load (divide by N):

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*qsort*' \
        .venv/bin/python -m benchmarks.embedded --callgrind --lifecycles 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TARGET", "TARGET_RATIO", "EmbeddedResult", "run"]

TARGET = 60  # lifecycles per second, DESIGN.md section 7
TARGET_RATIO = 4  # times raw web3.py's rate in the same run
LIFECYCLES = 150
ROUNDS = 3
USDC = 10**6
DEADLINE = 4_102_444_800  # 2100-01-01: far enough for any run
WINDOW = 3_600


@dataclass(frozen=True)
class EmbeddedResult:
    lifecycles: int
    escrowkit_per_second: float
    raw_per_second: float

    @property
    def ratio(self) -> float:
        return self.escrowkit_per_second / self.raw_per_second


def _escrowkit_runner() -> Callable[[int], float]:
    from escrowkit.contracts.stack import deploy_stack
    from escrowkit.core.units import MAX_UINT256
    from escrowkit.evm.chain import Chain

    chain = Chain.embedded()
    owner, provider = chain.accounts[0], chain.accounts[1]
    stack = deploy_stack(chain)
    stack.token.mint(owner, 10**15, sender=owner)
    stack.token.approve(stack.escrow.address, MAX_UINT256, sender=owner)
    escrow = stack.escrow

    def lifecycles(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            eid = escrow.create_and_fund(
                provider, USDC, deadline=DEADLINE, dispute_window=WINDOW, sender=owner
            )
            escrow.settle(eid, sender=owner)
        return time.perf_counter() - start

    return lifecycles


def _raw_runner() -> Callable[[int], float]:
    import secrets

    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import EthereumTesterProvider, Web3

    from escrowkit.build.compiler import load_artifact

    w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend())))
    owner, provider = w3.eth.accounts[0], w3.eth.accounts[1]

    def deploy(name: str, *args: Any) -> Any:
        artifact = load_artifact(name)
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx_hash = factory.constructor(*args).transact({"from": owner})
        address = w3.eth.wait_for_transaction_receipt(tx_hash)["contractAddress"]
        return w3.eth.contract(address=address, abi=artifact.abi)

    token = deploy("MockUSDC")
    escrow = deploy("Escrow", token.address, 0, "0x" + "00" * 20)
    for call in (
        token.functions.mint(owner, 10**15),
        token.functions.approve(escrow.address, 2**256 - 1),
    ):
        w3.eth.wait_for_transaction_receipt(call.transact({"from": owner}))
    metadata = b"\0" * 32

    def lifecycles(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            salt = secrets.token_bytes(32)
            create = escrow.functions.createAndFund(
                salt, provider, USDC, DEADLINE, WINDOW, metadata
            ).transact({"from": owner})
            w3.eth.wait_for_transaction_receipt(create)
            eid = w3.keccak(bytes(12) + bytes.fromhex(owner[2:]) + salt)
            settle = escrow.functions.settle(eid).transact({"from": owner})
            w3.eth.wait_for_transaction_receipt(settle)
        return time.perf_counter() - start

    return lifecycles


def run(lifecycles: int = LIFECYCLES, rounds: int = ROUNDS) -> EmbeddedResult:
    """Best-of-``rounds`` rates of ``lifecycles`` lifecycles each, rounds alternating."""
    ours, raw = _escrowkit_runner(), _raw_runner()
    ours(5), raw(5)  # warm up: imports, caches, the first escrow of the provider
    ours_s: list[float] = []
    raw_s: list[float] = []
    for _ in range(rounds):
        ours_s.append(ours(lifecycles))
        raw_s.append(raw(max(lifecycles // 4, 10)) * lifecycles / max(lifecycles // 4, 10))
    return EmbeddedResult(
        lifecycles,
        lifecycles / statistics.median(ours_s),
        lifecycles / statistics.median(raw_s),
    )


def _inside_qsort(lifecycles: Callable[[int], float], n: int) -> float:
    """``lifecycles(n)`` called from libc's qsort (through a ctypes comparator), so that
    callgrind's ``--toggle-collect`` counts those instructions and none of the startup."""
    import ctypes

    libc = ctypes.CDLL(None)
    compare_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    seconds: list[float] = []

    def compare(_a: object, _b: object) -> int:
        if not seconds:
            seconds.append(lifecycles(n))
        return 0

    items = (ctypes.c_int * 2)(1, 2)
    libc.qsort(items, 2, ctypes.sizeof(ctypes.c_int), compare_type(compare))
    return seconds[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", type=int, default=LIFECYCLES)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--profile", action="store_true", help="cProfile escrowkit's side")
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="run --lifecycles of escrowkit's once, inside libc's qsort, for valgrind "
        "--tool=callgrind --collect-atstart=no --toggle-collect='*qsort*' to count",
    )
    args = parser.parse_args(argv)
    if args.callgrind:
        ours = _escrowkit_runner()
        ours(5)
        print(f"{args.lifecycles} lifecycles in {_inside_qsort(ours, args.lifecycles):.2f} s")
        return 0
    if args.profile:
        import cProfile
        import pstats

        ours = _escrowkit_runner()
        ours(5)
        profile = cProfile.Profile()
        profile.runcall(ours, args.lifecycles)
        pstats.Stats(profile).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(
            int(os.environ.get("N", "40"))
        )
        return 0
    from benchmarks.__main__ import machine_loop_s

    loop_before = machine_loop_s()
    result = run(args.lifecycles, args.rounds)
    print(
        f"embedded lifecycles/s: escrowkit {result.escrowkit_per_second:.1f} "
        f"(target >= {TARGET}), raw web3.py on EthereumTesterProvider "
        f"{result.raw_per_second:.1f}: {result.ratio:.1f}x (target >= {TARGET_RATIO}x); "
        f"10M-add Python loop {loop_before:.2f} s before, {machine_loop_s():.2f} s after"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
