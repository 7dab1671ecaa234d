"""Settings for the command line and for scripts: ``escrowkit.toml`` plus environment.

Where the file is: ``--config`` / ``$ESCROWKIT_CONFIG``, else ``./escrowkit.toml`` if it
exists, else built-in defaults (a local anvil at 127.0.0.1:8545 and ``escrowkit.db``).
Environment variables override the file: ``ESCROWKIT_RPC_URL``, ``ESCROWKIT_KEYSTORE``,
``ESCROWKIT_DATABASE``, ``ESCROWKIT_MODE``, ``ESCROWKIT_TOTAL_BUDGET``, ``ESCROWKIT_TOKEN``,
``ESCROWKIT_TREASURY``, ``ESCROWKIT_DEPLOYMENTS``. A keystore's password comes from
``ESCROWKIT_KEYSTORE_PASSWORD`` or a prompt, never from the file or the command line.

Relative paths in the file (keystore, deployments, chain state, a SQLite database) are
relative to the file, and so are the defaults of those it leaves out. Amounts in the
file are in token units (``total_budget = "1000"`` or ``1000`` is 1,000 USDC); floats are
refused because ``0.1`` has no exact value.
Example::

    [network]
    rpc_url = "http://127.0.0.1:8545"
    keystore = "~/.escrowkit/treasury.json"   # omit on a local anvil (dev accounts)

    [coordinator]
    database = "sqlite:///escrowkit.db"
    mode = "treasury"                          # or "pool"
    total_budget = "1000"

    [categories]
    compute = "400"

    [[agents]]
    id = "research-agent"
    address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    spending_limit = "100"
    daily_limit = "300"
    requires_approval = "50"

    [service]                                  # `escrowkit serve`
    host = "127.0.0.1"
    port = 8700

    [[service.webhooks]]
    url = "https://hooks.slack.com/services/..."
    secret = "whsec_..."                       # signs every delivery (HMAC-SHA256)
    events = ["decision", "alert"]             # default: all four kinds
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from escrowkit.core.errors import ConfigurationError, InvalidRequest, NotFound
from escrowkit.core.units import MAX_UINT96, format_units, parse_units

if TYPE_CHECKING:
    from escrowkit.coordinator import AgentConfig

__all__ = ["AgentSettings", "ServiceSettings", "Settings", "WebhookSettings", "load_settings"]

DEFAULT_FILE = "escrowkit.toml"

_ENV = {
    "ESCROWKIT_RPC_URL": "rpc_url",
    "ESCROWKIT_KEYSTORE": "keystore",
    "ESCROWKIT_DATABASE": "database",
    "ESCROWKIT_MODE": "mode",
    "ESCROWKIT_TOTAL_BUDGET": "total_budget",
    "ESCROWKIT_TOKEN": "token",
    "ESCROWKIT_TREASURY": "treasury",
    "ESCROWKIT_DEPLOYMENTS": "deployments",
}


@dataclass(frozen=True)
class AgentSettings:
    """An agent as written in the file: amounts still in token units (text)."""

    id: str
    address: str
    spending_limit: str
    daily_limit: str
    requires_approval: str
    name: str = ""
    hourly_limit: str | None = None
    categories: tuple[str, ...] | None = None
    allowed_providers: tuple[str, ...] | None = None

    def to_config(self, decimals: int) -> AgentConfig:
        """The coordinator's :class:`AgentConfig`, amounts in base units. A value that
        cannot be one is a ConfigurationError naming the agent and the setting, with the
        amount as written (token units)."""
        from escrowkit.coordinator import AgentConfig

        def units(key: str, text: str, *, allow_zero: bool = False) -> int:
            where = f"agents {self.id!r}: {key} = {text!r}"
            try:
                value = parse_units(text, decimals)
            except InvalidRequest as exc:
                raise ConfigurationError(f"{where}: {exc}") from None
            if value == 0 and not allow_zero:
                raise ConfigurationError(f"{where}: a limit must be more than 0")
            if value > MAX_UINT96:
                most = format_units(MAX_UINT96, decimals)
                raise ConfigurationError(f"{where}: more than any escrow can hold ({most})")
            return value

        try:
            return AgentConfig(
                id=self.id,
                name=self.name or self.id,
                address=self.address,
                spending_limit=units("spending_limit", self.spending_limit),
                daily_limit=units("daily_limit", self.daily_limit),
                requires_approval=units(
                    "requires_approval", self.requires_approval, allow_zero=True
                ),
                hourly_limit=None
                if self.hourly_limit is None
                else units("hourly_limit", self.hourly_limit),
                categories=self.categories,
                allowed_providers=self.allowed_providers,
            )
        except InvalidRequest as exc:
            raise ConfigurationError(f"agents {self.id!r} in the settings: {exc}") from None


#: The kinds of event a webhook may ask for (DESIGN.md section 9).
EVENT_KINDS = ("decision", "approval", "alert", "escrow")


@dataclass(frozen=True)
class WebhookSettings:
    """A ``[[service.webhooks]]`` entry. The URL is a secret too (a Slack or Discord
    incoming-webhook URL lets anyone post): it is never shown in errors or logs."""

    url: str
    secret: str
    events: tuple[str, ...] = EVENT_KINDS

    def __repr__(self) -> str:
        return f"WebhookSettings(url=..., secret=..., events={self.events!r})"


@dataclass(frozen=True)
class ServiceSettings:
    """The ``[service]`` section: where ``escrowkit serve`` listens, and its webhooks."""

    host: str = "127.0.0.1"
    port: int = 8700
    webhooks: tuple[WebhookSettings, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Everything the CLI needs to reach a chain, a deployment and a ledger: values only
    (:mod:`escrowkit.config.bootstrap` opens what they name)."""

    rpc_url: str = "http://127.0.0.1:8545"
    keystore: Path | None = None
    deployments: Path = Path("deployments")
    database: str = "sqlite:///escrowkit.db"
    mode: Literal["treasury", "pool"] = "treasury"
    total_budget: str | None = None
    token: str | None = None
    treasury: str | None = None
    escrow_ttl: int = 86_400
    dispute_window: int = 3_600
    approval_ttl: int = 86_400
    timezone: str = "UTC"
    anvil_state: Path = Path(".escrowkit/anvil-state.json")
    agents: tuple[AgentSettings, ...] = ()
    categories: Mapping[str, str] = field(default_factory=dict)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    source: Path | None = None


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read the settings file (if any) and apply environment overrides."""
    env = os.environ if env is None else env
    chosen = path or env.get("ESCROWKIT_CONFIG")
    file = Path(chosen) if chosen else Path(DEFAULT_FILE)
    values: dict[str, Any] = {}
    if file.is_file():
        values = _from_file(file)
        values["source"] = file
    elif chosen:
        raise NotFound(f"settings file {file} does not exist")
    where = {key: f"{file}: {section}.{key}" for key, section in _SECTIONS.items()}
    for name, key in _ENV.items():
        if env.get(name):
            values[key] = env[name]
            where[key] = name
    if "total_budget" in values:
        values["total_budget"] = _amount(where["total_budget"], values["total_budget"])
    for key in ("token", "treasury"):
        if values.get(key) is not None:
            values[key] = _address(where[key], values[key])
    for key in ("keystore", "deployments", "anvil_state"):
        if isinstance(values.get(key), str):
            values[key] = Path(values[key]).expanduser()
    settings = Settings(**values)
    if settings.mode not in ("treasury", "pool"):
        raise ConfigurationError(
            f"{where['mode']} must be 'treasury' or 'pool', not {settings.mode!r}"
        )
    return settings


#: Where each setting that an ESCROWKIT_* variable overrides is written in the file.
_SECTIONS = {
    "rpc_url": "network",
    "keystore": "network",
    "deployments": "network",
    "database": "coordinator",
    "mode": "coordinator",
    "total_budget": "coordinator",
    "treasury": "coordinator",
    "token": "token",
}


def _address(where: str, value: object) -> str:
    from escrowkit.core.addresses import to_address

    try:
        return str(to_address(value, name="the address"))
    except InvalidRequest as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def _from_file(file: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{file}: {exc}") from None
    sections = {"network", "coordinator", "token", "categories", "agents", "chain", "service"}
    unknown = set(data) - sections
    if unknown:
        raise ConfigurationError(
            f"{file}: unknown sections {sorted(unknown)}; known: {sorted(sections)}"
        )
    values: dict[str, Any] = {}
    network = data.get("network", {})
    values.update(_pick(file, "network", network, {"rpc_url", "keystore", "deployments"}))
    coordinator = data.get("coordinator", {})
    picked = _pick(
        file,
        "coordinator",
        coordinator,
        {
            "database",
            "mode",
            "total_budget",
            "treasury",
            "escrow_ttl",
            "dispute_window",
            "approval_ttl",
            "timezone",
        },
    )
    values.update(picked)
    token = _pick(file, "token", data.get("token", {}), {"address"})
    if "address" in token:
        values["token"] = str(token["address"])
    chain = _pick(file, "chain", data.get("chain", {}), {"state"})
    if "state" in chain:
        values["anvil_state"] = str(chain["state"])
    values["categories"] = {
        str(name): _amount(f"{file}: categories.{name}", amount)
        for name, amount in data.get("categories", {}).items()
    }
    values["agents"] = tuple(_agent(file, n, raw) for n, raw in enumerate(data.get("agents", [])))
    if "service" in data:
        values["service"] = _service(file, data["service"])
    # The default ledger, manifest and chain state of a project are beside its file too.
    for key in ("database", "deployments", "anvil_state"):
        values.setdefault(key, str(getattr(Settings, key)))
    return _relative_to(file.parent, values)


def _relative_to(folder: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Paths written in a file are relative to that file, so that ``--config`` from another
    directory reaches the same ledger and manifest instead of starting empty ones here
    (a second ledger for one treasury would enforce no budget)."""
    for key in ("keystore", "deployments", "anvil_state"):
        if isinstance(values.get(key), str):
            values[key] = str(folder / Path(values[key]).expanduser())
    database = values.get("database")
    if isinstance(database, str) and database.startswith("sqlite:///"):
        path = database.removeprefix("sqlite:///")
        if path and path != ":memory:" and not Path(path).is_absolute():
            values["database"] = f"sqlite:///{folder / path}"
    return values


def _pick(file: Path, section: str, table: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = set(table) - allowed
    if unknown:
        raise ConfigurationError(
            f"{file}: unknown keys in [{section}]: {sorted(unknown)}; known: {sorted(allowed)}"
        )
    return dict(table)


def _amount(where: str, value: object) -> str:
    """Token units as exact text: strings and ints pass, floats and the rest are refused.
    ``where`` names the setting (``file: coordinator.total_budget``, or the variable)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        hint = f' (write it as a string: "{value}")' if isinstance(value, float) else ""
        raise ConfigurationError(f"{where} must be a token amount{hint}, got {value!r}")
    try:
        parse_units(value, 18)
    except InvalidRequest as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    return str(value)


def _agent(file: Path, index: int, raw: Mapping[str, Any]) -> AgentSettings:
    where = f"agents[{index}]"
    required = {"id", "address", "spending_limit", "daily_limit", "requires_approval"}
    optional = {"name", "hourly_limit", "categories", "allowed_providers"}
    missing = required - set(raw)
    if missing:
        raise ConfigurationError(f"{file}: {where} is missing {sorted(missing)}")
    _pick(file, where, raw, required | optional)
    amounts = {
        key: _amount(f"{file}: {where}.{key}", raw[key])
        for key in ("spending_limit", "daily_limit", "requires_approval", "hourly_limit")
        if key in raw
    }
    categories, providers = (
        _strings(file, f"{where}.{key}", raw[key]) if key in raw else None
        for key in ("categories", "allowed_providers")
    )
    return AgentSettings(
        id=str(raw["id"]),
        address=str(raw["address"]),
        name=str(raw.get("name", "")),
        categories=categories,
        allowed_providers=providers,
        **amounts,
    )


def _service(file: Path, raw: Mapping[str, Any]) -> ServiceSettings:
    table = _pick(file, "service", raw, {"host", "port", "webhooks"})
    host, port = table.get("host", "127.0.0.1"), table.get("port", 8700)
    if not isinstance(host, str) or not host:
        raise ConfigurationError(f"{file}: service.host must be a host name or address")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65_536:
        raise ConfigurationError(f"{file}: service.port must be a port number, got {port!r}")
    hooks = table.get("webhooks", [])
    if not isinstance(hooks, list):
        raise ConfigurationError(f"{file}: service.webhooks must be [[service.webhooks]] tables")
    return ServiceSettings(host, port, tuple(_webhook(file, n, h) for n, h in enumerate(hooks)))


def _webhook(file: Path, index: int, raw: object) -> WebhookSettings:
    where = f"service.webhooks[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{file}: {where} must be a table with url, secret, events")
    table = _pick(file, where, raw, {"url", "secret", "events"})
    url, secret = table.get("url"), table.get("secret")
    # Never the URL itself in a message: it may be the secret that lets anyone post.
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"{file}: {where}.url must be an http:// or https:// URL")
    if not isinstance(secret, str) or not secret:
        raise ConfigurationError(f"{file}: {where}.secret must be a non-empty string")
    events = _strings(file, f"{where}.events", table["events"]) if "events" in table else None
    unknown = sorted(set(events or ()) - set(EVENT_KINDS))
    if unknown or events == ():
        raise ConfigurationError(
            f"{file}: {where}.events must name some of {list(EVENT_KINDS)}, "
            f"got {list(events or ())}"
        )
    return WebhookSettings(url, secret, events or EVENT_KINDS)


def _strings(file: Path, where: str, value: object) -> tuple[str, ...]:
    # tuple("compute") would be seven one-letter categories.
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigurationError(
            f'{file}: {where} must be a list of strings (e.g. ["compute"]), got {value!r}'
        )
    return tuple(value)


def with_overrides(settings: Settings, **overrides: Any) -> Settings:
    """A copy with command-line options applied (``None`` means "not given")."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(settings, **given)
