"""Checkpoints: what they hold, how they are read back, and exact resume.

Every checkpoint the plugin writes is plain data that ``torch.load(weights_only=True)``
reads: tensors, numbers, strings, lists and dicts. The run's options are stored as plain
options with their schema version (``schema.py``), never as a pickled live Config:

- ``<model>-<time>-<pid>-<tag>.pth``, the best model so far: ``schema_version``, ``model``
  (the name the registry resolves back to the class), ``config``, ``epoch``, ``cur_step``,
  ``best_valid_score``, ``state_dict``, ``other_parameter``, ``optimizer``;
- ``<that>.pth.last``, written after every evaluated epoch, also holds everything the next
  epoch depends on: early-stopping counters, the losses so far, the train loader's
  shuffling generator and the global torch/numpy/random states. Resuming from it continues
  the same trajectory.

Checkpoints written by RecBole itself (and by this plugin before plain options) pickle the
whole Config; those are read through an allowlist unpickler (:data:`TRUSTED_NAMES`) and
brought to the current schema like any older checkpoint.
"""

from __future__ import annotations

import inspect
import os
import pickle
import random
import secrets
import types
import warnings
from pathlib import Path

import numpy as np
import torch

from recbole_mdsrec.errors import DataError
from recbole_mdsrec.files import atomic_write
from recbole_mdsrec.provenance import code_version
from recbole_mdsrec.schema import (
    LEGACY_VERSION,
    SCHEMA_VERSION,
    migrate_options,
    migrate_weights,
    plain_config,
)

LAST_SUFFIX = ".last"


def unique_checkpoint_path(recbole_path) -> str:
    """RecBole names a checkpoint ``<model>-<local time to the second>.pth``, so two runs
    started in the same second (two jobs in one folder, or quick runs of one grid) would
    overwrite each other's best model and test the wrong one. The process id and a random
    tag make the name unique; the random tag is drawn from the OS, not the seeded RNGs,
    so it changes no result."""
    path = Path(recbole_path)
    return str(path.with_name(f"{path.stem}-{os.getpid()}-{secrets.token_hex(3)}{path.suffix}"))


def last_state_path(best_checkpoint) -> Path:
    return Path(f"{best_checkpoint}{LAST_SUFFIX}")


def latest_training_state(folder) -> Path | None:
    """The newest ``<checkpoint>.last`` in ``folder``, if any."""
    states = sorted(Path(folder).glob(f"*.pth{LAST_SUFFIX}"), key=lambda p: p.stat().st_mtime)
    return states[-1] if states else None


def training_state_code(path) -> str | None:
    """The code version that wrote a training state (None: written before states recorded it)."""
    return load_checkpoint(path).get("code_version")


def set_aside(state: Path, written_by: str) -> Path:
    """Rename a training state so that ``latest_training_state`` no longer finds it; nothing is deleted."""
    aside = state.with_name(f"{state.name}.{written_by.replace('+', '-').replace(' ', '-')}")
    os.replace(state, aside)
    return aside


def atomic_torch_save(obj, path) -> None:
    with atomic_write(path) as f:
        torch.save(obj, f)


# --- writing ------------------------------------------------------------------------------


def run_identity(config) -> dict:
    """The head of every checkpoint: schema version, model name and plain options."""
    from recbole_mdsrec.registry import model_name

    return {"schema_version": SCHEMA_VERSION, "model": model_name(config.model_class), "config": plain_config(config)}


def best_model_state(trainer, epoch: int) -> dict:
    """What RecBole's ``_save_checkpoint`` saves, as plain data."""
    return {
        **run_identity(trainer.config),
        "epoch": epoch,
        "cur_step": trainer.cur_step,
        "best_valid_score": float(trainer.best_valid_score),
        "state_dict": trainer.model.state_dict(),
        "other_parameter": trainer.model.other_parameter(),
        "optimizer": trainer.optimizer.state_dict(),
    }


def save_training_state(trainer, train_data, epoch: int, timing: dict | None = None) -> Path:
    """Everything needed to go on after ``epoch`` as if never stopped; ``timing`` carries the
    training time so far, so that a resumed run reports its whole time, not its last part."""
    path = last_state_path(trainer.saved_model_file)
    numpy_kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    atomic_torch_save({
        **best_model_state(trainer, epoch),
        "best_valid_result": {k: float(v) for k, v in (trainer.best_valid_result or {}).items()},
        "train_loss_dict": {int(e): float(loss) for e, loss in trainer.train_loss_dict.items()},
        "best_checkpoint": trainer.saved_model_file,
        "timing": dict(timing or {}),
        "code_version": code_version(),
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": {"kind": numpy_kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
            "python": random.getstate(),
            "train_loader": train_data.generator.get_state(),
        },
    }, path)
    return path


# --- reading ------------------------------------------------------------------------------

# RecBole pickles its whole Config (pickle protocol 4) into every checkpoint, which the
# weights-only unpickler refuses. Rather than switching safety off, such files are read
# with an allowlist: classes of RecBole and this plugin, and the few torch/numpy/stdlib
# names a state dict and a Config are made of. Anything else is refused, by name.
TRUSTED_PACKAGES = ("recbole", "recbole_mdsrec")
TRUSTED_NAMES = frozenset({
    "collections.OrderedDict",
    "builtins.set", "builtins.frozenset", "builtins.slice", "builtins.complex",
    "_codecs.encode",
    "numpy.dtype", "numpy.ndarray",
    "numpy.core.multiarray.scalar", "numpy.core.multiarray._reconstruct",
    "yaml.loader.FullLoader",
    "torch.device", "torch.Size",
})


class UntrustedCheckpointError(pickle.UnpicklingError):
    pass


def _is_trusted(module: str, name: str, obj) -> bool:
    if f"{module}.{name}" in TRUSTED_NAMES:
        return True
    if module.split(".")[0] in TRUSTED_PACKAGES:
        return inspect.isclass(obj)
    if module == "torch._utils":
        return name.startswith("_rebuild_")
    if module == "torch":
        return isinstance(obj, torch.dtype) or (inspect.isclass(obj) and name.endswith("Storage"))
    return False


class _AllowlistUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        obj = super().find_class(module, name)
        if not _is_trusted(module, name, obj):
            raise UntrustedCheckpointError(f"{module}.{name}")
        return obj


# torch.load takes a pickle *module*: this one differs from pickle only in its Unpickler.
_allowlist_pickle = types.SimpleNamespace(**{**vars(pickle), "Unpickler": _AllowlistUnpickler})


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint of the plugin or of RecBole, brought to the current schema: ``config``
    is plain options (``schema.plain_config``), ``model`` the registry's name of the model
    class, ``state_dict`` under the current weight names."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(
            f"Checkpoint file '{path}' does not exist. Fix: pass the path of a .pth file "
            "written by a training run (see the 'Saving current' line of its log)."
        )
    try:
        with warnings.catch_warnings():  # torch notes the pickle protocol of RecBole's files
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            try:
                state = torch.load(path, map_location=map_location, weights_only=True)
            except pickle.UnpicklingError:  # pickled objects: RecBole's own format
                state = torch.load(path, map_location=map_location, weights_only=False, pickle_module=_allowlist_pickle)
    except UntrustedCheckpointError as exc:
        raise DataError(
            f"Checkpoint file '{path}' refers to '{exc}', which is outside RecBole and this "
            "plugin, so it is not loaded. Fix: load only checkpoints written by RecBole or recbole-mdsrec."
        ) from None
    except Exception as exc:  # torch raises several types for a damaged zip or pickle
        raise DataError(
            f"Checkpoint file '{path}' cannot be read ({type(exc).__name__}: {exc}). "
            "Fix: it is damaged or not a torch checkpoint; retrain, or pick another file."
        ) from exc
    if not isinstance(state, dict) or "config" not in state:
        raise DataError(f"Checkpoint file '{path}' holds no run configuration. Fix: pass a .pth file "
                        "written by a RecBole or recbole-mdsrec training run.")
    return _current_schema(state)


def _current_schema(state: dict) -> dict:
    version = state.get("schema_version", LEGACY_VERSION)
    if version > SCHEMA_VERSION:
        raise DataError(f"The checkpoint was written by a newer recbole-mdsrec (schema {version}; this one reads "
                        f"up to {SCHEMA_VERSION}). Fix: upgrade recbole-mdsrec.")
    if version == LEGACY_VERSION:
        from recbole_mdsrec.registry import model_name

        legacy = state["config"]
        state = {**state, "model": model_name(legacy.model_class), "config": plain_config(legacy)}
        if "rng" in state and not isinstance(state["rng"]["numpy"], dict):
            kind, keys, position, has_gauss, cached = state["rng"]["numpy"]
            state["rng"] = {**state["rng"], "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                                                      "position": position, "has_gauss": has_gauss,
                                                      "cached_gaussian": cached}}
    state["config"] = migrate_options(state["config"], version)
    state["state_dict"] = migrate_weights(state["model"], state["state_dict"], version)
    state["schema_version"] = SCHEMA_VERSION
    return state


def load_model_state(model, checkpoint: dict) -> None:
    """Put a loaded checkpoint's weights (and RecBole's extra parameters) into ``model``."""
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))


def load_training_state(path) -> dict:
    """A ``<checkpoint>.last`` training state, refused early if it is a best-model file."""
    state = load_checkpoint(path)
    if "rng" not in state:
        raise DataError(
            f"'{path}' is a best-model checkpoint, which cannot resume training exactly. "
            f"Fix: pass --resume=<checkpoint>{LAST_SUFFIX}, the state the runner writes after every epoch."
        )
    return state


def restore_training_state(trainer, train_data, state: dict, path) -> int:
    """Put ``trainer`` and ``train_data`` back into ``state`` (read from ``path`` by
    :func:`load_training_state`); returns the epoch training continues from."""
    check_compatible(state["config"], trainer.config, path)
    load_model_state(trainer.model, state)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.start_epoch = state["epoch"] + 1
    trainer.cur_step = state["cur_step"]
    trainer.best_valid_score = state["best_valid_score"]
    trainer.best_valid_result = state["best_valid_result"]
    trainer.train_loss_dict = dict(state["train_loss_dict"])
    trainer.saved_model_file = state["best_checkpoint"]
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    numpy = rng["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    random.setstate(_as_tuples(rng["python"]))
    train_data.generator.set_state(rng["train_loader"])
    return trainer.start_epoch


def _as_tuples(value):
    """``random.setstate`` wants the tuples ``random.getstate`` gave, at every level."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def check_compatible(saved_config, config, path) -> None:
    """A checkpoint only fits the model and dataset it was trained on."""
    for key in ("model", "dataset"):
        if saved_config[key] != config[key]:
            raise DataError(
                f"Checkpoint '{path}' was trained with {key} '{saved_config[key]}', but this run uses "
                f"'{config[key]}'. Fix: pass --{key}={saved_config[key]}, or a checkpoint of '{config[key]}'."
            )
