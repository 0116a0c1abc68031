"""``--from=unisrec``: UniSRec's and MISSRec's files in ``--path``: the benchmark splits
``<stem>.{train,valid,test}.inter`` (kept exactly, as ``recbole-benchmark``), optionally
``<stem>.item2index`` (original id, index), and the features as float32 binaries whose row
``r`` is the item of index ``r``: ``<stem>.feat1CLS`` (text) and ``<stem>.feat3CLS`` (image,
MISSRec). A binary's dimension is read from its size, or given with ``--dim=MODALITY=D``.
"""

from __future__ import annotations

import pandas as pd

from recbole_mdsrec.data.arrays import read_indexed_binary
from recbole_mdsrec.data.formats.common import folder_of, read_benchmark_files, sequences_from_benchmark, stem_of
from recbole_mdsrec.data.raw import RawDataset, interactions_from_sequences, items_without_side_information
from recbole_mdsrec.errors import DataError

KCORE = 1  # a filter would change the given split
FEATURE_FILES = {"text": "feat1CLS", "image": "feat3CLS"}


def read(spec) -> RawDataset:
    folder = folder_of(spec, "unisrec")
    stem = stem_of(spec, folder, ".train.inter", "unisrec")
    users, sequences, split = sequences_from_benchmark(read_benchmark_files(folder, stem), f"{folder}/{stem}.*.inter")
    inter = interactions_from_sequences(users, sequences)
    items = items_without_side_information(inter)
    indices = pd.to_numeric(items.index.to_series(), errors="coerce")
    if indices.isna().any() or (indices < 0).any():
        raise DataError(f"{folder}/{stem}.*.inter: item tokens {list(items.index[indices.isna()][:5])} are not item "
                        "indices (0, 1, ...). Fix: give UniSRec's index files, or use --from=recbole-benchmark.")
    index_file = folder / f"{stem}.item2index"
    n_rows = int(indices.max()) + 1  # row r = index r; indices may start at 1 (row 0: padding)
    if index_file.is_file():
        mapping = pd.read_csv(index_file, sep="\t", header=None, names=["original", "index"], dtype=str)
        items["original_id:token"] = mapping.set_index("index")["original"].reindex(items.index).fillna("").to_numpy()
        n_rows = max(n_rows, int(pd.to_numeric(mapping["index"]).max()) + 1)  # the whole catalogue's rows
    arrays = {}
    for modality, suffix in FEATURE_FILES.items():
        path = folder / f"{stem}.{suffix}"
        if path.is_file():
            arrays[modality] = read_indexed_binary(modality, path, n_rows, spec.dims.get(modality)).only(items.index)
    if not arrays and not spec.features and not spec.codes:
        raise DataError(f"{folder} has no {stem}.feat1CLS or {stem}.feat3CLS. Fix: add them, or give features "
                        "with --feature / --codes.")
    provenance = {"raw_source": str(folder), "format": "unisrec",
                  "interaction_rule": f"{stem}.train/valid/test.inter, the split kept; timestamp = position"}
    return RawDataset(inter, items, provenance=provenance, modal_arrays=arrays, split=split)
