"""Fixes for running RecBole 1.2.1 on today's stack, applied once on import.

Import this module before RecBole is used (every plugin module that touches RecBole does).
Each fix has a test in ``tests/test_compat.py`` that fails without it.

What the pins in ``constraints.txt`` already settle, and why they are pins and not
patches: pandas 3 turns RecBole's in-place NaN filling into a silent no-op (NaNs reach
the tensors) and numpy 2 removed the aliases (``np.float`` ...) that RecBole's
``Config`` restores by assignment; ``check_stack`` says so loudly if they are broken.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import pickle
import types

import numpy as np
import pandas as pd
import torch

from recbole_mdsrec.errors import DataError

def check_stack() -> None:
    """Refuse versions known to corrupt RecBole's data silently."""
    if int(np.__version__.split(".")[0]) >= 2:
        raise ImportError(
            f"numpy {np.__version__} is installed, but RecBole 1.2.1 needs numpy<2 "
            "(its Config uses aliases numpy 2 removed). Fix: pip install -c constraints.txt -e ."
        )
    if int(pd.__version__.split(".")[0]) >= 3:
        raise ImportError(
            f"pandas {pd.__version__} is installed, but RecBole 1.2.1 needs pandas<3 "
            "(pandas 3 makes its NaN filling a silent no-op). Fix: pip install -c constraints.txt -e ."
        )


def install_numpy_aliases() -> None:
    """RecBole's metrics use ``np.float`` (NDCG) and other aliases numpy 1.24 removed;
    RecBole only restores them in ``Config.__init__``. A Config unpickled from a checkpoint
    (``--resume``) never runs that, and the first evaluation then crashes. Install them at
    import with RecBole's own method, which never reads its ``self``."""
    from recbole.config import Config as RecBoleConfig

    RecBoleConfig.compatibility_settings(None)


def disable_anomaly_detection() -> None:
    """RecBole's ``sine.py`` turns autograd anomaly detection on at import, for every
    model, which makes each backward pass several times slower. Import it, then undo it."""
    importlib.import_module("recbole.model.sequential_recommender")
    torch.autograd.set_detect_anomaly(False)


# RecBole pickles its whole Config (with pickle protocol 4) into every checkpoint.
# torch >= 2.6 loads weights-only by default, and its weights-only unpickler can neither
# read protocol 4 nor the Config. Rather than switching safety off, unpickle with an
# allowlist: classes of RecBole and this plugin, and the few torch/numpy/stdlib names a
# state dict and a Config are made of. Anything else is refused, by name.
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


def load_checkpoint(path, map_location=None) -> dict:
    """Load a RecBole-style checkpoint on torch >= 2.6 (see TRUSTED_NAMES for why)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(
            f"Checkpoint file '{path}' does not exist. Fix: pass the path of a .pth file "
            "written by a training run (see the 'Saving current' line of its log)."
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=False, pickle_module=_allowlist_pickle)
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


def load_model_state(model, checkpoint: dict) -> None:
    """Put a loaded checkpoint's weights (and RecBole's extra parameters) into ``model``."""
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))


def _load_weights_into(trainer, checkpoint_file) -> dict:
    checkpoint = load_checkpoint(checkpoint_file, map_location=trainer.device)
    load_model_state(trainer.model, checkpoint)
    trainer.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
    return checkpoint


def patch_trainer_checkpoint_loading() -> None:
    """Route RecBole's two checkpoint loads (best model before testing, and resuming)
    through :func:`load_checkpoint`."""
    from recbole.trainer.trainer import Trainer

    if getattr(Trainer, "_mdsrec_patched", False):
        return
    original_evaluate = Trainer.evaluate

    @functools.wraps(original_evaluate)
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model:
            _load_weights_into(self, model_file or self.saved_model_file)
        return original_evaluate(self, eval_data, load_best_model=False, show_progress=show_progress)

    def resume_checkpoint(self, resume_file):
        checkpoint = load_checkpoint(resume_file, map_location=self.device)
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

    Trainer.evaluate = evaluate
    Trainer.resume_checkpoint = resume_checkpoint
    Trainer._mdsrec_patched = True


def frozen_input_names(module) -> list[str]:
    """Fully qualified names of the non-persistent buffers: in this plugin's models, the
    frozen inputs built from the dataset (features, masks, sparse graphs)."""
    return [f"{prefix}.{name}" if prefix else name
            for prefix, sub in module.named_modules() for name in sub._non_persistent_buffers_set]


def patch_distributed_wrapper() -> None:
    """RecBole wraps the model as ``DistributedDataParallel(model, device_ids=[local_rank])``,
    which torch refuses for a model on the CPU (``device_ids`` must be None there); pass
    them only for a model on a GPU, so that distributed training also runs on gloo.
    DDP also broadcasts every buffer from rank 0, which fails on sparse graphs: the frozen
    inputs are left out (every process builds the same ones from the same data)."""
    from recbole.trainer import trainer as trainer_module
    from torch.nn.parallel import DistributedDataParallel

    if getattr(trainer_module.DistributedDataParallel, "_mdsrec_patched", False):
        return

    def any_device_ddp(module, device_ids=None, **kwargs):
        on_gpu = next(module.parameters()).device.type == "cuda"
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, frozen_input_names(module))
        return DistributedDataParallel(module, device_ids=device_ids if on_gpu else None, **kwargs)

    any_device_ddp._mdsrec_patched = True
    trainer_module.DistributedDataParallel = any_device_ddp


def apply() -> None:
    check_stack()
    install_numpy_aliases()
    disable_anomaly_detection()
    patch_trainer_checkpoint_loading()
    patch_distributed_wrapper()


apply()
