"""``--from=table``: your own interactions and item table (CSV, TSV or Parquet).

The interactions file has one row per interaction with the columns ``--user``, ``--item``,
and ``--time`` (numbers or dates; ties keep the file's order) unless ``--order=file`` says
the rows of each user already are in time order; ``--rating`` optional. ``--items`` is an
item table with the column ``--item_key`` (default ``--item``); its other columns become the
``.item`` file, and ``--text`` names the ones that make the text modality.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recbole_mdsrec.data.arrays import read_table, require_columns
from recbole_mdsrec.data.raw import RawDataset, items_without_side_information, sort_interactions
from recbole_mdsrec.errors import DataError

KCORE = 5
_SHOWN = 5


def read(spec) -> RawDataset:
    if spec.interactions is None:
        raise DataError("--from=table reads an interactions file. Fix: pass --interactions=FILE (CSV, TSV or Parquet).")
    raw = read_table(spec.interactions, "interactions")
    inter = interactions_of(raw, spec.interactions, spec.user, spec.item, spec.time, spec.rating, spec.order)
    items = item_table(spec, inter) if spec.items is not None else items_without_side_information(inter)
    provenance = {"raw_source": str(spec.interactions), "format": "table",
                  "interaction_rule": f"{spec.interactions}: one row per interaction; users {spec.user!r}, items "
                  f"{spec.item!r}; " + (f"ordered by {spec.time!r}, ties in file order" if spec.order == "time"
                                        else "each user's rows in file order")}
    return RawDataset(inter, items, provenance=provenance)


def interactions_of(raw: pd.DataFrame, path, user: str, item: str, time: str | None, rating: str | None,
                    order: str) -> pd.DataFrame:
    """user_id, item_id, rating, timestamp from the named columns of ``raw`` (read from
    ``path``), sorted by user then time (``order="time"``) or each user's rows in file order."""
    if order == "time" and not time:
        raise DataError(
            f"{path}: no timestamp column is named and --order=file is not given, so the order of "
            "each user's interactions is unknown. Fix: pass --time=COLUMN, or --order=file if each user's rows "
            "are already in time order."
        )
    require_columns(raw.columns, [user, item, time if order == "time" else None, rating], path,
                    "--user, --item, --time and --rating")
    if order == "time":
        timestamp = _as_numbers(raw[time], path, time)
    else:
        timestamp = raw.groupby(user, sort=False).cumcount().to_numpy()
    inter = pd.DataFrame({
        "user_id": raw[user].astype(str).to_numpy(),
        "item_id": raw[item].astype(str).to_numpy(),
        "rating": pd.to_numeric(raw[rating], errors="coerce").to_numpy() if rating else 1.0,
        "timestamp": timestamp,
    })
    empty = (inter["user_id"].str.strip() == "") | (inter["item_id"].str.strip() == "")
    if empty.any():
        raise DataError(f"{path}: {int(empty.sum())} row(s) have an empty user or item (first at row "
                        f"{int(np.flatnonzero(empty.to_numpy())[0]) + 2}). Fix: remove them or fill them in.")
    users, first = np.unique(inter["user_id"].to_numpy(), return_index=True)
    rank = pd.Series(np.argsort(np.argsort(first)), index=users)  # users in order of first appearance
    return sort_interactions(inter, rank[inter["user_id"]].to_numpy())


def _as_numbers(column: pd.Series, path, name: str) -> np.ndarray:
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy()
    dates = pd.to_datetime(column, errors="coerce", utc=True)
    if dates.notna().all():
        return ((dates - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy()
    bad = column[numbers.isna() & dates.isna()]
    raise DataError(f"{path}: column {name!r} holds values that are neither numbers nor dates "
                    f"(first: {list(bad[:_SHOWN])}). Fix: give unix times or dates, or --order=file.")


def item_table(spec, inter: pd.DataFrame) -> pd.DataFrame:
    """The item table indexed by token, checked against the interacted items."""
    table = read_table(spec.items, "item table")
    key = spec.item_key or spec.item
    require_columns(table.columns, [key], spec.items, "--item_key (the item table's item column)")
    table = table.assign(**{key: table[key].astype(str)})
    duplicated = table[key][table[key].duplicated()]
    if len(duplicated):
        raise DataError(f"{spec.items}: {len(duplicated)} item(s) appear more than once (first: "
                        f"{list(duplicated.unique()[:_SHOWN])}). Fix: keep one row per item.")
    table = table.set_index(key)
    interacted = pd.Index(pd.unique(inter["item_id"]))
    lacking, extra = interacted.difference(table.index), table.index.difference(interacted)
    if len(lacking) and not ({"text", "all"} & set(spec.allow_missing)):
        raise DataError(f"{len(lacking)} of the {len(interacted)} interacted items have no row in {spec.items} (first: "
                        f"{list(lacking[:_SHOWN])}). Fix: add them, check --item and --item_key, or pass "
                        "--allow_missing=text to let them lack the text modality.")
    if len(extra) and not spec.allow_extra:
        raise DataError(f"{len(extra)} of the {len(table)} rows of {spec.items} belong to no interacted item (first: "
                        f"{list(extra[:_SHOWN])}). Fix: check --item and --item_key, or pass --allow_extra to drop them.")
    table = table.reindex(interacted).fillna("")  # items without a row: empty fields (they lack text)
    table.index.name = "item_id"
    return table.rename(columns={c: c if ":" in c else f"{c}:token_seq" for c in table.columns}).astype(str)
