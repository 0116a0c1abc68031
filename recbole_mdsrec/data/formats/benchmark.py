"""``--from=recbole-benchmark``: RecBole benchmark split files ``<stem>.train.inter``,
``<stem>.valid.inter`` and ``<stem>.test.inter`` (``user_id:token item_id_list:token_seq
item_id:token``), in ``--path``. The split is kept exactly: it must be leave-one-out by time
(checked), and the prepared dataset's own leave-one-out split then reproduces it.
"""

from __future__ import annotations

from recbole_mdsrec.data.formats.common import folder_of, read_benchmark_files, sequences_from_benchmark, stem_of
from recbole_mdsrec.data.raw import RawDataset, interactions_from_sequences, items_without_side_information

KCORE = 1  # a filter would change the given split


def read(spec) -> RawDataset:
    folder = folder_of(spec, "recbole-benchmark")
    stem = stem_of(spec, folder, ".train.inter", "recbole-benchmark")
    users, sequences, split = sequences_from_benchmark(read_benchmark_files(folder, stem), f"{folder}/{stem}.*.inter")
    inter = interactions_from_sequences(users, sequences)
    provenance = {"raw_source": str(folder), "format": "recbole-benchmark",
                  "interaction_rule": f"{stem}.train/valid/test.inter: each user's sequence is the first training "
                  "history item, the training targets, the validation target, the test target; timestamp = position"}
    return RawDataset(inter, items_without_side_information(inter), provenance=provenance, split=split)
