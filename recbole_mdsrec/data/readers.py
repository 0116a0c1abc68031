"""The readers of the two datasets built from raw files: MovieLens-100K with posters and
plots, and the H&M sample.

A reader takes the folder of one raw dataset and returns a :class:`~recbole_mdsrec.data.raw.RawDataset`.
Readers only parse and order; k-core filtering, encoding and writing happen in
:mod:`recbole_mdsrec.data.prepare`, where readers are registered. Datasets in the field's
file formats are read by :mod:`recbole_mdsrec.data.formats`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recbole_mdsrec.data.raw import INTER_COLUMNS, RawDataset, require_file, sort_interactions
from recbole_mdsrec.errors import DataError



# ---------------------------------------------------------------- MovieLens-100K

ML_GENRES = (
    "unknown Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy "
    "Film-Noir Horror Musical Mystery Romance Sci-Fi Thriller War Western"
).split()


def read_movielens_100k(raw_dir: Path) -> RawDataset:
    """MovieLens-100K with TMDB overviews and posters; every rating is an interaction."""
    raw_dir = Path(raw_dir)
    inter = _read_ml_ratings(require_file(raw_dir / "u.data", "MovieLens-100K ratings file u.data"))
    items = _read_ml_items(require_file(raw_dir / "u.item", "MovieLens-100K item file u.item"))
    overviews = _read_ml_overviews(require_file(raw_dir / "overviews.csv", "MovieLens-100K overviews.csv"))
    posters = require_file(raw_dir / "posters", "MovieLens-100K posters folder")

    ids = items.index.to_numpy()
    overview = overviews.reindex(ids).fillna("").to_numpy()
    titles = items["title:token_seq"].to_numpy()
    # "title. overview" reproduces the reference text_feat.npy (cosine >= 0.9999999 on every
    # item checked, empty overviews included); "title overview" or "title\noverview" give
    # 0.97-0.99 and "title: overview" 0.95-0.99.
    text = pd.Series([f"{t}. {o}" for t, o in zip(titles, overview)], index=ids, dtype=object)
    image = pd.Series([_existing(posters / f"{i}.jpg") for i in ids], index=ids, dtype=object)
    return RawDataset(
        interactions=inter,
        items=items,
        modal_inputs={"text": text, "image": image},
        provenance={
            "raw_source": str(raw_dir),
            "interaction_rule": "u.data: every rating is an interaction (implicit feedback); sorted by user, "
            "then timestamp, ties kept in file order",
            "modalities": {
                "text": {"input_fields": ["u.item title", "overviews.csv overview"], "format": "'{title}. {overview}'"},
                "image": {"input_fields": ["posters/<movie_id>.jpg"]},
            },
        },
    )


def _read_ml_ratings(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep="\t", header=None, names=list(INTER_COLUMNS), dtype="int64")
    inter = pd.DataFrame(
        {
            "user_id": raw["user_id"].astype(str),
            "item_id": raw["item_id"].astype(str),
            "rating": raw["rating"].astype(float),
            "timestamp": raw["timestamp"],
        }
    )
    return sort_interactions(inter, raw["user_id"].to_numpy())


def _read_ml_items(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep="|", header=None, encoding="latin-1", dtype=str, keep_default_na=False)
    flags = raw.iloc[:, 5 : 5 + len(ML_GENRES)].to_numpy() == "1"
    genres = [" ".join(g for g, on in zip(ML_GENRES, row) if on) for row in flags]
    items = pd.DataFrame(
        {
            "title:token_seq": raw[1].to_numpy(),
            "genre:token_seq": genres,
            "release_year:token": raw[2].str[-4:].to_numpy(),  # "01-Jan-1995" -> "1995"
        },
        index=pd.Index(raw[0].to_numpy(), name="item_id"),
    )
    return items


def _read_ml_overviews(path: Path) -> pd.Series:
    ov = pd.read_csv(path, dtype=str, keep_default_na=False)
    return ov.set_index("movie_id")["overview"]


# ---------------------------------------------------------------- H&M

HM_TEXT_FIELDS = ("prod_name", "product_type_name", "colour_group_name", "department_name", "detail_desc")
HM_PRODUCT_DIGITS = 7


def read_hm(raw_dir: Path) -> RawDataset:
    """H&M purchases at product level (product = first 7 digits of article_id)."""
    raw_dir = Path(raw_dir)
    transactions = require_file(raw_dir / "transactions.csv", "H&M transactions.csv")
    articles = _read_hm_articles(require_file(raw_dir / "articles.csv", "H&M articles.csv"))
    images = require_file(raw_dir / "images", "H&M images folder")
    inter, bought = _read_hm_transactions(transactions)

    products = np.unique(inter["item_id"].to_numpy())
    described = articles.groupby("product")[list(HM_TEXT_FIELDS)].first().reindex(products)
    has_text = described.notna().all(axis=1).to_numpy()
    text = pd.Series(
        [". ".join(f for f in row if f) if ok else None for row, ok in zip(described.to_numpy(), has_text)],
        index=products,
        dtype=object,
    )
    photo = _hm_product_photos(images, np.union1d(bought, articles.index.to_numpy())).reindex(products)
    items = pd.DataFrame(
        {
            "prod_name:token_seq": described["prod_name"].to_numpy(),
            "product_type:token": described["product_type_name"].to_numpy(),
            "colour:token": described["colour_group_name"].to_numpy(),
            "department:token": described["department_name"].to_numpy(),
        },
        index=pd.Index(products, name="item_id"),
    ).fillna("")
    image = photo.astype(object).where(photo.notna(), None)
    return RawDataset(
        interactions=inter,
        items=items,
        modal_inputs={"text": text, "image": image},
        provenance={
            "raw_source": str(raw_dir),
            "item_level": "product: item token = product_code = first 7 digits of article_id (leading zeros kept)",
            "interaction_rule": "transactions.csv: every purchase row is an interaction with rating 1.0; "
            "t_dat (a day) -> unix timestamp at 00:00 UTC; sorted by customer, then day, ties in file order",
            "modalities": {
                "text": {
                    "input_fields": [f"articles.csv {f}" for f in HM_TEXT_FIELDS],
                    "format": "non-empty fields joined with '. '",
                    "rule": "taken from the product's first article (by article_id) listed in articles.csv; "
                    "products with no such article lack text",
                },
                "image": {
                    "input_fields": ["images/<first 3 digits>/<article_id>.jpg"],
                    "rule": "the photo of the product's first article (by article_id, among purchased and "
                    "described articles) that has one",
                },
            },
        },
    )


def _read_hm_transactions(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    raw = pd.read_csv(path, dtype={"customer_id": str, "article_id": str}, usecols=["t_dat", "customer_id", "article_id"])
    _check_article_ids(raw["article_id"], path)
    day = pd.to_datetime(raw["t_dat"], format="%Y-%m-%d")
    inter = pd.DataFrame(
        {
            "user_id": raw["customer_id"],
            "item_id": raw["article_id"].str[:HM_PRODUCT_DIGITS],
            "rating": 1.0,
            "timestamp": (day - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1),
        }
    )
    return sort_interactions(inter, raw["customer_id"].to_numpy()), raw["article_id"].unique()


def _read_hm_articles(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("article_id", *HM_TEXT_FIELDS) if c not in raw.columns]
    if missing:
        raise DataError(f"{path} lacks the column(s) {', '.join(missing)}; use the Kaggle H&M articles.csv layout.")
    _check_article_ids(raw["article_id"], path)
    raw = raw.sort_values("article_id", kind="stable").set_index("article_id")
    raw["product"] = raw.index.str[:HM_PRODUCT_DIGITS]
    return raw


def _check_article_ids(article_id: pd.Series, path: Path) -> None:
    # Spreadsheet round trips turn "0111565001" into 111565001, which would silently
    # change every product code; catch it here rather than in the results.
    bad = ~article_id.str.fullmatch(r"\d{10}")
    if bad.any():
        raise DataError(
            f"{path}: {int(bad.sum())} article_id value(s) are not 10 digits (first: {article_id[bad].iloc[0]!r}); "
            f"article ids keep their leading zeros: restore the original file."
        )


def _hm_product_photos(images: Path, article_ids: np.ndarray) -> pd.Series:
    """Product -> photo path of its first article (by article_id) that has one."""
    article_ids = np.sort(article_ids)
    paths = [images / a[:3] / f"{a}.jpg" for a in article_ids]
    found = np.array([p.is_file() for p in paths], dtype=bool)
    photos = pd.Series([p for p, ok in zip(paths, found) if ok], index=article_ids[found].astype(str).tolist())
    return photos.groupby(photos.index.str[:HM_PRODUCT_DIGITS]).first()


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None
