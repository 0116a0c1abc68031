"""End to end: the runner trains, saves, reloads the best checkpoint and tests."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recbole_mdsrec.checkpoints import unique_checkpoint_path
from recbole_mdsrec.cli import format_metrics, parse_overrides
from recbole_mdsrec.compat import load_checkpoint
from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.paths import REPO_ROOT
from recbole_mdsrec.runner import run


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
    lines = table.splitlines()
    assert lines[0] == "| metric | @10 | @20 |"
    assert lines[2] == "| recall | 0.1000 | 0.3000 |"
    assert lines[3] == "| ndcg | 0.1500 | 0.2000 |"


def test_cli_reports_unknown_model_without_traceback():
    out = subprocess.run([sys.executable, str(REPO_ROOT / "run.py"), "--model=NoSuchModel", "--dataset=ml-100k"],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 2
    assert "Unknown model 'NoSuchModel'" in out.stderr and "Traceback" not in out.stderr


def test_runner_flushes_denormals():
    import torch

    from recbole_mdsrec.launch import configure_torch

    torch.set_flush_denormal(False)
    assert (torch.tensor([1e-39]) * 1.0).item() > 0.0
    configure_torch()
    assert (torch.tensor([1e-39]) * 1.0).item() == 0.0
