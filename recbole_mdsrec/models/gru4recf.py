r"""GRU4RecF with dense multimodal item features.

B. Hidasi et al. "Parallel Recurrent Neural Network Architectures for Feature-rich
Session-based Recommendations." RecSys 2016; RecBole's ``GRU4RecF`` is the reference.

RecBole's version embeds categorical item fields with ``FeatureSeqEmbLayer``; here each
modality's dense features are one feature field (``ModalItemTable.fields``). The rest
is RecBole's:

- ``parallel`` (RecBole's choice, the paper's best): one GRU over item embeddings, one GRU
  over the concatenated feature fields, their outputs concatenated and mapped back to
  ``embedding_size``;
- ``input_concat`` (the paper's concatenated-input baseline): a single GRU over
  ``[item embedding; feature fields]``.

The last valid output is matched against the item ID embeddings.
"""

from __future__ import annotations

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.init import xavier_normal_initialization
from torch import nn

from recbole_mdsrec.models.init import init_weights
from recbole_mdsrec.models.modal_items import ModalItemTable
from recbole_mdsrec.models.options import choice
from recbole_mdsrec.models.scoring import (
    LOSS_TYPES,
    DotProductScoring,
    ItemEmbeddingScoring,
)


class GRU4RecF(ItemEmbeddingScoring, SequentialRecommender):
    dataset_class = "MultimodalSequentialDataset"

    ARCHITECTURES = ("parallel", "input_concat")

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.embedding_size = config["embedding_size"]
        self.hidden_size = config["hidden_size"]
        self.num_layers = config["num_layers"]
        self.dropout_prob = config["dropout_prob"]
        self.architecture = choice(config, "gru_architecture", self.ARCHITECTURES)
        loss_type = choice(config, "loss_type", LOSS_TYPES)

        # define layers
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        self.modal_items = ModalItemTable.from_config(config, dataset, "GRU4RecF", self.embedding_size, self.dropout_prob)
        feature_width = self.embedding_size * self.modal_items.n_modalities
        if self.architecture == "parallel":
            self.item_gru_layers = self._gru(self.embedding_size)
            self.feature_gru_layers = self._gru(feature_width)
            self.dense_layer = nn.Linear(2 * self.hidden_size, self.embedding_size)
        else:
            self.gru_layers = self._gru(self.embedding_size + feature_width)
            self.dense_layer = nn.Linear(self.hidden_size, self.embedding_size)
        self.dropout = nn.Dropout(self.dropout_prob)
        self.scoring = DotProductScoring(loss_type)

        # parameters initialization
        init_weights(self, xavier_normal_initialization)

    def _gru(self, input_size: int) -> nn.GRU:
        # bias-free, as RecBole's GRU4Rec/GRU4RecF
        return nn.GRU(input_size, self.hidden_size, num_layers=self.num_layers, bias=False, batch_first=True)

    def forward(self, item_seq, item_seq_len):
        item_emb = self.dropout(self.item_embedding(item_seq))
        feature_emb = self.modal_items.fields(item_seq).flatten(-2)  # [B, L, M·d]
        if self.architecture == "parallel":
            item_output, _ = self.item_gru_layers(item_emb)
            feature_output, _ = self.feature_gru_layers(feature_emb)
            output = torch.cat((item_output, feature_output), dim=-1)
        else:
            output, _ = self.gru_layers(torch.cat((item_emb, feature_emb), dim=-1))
        output = self.dense_layer(output)
        return self.gather_indexes(output, item_seq_len - 1)
