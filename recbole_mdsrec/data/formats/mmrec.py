"""``--from=mmrec``: MMRec's files in ``--path``: ``<stem>.inter`` (tab-separated ``userID
itemID rating timestamp x_label``) and ``image_feat.npy`` / ``text_feat.npy`` whose row ``r``
is the item ``itemID = r``. MMRec's ``x_label`` split is random per user (for general
recommendation); for sequential use the interactions are split again, leave-one-out by time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recbole_mdsrec.data.arrays import indexed_array, require_columns
from recbole_mdsrec.data.formats.common import file_in, folder_of, stem_of
from recbole_mdsrec.data.formats.table import interactions_of
from recbole_mdsrec.data.raw import RawDataset, items_without_side_information
from recbole_mdsrec.errors import DataError

KCORE = 5
FEATURE_FILES = {"image": "image_feat.npy", "text": "text_feat.npy"}
COLUMNS = ("userID", "itemID", "timestamp")


def read(spec) -> RawDataset:
    folder = folder_of(spec, "mmrec")
    stem = stem_of(spec, folder, ".inter", "mmrec")
    path = file_in(folder, f"{stem}.inter", "MMRec interactions file")
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    require_columns(table.columns, COLUMNS, path, "MMRec's header (userID itemID rating timestamp x_label)")
    inter = interactions_of(table, path, "userID", "itemID", "timestamp",
                            "rating" if "rating" in table.columns else None, "time")
    items = items_without_side_information(inter)
    arrays = {}
    for modality, name in FEATURE_FILES.items():
        feature_file = folder / name
        if not feature_file.is_file():
            continue
        rows = np.load(feature_file, mmap_mode="r").shape[0]
        indices = pd.to_numeric(items.index.to_series(), errors="coerce")
        if indices.isna().any() or (indices >= rows).any() or (indices < 0).any():
            raise DataError(f"{path}: itemIDs {list(items.index[(indices.isna() | (indices >= rows)).to_numpy()][:5])} "
                            f"are not rows of {feature_file} ({rows} rows). Fix: give MMRec's files of one dataset.")
        arrays[modality] = indexed_array(modality, feature_file, [str(i) for i in range(rows)]).only(items.index)
    if not arrays and not spec.features and not spec.codes:
        raise DataError(f"{folder} has neither image_feat.npy nor text_feat.npy. Fix: add them, or give features "
                        "with --feature / --codes.")
    provenance = {"raw_source": str(path), "format": "mmrec",
                  "interaction_rule": f"{path.name}: every row is an interaction; x_label ignored, ordered by "
                  "timestamp (ties in file order) and split leave-one-out"}
    return RawDataset(inter, items, provenance=provenance, modal_arrays=arrays)
