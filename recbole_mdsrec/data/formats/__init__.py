"""The field's dataset file formats, each read into a ``RawDataset`` by name (``--from=NAME``).

Each module has ``read(spec: ImportSpec) -> RawDataset`` and ``KCORE``, its default k-core
(1 where the format carries a published split, which a filter would change).
"""

from __future__ import annotations

from types import ModuleType

from recbole_mdsrec.data.formats import benchmark, microlens, mmrec, mql4grec, recbole_atomic, table, unisrec

FORMATS: dict[str, ModuleType] = {
    "table": table,                  # your interactions (CSV/TSV/Parquet) and item table
    "recbole": recbole_atomic,       # RecBole atomic files <stem>.inter (+ <stem>.item)
    "recbole-benchmark": benchmark,  # RecBole benchmark splits <stem>.{train,valid,test}.inter
    "mmrec": mmrec,                  # MMRec: <stem>.inter with x_label, image_feat.npy / text_feat.npy
    "unisrec": unisrec,              # UniSRec / MISSRec: benchmark splits, .item2index, .feat1CLS / .feat3CLS
    "mql4grec": mql4grec,            # MQL4GRec / LC-Rec: <stem>.inter.json, <stem>.index_*.json codes
    "microlens": microlens,          # MicroLens: <stem>_pairs.tsv, <stem>_titles.csv
}
