"""Precomputed features from files, and their alignment with a dataset's items.

Three layouts, each a :class:`~recbole_mdsrec.data.raw.ModalArrays`:

- ``FEATURES.npy`` [n, d] with ``TOKENS.txt`` (n item tokens, one a line, in row order);
- a table (``.csv``, ``.tsv``, ``.parquet``): the first column the item token, the others
  the feature values;
- a float32 binary of ``n`` rows of ``d`` values whose row ``r`` is the item with index ``r``
  (UniSRec's and MISSRec's ``.feat1CLS``/``.feat3CLS``, MMRec's ``.npy`` by item index).

A row of zeros means the item lacks the modality (its mask is False), as in the feature
files the plugin writes (``feature_store.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from recbole_mdsrec.data.feature_store import validate_modal_arrays
from recbole_mdsrec.data.raw import ModalArrays
from recbole_mdsrec.errors import DataError

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
_SHOWN = 5


def read_table(path: Path, what: str) -> pd.DataFrame:
    """A CSV, TSV or Parquet file as strings-preserving DataFrame."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"The {what} file {path} does not exist. Fix: give the path of an existing file.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        sep = "\t" if suffix in (".tsv", ".inter", ".item", ".txt") else ","
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (ValueError, OSError, ImportError) as error:
        raise DataError(f"The {what} file {path} cannot be read as a table ({error}). "
                        "Fix: give a CSV, TSV or Parquet file with a header row.") from None


def require_columns(available: Iterable[str], columns: Iterable[str], path: Path, options: str) -> None:
    """Every named column (None: not asked for) among ``available``, or an error naming them."""
    available = list(available)
    missing = [c for c in columns if c and c not in available]
    if missing:
        raise DataError(
            f"{path} has no column(s) {missing} (it has: {available}). Fix: name existing columns with {options}."
        )


def read_feature_file(modality: str, features_path: Path, tokens_path: Path | None = None) -> ModalArrays:
    """``FEATURES.npy`` + ``TOKENS.txt``, or a table of token and values (see module docstring)."""
    features_path = Path(features_path)
    fix = (f"pass --feature={modality}=FEATURES.npy:TOKENS.txt (a float [n, d] array and n tokens) or "
           f"--feature={modality}=TABLE.csv (item token, then the values)")
    if tokens_path is None and features_path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"{features_path} needs its tokens file. Fix: {fix}.")
    if not features_path.is_file():
        raise DataError(f"The {modality} feature file {features_path} does not exist. Fix: {fix}.")
    if tokens_path is None:
        table = read_table(features_path, f"{modality} feature")
        tokens = table.iloc[:, 0].astype(str).to_numpy()
        try:
            features = table.iloc[:, 1:].to_numpy(dtype=np.float64)
        except ValueError as error:
            raise DataError(f"In {features_path}, the feature columns are not all numbers ({error}). Fix: {fix}.") from None
    else:
        tokens_path = Path(tokens_path)
        if not tokens_path.is_file():
            raise DataError(f"The {modality} tokens file {tokens_path} does not exist. Fix: {fix}.")
        features = _load_npy(modality, features_path, fix)
        lines = [line.strip() for line in tokens_path.read_text(encoding="utf-8").splitlines()]
        while lines and not lines[-1]:  # a final newline is not a token
            lines.pop()
        tokens = np.array(lines, dtype=str)
    where = f"the {modality} features {features_path}" + (f" with tokens {tokens_path}" if tokens_path else "")
    return _checked(modality, tokens, features, where, fix, {"features_file": str(features_path),
                                                             "tokens_file": str(tokens_path) if tokens_path else None})


def read_indexed_binary(modality: str, path: Path, n_items: int, dim: int | None = None,
                        tokens: Sequence[str] | None = None) -> ModalArrays:
    """A float32 binary (``.feat1CLS``) of ``n_items`` rows, row ``r`` = item index ``r``;
    ``dim`` is inferred from the file size when not given."""
    path = Path(path)
    fix = "give the file written for this dataset's item index (row r = item r), and --dim=MODALITY=D if it differs"
    if not path.is_file():
        raise DataError(f"The {modality} feature file {path} does not exist. Fix: {fix}.")
    values = np.fromfile(path, dtype=np.float32)
    if dim is None:
        if n_items == 0 or values.size % n_items:
            raise DataError(f"{path} holds {values.size} float32 values, not a whole number of rows for the "
                            f"{n_items} items of the index. Fix: {fix}.")
        dim = values.size // n_items
    if values.size % dim or values.size // dim != n_items:
        raise DataError(f"{path} holds {values.size} float32 values: {values.size / dim:g} rows of {dim}, but the "
                        f"index has {n_items} items. Fix: {fix}.")
    tokens = np.array([str(i) for i in range(n_items)] if tokens is None else tokens, dtype=str)
    return _checked(modality, tokens, values.reshape(n_items, dim), f"the {modality} features {path}", fix,
                    {"features_file": str(path), "layout": f"float32 [{n_items}, {dim}], row r = item index r"})


def indexed_array(modality: str, path: Path, tokens: Sequence[str]) -> ModalArrays:
    """An ``.npy`` whose row ``r`` is item index ``r`` (MMRec's ``image_feat.npy``)."""
    path = Path(path)
    fix = "give the .npy written for this dataset's item index (row r = item r)"
    if not path.is_file():
        raise DataError(f"The {modality} feature file {path} does not exist. Fix: {fix}.")
    return _checked(modality, np.asarray(tokens, dtype=str), _load_npy(modality, path, fix), f"the {modality} features {path}", fix,
                    {"features_file": str(path), "layout": "row r = item index r"})


def _load_npy(modality: str, path: Path, fix: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataError(f"The {modality} features {path} cannot be read ({error}). Fix: {fix}.") from None


def _checked(modality, tokens, features, where: str, fix: str, source: dict) -> ModalArrays:
    features = np.asarray(features)
    mask = features.any(axis=1) if features.ndim == 2 and features.shape[0] == len(tokens) else np.ones(len(tokens), bool)
    validate_modal_arrays(tokens, features, mask, where, fix)
    return ModalArrays(tokens, features.astype(np.float32, copy=False), mask,
                       {k: v for k, v in source.items() if v is not None})


def check_alignment(arrays: ModalArrays, modality: str, items: Iterable[str], allow_missing: bool,
                    allow_extra: bool, where: str) -> ModalArrays:
    """The rows of ``arrays`` against the interacted ``items``: an item without a row is an
    error unless ``allow_missing`` (it then lacks the modality); a row of an item that no
    interaction has is an error unless ``allow_extra`` (such rows are dropped)."""
    items = pd.Index(pd.unique(np.asarray(list(items), dtype=str)))
    rows = pd.Index(arrays.tokens)
    lacking, extra = items.difference(rows), rows.difference(items)
    if len(lacking) and not allow_missing:
        raise DataError(
            f"{len(lacking)} of the {len(items)} interacted items have no {modality} row in {where} (first: "
            f"{list(lacking[:_SHOWN])}). Fix: add their rows, check that the tokens are the interactions' item ids, "
            f"or pass --allow_missing={modality} to let them lack the modality."
        )
    if len(extra) and not allow_extra:
        raise DataError(
            f"{len(extra)} of the {len(rows)} {modality} rows in {where} belong to no interacted item (first: "
            f"{list(extra[:_SHOWN])}). Fix: check that the tokens are the interactions' item ids (an offset of one "
            "shifts every row), or pass --allow_extra to drop those rows."
        )
    return arrays.only(items)
