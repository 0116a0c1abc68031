"""Any multimodal dataset in: one :class:`ImportSpec` says where its files are and in which
format; :func:`read_source` reads it into a :class:`~recbole_mdsrec.data.raw.RawDataset`.

The format (``source``) reads the interactions, the item table and whatever features the
format itself carries (``recbole_mdsrec/data/formats/``). On top of any format come the
modalities you add: ``text`` (columns of the item table, joined and encoded offline),
``images`` (a path pattern, encoded offline), ``features`` (precomputed vectors) and
``codes`` (semantic IDs, as one-hot features). Every feature row must belong to an
interacted item and every interacted item must have one, unless ``allow_missing`` /
``allow_extra`` say otherwise. ``docs/data.md`` describes each format; the README's
"Bring your own data" has an example per format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import yaml

from recbole_mdsrec.data.arrays import check_alignment, read_feature_file
from recbole_mdsrec.data.codes import read_codes
from recbole_mdsrec.data.raw import RawDataset
from recbole_mdsrec.errors import DataError

TEXT_SEPARATOR = ". "  # between the text columns of an item, as the H&M reader joins its fields


@dataclass(frozen=True)
class FeatureOption:
    """``--feature=MODALITY=FEATURES.npy:TOKENS.txt`` or ``--feature=MODALITY=TABLE.csv``."""

    modality: str
    path: Path
    tokens: Path | None = None


@dataclass(frozen=True)
class CodeOption:
    """``--codes=MODALITY=CODES.json[:K]``: semantic IDs, ``K`` codes per level."""

    modality: str
    path: Path
    size: int | None = None


@dataclass(frozen=True)
class ImportSpec:
    name: str
    source: str = "table"               # the file format (--from), see FORMATS
    path: Path | None = None            # the folder holding the format's files
    stem: str | None = None             # their common file-name stem (default: the only one there)
    interactions: Path | None = None    # table: the interactions file (CSV, TSV or Parquet)
    user: str = "user_id"               # table: user column
    item: str = "item_id"               # table: item column
    time: str | None = None             # table: timestamp column (numbers or dates)
    rating: str | None = None           # table: rating column (default: every row rates 1)
    order: str = "time"                 # "time" (by the timestamp, ties in file order) or "file"
    items: Path | None = None           # an item table (CSV, TSV or Parquet), one row per item
    item_key: str | None = None         # its item column (default: the interactions' item column)
    text: tuple[str, ...] = ()          # item-table columns that make the text modality
    images: str | None = None           # image path pattern with {item}, e.g. photos/{item}.jpg or {item:.3}/{item}.jpg
    features: tuple[FeatureOption, ...] = ()
    codes: tuple[CodeOption, ...] = ()
    dims: Mapping[str, int] = field(default_factory=dict)  # dims of float32 binaries (UniSRec, MISSRec)
    kcore: int | None = None            # None: the format's default
    allow_missing: tuple[str, ...] = ()  # modalities some interacted items may lack ("text": also item-table rows)
    allow_extra: bool = False           # drop feature / item rows of items no interaction has

    def __post_init__(self):
        from recbole_mdsrec.data.formats import FORMATS

        if self.source not in FORMATS:
            raise DataError(f"Unknown format '{self.source}' (option --from). Known: {', '.join(FORMATS)}. "
                            "Fix: pick one of them (docs/data.md describes each).")
        if self.order not in ("time", "file"):
            raise DataError(f"--order={self.order}: give time (sort by --time) or file (the file's row order).")

    @classmethod
    def from_yaml(cls, path: Path) -> "ImportSpec":
        """A dataset described once in yaml: ``name``, ``from`` and the options as keys
        (``text: [title, description]``, ``features: {image: img.npy:tokens.txt}``,
        ``codes: {text: codes.json:256}``). Relative paths are relative to the yaml file."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"The dataset description {path} does not exist. Fix: give an existing yaml file.")
        described = yaml.safe_load(path.read_text()) or {}
        if not isinstance(described, dict) or "name" not in described:
            raise DataError(f"{path} must be a mapping with at least 'name' (and 'from', the format).")
        known = {f.name for f in dataclasses.fields(cls)} | {"from"}
        unknown = sorted(set(described) - known)
        if unknown:
            raise DataError(f"{path} has unknown key(s) {unknown}. Fix: use the prepare options' names: {sorted(known)}.")
        base = path.parent

        def local(value):
            return None if value is None else (base / Path(value)).resolve()

        options = dict(described)
        options["source"] = options.pop("from", "table")
        for key in ("path", "interactions", "items"):
            options[key] = local(options.get(key))
        if options.get("images"):
            options["images"] = str(base / options["images"])
        options["text"] = tuple(_as_list(options.get("text")))
        options["allow_missing"] = tuple(_as_list(options.get("allow_missing")))
        options["features"] = tuple(feature_option(m, str(v), base) for m, v in (options.get("features") or {}).items())
        options["codes"] = tuple(code_option(m, str(v), base) for m, v in (options.get("codes") or {}).items())
        options["dims"] = dict(options.get("dims") or {})
        return cls(**options)


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else [str(v) for v in value]


def feature_option(modality: str, files: str, base: Path = Path(".")) -> FeatureOption:
    """``FEATURES.npy:TOKENS.txt`` or ``TABLE.csv`` of ``modality``."""
    features, sep, tokens = files.rpartition(":")
    if not sep or Path(files).suffix.lower() in (".csv", ".tsv", ".parquet"):
        return FeatureOption(modality, base / files)
    if not (modality and features and tokens):
        raise DataError(f"--feature {modality}={files} is malformed; write MODALITY=FEATS.npy:TOKENS.txt "
                        "or MODALITY=TABLE.csv, e.g. --feature=image=img.npy:items.txt.")
    return FeatureOption(modality, base / features, base / tokens)


def code_option(modality: str, spec: str, base: Path = Path(".")) -> CodeOption:
    """``CODES.json`` or ``CODES.json:K`` of ``modality``."""
    path, sep, size = spec.rpartition(":")
    if sep and size.isdigit():
        return CodeOption(modality, base / path, int(size))
    return CodeOption(modality, base / spec)


def read_source(spec: ImportSpec) -> RawDataset:
    """The dataset ``spec`` describes, with every modality it names added and checked."""
    from recbole_mdsrec.data.formats import FORMATS

    raw = FORMATS[spec.source].read(spec)
    items = pd.Index(pd.unique(raw.interactions["item_id"]))
    if spec.text:
        raw.modal_inputs["text"] = text_inputs(raw.items, spec.text, spec)
    if spec.images:
        raw.modal_inputs["image"] = image_inputs(items, spec.images)
    added = {o.modality: read_feature_file(o.modality, o.path, o.tokens) for o in spec.features}
    added |= {o.modality: read_codes(o.path, o.modality, o.size) for o in spec.codes}
    for modality, arrays in added.items():
        where = arrays.source.get("features_file") or arrays.source.get("input_fields", ["the codes"])[0]
        raw.modal_arrays[modality] = check_alignment(arrays, modality, items, _allows(spec, modality),
                                                     spec.allow_extra, where)
        raw.modal_inputs.pop(modality, None)
    return raw


def _allows(spec: ImportSpec, modality: str) -> bool:
    return modality in spec.allow_missing or "all" in spec.allow_missing


def text_inputs(items: pd.DataFrame, columns: tuple[str, ...], spec: ImportSpec) -> pd.Series:
    """Each item's text: its non-empty ``columns`` joined with ". "; None where all are empty."""
    by_name = {c.split(":")[0]: c for c in items.columns}
    missing = [c for c in columns if c not in items.columns and c not in by_name]
    if missing:
        raise DataError(
            f"The item table has no column(s) {missing} for --text (it has: {[c.split(':')[0] for c in items.columns]}). "
            "Fix: name columns of the item table (--items), or give --items if there is none."
        )
    parts = items[[c if c in items.columns else by_name[c] for c in columns]].fillna("").astype(str)
    text = parts.apply(lambda row: TEXT_SEPARATOR.join(v.strip() for v in row if v.strip()), axis=1)
    return text.where(text != "", None).astype(object)


def image_inputs(items: pd.Index, pattern: str) -> pd.Series:
    """The image file of each item from ``pattern`` (``{item}`` is the item token, ``{item:.3}``
    its first 3 characters); None where there is none. A pattern that finds no file at all
    is an error."""
    if "{item" not in pattern:
        raise DataError(f"--images={pattern} has no {{item}}. Fix: write the path of an item's image with {{item}} "
                        "for its token, e.g. --images=photos/{item}.jpg.")
    paths = [Path(pattern.format(item=item)) for item in items]
    found = np.array([p.is_file() for p in paths])
    if not found.any():
        raise DataError(
            f"--images={pattern} matches no file for any of the {len(items)} items (e.g. {paths[0]} does not exist). "
            "Fix: check the folder and the file name pattern."
        )
    return pd.Series([p if ok else None for p, ok in zip(paths, found)], index=items, dtype=object)
