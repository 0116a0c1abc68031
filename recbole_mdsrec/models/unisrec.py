r"""UniSRec without pre-training: text-based item vectors through an MoE adaptor, SASRec.

Y. Hou et al. "Towards Universal Sequence Representation Learning for Recommender
Systems." KDD 2022 (reference code: RUCAIBox/UniSRec, ``unisrec.py``).

- Item text vectors ``x`` (modality ``unisrec_modality``) pass the MoE-enhanced adaptor:
  ``v = Σ_k g_k (x - b_k) W_k`` with ``g = softmax(x W_g + ε·softplus(x W_n))`` where the
  noise ``ε ~ N(0, 1)`` is drawn only in training (parametric whitening experts).
- ``unisrec_mode: transductive`` adds an ID embedding to ``v`` (the paper's transductive
  fine-tuning); ``inductive`` has no ID parameters, so items are known by their text only.
- A SASRec encoder reads the sequence of item vectors; the sequence vector and the item
  vectors are L2-normalised and matched by cosine / ``temperature`` under softmax CE.

Differences from the reference code (which fine-tunes a pre-trained model): there is no
pre-training stage; the adaptor maps each item once per step and sequences read that
table (the reference adapts every occurrence separately, so dropout and gate noise are
drawn per occurrence there); items lacking text get a learned vector instead of the
adapted zero vector; ``predict`` works (the reference has none in fine-tuning modes,
which crashes sampled evaluation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recbole_mdsrec import compat  # noqa: F401  (before RecBole is used)
from recbole.model.abstract_recommender import SequentialRecommender

from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.models.layers import SequenceBranch, normal_init
from recbole_mdsrec.models.options import choice, modal_features_of


class MoEAdaptor(nn.Module):
    """Mixture of parametric-whitening experts ``(x - b_k) W_k`` with a softmax gate."""

    NOISE_EPSILON = 1e-2  # floor of the gate noise's standard deviation (reference value)

    def __init__(self, n_exps: int, in_dim: int, out_dim: int, dropout: float, noise: bool):
        super().__init__()
        self.noise = noise
        self.dropout = nn.Dropout(dropout)
        self.biases = nn.Parameter(torch.zeros(n_exps, in_dim))
        self.experts = nn.Parameter(torch.empty(n_exps, in_dim, out_dim))
        # Zero gates start as a uniform mixture, as in the reference.
        self.w_gate = nn.Parameter(torch.zeros(in_dim, n_exps))
        self.w_noise = nn.Parameter(torch.zeros(in_dim, n_exps))

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        logits = x @ self.w_gate
        if self.noise and self.training:
            std = F.softplus(x @ self.w_noise) + self.NOISE_EPSILON
            logits = logits + torch.randn_like(logits) * std
        return torch.softmax(logits, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [n, in_dim] -> [n, out_dim]."""
        gates = self.gates(x)  # the gate sees the features without dropout, as in the reference
        whitened = self.dropout(x).unsqueeze(1) - self.biases  # [n, K, in]
        experts = torch.einsum("nki,kio->nko", whitened, self.experts)
        return (gates.unsqueeze(-1) * experts).sum(dim=1)


class UniSRec(SequentialRecommender):
    dataset_class = "MultimodalSequentialDataset"

    MODES = ("transductive", "inductive")

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.hidden_size = config["hidden_size"]
        self.initializer_range = config["initializer_range"]
        self.temperature = config["temperature"]
        self.mode = choice(config, "unisrec_mode", self.MODES)
        choice(config, "loss_type", ("CE",))
        modality = config["unisrec_modality"]
        modalities, features, masks = modal_features_of(dataset, "UniSRec")
        if modality not in modalities:
            raise ConfigError(
                f"UniSRec reads the '{modality}' features (option unisrec_modality), but the dataset was "
                f"loaded with modalities {modalities}. Fix: add it to --modalities or set "
                f"--unisrec_modality to one of {modalities}."
            )

        # frozen inputs
        self.register_buffer("text_features", features[modality], persistent=False)
        self.register_buffer("text_mask", masks[modality], persistent=False)

        # define layers and loss
        self.moe_adaptor = MoEAdaptor(
            config["n_exps"], features[modality].shape[1], self.hidden_size,
            config["adaptor_dropout_prob"], config["adaptor_noise"],
        )
        self.missing_text = nn.Parameter(torch.zeros(self.hidden_size))
        # Inductive mode must not own ID parameters at all: items are known by text only.
        self.item_embedding = (
            nn.Embedding(self.n_items, self.hidden_size, padding_idx=0) if self.mode == "transductive" else None
        )
        self.encoder = SequenceBranch(config, self.max_seq_length, readout=False)
        self.loss_fct = nn.CrossEntropyLoss()

        # parameters initialization
        self.apply(normal_init(self.initializer_range))
        nn.init.normal_(self.moe_adaptor.experts, std=self.initializer_range)

    def item_vectors(self) -> torch.Tensor:
        """Every item's vector [n_items, d], before normalisation."""
        adapted = self.moe_adaptor(self.text_features)
        items = torch.where(self.text_mask.unsqueeze(-1), adapted, self.missing_text)
        if self.item_embedding is not None:
            items = items + self.item_embedding.weight
        return items

    def forward(self, item_seq, item_seq_len, items=None):
        """The L2-normalised sequence vector [B, d]; ``items`` = :meth:`item_vectors` if given."""
        items = self.item_vectors() if items is None else items
        output = self.encoder(items[item_seq], self.get_attention_mask(item_seq), item_seq != 0, item_seq_len - 1)
        return F.normalize(output, dim=-1)

    def _scores(self, interaction, item_ids=None):
        """Cosine of each sequence with all items [B, n_items], or with ``item_ids`` [B]."""
        items = self.item_vectors()
        users = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], items)
        items = F.normalize(items, dim=-1)
        if item_ids is None:
            return users @ items.t()
        return (users * items[item_ids]).sum(-1)

    def calculate_loss(self, interaction):
        logits = self._scores(interaction) / self.temperature
        return self.loss_fct(logits, interaction[self.POS_ITEM_ID])

    def predict(self, interaction):
        return self._scores(interaction, interaction[self.ITEM_ID])

    def full_sort_predict(self, interaction):
        return self._scores(interaction)
