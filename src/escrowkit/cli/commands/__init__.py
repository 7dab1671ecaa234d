"""The commands, one module per group; :mod:`escrowkit.cli.app` registers them."""
