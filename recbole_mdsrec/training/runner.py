"""Train, validate and test one model on one dataset: RecBole's ``run_recbole`` with the
plugin's config, model, dataset and trainer lookup, and without ``recbole.quick_start``
(which imports ray, and ray needs the ``pkg_resources`` that setuptools >= 81 removed)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from logging import getLogger
from typing import Mapping

import torch
from recbole.data import data_preparation
from recbole.utils import init_logger, init_seed, set_color

from recbole_mdsrec.config import Config
from recbole_mdsrec.data.locate import ensure_dataset
from recbole_mdsrec.models.compiled import compile_forward
from recbole_mdsrec.models.fast_layers import use_fast_layers
from recbole_mdsrec.registry import create_dataset, get_trainer
from recbole_mdsrec.training.checkpoints import (
    load_training_state,
    restore_training_state,
    save_training_state,
    unique_checkpoint_path,
)


@dataclass(frozen=True)
class RunRequest:
    """One training run, as RecBole's ``run_recbole`` takes it, plus the plugin's own:
    ``overrides`` are command-line ``--key=value`` options (above everything else), and
    ``resume`` a ``<checkpoint>.last`` training state whose own options the run takes
    (model and dataset included), updated by ``overrides``."""

    model: str | None = None
    dataset: str | None = None
    config_files: tuple[str, ...] = ()
    config_dict: Mapping = field(default_factory=dict)
    overrides: Mapping = field(default_factory=dict)
    resume: str | None = None
    saved: bool = True


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
    # "valid" / "test" -> {"user": tokens, "ndcg@10": values, ...} of the tested model, where
    # the evaluation was full-sort in one process (training/per_user.py); else None.
    per_user: dict | None = None


def build_data(config: Config):
    """The dataset and its train/valid/test loaders (seeded as RecBole does)."""
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
    if config["compile"]:
        compile_forward(model)
    getLogger().info(model)
    return model


def build(config: Config):
    """Dataset, split loaders, model and trainer for ``config``."""
    dataset, splits = build_data(config)
    model = build_model(config, splits[0])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.saved_model_file = unique_checkpoint_path(trainer.saved_model_file)
    return dataset, splits, model, trainer


def run(model=None, dataset=None, config_file_list=None, config_dict=None, cmd_args=None,
        saved: bool = True, resume=None) -> RunResult:
    """Train to early stopping and test, with ``run_recbole``'s arguments (see :class:`RunRequest`)."""
    return run_request(RunRequest(model, dataset, tuple(config_file_list or ()), dict(config_dict or {}),
                                  dict(cmd_args or {}), resume, saved))


def run_request(request: RunRequest) -> RunResult:
    """Train to early stopping and test."""
    state = load_training_state(request.resume) if request.resume is not None else None
    if state is None:
        config = Config(request.model, request.dataset, list(request.config_files) or None,
                        dict(request.config_dict), request.overrides)
    else:
        config = Config.from_plain(state["config"], model=state["model"], cmd_args=request.overrides)
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
        epoch = restore_training_state(trainer, train_data, state, request.resume)
        logger.info(f"Resuming from {request.resume} at epoch {epoch}")
    timing = (state or {}).get("timing") or {}  # of the epochs before an interruption
    earlier_seconds, earlier_epochs = timing.get("train_seconds", 0.0), list(timing.get("epoch_seconds", []))

    def keep_training_state(epoch, valid_score):
        save_training_state(trainer, train_data, epoch, timing={
            "train_seconds": earlier_seconds + time.perf_counter() - start,
            "epoch_seconds": earlier_epochs + trainer.epoch_seconds,
        })

    start = time.perf_counter()
    if trainer.start_epoch >= config["epochs"] or trainer.cur_step > config["stopping_step"]:
        # A run that had ended (every epoch, or stopped early: RecBole's stop condition) is
        # resumed: fit would train on, or save its last weights over the best model.
        best_valid_score, best_valid_result = trainer.best_valid_score, trainer.best_valid_result
    else:
        best_valid_score, best_valid_result = trainer.fit(
            train_data, valid_data, saved=request.saved, show_progress=config["show_progress"],
            callback_fn=keep_training_state if request.saved and config["local_rank"] == 0 else None,
        )
    train_seconds = earlier_seconds + time.perf_counter() - start
    if not config["single_spec"]:
        torch.distributed.barrier()  # the best checkpoint, saved by rank 0, is complete before anyone loads it

    start = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=request.saved, show_progress=config["show_progress"])
    eval_seconds = time.perf_counter() - start
    per_user = None
    if trainer.last_per_user is not None:
        test_per_user = trainer.last_per_user
        trainer.evaluate(valid_data, load_best_model=False)  # the tested weights, on validation
        if trainer.last_per_user is not None:
            per_user = {"valid": trainer.last_per_user, "test": test_per_user}

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
        epoch_seconds=earlier_epochs + trainer.epoch_seconds,
        train_losses=[float(trainer.train_loss_dict[e]) for e in sorted(trainer.train_loss_dict)],
        eval_seconds=eval_seconds,
        n_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        checkpoint=trainer.saved_model_file if request.saved else None,
        config=config,
        per_user=per_user,
    )
