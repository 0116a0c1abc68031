"""Scores and losses of user vectors against an item table, by dot product.

Every plugin model ends in the same place: user vectors [B, d] and an item table [n_items, d]
(ID embeddings, or items built from features and graphs). :class:`DotProductScoring` turns
them into the softmax cross-entropy over all items (optionally at a temperature), or BPR
against the sampled negative, and into the scores RecBole's evaluation asks for.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from recbole.model.loss import BPRLoss
from torch import nn

LOSS_TYPES = ("CE", "BPR")


class DotProductScoring(nn.Module):
    def __init__(self, loss_type: str, temperature: float | None = None):
        super().__init__()
        self.loss_type = loss_type
        self.temperature = temperature
        self.loss_fct = BPRLoss() if loss_type == "BPR" else nn.CrossEntropyLoss()

    def loss(self, users: torch.Tensor, items: torch.Tensor, pos_items: torch.Tensor,
             neg_items: torch.Tensor | None = None) -> torch.Tensor:
        """users [B, d], items [n_items, d], target ids [B] (and sampled negatives [B] for BPR)."""
        if self.loss_type == "BPR":
            return self.loss_fct(self.pointwise(users, items, pos_items), self.pointwise(users, items, neg_items))
        logits = self.full_sort(users, items)
        if self.temperature is not None:
            logits = logits / self.temperature
        return self.loss_fct(logits, pos_items)

    @staticmethod
    def full_sort(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Every user's score of every item: [B, n_items]."""
        return users @ items.t()

    @staticmethod
    def pointwise(users: torch.Tensor, items: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        """Each user's score of its own item ``item_ids[b]``: [B]."""
        return (users * F.embedding(item_ids, items)).sum(-1)


class ItemEmbeddingScoring:
    """``calculate_loss``/``predict``/``full_sort_predict`` of a RecBole sequential model whose
    ``forward(item_seq, item_seq_len)`` [B, d] is matched against its ID embeddings
    ``item_embedding`` (GRU4RecF, SASRecF, FDSA); ``self.scoring`` is its
    :class:`DotProductScoring`. Put it before ``SequentialRecommender`` in the bases."""

    def _sequence_vector(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])

    def calculate_loss(self, interaction):
        negatives = interaction[self.NEG_ITEM_ID] if self.scoring.loss_type == "BPR" else None
        return self.scoring.loss(self._sequence_vector(interaction), self.item_embedding.weight,
                                 interaction[self.POS_ITEM_ID], negatives)

    def predict(self, interaction):
        return self.scoring.pointwise(self._sequence_vector(interaction), self.item_embedding.weight,
                                      interaction[self.ITEM_ID])

    def full_sort_predict(self, interaction):
        return self.scoring.full_sort(self._sequence_vector(interaction), self.item_embedding.weight)
