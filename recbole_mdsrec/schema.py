"""A run's options as plain data, its identity, and how older stored options are read.

Checkpoints and results rows hold a run's resolved options as plain data
(:func:`plain_config`: yaml/json types only, enums by name), never a pickled live Config.
``SCHEMA_VERSION`` numbers what that data may hold, and :data:`MIGRATIONS` says what each
version added over the one before: options, at the value that reproduces the code from
before they existed, and weights of plugin models that were renamed. Both rules that deal
with older data read this one table:

- reading older options (a checkpoint, a resumed run): :func:`migrate_options` gives each
  option added since their version its neutral value, :func:`migrate_weights` renames the
  weights;
- a run's identity (:func:`config_hash`): an added option at its neutral value is left out,
  so runs recorded before the option existed keep their hash and are found again.

Version 1 is everything written before plain options: RecBole's own checkpoint format (a
pickled Config), which the plugin also wrote until then.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Migration:
    """What one schema version added over the one before it."""

    added_options: Mapping[str, object] = field(default_factory=dict)  # option -> its neutral value
    renamed_weights: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # model -> (old, new) prefixes


MIGRATIONS: dict[int, Migration] = {
    2: Migration(
        added_options={"feature_normalization": "none"},
        # The frozen modal features and their projections moved into one shared layer
        # (models/modal_items.py); MDSRec's own copy of them went with it.
        renamed_weights={
            "MDSRec": (("projections.", "modal_items.projections."),),
            "GRU4RecF": (("feature_fields.", "modal_items."),),
            "SASRecF": (("feature_fields.", "modal_items."),),
            "FDSA": (("feature_fields.", "modal_items."),),
            "UniSRec": (("moe_adaptor.", "modal_items.projections.text.net."),
                        ("missing_text", "modal_items.projections.text.missing")),
        },
    ),
    3: Migration(added_options={"precision": "fp32", "compile": False}),
    4: Migration(added_options={"behavior_weighting": "window"}),
    # MDSRec's switches for the authors' reading (issue 20), each at the value of the reading before it.
    5: Migration(added_options={
        "item_input": "id_features", "intersect_modal_k": 25, "intersect_behavior_k": 3,
        "graph_normalization": "symmetric", "graph_combination": "mean", "interest_temperature": 1.0,
        "id_branch": False, "shared_encoder": False, "fusion_weights": None, "aux_losses": False,
    }),
}
SCHEMA_VERSION = max(MIGRATIONS)
LEGACY_VERSION = 1

# Options that place files, pick hardware, shape logging or only size evaluation batches:
# they never change a result, so a rerun with other paths or a GPU still finds its runs.
NON_RESULT_KEYS = frozenset({
    "gpu_id", "use_gpu", "device", "worker", "local_rank", "world_size", "nproc", "ip", "port",
    "offset", "single_spec", "state", "show_progress", "log_wandb", "wandb_project",
    "data_path", "raw_data_path", "checkpoint_dir", "graph_cache_dir", "save_dataset", "dataset_save_path",
    "save_dataloaders", "dataloaders_save_path", "eval_batch_size",
})


def to_plain(value):
    """``value`` as plain yaml/json data: enums by name, other objects (a torch device) as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_plain(v) for v in value]
    return str(value)


def plain_config(config) -> dict:
    """A RecBole Config's resolved options as plain data."""
    return {str(k): to_plain(v) for k, v in config.final_config_dict.items()}


def migrate_options(plain: Mapping, version: int) -> dict:
    """Options stored under schema ``version``, completed with the options added since at
    their neutral values; the options they hold keep their values."""
    migrated = dict(plain)
    for step in sorted(v for v in MIGRATIONS if v > version):
        for key, value in MIGRATIONS[step].added_options.items():
            migrated.setdefault(key, value)
    return migrated


def migrate_weights(model: str, state_dict: Mapping, version: int) -> dict:
    """A state dict saved under schema ``version`` with the weights renamed since."""
    renamed = dict(state_dict)
    for step in sorted(v for v in MIGRATIONS if v > version):
        for old, new in MIGRATIONS[step].renamed_weights.get(model, ()):
            renamed = {(new + k[len(old):] if k.startswith(old) else k): v for k, v in renamed.items()}
    return renamed


def _neutral_values() -> dict:
    return {k: v for step in MIGRATIONS.values() for k, v in step.added_options.items()}


def identity_options(plain: Mapping) -> dict:
    """The options that decide a run's numbers (model, dataset, seed, hyper-parameters,
    protocol): none that only places files or shows progress, and no added option at its
    neutral value."""
    neutral = _neutral_values()
    return {k: v for k, v in plain.items()
            if k not in NON_RESULT_KEYS and not (k in neutral and v == neutral[k])}


def config_hash(plain: Mapping) -> str:
    """Identity of a run (12 hex digits) over :func:`identity_options`."""
    text = json.dumps(identity_options(plain), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
