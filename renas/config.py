"""Config checks: one clear message naming the key, the bad value and what is allowed."""

from __future__ import annotations

import math
from typing import Any, Iterable

from renas.errors import ConfigError


def check_number(
    key: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    low_open: bool = False,
) -> float | int:
    """Return ``value`` if it is a number in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}={value!r} must be {kind}{_range(low, high, low_open)}")
    if integer and not float(value).is_integer():
        raise ConfigError(f"{key}={value!r} must be {kind}{_range(low, high, low_open)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} must be a finite number")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        raise ConfigError(f"{key}={value!r} is out of range: must be {kind}{_range(low, high, low_open)}")
    return int(value) if integer else value


def _range(low, high, low_open) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}]"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def check_choice(key: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not one of: {', '.join(choices)}")
    return value


def check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} must be true or false")
    return value
