"""What every command shares: ``--key=value`` overrides, lists of config files, and the
one-paragraph error with exit code 2."""

from __future__ import annotations

import logging
import sys
from typing import Callable

from recbole_mdsrec import compat
from recbole_mdsrec.errors import ConfigError, UserInputError


def parse_overrides(tokens: list[str]) -> dict[str, str]:
    """``--key=value`` pairs as RecBole's ``run_recbole.py`` takes them (values are
    converted to Python types later, by Config)."""
    overrides: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token[2:].partition("=")
        if not token.startswith("--") or not sep or not key:
            raise ConfigError(
                f"Cannot read the argument '{token}'. Fix: write options as --key=value "
                "(e.g. --learning_rate=0.001, --epochs=5); run the command with --help for its own options."
            )
        if key in overrides and overrides[key] != value:
            raise ConfigError(f"Option --{key} is given twice with different values ('{overrides[key]}', '{value}'). Fix: give it once.")
        overrides[key] = value
    return overrides


def split_files(value: str | None) -> list[str] | None:
    """``--config_files=a.yaml,b.yaml`` (commas or spaces) as a list; None when not given."""
    if not value:
        return None
    return [name for part in value.split(",") for name in part.split() if name]


def run_command(command: Callable[[], int], debug: bool = False) -> int:
    """``command()``'s exit code, or 2 after printing an input error as one paragraph (the
    traceback only with ``--debug``)."""
    try:
        compat.install()
        return command()
    except UserInputError as error:
        if debug:
            raise
        logging.shutdown()
        print(f"error: {error}", file=sys.stderr)
        return 2
