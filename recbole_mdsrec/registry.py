"""Model and dataset lookup: the plugin's own first, then RecBole's.

The tables below are the whole registry: adding a model is one line here plus its
file in ``recbole_mdsrec/models/`` and its yaml in ``properties/model/``. Entries are
import paths so that naming one model does not import every other.
"""

from __future__ import annotations

from recbole_mdsrec import compat  # noqa: F401  (before RecBole is used)
import functools
import importlib
import inspect

from recbole_mdsrec.errors import ConfigError

PLUGIN_MODELS: dict[str, str] = {
    "MDSRec": "recbole_mdsrec.models.mdsrec:MDSRec",
}

PLUGIN_DATASETS: dict[str, str] = {
    "MultimodalSequentialDataset": "recbole_mdsrec.data.dataset:MultimodalSequentialDataset",
}

RECBOLE_MODEL_PACKAGES = (
    "general_recommender",
    "context_aware_recommender",
    "sequential_recommender",
    "knowledge_aware_recommender",
)  # exlib_recommender (LightGBM, XGBoost) is left out: it needs packages this plugin does not install


def _import(spec: str):
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@functools.cache
def recbole_models() -> dict[str, type]:
    """RecBole's own models by class name, read from its model packages."""
    from recbole.model.abstract_recommender import AbstractRecommender

    models = {}
    for package in RECBOLE_MODEL_PACKAGES:
        module = importlib.import_module(f"recbole.model.{package}")
        models.update(
            (name, obj) for name, obj in vars(module).items()
            if inspect.isclass(obj) and issubclass(obj, AbstractRecommender)
            and obj.__module__.startswith(f"recbole.model.{package}.")
        )
    return models


def get_model(name: str):
    """The model class called ``name``: a plugin model if one has that name, else RecBole's."""
    if name in PLUGIN_MODELS:
        return _import(PLUGIN_MODELS[name])
    if name in recbole_models():
        return recbole_models()[name]
    raise ConfigError(
        f"Unknown model '{name}' (option --model). Plugin models: {', '.join(PLUGIN_MODELS)}. "
        f"RecBole models: {', '.join(sorted(recbole_models()))}. "
        "Fix: pick one of these names (they are case-sensitive)."
    )


def get_dataset_class(model_class):
    """The dataset class a model asks for through its ``dataset_class`` attribute, or None
    when RecBole's own choice (by model type) is the right one."""
    name = getattr(model_class, "dataset_class", None)
    if name is None:
        return None
    if name not in PLUGIN_DATASETS:
        raise ConfigError(
            f"Model {model_class.__name__} asks for dataset class '{name}', which is not "
            f"registered. Known: {', '.join(PLUGIN_DATASETS)}. Fix: add it to "
            "recbole_mdsrec/registry.py:PLUGIN_DATASETS."
        )
    return _import(PLUGIN_DATASETS[name])


def create_dataset(config):
    """RecBole's ``create_dataset``, except that a plugin model's own dataset class wins."""
    dataset_class = get_dataset_class(config.model_class)
    if dataset_class is None:
        from recbole.data import create_dataset as recbole_create_dataset

        return recbole_create_dataset(config)
    return dataset_class(config)
