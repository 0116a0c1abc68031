r"""MDSRec: Multimodal Difference Learning for Sequential Recommendation.

C. Li, Z. Guo, G. Li, L. Zou, arXiv 2412.08103 (2024). The equations implemented here, and
which of them are the paper's and which this project's reading, are in docs/method.md.

- RGC: per modality m, item vectors ``X^m = E + W_m F^m`` propagated over the modal-aware
  item graph ``Â^m`` (built with the behaviour signal): ``H^m = mean_l (Â^m)^l X^m``.
- ICA: per modality, its own causal Transformer and interest-centralized read-out ``u^m``.
- Fusion: ``ŷ_i = Σ_m α_m ⟨u^m, H^m_i⟩``; each modality matches items in its own space.
"""

from __future__ import annotations

import torch
from torch import nn

from recbole_mdsrec import compat  # noqa: F401  (before RecBole is used)
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.loss import BPRLoss

from recbole_mdsrec.graphs.build import EDGE_WEIGHTS, MODES as GRAPH_MODES, SEARCHES, SYMMETRIC, propagate
from recbole_mdsrec.models.layers import (
    FeatureProjection, Fusion, InterestCentralizedReadout, SequenceBranch, normal_init,
)
from recbole_mdsrec.models.options import choice, modal_features_of


def graph_settings(config) -> dict:
    """The RGC options of ``config`` as ``MultimodalSequentialDataset.modal_graph`` takes them."""
    return {
        "mode": choice(config, "graph_mode", GRAPH_MODES),
        "k": config["knn_k"],
        "beta": config["behavior_beta"],
        "window": config["behavior_window"],
        "self_loop": config["graph_self_loop"],
        "edge_weight": choice(config, "graph_edge_weight", EDGE_WEIGHTS),
        "symmetric": choice(config, "graph_symmetric", SYMMETRIC),
        "search": choice(config, "graph_search", SEARCHES),
        "n_clusters": config["graph_clusters"],
        "n_probe": config["graph_probe"],
    }


class MDSRec(SequentialRecommender):
    dataset_class = "MultimodalSequentialDataset"

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.hidden_size = config["hidden_size"]
        self.initializer_range = config["initializer_range"]
        self.loss_type = choice(config, "loss_type", ("CE", "BPR"))
        self.n_graph_layers = config["n_graph_layers"]
        self.difference = config["difference"]
        self.modalities, features, masks = modal_features_of(dataset, "MDSRec")
        projection = choice(config, "feature_projection", ("linear", "mlp"))
        missing = choice(config, "missing_feature", ("learned", "zero"))
        fusion = choice(config, "fusion", Fusion.KINDS)
        ica_readout = config["ica_readout"]
        if ica_readout:
            choice(config, "ica_center", InterestCentralizedReadout.CENTERS)
        settings = graph_settings(config)

        # frozen inputs: features, masks and graphs are buffers, not parameters
        for m in self.modalities:
            self.register_buffer(f"features_{m}", features[m], persistent=False)
            self.register_buffer(f"mask_{m}", masks[m], persistent=False)
            if self.n_graph_layers > 0:
                self.register_buffer(f"graph_{m}", dataset.modal_graph(m, settings), persistent=False)

        # define layers and loss
        self.item_embedding = nn.Embedding(self.n_items, self.hidden_size, padding_idx=0)
        self.projections = nn.ModuleDict({
            m: FeatureProjection(features[m].shape[1], self.hidden_size, projection, missing, config["hidden_dropout_prob"])
            for m in self.modalities
        })
        n_spaces = len(self.modalities) if self.difference else 1
        # Without difference learning the modal item vectors are concatenated and mapped to
        # one space, encoded by one shared branch (the SASRecF-style design).
        self.shared_items = None if self.difference else nn.Linear(len(self.modalities) * self.hidden_size, self.hidden_size)
        self.branches = nn.ModuleList(
            SequenceBranch(config, self.max_seq_length, ica_readout) for _ in range(n_spaces)
        )
        self.fusion = Fusion(fusion, n_spaces, self.hidden_size)
        self.loss_fct = BPRLoss() if self.loss_type == "BPR" else nn.CrossEntropyLoss()
        self._eval_items = None  # item vectors reused across evaluation batches

        # parameters initialization
        self.apply(normal_init(self.initializer_range))
        for branch in self.branches:
            if branch.readout is not None and branch.readout.prototypes is not None:
                nn.init.normal_(branch.readout.prototypes, std=self.initializer_range)

    def train(self, mode: bool = True):
        self._eval_items = None  # parameters are about to change
        return super().train(mode)

    # --- RGC -----------------------------------------------------------------------------

    def modal_item_vectors(self) -> torch.Tensor:
        """``H^m`` for every modality, stacked: [n_items, M, d]."""
        spaces = []
        for m in self.modalities:
            x = self.item_embedding.weight + self.projections[m](getattr(self, f"features_{m}"), getattr(self, f"mask_{m}"))
            if self.n_graph_layers > 0:
                x = propagate(getattr(self, f"graph_{m}"), x, self.n_graph_layers)
            spaces.append(x)
        return torch.stack(spaces, dim=1)

    def item_vectors(self) -> torch.Tensor:
        """Item vectors of each matching space: [n_items, S, d] (S = M, or 1 without difference).
        Computed once per training step, and once per evaluation."""
        if self._eval_items is not None:
            return self._eval_items
        items = self.modal_item_vectors()
        if not self.difference:
            items = self.shared_items(items.flatten(1)).unsqueeze(1)
        if not self.training:
            self._eval_items = items
        return items

    # --- ICA and fusion ------------------------------------------------------------------

    def forward(self, item_seq, item_seq_len, items=None):
        """Per-space user vectors [B, S, d] and their fusion weights [B, S]."""
        items = self.item_vectors() if items is None else items
        attention_mask = self.get_attention_mask(item_seq)
        valid = item_seq != 0
        last_index = item_seq_len - 1
        flat_seq = item_seq.flatten()
        # index_select per space: its backward (index_add) is ~1.6x cheaper than that of
        # items[item_seq] over all spaces at once (index_put with accumulation).
        users = torch.stack(
            [branch(items[:, s].index_select(0, flat_seq).view(*item_seq.shape, -1), attention_mask, valid, last_index)
             for s, branch in enumerate(self.branches)],
            dim=1,
        )
        return self.fusion(users)

    def _weighted_users(self, interaction, items):
        """Users as one vector [B, S·d] whose dot product with an item's concatenated
        spaces [S·d] is ``Σ_m α_m ⟨u^m, H^m_i⟩``: one matrix product scores all spaces."""
        users, weights = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], items)
        return (users * weights.unsqueeze(-1)).flatten(1)

    def calculate_loss(self, interaction):
        items = self.item_vectors()
        users = self._weighted_users(interaction, items)
        flat_items = items.flatten(1)
        pos_items = interaction[self.POS_ITEM_ID]
        if self.loss_type == "BPR":
            neg_items = interaction[self.NEG_ITEM_ID]
            pos_score = (users * flat_items[pos_items]).sum(-1)
            neg_score = (users * flat_items[neg_items]).sum(-1)
            return self.loss_fct(pos_score, neg_score)
        logits = users @ flat_items.t()
        return self.loss_fct(logits, pos_items)

    def predict(self, interaction):
        items = self.item_vectors()
        users = self._weighted_users(interaction, items)
        return (users * items.flatten(1)[interaction[self.ITEM_ID]]).sum(-1)

    def full_sort_predict(self, interaction):
        items = self.item_vectors()
        users = self._weighted_users(interaction, items)
        return users @ items.flatten(1).t()
