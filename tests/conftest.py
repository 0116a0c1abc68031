"""Fixtures shared by the test files: small slices of the real data in ../shared/datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recbole_mdsrec.graphs.behavior import cooccurrence
from recbole_mdsrec.paths import SHARED_RAW_ROOT

# One intra-op thread: the test models are small, and with other busy processes on the
# machine OpenMP's spinning threads made an epoch ~10x slower (101 s vs 10.5 s, measured).
torch.set_num_threads(1)

SHARED_ROOT = SHARED_RAW_ROOT.parent


def require_shared(path: Path) -> Path:
    """The shared real data, or a skip that says where it should be (a failure under CI)."""
    if not path.exists():
        message = f"{path} is missing: the tests read real data from ../shared/datasets (see dataset/README.md)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_root() -> Path:
    return require_shared(SHARED_ROOT)


def read_ml100k_ratings(raw: Path) -> pd.DataFrame:
    return pd.read_csv(raw / "u.data", sep="\t", names=["user_id", "item_id", "rating", "timestamp"])


@pytest.fixture(scope="session")
def ml100k_slice(shared_root, tmp_path_factory) -> Path:
    """RecBole atomic files for the first 120 users of the real MovieLens-100K, with the
    real release years of u.item as a float item field (one movie has none: a real NaN).
    Returns the data_path holding ``ml-slice/``."""
    raw = shared_root / "raw" / "ml-100k"
    root = tmp_path_factory.mktemp("data")
    folder = root / "ml-slice"
    folder.mkdir()
    ratings = read_ml100k_ratings(raw)
    ratings = ratings[ratings.user_id <= 120]
    ratings.to_csv(folder / "ml-slice.inter", sep="\t", index=False,
                   header=["user_id:token", "item_id:token", "rating:float", "timestamp:float"])
    items = pd.read_csv(raw / "u.item", sep="|", header=None, encoding="latin-1", usecols=[0, 2])
    items.columns = ["item_id", "release"]
    items["year"] = pd.to_datetime(items.release, format="%d-%b-%Y", errors="coerce").dt.year
    assert items.year.isna().sum() >= 1, "u.item should have a movie without a release date"
    items[["item_id", "year"]].to_csv(folder / "ml-slice.item", sep="\t", index=False,
                                      header=["item_id:token", "release_year:float"], na_rep="")
    return root


# Small models and quiet logs, so that a test trains in seconds on 2 cores.
FAST_MODEL = {
    "MAX_ITEM_LIST_LENGTH": 20, "hidden_size": 32, "inner_size": 64, "n_layers": 1,
    "show_progress": False, "state": "WARNING", "gpu_id": "",
}


def fast_options(data_path, folder, **extra) -> dict:
    """Options for a fast run on a slice; checkpoints and graph caches go below ``folder``."""
    return {"data_path": str(data_path), "checkpoint_dir": str(folder / "saved"),
            "graph_cache_dir": str(folder / "graphs"), **FAST_MODEL, **extra}


@pytest.fixture
def quick_config(ml100k_slice, tmp_path) -> dict:
    return fast_options(ml100k_slice, tmp_path, epochs=1, seed=7)


MM_SLICE = "ml-mm-slice"


@pytest.fixture(scope="session")
def mm_slice(shared_root, tmp_path_factory) -> Path:
    """A multimodal slice of the real MovieLens-100K: the first 100 users, with the reference
    poster and plot features of ../shared/datasets/reference as its feature files (posters
    are missing for some movies: their mask is False). Returns the data_path."""
    from recbole_mdsrec.data.feature_store import feature_path, save_modal_features

    raw = shared_root / "raw" / "ml-100k"
    reference = shared_root / "reference" / "ml-100k-mm"
    root = tmp_path_factory.mktemp("mmdata")
    folder = root / MM_SLICE
    folder.mkdir()
    ratings = read_ml100k_ratings(raw)
    ratings = ratings[ratings.user_id <= 100]
    ratings.to_csv(folder / f"{MM_SLICE}.inter", sep="\t", index=False,
                   header=["user_id:token", "item_id:token", "rating:float", "timestamp:float"])
    tokens = np.arange(1, 1683).astype(str)
    image_mask = np.load(reference / "image_mask.npy")
    save_modal_features(feature_path(folder, MM_SLICE, "image"), tokens, np.load(reference / "image_feat.npy"), image_mask)
    text = np.load(reference / "text_feat.npy")
    save_modal_features(feature_path(folder, MM_SLICE, "text"), tokens, text, np.ones(len(tokens), dtype=bool))
    return root


@pytest.fixture
def mm_config(mm_slice, tmp_path) -> dict:
    return fast_options(mm_slice, tmp_path, modalities=["image", "text"], epochs=1, train_batch_size=512, seed=11)


def interrupted_after_first_epoch(train, monkeypatch) -> Path:
    """Call ``train`` with training stopped by Ctrl-C right after epoch 0's state is saved;
    returns that training state (``<checkpoint>.last``)."""
    from recbole_mdsrec import runner

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


def build_model(model: str, config_dict: dict, dataset: str = MM_SLICE):
    """Config, split data and model for ``model`` (no training)."""
    from recbole_mdsrec.config import Config
    from recbole_mdsrec.runner import build

    config = Config(model, dataset, config_dict=config_dict)
    _, splits, built, _ = build(config)
    return config, splits, built


HM_SLICE = "hm-slice"
HM_SLICE_CUSTOMERS = 80  # ~150 items: the real encoders take ~0.1 s an item on 2 cores


def read_hm_slice(raw_dir: Path):
    """The real H&M data restricted to its first customers (by customer id)."""
    import dataclasses

    from recbole_mdsrec.data.readers import read_hm

    raw = read_hm(raw_dir)
    inter = raw.interactions
    first = inter["user_id"].unique()[:HM_SLICE_CUSTOMERS]
    return dataclasses.replace(raw, interactions=inter[inter["user_id"].isin(first)].reset_index(drop=True))


@pytest.fixture(scope="session")
def hm_slice(shared_root, tmp_path_factory) -> Path:
    """A small real H&M dataset (the first 80 customers' purchases, 3-core: 42 users, 148
    products), prepared by the plugin's own pipeline with the real image and text encoders:
    products without a description lack text (mask False). Returns the data_path holding
    ``hm-slice/``."""
    from recbole_mdsrec.data import prepare

    require_shared(SHARED_RAW_ROOT / "hm")
    root = tmp_path_factory.mktemp("hmdata")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(prepare.DATASETS, HM_SLICE, prepare.DatasetSpec("hm", read_hm_slice))
        prepare.prepare_dataset(HM_SLICE, SHARED_RAW_ROOT, root, kcore=3, progress=False)
    return root


# --- MovieLens-100K by its own ids, for the graph tests ------------------------------

N_ITEMS = 1683  # ids 1..1682 and the padding id 0



@pytest.fixture(scope="session")
def sequences(shared_root) -> list[np.ndarray]:
    """Each user's items in time order (stable: timestamp, then file order)."""
    ratings = read_ml100k_ratings(shared_root / "raw" / "ml-100k")
    users, items, times = (ratings[c].to_numpy() for c in ("user_id", "item_id", "timestamp"))
    order = np.lexsort((times, users))  # lexsort is stable
    users, items = users[order], items[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    return np.split(items, starts[1:])


def _with_padding(array: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((1, *array.shape[1:]), array.dtype), array])


@pytest.fixture(scope="session")
def modal(shared_root) -> dict:
    """Features [1683, d] with a zero padding row, and the masks (row 0 False)."""
    folder = require_shared(shared_root / "reference" / "ml-100k-mm")
    image_mask = _with_padding(np.load(folder / "image_mask.npy"))
    return {
        "text": (_with_padding(np.load(folder / "text_feat.npy")), np.r_[False, np.ones(N_ITEMS - 1, bool)]),
        "image": (_with_padding(np.load(folder / "image_feat.npy")), image_mask),
    }


@pytest.fixture(scope="session")
def behavior(sequences) -> sp.csr_matrix:
    return cooccurrence(sequences, N_ITEMS, window=3)
