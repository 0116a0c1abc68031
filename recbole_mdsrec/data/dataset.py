"""The dataset hook: RecBole's SequentialDataset plus per-item modal features and graphs.

Features are read from ``<name>.<modality>.npz`` for every modality named in the config
key ``modalities`` and aligned to RecBole's internal item ids *after* its remapping and
filtering, by item token. Models read them as frozen tensors:

- ``dataset.modal_features[m]``: float32 [n_items, d_m], row 0 = padding (zeros), scaled as
  the option ``feature_normalization`` says (``recbole_mdsrec/data/normalize.py``);
- ``dataset.modal_masks[m]``: bool [n_items], False where the item lacks modality m;
- ``dataset.modal_graph(m, settings)``: the normalised item–item graph of modality m
  (torch sparse [n_items, n_items]), built from the *training split only*.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from recbole_mdsrec import compat  # noqa: F401  (before RecBole is used)
from recbole.data.dataset import SequentialDataset

from recbole_mdsrec.data.feature_store import align_to_item_ids, feature_path, load_modal_features
from recbole_mdsrec.data.normalize import normalize_features
from recbole_mdsrec.errors import ConfigError, DataError
from recbole_mdsrec.graphs.behavior import cooccurrence
from recbole_mdsrec.graphs.build import build_modal_graph, to_torch_sparse
from recbole_mdsrec.graphs.cache import graph_cache_key, load_or_build

SPLIT_ROLES = ("train", "valid", "test")


class MultimodalSequentialDataset(SequentialDataset):
    def __init__(self, config):
        super().__init__(config)
        self.split_role = "all"
        self.modalities = self._configured_modalities(config)
        self.modal_features: dict[str, torch.Tensor] = {}
        self.modal_masks: dict[str, torch.Tensor] = {}
        id_to_token = self.field2id_token[self.iid_field]
        for modality in self.modalities:
            path = feature_path(config["data_path"], self.dataset_name, modality)
            features, mask = align_to_item_ids(load_modal_features(path, modality), id_to_token, self.dataset_name)
            features = normalize_features(features, mask, config["feature_normalization"])
            self.modal_features[modality] = torch.from_numpy(features)
            self.modal_masks[modality] = torch.from_numpy(mask)

    def _configured_modalities(self, config) -> list[str]:
        modalities = config["modalities"]
        if isinstance(modalities, str):
            modalities = [modalities]
        if not modalities or not all(isinstance(m, str) and m for m in modalities):
            raise ConfigError(
                f"Option 'modalities' is {modalities!r}; it must name at least one modality, e.g. "
                "--modalities=\"['image','text']\", matching the files <dataset>.<modality>.npz."
            )
        available = sorted(p.name.split(".")[-2] for p in Path(config["data_path"]).glob(f"{self.dataset_name}.*.npz"))
        missing = [m for m in modalities if m not in available]
        if missing:
            raise DataError(
                f"Dataset '{self.dataset_name}' has no feature file for modalities {missing} (option "
                f"'modalities' = {list(modalities)}; files found in {config['data_path']}: "
                f"{available or 'none'}). Fix: set 'modalities' to the ones it has, or create the "
                f"missing ones with `python -m recbole_mdsrec.prepare {self.dataset_name}`."
            )
        return list(modalities)

    def build(self):
        datasets = super().build()
        for role, dataset in zip(SPLIT_ROLES, datasets):
            dataset.split_role = role
        return datasets

    # --- the training part of the sequences, and the graphs built from it ---------------

    def training_sequences(self) -> list[np.ndarray]:
        """Each user's training items in time order, read from the training split only
        (validation and test targets are never in its rows)."""
        self._require_train_split("training_sequences")
        return user_sequences(self)[1]

    def modal_graph(self, modality: str, settings: dict) -> torch.Tensor:
        """Normalised graph of ``modality`` (torch sparse), cached on disk under a key that
        hashes the features, the training interactions and every graph setting."""
        self._require_train_split("modal_graph")
        features = self.modal_features[modality].numpy()
        mask = self.modal_masks[modality].numpy()
        sequences = self.training_sequences()
        fingerprint = _sequences_fingerprint(sequences)
        key = graph_cache_key(features, mask, fingerprint, {"modality": modality, **settings})
        uses_behavior = settings["mode"] != "modal_knn"

        def build():
            behavior = cooccurrence(sequences, self.item_num, window=settings["window"]) if uses_behavior else None
            options = {k: v for k, v in settings.items() if k != "window"}
            return build_modal_graph(features, mask, behavior, **options)

        cache_dir = Path(self.config["graph_cache_dir"] or Path(self.config["data_path"]) / ".graph_cache")
        return to_torch_sparse(load_or_build(cache_dir, key, build))

    def _require_train_split(self, what: str) -> None:
        if self.split_role != "train":
            raise RuntimeError(
                f"{what} reads the training split only (this is the '{self.split_role}' part); "
                "call it on train_data.dataset so that validation and test items never leak in."
            )


def user_sequences(dataset) -> tuple[np.ndarray, list[np.ndarray]]:
    """Users and their item sequences in time order, read from an augmented sequential
    dataset (any split, or the whole). RecBole's augmentation turns a sequence into rows
    ``<i1> | i2``, ``<i1, i2> | i3``, ...: a user's sequence is the first row's first
    history item followed by every target."""
    inter = dataset.inter_feat
    users = inter[dataset.uid_field].numpy()
    targets = inter[dataset.iid_field].numpy()
    first_history = inter[dataset.item_id_list_field][:, 0].numpy()
    order = np.argsort(users, kind="stable")  # rows are user-grouped already; keep it explicit
    users, targets, first_history = users[order], targets[order], first_history[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    return users[starts], [np.r_[first_history[s], targets[s:e]] for s, e in zip(starts, ends)]


def _sequences_fingerprint(sequences: list[np.ndarray]) -> bytes:
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    return lengths.tobytes() + (np.concatenate(sequences).astype(np.int64).tobytes() if sequences else b"")
