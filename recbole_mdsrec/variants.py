"""Named presets of a model's switches (``properties/variants/<Model>.yaml``)."""

from __future__ import annotations

import yaml

from recbole_mdsrec import properties
from recbole_mdsrec.errors import ConfigError


def variants_of(model: str) -> dict[str, dict]:
    path = properties.path("variants", f"{model}.yaml")
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def variant_overrides(model: str, name: str) -> dict:
    """The config overrides of preset ``name`` of ``model``."""
    presets = variants_of(model)
    if name not in presets:
        known = ", ".join(presets) or "none"
        raise ConfigError(
            f"Unknown variant '{name}' for model {model} (option --variant). Known variants: {known}. "
            f"Fix: pick one of them, or add it to properties/variants/{model}.yaml."
        )
    return dict(presets[name] or {})
