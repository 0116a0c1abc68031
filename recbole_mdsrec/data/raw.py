"""What every reader and file format hands to preparation: :class:`RawDataset`.

A dataset is read (``readers.py`` for the built-in raw datasets, ``formats/`` for the field's
file formats and your own tables), then filtered, encoded and written by ``prepare.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from recbole_mdsrec import roots
from recbole_mdsrec.errors import DataError

INTER_COLUMNS = ("user_id", "item_id", "rating", "timestamp")


@dataclass(frozen=True)
class ModalArrays:
    """Features of one modality that are already vectors (precomputed, or made from codes):
    ``features[r]`` [d] belongs to item ``tokens[r]``; ``mask[r]`` False where it lacks the
    modality (its row is then zeros); ``source`` says where they came from (provenance)."""

    tokens: np.ndarray
    features: np.ndarray
    mask: np.ndarray
    source: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def only(self, items) -> "ModalArrays":
        """The rows of ``items`` alone (tokens in neither are dropped)."""
        keep = pd.Index(self.tokens).isin(pd.Index(items))
        return ModalArrays(self.tokens[keep], self.features[keep], self.mask[keep], self.source)


@dataclass(frozen=True)
class FixedSplit:
    """A published leave-one-out split: each user's validation and test target item."""

    valid: Mapping[str, str]
    test: Mapping[str, str]
    source: str = ""


@dataclass
class RawDataset:
    """What a reader extracts from raw files.

    - ``interactions``: columns user_id (str), item_id (str), rating (float),
      timestamp (int: unix seconds, or the position in the user's sequence where the source
      has only an order), sorted by user then time, ties in file order.
    - ``items``: one row per item, indexed by item token; columns are RecBole atomic
      headers (``"title:token_seq"``) holding plain text.
    - ``modal_inputs``: modality -> Series indexed by item token whose values the
      modality's encoder takes (text str, image Path); None where the item lacks it.
    - ``modal_arrays``: modality -> :class:`ModalArrays`, features that need no encoder.
    - ``split``: the source's own leave-one-out split, which preparation must keep exactly.
    - ``provenance``: facts for ``<name>.features.json`` (source, fields, rules), with
      per-modality entries under ``"modalities"``.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    modal_inputs: dict[str, pd.Series] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    modal_arrays: dict[str, ModalArrays] = field(default_factory=dict)
    split: FixedSplit | None = None


def require_file(path: Path, what: str) -> Path:
    """Fail with where the raw data is expected and how to get it."""
    if not path.exists():
        raise DataError(
            f"The raw {what} was not found at {path}. Raw datasets are read from the raw data root "
            f"(prepare --raw_dir, run.py --raw_data_path, or ${roots.RAW_ROOT_ENV}; default "
            f"{roots.DEFAULT_RAW_ROOT} below the working directory); {roots.shared_root() / 'README.md'} "
            f"describes each dataset's folder and where its files come from."
        )
    return path


def sort_interactions(inter: pd.DataFrame, user_key: np.ndarray) -> pd.DataFrame:
    """Order by user, then timestamp, keeping file order among equal timestamps.

    ``user_key`` orders the users (e.g. numeric ids). np.lexsort is a stable merge sort,
    which matters: many ratings of a user share one timestamp and their file order is the
    only sequence information left.
    """
    order = np.lexsort((inter["timestamp"].to_numpy(), user_key))
    return inter.iloc[order].reset_index(drop=True)


def interactions_from_sequences(users: Sequence[str], sequences: Sequence[Sequence[str]]) -> pd.DataFrame:
    """Interactions of users whose items are known in order only: the timestamp of an item
    is its position in the user's sequence (0, 1, ...), rating 1. Users keep the given order."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    return pd.DataFrame({
        "user_id": np.repeat(np.asarray(users, dtype=str), lengths),
        "item_id": np.asarray([item for s in sequences for item in s], dtype=str),
        "rating": 1.0,
        "timestamp": np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.zeros(0, np.int64),
    })


def kcore_filter(inter: pd.DataFrame, k: int) -> pd.DataFrame:
    """Keep interactions whose user and item both have >= k of them, to a fixed point.

    Dropping a rare item can push a user below k and vice versa, hence the loop.
    Row order is preserved.
    """
    if k <= 1:
        return inter
    while True:
        user_count = inter.groupby("user_id")["user_id"].transform("size")
        item_count = inter.groupby("item_id")["item_id"].transform("size")
        keep = (user_count >= k) & (item_count >= k)
        if keep.all():
            return inter
        inter = inter[keep.to_numpy()].reset_index(drop=True)


def items_without_side_information(inter: pd.DataFrame) -> pd.DataFrame:
    """An item table of the interacted items and no columns (sources without item files)."""
    return pd.DataFrame(index=pd.Index(pd.unique(inter["item_id"]), name="item_id"))
