"""Opening from settings says which setting to change: a deployment made by another key
than the default one, a ledger started in another mode or for another deployment, a
manifest that is not there (another folder's), amounts a token cannot hold."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from escrowkit.config import bootstrap
from escrowkit.config.settings import AgentSettings, Settings
from escrowkit.contracts.stack import Stack, deploy_stack
from escrowkit.errors import ConfigurationError, NotFound

if TYPE_CHECKING:
    from escrowkit.evm.chain import Chain


def settings_in(folder: Path, **values: object) -> Settings:
    base = Settings(
        deployments=folder / "deployments",
        database=f"sqlite:///{folder / 'ledger.db'}",
        total_budget="1000",
    )
    return replace(base, **values)  # type: ignore[arg-type]


def deployed(chain: Chain, settings: Settings, owner: str | None = None) -> Stack:
    return deploy_stack(chain, owner=owner, deployments=bootstrap.manifest(settings, chain))


def test_a_deployment_by_another_key_is_not_paid_by_the_default_one(
    chain: Chain, tmp_path: Path
) -> None:
    settings = settings_in(tmp_path)
    deployer = chain.accounts[3]
    stack = deployed(chain, settings, owner=deployer)
    with pytest.raises(ConfigurationError) as caught:
        bootstrap.open_coordinator(settings, chain, stack)
    message = str(caught.value)
    assert f"made by {deployer}" in message and chain.accounts[0] in message
    assert "coordinator.treasury" in message
    assert bootstrap.ledger_is_new(settings)  # nothing was written
    chosen = replace(settings, treasury=deployer)
    with bootstrap.open_coordinator(chosen, chain, stack) as coordinator:
        assert coordinator.treasury == deployer


def test_switching_mode_on_a_ledger_names_the_setting(chain: Chain, tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    stack = deployed(chain, settings)
    bootstrap.open_coordinator(settings, chain, stack).close()
    with pytest.raises(ConfigurationError) as caught:
        bootstrap.open_coordinator(replace(settings, mode="pool"), chain, stack)
    message = str(caught.value)
    assert "was started in treasury mode" in message
    assert "coordinator.mode (or ESCROWKIT_MODE) is 'pool'" in message
    assert "coordinator.database" in message


def test_a_ledger_of_another_deployment_names_the_settings(chain: Chain, tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    first = deployed(chain, settings)
    bootstrap.open_coordinator(settings, chain, first).close()
    other = deploy_stack(chain, force=True)
    with pytest.raises(ConfigurationError) as caught:
        bootstrap.open_coordinator(settings, chain, other)
    message = str(caught.value)
    assert f"belongs to the Escrow {first.escrow.address}" in message
    assert "coordinator.database" in message and "network.deployments" in message


def test_a_missing_manifest_suggests_config(chain: Chain, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as caught:
        bootstrap.open_stack(settings_in(tmp_path), chain)
    message = str(caught.value)
    assert "run `escrowkit deploy` first" in message
    assert "--config (or ESCROWKIT_CONFIG)" in message and "no settings file here" in message


def test_amounts_the_token_cannot_hold_name_the_setting(chain: Chain, tmp_path: Path) -> None:
    settings = settings_in(tmp_path, total_budget="1000.1234567")
    stack = deployed(chain, settings)
    with pytest.raises(ConfigurationError, match="more than 6 decimal places") as caught:
        bootstrap.open_coordinator(settings, chain, stack)
    assert str(caught.value).startswith("coordinator.total_budget (or ESCROWKIT_TOTAL_BUDGET): ")
    with pytest.raises(ConfigurationError, match=r"TOTAL_BUDGET\) must be more than 0"):
        bootstrap.open_coordinator(replace(settings, total_budget="0"), chain, stack)
    agent = AgentSettings("a", chain.accounts[1], "0", "10", "1")
    with pytest.raises(ConfigurationError) as refused:
        bootstrap.open_coordinator(
            replace(settings, total_budget="10", agents=(agent,)), chain, stack
        )
    assert str(refused.value) == "agents 'a': spending_limit = '0': a limit must be more than 0"
    huge = replace(agent, spending_limit="1" + "0" * 30)
    with pytest.raises(ConfigurationError, match="more than any escrow can hold"):
        huge.to_config(6)
