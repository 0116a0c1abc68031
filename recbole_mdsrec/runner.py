"""Train, validate and test one model on one dataset: RecBole's ``run_recbole`` with the
plugin's config, model and dataset lookup, and without ``recbole.quick_start`` (which
imports ray, and ray needs the ``pkg_resources`` that setuptools >= 81 removed)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from logging import getLogger

import torch

from recbole_mdsrec import compat  # noqa: F401  (before RecBole is used)
from recbole.data import data_preparation
from recbole.utils import get_trainer, init_logger, init_seed, set_color

from recbole_mdsrec.checkpoints import (
    load_training_state, restore_training_state, save_training_state, unique_checkpoint_path,
)
from recbole_mdsrec.config import Config, restored_config, set_data_root
from recbole_mdsrec.data.locate import ensure_dataset
from recbole_mdsrec.launch import configure_torch
from recbole_mdsrec.models.fast_layers import use_fast_layers
from recbole_mdsrec.registry import create_dataset


@dataclass
class RunResult:
    """What one training run produced; ``config`` is the fully resolved RecBole config."""

    model: str
    dataset: str
    best_valid_score: float
    best_valid_result: dict
    test_result: dict
    epochs: int
    train_seconds: float
    epoch_seconds: list[float] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    eval_seconds: float = 0.0
    n_parameters: int = 0
    checkpoint: str | None = None
    config: Config | None = None


def _time_epochs(trainer) -> list[float]:
    """Record the duration of each training epoch without touching the trainer's class."""
    durations: list[float] = []
    train_epoch = trainer._train_epoch

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return train_epoch(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - start)

    trainer._train_epoch = timed
    return durations


def build_data(config: Config):
    """The dataset and its train/valid/test loaders (seeded as RecBole does)."""
    configure_torch()
    ensure_dataset(config)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    getLogger().info(dataset)
    return dataset, data_preparation(config, dataset)


def build_model(config: Config, train_data):
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = config.model_class(config, train_data._dataset).to(config["device"])
    if config["fast_layers"]:
        use_fast_layers(model)
    getLogger().info(model)
    return model


def build(config: Config):
    """Dataset, split loaders, model and trainer for ``config``."""
    dataset, splits = build_data(config)
    model = build_model(config, splits[0])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.saved_model_file = unique_checkpoint_path(trainer.saved_model_file)
    return dataset, splits, model, trainer


def resumed_config(state: dict, cmd_args=None) -> Config:
    """The config saved in a training state, with command-line overrides (e.g. more epochs).
    ``data_path`` is the data root, as on any command line; the config holds root/dataset."""
    config = restored_config(state["config"])
    for key, value in config._convert_config_dict(dict(cmd_args or {})).items():
        if key == "data_path":
            set_data_root(config, value)
        else:
            config[key] = value
    return config


def run(model=None, dataset=None, config_file_list=None, config_dict=None, cmd_args=None,
        saved: bool = True, resume=None) -> RunResult:
    """Train to early stopping and test. ``resume`` is a ``<checkpoint>.last`` training state:
    its own config is used (model and dataset included), updated by ``cmd_args``."""
    state = load_training_state(resume) if resume is not None else None
    if state is None:
        config = Config(model, dataset, config_file_list, config_dict, cmd_args)
    else:
        config = resumed_config(state, cmd_args)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    _, (train_data, valid_data, test_data), model, trainer = build(config)
    if not config["single_spec"]:
        # Each process names its checkpoint by its own clock; all must load the one rank 0 saves.
        names = [trainer.saved_model_file]
        torch.distributed.broadcast_object_list(names, src=0)
        trainer.saved_model_file = names[0]
    if state is not None:
        epoch = restore_training_state(trainer, train_data, state, resume)
        logger.info(f"Resuming from {resume} at epoch {epoch}")
    timing = (state or {}).get("timing") or {}  # of the epochs before an interruption
    earlier_seconds, earlier_epochs = timing.get("train_seconds", 0.0), list(timing.get("epoch_seconds", []))
    epoch_seconds = _time_epochs(trainer)

    def keep_training_state(epoch, valid_score):
        save_training_state(trainer, train_data, epoch, timing={
            "train_seconds": earlier_seconds + time.perf_counter() - start,
            "epoch_seconds": earlier_epochs + epoch_seconds,
        })

    start = time.perf_counter()
    if trainer.start_epoch >= config["epochs"] or trainer.cur_step > config["stopping_step"]:
        # A run that had ended (every epoch, or stopped early: RecBole's stop condition) is
        # resumed: fit would train on, or save its last weights over the best model.
        best_valid_score, best_valid_result = trainer.best_valid_score, trainer.best_valid_result
    else:
        best_valid_score, best_valid_result = trainer.fit(
            train_data, valid_data, saved=saved, show_progress=config["show_progress"],
            callback_fn=keep_training_state if saved and config["local_rank"] == 0 else None,
        )
    train_seconds = earlier_seconds + time.perf_counter() - start
    if not config["single_spec"]:
        torch.distributed.barrier()  # the best checkpoint, saved by rank 0, is complete before anyone loads it

    start = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])
    eval_seconds = time.perf_counter() - start

    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    return RunResult(
        model=config["model"],
        dataset=config["dataset"],
        best_valid_score=float(best_valid_score),
        best_valid_result=dict(best_valid_result or {}),
        test_result=dict(test_result),
        epochs=len(trainer.train_loss_dict),
        train_seconds=train_seconds,
        epoch_seconds=earlier_epochs + epoch_seconds,
        train_losses=[float(trainer.train_loss_dict[e]) for e in sorted(trainer.train_loss_dict)],
        eval_seconds=eval_seconds,
        n_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        checkpoint=trainer.saved_model_file if saved else None,
        config=config,
    )
