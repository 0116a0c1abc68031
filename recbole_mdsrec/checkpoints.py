"""Training state that survives an interruption, and reloading trained models.

RecBole saves a checkpoint only when validation improves, without random-number states,
so a resumed run would neither start where the interrupted one stopped nor draw the same
dropout masks and batch order. After every evaluated epoch the runner also writes
``<best checkpoint>.last`` (atomically) holding everything the next epoch depends on:
weights, optimizer, early-stopping counters, the train loader's shuffling generator and
the global torch/numpy/random states. Resuming from it continues the same trajectory.
"""

from __future__ import annotations

import os
import random
import secrets
from pathlib import Path

import numpy as np
import torch

from recbole_mdsrec.compat import load_checkpoint, load_model_state
from recbole_mdsrec.errors import DataError
from recbole_mdsrec.files import atomic_write

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


def atomic_torch_save(obj, path) -> None:
    with atomic_write(path) as f:
        torch.save(obj, f, pickle_protocol=4)


def latest_training_state(folder) -> Path | None:
    """The newest ``<checkpoint>.last`` in ``folder``, if any."""
    states = sorted(Path(folder).glob(f"*.pth{LAST_SUFFIX}"), key=lambda p: p.stat().st_mtime)
    return states[-1] if states else None


def save_training_state(trainer, train_data, epoch: int, timing: dict | None = None) -> Path:
    """Everything needed to go on after ``epoch`` as if never stopped; ``timing`` carries the
    training time so far, so that a resumed run reports its whole time, not its last part."""
    path = last_state_path(trainer.saved_model_file)
    atomic_torch_save({
        "config": trainer.config,
        "epoch": epoch,
        "cur_step": trainer.cur_step,
        "best_valid_score": trainer.best_valid_score,
        "best_valid_result": trainer.best_valid_result,
        "train_loss_dict": dict(trainer.train_loss_dict),
        "best_checkpoint": trainer.saved_model_file,
        "state_dict": trainer.model.state_dict(),
        "other_parameter": trainer.model.other_parameter(),
        "optimizer": trainer.optimizer.state_dict(),
        "timing": dict(timing or {}),
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
            "train_loader": train_data.generator.get_state(),
        },
    }, path)
    return path


def load_training_state(path) -> dict:
    """A ``<checkpoint>.last`` training state, refused early if it is a best-model file."""
    state = load_checkpoint(path, map_location="cpu")
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
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    train_data.generator.set_state(rng["train_loader"])
    return trainer.start_epoch


def check_compatible(saved_config, config, path) -> None:
    """A checkpoint only fits the model and dataset it was trained on."""
    for key in ("model", "dataset"):
        if saved_config[key] != config[key]:
            raise DataError(
                f"Checkpoint '{path}' was trained with {key} '{saved_config[key]}', but this run uses "
                f"'{config[key]}'. Fix: pass --{key}={saved_config[key]}, or a checkpoint of '{config[key]}'."
            )
