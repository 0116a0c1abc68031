"""The plugin's trainers: RecBole's, subclassed, never patched.

``registry.get_trainer`` returns :func:`plugin_trainer` of the RecBole trainer a model
would get (``Trainer``, ``KGTrainer``, ...). What the subclass changes, and why:

- checkpoints hold plain options (``training/checkpoints.py``), and every checkpoint load
  (the best model before testing, ``resume_checkpoint``) reads them with
  ``weights_only=True``: torch >= 2.6 refuses RecBole's pickled Config by default;
- a model with a ``before_train_epoch(epoch)`` method has it called before each training
  epoch (MISSRec re-clusters its interests there, as its reference trainer does);
- each training epoch runs with autograd anomaly detection off (RecBole's ``sine.py``
  switches it on for the whole process at import, which makes every backward pass several
  times slower) and records its duration in ``epoch_seconds``;
- training losses and evaluation scores are computed in the option ``precision``
  (``training/precision.py``; RecBole's own ``enable_amp`` autocasts to float16 on GPUs only);
- each full-sort evaluation keeps every user's top-k metrics, keyed by user token, in
  ``last_per_user`` (``training/per_user.py``), for per-user significance tests;
- in distributed mode the model is wrapped as RecBole does, except that ``device_ids`` is
  given only for a model on a GPU (torch refuses it for a CPU model, so gloo could not run)
  and the frozen inputs (features, masks, sparse graphs: non-persistent buffers, built alike
  by every process) are not broadcast, which DDP cannot do for sparse tensors.
"""

from __future__ import annotations

import functools
import os
import time
import warnings

import torch
from recbole.trainer import AbstractTrainer, Trainer
from recbole.utils import set_color
from torch.nn.parallel import DistributedDataParallel

from recbole_mdsrec.training.checkpoints import atomic_torch_save, best_model_state, load_checkpoint, load_model_state
from recbole_mdsrec.training.per_user import PerUserEvaluator, with_user_tokens
from recbole_mdsrec.training.precision import Precision


def frozen_input_names(module) -> list[str]:
    """Fully qualified names of the non-persistent buffers: in this plugin's models, the
    frozen inputs built from the dataset (features, masks, sparse graphs)."""
    return [f"{prefix}.{name}" if prefix else name
            for prefix, sub in module.named_modules() for name in sub._non_persistent_buffers_set]


class _DistributedWrapping(AbstractTrainer):
    """Takes the place of ``AbstractTrainer.__init__`` in the plugin trainers' MRO."""

    def __init__(self, config, model):
        self.config = config
        self.model = model
        if not config["single_spec"]:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(self.model, frozen_input_names(self.model))
            on_gpu = next(self.model.parameters()).device.type == "cuda"
            self.distributed_model = DistributedDataParallel(
                self.model, device_ids=[config["local_rank"]] if on_gpu else None)


class PluginTrainer:
    """Mixed in before a RecBole ``Trainer`` subclass (see the module docstring)."""

    def __init__(self, config, model):
        # RecBole's ensure_dir checks, then creates: distributed ranks starting together race.
        os.makedirs(config["checkpoint_dir"], exist_ok=True)
        super().__init__(config, model)
        self.epoch_seconds: list[float] = []  # of the epochs this trainer ran
        self.precision = Precision.resolve(config["precision"] or "fp32", config["device"])
        if self.precision.fallback_message:
            self.logger.warning(self.precision.fallback_message)
        self.enable_amp = False  # RecBole's own autocast: the precision above replaces it
        self.enable_scaler = self.precision.scaler
        self.evaluator = PerUserEvaluator(config)
        self.last_per_user: dict | None = None  # of the last full-sort evaluation, one process only
        self._eval_users: list[torch.Tensor] | None = None

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        start = time.perf_counter()
        loss_func = loss_func or self.model.calculate_loss
        before_epoch = getattr(getattr(self.model, "module", self.model), "before_train_epoch", None)
        if before_epoch is not None:
            before_epoch(epoch_idx)

        def loss_in_precision(interaction):
            with self.precision.autocast():
                losses = loss_func(interaction)
            return tuple(loss.float() for loss in losses) if isinstance(losses, tuple) else losses.float()

        try:
            with torch.autograd.set_detect_anomaly(False), warnings.catch_warnings():
                # torch deprecates the GradScaler call RecBole makes each epoch (CUDA-only).
                warnings.filterwarnings("ignore", category=FutureWarning, message=".*GradScaler")
                return super()._train_epoch(train_data, epoch_idx, loss_func=loss_in_precision, show_progress=show_progress)
        finally:
            self.epoch_seconds.append(time.perf_counter() - start)

    def _full_sort_batch_eval(self, batched_data):
        with self.precision.autocast():
            interaction, scores, positive_u, positive_i = super()._full_sort_batch_eval(batched_data)
        if self._eval_users is not None:  # one row of scores per row of the batch
            self._eval_users.append(interaction[self.config["USER_ID_FIELD"]].cpu())
        return interaction, scores.float(), positive_u, positive_i

    def _neg_sample_batch_eval(self, batched_data):
        self._eval_users = None  # rows are regrouped by user there: no per-user values
        with self.precision.autocast():
            interaction, scores, positive_u, positive_i = super()._neg_sample_batch_eval(batched_data)
        return interaction, scores.float(), positive_u, positive_i

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        atomic_torch_save(best_model_state(self, epoch), saved_model_file)
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {saved_model_file}")

    def resume_checkpoint(self, resume_file):
        checkpoint = load_checkpoint(resume_file, map_location=self.device)
        self.saved_model_file = str(resume_file)
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        if checkpoint["config"]["model"].lower() != self.config["model"].lower():
            self.logger.warning(
                "Architecture configuration given in config file is different from that of "
                "checkpoint. This may yield an exception while state_dict is being loaded."
            )
        load_model_state(self.model, checkpoint)
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            load_model_state(self.model, load_checkpoint(checkpoint_file, map_location=self.device))
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        self._eval_users = [] if self.config["single_spec"] else None  # ranks would each see a part
        result = super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)
        self.last_per_user = None
        if self._eval_users and self.evaluator.per_user:
            uid_field = self.config["USER_ID_FIELD"]
            tokens = eval_data._dataset.id2token(uid_field, torch.cat(self._eval_users).numpy())
            self.last_per_user = with_user_tokens(self.evaluator.per_user, tokens)
        self._eval_users = None
        return result


@functools.cache
def plugin_trainer(base: type) -> type:
    """``base`` (a RecBole trainer class) with :class:`PluginTrainer` on top. Trainers outside
    ``Trainer``'s family (RecBole's tree-model trainers) are returned as they are."""
    if not issubclass(base, Trainer):
        return base
    return type(base.__name__, (PluginTrainer, base, _DistributedWrapping),
                {"__module__": __name__, "__qualname__": base.__name__,
                 "__doc__": f"RecBole's {base.__name__} with the plugin's trainer mixin (recbole_mdsrec/training/trainer.py)."})
