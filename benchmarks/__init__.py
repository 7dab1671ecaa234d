"""Benchmarks for the targets of DESIGN.md section 7 (never timed tests).

Each module runs on its own: ``python -m benchmarks.gas`` prints the gas figures beside
their targets; ``benchmarks/gas.json`` is the committed gas snapshot that
``tests/contracts/test_gas.py`` holds the contracts to.
"""
