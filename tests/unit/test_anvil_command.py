"""The command line ``Chain.anvil()`` starts anvil with: the tuned options (recent states
in memory, the contracts' hardfork), none of them with a state file, and a ``--hardfork``
of the caller's instead of ours."""

from __future__ import annotations

from escrowkit.build.compiler import COMPILER_SETTINGS
from escrowkit.evm.anvil import HARDFORK, TUNED_ARGS, anvil_command


def test_the_hardfork_is_the_one_the_contracts_are_compiled_for() -> None:
    # A later anvil hardfork costs a storage slot per block (EIP-2935) that every later
    # block hashes again; an earlier one could not run the artifacts.
    assert COMPILER_SETTINGS["evmVersion"] == HARDFORK


def test_tuned_adds_the_tuned_options() -> None:
    args = anvil_command("anvil", 8545, tuned=True)
    assert args[:6] == ["anvil", "--host", "127.0.0.1", "--port", "8545", "--silent"]
    assert args[6:] == ["--prune-history", "64", "--hardfork", "cancun"] == list(TUNED_ARGS)


def test_untuned_and_state_file_runs_get_none_of_them() -> None:
    assert "--hardfork" not in anvil_command("anvil", 1, tuned=False)
    with_state = anvil_command("anvil", 1, state="s.json", tuned=True)
    assert with_state[-2:] == ["--state", "s.json"]
    assert "--prune-history" not in with_state and "--hardfork" not in with_state


def test_a_hardfork_of_the_callers_replaces_ours() -> None:
    for extra in (["--hardfork", "osaka"], ["--hardfork=osaka"]):
        args = anvil_command("anvil", 1, extra_args=[*extra, "--block-time", "1"], tuned=True)
        assert "cancun" not in args
        assert args[-len(extra) - 2 :] == [*extra, "--block-time", "1"]
        assert args.count("--prune-history") == 1


def test_other_extra_args_keep_our_hardfork() -> None:
    args = anvil_command("anvil", 1, extra_args=["--block-time", "2"], tuned=True)
    assert args[-6:] == ["--prune-history", "64", "--hardfork", "cancun", "--block-time", "2"]
