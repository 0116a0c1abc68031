"""What RecBole needs on this stack, done without touching RecBole: ``compat.install()``,
the plugin's trainer, and an import of the plugin that leaves stock RecBole as it was."""

import datetime
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from recbole_mdsrec import compat
from recbole_mdsrec.config import Config
from recbole_mdsrec.errors import DataError
from recbole_mdsrec.registry import create_dataset, get_trainer
from recbole_mdsrec.training.checkpoints import load_checkpoint


def test_runner_does_not_import_ray_or_quick_start():
    code = ("import sys, recbole_mdsrec.training.runner; "
            "print(sorted(m for m in ('ray', 'recbole.quick_start') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_install_gives_recboles_metrics_their_numpy_aliases():
    # A config rebuilt from stored options may meet the metrics before any Config.__init__.
    code = ("import numpy as np, recbole_mdsrec.compat as compat\n"
            "from recbole.evaluator.metrics import NDCG\n"
            "print(hasattr(np, 'float'))\n"
            "compat.install(); compat.install()\n"
            "hits = np.array([[False, True], [True, False]]); lens = np.array([1, 1])\n"
            "print(NDCG({'topk': [2], 'metric_decimal_place': 4}).metric_info(hits, lens)[:, -1].tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines() == ["False", str([1 / np.log2(3), 1.0])]


@pytest.mark.parametrize("module, version", [(np, "2.0.0"), (pd, "3.0.0")])
def test_check_stack_refuses_versions_that_corrupt_data(monkeypatch, module, version):
    monkeypatch.setattr(module, "__version__", version)
    with pytest.raises(ImportError, match="constraints.txt"):
        compat.check_stack()


@pytest.mark.shared_data
def test_config_ignores_sys_argv(monkeypatch, quick_config):
    monkeypatch.setattr(sys, "argv", ["pytest", "--epochs=999", "-k", "x", "--tb=short"])
    config = Config("SASRec", "ml-slice", config_dict=quick_config)
    assert config["epochs"] == 1
    assert "tb" not in config.final_config_dict


@pytest.mark.shared_data
def test_missing_float_values_are_filled_not_nan(quick_config):
    """pandas 3 makes RecBole's in-place fill a no-op; the slice has a real missing year."""
    load_col = {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "release_year"]}
    config = Config("SASRec", "ml-slice", config_dict={**quick_config, "load_col": load_col})
    dataset = create_dataset(config)
    years = dataset.item_feat["release_year"].to_numpy()
    assert len(years) > 100 and np.isfinite(years).all()


@pytest.mark.shared_data
def test_plugin_training_runs_without_anomaly_detection_and_leaves_it_as_it_was(quick_config):
    import recbole.model.sequential_recommender.sine  # noqa: F401  (RecBole's module that switches it on)
    from recbole.trainer import Trainer

    from recbole_mdsrec.training.runner import build

    assert torch.is_anomaly_enabled()  # RecBole's doing, left alone by the plugin
    config = Config("SASRec", "ml-slice", config_dict=quick_config)
    _, (train_data, _, _), model, trainer = build(config)
    seen = []
    model.item_embedding.register_forward_pre_hook(lambda *_: seen.append(torch.is_anomaly_enabled()))
    trainer._train_epoch(train_data, 0)
    assert seen and not any(seen) and torch.is_anomaly_enabled()
    assert len(trainer.epoch_seconds) == 1
    assert type(trainer).__mro__[1].__name__ == "PluginTrainer" and issubclass(type(trainer), Trainer)
    assert get_trainer(config["MODEL_TYPE"], "SASRec") is type(trainer)


# What a stock RecBole run depends on, printed by a fresh interpreter: the metrics of two
# epochs of RecBole's own Trainer, and the process state the plugin could have changed.
STOCK_RUN = r"""
import json, sys
{plugin_imports}
import numpy as np, torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.trainer import Trainer
from recbole.trainer import trainer as trainer_module
from recbole.utils import get_model, get_trainer, init_seed
sys.argv = ["stock"]
torch.set_num_threads(1)
config = Config("SASRec", "ml-slice", config_dict={options})
init_seed(config["seed"], config["reproducibility"])
dataset = create_dataset(config)
train, valid, test = data_preparation(config, dataset)
init_seed(config["seed"], config["reproducibility"])
model = get_model("SASRec")(config, train._dataset)
trainer = get_trainer(config["MODEL_TYPE"], "SASRec")(config, model)
trainer.fit(train, valid, saved=False, show_progress=False)
state = {{
    "test": {{k: float(v) for k, v in trainer.evaluate(test, load_best_model=False).items()}},
    "trainer": [type(trainer).__module__, type(trainer).__name__, Trainer.evaluate.__module__,
                Trainer.resume_checkpoint.__module__, Trainer._train_epoch.__module__],
    "ddp": trainer_module.DistributedDataParallel.__module__,
    "anomaly": torch.is_anomaly_enabled(), "denormals_flushed": (torch.tensor([1e-39]) * 1.0).item() == 0.0,
    "threads": torch.get_num_threads(),
}}
print(json.dumps(state, sort_keys=True))
"""


def _stock_states(*plugin_imports: str, options: dict) -> list[dict]:
    """The state each fresh interpreter prints, run side by side (one thread each)."""
    processes = [subprocess.Popen([sys.executable, "-c", STOCK_RUN.format(plugin_imports=imports, options=repr(options))],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for imports in plugin_imports]
    states = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        states.append(json.loads(out.strip().splitlines()[-1]))
    return states


@pytest.mark.shared_data
def test_importing_the_plugin_leaves_stock_recbole_unchanged(quick_config):
    every_module = ("import pkgutil, importlib, recbole_mdsrec\n"
                    "for m in pkgutil.walk_packages(recbole_mdsrec.__path__, 'recbole_mdsrec.'):\n"
                    "    importlib.import_module(m.name)")
    options = {**quick_config, "epochs": 2, "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
               "train_neg_sample_args": None, "loss_type": "CE", "MAX_ITEM_LIST_LENGTH": 10,
               "load_col": {"inter": ["user_id", "item_id", "timestamp"]}, "metrics": ["Recall", "NDCG"], "valid_metric": "NDCG@10"}
    fresh, after_plugin = _stock_states("", every_module, options=options)
    assert after_plugin == fresh
    assert fresh["trainer"][0] == "recbole.trainer.trainer" and fresh["ddp"] == "torch.nn.parallel.distributed"


def _save(tmp_path, obj):
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path, pickle_protocol=4)  # protocol 4, as RecBole writes
    return path


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_recbole_written_checkpoint_loads_through_the_allowlist(tmp_path, quick_config):
    config = Config("SASRec", "ml-slice", config_dict=quick_config)
    path = _save(tmp_path, {"config": config, "state_dict": {"w": torch.ones(2)}, "best": np.float64(0.5)})
    with pytest.raises(Exception):
        torch.load(path)  # what RecBole's trainer does, and what the plugin's trainer replaces
    loaded = load_checkpoint(path)
    assert loaded["config"]["model"] == "SASRec" and isinstance(loaded["config"], dict)
    assert loaded["schema_version"] > 1 and loaded["config"]["feature_normalization"] == "none"
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(2))


def test_load_checkpoint_refuses_foreign_classes_and_names_them(tmp_path):
    path = _save(tmp_path, {"config": {"model": "x"}, "when": datetime.datetime(2020, 1, 1)})
    with pytest.raises(DataError, match="datetime.datetime"):
        load_checkpoint(path)


def test_load_checkpoint_missing_and_damaged_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pth")
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot be read"):
        load_checkpoint(damaged)
    without_config = _save(tmp_path, {"state_dict": {}})
    with pytest.raises(DataError, match="no run configuration"):
        load_checkpoint(without_config)
