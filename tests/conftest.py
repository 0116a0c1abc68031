"""Fixtures: small slices of the real data in ../shared/datasets (helpers are in helpers.py).

Every test that reads the shared data carries the marker ``shared_data`` (most modules set
it for all their tests); where the data is missing such tests are skipped, and under CI
(``CI`` set) they fail. A fixture that reads the data refuses a test without the marker, so
the marker cannot be forgotten.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from helpers import (
    CODES_SLICE, HM_SLICE, MM_SLICE, N_ITEMS, fast_options, read_codes_slice, read_hm_slice, read_ml100k_ratings,
    with_padding, write_ratings,
)
from recbole_mdsrec import roots
from recbole_mdsrec.graphs.behavior import cooccurrence

# One intra-op thread: the test models are small, and with other busy processes on the
# machine OpenMP's spinning threads made an epoch ~10x slower (benchmarks/README.md).
torch.set_num_threads(1)

SHARED_ROOT = roots.shared_root()


def pytest_runtest_setup(item):
    if item.get_closest_marker("shared_data") and not SHARED_ROOT.is_dir():
        message = f"{SHARED_ROOT} is missing: the tests read real data from ../shared/datasets (see dataset/README.md)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def shared_root() -> Path:
    return SHARED_ROOT


@pytest.fixture(autouse=True)
def _shared_data_is_marked(request):
    """A test that reaches the shared data through a fixture must be marked ``shared_data``."""
    reads = {"shared_root", "ml100k_slice", "mm_slice", "hm_slice", "codes_slice", "sequences", "modal", "behavior"}
    if reads & set(request.fixturenames) and request.node.get_closest_marker("shared_data") is None:
        pytest.fail(f"{request.node.nodeid} reads ../shared/datasets; mark it with @pytest.mark.shared_data")


@pytest.fixture(scope="session")
def ml100k_slice(shared_root, tmp_path_factory) -> Path:
    """RecBole atomic files for the first 120 users of the real MovieLens-100K, with the
    real release years of u.item as a float item field (one movie has none: a real NaN).
    Returns the data_path holding ``ml-slice/``."""
    import pandas as pd

    raw = shared_root / "raw" / "ml-100k"
    root = tmp_path_factory.mktemp("data")
    folder = root / "ml-slice"
    folder.mkdir()
    ratings = read_ml100k_ratings(raw)
    write_ratings(ratings[ratings.user_id <= 120], folder / "ml-slice.inter")
    items = pd.read_csv(raw / "u.item", sep="|", header=None, encoding="latin-1", usecols=[0, 2])
    items.columns = ["item_id", "release"]
    items["year"] = pd.to_datetime(items.release, format="%d-%b-%Y", errors="coerce").dt.year
    assert items.year.isna().sum() >= 1, "u.item should have a movie without a release date"
    items[["item_id", "year"]].to_csv(folder / "ml-slice.item", sep="\t", index=False,
                                      header=["item_id:token", "release_year:float"], na_rep="")
    return root


@pytest.fixture
def quick_config(ml100k_slice, tmp_path) -> dict:
    return fast_options(ml100k_slice, tmp_path, epochs=1, seed=7)


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
    write_ratings(ratings[ratings.user_id <= 100], folder / f"{MM_SLICE}.inter")
    tokens = np.arange(1, 1683).astype(str)
    image_mask = np.load(reference / "image_mask.npy")
    save_modal_features(feature_path(folder, MM_SLICE, "image"), tokens, np.load(reference / "image_feat.npy"), image_mask)
    text = np.load(reference / "text_feat.npy")
    save_modal_features(feature_path(folder, MM_SLICE, "text"), tokens, text, np.ones(len(tokens), dtype=bool))
    return root


@pytest.fixture
def mm_config(mm_slice, tmp_path) -> dict:
    return fast_options(mm_slice, tmp_path, modalities=["image", "text"], epochs=1, train_batch_size=512, seed=11)


@pytest.fixture(scope="session")
def hm_slice(shared_root, tmp_path_factory) -> Path:
    """A small real H&M dataset (the first 80 customers' purchases, 3-core: 42 users, 148
    products), prepared by the plugin's own pipeline with the real image and text encoders:
    products without a description lack text (mask False). Returns the data_path holding
    ``hm-slice/``."""
    from recbole_mdsrec.data import prepare

    root = tmp_path_factory.mktemp("hmdata")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(prepare.DATASETS, HM_SLICE, prepare.DatasetSpec("hm", read_hm_slice))
        prepare.prepare_dataset(HM_SLICE, shared_root / "raw", root, kcore=3, progress=False)
    return root


@pytest.fixture(scope="session")
def codes_slice(shared_root, tmp_path_factory) -> Path:
    """A small real Amazon Instruments dataset (its first 300 users, the published split kept)
    whose image and text are semantic-ID codes, one-hot per level, prepared by the plugin's
    own pipeline. Returns the data_path holding ``codes-slice/``."""
    from recbole_mdsrec.data import prepare

    root = tmp_path_factory.mktemp("codesdata")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(prepare.DATASETS, CODES_SLICE, prepare.DatasetSpec("amazon-instruments", read_codes_slice, kcore=1))
        prepare.prepare_dataset(CODES_SLICE, shared_root / "raw", root, kcore=1, progress=False)
    return root


# --- MovieLens-100K by its own ids, for the graph tests ------------------------------


@pytest.fixture(scope="session")
def sequences(shared_root) -> list[np.ndarray]:
    """Each user's items in time order (stable: timestamp, then file order)."""
    ratings = read_ml100k_ratings(shared_root / "raw" / "ml-100k")
    users, items, times = (ratings[c].to_numpy() for c in ("user_id", "item_id", "timestamp"))
    order = np.lexsort((times, users))  # lexsort is stable
    users, items = users[order], items[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    return np.split(items, starts[1:])


@pytest.fixture(scope="session")
def modal(shared_root) -> dict:
    """Features [1683, d] with a zero padding row, and the masks (row 0 False)."""
    folder = shared_root / "reference" / "ml-100k-mm"
    image_mask = with_padding(np.load(folder / "image_mask.npy"))
    return {
        "text": (with_padding(np.load(folder / "text_feat.npy")), np.r_[False, np.ones(N_ITEMS - 1, bool)]),
        "image": (with_padding(np.load(folder / "image_feat.npy")), image_mask),
    }


@pytest.fixture(scope="session")
def behavior(sequences) -> sp.csr_matrix:
    return cooccurrence(sequences, N_ITEMS, window=3)
