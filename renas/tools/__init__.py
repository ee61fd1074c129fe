"""Command-line helpers that prepare inputs for renas (``python -m renas.tools.<name> --help``)."""
