r"""SASRecF with dense multimodal item features.

RecBole's ``SASRecF`` (SASRec, Kang & McAuley ICDM 2018, with item attributes fused into
its input) is the reference. RecBole embeds categorical item fields with
``FeatureSeqEmbLayer``; here each modality's dense features are one feature field
(``ModalItemTable.fields``). Per position, the item embedding and the M fields are
fused (``fusion_type``) into one token, then one causal Transformer (SASRec's) encodes the
sequence; its last valid output is matched against the item ID embeddings.

- ``concat`` (RecBole's only mode): ``W [e; f_1; ...; f_M]``;
- ``sum``: ``e + Σ_m f_m``;
- ``gate``: ``Σ_j g_j x_j`` over ``x = (e, f_1, ..., f_M)`` with
  ``g = softmax(W [e; f_1; ...; f_M])`` per position.
"""

from __future__ import annotations

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from torch import nn

from recbole_mdsrec.models.init import init_weights, normal_init
from recbole_mdsrec.models.modal_items import ModalItemTable
from recbole_mdsrec.models.options import choice
from recbole_mdsrec.models.scoring import (
    LOSS_TYPES,
    DotProductScoring,
    ItemEmbeddingScoring,
)
from recbole_mdsrec.models.sequence import EncoderSpec, SequenceBranch


class FieldFusion(nn.Module):
    """Fuses ``n_fields`` vectors per position, [..., n_fields, d] -> [..., d]."""

    KINDS = ("concat", "sum", "gate")

    def __init__(self, kind: str, n_fields: int, hidden_size: int):
        super().__init__()
        self.kind = kind
        if kind == "concat":
            self.net = nn.Linear(n_fields * hidden_size, hidden_size)
        elif kind == "gate":
            self.net = nn.Linear(n_fields * hidden_size, n_fields)

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        if self.kind == "sum":
            return fields.sum(dim=-2)
        flat = fields.flatten(-2)
        if self.kind == "concat":
            return self.net(flat)
        weights = torch.softmax(self.net(flat), dim=-1)
        return (weights.unsqueeze(-1) * fields).sum(dim=-2)


class SASRecF(ItemEmbeddingScoring, SequentialRecommender):
    dataset_class = "MultimodalSequentialDataset"

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.hidden_size = config["hidden_size"]
        self.initializer_range = config["initializer_range"]
        fusion_type = choice(config, "fusion_type", FieldFusion.KINDS)
        loss_type = choice(config, "loss_type", LOSS_TYPES)
        encoder = EncoderSpec.from_config(config)

        # define layers
        self.item_embedding = nn.Embedding(self.n_items, self.hidden_size, padding_idx=0)
        self.modal_items = ModalItemTable.from_config(config, dataset, "SASRecF", self.hidden_size,
                                                      config["hidden_dropout_prob"])
        self.fusion = FieldFusion(fusion_type, 1 + self.modal_items.n_modalities, self.hidden_size)
        self.encoder = SequenceBranch(encoder, self.max_seq_length)
        self.scoring = DotProductScoring(loss_type)

        # parameters initialization
        init_weights(self, normal_init(self.initializer_range))

    def forward(self, item_seq, item_seq_len):
        fields = torch.cat((self.item_embedding(item_seq).unsqueeze(-2), self.modal_items.fields(item_seq)), dim=-2)
        tokens = self.fusion(fields)  # [B, L, d]
        return self.encoder(tokens, self.get_attention_mask(item_seq), item_seq != 0, item_seq_len - 1)
