"""Model, dataset and trainer lookup: the plugin's own first, then RecBole's.

The tables below are the whole registry: adding a model is one line here plus its
file in ``recbole_mdsrec/models/`` and its yaml in ``properties/model/``. Entries are
import paths so that naming one model does not import every other. Every trainer, the
plugin's or RecBole's, is returned with the plugin's trainer mixin on top
(``training/trainer.py``), as RecBole-GNN returns its own trainers.

Naming: a plugin model hides RecBole's model of the same name (``GRU4RecF`` is the
plugin's dense-feature version); ``RecBole.<Name>`` (e.g. ``--model=RecBole.GRU4RecF``)
always names RecBole's own class. Config takes the class's ``__name__`` as the model name,
so RecBole's yaml of that name is read as for any RecBole model; the plugin's
``properties/model/<Name>.yaml`` is read too, which only adds the plugin's keys and repeats
RecBole's values for the keys both have.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings

from recbole_mdsrec.errors import ConfigError

PLUGIN_MODELS: dict[str, str] = {
    "MDSRec": "recbole_mdsrec.models.mdsrec:MDSRec",
    "GRU4RecF": "recbole_mdsrec.models.gru4recf:GRU4RecF",
    "SASRecF": "recbole_mdsrec.models.sasrecf:SASRecF",
    "FDSA": "recbole_mdsrec.models.fdsa:FDSA",
    "UniSRec": "recbole_mdsrec.models.unisrec:UniSRec",
    "SGP4SR": "recbole_mdsrec.models.sgp4sr:SGP4SR",
    "MISSRec": "recbole_mdsrec.models.missrec:MISSRec",
    "MMMLP": "recbole_mdsrec.models.mmmlp:MMMLP",
}

# A plugin model that needs a trainer of its own: model name -> import path of a RecBole
# trainer subclass (none yet; every model trains with RecBole's trainer for its type).
PLUGIN_TRAINERS: dict[str, str] = {}

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


RECBOLE_PREFIX = "RecBole."


def get_model(name: str):
    """The model class called ``name``: a plugin model if one has that name, else RecBole's;
    ``RecBole.<Name>`` is RecBole's even where the plugin has a model of that name."""
    recbole_only = name.startswith(RECBOLE_PREFIX)
    if recbole_only:
        name = name[len(RECBOLE_PREFIX):]
    elif name in PLUGIN_MODELS:
        return _import(PLUGIN_MODELS[name])
    if name in recbole_models():
        return recbole_models()[name]
    raise ConfigError(
        f"Unknown model '{RECBOLE_PREFIX if recbole_only else ''}{name}' (option --model). "
        f"Plugin models: {', '.join(PLUGIN_MODELS)}. RecBole models: {', '.join(sorted(recbole_models()))} "
        f"(write {RECBOLE_PREFIX}<Name> for RecBole's where the plugin has one of that name). "
        "Fix: pick one of these names (they are case-sensitive)."
    )


def model_name(model_class) -> str:
    """The name :func:`get_model` resolves to ``model_class``: RecBole's classes that a plugin
    model shadows are ``RecBole.<Name>``."""
    name = model_class.__name__
    if not model_class.__module__.startswith("recbole_mdsrec.") and name in PLUGIN_MODELS:
        return RECBOLE_PREFIX + name
    return name


def get_trainer(model_type, model: str):
    """The trainer class of ``model``: the plugin's for that model if it has one, else
    RecBole's for ``model_type``; either way with the plugin's trainer mixin."""
    from recbole.utils import get_trainer as recbole_get_trainer

    from recbole_mdsrec.training.trainer import plugin_trainer

    base = _import(PLUGIN_TRAINERS[model]) if model in PLUGIN_TRAINERS else recbole_get_trainer(model_type, model)
    return plugin_trainer(base)


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
    """RecBole's ``create_dataset``, except that a plugin model's own dataset class wins.
    RecBole's pandas FutureWarnings (in-place filling, dated but harmless on pandas<3,
    see ``compat.py``) do not reach the user."""
    dataset_class = get_dataset_class(config.model_class)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if dataset_class is None:
            from recbole.data import create_dataset as recbole_create_dataset

            return recbole_create_dataset(config)
        return dataset_class(config)
