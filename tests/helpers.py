"""Helpers shared by the test modules (fixtures live in conftest.py); no test module imports another."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recbole_mdsrec.graphs.behavior import cooccurrence

MM_SLICE = "ml-mm-slice"
HM_SLICE = "hm-slice"
HM_SLICE_CUSTOMERS = 80  # ~150 items: the real encoders take ~0.1 s an item on 2 cores
CODES_SLICE = "codes-slice"
CODES_SLICE_USERS = 300
N_ITEMS = 1683  # MovieLens-100K's ids 1..1682 and the padding id 0

# Small models and quiet logs, so that a test trains in seconds on 2 cores.
FAST_MODEL = {
    "MAX_ITEM_LIST_LENGTH": 20, "hidden_size": 32, "inner_size": 64, "n_layers": 1,
    "show_progress": False, "state": "WARNING", "gpu_id": "",
}


def fast_options(data_path, folder, **extra) -> dict:
    """Options for a fast run on a slice; checkpoints and graph caches go below ``folder``."""
    return {"data_path": str(data_path), "checkpoint_dir": str(folder / "saved"),
            "graph_cache_dir": str(folder / "graphs"), **FAST_MODEL, **extra}


def read_ml100k_ratings(raw: Path) -> pd.DataFrame:
    return pd.read_csv(raw / "u.data", sep="\t", names=["user_id", "item_id", "rating", "timestamp"])


def write_ratings(ratings: pd.DataFrame, path: Path) -> None:
    ratings.to_csv(path, sep="\t", index=False, header=["user_id:token", "item_id:token", "rating:float", "timestamp:float"])


def read_hm_slice(raw_dir: Path):
    """The real H&M data restricted to its first customers (by customer id)."""
    from recbole_mdsrec.data.readers import read_hm

    raw = read_hm(raw_dir)
    inter = raw.interactions
    first = inter["user_id"].unique()[:HM_SLICE_CUSTOMERS]
    return dataclasses.replace(raw, interactions=inter[inter["user_id"].isin(first)].reset_index(drop=True))


def read_codes_slice(raw_dir: Path):
    """The real Amazon Instruments data (image and text as semantic-ID codes) restricted to its
    first users, with their published validation and test items."""
    from recbole_mdsrec.data.prepare import DATASETS
    from recbole_mdsrec.data.raw import FixedSplit

    raw = DATASETS["amazon-instruments"].reader(raw_dir)
    inter = raw.interactions
    first = set(inter["user_id"].unique()[:CODES_SLICE_USERS])
    split = FixedSplit({u: i for u, i in raw.split.valid.items() if u in first},
                       {u: i for u, i in raw.split.test.items() if u in first}, raw.split.source)
    return dataclasses.replace(raw, interactions=inter[inter["user_id"].isin(first)].reset_index(drop=True), split=split)


def build_model(model: str, config_dict: dict, dataset: str = MM_SLICE):
    """Config, split data and model for ``model`` (no training)."""
    from recbole_mdsrec.config import Config
    from recbole_mdsrec.training.runner import build

    config = Config(model, dataset, config_dict=config_dict)
    _, splits, built, _ = build(config)
    return config, splits, built


def train_step(model, batch) -> torch.Tensor:
    """One Adam step (lr 1e-3) of ``model`` on ``batch``; returns the loss before the step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = model.calculate_loss(batch)
    loss.backward()
    optimizer.step()
    return loss


def interrupted_after_first_epoch(train, monkeypatch) -> Path:
    """Call ``train`` with training stopped by Ctrl-C right after epoch 0's state is saved;
    returns that training state (``<checkpoint>.last``)."""
    from recbole_mdsrec.training import runner

    save = runner.save_training_state
    states = []

    def save_then_interrupt(trainer, train_data, epoch, timing=None):
        states.append(save(trainer, train_data, epoch, timing))
        if epoch == 0:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(runner, "save_training_state", save_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            train()
    return states[0]


# --- MovieLens-100K by its own ids, for the graph tests ------------------------------


def first_items(n: int, modal: dict, sequences, modality: str = "image"):
    """Features, mask and co-occurrence restricted to items 1..n (sequences filtered)."""
    features, mask = modal[modality]
    kept = [seq[seq <= n] for seq in sequences]
    return features[: n + 1], mask[: n + 1], cooccurrence(kept, n + 1, window=3)


def dense_scores(features, valid, bonus=None) -> torch.Tensor:
    """The brute-force ranking matrix: cosine (+ bonus), self and invalid columns -inf."""
    x = torch.nn.functional.normalize(torch.as_tensor(features, dtype=torch.float32), dim=1)
    scores = x @ x.T
    if bonus is not None:
        scores = scores + bonus
    scores[:, ~torch.as_tensor(valid)] = float("-inf")
    scores.fill_diagonal_(float("-inf"))
    return scores


def assert_topk_equal(indices, values, scores, valid, k):
    """Equal to the dense top-k up to ties: same values, and each index has its value."""
    # One more than k, to see whether the k-th value ties with the next one.
    expected_vals, expected_idx = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1)
    valid = torch.as_tensor(valid)
    for i in range(scores.shape[0]):
        if not valid[i]:
            assert (indices[i] == -1).all() and torch.isneginf(values[i]).all()
            continue
        found = indices[i] >= 0
        want = torch.isfinite(expected_vals[i])
        want[k:] = False
        torch.testing.assert_close(values[i][found], expected_vals[i][want], atol=1e-5, rtol=0)
        torch.testing.assert_close(scores[i, indices[i][found]], values[i][found], atol=1e-5, rtol=0)
        assert len(set(indices[i][found].tolist())) == int(found.sum())
        next_value = expected_vals[i][k] if expected_vals.shape[1] > k else float("-inf")
        if expected_vals[i][k - 1] > next_value + 1e-5:  # no tie at the cut: the set is determined
            assert set(indices[i][found].tolist()) == set(expected_idx[i][want].tolist())


def table_rows(text: str) -> list[list[str]]:
    """The cells of every markdown table row in ``text`` (header and rule rows included)."""
    return [[cell.strip() for cell in line.strip()[1:-1].split("|")] for line in text.splitlines()
            if line.startswith("|") and line.rstrip().endswith("|")]


def with_padding(array: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((1, *array.shape[1:]), array.dtype), array])


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Each markdown table in ``text``, in order, as its rows of cells (the rule row dropped)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|") and line.rstrip().endswith("|"):
            cells = [cell.strip() for cell in line.strip()[1:-1].split("|")]
            if not all(set(cell) <= set("-:") for cell in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables
