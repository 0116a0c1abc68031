"""RecBole's Config with the plugin's yaml as internal defaults.

Precedence, lowest first: RecBole's own defaults, the plugin's ``properties/overall.yaml``,
``properties/model/<Model>.yaml`` and ``properties/dataset/<dataset>.yaml``, then the
user's config files, ``config_dict``, and the command line.

Unlike RecBole's Config it never reads ``sys.argv`` by itself (under pytest or inside
another program those are not RecBole options): command-line options are handed in
as ``cmd_args`` by the runner.
"""

from __future__ import annotations

import os

from recbole_mdsrec import compat  # noqa: F401  (before RecBole is used)
from recbole.config import Config as RecBoleConfig
from recbole.utils import ModelType

from recbole_mdsrec import registry
from recbole_mdsrec.data.normalize import check_normalization
from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.paths import DATA_ROOT, PROPERTIES_DIR

DEFAULT_DATASET = "ml-100k-mm"


class Config(RecBoleConfig):
    def __init__(self, model=None, dataset=None, config_file_list=None, config_dict=None, cmd_args=None):
        self._cmd_args = dict(cmd_args or {})
        super().__init__(model, dataset, config_file_list, config_dict)

    def _load_cmd_line(self):
        return self._convert_config_dict(dict(self._cmd_args))

    def _get_model_and_dataset(self, model, dataset):
        model = model if model is not None else self.external_config_dict.get("model")
        if model is None:
            raise ConfigError(
                "No model given. Fix: pass --model=NAME (e.g. --model=MDSRec or --model=SASRec)."
            )
        model_class = registry.get_model(model) if isinstance(model, str) else model
        if dataset is None:
            dataset = self.external_config_dict.get("dataset", DEFAULT_DATASET)
        return model_class.__name__, model_class, dataset

    def plugin_default_files(self, model: str, model_class, dataset: str):
        """The plugin's yaml for this run. A model's file belongs to the plugin's class of
        that name only: RecBole's original (``RecBole.SASRecF``) keeps RecBole's defaults."""
        files = [PROPERTIES_DIR / "overall.yaml"]
        if model_class.__module__.startswith("recbole_mdsrec."):
            files.append(PROPERTIES_DIR / "model" / f"{model}.yaml")
        return files + [PROPERTIES_DIR / "dataset" / f"{dataset}.yaml"]

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        for path in self.plugin_default_files(model, model_class, dataset):
            if path.is_file():
                self._update_internal_config_dict(path)
        if "data_path" not in self.external_config_dict:
            self.internal_config_dict["data_path"] = str(DATA_ROOT)

    def _init_device(self):
        """RecBole's, except in distributed mode, where RecBole assumes NCCL and one GPU per
        process: here the backend follows the device (NCCL on GPUs, gloo on the CPU)."""
        if "local_rank" not in self.final_config_dict:
            return super()._init_device()
        import torch

        final = self.final_config_dict
        final["gpu_id"] = ",".join(map(str, final["gpu_id"])) if isinstance(final["gpu_id"], tuple) else str(final["gpu_id"])
        use_gpu = bool(final["gpu_id"]) and torch.cuda.is_available()
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(
                backend="nccl" if use_gpu else "gloo",
                rank=final["local_rank"] + final["offset"],
                world_size=final["world_size"],
                init_method=f"tcp://{final['ip']}:{final['port']}",
            )
        final["device"] = torch.device("cuda", final["local_rank"]) if use_gpu else torch.device("cpu")
        if use_gpu:
            torch.cuda.set_device(final["local_rank"])
        final["single_spec"] = False
        if final["local_rank"] != 0:  # one process speaks
            final["state"], final["show_progress"], final["verbose"] = "error", False, False

    def _set_default_parameters(self):
        self._check_loss_and_sampling()
        check_normalization(self.final_config_dict.get("feature_normalization"))
        try:
            super()._set_default_parameters()
        except (ValueError, TypeError, NotImplementedError, RuntimeError) as error:
            raise ConfigError(f"{error} Fix: correct that option (see properties/overall.yaml for the defaults).") from None

    def _check_loss_and_sampling(self):
        """RecBole's own message for these names the wrong cause or none (BPR without
        negatives fails deep inside the model)."""
        final = self.final_config_dict
        if hasattr(self.model_class, "input_type") or final.get("MODEL_TYPE") != ModelType.SEQUENTIAL:
            return
        loss, sampling = final.get("loss_type"), final.get("train_neg_sample_args")
        sampling = None if sampling in (None, "None") else sampling
        if loss == "CE" and sampling is not None:
            raise ConfigError(
                f"loss_type=CE scores every item, so it takes no sampled negatives, but train_neg_sample_args "
                f"is {sampling}. Fix: drop --train_neg_sample_args (or set it to None), or use --loss_type=BPR."
            )
        if loss == "BPR" and sampling is None:
            raise ConfigError(
                "loss_type=BPR needs sampled negatives, but train_neg_sample_args is None. Fix: add "
                "--train_neg_sample_args=\"{'distribution': 'uniform', 'sample_num': 1}\", or use --loss_type=CE."
            )


def data_root(config: RecBoleConfig) -> str:
    """The data root a config was made from: RecBole keeps ``<root>/<dataset>`` in ``data_path``."""
    return os.path.dirname(os.path.normpath(config["data_path"]))


def set_data_root(config: RecBoleConfig, root: str) -> None:
    """Point ``config`` at the same dataset under another data root, as RecBole would have."""
    config["data_path"] = os.path.join(root, config["dataset"])


def restored_config(config: RecBoleConfig) -> RecBoleConfig:
    """A config unpickled from a checkpoint, completed with the keys the plugin's yaml gained
    after it was saved. A new key's default is, by this project's rule, the behaviour the code
    had before the key existed, so a saved run resumes or reloads unchanged across upgrades;
    keys the saved config holds keep their values."""
    current = Config(config["model"], config["dataset"], config_dict={"data_path": data_root(config)})
    for key, value in current.final_config_dict.items():
        if key not in config.final_config_dict:
            config[key] = value
    return config

