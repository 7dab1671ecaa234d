"""Benchmarks for the targets of DESIGN.md section 7 (never timed tests).

Each module runs on its own: ``python -m benchmarks.gas`` prints the gas figures beside
their targets; ``benchmarks/gas.json`` is the committed gas snapshot that
``tests/contracts/test_gas.py`` holds the contracts to.
"""

import logging

# The benchmarks' agents set requires_approval to their spending limit on purpose (no
# spend waits for approval), which register_agent logs as a probable mistake, once per
# agent; the figures, not those lines, are what a benchmark prints.
logging.getLogger("escrowkit.coordinator.configuration").setLevel(logging.ERROR)
