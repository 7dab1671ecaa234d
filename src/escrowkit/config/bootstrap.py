"""Open what the settings name: the chain, the deployed stack, the coordinator.

Opening writes nothing to an existing ledger: what it enforces (the total budget, the
agents and category budgets of the settings file) is compared, and a difference is a
:class:`~escrowkit.errors.ConfigurationError` that names the setting and says how to
change it; :func:`apply_settings` is the explicit, audited way to make the ledger follow
the file. A new ledger is started from the settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from escrowkit.core.errors import ConfigurationError, InvalidRequest, NotFound
from escrowkit.core.units import TokenUnits, parse_units

if TYPE_CHECKING:
    from escrowkit.config.settings import Settings
    from escrowkit.contracts.deploy import Deployments
    from escrowkit.contracts.stack import Stack
    from escrowkit.coordinator import AgentConfig, ApiKeys, BudgetCoordinator
    from escrowkit.evm.chain import Chain

__all__ = [
    "api_keys",
    "apply_settings",
    "differences",
    "ledger_is_new",
    "manifest",
    "open_chain",
    "open_coordinator",
    "open_stack",
    "payer",
    "signer",
]

TOTAL_BUDGET_SETTING = "coordinator.total_budget (or ESCROWKIT_TOTAL_BUDGET)"


def open_chain(settings: Settings, password: str | None = None) -> Chain:
    """Connect to ``rpc_url`` signing with the keystore (or anvil's dev keys locally)."""
    from escrowkit.evm.chain import Chain

    return Chain.connect(settings.rpc_url, account=settings.keystore, password=password)


def manifest(settings: Settings, chain: Chain) -> Deployments:
    """The deployment manifest of ``chain`` (``deployments/<chain id>.json``)."""
    from escrowkit.contracts.deploy import Deployments

    return Deployments(chain.chain_id, settings.deployments / f"{chain.chain_id}.json")


def open_stack(settings: Settings, chain: Chain) -> Stack:
    """The deployed stack recorded in this chain's manifest (run ``deploy`` first)."""
    from escrowkit.contracts.stack import load_stack

    try:
        return load_stack(chain, manifest(settings, chain))
    except NotFound as exc:
        # Most often the manifest is fine and this is the wrong folder.
        read = f"settings from {settings.source}" if settings.source else "no settings file here"
        raise NotFound(
            f"{exc}; or, if it was deployed from another folder, pass that project's "
            f"escrowkit.toml with --config (or ESCROWKIT_CONFIG) ({read})"
        ) from None


def signer(settings: Settings, chain: Chain) -> str:
    """The treasury account: ``treasury`` if set, else the first key the chain holds."""
    if settings.treasury is not None:
        if not chain.can_sign(settings.treasury):
            raise ConfigurationError(
                f"treasury {settings.treasury} is not a key this chain can sign with; "
                "set network.keystore to its keystore file"
            )
        return settings.treasury
    if not chain.accounts:
        raise ConfigurationError(
            f"no signing key for {chain.backend} chain: set network.keystore "
            "(or ESCROWKIT_KEYSTORE) to an eth-account keystore file"
        )
    return chain.accounts[0]


def payer(settings: Settings, chain: Chain, stack: Stack) -> str:
    """:func:`signer`, refused when it is only a guess that disagrees with the deployment:
    with neither ``network.keystore`` nor ``coordinator.treasury`` set, a local chain signs
    with anvil's dev account #0, and a deployment made by another key would then be paid
    for (or operated) by an account nobody chose."""
    chosen = signer(settings, chain)
    if settings.treasury is not None or settings.keystore is not None:
        return chosen
    owner = stack.pool.owner()
    if chosen == owner or stack.pool.is_operator(chosen):
        return chosen
    choose = (
        f"set coordinator.treasury (or ESCROWKIT_TREASURY) to {owner} if it should pay"
        if chain.can_sign(owner)
        else "set network.keystore (or ESCROWKIT_KEYSTORE) to its keystore file"
    )
    raise ConfigurationError(
        f"this deployment was made by {owner} (the BudgetPool's owner), but no key is "
        f"configured and the default is {chosen} (dev account #0): {choose}, or set "
        "coordinator.treasury to the account that should pay"
    )


def ledger_is_new(settings: Settings) -> bool:
    """Whether no coordinator has ever opened the settings' ledger."""
    return _binding(settings) is None


def _binding(settings: Settings) -> str | None:
    """What the settings' ledger is bound to (chain, Escrow, mode), None when it is new."""
    from escrowkit.ledger import Store

    store = Store(settings.database)
    try:
        with store.read() as ledger:
            return ledger.meta().get("binding")
    finally:
        store.close()


def _check_binding(settings: Settings, chain: Chain, stack: Stack, binding: str) -> None:
    """Say which setting to change when the ledger belongs to another mode or deployment
    (the coordinator refuses both; only here are the settings' names known)."""
    chain_id, escrow, mode, *_ = [*binding.split(":"), "", ""]
    ledger = "the ledger at coordinator.database (or ESCROWKIT_DATABASE)"
    if (chain_id, escrow) != (str(chain.chain_id), stack.escrow.address):
        raise ConfigurationError(
            f"{ledger} belongs to the Escrow {escrow} on chain {chain_id}, not to this "
            f"deployment's Escrow {stack.escrow.address} on chain {chain.chain_id}: point "
            "coordinator.database at this deployment's ledger, or network.deployments at "
            "the manifest of the ledger's deployment"
        )
    if mode != settings.mode:
        raise ConfigurationError(
            f"{ledger} was started in {mode} mode and coordinator.mode (or ESCROWKIT_MODE) "
            f"is {settings.mode!r}: a ledger keeps the mode it started with; set the mode "
            f"back to {mode!r}, or point coordinator.database at a new ledger for "
            f"{settings.mode} mode"
        )


@contextlib.contextmanager
def api_keys(settings: Settings) -> Iterator[ApiKeys]:
    """The API keys of the settings' ledger: a store is all they need, no chain."""
    from escrowkit.coordinator import ApiKeys
    from escrowkit.ledger import Store

    store = Store(settings.database)
    try:
        yield ApiKeys(store)
    finally:
        store.close()


def open_coordinator(
    settings: Settings, chain: Chain, stack: Stack | None = None, *, check: bool = True
) -> BudgetCoordinator:
    """A coordinator over the deployed stack and the ledger at ``settings.database``.

    A new ledger gets the settings' total budget, agents and category budgets. An
    existing one is only read, and must agree with the settings (see the module);
    ``check=False`` skips that comparison (for the commands that change the ledger)."""
    from escrowkit.coordinator import BudgetCoordinator

    stack = stack or open_stack(settings, chain)
    binding = _binding(settings)
    new = binding is None
    if binding is not None:
        _check_binding(settings, chain, stack, binding)
    units = stack.token.token_units
    total = _total_budget(settings, units.decimals)
    if new and total is None:
        raise ConfigurationError(
            f"no total budget for a new ledger: set {TOTAL_BUDGET_SETTING} (token units, e.g. 1000)"
        )
    coordinator = BudgetCoordinator(
        stack,
        treasury=payer(settings, chain, stack),
        total_budget=total if new else None,
        mode=settings.mode,
        store=settings.database,
        escrow_ttl=settings.escrow_ttl,
        dispute_window=settings.dispute_window,
        approval_ttl=settings.approval_ttl,
        timezone=settings.timezone,
    )
    try:
        if new:
            apply_settings(settings, coordinator)
        elif check:
            _check(settings, coordinator, total, units)
    except BaseException:
        coordinator.close()
        raise
    return coordinator


def differences(settings: Settings, coordinator: BudgetCoordinator) -> list[str]:
    """What the settings file says that the ledger does not enforce, one line each."""
    units = coordinator.units
    found: list[str] = []
    agents = coordinator.agents
    for config in _agents(settings, units.decimals):
        if agents.get(config.id) != config:
            state = "differs from the ledger's" if config.id in agents else "is not registered"
            found.append(f"agents: {config.id!r} {state}")
    budgets = {name: c.budget for name, c in coordinator.report().by_category.items()}
    for category, amount in _categories(settings, units.decimals).items():
        if budgets.get(category) != amount:
            had = budgets.get(category)
            shown = "no budget" if had is None else units.format(had)
            found.append(
                f"categories.{category} is {units.format(amount)}; the ledger's is {shown}"
            )
    return found


def apply_settings(settings: Settings, coordinator: BudgetCoordinator) -> list[str]:
    """Make the ledger enforce the file's agents and category budgets (each change
    audited; in pool mode an agent's limits are written on-chain). Returns what changed."""
    decimals = coordinator.units.decimals
    changed = differences(settings, coordinator)
    agents = coordinator.agents
    for config in _agents(settings, decimals):
        if agents.get(config.id) != config:
            coordinator.register_agent(config)
    for category, amount in _categories(settings, decimals).items():
        coordinator.set_category_budget(category, amount)
    return changed


def _check(
    settings: Settings, coordinator: BudgetCoordinator, total: int | None, units: TokenUnits
) -> None:
    enforced = coordinator.total_budget
    if total is not None and total != enforced:
        raise ConfigurationError(
            f"{TOTAL_BUDGET_SETTING} is {units.format(total)} but the ledger enforces "
            f"{units.format(enforced)} for every process on it; opening never changes it: "
            f"run `escrowkit budgets set-total {_plain(total, units)}` to change it, or "
            "remove the setting"
        )
    found = differences(settings, coordinator)
    if found:
        raise ConfigurationError(
            f"the settings file and the ledger disagree: {'; '.join(found)}; opening never "
            "changes the ledger: run `escrowkit apply` to make it follow the file"
        )


def _total_budget(settings: Settings, decimals: int) -> int | None:
    if settings.total_budget is None:
        return None
    total = _units(TOTAL_BUDGET_SETTING, settings.total_budget, decimals)
    if total == 0:
        raise ConfigurationError(f"{TOTAL_BUDGET_SETTING} must be more than 0")
    return total


def _agents(settings: Settings, decimals: int) -> list[AgentConfig]:
    return [agent.to_config(decimals) for agent in settings.agents]


def _categories(settings: Settings, decimals: int) -> dict[str, int]:
    return {
        name: _units(f"categories.{name}", amount, decimals)
        for name, amount in settings.categories.items()
    }


def _units(setting: str, text: str, decimals: int) -> int:
    """A setting's token units in base units; an error names the setting (the settings
    checked the text, but only the token knows how many decimals it has)."""
    try:
        return parse_units(text, decimals)
    except InvalidRequest as exc:
        raise ConfigurationError(f"{setting}: {exc}") from None


def _plain(amount: int, units: TokenUnits) -> str:
    from escrowkit.core.units import format_units

    return format_units(amount, units.decimals)
