"""RecBole's Config with the plugin's yaml as internal defaults.

Precedence, lowest first: RecBole's own defaults, the plugin's ``overall.yaml``,
``model/<Model>.yaml`` and ``dataset/<dataset>.yaml`` (``recbole_mdsrec.properties``), then
the user's config files, ``config_dict``, and the command line.

Unlike RecBole's Config it never reads ``sys.argv`` by itself (under pytest or inside
another program those are not RecBole options): command-line options are handed in as
``cmd_args``. Its data root follows ``recbole_mdsrec/roots.py``, its printout shows only
what is true of this machine, and :meth:`Config.from_plain` rebuilds the config of a stored
run from its plain options.
"""

from __future__ import annotations

import os
import re
from typing import Mapping

from recbole.config import Config as RecBoleConfig
from recbole.utils import ModelType

from recbole_mdsrec import compat, properties, registry, roots
from recbole_mdsrec.data.normalize import check_normalization
from recbole_mdsrec.errors import ConfigError, DataError
from recbole_mdsrec.schema import plain_config

DEFAULT_DATASET = "ml-100k-mm"

# Options RecBole derives while it builds a Config (from the others, or from this process:
# device and ranks); a config rebuilt from stored options derives them again. A rebuilt
# config is always a single process.
DERIVED_OPTIONS = frozenset({
    "model", "dataset", "data_path", "MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type", "valid_metric_bigger",
    "device", "use_gpu", "single_spec", "local_rank", "valid_neg_sample_args", "test_neg_sample_args",
    "world_size", "nproc", "offset", "ip", "port",
})
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class Config(RecBoleConfig):
    def __init__(self, model=None, dataset=None, config_file_list=None, config_dict=None, cmd_args=None):
        compat.install()
        self._cmd_args = dict(cmd_args or {})
        super().__init__(model, dataset, config_file_list, config_dict)

    @classmethod
    def from_plain(cls, plain: Mapping, model: str | None = None, cmd_args: Mapping | None = None) -> "Config":
        """The config of a stored run, from its plain options (``schema.plain_config``,
        brought to the current schema by ``schema.migrate_options``): every stored option is
        given back explicitly, RecBole derives the rest again, and ``cmd_args`` (e.g. more
        epochs, another ``data_path`` root) go on top. ``model`` is the registry's name of
        the stored model class (``registry.model_name``). Stored options that do not come
        back as stored are refused, rather than trained or tested on silently."""
        options = {k: v for k, v in plain.items() if k not in DERIVED_OPTIONS}
        sampling = options.get("train_neg_sample_args")
        if isinstance(sampling, dict) and sampling.get("distribution") == "none":
            options["train_neg_sample_args"] = None  # RecBole's resolved form of "no sampling"
        cmd_args = dict(cmd_args or {})
        cmd_args.setdefault("data_path", data_root(plain))
        config = cls(model or plain["model"], plain["dataset"], config_dict=options, cmd_args=cmd_args)
        rebuilt = plain_config(config)
        changed = sorted(k for k in options if k not in cmd_args and rebuilt.get(k) != plain[k])
        if changed:
            raise DataError(
                f"The stored options {', '.join(changed)} of this run do not come back as stored (stored "
                f"{[plain[k] for k in changed]}, rebuilt {[rebuilt.get(k) for k in changed]}). Fix: reload it with "
                "the recbole-mdsrec version that wrote it (its results rows name the code version)."
            )
        return config

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
        files = [properties.path("overall.yaml")]
        if model_class.__module__.startswith("recbole_mdsrec."):
            files.append(properties.path("model", f"{model}.yaml"))
        for path in files:
            if not path.is_file():
                raise ConfigError(
                    f"The plugin's default options file {path} is missing, so {model}'s defaults are unknown. "
                    "Fix: reinstall recbole-mdsrec (pip install .), or, for a model you are adding, write "
                    f"properties/model/{model}.yaml (one option a line, see README 'Adding a model')."
                )
        dataset_file = properties.path("dataset", f"{dataset}.yaml")
        return files + ([dataset_file] if dataset_file.is_file() else [])

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        for path in self.plugin_default_files(model, model_class, dataset):
            self._update_internal_config_dict(path)
        if "data_path" not in self.external_config_dict:
            self.internal_config_dict["data_path"] = str(roots.data_root())

    def _init_device(self):
        """RecBole's, except in distributed mode, where RecBole assumes NCCL and one GPU per
        process: here the backend follows the device (NCCL on GPUs, gloo on the CPU). And
        ``use_gpu`` says whether a GPU is used, not whether one was asked for."""
        import torch

        final = self.final_config_dict
        if "local_rank" not in final:
            super()._init_device()
            final["use_gpu"] = final["device"].type == "cuda"
            return
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
        final["use_gpu"] = use_gpu
        if use_gpu:
            torch.cuda.set_device(final["local_rank"])
        final["single_spec"] = False
        if final["local_rank"] != 0:  # one process speaks
            final["state"], final["show_progress"], final["verbose"] = "error", False, False

    def __str__(self):
        """RecBole's printout, without the GPU ids on a machine that uses none."""
        text = super().__str__()
        if self.final_config_dict.get("use_gpu"):
            return text
        return "\n".join(line for line in text.split("\n")
                         if _COLOUR.sub("", line).split(" =")[0].strip() != "gpu_id")

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


def data_root(config) -> str:
    """The data root a config (or its plain options) was made from: RecBole keeps
    ``<root>/<dataset>`` in ``data_path``."""
    return os.path.dirname(os.path.normpath(config["data_path"]))
