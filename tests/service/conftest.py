"""Fixtures for the service in-process: a coordinator on the no-op executor (a SQLite file),
two agents, one key per role, and the app under FastAPI's TestClient (its lifespan runs:
the event hub, webhooks, the MCP transport)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_helpers import AGENT_A, AGENT_B, GatedExecutor, Keys, U

from escrowkit.coordinator import AgentConfig, BudgetCoordinator
from escrowkit.service.app import create_app


@pytest.fixture
def executor() -> Iterator[GatedExecutor]:
    made = GatedExecutor()
    yield made
    made.gate.set()


@pytest.fixture
def coordinator(tmp_path: Path, executor: GatedExecutor) -> Iterator[BudgetCoordinator]:
    made = BudgetCoordinator(
        None,
        total_budget=1_000 * U,
        store=f"sqlite:///{tmp_path / 'ledger.db'}",
        executor=executor,
    )
    made.register_agent(AgentConfig("research", "Research", AGENT_A, 100 * U, 300 * U, 50 * U))
    made.register_agent(AgentConfig("data", "Data", AGENT_B, 200 * U, 500 * U, 100 * U))
    yield made
    made.close()


@pytest.fixture
def keys(coordinator: BudgetCoordinator) -> Keys:
    create = coordinator.api_keys.create
    return Keys(
        research=create("agent", agent_id="research")[1],
        data=create("agent", agent_id="data")[1],
        approver=create("approver", name="ops@example.com")[1],
        admin=create("admin")[1],
    )


@pytest.fixture
def client(coordinator: BudgetCoordinator, keys: Keys) -> Iterator[TestClient]:
    app = create_app(coordinator, events_poll=0.02)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client
