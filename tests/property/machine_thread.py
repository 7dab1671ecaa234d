"""Run a hypothesis state machine in a fresh thread.

Why a thread: CPython 3.11 maps and unmaps a frame-stack chunk each time a call crosses a
chunk boundary and returns. Under pytest plus hypothesis, py-evm's deep calls sit on such
a boundary and a run spends half its time in mmap/munmap (measured on the escrow machine:
47 s, 22 s of it in the kernel; on the pool machine 7 s of 33 s in the kernel); a thread
starts with an empty frame stack (22 s, 0.3 s kernel).
"""

from __future__ import annotations

import threading
from typing import Any

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test


def run_machine(machine: Any, config: settings) -> None:
    """``run_state_machine_as_test(machine, settings=config)`` in a new thread; a failure
    is raised again in the caller's thread."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            run_state_machine_as_test(machine, settings=config)
        except BaseException as exc:  # re-raised in the test's own thread below
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"{machine.__name__}-thread")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
