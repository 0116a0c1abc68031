"""``--from=microlens``: MicroLens's ``<stem>_pairs.tsv`` (``user \\t item item ...``, each
user's items in time order; no timestamps) and ``<stem>_titles.csv`` (``item,title``), in
``--path``. The titles are the text modality, encoded offline.
"""

from __future__ import annotations

import pandas as pd

from recbole_mdsrec.data.formats.common import file_in, folder_of, stem_of
from recbole_mdsrec.data.raw import RawDataset, interactions_from_sequences
from recbole_mdsrec.errors import DataError

KCORE = 5


def read(spec) -> RawDataset:
    folder = folder_of(spec, "microlens")
    stem = stem_of(spec, folder, "_pairs.tsv", "microlens")
    pairs = file_in(folder, f"{stem}_pairs.tsv", "MicroLens pairs file")
    users, sequences = [], []
    for number, line in enumerate(pairs.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        user, sep, items = line.partition("\t")
        if not sep or not items.split():
            raise DataError(f"{pairs}, line {number}: expected 'user<TAB>item item ...', got {line[:60]!r}. "
                            "Fix: give MicroLens's pairs file unchanged.")
        users.append(user.strip())
        sequences.append(items.split())
    inter = interactions_from_sequences(users, sequences)
    titles_file = file_in(folder, f"{stem}_titles.csv", "MicroLens titles file")
    titles = pd.read_csv(titles_file, dtype=str, keep_default_na=False)
    if list(titles.columns[:2]) != ["item", "title"]:
        raise DataError(f"{titles_file} has columns {list(titles.columns)}, not item,title. Fix: give MicroLens's titles file.")
    titles = titles.drop_duplicates("item").set_index("item")["title"]
    interacted = pd.Index(pd.unique(inter["item_id"]))
    lacking = interacted.difference(titles.index)
    if len(lacking):
        raise DataError(f"{len(lacking)} interacted videos have no title in {titles_file} (first: {list(lacking[:5])}). "
                        "Fix: give the titles file of the same release.")
    text = titles.reindex(interacted)
    items = pd.DataFrame({"title:token_seq": text.to_numpy()}, index=pd.Index(interacted, name="item_id"))
    provenance = {"raw_source": str(folder), "format": "microlens",
                  "interaction_rule": f"{pairs.name}: each user's videos in file order = time order (timestamp = "
                  "position)",
                  "modalities": {"text": {"input_fields": [f"{titles_file.name} title"]}}}
    return RawDataset(inter, items, modal_inputs={"text": text.where(text.str.strip() != "", None).astype(object)},
                      provenance=provenance)
