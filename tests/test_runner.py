"""End to end: the runner trains, saves, reloads the best checkpoint and tests."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import table_rows
from recbole_mdsrec.cli.common import parse_overrides
from recbole_mdsrec.cli.run import format_metrics
from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.training.checkpoints import load_checkpoint, unique_checkpoint_path
from recbole_mdsrec.training.runner import run

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.shared_data
def test_one_epoch_of_sasrec_on_real_movielens_slice(quick_config):
    result = run("SASRec", "ml-slice", config_dict=quick_config)
    assert result.epochs == 1
    assert set(result.test_result) == {f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in (10, 20)}
    for value in result.test_result.values():
        assert 0.0 <= value <= 1.0 and math.isfinite(value)
    assert result.test_result["recall@20"] >= result.test_result["recall@10"]
    checkpoint = load_checkpoint(result.checkpoint)
    assert checkpoint["config"]["MAX_ITEM_LIST_LENGTH"] == 20
    assert result.n_parameters > 0
    assert f"-{os.getpid()}-" in Path(result.checkpoint).name  # see the next test


def test_checkpoints_of_runs_started_in_one_second_differ():
    # RecBole's own name has the model and the time to the second only: two jobs in one
    # folder (seen: two grids started together) overwrote each other's best model.
    recbole_name = "saved/SASRec-Nov-24-2026_06-08-09.pth"
    names = {unique_checkpoint_path(recbole_name) for _ in range(50)}
    assert len(names) == 50
    for name in names:
        path = Path(name)
        assert path.parent == Path("saved") and path.suffix == ".pth"
        assert path.name.startswith(f"SASRec-Nov-24-2026_06-08-09-{os.getpid()}-")


def test_parse_overrides_reads_key_value_and_rejects_the_rest():
    assert parse_overrides(["--epochs=3", "--eval_args={'mode': 'full'}"]) == {
        "epochs": "3", "eval_args": "{'mode': 'full'}"}
    with pytest.raises(ConfigError, match="--key=value"):
        parse_overrides(["--epochs", "3"])
    with pytest.raises(ConfigError, match="twice"):
        parse_overrides(["--epochs=3", "--epochs=4"])


def test_format_metrics_orders_metrics_and_cutoffs():
    table = format_metrics({"ndcg@20": 0.2, "recall@10": 0.1, "ndcg@10": 0.15, "recall@20": 0.3})
    rows = table_rows(table)
    assert rows[0] == ["metric", "@10", "@20"]
    assert rows[2] == ["recall", "0.1000", "0.3000"]
    assert rows[3] == ["ndcg", "0.1500", "0.2000"]


def test_cli_reports_unknown_model_without_traceback():
    out = subprocess.run([sys.executable, str(REPO_ROOT / "run.py"), "--model=NoSuchModel", "--dataset=ml-100k"],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 2
    assert "Unknown model 'NoSuchModel'" in out.stderr and "Traceback" not in out.stderr


def test_the_command_lines_process_tuning_flushes_denormals_and_the_library_does_not():
    code = ("import torch, recbole_mdsrec.training.runner\n"
            "from recbole_mdsrec.launch import ProcessTuning\n"
            "tiny = lambda: (torch.tensor([1e-39]) * 1.0).item()\n"
            "before = tiny(); ProcessTuning().apply(); default = tiny()\n"
            "ProcessTuning.command_line().apply(); print(before > 0, default > 0, tiny() == 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["True", "True", "True"], out.stderr


@pytest.mark.shared_data
def test_the_runner_changes_nothing_it_is_not_asked_to(quick_config, tmp_path, monkeypatch):
    """With ``fast_layers: False`` and no process tuning, the runner's SASRec gives exactly the
    test metrics of RecBole's own ``quick_start`` steps on the same real slice and seed."""
    import torch
    from recbole.config import Config as RecBoleConfig
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    from recbole_mdsrec import properties

    monkeypatch.setattr(sys, "argv", ["pytest"])  # RecBole's own Config reads the command line
    flushed = (torch.tensor([1e-39]) * 1.0).item() == 0.0
    torch.set_flush_denormal(False)
    try:
        options = {**quick_config, "epochs": 2, "fast_layers": False}
        plugin = run("SASRec", "ml-slice", config_dict=options)

        # run_recbole, step by step (recbole.quick_start itself imports ray, which cannot load here)
        config = RecBoleConfig("SASRec", "ml-slice", config_file_list=[str(properties.path("overall.yaml"))],
                               config_dict={**options, "checkpoint_dir": str(tmp_path / "stock")})
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        # The one step RecBole cannot take on torch 2.13: its best checkpoint pickles the Config.
        model.load_state_dict(torch.load(trainer.saved_model_file, weights_only=False)["state_dict"])
        stock = trainer.evaluate(test_data, load_best_model=False)
    finally:
        torch.set_flush_denormal(flushed)
    assert plugin.epochs == 2 and plugin.test_result == dict(stock)
