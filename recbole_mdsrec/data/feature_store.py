"""On-disk format of per-modality item features, shared by data preparation and models.

One file per modality, ``<dataset dir>/<name>.<modality>.npz``, holding three arrays:

- ``tokens``: unicode array [n] of item tokens (the row keys, as in ``<name>.item``);
- ``features``: float32 [n, d];
- ``mask``: bool [n]; False means the item lacks this modality and its row is all zeros.

The file never needs pickle (``np.load(..., allow_pickle=False)``), so loading one from an
untrusted source cannot run code.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from recbole_mdsrec.errors import DataError
from recbole_mdsrec.files import atomic_write

ARRAYS = ("tokens", "features", "mask")
PADDING_TOKEN = "[PAD]"
_SHOWN = 5  # how many offending tokens an error message lists


@dataclass(frozen=True)
class ModalFeatures:
    """The validated content of one ``<name>.<modality>.npz`` file."""

    modality: str
    tokens: np.ndarray
    features: np.ndarray
    mask: np.ndarray
    path: Path

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])


def feature_path(dataset_dir, dataset_name: str, modality: str) -> Path:
    """Where the features of one modality of a dataset live.

    ``dataset_dir`` may be the dataset's own folder (RecBole's ``config["data_path"]``,
    whose last part is the dataset name) or the root holding every dataset (``dataset/``).
    """
    folder = Path(dataset_dir)
    if folder.name != dataset_name:
        folder = folder / dataset_name
    return folder / f"{dataset_name}.{modality}.npz"


def save_modal_features(path, tokens, features, mask) -> Path:
    """Validate and write one modality's features atomically; returns the path."""
    path = Path(path)
    arrays = {
        "tokens": np.asarray(tokens, dtype=str),
        "features": np.asarray(features, dtype=np.float32),
        "mask": np.asarray(mask, dtype=bool),
    }
    _validate(arrays, f"the features about to be written to {path}", "fix the code or input that produced them")
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def load_modal_features(path, modality: str) -> ModalFeatures:
    """Read and validate one modality's feature file; every problem is a ``DataError``."""
    path = Path(path)
    fix = f"re-create it with `python -m recbole_mdsrec.cli.prepare {_dataset_name(path, modality)}`"
    if not path.is_file():
        raise DataError(
            f"The {modality} feature file {path} does not exist. Features are computed offline: "
            f"{fix} (see its --help to pass your own precomputed features)."
        )
    arrays = _read_npz(path, fix)
    _validate(arrays, f"the {modality} feature file {path}", fix)
    return ModalFeatures(
        modality=modality,
        tokens=arrays["tokens"],
        features=arrays["features"].astype(np.float32, copy=False),
        mask=arrays["mask"],
        path=path,
    )


def validate_modal_arrays(tokens, features, mask, where: str, fix: str) -> None:
    """Check arrays against the format above; ``where`` and ``fix`` go into the message."""
    _validate({"tokens": tokens, "features": features, "mask": mask}, where, fix)


def align_to_item_ids(modal: ModalFeatures, id_to_token: Sequence[str], dataset_name: str):
    """Reorder feature rows to RecBole's internal item ids.

    ``id_to_token[i]`` is the token of item id ``i`` (``dataset.field2id_token["item_id"]``);
    index 0 is RecBole's padding and gets a zero row with mask False. Tokens in the file
    but not in the dataset (items RecBole filtered out) are ignored.

    Returns ``(features float32 [n_ids, d], mask bool [n_ids])``.
    """
    id_to_token = np.asarray(id_to_token, dtype=str)
    if id_to_token.size == 0 or id_to_token[0] != PADDING_TOKEN:
        raise ValueError(f"id_to_token must start with RecBole's padding token {PADDING_TOKEN!r}")
    wanted = id_to_token[1:]
    rows = pd.Index(modal.tokens).get_indexer(wanted)
    missing = wanted[rows < 0]
    if missing.size:
        raise DataError(
            f"The {modal.modality} feature file {modal.path} has no row for {missing.size} of the "
            f"{wanted.size} items of dataset '{dataset_name}' (first: {_first(missing)}). The file is "
            f"older than the dataset's atomic files or was made for other data: re-create it with "
            f"`python -m recbole_mdsrec.cli.prepare {dataset_name}`."
        )
    features = np.zeros((id_to_token.size, modal.dim), dtype=np.float32)
    mask = np.zeros(id_to_token.size, dtype=bool)
    features[1:] = modal.features[rows]
    mask[1:] = modal.mask[rows]
    return features, mask


def _dataset_name(path: Path, modality: str) -> str:
    suffix = f".{modality}.npz"
    return path.name[: -len(suffix)] if path.name.endswith(suffix) else path.parent.name


def _read_npz(path: Path, fix: str) -> dict:
    # np.load takes any non-zip file for a pickle; say what it really is instead.
    if not zipfile.is_zipfile(path):
        raise DataError(f"The feature file {path} is not a readable .npz file (not a zip archive). Fix: {fix}.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            present = set(npz.files)
            missing = [name for name in ARRAYS if name not in present]
            if missing:
                raise DataError(
                    f"The feature file {path} lacks the array(s) {', '.join(missing)} (it has: "
                    f"{', '.join(sorted(present)) or 'none'}); a feature file holds tokens, features "
                    f"and mask. Fix: {fix}."
                )
            return {name: npz[name] for name in ARRAYS}
    except DataError:
        raise
    except ValueError as e:  # object arrays need pickle, which is refused
        raise DataError(
            f"The feature file {path} cannot be read without pickle ({e}); store tokens as a "
            f"unicode array (np.asarray(tokens, dtype=str)) or {fix}."
        ) from None
    except (OSError, EOFError) as e:  # not a zip, truncated, unreadable
        raise DataError(f"The feature file {path} is not a readable .npz file ({e}). Fix: {fix}.") from None


def _validate(arrays: dict, where: str, fix: str) -> None:
    tokens, features, mask = (np.asarray(arrays[name]) for name in ARRAYS)
    _check_shapes(tokens, features, mask, where, fix)
    _check_dtypes(tokens, features, mask, where, fix)
    _check_unique(tokens, where, fix)
    _check_finite(tokens, features, where, fix)
    _check_masked_rows_zero(tokens, features, mask, where, fix)


def _check_shapes(tokens, features, mask, where, fix) -> None:
    for name, array, ndim in (("tokens", tokens, 1), ("features", features, 2), ("mask", mask, 1)):
        if array.ndim != ndim:
            raise DataError(
                f"In {where}, '{name}' has {array.ndim} dimension(s) with shape {array.shape}; it must "
                f"have {ndim} (tokens [n], features [n, d], mask [n]). Fix: {fix}."
            )
    if not tokens.shape[0] == features.shape[0] == mask.shape[0]:
        raise DataError(
            f"In {where}, the row counts differ: {tokens.shape[0]} tokens, {features.shape[0]} "
            f"feature rows, {mask.shape[0]} mask entries; there must be one of each per item. Fix: {fix}."
        )


def _check_dtypes(tokens, features, mask, where, fix) -> None:
    if tokens.dtype.kind != "U":
        raise DataError(f"In {where}, 'tokens' has dtype {tokens.dtype}; it must be a unicode string array. Fix: {fix}.")
    if not np.issubdtype(features.dtype, np.floating):
        raise DataError(f"In {where}, 'features' has dtype {features.dtype}; it must be floating point (float32). Fix: {fix}.")
    if mask.dtype != np.bool_:
        raise DataError(f"In {where}, 'mask' has dtype {mask.dtype}; it must be bool (True = item has this modality). Fix: {fix}.")


def _check_unique(tokens, where, fix) -> None:
    duplicated = pd.Index(tokens).duplicated()
    if duplicated.any():
        repeated = np.unique(tokens[duplicated])
        raise DataError(
            f"In {where}, {repeated.size} token(s) appear more than once (first: {_first(repeated)}); "
            f"each item must have exactly one row. Fix: {fix}."
        )


def _check_finite(tokens, features, where, fix) -> None:
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise DataError(
            f"In {where}, {int(bad.sum())} row(s) hold NaN or infinite values (tokens: {_first(tokens[bad])}); "
            f"the encoder failed on those items. Fix: {fix}."
        )


def _check_masked_rows_zero(tokens, features, mask, where, fix) -> None:
    # A masked-in zero row is legal (an encoder may output zeros); a masked-out row that
    # holds values means mask and features disagree about which items have the modality.
    bad = ~mask & (features != 0).any(axis=1)
    if bad.any():
        raise DataError(
            f"In {where}, {int(bad.sum())} row(s) are masked out (mask False: item lacks the modality) "
            f"but are not all zeros (tokens: {_first(tokens[bad])}); mask and features disagree. Fix: {fix}."
        )


def _first(tokens: np.ndarray) -> str:
    shown = ", ".join(repr(str(t)) for t in tokens[:_SHOWN])
    return shown + (", ..." if len(tokens) > _SHOWN else "")
