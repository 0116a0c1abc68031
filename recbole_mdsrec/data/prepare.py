"""Build a RecBole dataset folder with per-modality item features from raw data.

``prepare_dataset`` writes into ``<out_root>/<name>/``:

- ``<name>.inter``: user_id, item_id, rating, timestamp; rows sorted by user then time
  with ties in file order (RecBole's own sort by time keeps that order);
- ``<name>.item``: item side information (text fields as token / token_seq);
- ``<name>.<modality>.npz``: features of exactly the items left after k-core
  (format in :mod:`recbole_mdsrec.data.feature_store`);
- ``<name>.features.json``: provenance, written last, so its presence means the rest is complete.

Datasets are known by name through :data:`DATASETS`; add your own with
:func:`register_dataset`.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from recbole_mdsrec.data.encoders import (
    CachedEncoder,
    ImageEncoder,
    ModalEncoder,
    PrecomputedEncoder,
    TextEncoder,
)
from recbole_mdsrec.data.feature_store import feature_path, save_modal_features
from recbole_mdsrec.data.readers import (
    RawDataset,
    kcore_filter,
    read_hm,
    read_movielens_100k,
    require_file,
)
from recbole_mdsrec.errors import DataError
from recbole_mdsrec.files import atomic_write

INTER_HEADER = {"user_id": "user_id:token", "item_id": "item_id:token", "rating": "rating:float", "timestamp": "timestamp:float"}
ITEM_ID_HEADER = "item_id:token"
CACHE_SUBDIR = Path(".cache") / "encoders"


@dataclass(frozen=True)
class DatasetSpec:
    raw_subdir: str  # folder under the raw root
    reader: Callable[[Path], RawDataset]
    description: str = ""


DATASETS: dict[str, DatasetSpec] = {
    "ml-100k-mm": DatasetSpec("ml-100k", read_movielens_100k, "MovieLens-100K with TMDB posters and overviews"),
    "hm": DatasetSpec("hm", read_hm, "H&M fashion purchases (sample), product level"),
}


def register_dataset(name: str, raw_subdir: str, reader: Callable[[Path], RawDataset], description: str = "") -> None:
    """Make ``prepare_dataset(name, ...)`` read ``<raw_root>/<raw_subdir>`` with ``reader``."""
    DATASETS[name] = DatasetSpec(raw_subdir, reader, description)


def default_encoders(progress: bool = True) -> dict[str, ModalEncoder]:
    """The encoder of each built-in modality; models load on first use."""
    return {"text": TextEncoder(progress=progress), "image": ImageEncoder(progress=progress)}


def prepare_dataset(
    name: str,
    raw_root,
    out_root,
    kcore: int = 5,
    precomputed: Mapping[str, tuple] | None = None,
    progress: bool = True,
    encoders: Mapping[str, ModalEncoder] | None = None,
) -> dict:
    """Read, filter, encode and write one dataset; returns its summary.

    ``precomputed`` maps a modality to ``(features.npy, tokens.txt)`` used instead of
    encoding it. ``encoders`` overrides :func:`default_encoders` per modality. Encoded
    rows are cached under ``<out_root>/.cache/encoders/``.
    """
    started = time.perf_counter()
    spec = _spec(name)
    out_root = Path(out_root)
    raw_dir = require_file(Path(raw_root) / spec.raw_subdir, f"folder of dataset '{name}'")
    raw = spec.reader(raw_dir)
    inter = kcore_filter(raw.interactions, kcore)
    if inter.empty:
        raise DataError(
            f"No interaction of dataset '{name}' survives {kcore}-core filtering (every user and item needs "
            f"at least {kcore} interactions); lower --kcore (e.g. --kcore 3, or 1 to disable it)."
        )
    items = _kept_items(raw.items, inter, name)
    out_dir = out_root / name

    encoders = {**default_encoders(progress), **(encoders or {})}
    sources = _modal_sources(raw, items.index, encoders, precomputed, out_root / CACHE_SUBDIR)
    modalities = {modality: _write_modality(out_dir, name, modality, *source) for modality, source in sources.items()}
    # Features first, tables next, provenance last: features.json marks a complete folder.
    _write_table(out_dir / f"{name}.inter", inter.rename(columns=INTER_HEADER)[list(INTER_HEADER.values())])
    _write_table(out_dir / f"{name}.item", items.rename_axis(ITEM_ID_HEADER).reset_index())
    summary = {
        "dataset": name,
        "users": int(inter["user_id"].nunique()),
        "items": len(items),
        "interactions": len(inter),
        "missing": {m: record["n_missing"] for m, record in modalities.items()},
        "seconds": round(time.perf_counter() - started, 2),
        "out_dir": str(out_dir),
    }
    _write_provenance(out_dir / f"{name}.features.json", summary, raw, kcore, modalities)
    return summary


def encode_modality(inputs: pd.Series, encoder: ModalEncoder) -> tuple[np.ndarray, np.ndarray]:
    """Features [n, d] and mask [n] for inputs (None = item lacks the modality)."""
    mask = inputs.notna().to_numpy()
    features = np.zeros((len(inputs), encoder.dim), dtype=np.float32)
    if mask.any():
        features[mask] = encoder.encode(inputs[mask].tolist())
    return features, mask


def _write_modality(out_dir: Path, name: str, modality: str, inputs: pd.Series, encoder, source: dict) -> dict:
    """Encode one modality of the kept items, save its feature file, return its provenance."""
    features, mask = encode_modality(inputs, encoder)
    path = save_modal_features(feature_path(out_dir, name, modality), inputs.index.to_numpy(), features, mask)
    return _modality_record(path, encoder, source, mask)


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(
            f"Unknown dataset '{name}'; known: {', '.join(sorted(DATASETS))}. Add a reader with "
            f"recbole_mdsrec.data.prepare.register_dataset(name, raw_subdir, reader)."
        )
    return DATASETS[name]


def _kept_items(items: pd.DataFrame, inter: pd.DataFrame, name: str) -> pd.DataFrame:
    kept = pd.Index(inter["item_id"].unique())
    unknown = kept.difference(items.index)
    if len(unknown):
        raise DataError(
            f"{len(unknown)} item(s) of dataset '{name}' have interactions but no item record "
            f"(first: {list(unknown[:5])}); the reader must describe every interacted item."
        )
    return items[items.index.isin(kept)]


def _modal_sources(raw: RawDataset, tokens: pd.Index, encoders, precomputed, cache_root: Path) -> dict:
    """modality -> (inputs aligned to tokens, encoder, input provenance)."""
    precomputed = precomputed or {}
    sources = {}
    for modality, inputs in raw.modal_inputs.items():
        if modality in precomputed:
            continue
        if modality not in encoders:
            raise DataError(f"No encoder for modality '{modality}'; pass one in encoders= or --feature {modality}=...")
        encoder = CachedEncoder(encoders[modality], cache_root)
        source = raw.provenance.get("modalities", {}).get(modality, {})
        sources[modality] = (inputs.reindex(tokens), encoder, source)
    for modality, (features_path, tokens_path) in precomputed.items():
        encoder = PrecomputedEncoder(features_path, tokens_path, modality)
        sources[modality] = (encoder.inputs_for(tokens), encoder, {"input_fields": ["precomputed by the user"]})
    return sources


def _modality_record(path: Path, encoder: ModalEncoder, source: dict, mask: np.ndarray) -> dict:
    record = {
        "file": path.name,
        **encoder.describe(),
        "input": source,
        "dim": encoder.dim,
        "n_items": int(mask.size),
        "n_missing": int((~mask).sum()),
    }
    if isinstance(encoder, CachedEncoder):
        record["cache"] = {"directory": str(encoder.directory), "reused": encoder.hits, "encoded": encoder.encoded}
    return record


def _clean_text(column: pd.Series) -> pd.Series:
    # Tabs and newlines would break RecBole's tab-separated rows; RecBole reads them with
    # pandas, which takes a leading double quote as the start of a quoted field.
    return column.astype(str).str.replace(r'[\t\r\n"]+', " ", regex=True).str.replace(r" {2,}", " ", regex=True).str.strip()


def _write_table(path: Path, table: pd.DataFrame) -> None:
    table = table.apply(lambda c: _clean_text(c) if c.dtype == object else c)
    with atomic_write(path, "w") as f:
        table.to_csv(f, sep="\t", index=False, lineterminator="\n", quoting=csv.QUOTE_NONE)


def _write_provenance(path: Path, summary: dict, raw: RawDataset, kcore: int, modalities: dict) -> None:
    provenance = {
        **{k: v for k, v in summary.items() if k != "out_dir"},
        "kcore": kcore,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **{k: v for k, v in raw.provenance.items() if k != "modalities"},
        "files": sorted([f"{summary['dataset']}.inter", f"{summary['dataset']}.item", *(m["file"] for m in modalities.values())]),
        "modalities": modalities,
    }
    with atomic_write(path, "w") as f:
        json.dump(provenance, f, indent=1, default=str)
        f.write("\n")
