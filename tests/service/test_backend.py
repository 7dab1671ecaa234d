"""The service's way to the coordinator (service/backend.py): the key checks of concurrent
requests share one read of the ledger, yet each request's key is read after it came (a
revocation holds at once), a failed read fails only its own checks, and a check whose
request went away does not disturb the others. And the heap freeze of a service process
(service/app.py)."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_helpers import Keys

from escrowkit.coordinator import ApiKey, BudgetCoordinator
from escrowkit.service import runner
from escrowkit.service.app import create_app
from escrowkit.service.backend import Backend


class Reads:
    """``authenticate_many`` of a coordinator's keys, recorded; ``gate`` (when set) holds
    the first read until it is opened, so that checks pile up behind it."""

    def __init__(self, coordinator: BudgetCoordinator, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[list[object]] = []
        self.gate: threading.Event | None = None
        self.fail_next = False
        self.started = threading.Event()
        real = coordinator.api_keys.authenticate_many

        def recorded(secrets: list[object]) -> list[ApiKey | None]:
            self.batches.append(list(secrets))
            self.started.set()
            if self.gate is not None:
                gate, self.gate = self.gate, None
                assert gate.wait(10)
            if self.fail_next:
                self.fail_next = False
                raise OSError("the ledger's disk went away")
            return real(secrets)

        monkeypatch.setattr(coordinator.api_keys, "authenticate_many", recorded)

    def reset(self) -> None:
        """Forget the reads so far (a test's own lookups of what to expect)."""
        self.batches.clear()
        self.started.clear()


@pytest.fixture
def backend(coordinator: BudgetCoordinator) -> Iterator[Backend]:
    made = Backend(coordinator, threads=4)
    yield made
    made.close()


@pytest.fixture
def reads(coordinator: BudgetCoordinator, monkeypatch: pytest.MonkeyPatch) -> Reads:
    return Reads(coordinator, monkeypatch)


async def _behind_a_held_read(
    backend: Backend, reads: Reads, secrets: list[str]
) -> tuple[asyncio.Task[ApiKey | None], list[asyncio.Task[ApiKey | None]], threading.Event]:
    """A first check whose read is held, then ``secrets`` checked while it is."""
    gate = reads.gate = threading.Event()
    first = asyncio.create_task(backend.authenticate(secrets[0]))
    while not reads.started.is_set():
        await asyncio.sleep(0.005)
    rest = [asyncio.create_task(backend.authenticate(secret)) for secret in secrets[1:]]
    await asyncio.sleep(0.05)  # they all wait now
    return first, rest, gate


def test_concurrent_checks_share_one_read(
    backend: Backend, reads: Reads, keys: Keys, coordinator: BudgetCoordinator
) -> None:
    secrets = [keys.research, keys.data, keys.admin, "ek_agent_nobody", keys.research]
    known = {secret: coordinator.api_keys.authenticate(secret) for secret in secrets}
    reads.reset()  # authenticate reads through authenticate_many too

    async def scenario() -> list[ApiKey | None]:
        first, rest, gate = await _behind_a_held_read(backend, reads, secrets)
        assert len(reads.batches) == 1  # the others wait for the read in progress
        gate.set()
        return [await first, *[await task for task in rest]]

    found = asyncio.run(scenario())
    assert found == [known.get(secret) for secret in secrets]
    assert found[3] is None and found[0] is not None
    assert reads.batches == [secrets[:1], secrets[1:]]


def test_a_key_revoked_before_a_request_fails_it(
    backend: Backend, reads: Reads, keys: Keys, coordinator: BudgetCoordinator
) -> None:
    key = coordinator.api_keys.authenticate(keys.data)
    assert key is not None
    reads.reset()

    async def scenario() -> list[ApiKey | None]:
        before = await backend.authenticate(keys.data)
        coordinator.api_keys.revoke(key.id)
        return [before, await backend.authenticate(keys.data)]

    assert asyncio.run(scenario()) == [key, None]
    assert len(reads.batches) == 2


def test_a_failed_read_fails_only_its_own_checks(
    backend: Backend, reads: Reads, keys: Keys
) -> None:
    async def scenario() -> tuple[list[object], ApiKey | None]:
        reads.fail_next = True
        first, rest, gate = await _behind_a_held_read(backend, reads, [keys.research, keys.data])
        gate.set()
        outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
        return outcomes, await backend.authenticate(keys.admin)

    outcomes, later = asyncio.run(scenario())
    assert isinstance(outcomes[0], OSError)  # the read that failed
    assert isinstance(outcomes[1], ApiKey) and outcomes[1].agent_id == "data"
    assert later is not None and later.role == "admin"


def test_a_check_whose_request_went_away_leaves_the_others(
    backend: Backend, reads: Reads, keys: Keys
) -> None:
    async def scenario() -> list[Any]:
        secrets = [keys.research, keys.data, keys.approver, keys.admin]
        first, rest, gate = await _behind_a_held_read(backend, reads, secrets)
        rest[0].cancel()  # the client of `data` disconnected
        gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    research, data, approver, admin = asyncio.run(scenario())
    assert isinstance(data, asyncio.CancelledError)
    assert [research.agent_id, approver.role, admin.role] == ["research", "approver", "admin"]


def test_checks_from_two_event_loops_each_get_their_own_reads(backend: Backend, keys: Keys) -> None:
    async def check(secret: str) -> str | None:
        found = await backend.authenticate(secret)
        return None if found is None else found.role

    results: list[str | None] = []

    def other_loop() -> None:
        results.append(asyncio.run(check(keys.approver)))

    thread = threading.Thread(target=other_loop)
    thread.start()
    results.append(asyncio.run(check(keys.admin)))
    thread.join(10)
    assert sorted(map(str, results)) == ["admin", "approver"]


def test_a_service_process_freezes_its_startup_heap(
    coordinator: BudgetCoordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gc.get_freeze_count() == 0
    app = create_app(coordinator, freeze_heap=True)
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            frozen = gc.get_freeze_count()
            assert client.get("/healthz").status_code == 200
        assert frozen > 10_000  # the libraries' classes and functions, at least
    finally:
        gc.unfreeze()
    with TestClient(create_app(coordinator), base_url="http://127.0.0.1"):
        assert gc.get_freeze_count() == 0  # an app in someone else's process: not unless asked

    made: dict[str, Any] = {}

    def recorded(*args: Any, **kwargs: Any) -> None:
        made.update(kwargs)
        raise SystemExit(0)  # instead of serving

    monkeypatch.setattr("escrowkit.service.app.create_app", recorded)
    with pytest.raises(SystemExit):
        runner.serve(coordinator, host="127.0.0.1", port=0)
    assert made["freeze_heap"] is True
