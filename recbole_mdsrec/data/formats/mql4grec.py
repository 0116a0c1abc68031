"""``--from=mql4grec``: MQL4GRec's and LC-Rec's files in ``--path``: ``<stem>.inter.json``
(``{user: [item, ...]}`` in time order) and ``<stem>.index_<name>.json`` (``{item: [code,
...]}``, semantic IDs), optionally ``<stem>.item2id`` / ``<stem>.user2id`` (original id, index)
and the benchmark split files ``<stem>.{train,valid,test}.inter``, which must agree with the
sequences (checked; the split is kept exactly).

Each index file is a modality: ``index_vitemb`` image, ``index_lemb`` text (MQL4GRec's
names), any other ``index_<name>`` the modality ``<name>``; the codes become one-hot
features with ``CODE_SIZE`` codes per level (``data/codes.py``). ``--codes`` replaces them.
"""

from __future__ import annotations

import json

import pandas as pd

from recbole_mdsrec.data.codes import read_codes
from recbole_mdsrec.data.formats.common import (
    file_in, folder_of, leave_one_out_split, read_benchmark_files, sequences_from_benchmark, stem_of,
)
from recbole_mdsrec.data.raw import RawDataset, interactions_from_sequences, items_without_side_information
from recbole_mdsrec.errors import DataError

KCORE = 1  # a filter would change the published split
CODE_SIZE = 256  # MQL4GRec's RQ-VAE codebooks: 256 codes per level
MODALITIES = {"vitemb": "image", "lemb": "text"}


def read(spec) -> RawDataset:
    folder = folder_of(spec, "mql4grec")
    stem = stem_of(spec, folder, ".inter.json", "mql4grec")
    path = file_in(folder, f"{stem}.inter.json", "MQL4GRec sequences file")
    try:
        sequences = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise DataError(f"{path} is not valid JSON ({error}). Fix: give {{user: [item, ...]}} in time order.") from None
    users = [str(u) for u in sequences]
    items_of = [[str(i) for i in sequences[u]] for u in sequences]
    split = leave_one_out_split(users, items_of, str(path))
    if (folder / f"{stem}.train.inter").is_file():
        split = _published_split(folder, stem, users, items_of)
    inter = interactions_from_sequences(users, items_of)
    items = items_without_side_information(inter)
    id_file = folder / f"{stem}.item2id"
    if id_file.is_file():
        mapping = pd.read_csv(id_file, sep="\t", header=None, names=["original", "index"], dtype=str)
        items["original_id:token"] = mapping.set_index("index")["original"].reindex(items.index).fillna("").to_numpy()
    arrays = {}
    for index_file in sorted(folder.glob(f"{stem}.index_*.json")):
        name = index_file.name[len(f"{stem}.index_"):-len(".json")]
        modality = MODALITIES.get(name, name)
        codes = read_codes(index_file, modality, CODE_SIZE)
        lacking = items.index.difference(codes.tokens)
        if len(lacking) and modality not in spec.allow_missing:
            raise DataError(f"{len(lacking)} interacted items have no codes in {index_file} (first: {list(lacking[:5])}). "
                            f"Fix: give codes for every item, or --allow_missing={modality}.")
        arrays[modality] = codes.only(items.index)
    provenance = {"raw_source": str(folder), "format": "mql4grec",
                  "interaction_rule": f"{path.name}: each user's items in time order (timestamp = position); "
                  f"test target = last item, validation target = the one before"
                  + (f", as {stem}.train/valid/test.inter have it" if split.source.endswith(".inter") else "")}
    return RawDataset(inter, items, provenance=provenance, modal_arrays=arrays, split=split)


def _published_split(folder, stem, users, sequences):
    """The benchmark files' split, which must be the sequences' own leave-one-out split."""
    where = f"{folder}/{stem}.train/valid/test.inter"
    b_users, b_sequences, split = sequences_from_benchmark(read_benchmark_files(folder, stem), where)
    given = dict(zip(users, map(list, sequences)))
    differing = [u for u, s in zip(b_users, b_sequences) if given.get(u) != s]
    if differing or set(b_users) != set(users):
        raise DataError(f"{where} and {stem}.inter.json disagree ({len(differing)} users' sequences differ, first: "
                        f"{differing[:5]}; users only in one: {len(set(users) ^ set(b_users))}). Fix: give files of one release.")
    return split
