"""User-facing errors: one clear line, no traceback, non-zero exit."""

from __future__ import annotations


class RenasError(Exception):
    """An error caused by user input (config, genotype, data, files).

    Entry points print ``error: <message>`` on one line and exit with status 2.
    """


class ConfigError(RenasError):
    """A config value is missing, of the wrong type or out of range."""


class GenotypeError(RenasError, ValueError):
    """A genotype string or value list is malformed for its search space."""


class DataError(RenasError):
    """A data set cannot be found, read or downloaded."""
