"""Each stack fix in recbole_mdsrec/compat.py, tested so that it fails without the fix."""

import datetime
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from recbole_mdsrec import compat
from recbole_mdsrec.config import Config
from recbole_mdsrec.errors import DataError
from recbole_mdsrec.registry import create_dataset


def test_anomaly_detection_stays_off_after_recbole_models_load():
    import recbole.model.sequential_recommender.sine  # noqa: F401  (the module that turns it on)

    assert not torch.is_anomaly_enabled()


def test_runner_does_not_import_ray_or_quick_start():
    code = "import sys, recbole_mdsrec.runner; print(sorted(m for m in ('ray', 'recbole.quick_start') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ndcg_works_without_building_a_config():
    # A resumed run restores its Config by unpickling; only Config.__init__ set the aliases.
    code = ("import numpy as np, recbole_mdsrec.compat\n"
            "from recbole.evaluator.metrics import NDCG\n"
            "hits = np.array([[False, True], [True, False]]); lens = np.array([1, 1])\n"
            "print(NDCG({'topk': [2], 'metric_decimal_place': 4}).metric_info(hits, lens)[:, -1].tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str([1 / np.log2(3), 1.0])


def test_config_ignores_sys_argv(monkeypatch, quick_config):
    monkeypatch.setattr(sys, "argv", ["pytest", "--epochs=999", "-k", "x", "--tb=short"])
    config = Config("SASRec", "ml-slice", config_dict=quick_config)
    assert config["epochs"] == 1
    assert "tb" not in config.final_config_dict


@pytest.mark.parametrize("module, version", [(np, "2.0.0"), (pd, "3.0.0")])
def test_check_stack_refuses_versions_that_corrupt_data(monkeypatch, module, version):
    monkeypatch.setattr(module, "__version__", version)
    with pytest.raises(ImportError, match="constraints.txt"):
        compat.check_stack()


def test_missing_float_values_are_filled_not_nan(quick_config):
    """pandas 3 makes RecBole's in-place fill a no-op; the slice has a real missing year."""
    load_col = {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "release_year"]}
    config = Config("SASRec", "ml-slice", config_dict={**quick_config, "load_col": load_col})
    dataset = create_dataset(config)
    years = dataset.item_feat["release_year"].to_numpy()
    assert len(years) > 100 and np.isfinite(years).all()


def _save(tmp_path, obj):
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path, pickle_protocol=4)  # protocol 4, as RecBole writes
    return path


def test_load_checkpoint_reads_recbole_config_and_tensors(tmp_path, quick_config):
    config = Config("SASRec", "ml-slice", config_dict=quick_config)
    path = _save(tmp_path, {"config": config, "state_dict": {"w": torch.ones(2)}, "best": np.float64(0.5)})
    with pytest.raises(Exception):
        torch.load(path)  # what RecBole's trainer does, and what the fix replaces
    loaded = compat.load_checkpoint(path)
    assert loaded["config"]["model"] == "SASRec"
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(2))


def test_load_checkpoint_refuses_foreign_classes_and_names_them(tmp_path):
    path = _save(tmp_path, {"when": datetime.datetime(2020, 1, 1)})
    with pytest.raises(DataError, match="datetime.datetime"):
        compat.load_checkpoint(path)


def test_load_checkpoint_missing_and_damaged_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        compat.load_checkpoint(tmp_path / "none.pth")
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot be read"):
        compat.load_checkpoint(damaged)
