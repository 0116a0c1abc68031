"""A dataset's modal item graph (RGC), built from its training split and cached on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from recbole_mdsrec.graphs.behavior import cooccurrence, row_l2_normalised
from recbole_mdsrec.graphs.build import build_modal_graph
from recbole_mdsrec.graphs.cache import graph_cache_key, load_or_build
from recbole_mdsrec.graphs.propagate import to_torch_sparse
from recbole_mdsrec.graphs.spec import GraphSpec


def modal_graph(train_dataset, modality: str, spec: GraphSpec) -> torch.Tensor:
    """The normalised graph of ``modality`` (torch sparse CSR [n_items, n_items]) of a
    ``MultimodalSequentialDataset``'s training split, cached under a key that hashes the
    features, the training interactions and every graph option. The cache folder is the
    option ``graph_cache_dir``, else ``<data_path>/.graph_cache``."""
    features = train_dataset.modal_features[modality].numpy()
    mask = train_dataset.modal_masks[modality].numpy()
    sequences = train_dataset.training_sequences()  # refuses any split but the training one
    key = graph_cache_key(features, mask, _sequences_fingerprint(sequences), {"modality": modality, **spec.as_dict()})

    def build():
        behavior = cooccurrence(sequences, train_dataset.item_num, window=spec.window, weighting=spec.weighting) if spec.uses_behavior else None
        return build_modal_graph(features, mask, behavior, spec)

    config = train_dataset.config
    cache_dir = Path(config["graph_cache_dir"] or Path(config["data_path"]) / ".graph_cache")
    return to_torch_sparse(load_or_build(cache_dir, key, build))


def behavior_smoothing(train_dataset, spec: GraphSpec) -> torch.Tensor:
    """``C̃``, the row-L2-normalised co-occurrence of the training split (weighted as
    ``spec.weighting`` and ``spec.window`` say), torch sparse CSR [n_items, n_items]: the
    ID branch's smoothing of the ID embeddings. Cheap to build, so not cached."""
    sequences = train_dataset.training_sequences()
    counts = cooccurrence(sequences, train_dataset.item_num, window=spec.window, weighting=spec.weighting)
    return to_torch_sparse(row_l2_normalised(counts))


def _sequences_fingerprint(sequences: list[np.ndarray]) -> bytes:
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    return lengths.tobytes() + (np.concatenate(sequences).astype(np.int64).tobytes() if sequences else b"")
