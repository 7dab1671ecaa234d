"""``python -m escrowkit.cli``."""

from escrowkit.cli.app import main

main()
