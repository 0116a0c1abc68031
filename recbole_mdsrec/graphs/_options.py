"""Validation of the graph options, with messages that name the option and the fix."""

from __future__ import annotations

import math
import operator

from recbole_mdsrec.errors import ConfigError


def integer_option(option: str, value, minimum: int, hint: str) -> int:
    """``value`` as an int >= ``minimum`` (numpy integers accepted, bools and floats not)."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < minimum:
        raise ConfigError(f"{option} must be an integer >= {minimum}, got {value!r}; {hint}")
    return number


def choice_option(option: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{option} must be one of {', '.join(allowed)}; got {value!r}.")


def float_option(option: str, value, hint: str) -> float:
    """``value`` as a finite float (bools not accepted)."""
    try:
        number = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number):
        raise ConfigError(f"{option} must be a finite number, got {value!r}; {hint}")
    return number
