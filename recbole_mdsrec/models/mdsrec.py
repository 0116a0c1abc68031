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
from recbole.model.abstract_recommender import SequentialRecommender
from torch import nn

from recbole_mdsrec.graphs.modal import modal_graph
from recbole_mdsrec.graphs.propagate import propagate
from recbole_mdsrec.graphs.spec import GraphSpec
from recbole_mdsrec.models.init import init_weights, normal_init
from recbole_mdsrec.models.modal_items import ModalItemTable, modalities_of
from recbole_mdsrec.models.options import choice
from recbole_mdsrec.models.scoring import LOSS_TYPES, DotProductScoring
from recbole_mdsrec.models.sequence import EncoderSpec, ReadoutSpec, SequenceBranch


class Fusion(nn.Module):
    """Per-user weights over the modality embeddings (``gate``, ``mean``, ``weighted``), or a
    linear map of their concatenation (``concat``) whose output is split back per modality."""

    KINDS = ("gate", "mean", "weighted", "concat")

    def __init__(self, kind: str, n_modalities: int, hidden_size: int):
        super().__init__()
        self.kind = kind
        self.n = n_modalities
        width = n_modalities * hidden_size
        if kind == "gate":
            self.net = nn.Sequential(nn.Linear(width, hidden_size), nn.Tanh(), nn.Linear(hidden_size, n_modalities))
        elif kind == "weighted":
            self.logits = nn.Parameter(torch.zeros(n_modalities))
        elif kind == "concat":
            self.net = nn.Linear(width, width)

    def forward(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``users`` [B, M, d] -> (per-modality user vectors [B, M, d], weights [B, M])."""
        batch = users.size(0)
        if self.kind == "concat":
            mixed = self.net(users.reshape(batch, -1)).view_as(users)
            return mixed, users.new_ones(batch, self.n)
        if self.kind == "gate":
            weights = torch.softmax(self.net(users.reshape(batch, -1)), dim=-1)
        elif self.kind == "weighted":
            weights = torch.softmax(self.logits, dim=0).expand(batch, -1)
        else:
            weights = users.new_full((batch, self.n), 1.0 / self.n)
        return users, weights


class MDSRec(SequentialRecommender):
    dataset_class = "MultimodalSequentialDataset"

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.hidden_size = config["hidden_size"]
        self.initializer_range = config["initializer_range"]
        self.n_graph_layers = config["n_graph_layers"]
        self.difference = config["difference"]
        loss_type = choice(config, "loss_type", LOSS_TYPES)
        fusion = choice(config, "fusion", Fusion.KINDS)
        encoder = EncoderSpec.from_config(config)
        readout = ReadoutSpec.from_config(config) if config["ica_readout"] else None
        graph = GraphSpec.from_config(config)
        self.modalities = modalities_of(dataset, "MDSRec")

        # frozen inputs: the modal graphs Â^m (RGC), built from the training split only
        if self.n_graph_layers > 0:
            for m in self.modalities:
                self.register_buffer(f"graph_{m}", modal_graph(dataset, m, graph), persistent=False)

        # define layers and loss
        self.item_embedding = nn.Embedding(self.n_items, self.hidden_size, padding_idx=0)
        self.modal_items = ModalItemTable.from_config(config, dataset, "MDSRec", self.hidden_size,
                                                      config["hidden_dropout_prob"])
        n_spaces = len(self.modalities) if self.difference else 1
        # Without difference learning the modal item vectors are concatenated and mapped to
        # one space, encoded by one shared branch (the SASRecF-style design).
        self.shared_items = None if self.difference else nn.Linear(len(self.modalities) * self.hidden_size, self.hidden_size)
        self.branches = nn.ModuleList(SequenceBranch(encoder, self.max_seq_length, readout) for _ in range(n_spaces))
        self.fusion = Fusion(fusion, n_spaces, self.hidden_size)
        self.scoring = DotProductScoring(loss_type)
        self._eval_items = None  # item vectors reused across evaluation batches

        # parameters initialization
        init_weights(self, normal_init(self.initializer_range))

    def train(self, mode: bool = True):
        self._eval_items = None  # parameters are about to change
        return super().train(mode)

    # --- RGC -----------------------------------------------------------------------------

    def modal_item_vectors(self) -> torch.Tensor:
        """``H^m`` for every modality, stacked: [n_items, M, d]."""
        spaces = []
        for m in self.modalities:
            x = self.item_embedding.weight + self.modal_items.vectors(m)  # X^m = E + W_m F^m
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
        negatives = interaction[self.NEG_ITEM_ID] if self.scoring.loss_type == "BPR" else None
        return self.scoring.loss(self._weighted_users(interaction, items), items.flatten(1),
                                 interaction[self.POS_ITEM_ID], negatives)

    def predict(self, interaction):
        items = self.item_vectors()
        return self.scoring.pointwise(self._weighted_users(interaction, items), items.flatten(1), interaction[self.ITEM_ID])

    def full_sort_predict(self, interaction):
        items = self.item_vectors()
        return self.scoring.full_sort(self._weighted_users(interaction, items), items.flatten(1))
