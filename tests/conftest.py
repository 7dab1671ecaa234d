"""Suite-wide scheduling: the longest tests start first.

With several xdist workers, a long test collected last (the property machines sit near
the end of the alphabet) runs alone while the other workers are idle. Started first, the
long ones overlap with everything else. Order does not matter for correctness: every
chain test runs in its own snapshot.
"""

from __future__ import annotations

import pytest

#: Files whose tests take seconds each (state machines, CLI and script subprocesses).
LONG_FIRST = (
    "tests/property/",
    "tests/integration/test_cli.py",
    "tests/integration/test_cli_scopes.py",
    "tests/integration/test_cli_reads.py",
    "tests/integration/test_readme.py",
    "tests/integration/test_scripts.py",
    "tests/coordinator/test_processes.py",
    "tests/coordinator/test_shared_key.py",
    "tests/integration/test_demo.py",
    "tests/service/test_live.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist") or not config.getoption("numprocesses"):
        return  # one process (make test-fast -x): the collected order fails fastest

    def weight(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return 0 if path.startswith(LONG_FIRST) else 1

    items.sort(key=weight)  # stable: the order within each group is kept
