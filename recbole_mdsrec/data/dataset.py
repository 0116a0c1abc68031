"""The dataset hook: RecBole's SequentialDataset plus per-item modal features and graphs.

Features are read from ``<name>.<modality>.npz`` for every modality named in the config
key ``modalities`` and aligned to RecBole's internal item ids *after* its remapping and
filtering, by item token. Models read them as frozen tensors:

- ``dataset.modal_features[m]``: float32 [n_items, d_m], row 0 = padding (zeros), scaled as
  the option ``feature_normalization`` says (``recbole_mdsrec/data/normalize.py``);
- ``dataset.modal_masks[m]``: bool [n_items], False where the item lacks modality m;
- ``train_dataset.training_sequences()``: each user's training items, from which
  ``graphs.modal.modal_graph`` builds the item graphs (the training split only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from recbole.data.dataset import SequentialDataset

from recbole_mdsrec.data.feature_store import (
    align_to_item_ids,
    feature_path,
    load_modal_features,
)
from recbole_mdsrec.data.normalize import normalize_features
from recbole_mdsrec.errors import ConfigError, DataError

SPLIT_ROLES = ("train", "valid", "test")


class MultimodalSequentialDataset(SequentialDataset):
    def __init__(self, config):
        super().__init__(config)
        self.split_role = "all"
        self._training_sequences = None
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
                f"missing ones with `python -m recbole_mdsrec.cli.prepare {self.dataset_name}`."
            )
        return list(modalities)

    def build(self):
        datasets = super().build()
        for role, dataset in zip(SPLIT_ROLES, datasets):
            dataset.split_role = role
        return datasets

    # --- the training part of the sequences -----------------------------------------------

    def training_sequences(self) -> list[np.ndarray]:
        """Each user's training items in time order, read from the training split only
        (validation and test targets are never in its rows); computed once."""
        self._require_train_split("training_sequences")
        if self._training_sequences is None:
            self._training_sequences = user_sequences(self)[1]
        return self._training_sequences

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
