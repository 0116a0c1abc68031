"""A dataset's modal item graphs (RGC) and its co-occurrence matrix, built from its training
split and cached on disk."""

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
        behavior = training_cooccurrence(train_dataset, spec) if spec.uses_behavior else None
        return build_modal_graph(features, mask, behavior, spec)

    return to_torch_sparse(load_or_build(_cache_dir(train_dataset.config), key, build))


def behavior_smoothing(train_dataset, spec: GraphSpec) -> torch.Tensor:
    """``C̃``, the row-L2-normalised co-occurrence of the training split (weighted as
    ``spec.weighting`` and ``spec.window`` say), torch sparse CSR [n_items, n_items]: the
    ID branch's smoothing of the ID embeddings."""
    return to_torch_sparse(row_l2_normalised(training_cooccurrence(train_dataset, spec)))


def training_cooccurrence(train_dataset, spec: GraphSpec):
    """``B``, the co-occurrence of the training split weighted as ``spec.weighting`` and
    ``spec.window`` say (scipy CSR [n_items, n_items]), cached beside the graphs: every graph
    of a behaviour mode and the ID branch's smoothing share it, and the inverse-distance
    weighting visits every pair of positions of a sequence, so it is built once per split."""
    sequences = train_dataset.training_sequences()
    settings = {"matrix": "cooccurrence", "n_items": int(train_dataset.item_num),
                "window": spec.window, "weighting": spec.weighting}
    key = graph_cache_key(None, None, _sequences_fingerprint(sequences), settings)
    return load_or_build(_cache_dir(train_dataset.config), key,
                         lambda: cooccurrence(sequences, train_dataset.item_num, window=spec.window, weighting=spec.weighting))


def _cache_dir(config) -> Path:
    return Path(config["graph_cache_dir"] or Path(config["data_path"]) / ".graph_cache")


def _sequences_fingerprint(sequences: list[np.ndarray]) -> bytes:
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    return lengths.tobytes() + (np.concatenate(sequences).astype(np.int64).tobytes() if sequences else b"")
