"""Build a RecBole dataset folder with per-modality item features from raw data.

``prepare_dataset`` writes into ``<out_root>/<name>/``:

- ``<name>.inter``: user_id, item_id, rating, timestamp; rows sorted by user then time
  with ties in file order (RecBole's own sort by time keeps that order);
- ``<name>.item``: item side information (text fields as token / token_seq);
- ``<name>.<modality>.npz``: features of exactly the items left after k-core
  (format in :mod:`recbole_mdsrec.data.feature_store`);
- ``<name>.features.json``: provenance, written last, so its presence means the rest is complete.

Datasets are known by name through :data:`DATASETS` (add your own reader with
:func:`register_dataset`); any other dataset in the field's formats or your own tables is
described by an ``ImportSpec`` and prepared by :func:`prepare_source`.
"""

from __future__ import annotations

import csv
import json
import functools
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from recbole_mdsrec.data.encoders import ArrayEncoder, CachedEncoder, ImageEncoder, ModalEncoder, TextEncoder
from recbole_mdsrec.data.feature_store import feature_path, save_modal_features
from recbole_mdsrec.data.importer import ImportSpec, read_source
from recbole_mdsrec.data.raw import ModalArrays, RawDataset, kcore_filter, require_file
from recbole_mdsrec.data.readers import read_hm, read_movielens_100k
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
    kcore: int = 5  # the default k-core (1: the source's split is kept as published)


def _from_format(source: str, stem: str, name: str, raw_dir: Path) -> RawDataset:
    return read_source(ImportSpec(name, source, path=raw_dir, stem=stem))


DATASETS: dict[str, DatasetSpec] = {
    "ml-100k-mm": DatasetSpec("ml-100k", read_movielens_100k, "MovieLens-100K with TMDB posters and overviews"),
    "hm": DatasetSpec("hm", read_hm, "H&M fashion purchases (sample), product level"),
    "amazon-instruments": DatasetSpec(
        "amazon-instruments", functools.partial(_from_format, "mql4grec", "Instruments", "amazon-instruments"),
        "Amazon 2018 Musical Instruments, image and text as RQ-VAE codes, the published leave-one-out split",
        kcore=1),
    "microlens-50k": DatasetSpec(
        "microlens-50k", functools.partial(_from_format, "microlens", "MicroLens-50k", "microlens-50k"),
        "MicroLens-50k micro-video sequences, titles as text", kcore=5),
}


def register_dataset(name: str, raw_subdir: str, reader: Callable[[Path], RawDataset], description: str = "",
                     kcore: int = 5) -> None:
    """Make ``prepare_dataset(name, ...)`` read ``<raw_root>/<raw_subdir>`` with ``reader``."""
    DATASETS[name] = DatasetSpec(raw_subdir, reader, description, kcore)


def default_encoders(progress: bool = True) -> dict[str, ModalEncoder]:
    """The encoder of each built-in modality; models load on first use."""
    return {"text": TextEncoder(progress=progress), "image": ImageEncoder(progress=progress)}


def prepare_dataset(
    name: str,
    raw_root,
    out_root,
    kcore: int | None = None,
    precomputed: Mapping[str, ModalArrays] | None = None,
    progress: bool = True,
    encoders: Mapping[str, ModalEncoder] | None = None,
) -> dict:
    """Read, filter, encode and write one built-in dataset; returns its summary.

    ``kcore`` None is the dataset's own default. ``precomputed`` gives a modality's features
    instead of encoding it (``arrays.read_feature_file``). ``encoders`` overrides
    :func:`default_encoders` per modality. Encoded rows are cached under
    ``<out_root>/.cache/encoders/``.
    """
    started = time.perf_counter()
    spec = _spec(name)
    raw = spec.reader(require_file(Path(raw_root) / spec.raw_subdir, f"folder of dataset '{name}'"))
    for modality, arrays in (precomputed or {}).items():
        raw.modal_arrays[modality] = arrays
        raw.modal_inputs.pop(modality, None)
    return prepare_raw(name, raw, out_root, spec.kcore if kcore is None else kcore, progress, encoders, started)


def prepare_source(spec: ImportSpec, out_root, progress: bool = True,
                   encoders: Mapping[str, ModalEncoder] | None = None) -> dict:
    """Read the dataset ``spec`` describes (any format, ``data/importer.py``), then filter,
    encode and write it as :func:`prepare_dataset` does."""
    from recbole_mdsrec.data.formats import FORMATS

    started = time.perf_counter()
    raw = read_source(spec)
    kcore = FORMATS[spec.source].KCORE if spec.kcore is None else spec.kcore
    return prepare_raw(spec.name, raw, out_root, kcore, progress, encoders, started)


def prepare_raw(name: str, raw: RawDataset, out_root, kcore: int, progress: bool = True,
                encoders: Mapping[str, ModalEncoder] | None = None, started: float | None = None) -> dict:
    """Filter, encode and write a dataset already read; returns its summary."""
    started = time.perf_counter() if started is None else started
    out_root = Path(out_root)
    inter = kcore_filter(raw.interactions, kcore)
    if inter.empty:
        raise DataError(
            f"No interaction of dataset '{name}' survives {kcore}-core filtering (every user and item needs "
            f"at least {kcore} interactions). Fix: lower --kcore (e.g. --kcore=3, or 1 to disable it)."
        )
    if raw.split is not None:
        _check_split_kept(name, raw, inter, kcore)
    items = _kept_items(raw.items, inter, name)
    out_dir = out_root / name

    encoders = {**default_encoders(progress), **(encoders or {})}
    sources = _modal_sources(raw, items.index, encoders, out_root / CACHE_SUBDIR)
    if not sources:
        raise DataError(f"Dataset '{name}' has no modality: give at least one (--text, --images, --feature or --codes).")
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


def _check_split_kept(name: str, raw: RawDataset, inter: pd.DataFrame, kcore: int) -> None:
    """The source's published split survives preparation exactly: no row filtered away, and
    each user's last two interactions are its validation and test targets."""
    if len(inter) != len(raw.interactions):
        raise DataError(
            f"--kcore={kcore} drops {len(raw.interactions) - len(inter)} interactions of '{name}', whose split is "
            f"given ({raw.split.source}), so the split would change. Fix: drop --kcore (the default keeps every row)."
        )
    last = inter.groupby("user_id", sort=False)["item_id"].agg(lambda s: tuple(s.iloc[-2:]))
    wrong = [u for u, (valid, test) in last.items() if raw.split.valid.get(u) != valid or raw.split.test.get(u) != test]
    if wrong or len(last) != len(raw.split.test):
        raise DataError(f"The given split of '{name}' ({raw.split.source}) is not each user's last two items in time "
                        f"order (users {wrong[:5]}). Fix: give interactions whose order matches the split.")


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
            f"Unknown dataset '{name}'; the built-in ones are {', '.join(sorted(DATASETS))}. Fix: describe your own with "
            f"python -m recbole_mdsrec.cli.prepare {name} --from=FORMAT ... (README 'Bring your own data'), or add a "
            f"reader with recbole_mdsrec.data.prepare.register_dataset(name, raw_subdir, reader)."
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


def _modal_sources(raw: RawDataset, tokens: pd.Index, encoders, cache_root: Path) -> dict:
    """modality -> (inputs aligned to tokens, encoder, input provenance)."""
    sources = {}
    for modality, inputs in raw.modal_inputs.items():
        if modality not in encoders:
            raise DataError(f"No encoder for modality '{modality}'; pass one in encoders= or --feature={modality}=...")
        encoder = CachedEncoder(encoders[modality], cache_root)
        source = raw.provenance.get("modalities", {}).get(modality, {})
        sources[modality] = (inputs.reindex(tokens), encoder, source)
    for modality, arrays in raw.modal_arrays.items():
        encoder = ArrayEncoder(arrays, modality)
        sources[modality] = (encoder.inputs_for(tokens), encoder, {"input_fields": [arrays.source.get(
            "features_file", "precomputed by the user")], **{k: v for k, v in arrays.source.items() if k != "input_fields"}})
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
