r"""FDSA with dense multimodal item features.

T. Zhang et al. "Feature-level Deeper Self-Attention Network for Sequential
Recommendation." IJCAI 2019; RecBole's ``FDSA`` is the reference.

Two self-attention blocks, as in the paper: an item-based one over item ID embeddings and
a feature-based one over feature tokens. RecBole embeds categorical item fields with
``FeatureSeqEmbLayer``; here each modality's dense features are one feature field
(``ModalItemTable.fields``), and the fields of a position are combined by vanilla
attention into its feature token. The two blocks' last valid outputs are concatenated,
projected to ``hidden_size`` (then LayerNorm, dropout) and matched against the item ID
embeddings.
"""

from __future__ import annotations

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.layers import VanillaAttention
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


class FDSA(ItemEmbeddingScoring, SequentialRecommender):
    dataset_class = "MultimodalSequentialDataset"

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.hidden_size = config["hidden_size"]
        self.initializer_range = config["initializer_range"]
        loss_type = choice(config, "loss_type", LOSS_TYPES)
        encoder = EncoderSpec.from_config(config)

        # define layers
        self.item_embedding = nn.Embedding(self.n_items, self.hidden_size, padding_idx=0)
        self.modal_items = ModalItemTable.from_config(config, dataset, "FDSA", self.hidden_size,
                                                      config["hidden_dropout_prob"])
        self.feature_att_layer = VanillaAttention(self.hidden_size, self.hidden_size)
        # Each block has its own position embedding and LayerNorm; RecBole shares them.
        self.item_block = SequenceBranch(encoder, self.max_seq_length)
        self.feature_block = SequenceBranch(encoder, self.max_seq_length)
        self.concat_layer = nn.Linear(2 * self.hidden_size, self.hidden_size)
        self.layer_norm = nn.LayerNorm(self.hidden_size, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.scoring = DotProductScoring(loss_type)

        # parameters initialization
        init_weights(self, normal_init(self.initializer_range))

    def forward(self, item_seq, item_seq_len):
        attention_mask = self.get_attention_mask(item_seq)
        valid, last = item_seq != 0, item_seq_len - 1
        feature_tokens, _ = self.feature_att_layer(self.modal_items.fields(item_seq))  # [B, L, d]
        item_output = self.item_block(self.item_embedding(item_seq), attention_mask, valid, last)
        feature_output = self.feature_block(feature_tokens, attention_mask, valid, last)
        output = self.concat_layer(torch.cat((item_output, feature_output), dim=-1))
        return self.dropout(self.layer_norm(output))
