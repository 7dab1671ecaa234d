"""Bad input over HTTP, by a property-based fuzzer of the OpenAPI document (schemathesis)
against a live service on a loopback port: no 500, no response that breaks the document,
and no change of state from a refused request. In the slow suite."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from service_helpers import AGENT_A, AGENT_B, LiveServer, U, bearer

from escrowkit.coordinator import AgentConfig, BudgetCoordinator, NoopExecutor
from escrowkit.service.app import create_app

pytestmark = pytest.mark.slow

#: Examples per operation and mode.
EXAMPLES = 60
#: What every response is held to: no 500; the status, content type, headers and body
#: the document gives for it; and data that breaks the document refused. (Not
#: "positive_data_acceptance": the document gives shapes, the coordinator the rules, so
#: a schema-valid spend of 0 or to "" is rightly a 400.)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]

#: Operations an agent key is for (everything else is fuzzed with an admin key).
AGENT_PATHS = {"/v1/spends", "/v1/me", "/v1/escrows/{escrow_id}/settle",
               "/v1/escrows/{escrow_id}/cancel", "/v1/spends/{reservation_id}"}  # fmt: skip


@dataclass
class Live:
    url: str
    coordinator: BudgetCoordinator
    agent: str
    admin: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    coordinator = BudgetCoordinator(
        None, total_budget=1_000 * U, store=f"sqlite:///{folder / 'ledger.db'}",
        executor=NoopExecutor(),
    )  # fmt: skip
    coordinator.register_agent(AgentConfig("research", "R", AGENT_A, 100 * U, 300 * U, 50 * U))
    coordinator.register_agent(AgentConfig("data", "D", AGENT_B, 100 * U, 300 * U, 50 * U))
    agent = coordinator.api_keys.create("agent", agent_id="research")[1]
    admin = coordinator.api_keys.create("admin", name="fuzz")[1]
    with LiveServer(create_app(coordinator)) as url:
        yield Live(url, coordinator, agent, admin)
    coordinator.close()


def state(coordinator: BudgetCoordinator) -> Any:
    """Everything a request could change."""
    report = coordinator.report()
    return (
        report,
        coordinator.agents,
        [(k.id, k.revoked_at) for k in coordinator.api_keys.list()],
        coordinator.outbox.head(),
        len(coordinator.audit_log()),
        [r.status for r in coordinator.reservations()],
    )


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_500_no_broken_response_no_change_from_a_refusal(live: Live, mode: str) -> None:
    """Every operation but the event stream (which never ends), with data that fits the
    document (positive) and data that does not (negative)."""
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path != "/v1/events":
            fuzz(live, operation, GenerationMode(mode))


def fuzz(live: Live, operation: Any, mode: GenerationMode) -> None:
    key = live.agent if operation.path in AGENT_PATHS else live.admin

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        before = state(live.coordinator)
        response = case.call(headers=bearer(key))
        assert response.status_code < 500, (case.operation.label, response.text)
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            after = state(live.coordinator)
            assert after == before, (case.operation.label, response.status_code)

    try:
        one()
    except Unsatisfiable:
        # No input of this operation can break the document (it takes none): nothing to do.
        assert mode is GenerationMode.NEGATIVE, operation.label
