"""Reading model switches from a RecBole config, with errors that list the allowed values."""

from __future__ import annotations

from recbole_mdsrec.errors import ConfigError


def choice(config, key: str, allowed: tuple):
    """``config[key]``, which must be one of ``allowed``."""
    value = config[key]
    if value not in allowed:
        raise ConfigError(
            f"Option '{key}' is {value!r}; allowed values: {', '.join(map(repr, allowed))}. "
            f"Fix: set --{key}= to one of them (see properties/model/{config['model']}.yaml)."
        )
    return value
