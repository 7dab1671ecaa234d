from pathlib import Path

import pytest

from escrowkit.config.settings import Settings, load_settings
from escrowkit.errors import ConfigurationError, NotFound

EXAMPLE = Path(__file__).resolve().parents[2] / "escrowkit.example.toml"
AGENT = (
    '[[agents]]\nid = "a"\naddress = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"\n'
    'spending_limit = "1"\ndaily_limit = "2"\nrequires_approval = "1"\n'
)


def test_the_example_file_loads() -> None:
    settings = load_settings(EXAMPLE, env={})
    assert settings.total_budget == "1000"
    assert settings.mode == "treasury"
    assert settings.categories == {"compute": "400"}
    research, compute = settings.agents
    assert research.id == "research-agent" and research.spending_limit == "100"
    assert compute.categories == ("compute",) and compute.hourly_limit == "600"
    config = compute.to_config(decimals=6)
    assert config.daily_limit == 1_000_000_000
    assert config.hourly_limit == 600_000_000


def test_environment_overrides_the_file() -> None:
    env = {
        "ESCROWKIT_RPC_URL": "http://127.0.0.1:9999",
        "ESCROWKIT_MODE": "pool",
        "ESCROWKIT_TOTAL_BUDGET": "5",
    }
    settings = load_settings(EXAMPLE, env=env)
    assert (settings.rpc_url, settings.mode, settings.total_budget) == (
        "http://127.0.0.1:9999",
        "pool",
        "5",
    )


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}) == Settings()


def test_a_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_settings(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[coordinator]\ntotal_budget = 10.5\n", 'write it as a string: "10.5"'),
        ('[coordinator]\ntotal_budjet = "10"\n', "unknown keys"),
        ("[netwrk]\n", "unknown sections"),
        ('[[agents]]\nid = "a"\n', "missing"),
        ('[coordinator]\nmode = "yolo"\n', "mode must be"),
        ('[categories]\nx = "1.2.3"\n', "categories.x"),
        ('[chain]\nstat = "x.json"\n', r"unknown keys in \[chain\]"),
        ('[token]\nadress = "0x00"\n', r"unknown keys in \[token\]"),
        (AGENT + 'categories = "compute"\n', r"agents\[0\].categories must be a list"),
        (AGENT + "allowed_providers = [1]\n", r"agents\[0\].allowed_providers must be a list"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "escrowkit.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=match):
        load_settings(path, env={})


def test_paths_in_a_file_are_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "escrowkit.toml").write_text(
        '[network]\nkeystore = "keys/treasury.json"\ndeployments = "deployments"\n'
        '[chain]\nstate = ".escrowkit/state.json"\n'
        '[coordinator]\ndatabase = "sqlite:///ledger.db"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(project / "escrowkit.toml", env={})
    # The same ledger and manifest whichever directory the command runs in.
    assert settings.database == f"sqlite:///{project / 'ledger.db'}"
    assert settings.deployments == project / "deployments"
    assert settings.keystore == project / "keys" / "treasury.json"
    assert settings.anvil_state == project / ".escrowkit" / "state.json"
    # Absolute paths, in-memory SQLite and environment values are left as they are.
    (project / "escrowkit.toml").write_text(
        '[coordinator]\ndatabase = "sqlite:////var/ledger.db"\n'
    )
    assert load_settings(project / "escrowkit.toml", env={}).database == "sqlite:////var/ledger.db"
    env = {"ESCROWKIT_DATABASE": "sqlite:///here.db", "ESCROWKIT_DEPLOYMENTS": "dep"}
    overridden = load_settings(project / "escrowkit.toml", env=env)
    assert (overridden.database, overridden.deployments) == ("sqlite:///here.db", Path("dep"))
    (project / "escrowkit.toml").write_text('[coordinator]\ndatabase = "sqlite://"\n')
    assert load_settings(project / "escrowkit.toml", env={}).database == "sqlite://"
    # What the file leaves out defaults to the file's folder, not the current directory.
    (project / "escrowkit.toml").write_text('[coordinator]\ntotal_budget = "1000"\n')
    defaults = load_settings(project / "escrowkit.toml", env={})
    assert defaults.database == f"sqlite:///{project / 'escrowkit.db'}"
    assert defaults.deployments == project / "deployments"
    assert defaults.anvil_state == project / ".escrowkit" / "anvil-state.json"
    assert defaults.keystore is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ESCROWKIT_TOTAL_BUDGET": "1,000"},
            "ESCROWKIT_TOTAL_BUDGET: not a decimal amount: '1,000'",
        ),
        ({"ESCROWKIT_TOTAL_BUDGET": "-5"}, "ESCROWKIT_TOTAL_BUDGET: amounts are positive"),
        ({"ESCROWKIT_MODE": "pools"}, "ESCROWKIT_MODE must be 'treasury' or 'pool'"),
        ({"ESCROWKIT_TREASURY": "0x1234"}, "ESCROWKIT_TREASURY: "),
        (
            {"ESCROWKIT_TOKEN": "70997970C51812dc3A010C7d01b50e0d17dc79C8"},
            "ESCROWKIT_TOKEN: the address must start with 0x",
        ),
    ],
)
def test_environment_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(EXAMPLE, env=env)
    assert str(caught.value).startswith(message), caught.value


def test_file_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "escrowkit.toml"
    path.write_text('[coordinator]\ntotal_budget = "1 000"\nmode = "pools"\n')
    with pytest.raises(ConfigurationError) as caught:
        load_settings(path, env={})
    assert str(caught.value).startswith(f"{path}: coordinator.total_budget: not a decimal amount")
    path.write_text('[coordinator]\nmode = "pools"\n')
    with pytest.raises(ConfigurationError, match=r"coordinator\.mode must be"):
        load_settings(path, env={})
    path.write_text('[coordinator]\ntreasury = "0xabc"\n')
    with pytest.raises(ConfigurationError, match=r"coordinator\.treasury: "):
        load_settings(path, env={})
