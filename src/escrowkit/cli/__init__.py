"""The ``escrowkit`` command (typer + rich): a thin shell over the library."""

from escrowkit.cli.app import EXIT_DENIED, EXIT_FAILED, main

__all__ = ["EXIT_DENIED", "EXIT_FAILED", "main"]
