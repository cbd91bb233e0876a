"""``python -m keykeeper``: the CLI."""

from keykeeper.cli.main import main

main()
