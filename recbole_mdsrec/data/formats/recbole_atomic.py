"""``--from=recbole``: RecBole atomic files ``<stem>.inter`` and, optionally, ``<stem>.item``
(tab-separated, headers ``name:type``), in ``--path``.

The interactions need ``user_id:token`` and ``item_id:token`` and are ordered by
``timestamp:float`` (ties in file order), or by the file's order with ``--order=file``.
The ``.item`` columns are kept as they are; ``--text`` names those that make the text modality.
"""

from __future__ import annotations

import pandas as pd

from recbole_mdsrec.data.arrays import require_columns
from recbole_mdsrec.data.formats.common import file_in, folder_of, stem_of
from recbole_mdsrec.data.formats.table import interactions_of
from recbole_mdsrec.data.raw import RawDataset, items_without_side_information
from recbole_mdsrec.errors import DataError

KCORE = 5


def read(spec) -> RawDataset:
    folder = folder_of(spec, "recbole")
    stem = stem_of(spec, folder, ".inter", "recbole")
    path = file_in(folder, f"{stem}.inter", "RecBole interactions file")
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    names = {c.split(":")[0]: c for c in table.columns}
    require_columns(names, ["user_id", "item_id"], path, "RecBole's header names (user_id:token, item_id:token)")
    if spec.order == "time" and "timestamp" not in names:
        raise DataError(f"{path} has no timestamp column, so the order of each user's interactions is unknown. "
                        "Fix: add timestamp:float, or pass --order=file if each user's rows are in time order.")
    inter = interactions_of(table, path, names["user_id"], names["item_id"], names.get("timestamp"),
                            names.get("rating"), spec.order)
    item_path = folder / f"{stem}.item"
    items = _items(item_path, inter) if item_path.is_file() else items_without_side_information(inter)
    provenance = {"raw_source": str(path), "format": "recbole",
                  "interaction_rule": f"{path.name}: every row is an interaction; "
                  + ("ordered by timestamp, ties in file order" if spec.order == "time" else "file order")}
    return RawDataset(inter, items, provenance=provenance)


def _items(path, inter: pd.DataFrame) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    names = {c.split(":")[0]: c for c in table.columns}
    require_columns(names, ["item_id"], path, "RecBole's header names (item_id:token)")
    duplicated = table[names["item_id"]][table[names["item_id"]].duplicated()]
    if len(duplicated):
        raise DataError(f"{path}: {len(duplicated)} item(s) appear more than once (first: {list(duplicated[:5])}). "
                        "Fix: keep one row per item.")
    table = table.set_index(names["item_id"])
    table.index.name = "item_id"
    lacking = pd.Index(pd.unique(inter["item_id"])).difference(table.index)
    if len(lacking):
        raise DataError(f"{len(lacking)} interacted items have no row in {path} (first: {list(lacking[:5])}). "
                        "Fix: add them to the .item file.")
    return table.loc[pd.unique(inter["item_id"])]
