"""Subcommands of the `pixtrack` console script, one module each (see `tracker.cli`)."""
