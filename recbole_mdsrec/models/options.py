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


def modal_features_of(dataset, model_name: str) -> tuple[list[str], dict, dict]:
    """The modalities, frozen features and masks a feature-aware model reads from its dataset."""
    if not hasattr(dataset, "modal_features"):
        raise ConfigError(
            f"{model_name} needs per-item modal features, but dataset '{dataset.dataset_name}' was loaded "
            "without them. Fix: use a multimodal dataset (e.g. --dataset=ml-100k-mm) prepared with "
            "`python -m recbole_mdsrec.prepare`."
        )
    return list(dataset.modalities), dataset.modal_features, dataset.modal_masks
